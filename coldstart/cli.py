"""The ``coldstart`` command: demo, embed, search, score, evaluate, sessions.

Each subcommand builds its objects from the config file and flags and calls the library; failures print one
line of cause (``error: …``) and exit non-zero, with the traceback only under ``--verbose``.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from pathlib import Path

from coldstart.config import config_from_flags as job_config
from coldstart.logs import setup_logging

logger = logging.getLogger("coldstart")


def _load_recommender(config):
    from coldstart.encoders.encoder import Encoder
    from coldstart.artifacts.versions import load_version
    from coldstart.ranking.dense import DenseRecommender
    from coldstart.artifacts.store import open_store

    encoder = Encoder(config.encoder)
    version = load_version(open_store(config.store), expect=encoder.info())
    return DenseRecommender(encoder, version, config.profile)


# ------------------------------------------------------------------------------------------ subcommands


def cmd_embed(args) -> int:
    from pipelines.embed import run_embed_job

    result = run_embed_job(job_config(args))
    print(json.dumps(result.summary(), indent=2))
    return 0


def cmd_search(args) -> int:
    from coldstart.ranking.dense import UserRequest
    from coldstart.ranking.retrievers import make_retriever
    from coldstart.evaluation.trec import read_requests, write_run

    from coldstart.ranking.config import load_retrieval_config

    config = job_config(args)
    recommender = _load_recommender(config)
    chosen = load_retrieval_config(getattr(args, "config", None))
    options = {}
    if args.retriever == "blend":  # weights and tokens chosen on dev; bm25/hybrid stay the published baselines
        options = {"weights": {k: v for k, v in chosen.query_weights.items() if k in ("dense", "bm25")},
                   "bm25_tokens": chosen.query_bm25_tokens}
    if args.reranker:
        from coldstart.ranking.rerank import RerankerConfig

        options["reranker"] = RerankerConfig(model=args.reranker, depth=chosen.rerank_depth,
                                             first_weight=chosen.rerank_first_weight,
                                             device=getattr(args, "device", None) or "auto")
    if getattr(args, "sessions", None):
        if args.retriever != "blend":
            raise SystemExit("--sessions needs --retriever blend (the session signals are blended with the others)")
        options.update(_session_options(args, recommender, chosen))
    retriever = make_retriever(args.retriever, recommender, **options)
    requests = read_requests(args.requests)
    rows = []
    for start in range(0, len(requests), args.batch_size):
        chunk = requests[start:start + args.batch_size]
        rankings = retriever.search([UserRequest(query=r.query, clicks=r.clicks) for r in chunk], args.k)
        rows.extend((r.qid, ranking) for r, ranking in zip(chunk, rankings))
        logger.info("searched %d/%d requests", min(start + args.batch_size, len(requests)), len(requests))
    write_run(args.out, rows, tag=args.tag or f"coldstart-{args.retriever}{'-reranked' if args.reranker else ''}")
    empty = sum(1 for _, ranking in rows if not ranking)
    print(json.dumps({"requests": len(requests), "written": len(rows), "empty_results": empty,
                      "version": recommender.version.version, "out": str(args.out)}))
    return 0


def _session_options(args, recommender, chosen) -> dict:
    """Session signals over the version's items from --sessions (and --attributes), and the clicks-only weights of
    the config's [retrieval.sessions] (``chosen``; its "content" is the blend's "dense"; signals with no data are
    dropped)."""
    from coldstart.signals.sessions import SessionSignals, read_attributes
    from coldstart.evaluation.trec import read_sessions

    labels = read_attributes(args.attributes) if args.attributes else {}
    sessions = SessionSignals(recommender.version.index.ids, (s.items for s in read_sessions(args.sessions)),
                              labels=labels, covisit=chosen.covisit, transitions=chosen.transitions)
    available = {"dense", "bm25", *sessions.names}
    weights = {("dense" if name == "content" else name): w for name, w in chosen.session_weights.items()}
    dropped = sorted(n for n, w in weights.items() if w and n not in available)
    if dropped:
        logger.warning("no data for session signals %s (give --attributes with those columns); blended without",
                       dropped)
    logger.info("session signals: %s", sessions.info)
    return {"sessions": sessions, "click_weights": {n: w for n, w in weights.items() if n in available}}


def _judged_pairs(args):
    """Pairs from --pairs, or every judged pair of --qrels with its query text from --queries."""
    from coldstart.evaluation.trec import read_pairs, read_qrels, read_requests

    if args.pairs:
        return [(p.qid, p.query, p.item_id) for p in read_pairs(args.pairs)]
    if not (args.queries and args.qrels):
        raise ValueError("give --pairs FILE, or both --queries FILE and --qrels FILE")
    queries = {r.qid: r.query for r in read_requests(args.queries) if r.query}
    qrels = read_qrels(args.qrels)
    missing = sorted(set(qrels) - set(queries))
    if missing:
        logger.warning("%d judged queries have no text in %s (first: %s); skipped", len(missing), args.queries,
                       missing[0])
    return [(qid, queries[qid], item_id) for qid in qrels if qid in queries for item_id in qrels[qid]]


def cmd_score(args) -> int:
    from coldstart.evaluation.trec import write_scores

    config = job_config(args)
    pairs = _judged_pairs(args)
    if args.reranker:  # the cross-encoder's logits, comparable across queries (it was trained on the grades)
        import numpy as np

        from coldstart.encoders.encoder import describe_encoder
        from coldstart.artifacts.versions import load_version
        from coldstart.ranking.rerank import CrossEncoder, RerankerConfig
        from coldstart.artifacts.store import open_store

        version = load_version(open_store(config.store), expect=describe_encoder(config.encoder))  # no weights
        texts = version.items.column("text").to_pylist()
        rows = [version.index.row_of.get(p[2]) for p in pairs]
        known = [n for n, r in enumerate(rows) if r is not None]
        cross = CrossEncoder(RerankerConfig(model=args.reranker, device=config.encoder.device))
        scores = np.full(len(pairs), np.nan, dtype=np.float32)
        scores[known] = cross.score([pairs[n][1] for n in known], [texts[rows[n]] for n in known])
    else:
        scores = _load_recommender(config).score_pairs([p[1] for p in pairs], [p[2] for p in pairs])
    by_query: dict[str, dict[str, float]] = {}
    unknown = 0
    for (qid, _, item_id), score in zip(pairs, scores):
        if score != score:  # NaN: the item is not in the index
            unknown += 1
            continue
        by_query.setdefault(qid, {})[item_id] = float(score)
    if unknown:
        logger.warning("%d pairs name items not in the index; they get no score", unknown)
    write_scores(args.out, by_query)
    print(json.dumps({"pairs": len(pairs), "scored": len(pairs) - unknown, "unknown_items": unknown,
                      "out": str(args.out)}))
    return 0


def cmd_sessions(args) -> int:
    from coldstart.evaluation.trec import read_sessions, sessions_to_requests_and_qrels

    sessions = read_sessions(args.sessions)
    requests, qrels = sessions_to_requests_and_qrels(sessions, args.k)
    with open(args.requests_out, "w") as fh:
        for r in requests:
            fh.write(json.dumps({"qid": r.qid, "query": r.query, "clicks": list(r.clicks)}) + "\n")
    with open(args.qrels_out, "w") as fh:
        for qid, grades in qrels.items():
            for item_id, grade in grades.items():
                fh.write(f"{qid}\t0\t{item_id}\t{grade}\n")
    print(json.dumps({"users": len(sessions), "requests": len(requests), "skipped": len(sessions) - len(requests)}))
    return 0


def cmd_evaluate(args) -> int:
    from coldstart.evaluation.metrics import evaluate_run, roc_auc_judged
    from coldstart.evaluation.trec import read_qrels, read_run, read_scores

    qrels = read_qrels(args.qrels)
    result = {"relevant_grade": args.relevant_grade}
    if args.run:
        result.update(evaluate_run(qrels, read_run(args.run), relevant_grade=args.relevant_grade))
    if args.scores:
        negative_max = args.negative_grade if args.negative_grade is not None else args.relevant_grade - 1
        result["roc_auc"] = roc_auc_judged(qrels, read_scores(args.scores), positive_min_grade=args.relevant_grade,
                                           negative_max_grade=negative_max)
    print(json.dumps(result, indent=2))
    return 0


def cmd_demo(args) -> int:
    from jobs.demo import run_demo

    run_demo(Path(args.workdir), model=args.model)
    return 0


# ------------------------------------------------------------------------------------------------ parser


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="coldstart", description=__doc__.splitlines()[0])
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logs and full tracebacks")
    sub = parser.add_subparsers(dest="command", required=True)

    def common(p, *, catalog=False):
        p.add_argument("--config", help="TOML or JSON job config (flags override it)")
        p.add_argument("--store", help="artifact store: local path, file://… or s3://bucket/prefix")
        p.add_argument("--model", help="encoder: 'default', a Hugging Face model dir or s3:// prefix")
        p.add_argument("--device", choices=["auto", "cpu", "cuda"])
        if catalog:
            p.add_argument("--catalog", help="catalog file or folder/prefix (Parquet, CSV, JSON Lines)")
            p.add_argument("--id-col", help="id column (default item_id)")
            p.add_argument("--text-cols", help="comma-separated columns composed into the text (default title)")
            p.add_argument("--template", help="text template over the text columns, e.g. '{title}. {brand}'")
            p.add_argument("--index", choices=["flat", "hnsw", "ivf_pq", "ivf_sq8"])
            p.add_argument("--actors", type=int, help="embedding actors in the Ray Data pool")

    p = sub.add_parser("demo", help="the main job on embedded defaults: sample catalog → index → recommendations")
    p.add_argument("--workdir", default="coldstart-demo", help="where the sample catalog and the store go")
    p.add_argument("--model", default="default")
    p.set_defaults(func=cmd_demo)

    p = sub.add_parser("embed", help="embed a catalog with Ray Data and publish an index version")
    common(p, catalog=True)
    p.set_defaults(func=cmd_embed)

    p = sub.add_parser("search", help="run a requests file against the published index; writes a TREC run")
    common(p)
    p.add_argument("--requests", required=True, help="qid<TAB>query lines, or JSON Lines {qid, query, clicks}")
    p.add_argument("--out", required=True)
    p.add_argument("--k", type=int, default=100)
    p.add_argument("--retriever", choices=["dense", "bm25", "hybrid", "blend"], default="dense",
                   help="blend: weighted z-scores of dense and BM25, weights from the config's [retrieval.homedepot]")
    p.add_argument("--reranker", help="a cross-encoder (jobs.finetune --table reranker, or any one-label HF "
                   "sequence classifier; local dir or s3://) re-scoring the top [retrieval] rerank_depth")
    p.add_argument("--sessions", help="with --retriever blend: other users' sessions, JSON Lines "
                   '{"user_id": ..., "items": [...]}; clicks-only requests then use [retrieval.sessions]')
    p.add_argument("--attributes", help="with --sessions: item_id + category and/or brand columns (Parquet, CSV, "
                   "JSON Lines) for the category/brand transitions")
    p.add_argument("--batch-size", type=int, default=256)
    p.add_argument("--tag", help="run tag (default coldstart-<retriever>)")
    p.set_defaults(func=cmd_search)

    p = sub.add_parser("score", help="score qid<TAB>query<TAB>item_id pairs by cosine similarity (or a re-ranker)")
    common(p)
    p.add_argument("--pairs", help="qid<TAB>query<TAB>item_id lines")
    p.add_argument("--queries", help="instead of --pairs: qid<TAB>query lines, scored against every pair ...")
    p.add_argument("--qrels", help="... judged in this qrels file")
    p.add_argument("--out", required=True, help="qid<TAB>item_id<TAB>score lines")
    p.add_argument("--reranker", help="score with this cross-encoder instead of the encoder's cosine")
    p.set_defaults(func=cmd_score)

    p = sub.add_parser("sessions", help="turn user sessions into new-user requests (first k clicks) and qrels")
    p.add_argument("--sessions", required=True, help='JSON Lines {"user_id": ..., "items": [...]}')
    p.add_argument("--k", type=int, default=3, help="clicks given to the recommender; later items are relevant")
    p.add_argument("--requests-out", required=True)
    p.add_argument("--qrels-out", required=True)
    p.set_defaults(func=cmd_sessions)

    p = sub.add_parser("evaluate", help="NDCG@10, Recall@10/100, MRR@10 of a run; ROC-AUC of pair scores")
    p.add_argument("--qrels", required=True)
    p.add_argument("--run")
    p.add_argument("--scores", help="qid item_id score file from `coldstart score`, for ROC-AUC")
    p.add_argument("--relevant-grade", type=int, default=1,
                   help="grades ≥ this are relevant (Home Depot: 5); NDCG uses the grades as gains")
    p.add_argument("--negative-grade", type=int,
                   help="ROC-AUC negatives: grades ≤ this (default relevant-grade − 1; Home Depot: 3)")
    p.set_defaults(func=cmd_evaluate)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    setup_logging(args.verbose)
    if args.command == "evaluate" and not (args.run or args.scores):
        print("error: give --run and/or --scores", file=sys.stderr)
        return 2
    try:
        return args.func(args)
    except KeyboardInterrupt:
        return 130
    except Exception as err:  # one line of cause first; details only when asked for
        print(f"error: {err}", file=sys.stderr)
        if args.verbose:
            raise
        logger.debug("traceback", exc_info=True)
        return 1


if __name__ == "__main__":
    sys.exit(main())
