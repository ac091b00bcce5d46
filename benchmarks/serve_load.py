"""Load benchmark: the Serve app against the plain single-process service, side by side in one run.

Both servers are started by this script as subprocesses on 127.0.0.1 over the same published index version and
the same model: the Serve app exactly as ``serve run deploy/serve.yaml`` runs it (only the port and the store
replaced), and :mod:`benchmarks.plain_service` (once per ``--plain-threads`` value). Then, for each concurrency
level (default 1, 8, 32 clients), each system gets the same stream of real search queries (Home Depot dev +
train: distinct queries, or search-log-like repeats with ``--zipf``; see :func:`query_streams`) from closed-loop
asyncio clients, bounded by ``--duration`` seconds and ``--max-requests``. Systems take turns at each level so
background load on a shared machine hits all of them alike. The client is aiohttp (see :func:`run_level`).

Reported per system and level: p50/p95/p99 latency, throughput, error rate, the query-cache hit ratio seen in the
responses, and for Serve the mean encoder and search batch sizes (from its /metrics). Ratios compare Serve with
each plain setting.

    python -m benchmarks.serve_load --store /work/bench-store/homedepot --out bench-out/serve_load.json

A benchmark, not a test: it prints numbers and asserts nothing. Skips with a message when the query files or the
index version are absent.
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
import random
import signal
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import httpx
import numpy as np
import yaml

logger = logging.getLogger("serve_load")

REPO = Path(__file__).resolve().parents[1]
DATA = Path("/work/shared/data/homedepot")
DEFAULT_QUERIES = [DATA / "queries_dev.tsv", DATA / "queries_train.tsv"]  # 9,498 distinct search queries
RAY_ENV = {"RAY_AUTH_MODE": "disabled", "RAY_USAGE_STATS_ENABLED": "0", "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "0"}


@dataclass
class LevelResult:
    system: str
    concurrency: int
    requests: int
    errors: int
    seconds: float
    p50_ms: float
    p95_ms: float
    p99_ms: float
    throughput_rps: float
    error_rate: float
    cache_hit_ratio: float | None  # share of answered requests whose query embedding came from the cache
    mean_batch: float | None = None  # Serve only: mean forward-batch size over cache-missing queries
    mean_search_batch: float | None = None  # Serve only: mean users per retriever search
    mean_ingress_batch: float | None = None  # Serve only: mean users per ingress group (one call per deployment)
    rejected_503: int = 0  # answered 503 (bounded queue full); counted in errors too
    retry_after: bool | None = None  # every 503 carried Retry-After
    status_counts: dict | None = None  # HTTP status (or "transport") → responses
    cpu_ms_per_request: dict | None = None  # process group → CPU ms per answered request during the level


def read_queries(path: Path) -> list[str]:
    """Query texts from a ``qid<TAB>text`` file."""
    queries = []
    for line in path.read_text(encoding="utf-8").splitlines():
        _, _, text = line.partition("\t")
        if text.strip():
            queries.append(text.strip())
    return queries


def query_streams(queries: list[str], *, levels: int, n: int, zipf: float, seed: int) -> list[list[str]]:
    """One query stream per concurrency level, identical for every system at that level.

    ``zipf == 0``: distinct queries, a fresh slice of a seeded shuffle per level, so no query is ever sent twice
    (while there are enough) and the Serve app's cache cannot help: this measures batching alone.
    ``zipf > 0``: ``n`` draws per level where the r-th most popular query has probability ∝ 1 / r**zipf — the
    long-tailed repeats of a real search log (s ≈ 1); the cache helps as it would in a shop.
    """
    rng = random.Random(seed)
    ranked = list(dict.fromkeys(queries))
    rng.shuffle(ranked)
    if zipf > 0:
        weights = [1.0 / (rank ** zipf) for rank in range(1, len(ranked) + 1)]
        return [rng.choices(ranked, weights=weights, k=n) for _ in range(levels)]
    if levels * n > len(ranked):
        logger.warning("%d distinct queries for %d levels x %d requests: streams will repeat queries",
                       len(ranked), levels, n)
    size = max(1, len(ranked) // levels) if levels * n > len(ranked) else n
    return [ranked[i * size:(i + 1) * size] for i in range(levels)]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_healthy(url: str, timeout_s: float, *, check_alive=lambda: None, what: str = "the server") -> dict:
    """``GET {url}/healthz`` once a second until it answers 200 (its JSON), ``timeout_s`` at most."""
    deadline = time.monotonic() + timeout_s
    with httpx.Client(timeout=10, trust_env=False) as client:
        while time.monotonic() < deadline:
            check_alive()
            try:
                response = client.get(f"{url}/healthz")
                if response.status_code == 200:
                    return response.json()
            except httpx.TransportError:
                pass
            time.sleep(1)
    raise TimeoutError(f"{what} not ready after {timeout_s} s")


class Server:
    """A server subprocess on 127.0.0.1: started, waited for (GET /healthz → 200), stopped with SIGTERM."""

    def __init__(self, name: str, command: list[str], url: str, *, env: dict[str, str], log: Path):
        self.name, self.command, self.url, self.env, self.log_path = name, command, url, env, log
        self.proc: subprocess.Popen | None = None

    def __enter__(self) -> "Server":
        self._log = self.log_path.open("wb")
        logger.info("starting %s: %s (log: %s)", self.name, " ".join(self.command), self.log_path)
        self.proc = subprocess.Popen(self.command, cwd=REPO, env={**os.environ, **self.env}, stdout=self._log,
                                     stderr=subprocess.STDOUT, start_new_session=True)
        return self

    def wait_ready(self, timeout_s: float) -> dict:
        def check_alive() -> None:
            if self.proc.poll() is not None:
                raise RuntimeError(f"{self.name} exited with code {self.proc.returncode}; see {self.log_path}")

        return wait_healthy(self.url, timeout_s, check_alive=check_alive, what=f"{self.name} (see {self.log_path})")

    def __exit__(self, *exc) -> None:
        if self.proc and self.proc.poll() is None:
            logger.info("stopping %s (pid %d)", self.name, self.proc.pid)
            self.proc.send_signal(signal.SIGTERM)  # `serve run` ignores SIGINT in the background
            try:
                self.proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)  # its own session: only what this script started
                self.proc.wait()
        self._log.close()


def serve_env() -> dict[str, str]:
    """Environment of a ``serve run`` on a private local Ray: loopback, no auth token, replicas import the repo.

    RAY_TMPDIR is a fresh short path: Ray's socket paths must stay under 107 bytes.
    """
    return {**RAY_ENV, "RAY_TMPDIR": tempfile.mkdtemp(prefix="csray-"), "PYTHONPATH": str(REPO),
            "HF_HUB_OFFLINE": "1"}


def serve_config(base: Path, out: Path, *, port: int, store: str, overrides: dict) -> Path:
    """``deploy/serve.yaml`` with only the port, the store and any ``--serve-arg`` overrides replaced."""
    config = yaml.safe_load(base.read_text())
    config["http_options"]["port"] = port
    [app] = config["applications"]
    app["args"] = {**app.get("args", {}), "store": store, **overrides}
    out.write_text(yaml.safe_dump(config, sort_keys=False))
    return out


def scrape(url: str) -> dict[str, float]:
    """The Serve app's counters this benchmark reports (sums over label sets)."""
    from prometheus_client.parser import text_string_to_metric_families

    text = httpx.get(f"{url}/metrics", timeout=30, trust_env=False).text
    wanted = {"coldstart_query_batch_size_sum", "coldstart_query_batch_size_count",
              "coldstart_search_batch_size_sum", "coldstart_search_batch_size_count",
              "coldstart_ingress_batch_size_sum", "coldstart_ingress_batch_size_count"}
    out = dict.fromkeys(wanted, 0.0)
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name in wanted:
                out[sample.name] += sample.value
    return out


