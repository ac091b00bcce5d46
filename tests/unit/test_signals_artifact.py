"""Session signals published beside an index version: they load back exactly, refuse another catalog and a
corrupt file, and the nightly publish fits them before it moves LATEST."""

from __future__ import annotations

import json
import random

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from coldstart.artifacts.manifest import VersionRejected, latest_version
from coldstart.artifacts.store import open_store
from coldstart.signals.artifact import SIGNALS_FILE, latest_signals, load_signals, publish_signals
from coldstart.signals.sessions import SessionSignals

IDS = [f"i{n}" for n in range(40)]


def _signals(seed: int = 0) -> SessionSignals:
    rng = random.Random(seed)
    sessions = [rng.sample(IDS, rng.randint(2, 6)) for _ in range(200)]
    labels = {"category": {i: f"c{n % 4}" for n, i in enumerate(IDS)}, "brand": {i: "" for i in IDS}}
    return SessionSignals(IDS, sessions, labels=labels)


def test_published_signals_load_back_and_score_alike(tmp_path):
    store = open_store(tmp_path)
    fitted = _signals()
    manifest = publish_signals(store, "v1", fitted, source="sessions.jsonl")
    assert latest_signals(store, "v1") == manifest.signals_id
    loaded, again = load_signals(store, "v1", IDS)
    assert again == manifest and loaded.names == fitted.names == ("covisit", "popularity", "category")
    for clicks in (["i1"], ["i3", "i7", "i9"], ["unknown", "i2"]):
        want, got = fitted.signals(clicks), loaded.signals(clicks)
        assert set(want) == set(got)
        for name in want:
            np.testing.assert_allclose(got[name], want[name], rtol=1e-6)


def test_signals_of_another_catalog_or_a_corrupt_file_are_refused(tmp_path):
    store = open_store(tmp_path)
    publish_signals(store, "v1", _signals(), source="s")
    with pytest.raises(VersionRejected, match="another item list"):
        load_signals(store, "v1", IDS[:-1] + ["new"])
    signals_id = latest_signals(store, "v1")
    key = f"versions/v1/signals/{signals_id}/{SIGNALS_FILE}"
    data = bytearray(store.read_bytes(key))
    data[len(data) // 2] ^= 0xFF
    store.write_bytes(key, bytes(data))
    with pytest.raises(VersionRejected, match="checksum"):
        load_signals(store, "v1", IDS)
    with pytest.raises(LookupError, match="no session signals"):
        load_signals(store, "v2", IDS)


def test_the_nightly_publish_fits_signals_before_latest_moves_and_refits_when_only_sessions_change(tmp_path,
                                                                                                  tiny_model_dir):
    from coldstart.config import config_from_dict
    from coldstart.publish import publish_catalog

    catalog = tmp_path / "catalog.parquet"
    pq.write_table(pa.table({"item_id": IDS, "title": [f"product number {n}" for n in range(40)]}), catalog)
    sessions = tmp_path / "sessions.jsonl"
    rng = random.Random(1)
    sessions.write_text("".join(json.dumps({"user_id": f"u{n}", "items": rng.sample(IDS, 4)}) + "\n"
                                for n in range(50)))
    config = config_from_dict({"catalog": str(catalog), "store": str(tmp_path / "store"),
                               "encoder": {"model": str(tiny_model_dir), "max_length": 16},
                               "signals": {"sessions": str(sessions)},
                               "retrieval": {"covisit": {"window": 3, "top_n": 10}}})
    result = publish_catalog(config)
    store = open_store(config.store)
    first = latest_signals(store, result.version)
    assert first is not None and latest_version(store) == result.version
    signals, manifest = load_signals(store, result.version, IDS)
    assert manifest.info["sessions"] == 50 and manifest.config["covisit"]["top_n"] == 10
    again = publish_catalog(config)  # catalog unchanged: no new version, signals refitted for the live one
    assert not again.published and again.version == result.version
    assert latest_signals(store, result.version) != first
