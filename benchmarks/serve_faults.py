"""Faults under load: a Serve replica SIGKILLed while clients keep sending, and a soak with repeated hot swaps.

Both start the Serve app exactly as ``serve run deploy/serve.yaml`` does (only the port, the store, the replica
count and their CPUs replaced; see :mod:`benchmarks.serve_load`, whose server and client code this reuses) and
drive it with closed-loop aiohttp clients sending real search queries.

``kill``: ``--replicas`` Ingress replicas serve ``--clients`` clients; after ``--before`` seconds one replica's
process is SIGKILLed (found by its Ray process title in the app's own process tree). Reported: requests and
failures (any answer but 200, or no answer) before and after the kill, the failed share, the throughput per
second, the seconds until a rolling 3-s throughput is back to 90 % of the pre-kill mean, and the seconds until
Serve has the replica count back. Clients do not retry: every failure the kill causes is counted.

``soak``: ``--requests`` requests in all while ``--swaps`` new versions are published to the store, evenly
spaced (the same items re-published, so each swap loads a whole version). After every swap, once every replica
serves the new version and three poll intervals later, each replica process's RSS, open file descriptors and
threads are sampled. Reported:
those series, and each replica's RSS after each swap relative to its RSS after the first (the goal: within 10 %).

    python -m benchmarks.serve_faults kill --store /tmp/bench/hd-int8 --out bench-out/serve_kill.json
    python -m benchmarks.serve_faults soak --store /tmp/bench/hd-int8 --out bench-out/serve_soak.json

A benchmark, not a test: it prints numbers and asserts nothing. Skips when the store has no version.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import itertools
import json
import logging
import os
import platform
import signal
import sys
import time
from pathlib import Path

import numpy as np
import yaml

from benchmarks.serve_load import (DEFAULT_QUERIES, REPO, Server, free_port, process_groups, read_queries,
                                   serve_env, wait_healthy)

logger = logging.getLogger("serve_faults")
POLL_S = 1  # soak: the replicas' poll interval, so that they follow a swap every few seconds


def faults_config(base: Path, out: Path, *, port: int, store: str, replicas: int, cpus: float) -> Path:
    """``deploy/serve.yaml`` with the port, the store, the Ingress replica count and its CPUs replaced."""
    config = yaml.safe_load(base.read_text())
    config["http_options"]["port"] = port
    [app] = config["applications"]
    app["args"] = {**app.get("args", {}), "store": store}
    [ingress] = [d for d in app["deployments"] if d["name"] == "Ingress"]
    ingress["num_replicas"] = replicas
    ingress.setdefault("ray_actor_options", {})["num_cpus"] = cpus
    out.write_text(yaml.safe_dump(config, sort_keys=False))
    return out


def replica_processes(server: Server) -> list:
    """The app's Ingress replica processes. Ray titles them ``ray::ServeReplica:coldstart:Ingress``, with the
    method it is running appended while it runs one (``…Ingress.handle_request``)."""
    return [p for name, procs in process_groups(server.proc.pid).items()
            if name.split(".")[0] == "replica:Ingress" for p in procs]


class Load:
    """Closed-loop clients that run until stopped, recording ``(time sent, seconds, status)`` per request."""

    def __init__(self, url: str, queries: list[str], clients: int, k: int = 10):
        self.url, self.queries, self.clients, self.k = url, queries, clients, k
        self.records: list[tuple[float, float, str]] = []
        self.stop = asyncio.Event()

    async def run(self) -> None:
        import aiohttp

        stream = itertools.cycle(self.queries)

        async def client(session) -> None:
            while not self.stop.is_set():
                sent = time.monotonic()
                try:
                    async with session.post("/recommend", json={"query": next(stream), "k": self.k}) as response:
                        await response.read()
                        status = str(response.status)
                except (aiohttp.ClientError, asyncio.TimeoutError):
                    status = "transport"
                self.records.append((sent, time.monotonic() - sent, status))

        connector = aiohttp.TCPConnector(limit=self.clients)
        async with aiohttp.ClientSession(base_url=self.url, connector=connector, trust_env=False,
                                         timeout=aiohttp.ClientTimeout(total=30)) as session:
            await asyncio.gather(*(client(session) for _ in range(self.clients)))


def per_second(records, start: float, end: float) -> list[int]:
    """Answered (200) requests completed in each second from ``start``."""
    counts = [0] * int(np.ceil(end - start))
    for sent, seconds, status in records:
        second = int(sent + seconds - start)
        if status == "200" and 0 <= second < len(counts):
            counts[second] += 1
    return counts


def _machine() -> dict:
    return {"cpus": os.cpu_count(), "platform": platform.platform(), "python": platform.python_version(),
            "load_average": os.getloadavg()}


async def kill_run(args, server: Server, queries: list[str]) -> dict:
    load = Load(server.url, queries, args.clients)
    task = asyncio.create_task(load.run())
    start = time.monotonic()
    await asyncio.sleep(args.before)
    victims = replica_processes(server)
    for _ in range(40):  # a replica being replaced (a failed health check on a loaded machine) shows up again
        if victims:
            break
        await asyncio.sleep(0.25)
        victims = replica_processes(server)
    if not victims:
        raise RuntimeError("no Ingress replica process found in the app's process tree")
    victim = victims[0]
    pids_before = {p.pid for p in victims}
    killed_at = time.monotonic()
    os.kill(victim.pid, signal.SIGKILL)
    logger.info("SIGKILLed replica pid %d at %.1f s", victim.pid, killed_at - start)
    replaced_at = None
    while time.monotonic() - killed_at < args.after:
        if replaced_at is None:
            now = {p.pid for p in replica_processes(server)}
            if len(now) >= args.replicas and now != pids_before:
                replaced_at = time.monotonic()
        await asyncio.sleep(0.25)
    load.stop.set()
    await task
    end = time.monotonic()
    counts = per_second(load.records, start, end)
    kill_second = int(killed_at - start)
    baseline = float(np.mean(counts[5:kill_second])) if kill_second > 6 else float(np.mean(counts[:kill_second]))
    recovered = None
    for second in range(kill_second, len(counts) - 2):
        if np.mean(counts[second:second + 3]) >= 0.9 * baseline:
            recovered = second - (killed_at - start)
            break
    before = [r for r in load.records if r[0] < killed_at]
    after = [r for r in load.records if r[0] >= killed_at]
    failed = lambda rs: sum(1 for r in rs if r[2] != "200")  # noqa: E731
    statuses: dict[str, int] = {}
    for r in load.records:
        statuses[r[2]] = statuses.get(r[2], 0) + 1
    ms = np.asarray([r[1] for r in after if r[2] == "200"]) * 1000
    return {
        "clients": args.clients, "replicas": args.replicas, "cpus_per_replica": args.cpus,
        "requests": len(load.records), "failed": failed(load.records),
        "failed_share": round(failed(load.records) / max(1, len(load.records)), 5),
        "requests_before_kill": len(before), "failed_before_kill": failed(before),
        "requests_after_kill": len(after), "failed_after_kill": failed(after), "statuses": statuses,
        "baseline_rps": round(baseline, 1), "seconds_to_90pct_throughput": None if recovered is None
        else round(max(0.0, recovered), 1),
        "seconds_to_replica_replaced": None if replaced_at is None else round(replaced_at - killed_at, 1),
        "p99_ms_after_kill": round(float(np.percentile(ms, 99)), 1) if len(ms) else None,
        "throughput_per_second": counts, "kill_second": kill_second,
    }


def _sample(server: Server) -> dict[int, dict]:
    out = {}
    for proc in replica_processes(server):
        try:
            out[proc.pid] = {"rss_mb": round(proc.memory_info().rss / 2**20, 1), "fds": proc.num_fds(),
                             "threads": proc.num_threads()}
        except Exception:  # noqa: BLE001 - a replica that just went away
            pass
    return out


def _republish(store_uri: str) -> str:
    """Publish the live version's items and vectors again as a new version (a full load for every replica)."""
    from coldstart.artifacts.store import open_store
    from coldstart.artifacts.versions import load_version, write_version
    from coldstart.ranking.faiss_index import IndexConfig

    store = open_store(store_uri)
    live = load_version(store)
    manifest = write_version(store, items=live.items, vectors=live.index.vectors, encoder=live.manifest.encoder,
                             index_config=IndexConfig(**live.manifest.index), catalog=live.manifest.catalog,
                             parent=live.version)
    return manifest.version


