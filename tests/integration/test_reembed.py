"""The nightly re-embedding job end to end on the session's local Ray, with a tiny random encoder.

Checks the promises of the nightly run: only new and changed products are embedded and unchanged vectors are
carried over bit for bit; a run with no change publishes nothing; another encoder means a full re-embed;
retention keeps N versions and never the live one; a run killed halfway leaves the live version untouched and
the next run completes.
"""

from __future__ import annotations

import datetime as dt
import io
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from coldstart.artifacts.lease import PUBLISH_LEASE

from coldstart.config import EmbedConfig, JobConfig
from coldstart.encoders.encoder import Encoder, EncoderConfig
from coldstart.artifacts.versions import ITEMS_FILE, StagedVersion, arrow_to_vectors, load_version, read_json_file
from coldstart.artifacts.manifest import latest_version, list_versions, read_manifest, read_verified
from coldstart.artifacts.retention import apply_retention
from coldstart.artifacts.store import LocalStore

pytestmark = pytest.mark.ray

ROOT = Path(__file__).resolve().parents[2]


# ------------------------------------------------------------------------------------------------ helpers


def _write_catalog(path: Path, rows: list[dict]) -> str:
    pq.write_table(pa.Table.from_pylist(rows, schema=pa.schema([("item_id", pa.string()), ("title", pa.string())])),
                   path)
    return str(path)


@pytest.fixture(scope="module")
def base_rows(sample_catalog_path) -> list[dict]:
    table = pq.read_table(sample_catalog_path, columns=["item_id", "title"])
    return table.to_pylist()


def _config(catalog: str, store: Path, model_dir: Path, **embed) -> JobConfig:
    return JobConfig(catalog=catalog, store=str(store), encoder=EncoderConfig(model=str(model_dir), device="cpu"),
                     embed=EmbedConfig(actors=2, cpus_per_actor=0.5, rows_per_block=128, **embed))


def _vectors_by_id(store, version: str) -> dict[str, np.ndarray]:
    manifest = read_manifest(store, version)
    table = pq.read_table(io.BytesIO(read_verified(store, manifest, ITEMS_FILE)))
    vectors = arrow_to_vectors(table.column("vector"), manifest.encoder.dim)
    return dict(zip(table.column("item_id").to_pylist(), vectors))


@pytest.fixture
def embedded_ids(monkeypatch):
    """Record the ids each run sends to the embedding actors (the real embedding still runs)."""
    import pipelines.embed as embed

    calls: list[set[str]] = []
    real = embed.embed_with_ray

    def spy(table, config):
        calls.append(set(table.column("item_id").to_pylist()))
        return real(table, config)

    monkeypatch.setattr(embed, "embed_with_ray", spy)
    return calls


@pytest.fixture(scope="module")
def second_model_dir(tmp_path_factory):
    """Same architecture and tokenizer as ``tiny_model_dir``, other random weights: another encoder."""
    from tests.fixtures.models import save_tiny_bert

    return save_tiny_bert(tmp_path_factory.mktemp("tiny-bert-seed1"), seed=1)


@pytest.fixture(scope="module")
def night0(ray_local, tmp_path_factory, base_rows, tiny_model_dir):
    """A store after the first night: the whole catalog embedded and published (shared, copy before changing)."""
    from pipelines.embed import run_embed_job

    root = tmp_path_factory.mktemp("night0")
    catalog = _write_catalog(root / "day0.parquet", base_rows)
    result = run_embed_job(_config(catalog, root / "store", tiny_model_dir))
    return catalog, root / "store", result


def _copy_store(night0, dest: Path) -> LocalStore:
    shutil.copytree(night0[1], dest)
    return LocalStore(dest)


# -------------------------------------------------------------------------------------------------- tests


