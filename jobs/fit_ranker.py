"""Train the learned ranker (LightGBM LambdaRank) over the live version's blend candidates and publish it.

    python -m jobs.fit_ranker --config configs/train-cpu.toml --store STORE \\
        --queries queries.tsv --qrels qrels.tsv [--reranker CROSS_ENCODER_DIR] [--encoder-queries FILE]
    python -m jobs.fit_ranker --config configs/train-cpu.toml --store STORE \\
        --sessions sessions_train.jsonl [--attributes items.parquet]

Queries train the model of query requests; sessions (each user's first 1 and 3 items as clicks, the rest
relevant) the model of clicks-only requests; give both to train both into one ranker. No leakage: click
features come from session signals fitted on the other folds of the sessions; query features from the config's
encoder and ``--reranker`` as given, so those must not have been fine-tuned on these queries — pass the queries
file they were fine-tuned on as ``--encoder-queries`` and any overlap is refused. Prints the ranker manifest as
JSON; ``coldstart search --ranker latest`` and the Serve app (``ranker: latest``) read it from the store.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys

from jobs.entry import base_parser, job_config, run_job


def fit_ranker(args: argparse.Namespace) -> None:
    from coldstart.artifacts.store import open_store
    from coldstart.ranking.config import RetrievalConfig
    from coldstart.ranking.ltr import RankerParams
    from coldstart.ranking.pipeline import load_recommender
    from coldstart.ranking.ranker_training import train_and_publish

    config = job_config(args)
    manifest = train_and_publish(
        open_store(config.store), load_recommender(config), config.retrieval or RetrievalConfig(),
        depth=args.depth, reranker=args.reranker, queries=args.queries, qrels=args.qrels,
        encoder_queries=args.encoder_queries, sessions=args.sessions, attributes=args.attributes, folds=args.folds,
        params=RankerParams(threads=args.threads, seed=args.seed), device=config.encoder.device)
    print(json.dumps(dataclasses.asdict(manifest), indent=2, default=str), flush=True)


def build_parser() -> argparse.ArgumentParser:
    parser = base_parser(__doc__.splitlines()[0])
    parser.add_argument("--queries", help="judged queries (qid<TAB>query) for the query model")
    parser.add_argument("--qrels", help="their judgments (TREC qrels, graded)")
    parser.add_argument("--reranker", help="the cross-encoder whose logit is a feature (it must serve with the ranker)")
    parser.add_argument("--encoder-queries", help="the queries file the encoder and --reranker were fine-tuned on: "
                        "refused when it shares a query with --queries")
    parser.add_argument("--sessions", help="training sessions (JSON Lines {user_id, items}) for the clicks model")
    parser.add_argument("--attributes", help="item_id + category/brand table for the sessions' label features")
    parser.add_argument("--folds", type=int, default=5, help="out-of-fold session signals (default 5)")
    parser.add_argument("--depth", type=int, default=100, help="blend candidates the ranker orders (default 100)")
    parser.add_argument("--threads", type=int, default=2, help="LightGBM threads (default 2)")
    parser.add_argument("--seed", type=int, default=0)
    return parser


def main(argv: list[str] | None = None) -> int:
    return run_job(fit_ranker, build_parser(), argv)


if __name__ == "__main__":
    sys.exit(main())
