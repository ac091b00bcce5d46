"""The ablation table of BENCHMARKS.md: each signal added in turn, on the dev splits.

    python -m benchmarks.ablation --data ../shared/data --finetuned MODEL_DIR [--config configs/train-cpu.toml]
        [--cache DIR]
    python -m benchmarks.ablation --data ../shared/data --compare plain=DIR fgm=DIR ...   # one model per training
        [--bm25-weights 0.1 0.2] [--reranker CROSS_ENCODER_DIR [--rerank-weights 0.5 2]]

Home Depot dev (retrieval over the whole catalog; NDCG@10 graded, Recall/MRR with grade ≥ 5, ROC-AUC over judged
pairs 5+ vs ≤ 3) and Amazon Scientific dev (k = 1 and 3 clicks). Prints markdown rows; ``--out FILE`` also
writes them as a results file that ``benchmarks/plots.py`` draws. Rank-fusion rows have no
ROC-AUC: RRF gives no score to a judged product outside both top-100 lists. Judged pairs are scored as the
config's ``pair_score`` says (default: the encoder's cosine, so every blend row of one model has the same ROC-AUC).
"""

from __future__ import annotations

import argparse
import dataclasses
import logging
import time
from pathlib import Path

from benchmarks.quality import homedepot, scientific, session_signals
from coldstart.ranking.config import load_retrieval_config

logger = logging.getLogger("benchmarks.ablation")


def _fmt(x) -> str:
    return "" if x is None else f"{x:.3f}"


HD_METRICS = ("ndcg@10", "recall@10", "recall@100", "mrr@10", "roc_auc")
SCI_METRICS = ("k1_ndcg@10", "k1_recall@10", "k1_mrr@10", "k1_recall@100",
               "k3_ndcg@10", "k3_recall@10", "k3_mrr@10", "k3_recall@100")


def _record(dataset: str, row: tuple, metrics: tuple[str, ...]) -> dict:
    """A printed row as a results-file row (``benchmarks/record.py``)."""
    return {"dataset": dataset, "system": row[0], "label": row[0],
            **{m: None if v is None else round(float(v), 4) for m, v in zip(metrics, row[1:])}}


def _write(out: Path | None, rows: list[dict], started: float) -> None:
    if out is not None:
        from benchmarks.record import write_results

        print(f"written to {write_results(out, 'ablation', rows, script='benchmarks.ablation', started=started)}")


class _DevQueries:
    """Home Depot dev: the requests, the qrels and the judged pairs, read once; ``row`` evaluates a pipeline."""

    def __init__(self, data: Path):
        from coldstart.evaluation.trec import judged_pairs, read_qrels, read_requests

        hd = data / "homedepot"
        self.requests = [r for r in read_requests(hd / "queries_dev.tsv") if r.query]
        self.qrels = read_qrels(hd / "qrels_dev.tsv")
        self.pairs = judged_pairs(hd / "queries_dev.tsv", hd / "qrels_dev.tsv")

    def row(self, name: str, pipeline, *, auc: bool = True) -> tuple:
        from coldstart.evaluation.metrics import evaluate_run, roc_auc_judged
        from coldstart.evaluation.runs import rank_all, score_pairs

        run = rank_all(pipeline, self.requests, k=100)
        m = evaluate_run(self.qrels, {q: dict(r) for q, r in run.items()}, relevant_grade=5)
        roc = None
        if auc:
            scores, _ = score_pairs(pipeline, self.pairs)
            roc = roc_auc_judged(self.qrels, scores, positive_min_grade=5, negative_max_grade=3)["auc"]
        row = (name, m["ndcg@10"], m["recall@10"], m["recall@100"], m["mrr@10"], roc)
        logger.info("%s %s", name, row[1:])
        return row


