"""Evaluate the live index version: search a requests file, write a TREC run, score it against qrels.

    python -m jobs.evaluate --config configs/laptop.toml --requests queries_dev.tsv --qrels qrels_dev.tsv \
        [--store URI] [--retriever dense] [--k 100] [--relevant-grade 5] [--out-dir eval-out]

The same two steps as ``coldstart search`` and ``coldstart evaluate``, through the same library functions, in one
process, so a nightly pipeline can check a freshly published version before anyone relies on it. Prints the
search summary and the metrics as JSON on stdout; the run file goes to ``<out-dir>/run.trec``.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from jobs.entry import base_parser, job_config, run_job


def evaluate(args: argparse.Namespace) -> None:
    import json

    from coldstart.evaluation.metrics import evaluate_run
    from coldstart.evaluation.runs import search_to_run
    from coldstart.evaluation.trec import read_qrels, read_run
    from coldstart.ranking.config import load_retrieval_config
    from coldstart.ranking.pipeline import RankingPipeline

    out_dir = Path(args.out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    run_file = out_dir / "run.trec"
    pipeline = RankingPipeline.from_store(job_config(args), load_retrieval_config(args.config),
                                          retriever=args.retriever)
    print(json.dumps(search_to_run(pipeline, args.requests, run_file, k=args.k, tag=f"coldstart-{args.retriever}")))
    metrics = evaluate_run(read_qrels(args.qrels), read_run(run_file), relevant_grade=args.relevant_grade)
    print(json.dumps({"relevant_grade": args.relevant_grade, **metrics}, indent=2))


def build_parser() -> argparse.ArgumentParser:
    parser = base_parser(__doc__.splitlines()[0])
    parser.add_argument("--requests", required=True, help="qid<TAB>query lines, or JSON Lines {qid, query, clicks}")
    parser.add_argument("--qrels", required=True, help="TREC qrels: qid 0 item_id grade")
    parser.add_argument("--retriever", choices=["dense", "bm25", "hybrid", "blend"], default="dense")
    parser.add_argument("--k", type=int, default=100)
    parser.add_argument("--relevant-grade", type=int, default=1, help="grades ≥ this are relevant (Home Depot: 5)")
    parser.add_argument("--out-dir", default="eval-out", help="local folder for run.trec")
    return parser


def main(argv: list[str] | None = None) -> int:
    return run_job(evaluate, build_parser(), argv)


if __name__ == "__main__":
    sys.exit(main())