async def run_level(url: str, queries: list[str], *, system: str, concurrency: int, duration_s: float,
                    max_requests: int, k: int, honour_retry_after: bool = True) -> LevelResult:
    """``concurrency`` closed-loop clients (each sends its next request when the last one is answered).

    aiohttp, not httpx: measured on this machine, httpx's connection pool costs ~3 ms of client CPU per request
    at 32 concurrent connections against ~0.25 ms for aiohttp; on 2 cores the httpx client was the bottleneck
    and both servers looked alike.
    """
    import aiohttp

    stream = itertools.cycle(queries)
    latencies: list[float] = []
    hits = answered = errors = sent = 0
    statuses: dict[str, int] = {}
    retry_after = True
    deadline = time.perf_counter() + duration_s

    async def worker(session: "aiohttp.ClientSession") -> None:
        nonlocal hits, answered, errors, sent, retry_after
        while sent < max_requests and time.perf_counter() < deadline:
            sent += 1
            body = {"query": next(stream), "k": k}
            started = time.perf_counter()
            wait = 0.0
            try:
                async with session.post("/recommend", json=body) as response:
                    ok = response.status == 200
                    payload = await response.json() if ok else await response.read()
                    statuses[str(response.status)] = statuses.get(str(response.status), 0) + 1
                    if response.status == 503:
                        retry_after &= "Retry-After" in response.headers
                        wait = float(response.headers.get("Retry-After", 0)) if honour_retry_after else 0.0
                if ok:
                    answered += 1
                    hits += bool(payload.get("cache_hit"))
            except (aiohttp.ClientError, asyncio.TimeoutError):
                ok = False
                statuses["transport"] = statuses.get("transport", 0) + 1
            latencies.append(time.perf_counter() - started)
            errors += not ok
            if not ok and wait:
                await asyncio.sleep(min(wait, max(0.0, deadline - time.perf_counter())))  # as a polite client does

    started = time.perf_counter()
    connector = aiohttp.TCPConnector(limit=concurrency)
    async with aiohttp.ClientSession(base_url=url, connector=connector, timeout=aiohttp.ClientTimeout(total=60),
                                     trust_env=False) as session:
        await asyncio.gather(*(worker(session) for _ in range(concurrency)))
    seconds = time.perf_counter() - started
    ms = np.asarray(latencies) * 1000
    return LevelResult(
        system=system, concurrency=concurrency, requests=len(latencies), errors=errors, seconds=round(seconds, 2),
        p50_ms=round(float(np.percentile(ms, 50)), 1), p95_ms=round(float(np.percentile(ms, 95)), 1),
        p99_ms=round(float(np.percentile(ms, 99)), 1), throughput_rps=round((len(latencies) - errors) / seconds, 1),
        error_rate=round(errors / max(1, len(latencies)), 4),
        cache_hit_ratio=round(hits / answered, 3) if answered else None,
        rejected_503=statuses.get("503", 0), retry_after=retry_after if statuses.get("503") else None,
        status_counts=statuses,
    )