def homedepot_rows(data: Path, *, base: str, finetuned: str, config_path: str, config,
                   cache: Path | None) -> list[tuple]:
    from coldstart.ranking.judged_neighbours import JudgedNeighbours
    from coldstart.ranking.pipeline import RankingPipeline, load_recommender

    dev = _DevQueries(data)
    baseline = dataclasses.replace(config, query_bm25_tokens="bm25s")  # BENCHMARK.md's baselines: bm25s tokens
    # judged pairs are scored by the encoder's cosine (or the blend): no ROC-AUC for a bm25-only or rank-fusion row
    auc = {"auc": False}
    rows = []
    rec = load_recommender(homedepot(data, model=base, config_path=config_path, cache=cache))
    rows.append(dev.row("bm25 (baseline)", RankingPipeline(rec, baseline, retriever="bm25"), **auc))
    rows.append(dev.row("base model (minilm)", RankingPipeline(rec, baseline, retriever="dense")))
    rows.append(dev.row("base + bm25, rank fusion (baseline hybrid)", RankingPipeline(rec, baseline,
                                                                                       retriever="hybrid"), **auc))
    rec = load_recommender(homedepot(data, model=finetuned, config_path=config_path, cache=cache))
    rows.append(dev.row("+ fine-tuning (dense only)", RankingPipeline(rec, baseline, retriever="dense")))
    rows.append(dev.row("+ hybrid: bm25, rank fusion", RankingPipeline(rec, baseline, retriever="hybrid"), **auc))
    rows.append(dev.row("+ hybrid: bm25, weighted z-scores", RankingPipeline(rec, baseline)))
    rows.append(dev.row(f"+ bm25 tokens={config.query_bm25_tokens!r} (the default config)",
                        RankingPipeline(rec, config)))
    hd = data / "homedepot"
    neighbours = JudgedNeighbours.from_files(rec.version.index.ids, rec.encoder, hd / "queries_train.tsv",
                                             hd / "qrels_train.tsv", config.neighbours)
    with_neighbours = dataclasses.replace(config, query_weights=dict(config.query_weights, neighbours=0.3))
    rows.append(dev.row("+ judged neighbours (weight 0.3; not in the default)",
                        RankingPipeline(rec, with_neighbours, neighbours=neighbours)))
    return rows


def model_rows(data: Path, models: dict[str, str], *, config_path: str, config, cache: Path | None,
               bm25_weights: list[float] = (), reranker: str | None = None,
               rerank_weights: list[float] = (), pair_dense_weights: list[float] = ()) -> list[tuple]:
    """Home Depot dev rows for several fine-tuned models: dense only, the config's blend, and the blend with each
    of ``bm25_weights`` instead of the config's BM25 weight (the one weight chosen on dev). With ``reranker``:
    also the default blend re-ranked by it, with the config's first-stage weight and each of ``rerank_weights``
    (judged pairs then scored by the cross-encoder; plus each of ``pair_dense_weights`` × the cosine)."""
    from coldstart.ranking.pipeline import RankingPipeline, load_recommender

    dev = _DevQueries(data)
    first_stage = dataclasses.replace(config, pair_score="dense") if config.pair_score == "reranker" else config
    rows = []
    for name, model in models.items():
        job = homedepot(data, model=model, config_path=config_path, cache=cache)
        rec = load_recommender(job)
        rows.append(dev.row(f"{name} (dense only)", RankingPipeline(rec, first_stage, retriever="dense")))
        rows.append(dev.row(f"{name} + the default blend", RankingPipeline(rec, first_stage)))
        for w in bm25_weights:
            weights = dict(config.query_weights, bm25=w)
            rows.append(dev.row(f"{name} + blend with bm25 {w}",
                                RankingPipeline(rec, dataclasses.replace(first_stage, query_weights=weights))))
        if not reranker:
            continue
        reranked = dataclasses.replace(config, pair_score="reranker")
        for w in [config.rerank_first_weight, *rerank_weights]:
            pipeline = RankingPipeline(rec, dataclasses.replace(reranked, rerank_first_weight=w), reranker=reranker,
                                       device=job.encoder.device)
            rows.append(dev.row(f"{name} + the default blend + re-ranker (top {config.rerank_depth}, first-stage "
                                f"weight {w})", pipeline))
        for w in pair_dense_weights:
            pipeline = RankingPipeline(rec, dataclasses.replace(reranked, rerank_pair_dense_weight=w),
                                       reranker=reranker, device=job.encoder.device)
            rows.append(dev.row(f"{name} + the default blend + re-ranker; pair scores + {w} × cosine", pipeline))
    return rows


