"""The Serve app on this machine, from Python, until Ctrl-C or SIGTERM: what ``coldstart demo --serve`` runs.

``serve run deploy/serve.yaml`` does the same from a config file in a process of its own; this is the path for a
process that already holds a Ray (the demo's, after its embed job), so one command builds the store and serves it.
HTTP listens on 127.0.0.1 only. Stopping deletes the app and, on the local Ray this process started, Serve and
Ray with it; on a cluster joined through ``RAY_ADDRESS`` only this app goes.
"""

from __future__ import annotations

import json
import logging
import os
import signal
import socket
import sys
import threading
import time
import urllib.error
import urllib.request

from coldstart.serving.config import ServeAppArgs

logger = logging.getLogger(__name__)

HOST = "127.0.0.1"


def _port_is_free(port: int) -> bool:
    with socket.socket() as sock:
        try:
            sock.bind((HOST, port))
        except OSError:
            return False
    return True


def wait_ready(url: str, *, timeout_s: float) -> dict:
    """Poll ``{url}healthz`` until it answers 200 (an index version is loaded); its body. (urllib with no proxy
    rather than httpx, which would log every poll at INFO.)"""
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))  # loopback: never through a proxy
    deadline = time.monotonic() + timeout_s
    last = "no answer"
    while time.monotonic() < deadline:
        try:
            with opener.open(url + "healthz", timeout=10) as response:
                return json.load(response)
        except urllib.error.HTTPError as err:  # 503 while the index loads
            last = f"{err.code} {err.read()[:200].decode(errors='replace')}"
        except (urllib.error.URLError, OSError) as err:
            last = str(err) or type(err).__name__
        time.sleep(0.5)
    raise TimeoutError(f"the app at {url} was not ready within {timeout_s:.0f} s (last /healthz: {last})")


def start(args: ServeAppArgs, *, port: int = 8000, name: str = "coldstart", route_prefix: str = "/",
          ready_timeout_s: float = 300) -> str:
    """Run the app on Serve's HTTP proxy at ``127.0.0.1:port`` in this process's Ray (a local one on loopback when
    none is connected) and wait until it serves an index version; the app's URL, ending in ``/``."""
    from ray import serve

    from pipelines.ray_runtime import init_ray
    from pipelines.serve_app import build_app

    init_ray()
    if not _port_is_free(port):
        raise RuntimeError(f"port {port} on {HOST} is in use (another service, or an earlier run still stopping): "
                           "pass another --port")
    quiet = {"enable_access_log": False}  # as deploy/serve.yaml: the app logs each request once, with its id
    serve.start(proxy_location="HeadOnly", http_options={"host": HOST, "port": port}, logging_config=quiet)
    serve.run(build_app(args), name=name, route_prefix=route_prefix, blocking=False, logging_config=quiet)
    url = f"http://{HOST}:{port}{route_prefix.rstrip('/')}/"
    wait_ready(url, timeout_s=ready_timeout_s)
    return url


def stop(name: str = "coldstart") -> None:
    """Delete the app; on a local Ray (no ``RAY_ADDRESS``) also stop Serve and Ray."""
    import ray
    from ray import serve

    if not ray.is_initialized():
        return
    if os.environ.get("RAY_ADDRESS"):
        serve.delete(name)  # a shared cluster: its other apps stay
        return
    serve.shutdown()  # every app of this process's own Serve, then its Ray
    ray.shutdown()


def serve_until_stopped(args: ServeAppArgs, *, port: int = 8000, name: str = "coldstart", out=sys.stdout) -> None:
    """:func:`start`, print the URL, block until SIGINT or SIGTERM, then :func:`stop`."""
    stopping = threading.Event()
    try:
        url = start(args, port=port, name=name)
        # After start: a Ctrl-C while it starts raises KeyboardInterrupt, and the finally below still cleans up.
        received: list[int] = []

        def on_signal(signum, _frame):
            received.append(signum)
            stopping.set()

        previous = {s: signal.signal(s, on_signal) for s in (signal.SIGINT, signal.SIGTERM)}
        try:
            print(f"\nServing {args.store} on {url}  (try it in a browser; the API docs are at {url}docs)\n"
                  "Stop with Ctrl-C or SIGTERM.", file=out, flush=True)
            while not stopping.wait(0.5):  # short waits: the handler runs on the main thread between them
                pass
            logger.info("%s received: stopping the app", signal.Signals(received[0]).name)
        finally:
            for s, handler in previous.items():
                signal.signal(s, handler)
    finally:
        stop(name)
        print("stopped", file=out, flush=True)
