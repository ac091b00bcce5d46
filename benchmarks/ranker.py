"""The learned ranker on the dev splits: against the hand-weighted pipeline, each feature group removed in turn
(paired bootstrap 95 % intervals of the change), ROC-AUC through it, and product families held out of training.

    python -m benchmarks.ranker --data ../shared/data --config configs/train-cpu.toml --cache DIR \\
        [--model MODEL_DIR --reranker CROSS_ENCODER_DIR --encoder-queries E.tsv] \\
        --ranker-queries queries_ranker.tsv [--out results.json]

Everything is the library's: features (:class:`coldstart.ranking.ltr.FeatureBuilder`), training tables
(:mod:`coldstart.ranking.ranker_training`: query ids checked disjoint from ``--encoder-queries``, the queries the
encoders were fine-tuned on; click features out of fold), LambdaRank (:func:`~coldstart.ranking.ltr.fit_model`),
ranking (:class:`~coldstart.ranking.ltr.LearnedRanker`), metrics and intervals
(:mod:`coldstart.evaluation.metrics`). Dev features are built once and every ablated model ranks the same
candidates. ``--ranker-queries`` is a ``queries_<name>.tsv`` with ``qrels_<name>.tsv`` beside it (``python -m
benchmarks.quality split`` makes them).

Product families: Home Depot has titles only, so a product's family is its title's first word (mostly the brand:
"DEWALT", "Hampton", "BEHR"); a query's family is that of its best-graded judged product. ``--holdout-share`` of
the families (by a hash) are held out of the ranker's training, and the dev queries of those families are ranked
by the ranker trained without them, by the tuned pipeline without the ranker, and by the packaged MiniLM alone.
The fine-tuned encoders given with ``--model``/``--reranker`` are what they are: whether they saw those families
is up to how they were trained (``reproduce_quality.sh`` does not hold families out of fine-tuning).
"""

from __future__ import annotations

import argparse
import json
import logging
import time
from pathlib import Path

import numpy as np

from benchmarks.quality import RUN_DEPTH, homedepot, scientific, session_signals

logger = logging.getLogger("benchmarks.ranker")


def _fmt(x: float) -> str:
    return f"{x:.4f}"


def _interval(b: dict) -> str:
    return f"{b['delta']:+.4f} [{b['low']:+.4f}, {b['high']:+.4f}]"


def _built(builder, requests, batch_size: int = 128):
    from coldstart.ranking.dense import UserRequest

    out = []
    for start in range(0, len(requests), batch_size):
        chunk = requests[start:start + batch_size]
        out += builder.build([UserRequest(query=r.query, clicks=r.clicks) for r in chunk])
    return out


def _ranked(pipeline, requests) -> list:
    from coldstart.evaluation.runs import rank_all

    run = rank_all(pipeline, requests, k=RUN_DEPTH)
    return [run[r.qid] for r in requests]


def _scores(qrels, requests, rankings, relevant_grade: int) -> dict:
    from coldstart.evaluation.metrics import evaluate_run

    run = {r.qid: dict(ranking) for r, ranking in zip(requests, rankings)}
    return evaluate_run(qrels, run, relevant_grade=relevant_grade, per_query=True)


def _ablation(table, builder, built, requests, qrels, *, params, relevant_grade: int, extra_rows=()):
    """``(rows, ranker, its scores)``: the full model, then each of its feature groups removed — NDCG@10 and the
    paired change — after ``extra_rows`` (the baselines)."""
    from coldstart.evaluation.metrics import paired_bootstrap
    from coldstart.ranking.ltr import GROUPS, LearnedRanker, fit_model

    booster, info = fit_model(table, params)
    ranker = LearnedRanker(builder, {table.kind: (booster, table.names)})
    full = _scores(qrels, requests, ranker.rank(built, RUN_DEPTH), relevant_grade)
    rows = [*extra_rows]
    rows.append({"system": "ranker (all features)", "ndcg@10": full["ndcg@10"], "recall@10": full["recall@10"],
                 "trees": info["best_iteration"], "change": None})
    groups = [g for g in GROUPS[table.kind] if any(n in table.names for n in GROUPS[table.kind][g])]
    for group in groups:
        without = table.without([group])
        b, i = fit_model(without, params)
        got = _scores(qrels, requests, LearnedRanker(builder, {table.kind: (b, without.names)}).rank(built, RUN_DEPTH),
                      relevant_grade)
        rows.append({"system": f"without {group}", "ndcg@10": got["ndcg@10"], "recall@10": got["recall@10"],
                     "trees": i["best_iteration"],
                     "change": paired_bootstrap(full["per_query"]["ndcg@10"], got["per_query"]["ndcg@10"])})
    return rows, ranker, full


def _restrict(scores: dict, qids) -> dict:
    """``scores`` (of :func:`_scores`) over the queries ``qids`` only."""
    per = {q: scores["per_query"]["ndcg@10"][q] for q in qids}
    return {"ndcg@10": float(np.mean(list(per.values()))), "per_query": {"ndcg@10": per}}


