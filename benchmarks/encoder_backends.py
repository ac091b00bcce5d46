"""Encoder backends side by side in one run: speed (titles/s, one query at a time) and ranking quality.

    python -m benchmarks.encoder_backends [--data ../shared/data] [--limit 15000] [--queries 300]
        [--model default] [--cache DIR] [--skip-quality]

1. **Throughput in one process**: the Home Depot titles (the first ``--limit``) encoded by the plain ``transformers``
   loop (torch fp32, catalog order; the baseline of `embed_throughput.py`) and by ``coldstart``'s encoder on each
   backend (length-sorted batches of 64), 2 threads each, one after the other in this process.
2. **One query at a time** (batch 1, 1 thread, as a serving replica runs): p50 / p99 over ``--queries`` dev queries.
3. **Quality on Home Depot dev**: for each backend the catalog is published with it (``benchmarks.quality``'s
   cached stores) and the dev queries ranked with the same backend by ``RankingPipeline`` — dense only and the
   default blend — plus mixed pairs (int8 queries over fp32 item vectors and the reverse), which is what decides
   the manifest's compatibility table. NDCG@10 (graded), ROC-AUC over judged pairs (5+ vs ≤ 3).

Prints markdown tables (``--out FILE``: the titles/s rows also as a results file for ``benchmarks/plots.py``);
numbers worth keeping go to BENCHMARKS.md with this command.
"""

from __future__ import annotations

import argparse
import dataclasses
import logging
import time
from pathlib import Path

import numpy as np

logger = logging.getLogger("benchmarks.encoder_backends")

BACKENDS = ("torch", "onnx", "onnx-int8")


def throughput(titles: list[str], model: str) -> list[tuple[str, float, float]]:
    from benchmarks.embed_throughput import plain_loop
    from coldstart.encoders.encoder import Encoder, EncoderConfig
    from coldstart.encoders.model_source import resolve_model_dir

    rows = [("plain loop (torch fp32, catalog order)", plain_loop(titles, Path(resolve_model_dir(model))))]
    for backend in BACKENDS:
        encoder = Encoder(EncoderConfig(model=model, backend=backend, num_threads=2, device="cpu"))
        encoder.encode(titles[:256])  # warm-up
        t0 = time.perf_counter()
        encoder.encode(titles)
        rows.append((f"coldstart encoder, {backend}", time.perf_counter() - t0))
    base = rows[0][1]
    return [(name, len(titles) / s, base / s) for name, s in rows]


def latency(queries: list[str], model: str) -> list[tuple[str, float, float]]:
    from coldstart.encoders.encoder import Encoder, EncoderConfig

    out = []
    for backend in BACKENDS:
        encoder = Encoder(EncoderConfig(model=model, backend=backend, num_threads=1, device="cpu"))
        for q in queries[:20]:
            encoder.encode([q])
        times = []
        for q in queries:
            t0 = time.perf_counter()
            encoder.encode([q])
            times.append((time.perf_counter() - t0) * 1000)
        out.append((backend, float(np.percentile(times, 50)), float(np.percentile(times, 99))))
    return out


def quality(data: Path, *, model: str, cache: Path | None) -> list[tuple]:
    from benchmarks.ablation import _DevQueries
    from benchmarks.quality import homedepot
    from coldstart.artifacts.store import open_store
    from coldstart.artifacts.versions import load_version
    from coldstart.encoders.encoder import Encoder
    from coldstart.ranking.config import RetrievalConfig
    from coldstart.ranking.dense import DenseRecommender
    from coldstart.ranking.pipeline import RankingPipeline

    dev, config = _DevQueries(data), RetrievalConfig()
    jobs = {b: homedepot(data, model=model, config_path=None, cache=cache, backend=b) for b in BACKENDS}
    encoders = {b: Encoder(dataclasses.replace(jobs[b].encoder, num_threads=2)) for b in BACKENDS}
    versions = {b: load_version(open_store(jobs[b].store)) for b in BACKENDS}
    rows = []
    for queries, items in [(b, b) for b in BACKENDS] + [("onnx-int8", "torch"), ("torch", "onnx-int8")]:
        rec = DenseRecommender(encoders[queries], versions[items], jobs[items].profile)
        label = f"queries {queries}, items {items}"
        rows.append(dev.row(f"{label}: dense", RankingPipeline(rec, config, retriever="dense")))
        rows.append(dev.row(f"{label}: blend", RankingPipeline(rec, config)))
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, default=Path("../shared/data"))
    parser.add_argument("--limit", type=int, default=15000, help="titles for the throughput table")
    parser.add_argument("--queries", type=int, default=300, help="dev queries for the batch-1 latency table")
    parser.add_argument("--model", default="default")
    parser.add_argument("--cache", type=Path, help="where the published stores are kept between runs")
    parser.add_argument("--skip-quality", action="store_true")
    parser.add_argument("--skip-speed", action="store_true", help="only the quality table (e.g. for another model)")
    parser.add_argument("--out", type=Path, help="also write the titles/s rows as a results file (benchmarks/plots.py)")
    args = parser.parse_args(argv)
    from coldstart.logs import setup_logging

    setup_logging(False)
    hd = args.data / "homedepot"
    if not (hd / "catalog.parquet").is_file():
        print(f"skipped: no Home Depot data under {args.data}")
        return 0
    import pyarrow.parquet as pq

    from coldstart.evaluation.trec import read_requests

    titles = pq.read_table(hd / "catalog.parquet", columns=["title"]).column("title").to_pylist()[:args.limit]
    queries = [r.query for r in read_requests(hd / "queries_dev.tsv") if r.query][:args.queries]
    t0 = time.time()
    if not args.skip_speed:
        print(f"| {len(titles):,} Home Depot titles, one process, 2 threads | titles/s | vs plain loop |")
        print("| --- | --- | --- |")
        recorded = []
        for name, rate, ratio in throughput(titles, args.model):
            print(f"| {name} | {rate:.0f} | {ratio:.2f}x |", flush=True)
            recorded.append({"encoder": args.model, "system": name.split(" (")[0].split(",")[0],
                             "backend": name.rsplit(", ", 1)[-1] if name.startswith("coldstart") else "torch",
                             "setting": f"{len(titles):,} Home Depot titles, one process, 2 threads",
                             "titles_per_s": round(rate, 1)})
        if args.out is not None:
            from benchmarks.record import write_results

            written = write_results(args.out, "embed_throughput", recorded, script="benchmarks.encoder_backends",
                                    started=t0, argv=argv)
            print(f"written to {written}")
        print(f"\n| one query at a time ({len(queries)} dev queries, 1 thread) | p50 ms | p99 ms |")
        print("| --- | --- | --- |")
        for backend, p50, p99 in latency(queries, args.model):
            print(f"| {backend} | {p50:.2f} | {p99:.2f} |", flush=True)
    if not args.skip_quality:
        print("\n| Home Depot dev | NDCG@10 | Recall@10 | Recall@100 | MRR@10 | ROC-AUC |")
        print("| --- | --- | --- | --- | --- | --- |")
        for row in quality(args.data, model=args.model, cache=args.cache):
            print(f"| {row[0]} | " + " | ".join(f"{x:.4f}" for x in row[1:]) + " |", flush=True)
    print(f"\n({time.time() - t0:.0f} s)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