def process_groups(pid: int) -> dict[str, list]:
    """The server's process tree grouped by role: for Serve, Ray titles its workers (``ray::ServeReplica:…``,
    ``ray::ProxyActor``), so the proxy, each deployment and Ray's own daemons are told apart."""
    import psutil

    root = psutil.Process(pid)
    groups: dict[str, list] = {}
    for proc in [root, *root.children(recursive=True)]:
        try:
            title = " ".join(proc.cmdline()) or proc.name()
        except psutil.Error:
            continue
        if "ServeReplica" in title:
            name = "replica:" + title.split("ServeReplica:", 1)[1].split()[0].split(":")[-1]
        elif "ProxyActor" in title:
            name = "proxy"
        elif "ServeController" in title:
            name = "controller"
        elif "raylet" in title or "gcs_server" in title or "dashboard" in title or "ray::" in title:
            name = "ray daemons + idle workers"
        else:
            name = "server" if proc.pid == pid else "other"
        groups.setdefault(name, []).append(proc)
    return groups


def cpu_seconds(groups: dict[str, list]) -> dict[str, float]:
    import psutil

    out = {}
    for name, procs in groups.items():
        total = 0.0
        for proc in procs:
            try:
                t = proc.cpu_times()
                total += t.user + t.system
            except psutil.Error:
                pass
        out[name] = total
    return out