def _vs(base: dict, other: dict) -> dict:
    from coldstart.evaluation.metrics import paired_bootstrap

    return paired_bootstrap(base["per_query"]["ndcg@10"], other["per_query"]["ndcg@10"])


def _print_rows(title: str, rows: list[dict]) -> None:
    print(f"\n### {title}\n\n| system | NDCG@10 | Recall@10 | trees | change of NDCG@10 vs the full ranker [95 % CI] |")
    print("| --- | --- | --- | --- | --- |")
    for r in rows:
        change = _interval(r["change"]) if r.get("change") else ""
        print(f"| {r['system']} | {_fmt(r['ndcg@10'])} | {_fmt(r['recall@10'])} | {r.get('trees', '')} | {change} |")


def homedepot_ranker(args, params) -> dict:
    from coldstart.evaluation.metrics import roc_auc_judged
    from coldstart.evaluation.runs import score_pairs
    from coldstart.evaluation.trec import judged_pairs, read_qrels, read_requests
    from coldstart.ranking.config import load_retrieval_config
    from coldstart.ranking.ltr import hashed_fraction
    from coldstart.ranking.pipeline import RankingPipeline, load_recommender
    from coldstart.ranking.ranker_training import query_table

    hd = args.data / "homedepot"
    config = load_retrieval_config(args.config)
    import dataclasses

    pairs_config = config if args.reranker else dataclasses.replace(config, pair_score="dense")
    job = homedepot(args.data, model=args.model, config_path=args.config, cache=args.cache)
    recommender = load_recommender(job)
    pipeline = RankingPipeline(recommender, pairs_config, retriever="blend", reranker=args.reranker,
                               device=job.encoder.device)
    trained_on = [r.qid for r in read_requests(args.encoder_queries)] if args.encoder_queries else []
    qrels_path = args.ranker_queries.with_name(args.ranker_queries.name.replace("queries_", "qrels_"))
    train_qrels = read_qrels(qrels_path)
    started = time.time()
    table = query_table(pipeline, read_requests(args.ranker_queries), train_qrels, depth=RUN_DEPTH,
                        trained_on=trained_on)
    dev = [r for r in read_requests(hd / "queries_dev.tsv") if r.query]
    dev_qrels = read_qrels(hd / "qrels_dev.tsv")
    builder = pipeline.features(depth=RUN_DEPTH)
    built = _built(builder, dev)
    logger.info("Home Depot features: %.0f s", time.time() - started)
    tuned = _scores(dev_qrels, dev, _ranked(pipeline, dev), 5)
    packaged_job = homedepot(args.data, model="default", config_path=args.config, cache=args.cache)
    packaged = RankingPipeline(load_recommender(packaged_job), config, retriever="dense")
    minilm = _scores(dev_qrels, dev, _ranked(packaged, dev), 5)
    baseline_name = "tuned pipeline, no ranker" + (" (blend + cross-encoder)" if args.reranker else " (blend)")
    rows, ranker, full = _ablation(table, builder, built, dev, dev_qrels, params=params, relevant_grade=5, extra_rows=[
        {"system": "packaged MiniLM (dense)", "ndcg@10": minilm["ndcg@10"], "recall@10": minilm["recall@10"]},
        {"system": baseline_name, "ndcg@10": tuned["ndcg@10"], "recall@10": tuned["recall@10"]}])
    pairs = judged_pairs(hd / "queries_dev.tsv", hd / "qrels_dev.tsv")
    auc = {}
    for name, scorer in (("config pair score", pipeline), ("ranker", None)):
        if scorer is None:
            scored = {}
            values = ranker.pair_scores([p[1] for p in pairs], [p[2] for p in pairs])
            for (qid, _, item), v in zip(pairs, values):
                if v == v:
                    scored.setdefault(qid, {})[item] = float(v)
        else:
            scored, _ = score_pairs(scorer, pairs)
        auc[name] = roc_auc_judged(dev_qrels, scored, positive_min_grade=5, negative_max_grade=3)["auc"]
    # product families held out of the ranker's training
    first_word = {i: (t.split() or [""])[0].lower() for i, t in
                  zip(recommender.version.items.column("item_id").to_pylist(),
                      recommender.version.items.column("title").to_pylist())}

    def family(judged: dict) -> str:
        best = max(judged.items(), key=lambda kv: kv[1])[0] if judged else ""
        return first_word.get(best, "")

    held = {f for f in set(first_word.values()) if hashed_fraction(f, 1) < args.holdout_share}
    keep = [g for g, q in enumerate(table.qids) if family(train_qrels.get(q, {})) not in held]
    from coldstart.ranking.ltr import LearnedRanker, fit_model

    blind, _ = fit_model(table.subset(keep), params)
    blind_ranker = LearnedRanker(builder, {"query": (blind, table.names)})
    in_held = [n for n, r in enumerate(dev) if family(dev_qrels.get(r.qid, {})) in held]
    held_qrels = {dev[n].qid: dev_qrels[dev[n].qid] for n in in_held}
    held_requests = [dev[n] for n in in_held]
    blind_run = _scores(held_qrels, held_requests, blind_ranker.rank([built[n] for n in in_held], RUN_DEPTH), 5)
    sub = {name: _restrict(s, blind_run["per_query"]["ndcg@10"]) for name, s in (("minilm", minilm), ("tuned", tuned))}
    families = {"families": len(set(first_word.values())), "held_out": len(held),
                "train_queries_dropped": len(table.qids) - len(keep), "dev_queries": blind_run["queries"],
                "ranker_without_them": blind_run["ndcg@10"], "tuned_no_ranker": sub["tuned"]["ndcg@10"],
                "packaged_minilm": sub["minilm"]["ndcg@10"],
                "ranker_vs_packaged": _vs(sub["minilm"], blind_run), "ranker_vs_tuned": _vs(sub["tuned"], blind_run)}
    _print_rows("Home Depot dev: the query ranker and its ablation", rows)
    print(f"\nranker vs {baseline_name}: {_interval(_vs(tuned, full))}; vs packaged MiniLM: {_interval(_vs(minilm, full))}")
    print(f"ROC-AUC over judged dev pairs (5+ vs ≤ 3): {json.dumps({k: round(v, 4) for k, v in auc.items()})}")
    print(f"families held out of the ranker's training: {json.dumps(families, default=float)}")
    return {"rows": rows, "auc": auc, "families": families, "table": table.info,
            "vs_tuned": _vs(tuned, full), "vs_packaged": _vs(minilm, full)}


