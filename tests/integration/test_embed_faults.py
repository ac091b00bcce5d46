"""An embedding actor killed in the middle of the Ray Data job: the job finishes and the version holds every good
item exactly once, with the vectors a clean run computes.

Ray Data restarts a dead map actor and retries its tasks (``max_restarts=-1``, ``max_task_retries=-1`` are its
defaults for actor pools); the job's own check (every item once, or it refuses to publish) guards the rest. The
actor is found among this test's own descendants (the local Ray is a child of the pytest process) by its process
title and SIGKILLed once the driver has received between a tenth and a half of the vectors.
"""

from __future__ import annotations

import os
import signal
import threading
import time

import numpy as np
import psutil
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from coldstart.artifacts.store import LocalStore
from coldstart.artifacts.versions import load_version
from coldstart.catalog.reader import CatalogSchema
from coldstart.config import EmbedConfig, JobConfig
from coldstart.encoders.encoder import EncoderConfig
from pipelines.embed import run_embed_job

pytestmark = [pytest.mark.ray, pytest.mark.slow, pytest.mark.timeout(400)]

ROWS = 12_000


def _embed_actors() -> list[psutil.Process]:
    found = []
    for proc in psutil.Process(os.getpid()).children(recursive=True):
        try:
            if "EmbedActor" in " ".join(proc.cmdline()):
                found.append(proc)
        except psutil.Error:
            pass
    return found


def _config(catalog, store, model) -> JobConfig:
    return JobConfig(catalog=str(catalog), store=str(store), schema=CatalogSchema(text_cols=("title",)),
                     encoder=EncoderConfig(model=str(model), batch_size=16),
                     embed=EmbedConfig(rows_per_block=100, actors=2, incremental=False))


def test_a_killed_embedding_actor_costs_nothing(ray_local, tiny_model_dir, tmp_path, monkeypatch):
    words = ["cordless", "drill", "garden", "hose", "office", "chair", "lamp", "table", "saw", "paint", "brush"]
    rng = np.random.default_rng(0)
    titles = [" ".join(rng.choice(words, size=int(rng.integers(3, 12)))) + f" {i}" for i in range(ROWS)]
    catalog = tmp_path / "catalog.parquet"
    pq.write_table(pa.table({"item_id": [f"p{i}" for i in range(ROWS)], "title": titles}), catalog)

    clean = run_embed_job(_config(catalog, tmp_path / "clean", tiny_model_dir))

    from coldstart import progress

    outcome: dict = {}
    embedded = [0]  # vectors the driver has received: the job's own progress count
    update = progress.Progress.update

    def counting_update(self, n=1):
        embedded[0] += n
        update(self, n)

    monkeypatch.setattr(progress.Progress, "update", counting_update)

    def job():
        try:
            outcome["result"] = run_embed_job(_config(catalog, tmp_path / "faulty", tiny_model_dir))
        except Exception as err:  # noqa: BLE001 - reported below
            outcome["error"] = err

    runner = threading.Thread(target=job)
    runner.start()
    killed = None
    deadline = time.monotonic() + 240
    while runner.is_alive() and killed is None and time.monotonic() < deadline:
        actors = _embed_actors()
        if actors and ROWS // 10 <= embedded[0] < ROWS // 2:  # mid-job: some vectors back, most still to come
            killed, killed_at = actors[0].pid, embedded[0]
            os.kill(killed, signal.SIGKILL)
        time.sleep(0.02)
    runner.join(timeout=300)
    assert killed is not None, f"no embedding actor was killed mid-job ({embedded[0]} of {ROWS} embedded)"
    assert killed_at < ROWS
    assert not runner.is_alive() and "error" not in outcome, outcome.get("error")
    faulty = outcome["result"]
    assert faulty.published and faulty.counts == clean.counts

    a, b = load_version(LocalStore(tmp_path / "clean")), load_version(LocalStore(tmp_path / "faulty"))
    assert len(b.index.ids) == len(set(b.index.ids)) == ROWS and set(b.index.ids) == set(a.index.ids)
    rows = [b.index.row_of[i] for i in a.index.ids]
    np.testing.assert_allclose(b.index.vectors[rows], a.index.vectors, atol=1e-5)
