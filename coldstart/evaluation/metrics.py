"""Offline evaluation, exactly as defined in BENCHMARK.md and data/README.md.

- ``ndcg@10``: linear gain = grade (Järvelin, ranx ``ndcg``, not ``ndcg_burges``) over the graded qrels, ideal
  ranking from the judged products of the query;
- ``recall@10``, ``recall@100``, ``mrr@10``: binary qrels, relevant = grade >= ``relevant_grade``, the other
  judgements dropped;
- only queries with at least one relevant product are averaged; a query missing from the run scores 0 and
  is averaged in; unjudged products count as not relevant.

The metrics themselves come from ranx, so the numbers match ranx (and BENCHMARK.md) by construction. ranx
breaks score ties in no fixed order, so ``evaluate_run`` hands it ranks instead of scores: equal scores keep
the order the run gives them in (``read_run`` keeps the file's rank order).
"""

from __future__ import annotations

import logging
import math
import warnings
from collections.abc import Mapping

import numpy as np

logger = logging.getLogger(__name__)


def _ranx():
    """Imports ranx lazily: it pulls numba and pandas, which a caller that only reads files need not pay for."""
    import ranx
    from numba.core.errors import NumbaTypeSafetyWarning

    return ranx, NumbaTypeSafetyWarning


def _ranked(qid: str, ranking: Mapping[str, float], depth: int) -> dict[str, float]:
    """Top ``depth`` of one ranking as ``{item_id: depth - position}``: scores ranx cannot reorder."""
    scores = list(ranking.items())
    for item_id, score in scores:
        if not isinstance(score, (int, float, np.number)) or math.isnan(score):
            raise ValueError(f"run query {qid!r} item {item_id!r} has score {score!r}; scores must be numbers, not NaN")
    order = sorted(range(len(scores)), key=lambda i: -scores[i][1])[:depth]  # stable: ties keep run order
    return {scores[i][0]: float(depth - position) for position, i in enumerate(order)}


def evaluate_run(
    qrels: Mapping[str, Mapping[str, int]],
    run: Mapping[str, Mapping[str, float]],
    *,
    relevant_grade: int = 1,
    cutoff: int = 10,
    depth: int = 100,
    per_query: bool = False,
) -> dict[str, float | int]:
    """Scores a run against graded qrels.

    Args:
        qrels: ``qrels[qid][item_id] = grade`` (int); every query to be evaluated.
        run: ``run[qid][item_id] = score``, higher is better; ties keep the mapping's order.
        relevant_grade: the lowest grade that counts as relevant for recall, MRR and for keeping a query.
        cutoff: k of ``ndcg@k``, ``recall@k`` and ``mrr@k``.
        depth: k of the deep ``recall@depth``.

    Returns:
        ``{f"ndcg@{cutoff}", f"recall@{cutoff}", f"recall@{depth}", f"mrr@{cutoff}": float,
        "queries": int (averaged over), "queries_without_relevant": int (left out),
        "queries_missing_from_run": int (no ranking or an empty one; scored 0 and averaged in)}``; with
        ``per_query`` also ``"per_query": {metric: {qid: score}}`` over the evaluated queries (what
        :func:`paired_bootstrap` compares).
    """
    if not isinstance(cutoff, int) or not isinstance(depth, int) or cutoff < 1 or depth < 1:
        raise ValueError(f"cutoff and depth must be positive ints, got cutoff={cutoff!r}, depth={depth!r}")
    evaluated = [qid for qid, judged in qrels.items() if any(g >= relevant_grade for g in judged.values())]
    if not evaluated:
        raise ValueError(f"no query in the qrels has a product with grade >= {relevant_grade}; lower "
                         "relevant_grade or check that the right qrels file was read")
    missing = [qid for qid in evaluated if not run.get(qid)]
    extra = len(set(run) - set(qrels))
    if extra:
        logger.info("%d run queries are not in the qrels and are not evaluated", extra)

    ndcg, recall, recall_deep, mrr = f"ndcg@{cutoff}", f"recall@{cutoff}", f"recall@{depth}", f"mrr@{cutoff}"
    result: dict[str, float | int] = {ndcg: 0.0, recall: 0.0, recall_deep: 0.0, mrr: 0.0}
    present = [qid for qid in evaluated if run.get(qid)]
    if present:
        ranx, type_warning = _ranx()
        keep = max(cutoff, depth)
        graded = ranx.Qrels({qid: {i: int(g) for i, g in qrels[qid].items()} for qid in evaluated})
        binary = ranx.Qrels({qid: {i: 1 for i, g in qrels[qid].items() if g >= relevant_grade} for qid in evaluated})
        ranked = {qid: _ranked(qid, run[qid], keep) for qid in present}
        with warnings.catch_warnings():
            # ranx hashes ids to uint64 and numba warns about the cast; the hashes are only compared for equality.
            warnings.simplefilter("ignore", type_warning)
            graded_run, binary_run = ranx.Run(ranked), ranx.Run(ranked)
            graded_scores = ranx.evaluate(graded, graded_run, [ndcg], make_comparable=True)
            binary_scores = ranx.evaluate(binary, binary_run, [recall, recall_deep, mrr], make_comparable=True)
        result[ndcg] = float(graded_scores)  # a single metric comes back as a bare number
        result.update({name: float(value) for name, value in binary_scores.items()})
    if per_query:  # ranx keeps each query's score on the run it evaluated; a query missing from the run scores 0
        runs = {ndcg: graded_run, recall: binary_run, recall_deep: binary_run, mrr: binary_run} if present else {}
        result["per_query"] = {name: {qid: float(runs[name].scores[name].get(qid, 0.0)) if runs else 0.0
                                      for qid in evaluated} for name in (ndcg, recall, recall_deep, mrr)}
    result.update(queries=len(evaluated), queries_without_relevant=len(qrels) - len(evaluated),
                  queries_missing_from_run=len(missing))
    return result