def scientific_ranker(args, params) -> dict:
    from coldstart.evaluation.trec import Request, read_sessions, sessions_to_requests_and_qrels
    from coldstart.ranking.config import load_retrieval_config
    from coldstart.ranking.pipeline import RankingPipeline, load_recommender
    from coldstart.ranking.ranker_training import click_table_out_of_fold
    from coldstart.signals.sessions import SessionData

    sci = args.data / "amazon_scientific"
    config = load_retrieval_config(args.config)
    recommender = load_recommender(scientific(args.data, config_path=args.config, cache=args.cache))
    labels = SessionData.read(sci / "sessions_train.jsonl", attributes=sci / "items.parquet", config=config).labels
    table = click_table_out_of_fold(recommender, config, read_sessions(sci / "sessions_train.jsonl"), labels=labels,
                                    depth=RUN_DEPTH)
    pipeline = RankingPipeline(recommender, config, retriever="blend",
                               sessions=session_signals(args.data, recommender, config))
    builder = pipeline.features(depth=RUN_DEPTH)
    dev = read_sessions(sci / "sessions_dev.jsonl")
    out = {}
    for k in (1, 3):
        requests, qrels = sessions_to_requests_and_qrels(dev, k)
        requests = [Request(qid=r.qid, query=None, clicks=r.clicks) for r in requests]
        blend = _scores(qrels, requests, _ranked(pipeline, requests), 1)
        rows, _, full = _ablation(table, builder, _built(builder, requests), requests, qrels, params=params,
                                  relevant_grade=1, extra_rows=[{"system": "hand-weighted blend (no ranker)",
                                                                 "ndcg@10": blend["ndcg@10"],
                                                                 "recall@10": blend["recall@10"]}])
        _print_rows(f"Amazon Scientific dev, k={k}: the clicks ranker and its ablation", rows)
        print(f"\nranker vs the blend, k={k}: {_interval(_vs(blend, full))}")
        out[f"k{k}"] = {"rows": rows, "vs_blend": _vs(blend, full)}
    out["table"] = table.info
    return out


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", required=True, type=Path)
    parser.add_argument("--config", default="configs/train-cpu.toml")
    parser.add_argument("--cache", type=Path, help="where the published stores are kept between runs")
    parser.add_argument("--model", default="default", help="the (fine-tuned) encoder of the Home Depot pipeline")
    parser.add_argument("--reranker", help="the cross-encoder whose logit is a feature")
    parser.add_argument("--ranker-queries", type=Path, required=True, help="queries_<name>.tsv the ranker trains on")
    parser.add_argument("--encoder-queries", type=Path, help="the queries the encoders were fine-tuned on")
    parser.add_argument("--holdout-share", type=float, default=0.1, help="share of product families held out")
    parser.add_argument("--only", choices=["homedepot", "scientific"])
    parser.add_argument("--out", type=Path, help="also write every number as JSON")
    args = parser.parse_args(argv)
    from coldstart.logs import setup_logging
    from coldstart.ranking.ltr import RankerParams

    setup_logging(False)
    if not (args.data / "homedepot").is_dir():
        print(f"skipped: {args.data} has no benchmark data (see ../shared/data/README.md)")
        return 0
    params = RankerParams()
    started = time.time()
    results = {"args": {k: str(v) for k, v in vars(args).items()}}
    if args.only in (None, "homedepot"):
        results["homedepot"] = homedepot_ranker(args, params)
    if args.only in (None, "scientific"):
        results["scientific"] = scientific_ranker(args, params)
    results["seconds"] = round(time.time() - started)
    print(f"\n{results['seconds']} s")
    if args.out:
        args.out.write_text(json.dumps(results, indent=2, default=float))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
