"""Live quality: the benchmark queries and new users sent through the Serve app's HTTP API, scored like the CLI.

One local Ray (127.0.0.1), the app built by :func:`pipelines.serve_app.build_app` exactly as ``deploy/serve.yaml``
builds it (fused topology, ``retriever: blend``, the config's ``[retrieval]`` table), over stores published by
:mod:`benchmarks.quality` (cached under ``--cache``):

- **Home Depot dev**: every query → ``POST /recommend {"query", "k": 100}``; NDCG@10 etc. against the qrels.
- **Amazon Scientific dev, k = 1 and 3**: each user's first k purchases → ``POST /recommend {"clicks"}``; the session
  signals are fitted from ``sessions_train`` by :func:`coldstart.signals.artifact.fit_and_publish` (what
  ``jobs.fit_signals`` runs) and published beside the version; the app loads them (``session_signals: true``).

The same store, config and signals are also ranked in-process by
:class:`~coldstart.ranking.pipeline.RankingPipeline` (what ``coldstart search`` runs), so each HTTP number has
its batch twin from the same run.

    python -m benchmarks.live_quality --data ../shared/data --config configs/train-cpu.toml --cache /tmp/bench/cache

A benchmark: prints numbers, asserts nothing; skips a data set whose files are absent.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import sys
import time
from pathlib import Path

logger = logging.getLogger("benchmarks.live_quality")

DEPTH = 100


async def _send(url: str, bodies: list[dict], concurrency: int) -> list[dict]:
    import aiohttp

    out: list[dict | None] = [None] * len(bodies)
    queue = iter(range(len(bodies)))

    async def worker(session):
        for n in queue:
            async with session.post("recommend", json=bodies[n]) as response:
                if response.status != 200:
                    raise RuntimeError(f"HTTP {response.status}: {await response.text()}")
                out[n] = await response.json()

    async with aiohttp.ClientSession(base_url=url.rstrip("/") + "/", trust_env=False,
                                     timeout=aiohttp.ClientTimeout(total=120)) as session:
        await asyncio.gather(*(worker(session) for _ in range(concurrency)))
    return out


def _serve(args, name: str, base: str):
    from ray import serve

    from benchmarks.serve_load import wait_healthy
    from pipelines.serve_app import build_app

    serve.run(build_app(args), name=name, route_prefix=f"/{name}", blocking=False)
    url = f"{base}/{name}"
    health = wait_healthy(url, 600, what=f"the app at {url}")
    logger.info("%s ready: version %s, signals %s", name, health["index_version"], health.get("signals_version"))
    return url


def _scores(responses: list[dict], qids: list[str]) -> dict[str, dict[str, float]]:
    return {qid: {i["item_id"]: i["score"] for i in r["items"]} for qid, r in zip(qids, responses)}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=Path("/work/shared/data"))
    parser.add_argument("--config", default="configs/train-cpu.toml", help="the [retrieval] table (and encoder)")
    parser.add_argument("--cache", type=Path, required=True, help="where the published stores are kept")
    parser.add_argument("--backend", default="torch", help="the app's query encoder backend (the CLI: torch)")
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--out", type=Path, default=Path("bench-out/live_quality.json"))
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    for noisy in ("httpx", "coldstart.ranking", "coldstart.evaluation.runs", "bm25s"):
        logging.getLogger(noisy).setLevel(logging.WARNING)

    from ray import serve

    from benchmarks.quality import homedepot, scientific
    from benchmarks.serve_load import free_port
    from coldstart.artifacts.manifest import latest_version
    from coldstart.artifacts.store import open_store
    from coldstart.evaluation.metrics import evaluate_run
    from coldstart.evaluation.runs import rank_all
    from coldstart.evaluation.trec import read_qrels, read_requests, read_sessions, sessions_to_requests_and_qrels
    from coldstart.ranking.config import load_retrieval_config
    from coldstart.ranking.pipeline import RankingPipeline, load_recommender
    from coldstart.serving.config import ServeAppArgs
    from coldstart.signals.artifact import fit_and_publish, load_signals
    from pipelines.ray_runtime import init_ray, local_ray_env

    for key, value in local_ray_env().items():
        os.environ.setdefault(key, value)
    args.config = str(Path(args.config).resolve())  # the replicas read it too, from their own working directory
    config = load_retrieval_config(args.config)
    rows = []
    hd, sci = args.data / "homedepot", args.data / "amazon_scientific"
    init_ray(num_cpus=2)
    port = free_port()
    serve.start(http_options={"host": "127.0.0.1", "port": port})
    base = f"http://127.0.0.1:{port}"
    try:
        if (hd / "queries_dev.tsv").is_file():
            job = homedepot(args.data, model="default", config_path=None, cache=args.cache)
            requests = [r for r in read_requests(hd / "queries_dev.tsv") if r.query]
            qrels = read_qrels(hd / "qrels_dev.tsv")
            batch = rank_all(RankingPipeline(load_recommender(job), config, retriever="blend"), requests, k=DEPTH)
            url = _serve(ServeAppArgs(store=job.store, retriever="blend", retrieval_config=args.config,
                                      backend=args.backend, query_cache_size=0, poll_interval_s=60), "hd", base)
            started = time.perf_counter()
            live = _send(url, [{"query": r.query, "k": DEPTH} for r in requests], args.concurrency)
            live = asyncio.run(live)
            seconds = time.perf_counter() - started
            serve.delete("hd")
            rows.append({"data": "Home Depot dev queries", "users": len(requests), "http_seconds": round(seconds, 1),
                         # relevant = grade >= 5 for Home Depot (../shared/BENCHMARK.md), as `coldstart evaluate
                         # --relevant-grade 5`
                         "http": evaluate_run(qrels, _scores(live, [r.qid for r in requests]), relevant_grade=5),
                         "batch": evaluate_run(qrels, {q: dict(v) for q, v in batch.items()}, relevant_grade=5)})
            logger.info("%s", rows[-1])
        if (sci / "sessions_train.jsonl").is_file():
            job = scientific(args.data, config_path=None, cache=args.cache)
            store = open_store(job.store)
            version = latest_version(store)
            recommender = load_recommender(job)
            manifest = fit_and_publish(store, version, recommender.version.index.ids,
                                       sessions=str(sci / "sessions_train.jsonl"),
                                       attributes=str(sci / "items.parquet"), config=config)
            signals, _ = load_signals(store, version, recommender.version.index.ids, manifest.signals_id)
            pipeline = RankingPipeline(recommender, config, retriever="blend", sessions=signals)
            url = _serve(ServeAppArgs(store=job.store, retriever="blend", retrieval_config=args.config,
                                      session_signals=True, backend=args.backend, query_cache_size=0,
                                      poll_interval_s=60), "sci", base)
            sessions = read_sessions(sci / "sessions_dev.jsonl")
            for k in (1, 3):
                requests, qrels = sessions_to_requests_and_qrels(sessions, k)
                batch = rank_all(pipeline, requests, k=DEPTH)
                started = time.perf_counter()
                live = asyncio.run(_send(url, [{"clicks": list(r.clicks), "k": DEPTH} for r in requests],
                                         args.concurrency))
                seconds = time.perf_counter() - started
                assert all(r["signals_version"] == manifest.signals_id for r in live)
                rows.append({"data": f"Amazon Scientific dev, k={k} clicks", "users": len(requests),
                             "http_seconds": round(seconds, 1),
                             "http": evaluate_run(qrels, _scores(live, [r.qid for r in requests])),
                             "batch": evaluate_run(qrels, {q: dict(v) for q, v in batch.items()})})
                logger.info("%s", rows[-1])
            serve.delete("sci")
    finally:
        serve.shutdown()
        import ray

        ray.shutdown()
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({"command": " ".join(sys.argv), "date": time.strftime("%Y-%m-%d %H:%M UTC",
                                                                                         time.gmtime()),
                                    "rows": rows}, indent=2))
    print("| data | users | HTTP NDCG@10 | batch NDCG@10 | HTTP Recall@100 | batch Recall@100 | HTTP s |")
    print("| --- | --- | --- | --- | --- | --- | --- |")
    for r in rows:
        print(f"| {r['data']} | {r['users']} | {r['http']['ndcg@10']:.4f} | {r['batch']['ndcg@10']:.4f} | "
              f"{r['http']['recall@100']:.4f} | {r['batch']['recall@100']:.4f} | {r['http_seconds']} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
