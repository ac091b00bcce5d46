"""Fine-tune the encoder (or the re-ranker) on a shop's judged queries with Ray Train, then publish the model.

    python -m jobs.finetune --config configs/train-cpu.toml \\
        --queries DATA/homedepot/queries_train.tsv --qrels DATA/homedepot/qrels_train.tsv \\
        --catalog DATA/homedepot/catalog.parquet --out ./models [--run-id ID] [--set key=value ...]

``--table reranker`` reads the ``[reranker]`` table instead of ``[train]``: a cross-encoder
(``objective = "cross_encoder"``) trained on every judged pair, for ``coldstart search --reranker``.

Prints the model directory, the published URI and the training metrics as JSON. ``RAY_ADDRESS`` picks the
cluster; without it a local Ray starts on loopback.
"""

from __future__ import annotations

import argparse
import ast
import datetime as dt
import json
import sys
from pathlib import Path

from coldstart.config import load_config
from coldstart.logs import LOG_FORMAT_ENV, LOG_FORMATS, setup_logging
from coldstart.training.config import load_train_config, train_config_from_dict


def parse_overrides(pairs: list[str]) -> dict:
    """``["lr=1e-5", "adversarial.method='fgm'"]`` → nested dict (values parsed as Python literals)."""
    out: dict = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep:
            raise SystemExit(f"--set {pair!r}: use key=value, e.g. --set max_steps=100")
        try:
            parsed = ast.literal_eval(value)
        except (ValueError, SyntaxError):
            parsed = value
        node = out
        *parents, leaf = key.split(".")
        for p in parents:
            node = node.setdefault(p, {})
        node[leaf] = parsed
    return out


def build_config(path: str | None, overrides: list[str], table: str = "train"):
    import dataclasses

    base = load_train_config(path, table) if path else train_config_from_dict({})
    raw = dataclasses.asdict(base)
    for key, value in parse_overrides(overrides).items():
        if isinstance(value, dict):
            raw[key] = {**raw[key], **value}
        else:
            raw[key] = value
    return train_config_from_dict(raw, origin=path or "defaults")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config")
    parser.add_argument("--table", default="train", help="the config table to read: train (the encoder) or reranker")
    parser.add_argument("--queries", required=True)
    parser.add_argument("--qrels", required=True)
    parser.add_argument("--catalog", required=True)
    parser.add_argument("--out", default="./models")
    parser.add_argument("--run-id")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE")
    parser.add_argument("--no-publish", action="store_true")
    parser.add_argument("--log-format", choices=LOG_FORMATS, help="text (default) or json: one JSON object per "
                        f"line, for log pipelines (default: ${LOG_FORMAT_ENV} when set)")
    args = parser.parse_args(argv)
    setup_logging(False, args.log_format)

    from coldstart.training.sources import judgment_examples, judgment_pairs, read_catalog_texts
    from pipelines.train import run_training

    config = build_config(args.config, args.set, args.table)
    # the catalog's text as `coldstart embed` composes it: the same file's [schema] (default: the title column)
    schema = load_config(args.config).schema if args.config else None
    texts = read_catalog_texts(args.catalog, schema)
    build = judgment_pairs if config.objective == "cross_encoder" else judgment_examples
    examples, fingerprint = build(args.queries, args.qrels, texts, config)
    run_id = args.run_id or "ft-" + dt.datetime.now(dt.timezone.utc).strftime("%Y%m%dT%H%M%S")
    result = run_training(config, examples, texts, run_id=run_id, out_dir=Path(args.out),
                          data_fingerprint=fingerprint, publish=not args.no_publish)
    json.dump({"model_dir": str(result.model_dir), "model_uri": result.model_uri, "seconds": result.seconds,
               "metrics": result.metrics}, sys.stdout, indent=2, default=str)
    print()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
