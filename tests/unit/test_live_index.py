"""The live index: swaps to newly published versions, refuses bad ones and keeps serving the last good one."""

import pytest

from coldstart.artifacts.versions import load_version
from coldstart.artifacts.live_index import LiveIndex
from coldstart.artifacts.manifest import set_latest
from coldstart.artifacts.store import open_store
from tests.fixtures.versions import corrupt, publish_random, random_encoder_info

ENCODER = random_encoder_info()


@pytest.fixture
def store(tmp_path):
    return open_store(tmp_path / "store")


class CountingLoader:
    """``load_version`` with the serving encoder's expectations, counting calls per version."""

    def __init__(self, store, expect=ENCODER):
        self.store, self.expect, self.calls = store, expect, {}

    def __call__(self, version):
        self.calls[version] = self.calls.get(version, 0) + 1
        return load_version(self.store, version, expect=self.expect)


def test_nothing_published_then_picked_up(store):
    live = LiveIndex(store, CountingLoader(store))
    assert not live.start() and live.live is None and not live.status()["ready"]
    v1 = publish_random(store, encoder=ENCODER).version
    assert live.refresh() and live.live.version == v1
    assert live.stats.swaps == 0  # the first load is not a swap


def test_swaps_to_a_new_version_and_keeps_the_old_object_intact(store):
    v1 = publish_random(store, encoder=ENCODER, seed=1).version
    live = LiveIndex(store, CountingLoader(store))
    assert live.start()
    held = live.live  # what an in-flight request holds
    assert not live.refresh()  # LATEST unchanged: nothing to do
    v2 = publish_random(store, encoder=ENCODER, seed=2).version
    assert live.refresh()
    assert live.live.version == v2 and live.stats.swaps == 1
    assert held.version == v1 and len(held.value.index) == 20  # the old version is untouched


def test_corrupt_version_is_refused_once_and_the_old_one_serves(store):
    v1 = publish_random(store, encoder=ENCODER, seed=1).version
    loader = CountingLoader(store)
    live = LiveIndex(store, loader)
    live.start()
    bad = publish_random(store, encoder=ENCODER, seed=2).version
    corrupt(store, bad)
    assert not live.refresh() and not live.refresh()
    assert live.live.version == v1
    assert "checksum" in live.stats.rejected[bad]
    assert loader.calls[bad] == 1  # refused versions are never downloaded again
    assert live.status()["rejected"] == {bad: live.stats.rejected[bad]}


def test_other_encoder_is_refused(store):
    v1 = publish_random(store, encoder=ENCODER).version
    live = LiveIndex(store, CountingLoader(store))
    live.start()
    other = publish_random(store, encoder=random_encoder_info(fingerprint="0" * 64)).version
    assert not live.refresh()
    assert live.live.version == v1 and "re-embed" in live.stats.rejected[other]
    wrong_dim = publish_random(store, encoder=random_encoder_info(dim=4)).version
    assert not live.refresh() and "dimension" in live.stats.rejected[wrong_dim]


def test_transient_failures_are_retried_then_given_up(store):
    v1 = publish_random(store, encoder=ENCODER).version
    failures = {"left": 2}

    def flaky(version):
        if version != v1 and failures["left"] > 0:
            failures["left"] -= 1
            raise OSError("connection reset")
        return load_version(store, version, expect=ENCODER)

    live = LiveIndex(store, flaky, max_attempts=3)
    live.start()
    v2 = publish_random(store, encoder=ENCODER, seed=3).version
    assert not live.refresh() and "connection reset" in live.status()["last_error"]
    assert not live.refresh()
    assert live.refresh() and live.live.version == v2  # the third attempt works
    assert live.status()["last_error"] is None

    def broken(version):
        raise ValueError("index holds 3 vectors")

    stubborn = LiveIndex(store, broken, max_attempts=2)
    for _ in range(3):
        stubborn.refresh()
    assert "failed 2 times" in stubborn.stats.rejected[v2]


def test_startup_falls_back_to_the_newest_good_version(store):
    v1 = publish_random(store, encoder=ENCODER, seed=1).version
    v2 = publish_random(store, encoder=ENCODER, seed=2).version
    bad = publish_random(store, encoder=ENCODER, seed=3).version
    corrupt(store, bad)
    live = LiveIndex(store, CountingLoader(store))
    assert live.start()
    assert live.live.version == v2 and bad in live.stats.rejected
    set_latest(store, v1)  # an operator rolls back: LATEST moves to an older version
    assert live.refresh() and live.live.version == v1


def test_unreadable_store_keeps_serving(store, monkeypatch):
    publish_random(store, encoder=ENCODER)
    live = LiveIndex(store, CountingLoader(store))
    live.start()
    served = live.live

    def unreachable(key):
        raise OSError("no route to host")

    monkeypatch.setattr(store, "read_bytes", unreachable)
    assert not live.refresh()
    assert live.live is served and "no route to host" in live.status()["last_error"]


def test_the_poll_after_a_swap_hands_the_old_versions_memory_back(store, monkeypatch):
    """Once per swap, one poll later (when the requests that held the old version are done), not on every poll
    and not at the first load."""
    from coldstart.artifacts import live_index

    released = []
    monkeypatch.setattr(live_index, "release_freed_memory", lambda: released.append(1))
    publish_random(store, encoder=ENCODER, seed=1)
    live = LiveIndex(store, CountingLoader(store))
    assert live.start() and not live.refresh() and released == []
    publish_random(store, encoder=ENCODER, seed=2)
    assert live.refresh() and released == []  # swapped; the old version may still be in use
    assert not live.refresh() and released == [1]
    assert not live.refresh() and released == [1]

