"""The running app fuzzed from its own OpenAPI schema with schemathesis: every check it has, thousands of requests.

Schema-valid requests must be answered 2xx and schema-invalid ones refused with a 4xx; no 5xx ever; every response
— 4xx included, whose body must carry a non-empty ``error`` — must match the schema of its status. This is what
keeps the schema saying exactly what the app accepts (strict types, "query or clicks", limits). The seed is fixed
so a CI failure reproduces (``COLDSTART_FUZZ_SEED`` and ``COLDSTART_FUZZ_EXAMPLES`` change it); a failure prints
schemathesis's report, with a curl command per failing case.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time

import httpx
import pytest

from coldstart.artifacts.store import open_store
from coldstart.catalog.sample import make_sample_catalog
from coldstart.encoders.encoder import Encoder, EncoderConfig
from coldstart.serving.config import ServeAppArgs
from tests.fixtures.versions import publish_encoded

pytestmark = [pytest.mark.ray, pytest.mark.slow, pytest.mark.timeout(900)]

SEED = os.environ.get("COLDSTART_FUZZ_SEED", "3")
EXAMPLES = os.environ.get("COLDSTART_FUZZ_EXAMPLES", "800")  # per operation and phase: ~1,700 requests in all


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="module")
def app_url(ray_local, tmp_path_factory, tiny_model_dir):
    from ray import serve

    from pipelines.serve_app import build_app

    table = make_sample_catalog()
    store = open_store(tmp_path_factory.mktemp("fuzz") / "store")
    encoder = Encoder(EncoderConfig(model=str(tiny_model_dir), max_length=32, num_threads=1))
    publish_encoded(store, encoder, table.column("item_id").to_pylist(), table.column("title").to_pylist())
    port = _free_port()
    serve.start(http_options={"host": "127.0.0.1", "port": port})
    try:
        args = ServeAppArgs(store=str(store.root), model=str(tiny_model_dir), max_length=32, poll_interval_s=1)
        serve.run(build_app(args), name="fuzz", route_prefix="/", blocking=False)
        url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 240
        while True:
            try:
                if httpx.get(f"{url}/healthz", trust_env=False).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert time.monotonic() < deadline, "the app did not become ready"
            time.sleep(0.5)
        yield url
    finally:
        serve.shutdown()


def test_schemathesis_finds_nothing(app_url, tmp_path):
    cli = shutil.which("schemathesis", path=os.path.dirname(sys.executable)) or shutil.which("schemathesis")
    assert cli, "schemathesis is not installed: it is in the dev extra"
    run = subprocess.run(
        [cli, "run", f"{app_url}/openapi.json", "--checks", "all", "--max-examples", EXAMPLES, "--seed", SEED,
         "--no-color"],
        capture_output=True, text=True, timeout=840, cwd=tmp_path,  # its report cache goes to tmp_path
        env={**os.environ, "NO_PROXY": "127.0.0.1", "no_proxy": "127.0.0.1"})
    report = run.stdout + run.stderr
    assert run.returncode == 0 and "No issues found" in report, report[-6000:]
    generated = int(report.split(" generated")[0].rsplit(None, 1)[-1])
    assert generated >= 1000, report[-2000:]  # thousands of requests, not a handful
