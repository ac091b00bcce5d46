"""The S3 server killed in the middle of a publish, then restarted: one clear error, ``LATEST`` unchanged, the
next run succeeds.

This test owns its SeaweedFS (the session's server is shared by every other S3 test). The run that meets the
outage is a separate process, as a nightly run is: it stops after its first version file is written, the test
SIGKILLs the server, lets the run go on, and reads its exit status and stderr. The lease that dead run could not
give back is taken over by the next run because its process is gone.
"""

from __future__ import annotations

import dataclasses
import os
import subprocess
import sys
import textwrap
import time

import pyarrow.parquet as pq
import pytest

from coldstart.artifacts.lease import current_holder
from coldstart.artifacts.manifest import latest_version, list_versions, read_manifest, version_prefix
from coldstart.artifacts.store import open_store
from coldstart.artifacts.versions import load_version
from coldstart.config import JobConfig
from coldstart.encoders.encoder import EncoderConfig
from coldstart.publish import embed_in_process, publish_catalog
from jobs.demo import DEMO_SCHEMA
from tests.fixtures.seaweed import REGION, SeaweedServer

pytestmark = [pytest.mark.s3, pytest.mark.slow, pytest.mark.timeout(300)]

# The run that meets the outage: the job's own steps, with a pause after items.parquet is uploaded.
RUN = textwrap.dedent("""
    import pathlib, sys, time
    from coldstart.artifacts import manifest
    from coldstart.config import JobConfig
    from coldstart.encoders.encoder import EncoderConfig
    from coldstart.publish import publish_catalog
    from jobs.demo import DEMO_SCHEMA
    from jobs.entry import cause_line

    catalog, store, model, paused, resume = sys.argv[1:]
    put_file = manifest.VersionWriter.put_file

    def put_then_pause(self, name, path):
        put_file(self, name, path)
        if name == "items.parquet":
            pathlib.Path(paused).touch()
            while not pathlib.Path(resume).exists():
                time.sleep(0.05)

    manifest.VersionWriter.put_file = put_then_pause
    try:
        publish_catalog(JobConfig(catalog=catalog, store=store, schema=DEMO_SCHEMA,
                                  encoder=EncoderConfig(model=model, device="cpu")))
    except Exception as err:
        print(f"error: {cause_line(err)}", file=sys.stderr, flush=True)
        sys.exit(1)
""")


@pytest.fixture
def own_s3(tmp_path, monkeypatch):
    server = SeaweedServer(tmp_path / "weed").start()
    try:
        server.client().create_bucket(Bucket="outage")
        env = {"AWS_ENDPOINT_URL": server.endpoint_url, "AWS_DEFAULT_REGION": REGION,
               "AWS_ACCESS_KEY_ID": server.admin.access_key, "AWS_SECRET_ACCESS_KEY": server.admin.secret_key}
        for name in ("AWS_SHARED_CREDENTIALS_FILE", "AWS_PROFILE", "AWS_SESSION_TOKEN"):
            monkeypatch.delenv(name, raising=False)
        for name, value in env.items():
            monkeypatch.setenv(name, value)
        import boto3

        monkeypatch.setattr(boto3, "DEFAULT_SESSION", None)
        yield server
    finally:
        server.stop(graceful=False)


def test_a_publish_that_loses_the_store_midway_changes_nothing_and_the_next_run_succeeds(
        own_s3, sample_catalog_path, tiny_model_dir, tmp_path):
    store_uri = "s3://outage/index"
    config = JobConfig(catalog=str(sample_catalog_path), store=store_uri, schema=DEMO_SCHEMA,
                       encoder=EncoderConfig(model=str(tiny_model_dir), device="cpu"))
    first = publish_catalog(config, embed=embed_in_process)
    table = pq.read_table(sample_catalog_path)
    changed = tmp_path / "changed.parquet"
    pq.write_table(table.slice(0, table.num_rows - 3), changed)  # three products deleted: a real change

    paused, resume = tmp_path / "paused", tmp_path / "resume"
    run = subprocess.Popen([sys.executable, "-c", RUN, str(changed), store_uri, str(tiny_model_dir), str(paused),
                            str(resume)], stderr=subprocess.PIPE, text=True, env={**os.environ})
    try:
        deadline = time.monotonic() + 120
        while not paused.exists():
            assert run.poll() is None, run.stderr.read()
            assert time.monotonic() < deadline, "the run never reached its first upload"
            time.sleep(0.05)
        own_s3.kill()  # mid-publish: items.parquet is up, index.faiss and the manifest are not
        resume.touch()
        _, stderr = run.communicate(timeout=120)
    finally:
        if run.poll() is None:
            run.kill()
    assert run.returncode == 1
    errors = [line for line in stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and "s3://outage/index" in errors[0], stderr
    assert "Traceback" not in stderr

    own_s3.start(same_ports=True)
    store = open_store(store_uri)
    assert latest_version(store) == first.version  # LATEST never moved
    assert load_version(store).version == first.version  # and still loads, checksums verified
    assert current_holder(store) is not None  # the dead run could not give its lease back

    after = publish_catalog(dataclasses.replace(config, catalog=str(changed)), embed=embed_in_process)
    assert after.published and after.version != first.version
    assert latest_version(store) == after.version and list_versions(store) == [first.version, after.version]
    manifest = read_manifest(store, after.version)
    assert all(store.exists(f"{version_prefix(after.version)}/{name}") for name in manifest.files)
    assert load_version(store).index.ids == [i for i in table.column("item_id").to_pylist()][:table.num_rows - 3]
    assert current_holder(store) is None
