"""The ablation table of BENCHMARKS.md: each signal added in turn, on the dev splits.

    python -m benchmarks.ablation --data ../shared/data --finetuned MODEL_DIR [--config configs/train-cpu.toml]
        [--cache DIR]
    python -m benchmarks.ablation --data ../shared/data --compare plain=DIR fgm=DIR ...   # one model per training
        [--bm25-weights 0.1 0.2] [--reranker CROSS_ENCODER_DIR [--rerank-weights 0.5 2]]

Home Depot dev (retrieval over the whole catalog; NDCG@10 graded, Recall/MRR with grade ≥ 5, ROC-AUC over judged
pairs 5+ vs ≤ 3) and Amazon Scientific dev (k = 1 and 3 clicks). Prints markdown rows. Rank-fusion rows have no
ROC-AUC: RRF gives no score to a judged product outside both top-100 lists. Judged pairs are scored as the
config's ``pair_score`` says (default: the encoder's cosine, so every blend row of one model has the same ROC-AUC).
"""

from __future__ import annotations

import argparse
import json
import logging
import time
from pathlib import Path

import numpy as np

from benchmarks.quality import QuerySystem, SessionSystem, as_scores, rank_queries, rank_sessions
from coldstart.ranking.fusion import top_k
from coldstart.ranking.config import load_retrieval_config

logger = logging.getLogger("benchmarks.ablation")


def _fmt(x) -> str:
    return "" if x is None else f"{x:.3f}"


def homedepot_rows(data: Path, *, base: str, finetuned: str, config, cache: Path | None) -> list[tuple]:
    from coldstart.ranking.fusion import reciprocal_rank_fusion
    from coldstart.evaluation.metrics import evaluate_run, roc_auc_judged
    from coldstart.evaluation.trec import read_qrels, read_requests

    hd = data / "homedepot"
    requests = [r for r in read_requests(hd / "queries_dev.tsv") if r.query]
    qrels = read_qrels(hd / "qrels_dev.tsv")
    rows = []

    def score(name, weights, system):
        run, pairs = rank_queries(system, requests, weights, qrels)
        m = evaluate_run(qrels, as_scores(run), relevant_grade=5)
        auc = None  # pair scores are the encoder's cosine (pair_score="dense"): meaningless for a bm25-only row
        if weights.get("dense") or config.pair_score == "blend":
            auc = roc_auc_judged(qrels, pairs, positive_min_grade=5, negative_max_grade=3)["auc"]
        rows.append((name, m["ndcg@10"], m["recall@10"], m["recall@100"], m["mrr@10"], auc))
        logger.info("%s %s", name, rows[-1][1:])

    def rrf(name, system):
        vectors = system.encode_queries([r.query for r in requests])
        run = {}
        for start in range(0, len(requests), 256):
            chunk = requests[start:start + 256]
            sig = system.signals([r.query for r in chunk], vectors[start:start + 256], ("dense", "bm25"))
            for b, r in enumerate(chunk):
                lists = [[(system.ids[i], float(sig[s][b][i])) for i in top_k(sig[s][b], 100)]
                         for s in ("dense", "bm25") if sig[s][b].any()]
                run[r.qid] = reciprocal_rank_fusion(lists, k=60, depth=100)
        m = evaluate_run(qrels, as_scores(run), relevant_grade=5)
        rows.append((name, m["ndcg@10"], m["recall@10"], m["recall@100"], m["mrr@10"], None))
        logger.info("%s %s", name, rows[-1][1:])

    w = config.query_weights
    import dataclasses

    # baselines as BENCHMARK.md defines them: bm25s tokenisation
    system = QuerySystem(hd, model=base, config=dataclasses.replace(config, query_bm25_tokens="bm25s"),
                         cache_dir=cache)
    score("bm25 (baseline)", {"bm25": 1.0}, system)
    score("base model (minilm)", {"dense": 1.0}, system)
    rrf("base + bm25, rank fusion (baseline hybrid)", system)
    system = QuerySystem(hd, model=finetuned, config=dataclasses.replace(config, query_bm25_tokens="bm25s"),
                         cache_dir=cache)
    score("+ fine-tuning (dense only)", {"dense": 1.0}, system)
    rrf("+ hybrid: bm25, rank fusion", system)
    score("+ hybrid: bm25, weighted z-scores", w, system)
    system = QuerySystem(hd, model=finetuned, config=config, cache_dir=cache)
    score(f"+ bm25 tokens={config.query_bm25_tokens!r} (the default config)", w, system)
    score("+ judged neighbours (weight 0.3; not in the default)", dict(w, neighbours=0.3), system)
    return rows


