"""Benchmark: embedding and search on a chosen device (a GPU above all): the encoder in one process, the FAISS
index over its vectors, and the Ray Data job with GPU actors. (The CPU comparison against a plain loop is
``benchmarks/embed_throughput.py``.)

    python -m benchmarks.gpu_embed --device cuda --limit 50000 --ray --gpus-per-actor 1   # a GPU machine
    python -m benchmarks.gpu_embed --device cpu --limit 2000                             # a laptop

Titles come from the Home Depot catalog when it is there (``--catalog``), else from the project's own sample
catalog, varied until there are ``--limit`` of them, so the script runs on a bare machine. Prints JSON.
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from benchmarks.incremental_homedepot import DEFAULT_CATALOG


def load_titles(catalog: Path, limit: int, *, seed: int = 0) -> tuple[list[str], str]:
    import pyarrow.parquet as pq

    if catalog.is_file():
        return pq.read_table(catalog, columns=["title"]).column("title").to_pylist()[:limit], str(catalog)
    from coldstart.catalog.sample import write_sample_catalog

    with tempfile.TemporaryDirectory() as tmp:
        base = pq.read_table(write_sample_catalog(Path(tmp) / "c.parquet")).column("title").to_pylist()
    rng = random.Random(seed)
    sizes = ["12 in.", "2-Pack", "1 gal.", "Stainless Steel", "White", "Heavy Duty", "Cordless", "Outdoor"]
    return [f"{base[i % len(base)]} {rng.choice(sizes)} {rng.choice(sizes)} #{i}" for i in range(limit)], "synthetic"


def bench_encoder(titles: list[str], *, device: str, batch_size: int) -> dict:
    from coldstart.encoders.encoder import Encoder, EncoderConfig

    encoder = Encoder(EncoderConfig(device=device, batch_size=batch_size))
    encoder.encode(titles[:batch_size])  # warm-up: kernels, allocator
    start = time.perf_counter()
    vectors = encoder.encode(titles)
    seconds = time.perf_counter() - start
    return {"device": encoder.device, "batch_size": batch_size, "texts": len(titles), "seconds": round(seconds, 2),
            "texts_per_s": round(len(titles) / seconds, 1)}, vectors


def bench_faiss(vectors: np.ndarray, *, queries: int = 2000) -> dict:
    from coldstart.ranking.faiss_index import IndexConfig, VectorIndex

    ids = [str(i) for i in range(len(vectors))]
    start = time.perf_counter()
    index = VectorIndex.build(ids, vectors, IndexConfig(kind="flat"))
    built = time.perf_counter() - start
    q = vectors[:queries]
    start = time.perf_counter()
    hits = index.search(q, 10)
    seconds = time.perf_counter() - start
    return {"index": type(index._index).__name__, "rows": len(ids), "build_s": round(built, 3),
            "queries_per_s": round(len(q) / seconds, 1),
            "self_top1": float(np.mean([h[0][0] == ids[i] for i, h in enumerate(hits)]))}


def bench_ray_job(titles: list[str], *, actors: int, gpus_per_actor: float, cpus_per_actor: float,
                  batch_size: int) -> dict:
    import pyarrow as pa
    import pyarrow.parquet as pq

    from coldstart.config import EmbedConfig, JobConfig
    from coldstart.encoders.encoder import EncoderConfig
    from pipelines.embed import run_embed_job
    from pipelines.ray_runtime import init_ray

    init_ray()
    with tempfile.TemporaryDirectory() as tmp:
        catalog = Path(tmp) / "catalog.parquet"
        pq.write_table(pa.table({"item_id": [f"p{i}" for i in range(len(titles))], "title": titles}), catalog)
        config = JobConfig(catalog=str(catalog), store=str(Path(tmp) / "store"),
                           encoder=EncoderConfig(batch_size=batch_size),
                           embed=EmbedConfig(actors=actors, gpus_per_actor=gpus_per_actor,
                                             cpus_per_actor=cpus_per_actor, rows_per_block=4096))
        start = time.perf_counter()
        result = run_embed_job(config)
        seconds = time.perf_counter() - start
    return {"actors": actors, "gpus_per_actor": gpus_per_actor, "wall_s": round(seconds, 1),
            "texts_per_s": round(len(titles) / seconds, 1),
            "stage_seconds": {k: round(v, 2) for k, v in result.seconds.items()}}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--catalog", default=str(DEFAULT_CATALOG))
    parser.add_argument("--limit", type=int, default=20_000)
    parser.add_argument("--device", default="auto", help="auto, cpu, cuda")
    parser.add_argument("--batch-size", type=int, default=256)
    parser.add_argument("--ray", action="store_true", help="also time the Ray Data embedding job end to end")
    parser.add_argument("--actors", type=int, default=1)
    parser.add_argument("--gpus-per-actor", type=float, default=0.0)
    parser.add_argument("--cpus-per-actor", type=float, default=0.5)
    args = parser.parse_args(argv)

    from coldstart.logs import setup_logging

    setup_logging(False)
    titles, source = load_titles(Path(args.catalog), args.limit)
    encoder, vectors = bench_encoder(titles, device=args.device, batch_size=args.batch_size)
    out = {"titles": source, "encoder": encoder, "faiss": bench_faiss(vectors)}
    if args.ray:
        out["ray_job"] = bench_ray_job(titles, actors=args.actors, gpus_per_actor=args.gpus_per_actor,
                                       cpus_per_actor=args.cpus_per_actor, batch_size=args.batch_size)
    print(json.dumps(out, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
