"""Retention and orphan clean-up on a local store: no Ray, no model."""

from __future__ import annotations

import datetime as dt
import json

import pytest

from coldstart.artifacts.manifest import (
    VersionWriter,
    latest_version,
    list_versions,
    new_version_id,
    set_latest,
    version_created_at,
)
from coldstart.artifacts.retention import apply_retention, find_orphans, versions_to_remove
from coldstart.artifacts.store import LocalStore

T0 = dt.datetime(2026, 11, 1, 2, 0, tzinfo=dt.timezone.utc)


def _publish(store, when: dt.datetime) -> str:
    writer = VersionWriter(store, new_version_id(when))
    writer.put("items.parquet", b"rows")
    writer.write_manifest(encoder={"name": "m", "fingerprint": "f", "dim": 4, "pooling": "mean", "max_length": 8},
                          metric="cosine", index={}, rows=1, catalog={})
    return writer.version


def _orphan(store, when: dt.datetime) -> str:
    """What a run killed between writing its files and publishing leaves behind: files, no manifest."""
    version = new_version_id(when)
    store.write_bytes(f"versions/{version}/items.parquet", b"half")
    return version


def test_version_ids_carry_their_creation_time():
    when = dt.datetime(2026, 11, 30, 7, 15, 0, 123000, tzinfo=dt.timezone.utc)
    assert version_created_at(new_version_id(when)) == when.replace(microsecond=0)
    assert version_created_at("hand-made-id") is None


def test_versions_to_remove_keeps_newest_and_never_the_live_one():
    versions = ["v1", "v2", "v3", "v4", "v5"]
    assert versions_to_remove(versions, "v5", keep=2) == ["v1", "v2", "v3"]
    assert versions_to_remove(versions, "v1", keep=2) == ["v2", "v3"]  # rolled back to v1: v1 stays
    assert versions_to_remove(versions, None, keep=5) == []
    with pytest.raises(ValueError):
        versions_to_remove(versions, "v5", keep=0)


def test_apply_retention_keeps_n_and_the_live_version(tmp_path):
    store = LocalStore(tmp_path)
    versions = [_publish(store, T0 + dt.timedelta(days=i)) for i in range(5)]
    set_latest(store, versions[1])  # an operator rolled back to an old version
    removed = apply_retention(store, keep=2)
    assert removed == [versions[0], versions[2]]
    assert list_versions(store) == [versions[1], versions[3], versions[4]]
    assert latest_version(store) == versions[1]
    assert store.exists(f"versions/{versions[1]}/items.parquet")


def test_retention_with_keep_one_never_deletes_live(tmp_path):
    store = LocalStore(tmp_path)
    versions = [_publish(store, T0 + dt.timedelta(days=i)) for i in range(3)]
    set_latest(store, versions[-1])
    assert apply_retention(store, keep=1) == versions[:2]
    assert list_versions(store) == [versions[-1]] and latest_version(store) == versions[-1]


def test_orphans_are_removed_only_after_the_grace_period(tmp_path):
    store = LocalStore(tmp_path)
    live = _publish(store, T0)
    set_latest(store, live)
    old = _orphan(store, T0 + dt.timedelta(hours=1))
    fresh = _orphan(store, T0 + dt.timedelta(hours=9))  # a run that may still be writing
    undated = "hand-made"
    store.write_bytes(f"versions/{undated}/items.parquet", b"?")
    now = T0 + dt.timedelta(hours=10)
    assert list_versions(store) == [live]  # readers never see orphans
    assert find_orphans(store, grace=dt.timedelta(hours=6), now=now) == [old]
    assert find_orphans(store, grace=dt.timedelta(hours=0), now=now) == [old, fresh]


def test_apply_retention_removes_orphans_but_not_a_run_in_progress(tmp_path):
    store = LocalStore(tmp_path)
    live = _publish(store, dt.datetime.now(dt.timezone.utc) - dt.timedelta(days=2))
    set_latest(store, live)
    dead = _orphan(store, dt.datetime.now(dt.timezone.utc) - dt.timedelta(days=1))
    running = _orphan(store, dt.datetime.now(dt.timezone.utc))
    assert apply_retention(store, keep=3, orphan_grace=dt.timedelta(hours=6)) == [dead]
    assert not store.list(f"versions/{dead}")
    assert store.list(f"versions/{running}")
    assert json.loads(store.read_bytes("LATEST")) == {"version": live}


def test_a_live_version_without_manifest_is_never_an_orphan(tmp_path):
    """LATEST is written after the manifest, so this cannot happen through the writer; guard it anyway."""
    store = LocalStore(tmp_path)
    odd = _orphan(store, T0)
    set_latest(store, odd)
    assert find_orphans(store, grace=dt.timedelta(0), now=T0 + dt.timedelta(days=30)) == []