class _MemoScores:
    """A cross-encoder whose pair scores are computed once per (query, text): re-ranking the same candidates with
    several fusion weights costs one pass."""

    def __init__(self, cross):
        self.cross, self.memo = cross, {}

    def score(self, queries, texts):
        todo = sorted({(q, t) for q, t in zip(queries, texts)} - self.memo.keys())
        if todo:
            self.memo.update(zip(todo, self.cross.score([q for q, _ in todo], [t for _, t in todo])))
        return np.array([self.memo[(q, t)] for q, t in zip(queries, texts)], np.float32)


def model_rows(data: Path, models: dict[str, str], *, config, cache: Path | None,
               bm25_weights: list[float] = (), reranker: str | None = None,
               rerank_weights: list[float] = (), pair_dense_weights: list[float] = ()) -> list[tuple]:
    """Home Depot dev rows for several fine-tuned models: dense only, the config's blend, and the blend with each
    of ``bm25_weights`` instead of the config's BM25 weight (the one weight chosen on dev). With ``reranker``:
    also the default blend re-ranked by it, with the config's first-stage weight and each of ``rerank_weights``
    (judged pairs then scored by the cross-encoder; plus each of ``pair_dense_weights`` × the cosine)."""
    import dataclasses

    from coldstart.evaluation.metrics import evaluate_run, roc_auc_judged
    from coldstart.evaluation.trec import read_qrels, read_requests

    hd = data / "homedepot"
    requests = [r for r in read_requests(hd / "queries_dev.tsv") if r.query]
    qrels = read_qrels(hd / "qrels_dev.tsv")
    first_stage = dataclasses.replace(config, pair_score="dense") if config.pair_score == "reranker" else config
    rows = []

    def row(label, system, weights, ranker=None):
        run, pairs = rank_queries(system, requests, weights, qrels, ranker)
        m = evaluate_run(qrels, as_scores(run), relevant_grade=5)
        auc = roc_auc_judged(qrels, pairs, positive_min_grade=5, negative_max_grade=3)["auc"]
        rows.append((label, m["ndcg@10"], m["recall@10"], m["recall@100"], m["mrr@10"], auc))
        logger.info("%s %s", label, rows[-1][1:])

    for name, model in models.items():
        system = QuerySystem(hd, model=model, config=first_stage, cache_dir=cache)
        row(f"{name} (dense only)", system, {"dense": 1.0})
        row(f"{name} + the default blend", system, config.query_weights)
        for w in bm25_weights:
            row(f"{name} + blend with bm25 {w}", system, dict(config.query_weights, bm25=w))
        if reranker:
            from coldstart.training.sources import read_catalog_texts
            from coldstart.ranking.rerank import Reranker, RerankerConfig

            texts = read_catalog_texts(hd / "catalog.parquet")
            system = QuerySystem(hd, model=model, config=dataclasses.replace(config, pair_score="reranker"),
                                 cache_dir=cache)
            ranker = Reranker(RerankerConfig(model=reranker, depth=config.rerank_depth), texts)
            ranker.cross = _MemoScores(ranker.cross)  # one model, each pair scored once for every row below
            for w in [config.rerank_first_weight, *rerank_weights]:
                ranker.config = dataclasses.replace(ranker.config, first_weight=w)
                row(f"{name} + the default blend + re-ranker (top {config.rerank_depth}, first-stage weight {w})",
                    system, config.query_weights, ranker)
            ranker.config = dataclasses.replace(ranker.config, first_weight=config.rerank_first_weight)
            for w in pair_dense_weights:
                system.config = dataclasses.replace(system.config, rerank_pair_dense_weight=w)
                row(f"{name} + the default blend + re-ranker; pair scores + {w} × cosine", system,
                    config.query_weights, ranker)
    return rows


