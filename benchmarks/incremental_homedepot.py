"""Benchmark: a nightly incremental run against a full run, on the Home Depot catalog (54,667 products).

    python -m benchmarks.incremental_homedepot [--catalog ../shared/data/homedepot/catalog.parquet]

1. full run: the whole catalog into a fresh store under /tmp (nothing published yet, so everything is embedded);
2. the next day's catalog: 1% of the titles changed and 1% new products (seed 0, deterministic);
3. nightly run on it: only those are embedded, the rest carried over;
4. a second nightly run on the same catalog: must publish nothing;
5. checks: the counts in the nightly version's report.json, nightly wall time ≤ 20% of the full run's, and every
   new product is the top-1 result for its own title in the published index.

Both runs use the laptop profile (packaged all-MiniLM-L6-v2, 2 actors × 0.5 CPU, exact index) in one process,
after Ray has started, so the ratio compares the jobs and not Ray's start-up. Prints numbers; exits 1 when a
check fails. The data is read where it lies and never copied into the repository.
"""

from __future__ import annotations

import argparse
import json
import logging
import random
import sys
import tempfile
import time
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

DEFAULT_CATALOG = Path(__file__).resolve().parents[2] / "shared" / "data" / "homedepot" / "catalog.parquet"
MAX_RATIO = 0.20
CHANGE_SUFFIXES = ("(2-Pack)", "- Contractor Pack", "(New Version)", "- Value Bundle", "(Case of 4)")

logger = logging.getLogger("benchmarks.incremental_homedepot")


def _norm(text: str) -> str:
    """What the (lower-casing) tokenizer sees: titles equal under this get equal vectors."""
    return " ".join(text.lower().split())


def next_day_catalog(rows: list[dict], *, fraction: float, seed: int) -> tuple[list[dict], list[str], list[str]]:
    """``rows`` with ``fraction`` of the titles changed and ``fraction`` × n new products appended.

    New titles join the first words of one product's title and the last words of another's, never equal (as the
    tokenizer sees them) to any other title. Returns the rows, the changed ids and the new ids.
    """
    rng = random.Random(seed)
    count = round(fraction * len(rows))
    rows = [dict(r) for r in rows]
    changed = rng.sample(range(len(rows)), count)
    for i in changed:
        rows[i]["title"] = f"{rows[i]['title']} {rng.choice(CHANGE_SUFFIXES)}"
    taken = {_norm(r["title"]) for r in rows}
    new_rows = []
    while len(new_rows) < count:
        a, b = (rows[i]["title"].split() for i in rng.sample(range(len(rows)), 2))
        title = " ".join(a[: max(2, len(a) // 2)] + ["with"] + b[len(b) // 2:])
        if _norm(title) in taken:
            continue
        taken.add(_norm(title))
        new_rows.append({"item_id": f"NEW{len(new_rows) + 1:06d}", "title": title})
    return rows + new_rows, [rows[i]["item_id"] for i in changed], [r["item_id"] for r in new_rows]


def _timed_run(config):
    from pipelines.embed import run_embed_job

    start = time.perf_counter()
    result = run_embed_job(config)
    return result, time.perf_counter() - start


def _top1_own(store, config, rows_by_id: dict[str, str], ids: list[str]) -> list[str]:
    """The ids among ``ids`` that do NOT come back first when searching for their own title."""
    from coldstart.encoders.encoder import Encoder
    from coldstart.artifacts.versions import load_version

    encoder = Encoder(config.encoder)
    version = load_version(store, expect=encoder.info())
    queries = encoder.encode([rows_by_id[i] for i in ids])
    hits = version.index.search(queries, 1)
    return [i for i, h in zip(ids, hits) if not h or h[0][0] != i]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--catalog", default=str(DEFAULT_CATALOG), help="Home Depot catalog.parquet (item_id, title)")
    parser.add_argument("--workdir", help="where the store and the next-day catalog go (default: a new /tmp dir)")
    parser.add_argument("--fraction", type=float, default=0.01, help="share of titles changed and of products added")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    catalog = Path(args.catalog)
    if not catalog.is_file():
        print(f"skipped: the Home Depot catalog is not at {catalog} (pass --catalog; see ../shared/data/README.md)")
        return 0

    from coldstart.logs import setup_logging
    from coldstart.config import load_config
    from coldstart.artifacts.versions import read_json_file
    from coldstart.artifacts.manifest import list_versions, read_manifest
    from coldstart.artifacts.store import open_store
    from pipelines.ray_runtime import init_ray

    setup_logging(False)
    workdir = Path(args.workdir or tempfile.mkdtemp(prefix="coldstart-incr-"))
    workdir.mkdir(parents=True, exist_ok=True)
    store_dir = workdir / "store"
    base = load_config(Path(__file__).resolve().parents[1] / "configs" / "laptop.toml")
    rows = pq.read_table(catalog, columns=["item_id", "title"]).to_pylist()
    day1, changed_ids, new_ids = next_day_catalog(rows, fraction=args.fraction, seed=args.seed)
    day1_path = workdir / "catalog-day1.parquet"
    pq.write_table(pa.Table.from_pylist(day1), day1_path)

    init_ray()  # once, before either timing
    full, full_s = _timed_run(base.replace(catalog=str(catalog), store=str(store_dir)))
    nightly_config = base.replace(catalog=str(day1_path), store=str(store_dir))
    nightly, nightly_s = _timed_run(nightly_config)
    again, again_s = _timed_run(nightly_config)

    store = open_store(store_dir)
    report = read_json_file(store, read_manifest(store, nightly.version), "report.json")
    rows_by_id = {r["item_id"]: r["title"] for r in day1}
    missed_new = _top1_own(store, nightly_config, rows_by_id, new_ids)
    missed_changed = _top1_own(store, nightly_config, rows_by_id, changed_ids)
    counts = report["counts"]
    ratio = nightly_s / full_s
    checks = {
        "full run embedded every product": full.counts["embedded"] == len(rows),
        "nightly embedded exactly the new and changed products": (
            counts["new"], counts["changed"], counts["deleted"], counts["embedded"], counts["unchanged"]
        ) == (len(new_ids), len(changed_ids), 0, len(new_ids) + len(changed_ids), len(rows) - len(changed_ids)),
        f"nightly wall time <= {MAX_RATIO:.0%} of the full run's": ratio <= MAX_RATIO,
        "every new product is top-1 for its own title": not missed_new,
        "a second run with no change published nothing": not again.published
        and list_versions(store) == [full.version, nightly.version],
    }
    summary = {
        "catalog": str(catalog), "products": len(rows), "workdir": str(workdir),
        "full": {"wall_s": round(full_s, 1), "counts": full.counts,
                 "seconds": {k: round(v, 1) for k, v in full.seconds.items()}},
        "nightly": {"wall_s": round(nightly_s, 1), "counts": counts,
                    "seconds": {k: round(v, 1) for k, v in report["seconds"].items()}},
        "noop": {"wall_s": round(again_s, 1), "published": again.published},
        "ratio_nightly_to_full": round(ratio, 4),
        "top1_own_title": {"new": f"{len(new_ids) - len(missed_new)}/{len(new_ids)}",
                           "changed": f"{len(changed_ids) - len(missed_changed)}/{len(changed_ids)}",
                           "missed_new": missed_new[:10]},
        "checks": checks,
    }
    print(json.dumps(summary, indent=2))
    return 0 if all(checks.values()) else 1


if __name__ == "__main__":
    sys.exit(main())
