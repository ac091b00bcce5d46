"""CPU time per request, by process, for the Serve app and the plain service: where a request's cost goes.

Latency and throughput on a shared 2-core machine move with everyone else's load; CPU time per request does
much less (it is what the request itself burns), so it shows why one system is cheaper than the other. Each
system is started as in :mod:`benchmarks.serve_load`, warmed up, then sent ``--requests`` distinct queries by
``--concurrency`` closed-loop clients while the user+system CPU time of every process in its tree (for Serve:
the proxy, each replica, the controller, Ray's own daemons) is read from ``/proc`` before and after.

    python -m benchmarks.serve_cpu --concurrency 32 --requests 600

Linux only (reads ``/proc``). Prints numbers, asserts nothing.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import subprocess
import sys
import time
from pathlib import Path

from benchmarks.serve_load import (
    DEFAULT_QUERIES,
    REPO,
    Server,
    free_port,
    query_streams,
    read_queries,
    run_level,
    serve_config,
    serve_env,
    warm_up,
)

logger = logging.getLogger("serve_cpu")
TICKS = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of one process (0 when it is gone)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except FileNotFoundError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / TICKS


def process_tree(root: int) -> dict[int, str]:
    """``pid → short command`` for ``root`` and all its descendants."""
    out, todo = {}, [root]
    while todo:
        pid = todo.pop()
        try:
            cmd = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except FileNotFoundError:
            continue
        out[pid] = cmd.split(" -m ")[-1][:60] if "python" in cmd.split(" ")[0] else cmd[:60]
        children = subprocess.run(["pgrep", "-P", str(pid)], capture_output=True, text=True).stdout.split()
        todo += [int(c) for c in children]
    return out


def measure(server: Server, queries: list[str], *, concurrency: int) -> tuple[float, list[tuple[float, str]]]:
    warm_up(server.url, 20)
    procs = process_tree(server.proc.pid)
    before = {pid: cpu_seconds(pid) for pid in procs}
    result = asyncio.run(run_level(server.url, queries, system=server.name, concurrency=concurrency,
                                   duration_s=600, max_requests=len(queries), k=10))
    after = {pid: cpu_seconds(pid) for pid in procs}
    per_request = sorted(((after[p] - before[p]) / result.requests * 1000, name) for p, name in procs.items())
    logger.info("%s", result)
    return result.throughput_rps, per_request[::-1]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--store", default="/work/bench-store/homedepot")
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--requests", type=int, default=600)
    parser.add_argument("--plain-threads", type=int, default=1)
    parser.add_argument("--work", type=Path, default=REPO / "bench-out" / "serve_cpu")
    parser.add_argument("--serve-arg", action="append", default=[], metavar="KEY=VALUE",
                        help="override one of the Serve app's args (repeatable), e.g. ranker=latest")
    parser.add_argument("--systems", default="plain,serve", help="plain, serve or both")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    logging.getLogger("httpx").setLevel(logging.WARNING)
    if not sys.platform.startswith("linux") or any(not p.is_file() for p in DEFAULT_QUERIES):
        print("skipped: needs Linux /proc and the Home Depot query files")
        return 0
    queries = query_streams([q for p in DEFAULT_QUERIES for q in read_queries(p)], levels=1, n=args.requests,
                            zipf=0, seed=7)[0]
    args.work.mkdir(parents=True, exist_ok=True)
    port = free_port()
    plain = Server("plain", [sys.executable, "-m", "benchmarks.plain_service", "--store", args.store, "--port",
                             str(port), "--threads", str(args.plain_threads)], f"http://127.0.0.1:{port}",
                   env={"HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": str(args.plain_threads)},
                   log=args.work / "plain.log")
    port = free_port()
    import yaml

    overrides = {k: yaml.safe_load(v) for k, v in (a.split("=", 1) for a in args.serve_arg)}
    config = serve_config(REPO / "deploy" / "serve.yaml", args.work / "serve.yaml", port=port,
                          store=str(Path(args.store).resolve()), overrides=overrides)
    serve = Server("serve", [str(Path(sys.executable).with_name("serve")), "run", "--address", "local",
                             str(config)], f"http://127.0.0.1:{port}",
                   env=serve_env(), log=args.work / "serve_run.log")
    chosen = [server for server in (plain, serve) if server.name in args.systems.split(",")]
    for server in chosen:  # one at a time: each gets the machine to itself (and its neighbours)
        with server:
            server.wait_ready(300)
            rps, rows = measure(server, queries, concurrency=args.concurrency)
            print(f"\n{server.name}: {rps} req/s at {args.concurrency} clients; CPU ms per request:")
            for ms, name in rows:
                if ms >= 0.1:
                    print(f"  {ms:6.2f}  {name}")
            print(f"  {sum(ms for ms, _ in rows):6.2f}  total")
        time.sleep(2)
    return 0


if __name__ == "__main__":
    sys.exit(main())
