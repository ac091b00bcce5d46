"""Prune the encoder to fewer layers and distil the full one back into it, on the shop's own texts.

    python -m jobs.prune --catalog CATALOG [--queries queries_train.tsv] [--model default] [--keep 0,2,4]
        [--steps 1000] [--config FILE] --out models/minilm-l3

The student keeps the listed layers of the teacher and learns its normalised embeddings of the catalog's texts (read
as ``coldstart embed`` reads them: the config's ``[schema]``) and of past queries; ``--out`` is a Hugging Face model
directory for ``--model`` anywhere (:mod:`coldstart.training.prune`). Prints the run's numbers as JSON.
"""

from __future__ import annotations

import argparse
import json
import sys


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--catalog", required=True, help="catalog file or folder/prefix (Parquet, CSV, JSON Lines)")
    parser.add_argument("--queries", help="qid<TAB>query lines whose queries are distilled too")
    parser.add_argument("--model", default="default", help="the teacher: 'default' or a Hugging Face model dir")
    parser.add_argument("--keep", default="0,2,4", help="teacher layers the student keeps")
    parser.add_argument("--steps", type=int, default=1000)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--config", help="a job config whose [schema] says how to read the catalog")
    parser.add_argument("--out", required=True)
    parser.add_argument("-v", "--verbose", action="store_true")
    args = parser.parse_args(argv)
    from coldstart.config import load_config
    from coldstart.evaluation.trec import read_requests
    from coldstart.logs import setup_logging
    from coldstart.training.prune import PruneConfig, prune_and_distil
    from coldstart.training.sources import read_catalog_texts

    setup_logging(args.verbose)
    try:
        keep = tuple(int(x) for x in args.keep.split(","))
        texts = list(read_catalog_texts(args.catalog, load_config(args.config).schema).values())
        if args.queries:
            texts += [r.query for r in read_requests(args.queries) if r.query]
        summary = prune_and_distil(args.model, texts, args.out,
                                   PruneConfig(keep=keep, steps=args.steps, batch_size=args.batch_size))
    except Exception as err:  # one line of cause, as every job
        print(f"error: {err}", file=sys.stderr)
        if args.verbose:
            raise
        return 1
    print(json.dumps(summary, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
