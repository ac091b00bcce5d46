"""Objects of any size on the real SeaweedFS: multipart uploads above the threshold, streamed reads, and what a
read-only identity may and may not do.

The multipart threshold is lowered to 5 MB (S3's smallest part) so that a few-MB artifact takes the same path a
multi-GB one takes in production. Memory is checked with tracemalloc, which sees every Python-level buffer boto3
allocates: streaming keeps the peak near a few parts, a whole copy would be the object's size.
"""

from __future__ import annotations

import dataclasses
import os
import tracemalloc

import numpy as np
import pyarrow as pa
import pytest

from coldstart.artifacts.manifest import EncoderInfo, latest_version, version_prefix
from coldstart.artifacts.store import MULTIPART_ENV, StoreError, open_store
from coldstart.artifacts.versions import load_version, write_version
from coldstart.ranking.faiss_index import IndexConfig

pytestmark = [pytest.mark.s3, pytest.mark.timeout(300)]

MB = 1024 * 1024


@pytest.fixture
def small_parts(monkeypatch):
    monkeypatch.setenv(MULTIPART_ENV, "5")


def _parts(s3_server, uri: str, key: str) -> int:
    bucket, _, prefix = uri.removeprefix("s3://").partition("/")
    etag = s3_server.client().head_object(Bucket=bucket, Key=f"{prefix}/{key}".lstrip("/"))["ETag"].strip('"')
    return int(etag.rpartition("-")[2]) if "-" in etag else 1  # a multipart ETag ends in -<parts>


def _peak_bytes(fn) -> int:
    tracemalloc.start()
    try:
        fn()
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def test_a_large_file_goes_up_in_parts_and_comes_down_streamed(s3_server, s3_bucket, small_parts, tmp_path):
    store = open_store(f"{s3_bucket}/big")
    src = tmp_path / "artifact.bin"
    size = 32 * MB
    src.write_bytes(os.urandom(size))

    up = _peak_bytes(lambda: store.write_file("models/m/weights.bin", src))
    assert _parts(s3_server, store.uri, "models/m/weights.bin") == 7  # ceil(32 / 5)
    down = _peak_bytes(lambda: store.read_to_file("models/m/weights.bin", tmp_path / "back.bin"))
    assert (tmp_path / "back.bin").read_bytes() == src.read_bytes()
    # never a whole copy in memory: at most the parts in flight (4 × 5 MB) plus buffers
    assert up < 0.75 * size and down < 0.75 * size, (up / MB, down / MB)


def test_write_bytes_above_the_threshold_is_a_multipart_upload_too(s3_server, s3_bucket, small_parts):
    store = open_store(f"{s3_bucket}/big")
    data = os.urandom(12 * MB)
    store.write_bytes("blob.bin", data)
    assert _parts(s3_server, store.uri, "blob.bin") == 3
    assert store.read_bytes("blob.bin") == data
    store.write_bytes("small.json", b"{}")
    assert _parts(s3_server, store.uri, "small.json") == 1


def test_a_version_larger_than_a_part_publishes_and_loads_through_s3(s3_server, s3_bucket, small_parts):
    """Items and index of 6,000 random 384-d vectors (~9 MB each, incompressible) take the multipart path both
    ways, and the loaded version is the published one, checksums verified."""
    rng = np.random.default_rng(0)
    vectors = rng.standard_normal((6000, 384)).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    ids = [f"p{i}" for i in range(len(vectors))]
    items = pa.table({"item_id": ids, "title": ids, "text": ids, "fingerprint": ids})
    store = open_store(f"{s3_bucket}/index")
    manifest = write_version(store, items=items, vectors=vectors,
                             encoder=EncoderInfo(name="test", fingerprint="f" * 64, dim=384, pooling="mean",
                                                 max_length=128),
                             index_config=IndexConfig(kind="flat"), catalog={"uri": "test"})
    prefix = version_prefix(manifest.version)
    assert _parts(s3_server, store.uri, f"{prefix}/index.faiss") >= 2
    assert _parts(s3_server, store.uri, f"{prefix}/items.parquet") >= 2
    loaded = load_version(store)
    assert loaded.version == latest_version(store) == manifest.version
    assert loaded.index.ids == ids and np.array_equal(loaded.index.vectors, vectors)
    assert [hits[0][0] for hits in loaded.index.search(vectors[:3], 1)] == ids[:3]


def test_a_read_only_identity_serves_but_cannot_publish(s3_server, s3_bucket, sample_catalog_path, tiny_model_dir,
                                                         tmp_path, monkeypatch):
    """The identity the Serve replicas get: it loads the live version; the embed job run with it stops at its first
    write with one line naming the bucket and what to check, and writes nothing."""
    if s3_server.readonly_access_key is None:
        pytest.skip("the external S3 server has no read-only identity configured")
    from coldstart.config import JobConfig
    from coldstart.encoders.encoder import EncoderConfig
    from coldstart.publish import embed_in_process, publish_catalog
    from jobs.demo import DEMO_SCHEMA

    config = JobConfig(catalog=str(sample_catalog_path), store=f"{s3_bucket}/index", schema=DEMO_SCHEMA,
                       encoder=EncoderConfig(model=str(tiny_model_dir), device="cpu"))
    published = publish_catalog(config, embed=embed_in_process)  # with the admin identity
    before = sorted(open_store(s3_bucket).list(""))

    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(s3_server.credentials_file(readonly=True)))
    import boto3

    monkeypatch.setattr(boto3, "DEFAULT_SESSION", None)  # its credentials were resolved once, for the admin
    readonly_store = open_store(f"{s3_bucket}/index")
    assert load_version(readonly_store).version == published.version  # it serves
    changed = tmp_path / "catalog.parquet"
    import pyarrow.parquet as pq

    table = pq.read_table(sample_catalog_path)
    pq.write_table(table.slice(0, table.num_rows - 1), changed)  # a real change: one product deleted
    with pytest.raises(StoreError) as err:
        publish_catalog(dataclasses.replace(config, catalog=str(changed)), embed=embed_in_process)
    message = str(err.value)
    assert s3_bucket in message and "access denied" in message.lower() and "\n" not in message, message
    assert sorted(open_store(s3_bucket).list("")) == before  # nothing written, LATEST unchanged