def sessions_rows(data: Path, *, config_path: str, config, cache: Path | None) -> list[tuple]:
    from coldstart.evaluation.metrics import evaluate_run
    from coldstart.evaluation.runs import rank_all
    from coldstart.evaluation.trec import read_sessions, sessions_to_requests_and_qrels
    from coldstart.ranking.pipeline import RankingPipeline, load_recommender

    dev = read_sessions(data / "amazon_scientific" / "sessions_dev.jsonl")
    rec = load_recommender(scientific(data, config_path=config_path, cache=cache))
    signals = session_signals(data, rec, config)
    rows = []
    for name, weights in [("content (minilm, baseline)", {"dense": 1.0}), ("bm25 (baseline)", {"bm25": 1.0}),
                          ("popularity (baseline)", {"popularity": 1.0}),
                          ("+ session signal: co-visitation only", {"covisit": 1.0}),
                          ("+ blend co-visitation + content + bm25 + popularity",
                           {k: v for k, v in config.click_weights.items() if k not in ("category", "brand")}),
                          ("+ category and brand transitions", {"category": 1.0, "brand": 1.0}),
                          ("+ blend of all with category and brand transitions (default)", config.click_weights)]:
        pipeline = RankingPipeline(rec, dataclasses.replace(config, click_weights=weights), sessions=signals)
        row = [name]
        for k in (1, 3):
            requests, qrels = sessions_to_requests_and_qrels(dev, k)
            run = rank_all(pipeline, requests, k=100)
            m = evaluate_run(qrels, {q: dict(r) for q, r in run.items()})
            row += [m["ndcg@10"], m["recall@10"], m["mrr@10"], m["recall@100"]]
        rows.append(tuple(row))
        logger.info("%s", row)
    return rows


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, default=Path("../shared/data"))
    parser.add_argument("--finetuned")
    parser.add_argument("--compare", nargs="+", metavar="NAME=MODEL_DIR",
                        help="instead of the table: Home Depot rows (dense only, default blend) per model")
    parser.add_argument("--bm25-weights", type=float, nargs="*", default=[],
                        help="with --compare: also the blend with each of these BM25 weights")
    parser.add_argument("--reranker", help="with --compare: also the default blend re-ranked by this cross-encoder")
    parser.add_argument("--rerank-weights", type=float, nargs="*", default=[],
                        help="with --reranker: also these first-stage weights beside the cross-encoder's")
    parser.add_argument("--pair-dense-weights", type=float, nargs="*", default=[],
                        help="with --reranker: also judged pairs scored by its logit + this × the cosine")
    parser.add_argument("--base", default="default")
    parser.add_argument("--config", default="configs/train-cpu.toml")
    parser.add_argument("--cache", type=Path)
    parser.add_argument("--only", choices=("homedepot", "sessions"))
    parser.add_argument("--out", type=Path, help="also write the rows as a results file (benchmarks/plots.py)")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    for noisy in ("bm25s", "transformers", "coldstart"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    if not (args.data / "homedepot").is_dir():
        print(f"skipped: no benchmark data under {args.data}")
        return 0
    config = load_retrieval_config(args.config)
    t0 = time.time()
    recorded: list[dict] = []
    if not args.compare and config.pair_score == "reranker":  # the table's rows have no re-ranker
        import dataclasses

        config = dataclasses.replace(config, pair_score="dense")
    if args.compare:
        models = dict(item.split("=", 1) for item in args.compare)
        print("| Home Depot dev | NDCG@10 | Recall@10 | Recall@100 | MRR@10 | ROC-AUC |")
        print("| --- | --- | --- | --- | --- | --- |")
        for row in model_rows(args.data, models, config_path=args.config, config=config, cache=args.cache,
                              bm25_weights=args.bm25_weights,
                              reranker=args.reranker, rerank_weights=args.rerank_weights,
                              pair_dense_weights=args.pair_dense_weights):
            print(f"| {row[0]} | " + " | ".join(_fmt(x) for x in row[1:]) + " |", flush=True)
            recorded.append(_record("homedepot-dev", row, HD_METRICS))
        print(f"\n({time.time() - t0:.0f} s)")
        _write(args.out, recorded, t0)
        return 0
    if not args.finetuned and args.only != "sessions":
        parser.error("--finetuned MODEL_DIR is needed for the Home Depot rows (or use --compare or --only sessions)")
    if args.only != "sessions":
        print("| Home Depot dev | NDCG@10 | Recall@10 | Recall@100 | MRR@10 | ROC-AUC |")
        print("| --- | --- | --- | --- | --- | --- |")
        for row in homedepot_rows(args.data, base=args.base, finetuned=args.finetuned, config_path=args.config,
                                  config=config,
                                  cache=args.cache):
            print(f"| {row[0]} | " + " | ".join(_fmt(x) for x in row[1:]) + " |", flush=True)
            recorded.append(_record("homedepot-dev", row, HD_METRICS))
    if args.only != "homedepot":
        print("\n| Amazon Scientific dev | k=1 NDCG@10 | k=1 Recall@10 | k=1 MRR@10 | k=1 Recall@100 "
              "| k=3 NDCG@10 | k=3 Recall@10 | k=3 MRR@10 | k=3 Recall@100 |")
        print("| --- " * 9 + "|")
        for row in sessions_rows(args.data, config_path=args.config, config=config, cache=args.cache):
            print(f"| {row[0]} | " + " | ".join(_fmt(x) for x in row[1:]) + " |", flush=True)
            recorded.append(_record("amazon-scientific-dev", row, SCI_METRICS))
    print(f"\n({time.time() - t0:.0f} s)")
    _write(args.out, recorded, t0)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
