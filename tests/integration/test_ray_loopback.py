"""A local Ray started by a job listens on loopback only, even when the job imported ``ray`` first."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

# A job's order of events: import ray (Ray Train, Serve...), then init_ray(); report every listening socket
# of the processes this Ray started.
JOB = textwrap.dedent("""
    import json, os, subprocess, time
    import ray
    from pipelines.ray_runtime import init_ray

    init_ray(num_cpus=1)

    @ray.remote
    def pid():
        return os.getpid()

    ray.get(pid.remote())
    time.sleep(1)
    children = {}
    for line in subprocess.run(["ps", "-eo", "pid,ppid"], capture_output=True, text=True).stdout.split("\\n")[1:]:
        if line.strip():
            p, parent = map(int, line.split())
            children.setdefault(parent, []).append(p)
    ours, todo = set(), [os.getpid()]
    while todo:
        p = todo.pop()
        ours.add(p)
        todo += children.get(p, [])
    lines = subprocess.run(["ss", "-ltnpH"], capture_output=True, text=True).stdout.splitlines()
    print(json.dumps([line.split()[3] for line in lines if any(f"pid={p}," in line for p in ours)]))
    ray.shutdown()
""")


@pytest.mark.timeout(180)
@pytest.mark.skipif(shutil.which("ss") is None, reason="needs `ss` (iproute2) to list listening sockets")
def test_every_port_of_a_local_ray_is_on_loopback():
    env = {k: v for k, v in os.environ.items() if not k.startswith("RAY_")}  # Ray's own default temp dir
    env.update(PYTHONPATH=str(ROOT))
    done = subprocess.run([sys.executable, "-c", JOB], cwd=ROOT, env=env, capture_output=True, text=True,
                          timeout=150)
    assert done.returncode == 0, done.stderr[-2000:]
    addresses = json.loads(done.stdout.strip().splitlines()[-1])
    assert len(addresses) >= 3  # GCS, raylet, a worker at least
    hosts = {a.rsplit(":", 1)[0] for a in addresses}
    assert hosts <= {"127.0.0.1", "[::ffff:127.0.0.1]"}, addresses
