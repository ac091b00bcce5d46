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
from coldstart.encoders.onnx_backend import BACKENDS
from coldstart.logs import LOG_FORMAT_ENV, LOG_FORMATS, setup_logging

logger = logging.getLogger("coldstart")


# ------------------------------------------------------------------------------------------ subcommands


def cmd_embed(args) -> int:
    from pipelines.embed import run_embed_job

    result = run_embed_job(job_config(args))
    print(json.dumps(result.summary(), indent=2))
    return 0


def _pipeline(args, config, *, retriever: str):
    """The ranking pipeline of ``coldstart search`` and ``score``: the store's live version, the config's
    ``[retrieval]`` table, the flags' sessions, attributes and re-ranker."""
    import dataclasses

    from coldstart.ranking.config import load_retrieval_config
    from coldstart.ranking.pipeline import RankingPipeline

    chosen = load_retrieval_config(getattr(args, "config", None))
    reranker = getattr(args, "reranker", None)
    if reranker and args.command == "score":  # pairs scored by the cross-encoder's logit
        chosen = dataclasses.replace(chosen, pair_score="reranker")
    elif not reranker and chosen.pair_score == "reranker":
        logger.info("[retrieval] pair_score = 'reranker' but no --reranker: pairs get the encoder's cosine")
        chosen = dataclasses.replace(chosen, pair_score="dense")
    sessions = getattr(args, "sessions", None)
    if sessions and retriever != "blend":
        raise SystemExit("--sessions needs --retriever blend (the session signals are blended with the others)")
    ranker = getattr(args, "ranker", None)
    if ranker and retriever != "blend":
        raise SystemExit("--ranker needs --retriever blend (the ranker orders the blend's candidates)")
    return RankingPipeline.from_store(config, chosen, retriever=retriever, sessions=sessions,
                                      attributes=getattr(args, "attributes", None),
                                      reranker=reranker, ranker=ranker)


def cmd_search(args) -> int:
    from coldstart.evaluation.runs import search_to_run

    pipeline = _pipeline(args, job_config(args), retriever=args.retriever)
    tag = args.tag or (f"coldstart-{args.retriever}{'-reranked' if args.reranker else ''}"
                       f"{'-ranker' if args.ranker else ''}")
    print(json.dumps(search_to_run(pipeline, args.requests, args.out, k=args.k, batch_size=args.batch_size, tag=tag)))
    return 0


def cmd_score(args) -> int:
    from coldstart.evaluation.runs import score_pairs
    from coldstart.evaluation.trec import judged_pairs, read_pairs, write_scores
    from coldstart.ranking.config import load_retrieval_config

    config = job_config(args)
    if args.pairs:
        pairs = [(p.qid, p.query, p.item_id) for p in read_pairs(args.pairs)]
    elif args.queries and args.qrels:
        pairs = judged_pairs(args.queries, args.qrels)
    else:
        raise ValueError("give --pairs FILE, or both --queries FILE and --qrels FILE")
    # the config's pair_score decides (default: the encoder's cosine); --reranker: the cross-encoder's logits,
    # comparable across queries (it was trained on the grades), plus [retrieval] rerank_pair_dense_weight x cosine
    blend = load_retrieval_config(getattr(args, "config", None)).pair_score == "blend" and not args.reranker
    pipeline = _pipeline(args, config, retriever="blend" if blend else "dense")
    by_query, unknown = score_pairs(pipeline, pairs)
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
    from jobs.demo import run_demo, serve_demo

    run_demo(Path(args.workdir), model=args.model)
    if args.serve:
        serve_demo(Path(args.workdir), model=args.model, port=args.port)
    return 0


