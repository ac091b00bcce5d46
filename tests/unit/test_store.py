import pytest

from coldstart.artifacts.store import LocalStore, StoreError, StoreKeyMissing, open_store


def test_open_store_schemes(tmp_path):
    assert isinstance(open_store(tmp_path), LocalStore)
    assert isinstance(open_store(f"file://{tmp_path}"), LocalStore)
    assert open_store("s3://bucket/prefix").uri == "s3://bucket/prefix"
    with pytest.raises(StoreError, match="unsupported store URI"):
        open_store("gs://bucket/x")


def test_local_roundtrip_list_and_delete(tmp_path):
    store = LocalStore(tmp_path)
    store.write_bytes("a/b/c.bin", b"123")
    store.write_bytes("a/d.bin", b"4")
    assert store.read_bytes("a/b/c.bin") == b"123"
    assert store.exists("a/d.bin") and not store.exists("a/zzz")
    assert store.list("a") == ["a/b/c.bin", "a/d.bin"]
    assert store.delete_prefix("a/b") == 1
    assert store.list("") == ["a/d.bin"]
    with pytest.raises(StoreKeyMissing):
        store.read_bytes("a/b/c.bin")


def test_local_rejects_escaping_keys(tmp_path):
    with pytest.raises(StoreError, match="without '..'"):
        LocalStore(tmp_path).write_bytes("../outside", b"x")


def test_upload_and_download_dir(tmp_path):
    src = tmp_path / "src"
    (src / "sub").mkdir(parents=True)
    (src / "sub" / "f.txt").write_text("hello")
    store = LocalStore(tmp_path / "store")
    assert store.upload_dir(src, "models/m") == ["models/m/sub/f.txt"]
    store.download_prefix("models/m", tmp_path / "out")
    assert (tmp_path / "out" / "sub" / "f.txt").read_text() == "hello"
