"""The nightly job: re-embed what changed in the catalog and publish a new index version.

    python -m jobs.reembed --config configs/laptop.toml [--catalog URI] [--store URI]

Incremental by design (see :mod:`pipelines.embed`): only new and changed products are embedded, unchanged
vectors are carried over from the live version, deleted products are dropped, and a run with no catalog change
publishes nothing. Prints the run summary as JSON on stdout; ``report.json`` beside the new version holds the
same counts and seconds. Exit status 0 only on success (see :mod:`jobs.entry`).
"""

from __future__ import annotations

import argparse
import json
import sys

from jobs.entry import base_parser, job_config, run_job


def reembed(args: argparse.Namespace) -> None:
    from pipelines.embed import run_embed_job

    result = run_embed_job(job_config(args))
    print(json.dumps(result.summary(), indent=2), flush=True)


def build_parser() -> argparse.ArgumentParser:
    parser = base_parser(__doc__.splitlines()[0])
    parser.add_argument("--catalog", help="override the config's catalog: file or folder/prefix, local or s3://")
    return parser


def main(argv: list[str] | None = None) -> int:
    return run_job(reembed, build_parser(), argv)


if __name__ == "__main__":
    sys.exit(main())
