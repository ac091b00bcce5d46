"""Training tables for the learned ranker, with no leakage from the models that compute the features.

- **Queries** (:func:`query_table`): features from a pipeline whose encoder and cross-encoder never saw the
  training queries — the packaged model, or ones fine-tuned on another part of the judged queries
  (:func:`split_queries` makes that part, by a hash of the query id; ``benchmarks/reproduce_quality.sh`` trains the
  encoders on one side and the ranker on the other). BM25 learns nothing from queries.
- **Clicks** (:func:`click_table_out_of_fold`): the session signals are fitted from training sessions, so a
  training user's own session would tell co-visitation what she buys next. Users are split into ``folds`` by a hash
  of their id; each fold's requests get features from signals fitted on the other folds only.
"""

from __future__ import annotations

import logging
from typing import Mapping, Sequence

from coldstart.ranking.ltr import TrainingTable, hashed_fraction, training_table

logger = logging.getLogger(__name__)


def split_queries(qids: Sequence[str], fraction: float, *, seed: int = 0) -> tuple[list[str], list[str]]:
    """``(rest, held)``: about ``fraction`` of ``qids`` held out for the ranker, the rest for the encoders; the
    same split on every machine and run (a hash of each id)."""
    if not 0 < fraction < 1:
        raise ValueError(f"the ranker's share of the training queries must be in (0, 1), got {fraction}")
    held = [q for q in qids if hashed_fraction(q, seed) < fraction]
    return [q for q in qids if hashed_fraction(q, seed) >= fraction], held


def query_table(pipeline, requests: Sequence, qrels: Mapping[str, Mapping[str, int]], *, depth: int = 100,
                trained_on: Sequence[str] = ()) -> TrainingTable:
    """The training table of query requests ranked by ``pipeline`` (a RankingPipeline with the blend, and the
    cross-encoder if the ranker is to read it). ``trained_on``: the query ids the pipeline's encoders were
    fine-tuned on; any overlap with ``requests`` is refused (the features would be in-sample)."""
    leaked = {r.qid for r in requests} & set(trained_on)
    if leaked:
        raise ValueError(f"{len(leaked)} ranker training queries (e.g. {sorted(leaked)[0]!r}) were also used to "
                         "fine-tune the encoders whose scores are its features: hold them out of fine-tuning "
                         "(ranker_training.split_queries)")
    return training_table(pipeline.features(depth=depth), [r for r in requests if r.query], qrels)


def click_table_out_of_fold(recommender, config, sessions: Sequence, *, labels=None, folds: int = 5,
                            ks: Sequence[int] = (1, 3), depth: int = 100, seed: int = 0) -> TrainingTable:
    """The training table of clicks-only requests from ``sessions`` (:class:`~coldstart.evaluation.trec.Session`,
    the training users): for each ``k`` of ``ks`` a user's first ``k`` items are the clicks and every later one is
    relevant, as in evaluation. Each fold's features come from session signals fitted on the other folds
    (``labels``: the category/brand labels, ``config``: the RetrievalConfig)."""
    from coldstart.evaluation.trec import Request, sessions_to_requests_and_qrels
    from coldstart.ranking.pipeline import RankingPipeline
    from coldstart.signals.sessions import SessionSignals

    if folds < 2:
        raise ValueError(f"out-of-fold features need at least 2 folds, got {folds}")
    fold_of = {s.user_id: int(hashed_fraction(s.user_id, seed) * folds) for s in sessions}
    tables = []
    for fold in range(folds):
        fit = [s.items for s in sessions if fold_of[s.user_id] != fold]
        held = [s for s in sessions if fold_of[s.user_id] == fold]
        if not held:
            continue
        signals = SessionSignals(recommender.version.index.ids, fit, labels=labels, covisit=config.covisit,
                                 transitions=config.transitions)
        pipeline = RankingPipeline(recommender, config, retriever="blend", sessions=signals)
        requests, qrels = [], {}
        for k in ks:
            got, judged = sessions_to_requests_and_qrels(held, k)
            requests += [Request(qid=f"{r.qid}#k{k}", query=None, clicks=r.clicks) for r in got]
            qrels.update((f"{q}#k{k}", v) for q, v in judged.items())
        logger.info("ranker clicks fold %d/%d: %d requests, signals fitted on %d other sessions", fold + 1, folds,
                    len(requests), len(fit))
        tables.append(training_table(pipeline.features(depth=depth), requests, qrels))
    table = TrainingTable.concat(tables)
    table.info["folds"] = folds
    return table


def train_ranker(recommender, retrieval, *, queries: str | None = None, qrels: str | None = None,
                 reranker: str | None = None, encoder_queries: str | None = None, sessions: str | None = None,
                 attributes: str | None = None, folds: int = 5, depth: int = 100, params=None,
                 device: str = "auto") -> dict:
    """The ranker's models, ``{kind: (booster, info)}``, ready for
    :func:`~coldstart.ranking.ranker_artifact.publish_ranker`: a query model from judged ``queries``/``qrels``
    (features from ``recommender``'s encoder and the ``reranker`` cross-encoder, checked disjoint from
    ``encoder_queries``, the file they were fine-tuned on) and/or a clicks model from ``sessions`` (out of fold)."""
    from coldstart.evaluation.trec import read_qrels, read_requests, read_sessions
    from coldstart.ranking.ltr import GROUPS, RankerParams, feature_names, fit_model
    from coldstart.ranking.pipeline import RankingPipeline

    if not queries and not sessions:
        raise ValueError("nothing to train on: give judged queries (and their qrels) and/or sessions")
    if bool(queries) != bool(qrels):
        raise ValueError("judged queries and their qrels go together")
    params = params or RankerParams()
    models = {}
    if queries:
        trained_on = [r.qid for r in read_requests(encoder_queries)] if encoder_queries else []
        pipeline = RankingPipeline(recommender, retrieval, retriever="blend", reranker=reranker, device=device)
        table = query_table(pipeline, read_requests(queries), read_qrels(qrels), depth=depth, trained_on=trained_on)
        booster, info = fit_model(table, params)
        models["query"] = (booster, {**info, "features": table.names, "source": str(queries),
                                     "leakage": f"encoders fine-tuned on {encoder_queries or 'no given file'}; "
                                                f"{len(trained_on)} of their query ids checked disjoint"})
    if sessions:
        from coldstart.signals.sessions import SessionData

        data = SessionData.read(sessions, attributes=attributes, config=retrieval)
        table = click_table_out_of_fold(recommender, retrieval, read_sessions(sessions), labels=data.labels,
                                        folds=folds, depth=depth, seed=params.seed)
        booster, info = fit_model(table, params)
        models["clicks"] = (booster, {**info, "features": table.names, "source": str(sessions),
                                      "leakage": f"session signals out of fold ({folds} folds by user)"})
    for kind, (_, info) in models.items():
        info["groups"] = [g for g in GROUPS[kind] if set(feature_names(kind, [g])) <= set(info["features"])]
    return models


def train_and_publish(store, recommender, retrieval, *, depth: int = 100, reranker: str | None = None, **training):
    """:func:`train_ranker`, then the models published into ``store`` (``rankers/LATEST`` moves to them);
    returns the :class:`~coldstart.ranking.ranker_artifact.RankerManifest`. What ``jobs.fit_ranker`` and the
    benchmarks run."""
    from coldstart.ranking.ranker_artifact import publish_ranker

    models = train_ranker(recommender, retrieval, reranker=reranker, depth=depth, **training)
    return publish_ranker(store, models, version=recommender.version, depth=depth,
                          cross_depth=retrieval.rerank_depth if reranker else 0, cross_encoder=reranker)