def roc_auc_judged(
    qrels: Mapping[str, Mapping[str, int]],
    scores: Mapping[str, Mapping[str, float]],
    *,
    positive_min_grade: int,
    negative_max_grade: int,
) -> dict[str, float | int]:
    """ROC-AUC of the system's scores over judged pairs, pooled over all queries (one global AUC).

    A pair is positive when its grade >= ``positive_min_grade`` and negative when its grade <=
    ``negative_max_grade``; pairs in between are left out. Every positive and negative pair must have a
    score: a missing one is an error, because dropping it silently would flatter the system.

    Returns:
        ``{"auc": float, "positives": int, "negatives": int, "left_out": int (graded in between),
        "queries": int (with at least one scored pair)}``.
    """
    if positive_min_grade <= negative_max_grade:
        raise ValueError(f"positive_min_grade ({positive_min_grade}) must be above negative_max_grade "
                         f"({negative_max_grade}), or a pair could be both")
    labels: list[int] = []
    values: list[float] = []
    missing: list[tuple[str, str]] = []
    left_out = 0
    queries = 0
    for qid, judged in qrels.items():
        system = scores.get(qid, {})
        used = 0
        for item_id, grade in judged.items():
            if negative_max_grade < grade < positive_min_grade:
                left_out += 1
                continue
            if item_id not in system:
                missing.append((qid, item_id))
                continue
            value = float(system[item_id])
            if math.isnan(value):
                raise ValueError(f"score of query {qid!r} item {item_id!r} is NaN; fix the system's scoring")
            labels.append(int(grade >= positive_min_grade))
            values.append(value)
            used += 1
        queries += used > 0
    if missing:
        qid, item_id = missing[0]
        raise ValueError(f"{len(missing)} of {len(missing) + len(labels)} judged pairs have no score "
                         f"(e.g. query {qid!r} item {item_id!r}); score every judged pair (see trec.read_pairs) "
                         "before computing the AUC")
    positives = sum(labels)
    negatives = len(labels) - positives
    if positives == 0 or negatives == 0:
        raise ValueError(f"ROC-AUC needs both classes, got {positives} positives (grade >= {positive_min_grade}) "
                         f"and {negatives} negatives (grade <= {negative_max_grade}); check the grade thresholds")
    from sklearn.metrics import roc_auc_score

    auc = float(roc_auc_score(np.asarray(labels), np.asarray(values, dtype=np.float64)))
    return {"auc": auc, "positives": positives, "negatives": negatives, "left_out": left_out, "queries": queries}


def paired_bootstrap(base: Mapping[str, float], other: Mapping[str, float], *, resamples: int = 10_000,
                     confidence: float = 0.95, seed: int = 0) -> dict[str, float | int]:
    """The change ``other − base`` of a per-query metric (both keyed by the same queries), with a paired bootstrap
    interval (scipy's percentile bootstrap over the queries' differences): ``{"delta", "low", "high", "queries"}``."""
    from scipy.stats import bootstrap

    if set(base) != set(other) or not base:
        raise ValueError(f"a paired comparison needs the same queries on both sides: {len(base)} vs {len(other)}, "
                         f"{len(set(base) ^ set(other))} differ")
    qids = sorted(base)
    diff = np.array([other[q] - base[q] for q in qids], dtype=np.float64)
    if not diff.any():
        return {"delta": 0.0, "low": 0.0, "high": 0.0, "queries": len(qids)}
    ci = bootstrap((diff,), np.mean, n_resamples=resamples, confidence_level=confidence, method="percentile",
                   random_state=np.random.default_rng(seed)).confidence_interval
    return {"delta": float(diff.mean()), "low": float(ci.low), "high": float(ci.high), "queries": len(qids)}