def markdown(results: list[LevelResult]) -> str:
    by = {(r.system, r.concurrency): r for r in results}
    systems = list(dict.fromkeys(r.system for r in results))
    levels = sorted({r.concurrency for r in results})
    lines = [
        "| clients | system | p50 ms | p95 ms | p99 ms | req/s | errors | 503 (Retry-After) | cache hits | encoder batch "
        "| search batch | ingress batch | CPU ms/request |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for c in levels:
        for system in systems:
            r = by.get((system, c))
            if r:
                lines.append(f"| {c} | {system} | {r.p50_ms} | {r.p95_ms} | {r.p99_ms} | {r.throughput_rps} | "
                             f"{r.error_rate:.1%} | {r.rejected_503}{'' if r.retry_after is None else (' (yes)' if r.retry_after else ' (NO)')} | "
                             f"{'' if r.cache_hit_ratio is None else f'{r.cache_hit_ratio:.0%}'} | "
                             f"{'' if r.mean_batch is None else f'{r.mean_batch:.1f}'} | "
                             f"{'' if r.mean_search_batch is None else f'{r.mean_search_batch:.1f}'} | "
                             f"{'' if r.mean_ingress_batch is None else f'{r.mean_ingress_batch:.1f}'} | "
                             f"{_cpu(r.cpu_ms_per_request)} |")
    lines += ["", "| clients | vs | throughput serve/plain | p50 serve/plain | p99 serve/plain |",
              "| --- | --- | --- | --- | --- |"]
    for c in levels:
        for served in (x for x in systems if x.startswith("serve")):
            s = by.get((served, c))
            for system in (x for x in systems if not x.startswith("serve")):
                p = by.get((system, c))
                if p and s:
                    lines.append(f"| {c} | {served} vs {system} | {s.throughput_rps / p.throughput_rps:.2f}× | "
                                 f"{s.p50_ms / p.p50_ms:.2f}× | {s.p99_ms / p.p99_ms:.2f}× |")
    return "\n".join(lines)


def _cpu(by_group: dict | None) -> str:
    if not by_group:
        return ""
    parts = [f"{g} {v}" for g, v in by_group.items() if g != "total" and v >= 0.05]
    return f"{by_group['total']} ({', '.join(parts)})"


def warm_up(url: str, n: int) -> None:
    """Load both code paths with queries that are not in the measured stream (so no cache head start)."""
    with httpx.Client(base_url=url, timeout=60, trust_env=False) as client:
        for i in range(n):
            client.post("/recommend", json={"query": f"warm up query number {i}", "k": 10}).raise_for_status()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--store", default="/work/bench-store/homedepot")
    parser.add_argument("--queries", type=Path, nargs="+", default=DEFAULT_QUERIES,
                        help="qid<TAB>text files (default: the Home Depot dev and train queries)")
    parser.add_argument("--concurrency", default="1,8,32", help="comma-separated client counts")
    parser.add_argument("--duration", type=float, default=20.0, help="seconds per system and level (upper bound)")
    parser.add_argument("--max-requests", type=int, default=3000, help="requests per system and level (upper bound)")
    parser.add_argument("--k", type=int, default=10)
    parser.add_argument("--zipf", type=float, default=0.0,
                        help="0: every query once in shuffled order; s > 0: Zipf(s) repeats like a search log")
    parser.add_argument("--warmup", type=int, default=20, help="unmeasured requests per system before measuring")
    parser.add_argument("--plain-threads", default="1,2",
                        help="torch/OpenMP threads of the plain service; one plain server per value, so Serve is "
                        "compared with the baseline's best setting on this machine")
    parser.add_argument("--serve-config", type=Path, default=REPO / "deploy" / "serve.yaml")
    parser.add_argument("--serve-arg", action="append", default=[], metavar="KEY=VALUE",
                        help="override one of the Serve app's args (repeatable), e.g. query_cache_size=0")
    parser.add_argument("--plain-backends", default="torch",
                        help="encoder runtimes of the plain service (comma-separated): torch is the baseline, "
                        "onnx-int8 the Serve app's own encoder, so what Serve itself adds shows")
    parser.add_argument("--systems", default="plain,serve", help="plain, serve or both")
    parser.add_argument("--serve-variant", action="append", default=[], metavar="NAME:KEY=VALUE,...",
                        help="another Serve app, started with these environment variables for `serve run` (e.g. "
                        "serve-haproxy:RAY_SERVE_ENABLE_HA_PROXY=1,RAY_SERVE_HAPROXY_NBTHREAD=1); repeatable")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--ignore-retry-after", action="store_true",
                        help="clients resend at once after a 503 instead of waiting its Retry-After")
    parser.add_argument("--out", type=Path, default=REPO / "bench-out" / "serve_load.json")
    parser.add_argument("--ready-timeout", type=float, default=300)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    logging.getLogger("httpx").setLevel(logging.WARNING)  # one line per request would be the benchmark's own load

    missing = [str(p) for p in args.queries if not p.is_file()]
    if missing:
        print(f"skipped: the queries file(s) {', '.join(missing)} are not there (pass --queries qid<TAB>text files)")
        return 0
    from coldstart.artifacts.manifest import latest_version
    from coldstart.artifacts.store import open_store

    version = latest_version(open_store(args.store))
    if version is None:
        print(f"skipped: no index version is published in {args.store}: run `coldstart embed` first")
        return 0
    queries = [q for path in args.queries for q in read_queries(path)]
    levels = [int(c) for c in args.concurrency.split(",")]
    systems = args.systems.split(",")
    overrides = {k: yaml.safe_load(v) for k, v in (a.split("=", 1) for a in args.serve_arg)}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    work = args.out.parent

    servers = {}
    if "plain" in systems:
        for backend, threads in itertools.product(args.plain_backends.split(","),
                                                  (int(t) for t in args.plain_threads.split(","))):
            port = free_port()
            name = f"plain-{threads}t" + ("" if backend == "torch" else f"-{backend}")
            servers[name] = Server(name, [sys.executable, "-m", "benchmarks.plain_service", "--store", args.store,
                                          "--port", str(port), "--threads", str(threads), "--backend", backend],
                                   f"http://127.0.0.1:{port}",
                                   env={"HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": str(threads)},  # FAISS too
                                   log=work / f"{name}.log")
    variants = {"serve": {}} if "serve" in systems else {}
    for variant in args.serve_variant:  # name:KEY=VALUE,KEY=VALUE — environment of `serve run` (its controller)
        name, _, env = variant.partition(":")
        variants[name] = dict(kv.split("=", 1) for kv in env.split(",") if kv)
    for name, extra_env in variants.items():
        serve_port = free_port()
        config = serve_config(args.serve_config, work / f"{name}-bench.yaml", port=serve_port,
                              store=str(Path(args.store).resolve()), overrides=overrides)
        serve_cli = Path(sys.executable).with_name("serve")  # the `serve` CLI of this Python environment
        # A private local Ray (address "local": never someone else's running cluster); PYTHONPATH lets the
        # replicas import the app, as in docs/serving.md.
        servers[name] = Server(name, [str(serve_cli), "run", "--address", "local", str(config)],
                               f"http://127.0.0.1:{serve_port}", env={**serve_env(), **extra_env},
                               log=work / f"{name}_run.log")

    results: list[LevelResult] = []
    started_at = dt.datetime.now(dt.timezone.utc)
    load_at_start = os.getloadavg()
    entered = []
    try:
        for server in servers.values():
            entered.append(server.__enter__())
        for name, server in servers.items():
            health = server.wait_ready(args.ready_timeout)
            logger.info("%s ready: index version %s, %s items", name, health.get("index_version"), health.get("items"))
            warm_up(server.url, args.warmup)
        streams = query_streams(queries, levels=len(levels), n=args.max_requests, zipf=args.zipf, seed=args.seed)
        for concurrency, stream in zip(levels, streams):
            for name, server in servers.items():
                before = scrape(server.url) if name.startswith("serve") else None
                groups = process_groups(server.proc.pid)
                cpu_before = cpu_seconds(groups)
                result = asyncio.run(run_level(server.url, stream, system=name, concurrency=concurrency,
                                               duration_s=args.duration, max_requests=args.max_requests, k=args.k,
                                               honour_retry_after=not args.ignore_retry_after))
                cpu_after = cpu_seconds(groups)
                answered = max(1, result.requests - result.errors)
                result.cpu_ms_per_request = {g: round((cpu_after[g] - cpu_before[g]) * 1000 / answered, 2)
                                             for g in groups}
                result.cpu_ms_per_request["total"] = round(sum(result.cpu_ms_per_request.values()), 2)
                if before is not None:
                    after = scrape(server.url)
                    def mean(name: str) -> float | None:
                        n = after[f"{name}_count"] - before[f"{name}_count"]
                        return round((after[f"{name}_sum"] - before[f"{name}_sum"]) / n, 2) if n else None

                    result.mean_batch = mean("coldstart_query_batch_size")
                    result.mean_search_batch = mean("coldstart_search_batch_size")
                    result.mean_ingress_batch = mean("coldstart_ingress_batch_size")
                logger.info("%s", result)
                results.append(result)
    finally:
        for server in reversed(entered):
            server.__exit__(None, None, None)

    report = {
        "command": " ".join([Path(sys.argv[0]).name, *(argv if argv is not None else sys.argv[1:])]),
        "date": started_at.isoformat(timespec="seconds"),
        "machine": {"cpus": os.cpu_count(), "platform": platform.platform(), "python": platform.python_version(),
                    "load_average_at_start": load_at_start, "load_average_at_end": os.getloadavg()},
        "store": args.store, "index_version": version, "queries": [str(p) for p in args.queries], "distinct_queries": len(set(queries)),
        "serve_overrides": overrides, "zipf": args.zipf, "results": [asdict(r) for r in results],
    }
    args.out.write_text(json.dumps(report, indent=2))
    print(markdown(results))
    print(f"\nwritten to {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
