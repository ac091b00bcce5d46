"""The fused replica's core, without Ray: one call answers a batch the way the batch pipeline ranks it, repeated
queries come from the cache, and health says when the store holds a version the replica could not load."""

from __future__ import annotations

import json
import random

import pytest

from coldstart.artifacts.store import open_store
from coldstart.catalog.sample import make_sample_catalog
from coldstart.config import JobConfig
from coldstart.encoders.encoder import Encoder, EncoderConfig
from coldstart.ranking.config import load_retrieval_config
from coldstart.ranking.dense import UserRequest
from coldstart.ranking.pipeline import RankingPipeline
from coldstart.serving.config import ServeAppArgs
from coldstart.serving.replica import FusedCore, RetrievalCore
from coldstart.serving.schema import RecommendRequest
from tests.fixtures.versions import corrupt, publish_encoded

MAX_LENGTH = 32


@pytest.fixture(scope="module")
def catalog():
    table = make_sample_catalog()
    return table.column("item_id").to_pylist(), table.column("title").to_pylist()


@pytest.fixture(scope="module")
def published(tmp_path_factory, tiny_model_dir, catalog):
    root = tmp_path_factory.mktemp("replica")
    store = open_store(root / "store")
    encoder = Encoder(EncoderConfig(model=str(tiny_model_dir), max_length=MAX_LENGTH, num_threads=1))
    publish_encoded(store, encoder, *catalog)
    rng = random.Random(3)
    sessions = root / "sessions.jsonl"
    sessions.write_text("".join(json.dumps({"user_id": f"u{n}", "items": rng.sample(catalog[0], 5)}) + "\n"
                                for n in range(100)))
    return store, sessions


def test_one_call_answers_a_batch_as_the_batch_pipeline_ranks_it(published, tiny_model_dir, catalog):
    store, sessions = published
    ids, _ = catalog
    args = ServeAppArgs(store=str(store.root), model=str(tiny_model_dir), max_length=MAX_LENGTH,
                        retriever="blend", sessions=str(sessions), poll_interval_s=60)
    core = FusedCore(args)
    try:
        bodies = [RecommendRequest(query="office chair"), RecommendRequest(clicks=ids[:2]),
                  RecommendRequest(query="lamp", clicks=[ids[3]], k=5), RecommendRequest(query="OFFICE  chair")]
        answers = core.answer(bodies)
        job = JobConfig(store=str(store.root), encoder=EncoderConfig(model=str(tiny_model_dir), max_length=MAX_LENGTH))
        pipeline = RankingPipeline.from_store(job, load_retrieval_config(None), sessions=sessions)
        expected = pipeline.search([UserRequest(query=b.query, clicks=tuple(b.clicks)) for b in bodies], 10)
        for body, answer, ranking in zip(bodies, answers, expected):
            assert [i.item_id for i in answer.result.items] == [i for i, _ in ranking][: body.k]
        assert answers[1].embedding is None and answers[1].result.signals[-1] == "popularity"
        # the two spellings of one query are one forward-pass row; asked again, it is a cache hit
        assert answers[0].embedding.text == answers[3].embedding.text and answers[0].embedding.batch_size == 2
        [again] = core.answer([RecommendRequest(query="office chair")])
        assert again.embedding.cache_hit
    finally:
        core.close()


def test_health_empty_store_is_not_a_fault_a_refused_only_version_is(tmp_path, tiny_model_dir, catalog):
    store = open_store(tmp_path / "store")
    args = ServeAppArgs(store=str(store.root), model=str(tiny_model_dir), max_length=MAX_LENGTH, poll_interval_s=60)
    core = RetrievalCore(args)
    try:
        assert not core.live.ready and core.health_problem() is None  # nothing published: restarting cannot help
        encoder = Encoder(EncoderConfig(model=str(tiny_model_dir), max_length=MAX_LENGTH, num_threads=1))
        version = publish_encoded(store, encoder, *catalog).version
        corrupt(store, version)
        core.live.refresh()
        assert not core.live.ready
        assert version in core.health_problem()
    finally:
        core.close()