# ------------------------------------------------------------------------------------------------ parser


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="coldstart", description=__doc__.splitlines()[0])
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logs and full tracebacks")
    parser.add_argument("--log-format", choices=LOG_FORMATS, help="text (default) or json: one JSON object per line "
                        f"(timestamp, level, logger, message, fields), for log pipelines; default ${LOG_FORMAT_ENV}, "
                        "which Ray workers and jobs started from here inherit")
    sub = parser.add_subparsers(dest="command", required=True)

    def common(p, *, catalog=False):
        p.add_argument("--config", help="TOML or JSON job config (flags override it)")
        p.add_argument("--store", help="artifact store: local path, file://… or s3://bucket/prefix")
        p.add_argument("--model", help="encoder: 'default', a Hugging Face model dir or s3:// prefix")
        p.add_argument("--device", choices=["auto", "cpu", "cuda"])
        p.add_argument("--backend", choices=BACKENDS, help="encoder runtime: torch (default), onnx (fp32) or "
                       "onnx-int8 (dynamic int8, CPU); the ONNX files are exported once per model and cached")
        if catalog:
            p.add_argument("--catalog", help="catalog file or folder/prefix (Parquet, CSV, JSON Lines)")
            p.add_argument("--id-col", help="id column (default item_id)")
            p.add_argument("--text-cols", help="comma-separated columns composed into the text (default title)")
            p.add_argument("--template", help="text template over the text columns, e.g. '{title}. {brand}'")
            p.add_argument("--required-cols", help="comma-separated columns a row must have non-empty, or it is "
                           "quarantined (e.g. title)")
            p.add_argument("--index", choices=["flat", "hnsw", "ivf_pq", "ivf_sq8"])
            p.add_argument("--actors", type=int, help="embedding actors in the Ray Data pool")

    p = sub.add_parser("demo", help="the main job on embedded defaults: sample catalog → index → recommendations")
    p.add_argument("--workdir", default="coldstart-demo", help="where the sample catalog and the store go")
    p.add_argument("--model", default="default")
    p.add_argument("--serve", action="store_true", help="then serve the store on 127.0.0.1 with the try-it page "
                   "at / (the Serve app), until Ctrl-C or SIGTERM")
    p.add_argument("--port", type=int, default=8000, help="with --serve: the HTTP port (default 8000)")
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
                   help="blend: weighted z-scores of dense and BM25, weights from the config's [retrieval.query]")
    p.add_argument("--reranker", help="a cross-encoder (jobs.finetune --table reranker, or any one-label HF "
                   "sequence classifier; local dir or s3://) re-scoring the top [retrieval] rerank_depth")
    p.add_argument("--sessions", help="with --retriever blend: other users' sessions, JSON Lines "
                   '{"user_id": ..., "items": [...]}; clicks-only requests then use [retrieval.clicks]')
    p.add_argument("--attributes", help="with --sessions: item_id + category and/or brand columns (Parquet, CSV, "
                   "JSON Lines), or a text column read with [retrieval] attributes_pattern, for the category/brand "
                   "transitions")
    p.add_argument("--ranker", help="with --retriever blend: the learned ranker of the store (an id, or latest; "
                   "python -m jobs.fit_ranker) orders the blend's candidates; give it the --reranker and "
                   "--sessions it was trained with")
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
    try:
        log_format = setup_logging(args.verbose, args.log_format)
    except ValueError as err:  # a bad COLDSTART_LOG_FORMAT
        print(f"error: {err}", file=sys.stderr)
        return 2
    if args.command == "evaluate" and not (args.run or args.scores):
        print("error: give --run and/or --scores", file=sys.stderr)
        return 2
    try:
        return args.func(args)
    except KeyboardInterrupt:
        return 130
    except Exception as err:  # one line of cause first; details only when asked for
        if log_format == "json":  # stderr stays one JSON object per line
            logger.error("error: %s", err, extra={"error": type(err).__name__})
        else:
            print(f"error: {err}", file=sys.stderr)
        if args.verbose:
            raise
        logger.debug("traceback", exc_info=True)
        return 1


if __name__ == "__main__":
    sys.exit(main())