@pytest.mark.timeout(600)
def test_nightly_runs_embed_only_what_changed(ray_local, tmp_path, night0, base_rows, tiny_model_dir,
                                              second_model_dir, embedded_ids):
    from pipelines.embed import run_embed_job

    # Night 0 (the fixture): nothing was published yet → everything was embedded.
    catalog, _, first = night0
    assert first.published and first.full_reembed
    assert first.counts["new"] == first.counts["embedded"] == len(base_rows)
    store = _copy_store(night0, tmp_path / "store")
    assert latest_version(store) == first.version

    # Night 1: same catalog → nothing embedded, nothing published, not one file written.
    before = {k: store.read_bytes(k) for k in store.list("")}
    noop = run_embed_job(_config(catalog, store.root, tiny_model_dir, retention=2))
    assert not noop.published and noop.version == first.version
    assert noop.counts["embedded"] == 0 and noop.counts["unchanged"] == len(base_rows)
    assert embedded_ids == []
    assert {k: store.read_bytes(k) for k in store.list("")} == before

    # Night 2: one title changed, one product added, one deleted.
    rows = [dict(r) for r in base_rows]
    changed_id, deleted_id = rows[3]["item_id"], rows[7]["item_id"]
    rows[3]["title"] = rows[3]["title"] + " (2-pack)"
    del rows[7]
    rows.append({"item_id": "NEW-0001", "title": "Solar powered garden fountain pump with LED lights"})
    catalog = _write_catalog(tmp_path / "day2.parquet", rows)
    second = run_embed_job(_config(catalog, store.root, tiny_model_dir, retention=2))
    assert second.published and not second.full_reembed
    assert {k: second.counts[k] for k in ("new", "changed", "unchanged", "deleted", "embedded", "rows_quarantined")} \
        == {"new": 1, "changed": 1, "unchanged": len(base_rows) - 2, "deleted": 1, "embedded": 2,
            "rows_quarantined": 0}
    assert embedded_ids == [{changed_id, "NEW-0001"}]  # only those reached the embedding actors

    manifest = read_manifest(store, second.version)
    assert manifest.parent == first.version and manifest.rows == len(rows)
    report = read_json_file(store, manifest, "report.json")  # listed in the manifest, checksum verified
    assert report["counts"] == second.counts and report["parent"] == first.version
    assert set(report["seconds"]) >= {"validate", "plan", "embed", "index_and_write", "total"}
    assert report["seconds"]["total"] >= report["seconds"]["embed"] > 0

    old, new = _vectors_by_id(store, first.version), _vectors_by_id(store, second.version)
    assert deleted_id not in new and set(new) == {r["item_id"] for r in rows}
    carried = set(new) - {changed_id, "NEW-0001"}
    assert all(np.array_equal(old[i], new[i]) for i in carried)  # carried over bit for bit
    assert not np.allclose(old[changed_id], new[changed_id], atol=1e-6)
    reference = Encoder(EncoderConfig(model=str(tiny_model_dir), device="cpu")).encode(
        [rows[3]["title"], rows[-1]["title"]])
    np.testing.assert_allclose(np.stack([new[changed_id], new["NEW-0001"]]), reference, atol=1e-4)
    assert load_version(store).item("NEW-0001")["title"] == rows[-1]["title"]

    # Night 3: another encoder → vectors from the old one cannot be reused: everything is embedded again.
    third = run_embed_job(_config(catalog, store.root, second_model_dir, retention=2))
    assert third.published and third.full_reembed
    assert third.counts["embedded"] == len(rows) and third.counts["unchanged"] == 0
    assert embedded_ids[-1] == {r["item_id"] for r in rows}
    assert read_manifest(store, third.version).encoder.fingerprint != manifest.encoder.fingerprint

    # Retention (keep 2): the first version is gone, the live one is the newest.
    assert third.removed == [first.version]
    assert list_versions(store) == [second.version, third.version]
    assert latest_version(store) == third.version


@pytest.mark.timeout(600)
def test_interrupted_runs_leave_the_live_version_untouched(ray_local, tmp_path, night0, base_rows, tiny_model_dir,
                                                           monkeypatch):
    """Killed mid-embedding, then crashed between writing files and publishing: LATEST never moves; the next
    run completes; the crashed run's files are removed once they are past the grace period."""
    from pipelines.embed import run_embed_job

    store = _copy_store(night0, tmp_path / "store")
    live = latest_version(store)
    live_files = {k: store.read_bytes(k) for k in store.list("")}
    renamed = [{"item_id": r["item_id"], "title": r["title"] + " - new season"} for r in base_rows]
    changed = _write_catalog(tmp_path / "day1.parquet", renamed)

    # 1. `python -m jobs.reembed` joins the session's Ray as a second driver and is SIGKILLed mid-embedding.
    config_file = tmp_path / "nightly.toml"
    config_file.write_text(
        f'catalog = "{changed}"\nstore = "{store.root}"\n[encoder]\nmodel = "{tiny_model_dir}"\ndevice = "cpu"\n'
        "[embed]\nactors = 2\ncpus_per_actor = 0.5\nrows_per_block = 32\n")
    env = {**os.environ, "RAY_ADDRESS": ray_local.get_runtime_context().gcs_address}
    proc = subprocess.Popen([sys.executable, "-m", "jobs.reembed", "--config", str(config_file)], cwd=ROOT, env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        marker = f"embedding {len(base_rows)} products"  # logged just before the actor pool starts
        seen = []
        for line in proc.stderr:
            seen.append(line)
            if marker in line:
                break
        assert any(marker in line for line in seen), "".join(seen[-20:])
        time.sleep(1)  # inside the embedding stage: the actors are starting or encoding
        assert proc.poll() is None, "the job finished before it could be killed"
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(timeout=30)
    assert proc.returncode == -signal.SIGKILL
    after = {k: store.read_bytes(k) for k in store.list("")}
    lease = json.loads(after.pop(PUBLISH_LEASE))  # the killed run could not give its lease back
    assert lease["pid"] == proc.pid
    assert after == live_files  # apart from it, not one byte of the store changed

    # 2. A crash after the version's files are written, before the manifest and LATEST.
    def crash(self):
        raise OSError("simulated crash after the files were written")

    with monkeypatch.context() as patch:
        patch.setattr(StagedVersion, "publish", crash)
        with pytest.raises(OSError, match="simulated crash"):
            run_embed_job(_config(changed, store.root, tiny_model_dir))
    (orphan,) = {k.split("/")[1] for k in store.list("versions")} - {live}
    assert store.exists(f"versions/{orphan}/items.parquet") and not store.exists(f"versions/{orphan}/manifest.json")
    assert latest_version(store) == live and list_versions(store) == [live]
    assert load_version(store).version == live  # readers keep serving the live version

    # 3. The next night completes. The orphan is too fresh to be removed (it could be a job still writing)…
    done = run_embed_job(_config(changed, store.root, tiny_model_dir))
    assert done.published and done.counts["changed"] == len(base_rows) and done.counts["embedded"] == len(base_rows)
    assert latest_version(store) == done.version and list_versions(store) == [live, done.version]
    assert store.list(f"versions/{orphan}")
    # …until it is past the grace period.
    assert apply_retention(store, keep=5, orphan_grace=dt.timedelta(0)) == [orphan]
    assert list_versions(store) == [live, done.version] and latest_version(store) == done.version