def sessions_rows(data: Path, *, config, cache: Path | None) -> list[tuple]:
    from coldstart.evaluation.metrics import evaluate_run
    from coldstart.evaluation.trec import read_sessions, sessions_to_requests_and_qrels

    sci = data / "amazon_scientific"
    dev = read_sessions(sci / "sessions_dev.jsonl")
    system = SessionSystem(sci, model="default", config=config, cache_dir=cache)
    rows = []
    for name, weights in [("content (minilm, baseline)", {"content": 1.0}), ("bm25 (baseline)", {"bm25": 1.0}),
                          ("popularity (baseline)", {"popularity": 1.0}),
                          ("+ session signal: co-visitation only", {"covisit": 1.0}),
                          ("+ blend co-visitation + content + bm25 + popularity",
                           {k: v for k, v in config.session_weights.items() if k not in ("category", "brand")}),
                          ("+ category and brand transitions", {"category": 1.0, "brand": 1.0}),
                          ("+ blend of all with category and brand transitions (default)", config.session_weights)]:
        row = [name]
        for k in (1, 3):
            requests, qrels = sessions_to_requests_and_qrels(dev, k)
            m = evaluate_run(qrels, as_scores(rank_sessions(system, requests, weights)))
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
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    for noisy in ("bm25s", "transformers", "coldstart"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    if not (args.data / "homedepot").is_dir():
        print(f"skipped: no benchmark data under {args.data}")
        return 0
    config = load_retrieval_config(args.config)
    t0 = time.time()
    if not args.compare and config.pair_score == "reranker":  # the table's rows have no re-ranker
        import dataclasses

        config = dataclasses.replace(config, pair_score="dense")
    if args.compare:
        models = dict(item.split("=", 1) for item in args.compare)
        print("| Home Depot dev | NDCG@10 | Recall@10 | Recall@100 | MRR@10 | ROC-AUC |")
        print("| --- | --- | --- | --- | --- | --- |")
        for row in model_rows(args.data, models, config=config, cache=args.cache, bm25_weights=args.bm25_weights,
                              reranker=args.reranker, rerank_weights=args.rerank_weights,
                              pair_dense_weights=args.pair_dense_weights):
            print(f"| {row[0]} | " + " | ".join(_fmt(x) for x in row[1:]) + " |", flush=True)
        print(f"\n({time.time() - t0:.0f} s)")
        return 0
    if not args.finetuned and args.only != "sessions":
        parser.error("--finetuned MODEL_DIR is needed for the Home Depot rows (or use --compare or --only sessions)")
    if args.only != "sessions":
        print("| Home Depot dev | NDCG@10 | Recall@10 | Recall@100 | MRR@10 | ROC-AUC |")
        print("| --- | --- | --- | --- | --- | --- |")
        for row in homedepot_rows(args.data, base=args.base, finetuned=args.finetuned, config=config,
                                  cache=args.cache):
            print(f"| {row[0]} | " + " | ".join(_fmt(x) for x in row[1:]) + " |", flush=True)
    if args.only != "homedepot":
        print("\n| Amazon Scientific dev | k=1 NDCG@10 | k=1 Recall@10 | k=1 MRR@10 | k=1 Recall@100 "
              "| k=3 NDCG@10 | k=3 Recall@10 | k=3 MRR@10 | k=3 Recall@100 |")
        print("| --- " * 9 + "|")
        for row in sessions_rows(args.data, config=config, cache=args.cache):
            print(f"| {row[0]} | " + " | ".join(_fmt(x) for x in row[1:]) + " |", flush=True)
    print(f"\n({time.time() - t0:.0f} s)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