async def soak_run(args, server: Server, queries: list[str]) -> dict:
    load = Load(server.url, queries, args.clients)
    task = asyncio.create_task(load.run())
    start = time.monotonic()
    samples = [{"swap": 0, "at_requests": 0, "replicas": _sample(server)}]
    per_swap = args.requests // (args.swaps + 1)
    for swap in range(1, args.swaps + 1):
        while len(load.records) < swap * per_swap:
            await asyncio.sleep(0.5)
        version = await asyncio.to_thread(_republish, args.store)
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:  # every replica serves the new version
            health = await asyncio.to_thread(wait_healthy, server.url, 30)
            if {r.get("index_version") for r in health.get("replicas", [])} == {version}:
                break
            await asyncio.sleep(1)
        await asyncio.sleep(3 * POLL_S)  # settled: the poll after the swap hands the old version's memory back
        samples.append({"swap": swap, "version": version, "at_requests": len(load.records),
                        "replicas": _sample(server)})
        logger.info("swap %d/%d (%s) at %d requests: %s", swap, args.swaps, version, len(load.records),
                    samples[-1]["replicas"])
    while len(load.records) < args.requests:
        await asyncio.sleep(0.5)
    load.stop.set()
    await task
    samples.append({"swap": "end", "at_requests": len(load.records), "replicas": _sample(server)})
    statuses: dict[str, int] = {}
    for r in load.records:
        statuses[r[2]] = statuses.get(r[2], 0) + 1
    drift = {}
    first = samples[1]["replicas"] if len(samples) > 1 else samples[0]["replicas"]
    for pid, base in first.items():
        series = [s["replicas"][pid]["rss_mb"] for s in samples[1:] if pid in s["replicas"]]
        drift[pid] = {"rss_mb_after_first_swap": base["rss_mb"], "rss_mb_last": series[-1],
                      "max_rel_change": round(max(abs(v / base["rss_mb"] - 1) for v in series), 4),
                      "fds": [s["replicas"][pid]["fds"] for s in samples[1:] if pid in s["replicas"]],
                      "threads": [s["replicas"][pid]["threads"] for s in samples[1:] if pid in s["replicas"]]}
    return {"clients": args.clients, "requests": len(load.records), "swaps": args.swaps,
            "seconds": round(time.monotonic() - start, 1), "statuses": statuses,
            "failed": sum(n for s, n in statuses.items() if s != "200"), "samples": samples, "per_replica": drift}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("mode", choices=["kill", "soak"])
    parser.add_argument("--store", default="/tmp/bench/hd-int8")
    parser.add_argument("--queries", type=Path, nargs="+", default=DEFAULT_QUERIES)
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--replicas", type=int, default=2)
    parser.add_argument("--cpus", type=float, default=0.5, help="CPUs per Ingress replica (2 replicas on 2 cores)")
    parser.add_argument("--before", type=float, default=20, help="kill: seconds of load before the kill")
    parser.add_argument("--after", type=float, default=40, help="kill: seconds of load after the kill")
    parser.add_argument("--requests", type=int, default=100_000, help="soak: requests in all")
    parser.add_argument("--swaps", type=int, default=20, help="soak: hot swaps during the run")
    parser.add_argument("--serve-config", type=Path, default=REPO / "deploy" / "serve.yaml")
    parser.add_argument("--out", type=Path, default=REPO / "bench-out" / "serve_faults.json")
    parser.add_argument("--ready-timeout", type=float, default=300)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")

    from coldstart.artifacts.manifest import latest_version
    from coldstart.artifacts.store import open_store

    if latest_version(open_store(args.store)) is None:
        print(f"skipped: no index version is published in {args.store}: run `coldstart embed` first")
        return 0
    missing = [str(p) for p in args.queries if not p.is_file()]
    if missing:
        print(f"skipped: the queries file(s) {', '.join(missing)} are not there")
        return 0
    queries = [q for path in args.queries for q in read_queries(path)]
    args.out.parent.mkdir(parents=True, exist_ok=True)
    port = free_port()
    config = faults_config(args.serve_config, args.out.with_suffix(".yaml"), port=port,
                           store=str(Path(args.store).resolve()), replicas=args.replicas, cpus=args.cpus)
    serve_cli = Path(sys.executable).with_name("serve")
    if args.mode == "soak":  # replicas must poll often enough to follow a swap every few seconds
        cfg = yaml.safe_load(config.read_text())
        cfg["applications"][0]["args"]["poll_interval_s"] = POLL_S
        config.write_text(yaml.safe_dump(cfg, sort_keys=False))
    started = dt.datetime.now(dt.timezone.utc)
    with Server("serve", [str(serve_cli), "run", "--address", "local", str(config)], f"http://127.0.0.1:{port}",
                env=serve_env(), log=args.out.with_suffix(".log")) as server:
        server.wait_ready(args.ready_timeout)
        while len(replica_processes(server)) < args.replicas:
            time.sleep(1)
        run = kill_run if args.mode == "kill" else soak_run
        result = asyncio.run(run(args, server, queries))
    report = {"command": " ".join(["python -m benchmarks.serve_faults", *(argv or sys.argv[1:])]),
              "date": started.isoformat(timespec="seconds"), "machine": _machine(), "store": args.store,
              "mode": args.mode, **result}
    args.out.write_text(json.dumps(report, indent=2))
    summary = {k: v for k, v in report.items() if k not in ("throughput_per_second", "samples")}
    print(json.dumps(summary, indent=2))
    print(f"\nwritten to {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
