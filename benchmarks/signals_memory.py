"""Memory and fit time of the session signals (sparse co-visitation) by catalog size, on the real sessions and on
synthetic ones shaped like them.

For the real Amazon Scientific sessions, the signals the serving replicas load. For 54,667 items (the Home Depot
catalog) and 1,000,000 items, sessions drawn like Amazon Scientific's: 1.35 sessions per item, lengths from its
own length distribution, items by Zipf(1) popularity. Each size is fitted in a fresh subprocess, so the peak RSS
is that fit's alone. Settings: the default ``[retrieval.covisit]`` (window 50, top_n 200).

    python -m benchmarks.signals_memory --data ../shared/data
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time
from pathlib import Path


def _fit(n_items: int, sessions_path: str | None, seed: int) -> dict:
    import numpy as np

    from coldstart.ranking.config import RetrievalConfig
    from coldstart.signals.covisit import CoVisitation

    config = RetrievalConfig().covisit
    if sessions_path:
        sessions = [json.loads(line)["items"] for line in open(sessions_path)]
        ids = sorted({i for s in sessions for i in s})
    else:
        rng = np.random.default_rng(seed)
        real = [len(json.loads(line)["items"]) for line in open(_AMAZON)]
        lengths = rng.choice(real, size=int(1.35 * n_items))
        ids = [f"i{n}" for n in range(n_items)]
        weights = 1.0 / np.arange(1, n_items + 1)
        draws = rng.choice(n_items, size=int(lengths.sum()), p=weights / weights.sum())
        sessions, at = [], 0
        for length in lengths:
            sessions.append([ids[j] for j in draws[at:at + length]])
            at += length
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    started = time.perf_counter()
    covisit = CoVisitation(ids, config).fit(sessions)
    return {"items": len(ids), "sessions": len(sessions), "clicks": sum(map(len, sessions)),
            "nonzero_pairs": int(covisit.matrix.nnz), "matrix_mb": round(covisit.nbytes / 1e6, 1),
            "bound_mb": round(len(ids) * config.top_n * 8 / 1e6, 1),
            "dense_would_be_gb": round(4 * len(ids) ** 2 / 1e9, 1),
            "fit_seconds": round(time.perf_counter() - started, 1),
            "fit_peak_rss_delta_mb": round((resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before) / 1024, 1)}


_AMAZON = ""


def main(argv: list[str] | None = None) -> int:
    global _AMAZON
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=Path("/work/shared/data"))
    parser.add_argument("--sizes", default="54667,1000000")
    parser.add_argument("--one", help=argparse.SUPPRESS)  # internal: fit one size in this process
    args = parser.parse_args(argv)
    _AMAZON = str(args.data / "amazon_scientific" / "sessions_train.jsonl")
    if not Path(_AMAZON).is_file():
        print(f"skipped: {_AMAZON} is not there")
        return 0
    if args.one:
        kind, n = args.one.split(":")
        print(json.dumps(_fit(int(n), _AMAZON if kind == "real" else None, seed=0)))
        return 0
    rows = []
    for one in ["real:0", *(f"synthetic:{n}" for n in args.sizes.split(","))]:
        out = subprocess.run([sys.executable, "-m", "benchmarks.signals_memory", "--data", str(args.data),
                              "--one", one], capture_output=True, text=True, check=True)
        rows.append({"sessions_from": one.split(":")[0], **json.loads(out.stdout.strip().splitlines()[-1])})
        print(rows[-1], flush=True)
    print("| sessions | items | sessions | clicks | non-zero pairs | matrix MB | bound (n × 200 × 8 B) MB | dense float32 "
          "GB | fit s | fit peak RSS MB |")
    print("| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |")
    for r in rows:
        print(f"| {r['sessions_from']} | {r['items']:,} | {r['sessions']:,} | {r['clicks']:,} | {r['nonzero_pairs']:,} | "
              f"{r['matrix_mb']} | {r['bound_mb']} | {r['dense_would_be_gb']} | {r['fit_seconds']} | "
              f"{r['fit_peak_rss_delta_mb']} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
