"""The store's publish lease (coldstart.artifacts.lease) on a local folder and on the real SeaweedFS.

Conditional writes decide every race here (link(2) locally, If-None-Match / If-Match on S3), so each test that
races starts its contenders together on a barrier and counts winners.
"""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import time

import pytest

from coldstart.artifacts.lease import PUBLISH_LEASE, LeaseHeld, LeaseLost, acquire, current_holder
from coldstart.artifacts.manifest import latest_version, list_versions, read_manifest, version_prefix
from coldstart.artifacts.store import LocalStore, PreconditionFailed, open_store


@pytest.fixture(params=["local", pytest.param("s3", marks=pytest.mark.s3)])
def store(request, tmp_path):
    if request.param == "local":
        return LocalStore(tmp_path / "store")
    return open_store(request.getfixturevalue("s3_bucket") + "/store")


def race(n: int, fn) -> list:
    """Run ``fn`` in ``n`` threads released together; returns each one's result or exception."""
    barrier, results = threading.Barrier(n), [None] * n

    def run(i):
        barrier.wait()
        try:
            results[i] = fn()
        except Exception as err:  # noqa: BLE001 - the outcome is what the test counts
            results[i] = err

    threads = [threading.Thread(target=run, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    return results


def test_conditional_writes_refuse_the_loser(store):
    token = store.create_bytes("k", b"one")
    with pytest.raises(PreconditionFailed):
        store.create_bytes("k", b"two")
    with pytest.raises(PreconditionFailed):
        store.replace_bytes("k", b"three", "not-the-token")
    token = store.replace_bytes("k", b"four", token)
    assert store.read_with_token("k") == (b"four", token)
    with pytest.raises(PreconditionFailed):
        store.delete_if("k", "not-the-token")
    store.delete_if("k", token)
    assert not store.exists("k") and store.list("") == []  # no lock sidecars in listings


def test_a_held_lease_stops_a_second_run_with_the_holder_named(store):
    with acquire(store, "embed first.parquet", renew=False) as first:
        with pytest.raises(LeaseHeld) as err:
            acquire(store, "embed second.parquet")
        assert first.holder.run_id in str(err.value) and "embed first.parquet" in str(err.value)
        assert "expires" in str(err.value) and PUBLISH_LEASE in str(err.value)
        assert current_holder(store).run_id == first.holder.run_id
    assert current_holder(store) is None
    acquire(store, "embed again", renew=False).release()


def test_of_many_runs_starting_at_once_exactly_one_holds_the_lease(store):
    results = race(6, lambda: acquire(store, "race", renew=False))
    winners = [r for r in results if not isinstance(r, Exception)]
    assert len(winners) == 1, results
    assert all(isinstance(r, LeaseHeld) for r in results if r is not winners[0])
    winners[0].release()


def test_an_expired_lease_is_taken_over_and_its_old_holder_is_fenced(store):
    stalled = acquire(store, "stalled run", ttl_s=0.5, renew=False)
    time.sleep(0.7)
    taker = acquire(store, "next run", renew=False)
    with pytest.raises(LeaseLost, match="taken over"):
        stalled.check()
    stalled.release()  # must not delete the taker's lease
    assert current_holder(store).run_id == taker.holder.run_id
    taker.release()


def test_of_runs_that_find_the_same_stale_lease_exactly_one_takes_it(store):
    acquire(store, "dead run", ttl_s=0.2, renew=False)  # never released
    time.sleep(0.4)
    results = race(5, lambda: acquire(store, "taker", renew=False))
    winners = [r for r in results if not isinstance(r, Exception)]
    assert len(winners) == 1, results
    winners[0].release()


def test_a_lease_whose_process_on_this_host_is_gone_is_stale_before_its_expiry(store):
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    pid = int(dead.stdout)
    lease = acquire(store, "killed run", ttl_s=3600, renew=False)
    record = json.loads(store.read_bytes(PUBLISH_LEASE))
    store.replace_bytes(PUBLISH_LEASE, json.dumps({**record, "pid": pid}).encode(), lease.token)
    taker = acquire(store, "next run", renew=False)
    assert current_holder(store).run_id == taker.holder.run_id
    taker.release()


def test_renewal_keeps_a_long_run_holding_its_lease(store):
    with acquire(store, "long run", ttl_s=0.9) as long_run:
        time.sleep(2.0)  # more than twice the TTL
        with pytest.raises(LeaseHeld):
            acquire(store, "impatient run")
        long_run.check()


def test_two_embed_jobs_on_one_store_publish_exactly_once(tmp_path, tiny_model_dir, sample_catalog_path):
    """The real job's steps, twice at once on one store: one publishes; the other stops naming it, having
    written nothing; LATEST names a version whose every manifest file is there."""
    from coldstart.config import JobConfig
    from coldstart.encoders.encoder import EncoderConfig
    from coldstart.publish import embed_in_process, publish_catalog
    from jobs.demo import DEMO_SCHEMA

    config = JobConfig(catalog=str(sample_catalog_path), store=str(tmp_path / "store"), schema=DEMO_SCHEMA,
                       encoder=EncoderConfig(model=str(tiny_model_dir), device="cpu"))
    results = race(2, lambda: publish_catalog(config, embed=embed_in_process))
    published = [r for r in results if not isinstance(r, Exception)]
    refused = [r for r in results if isinstance(r, Exception)]
    assert len(published) == 1 and published[0].published
    assert len(refused) == 1 and isinstance(refused[0], LeaseHeld), refused
    store = LocalStore(tmp_path / "store")
    assert list_versions(store) == [published[0].version] == [latest_version(store)]
    manifest = read_manifest(store, latest_version(store))
    prefix = version_prefix(manifest.version)
    assert all(store.exists(f"{prefix}/{name}") for name in manifest.files)
    assert current_holder(store) is None
