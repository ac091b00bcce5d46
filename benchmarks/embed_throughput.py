"""Catalog embedding throughput: the Ray Data job versus a plain single-process `transformers` loop.

Both encode the same Home Depot titles with the same model (packaged all-MiniLM-L6-v2, mean pooling, L2, max
length 128) in the same run, so the ratio is meaningful on a noisy machine. Prints JSON; not a test.

    python benchmarks/embed_throughput.py [DATA_DIR] [--limit N] [--actors 2 --threads 1]

- plain: the loop a user would write — catalog order, batch 64, torch with 2 threads, one process;
- inprocess: coldstart's Encoder (length-sorted batches) in this process, no Ray;
- ray_job: `pipelines.embed.run_embed_job` end to end (validate, Ray Data actor pool, index, publish to a
  temporary local store), timed as a whole, with its embed stage reported separately.

Peak memory: the largest sum of RSS over this process and its children (Ray workers included), sampled every
0.2 s during each system's run.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
import threading
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))


class PeakRSS:
    """Samples the RSS of this process tree (Ray's raylet and workers are children of the driver)."""

    def __init__(self):
        import psutil

        self.psutil = psutil
        self.peak = 0
        self._stop = threading.Event()

    def _sample(self):
        me = self.psutil.Process()
        while not self._stop.is_set():
            total = 0
            for proc in [me, *me.children(recursive=True)]:
                try:
                    total += proc.memory_info().rss
                except self.psutil.Error:
                    pass
            self.peak = max(self.peak, total)
            time.sleep(0.2)

    def __enter__(self):
        self._thread = threading.Thread(target=self._sample, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()


def plain_loop(texts: list[str], model_dir: Path, batch_size: int = 64, threads: int = 2) -> float:
    import torch
    from transformers import AutoModel, AutoTokenizer

    torch.set_num_threads(threads)
    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    model = AutoModel.from_pretrained(model_dir).eval()
    start = time.perf_counter()
    with torch.inference_mode():
        for i in range(0, len(texts), batch_size):
            batch = tokenizer(texts[i:i + batch_size], padding=True, truncation=True, max_length=128,
                              return_tensors="pt")
            hidden = model(**batch).last_hidden_state
            mask = batch["attention_mask"].unsqueeze(-1).float()
            vectors = (hidden * mask).sum(1) / mask.sum(1)
            torch.nn.functional.normalize(vectors, dim=1)
    return time.perf_counter() - start


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("data_dir", nargs="?", default=str(REPO.parent / "shared" / "data"))
    parser.add_argument("--limit", type=int, default=0, help="only the first N titles (0: all)")
    parser.add_argument("--actors", type=int, default=2)
    parser.add_argument("--threads", type=int, default=1, help="torch threads per actor")
    parser.add_argument("--cpus-per-actor", type=float, default=0.5)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--skip", nargs="*", default=[], choices=["plain", "inprocess", "ray_job"])
    args = parser.parse_args()

    catalog_path = Path(args.data_dir) / "homedepot" / "catalog.parquet"
    if not catalog_path.is_file():
        print(f"SKIP: {catalog_path} not found (pass the data dir that holds homedepot/catalog.parquet)")
        return 0
    import pyarrow.parquet as pq

    from coldstart.encoders.model_source import packaged_model_dir

    os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
    table = pq.read_table(catalog_path)
    if args.limit:
        table = table.slice(0, args.limit)
    texts = [t.strip() for t in table.column("title").to_pylist()]
    model_dir = packaged_model_dir()
    out: dict = {"machine": f"{platform.machine()}, {os.cpu_count()} CPUs", "texts": len(texts),
                 "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())}

    if "plain" not in args.skip:
        with PeakRSS() as mem:
            seconds = plain_loop(texts, model_dir, batch_size=args.batch_size)
        out["plain"] = {"seconds": round(seconds, 1), "texts_per_s": round(len(texts) / seconds, 1),
                        "peak_rss_gb": round(mem.peak / 2**30, 2)}
        print(json.dumps({"plain": out["plain"]}), flush=True)

    if "inprocess" not in args.skip:
        from coldstart.encoders.encoder import Encoder, EncoderConfig

        with PeakRSS() as mem:
            encoder = Encoder(EncoderConfig(batch_size=args.batch_size, num_threads=2))
            start = time.perf_counter()
            encoder.encode(texts)
            seconds = time.perf_counter() - start
        out["inprocess"] = {"seconds": round(seconds, 1), "texts_per_s": round(len(texts) / seconds, 1),
                            "peak_rss_gb": round(mem.peak / 2**30, 2)}
        print(json.dumps({"inprocess": out["inprocess"]}), flush=True)

    if "ray_job" not in args.skip:
        from coldstart.catalog.reader import CatalogSchema
        from coldstart.config import EmbedConfig, JobConfig
        from coldstart.encoders.encoder import EncoderConfig
        from pipelines.embed import run_embed_job
        from pipelines.ray_runtime import init_ray

        with tempfile.TemporaryDirectory() as tmp:
            catalog = Path(tmp) / "catalog.parquet"
            pq.write_table(table, catalog)
            config = JobConfig(catalog=str(catalog), store=str(Path(tmp) / "store"),
                               schema=CatalogSchema(id_col="item_id", text_cols=("title",)),
                               encoder=EncoderConfig(batch_size=args.batch_size),
                               embed=EmbedConfig(actors=args.actors, threads_per_actor=args.threads,
                                                 cpus_per_actor=args.cpus_per_actor))
            with PeakRSS() as mem:
                start = time.perf_counter()
                init_ray(num_cpus=os.cpu_count())
                ray_start = time.perf_counter() - start
                result = run_embed_job(config)
                seconds = time.perf_counter() - start
        embed_s = result.seconds["embed"]
        out["ray_job"] = {"seconds": round(seconds, 1), "ray_start_s": round(ray_start, 1),
                          "embed_stage_s": round(embed_s, 1), "texts_per_s": round(len(texts) / seconds, 1),
                          "embed_stage_texts_per_s": round(len(texts) / embed_s, 1),
                          "peak_rss_gb": round(mem.peak / 2**30, 2), "actors": args.actors,
                          "threads_per_actor": args.threads, "counts": result.counts}
    if "plain" in out and "ray_job" in out:
        out["ratio_ray_job_vs_plain"] = round(out["plain"]["seconds"] / out["ray_job"]["seconds"], 2)
        out["ratio_embed_stage_vs_plain"] = round(out["plain"]["seconds"] / out["ray_job"]["embed_stage_s"], 2)
    if "plain" in out and "inprocess" in out:
        out["ratio_inprocess_vs_plain"] = round(out["plain"]["seconds"] / out["inprocess"]["seconds"], 2)
    print(json.dumps(out, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
