"""Recall@10 against queries/s per index kind, on the Home Depot title vectors and dev queries.

    python -m benchmarks.index_recall --data ../shared/data [--backend onnx-int8] [--cache DIR] \\
        [--out bench-out/index_recall.json]

The catalog is published once by the library's embed step (``benchmarks.quality``'s cached store, so a second run
embeds nothing); the dev queries are encoded by the same encoder. Every index is a
:class:`coldstart.ranking.faiss_index.VectorIndex` as a version builds it, searched as the service searches it
(``VectorIndex.search``, all queries in one batch, k = 10, FAISS on one thread like a serving replica), with the
approximate kinds swept over their query-time knob (``ef_search`` for HNSW, ``nprobe`` for IVF) with and without
the exact re-score of ``refine × k`` candidates (``[index] refine``, 4 by default). Recall@10 is the share of the
exact top 10 (the flat index) that a setting returns; queries/s is the best of ``--repeats`` timed searches.

Writes the rows as JSON (``benchmarks/plots.py`` draws them) and prints a markdown table.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import logging
import os
import platform
import sys
import time
from pathlib import Path

import numpy as np

logger = logging.getLogger("benchmarks.index_recall")

SWEEPS = {"hnsw": ("ef_search", (16, 32, 64, 128, 256)),
          "ivf_sq8": ("nprobe", (1, 2, 4, 8, 16, 32, 64)),
          "ivf_pq": ("nprobe", (1, 2, 4, 8, 16, 32, 64))}
K = 10


def recall_at_k(found: list[list[tuple[str, float]]], exact: list[list[tuple[str, float]]], k: int = K) -> float:
    """Mean share of each query's exact top ``k`` ids that ``found`` returned in its top ``k``."""
    return float(np.mean([len({i for i, _ in f[:k]} & {i for i, _ in e[:k]}) / k for f, e in zip(found, exact)]))


def timed_search(index, queries: np.ndarray, repeats: int) -> tuple[list, float]:
    best, hits = float("inf"), None
    for _ in range(repeats):
        t0 = time.perf_counter()
        hits = index.search(queries, K)
        best = min(best, time.perf_counter() - t0)
    return hits, len(queries) / best


def sweep(ids: list[str], vectors: np.ndarray, queries: np.ndarray, *, repeats: int) -> list[dict]:
    from coldstart.ranking.faiss_index import IndexConfig, VectorIndex

    t0 = time.perf_counter()
    flat = VectorIndex.build(ids, vectors, IndexConfig(kind="flat"))
    build_s = time.perf_counter() - t0
    exact, qps = timed_search(flat, queries, repeats)
    rows = [{"kind": "flat", "refine": 0, "param": None, "value": None, "recall_at_10": 1.0,
             "queries_per_s": round(qps, 1), "build_s": round(build_s, 2)}]
    logger.info("%s", rows[-1])
    for kind, (param, values) in SWEEPS.items():
        t0 = time.perf_counter()
        built = VectorIndex.build(ids, vectors, IndexConfig(kind=kind, use_gpu="never"))
        build_s = time.perf_counter() - t0
        for refine in (0, 4):
            for value in values:
                config = dataclasses.replace(built.config, refine=refine, **{param: value})
                index = VectorIndex(built.ids, built.vectors, built._cpu_index, config)
                setattr(index._cpu_index.hnsw if kind == "hnsw" else index._cpu_index,
                        "efSearch" if kind == "hnsw" else "nprobe", value)
                found, qps = timed_search(index, queries, repeats)
                rows.append({"kind": kind, "refine": refine, "param": param, "value": value,
                             "recall_at_10": round(recall_at_k(found, exact), 4), "queries_per_s": round(qps, 1),
                             "build_s": round(build_s, 2)})
                logger.info("%s", rows[-1])
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, default=Path("../shared/data"))
    parser.add_argument("--model", default="default")
    parser.add_argument("--backend", default=None, help="the encoder backend that embeds (default: the config's)")
    parser.add_argument("--config", default="configs/laptop.toml")
    parser.add_argument("--cache", type=Path, help="where the published store is kept between runs")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=1, help="FAISS OpenMP threads (a serving replica has 1)")
    parser.add_argument("--out", type=Path, default=Path("bench-out/index_recall.json"))
    args = parser.parse_args(argv)
    from coldstart.logs import setup_logging

    setup_logging(False)
    hd = args.data / "homedepot"
    if not (hd / "catalog.parquet").is_file():
        print(f"skipped: no Home Depot data under {args.data}")
        return 0
    import faiss

    from benchmarks.quality import homedepot
    from coldstart.evaluation.trec import read_requests
    from coldstart.ranking.pipeline import load_recommender

    faiss.omp_set_num_threads(args.threads)
    started, load_at_start = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()), os.getloadavg()
    job = homedepot(args.data, model=args.model, config_path=args.config, cache=args.cache, backend=args.backend)
    recommender = load_recommender(job)
    index = recommender.version.index
    texts = [r.query for r in read_requests(hd / "queries_dev.tsv") if r.query]
    queries = recommender.encoder.encode(texts)
    rows = sweep(index.ids, index.vectors, queries, repeats=args.repeats)
    report = {
        "benchmark": "index_recall",
        "command": " ".join(["python -m benchmarks.index_recall", *(argv if argv is not None else sys.argv[1:])]),
        "date": started,
        "machine": {"cpus": os.cpu_count(), "platform": platform.platform(), "python": platform.python_version(),
                    "faiss": faiss.__version__, "faiss_threads": args.threads, "load_average_at_start": load_at_start,
                    "load_average_at_end": os.getloadavg()},
        "data": {"items": len(index.ids), "dim": index.dim, "queries": len(texts), "k": K,
                 "encoder": f"{recommender.encoder.info().name.split('/')[-1]} ({job.encoder.backend})",
                 "repeats": args.repeats},
        "results": rows,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2) + "\n")
    print(f"| kind | refine | knob | recall@10 | queries/s | build s |\n| --- | --- | --- | --- | --- | --- |")
    for r in rows:
        knob = f"{r['param']} {r['value']}" if r["param"] else "exact"
        print(f"| {r['kind']} | {r['refine']} | {knob} | {r['recall_at_10']:.4f} | {r['queries_per_s']:,.0f} | "
              f"{r['build_s']:.1f} |")
    print(f"\nwritten to {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
