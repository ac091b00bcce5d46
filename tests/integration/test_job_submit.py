"""The nightly job as a cluster runs it: ``ray job submit --working-dir .`` against a Ray head with a dashboard,
reading the catalog from and publishing to a real S3 server (SeaweedFS with credentials)."""

from __future__ import annotations

import json
import subprocess
import time
import uuid
from pathlib import Path

import pytest

from coldstart.artifacts.manifest import latest_version, list_versions, read_manifest
from coldstart.artifacts.store import open_store
from tests.fixtures.ray_head import RayHead, ray_cli
from tests.fixtures.secrets import files_holding, objects_holding

pytestmark = [pytest.mark.ray, pytest.mark.s3, pytest.mark.slow]

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def ray_head():
    with RayHead(num_cpus=2) as head:
        yield head


@pytest.mark.timeout(600)
def test_reembed_job_submitted_to_a_cluster_publishes_to_s3(ray_head, s3_server, s3_bucket, tmp_path,
                                                            sample_catalog_path, tiny_model_dir, monkeypatch):
    from ray.job_submission import JobStatus, JobSubmissionClient

    catalog_uri = f"{s3_bucket}/catalog/catalog.parquet"
    store_uri = f"{s3_bucket}/coldstart"
    open_store(f"{s3_bucket}/catalog").write_bytes("catalog.parquet", Path(sample_catalog_path).read_bytes())
    config = tmp_path / "cluster-test.toml"
    config.write_text(f'catalog = "{catalog_uri}"\nstore = "{store_uri}"\n'
                      f'[encoder]\nmodel = "{tiny_model_dir}"\ndevice = "cpu"\n'
                      "[embed]\nactors = 2\ncpus_per_actor = 0.5\nrows_per_block = 128\n")
    runtime_env = {"env_vars": s3_server.env()}  # the job's processes get the S3 endpoint and keys
    submission_id = f"nightly-test-{uuid.uuid4().hex[:8]}"

    submit = subprocess.run(
        [ray_cli(), "job", "submit", "--address", ray_head.dashboard_url, "--submission-id", submission_id,
         "--working-dir", ".", "--runtime-env-json", json.dumps(runtime_env), "--no-wait",
         "--", "python", "-m", "jobs.reembed", "--config", str(config)],
        cwd=ROOT, env=ray_head.env(), capture_output=True, text=True, timeout=120)
    assert submit.returncode == 0, submit.stdout + submit.stderr
    print(submit.stdout, submit.stderr)  # shows the size of the uploaded working dir under -s

    for key, value in ray_head.env().items():
        if key.startswith("RAY_"):
            monkeypatch.setenv(key, value)
    client = JobSubmissionClient(ray_head.dashboard_url)
    deadline = time.monotonic() + 420
    while (status := client.get_job_status(submission_id)) not in (JobStatus.SUCCEEDED, JobStatus.FAILED,
                                                                   JobStatus.STOPPED):
        if time.monotonic() > deadline:
            client.stop_job(submission_id)
            break
        time.sleep(2)
    logs = client.get_job_logs(submission_id)
    assert status == JobStatus.SUCCEEDED, f"job {submission_id} is {status}; logs:\n{logs[-6000:]}"

    store = open_store(store_uri)
    (version,) = list_versions(store)
    assert latest_version(store) == version
    manifest = read_manifest(store, version)
    assert manifest.rows == manifest.extra["counts"]["rows_good"] > 0
    assert {"items.parquet", "index.faiss", "report.json"} <= set(manifest.files)
    assert f'"version": "{version}"' in logs and '"published": true' in logs  # the summary the job printed

    # The job got its keys through a credentials file: the secret is in no Ray log or session file, not in the job's
    # info (its runtime_env included), not in anything published.
    secret = s3_server.secret_key
    assert secret not in repr(client.get_job_info(submission_id))
    assert files_holding(secret, ray_head.temp_dir) == []
    bucket = open_store(s3_bucket)
    assert objects_holding(secret, bucket, bucket.list("")) == []
