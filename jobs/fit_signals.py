"""Fit other users' session signals over an index version's items and publish them beside it.

    python -m jobs.fit_signals --config configs/laptop.toml --sessions sessions.jsonl [--attributes items.parquet]
                               [--version V]

Co-visitation (a sparse top-N neighbours matrix) and category/brand transitions, with the settings of the
config's [retrieval] table, over the items of ``--version`` (default: the live one). Serving replicas with
``session_signals: true`` pick them up at their next poll, without a restart; the nightly job does the same when
its config has a [signals] table. Prints the signals manifest as JSON. Files may be local or s3://.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys

from jobs.entry import base_parser, job_config, run_job


def fit_signals(args: argparse.Namespace) -> None:
    from coldstart.artifacts.lease import acquire as acquire_lease
    from coldstart.artifacts.manifest import latest_version
    from coldstart.artifacts.store import open_store
    from coldstart.artifacts.versions import load_version
    from coldstart.signals.artifact import fit_and_publish

    config = job_config(args)
    sessions = args.sessions or config.signals.sessions
    if not sessions:
        raise ValueError("no sessions given: pass --sessions FILE or set [signals] sessions in the config")
    store = open_store(config.store)
    with acquire_lease(store, f"fit signals {sessions}", ttl_s=config.embed.lease_ttl_s) as lease:
        version = args.version or latest_version(store)
        if version is None:
            raise LookupError(f"no index version is published in {store.uri}: run `coldstart embed` first")
        ids = load_version(store, version).index.ids
        lease.check()
        manifest = fit_and_publish(store, version, ids, sessions=sessions,
                                   attributes=args.attributes or config.signals.attributes, config=config.retrieval)
    print(json.dumps(dataclasses.asdict(manifest), indent=2), flush=True)


def build_parser() -> argparse.ArgumentParser:
    parser = base_parser(__doc__.splitlines()[0])
    parser.add_argument("--sessions", help="JSON Lines {user_id, items}, local or s3:// (default: [signals] sessions)")
    parser.add_argument("--attributes", help="item_id + category/brand table (default: [signals] attributes)")
    parser.add_argument("--version", help="the index version to fit over (default: the live one)")
    return parser


def main(argv: list[str] | None = None) -> int:
    return run_job(fit_signals, build_parser(), argv)


if __name__ == "__main__":
    sys.exit(main())
