import json

import numpy as np
import pyarrow as pa
import pytest

from coldstart.ranking.faiss_index import IndexConfig
from coldstart.artifacts.versions import load_version, write_version
from coldstart.artifacts.manifest import EncoderInfo, VersionRejected, latest_version, list_versions, version_prefix
from coldstart.artifacts.retention import apply_retention, versions_to_remove
from coldstart.artifacts.store import LocalStore

ENC = EncoderInfo(name="test", fingerprint="f" * 64, dim=8, pooling="mean", max_length=16)


def _publish(store, n=5, seed=0, enc=ENC):
    rng = np.random.default_rng(seed)
    vectors = rng.normal(size=(n, enc.dim)).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    items = pa.table({"item_id": [f"i{k}" for k in range(n)], "title": ["t"] * n, "text": ["t"] * n,
                      "fingerprint": ["x"] * n})
    return write_version(store, items=items, vectors=vectors, encoder=enc, index_config=IndexConfig(),
                         catalog={"uri": "mem"}), vectors


def test_publish_and_load_roundtrip(tmp_path):
    store = LocalStore(tmp_path)
    manifest, vectors = _publish(store)
    assert latest_version(store) == manifest.version
    loaded = load_version(store, expect=ENC)
    np.testing.assert_array_equal(loaded.index.vectors, vectors)
    assert loaded.index.ids == [f"i{k}" for k in range(5)]
    assert loaded.item("i3")["title"] == "t" and loaded.item("nope") is None
    assert set(manifest.files) == {"items.parquet", "index.faiss"}


def test_reader_refuses_other_encoder_and_dimension(tmp_path):
    store = LocalStore(tmp_path)
    _publish(store)
    with pytest.raises(VersionRejected, match="embedded with encoder"):
        load_version(store, expect=EncoderInfo("other", "0" * 64, 8, "mean", 16))
    with pytest.raises(VersionRejected, match="dimension 8"):
        load_version(store, expect=EncoderInfo("other", "f" * 64, 16, "mean", 16))


def test_reader_refuses_corrupt_file(tmp_path):
    store = LocalStore(tmp_path)
    manifest, _ = _publish(store)
    key = f"{version_prefix(manifest.version)}/index.faiss"
    data = bytearray(store.read_bytes(key))
    data[-1] ^= 0xFF
    store.write_bytes(key, bytes(data))
    with pytest.raises(VersionRejected, match="checksum"):
        load_version(store)


def test_latest_is_written_last(tmp_path):
    """A version whose manifest never got written is invisible: LATEST still names the old one."""
    store = LocalStore(tmp_path)
    first, _ = _publish(store)
    store.write_bytes("versions/29990101T000000000Z-dead/items.parquet", b"partial")
    assert latest_version(store) == first.version
    assert list_versions(store) == [first.version]


def test_no_version_published(tmp_path):
    with pytest.raises(LookupError, match="coldstart embed"):
        load_version(LocalStore(tmp_path))


def test_retention_never_removes_live():
    versions = ["v1", "v2", "v3", "v4"]
    assert versions_to_remove(versions, "v4", keep=2) == ["v1", "v2"]
    assert versions_to_remove(versions, "v1", keep=2) == ["v2"]  # live v1 is old but stays


def test_apply_retention(tmp_path):
    store = LocalStore(tmp_path)
    published = [_publish(store, seed=s)[0].version for s in range(4)]
    removed = apply_retention(store, keep=2)
    assert removed == published[:2]
    assert list_versions(store) == published[2:]
    assert json.loads(store.read_bytes("LATEST"))["version"] == published[-1]
