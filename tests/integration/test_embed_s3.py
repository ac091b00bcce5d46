"""The embedding job against the real SeaweedFS bucket: catalog, model and store all on S3."""

import json
import subprocess
import sys

import pyarrow.parquet as pq
import pytest

from coldstart.config import JobConfig
from coldstart.encoders.encoder import Encoder, EncoderConfig
from coldstart.artifacts.versions import load_version
from coldstart.artifacts.manifest import latest_version
from coldstart.ranking.dense import DenseRecommender, UserRequest
from coldstart.artifacts.store import S3Store, StoreError, open_store
from jobs.demo import DEMO_SCHEMA
from pipelines.embed import run_embed_job

pytestmark = [pytest.mark.ray, pytest.mark.s3, pytest.mark.timeout(300)]


def test_job_reads_catalog_and_model_from_s3_and_serves_from_s3_index(
    ray_local, s3_bucket, sample_catalog_path, tiny_model_dir, tmp_path, monkeypatch
):
    monkeypatch.setenv("COLDSTART_CACHE", str(tmp_path / "cache"))
    bucket = open_store(s3_bucket)
    bucket.write_bytes("catalog/part-0.parquet", sample_catalog_path.read_bytes())
    bucket.upload_dir(tiny_model_dir, "models/tiny")
    config = JobConfig(catalog=f"{s3_bucket}/catalog/", store=f"{s3_bucket}/index", schema=DEMO_SCHEMA,
                       encoder=EncoderConfig(model=f"{s3_bucket}/models/tiny"))
    result = run_embed_job(config)
    assert result.published and result.counts["rows_good"] == pq.read_metadata(sample_catalog_path).num_rows

    store = open_store(f"{s3_bucket}/index")
    assert latest_version(store) == result.version
    assert any(k.endswith("index.faiss") for k in store.list("versions"))
    encoder = Encoder(config.encoder)  # the model comes from the S3 prefix, cached locally
    version = load_version(store, expect=encoder.info())
    recommender = DenseRecommender(encoder, version)
    first = version.index.ids[0]
    rec = recommender.recommend(UserRequest(query=version.item(first)["text"]), k=3)
    assert rec.items[0][0] == first and rec.version == result.version


def test_missing_bucket_is_one_clear_error(s3_server, monkeypatch):
    for key, value in s3_server.env().items():
        monkeypatch.setenv(key, value)
    with pytest.raises(StoreError, match="does not exist: create it"):
        S3Store("s3://no-such-bucket-coldstart/x").check_access()


def test_cli_with_wrong_secret_prints_one_line_of_cause(s3_bucket, s3_server, sample_catalog_path, monkeypatch,
                                                        tmp_path):
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(s3_server.credentials_file(secret_key="wrong-secret")))
    proc = subprocess.run(
        [sys.executable, "-m", "coldstart.cli", "embed", "--catalog", str(sample_catalog_path),
         "--store", f"{s3_bucket}/index"],
        capture_output=True, text=True, timeout=120,
    )
    assert proc.returncode == 1
    errors = [line for line in proc.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and "secret key is wrong" in errors[0], proc.stderr[-2000:]
    assert "Traceback" not in proc.stderr
