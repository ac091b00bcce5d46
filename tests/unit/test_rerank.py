"""The cross-encoder re-ranker: fusion, what it re-orders and what it leaves alone, clicks-only requests."""

from __future__ import annotations

import numpy as np
import pytest

from coldstart.ranking.dense import UserRequest
from coldstart.ranking.fusion import fuse_rerank
from coldstart.ranking.rerank import CrossEncoder, Reranker, RerankerConfig
from coldstart.ranking.retrievers import RerankedRetriever

TEXTS = {f"p{n}": text for n, text in enumerate(
    ["red cordless drill", "blue desk lamp", "steel claw hammer", "green garden hose", "white ceiling fan",
     "black office chair", "brass door knob", "grey wall paint"])}


def test_fuse_adds_z_scores_with_the_first_stage_weight():
    first, cross = np.array([3.0, 2.0, 1.0]), np.array([0.0, 10.0, 5.0])
    z = lambda x: (x - x.mean()) / x.std()  # noqa: E731
    np.testing.assert_allclose(fuse_rerank(first, cross, 0.5), z(cross) + 0.5 * z(first), rtol=1e-6)
    assert np.argmax(fuse_rerank(first, cross, 0.0)) == 1
    with pytest.raises(ValueError, match="first-stage scores"):
        fuse_rerank(first, cross[:2], 1.0)


def test_scores_do_not_depend_on_the_batch_they_are_computed_in(tiny_cross_encoder_dir):
    queries = ["drill"] * 4 + ["a much longer query about lamps for the desk"] * 4
    texts = list(TEXTS.values())
    big = CrossEncoder(RerankerConfig(model=str(tiny_cross_encoder_dir), batch_size=64)).score(queries, texts)
    small = CrossEncoder(RerankerConfig(model=str(tiny_cross_encoder_dir), batch_size=3)).score(queries, texts)
    np.testing.assert_allclose(big, small, atol=1e-5)
    one = CrossEncoder(RerankerConfig(model=str(tiny_cross_encoder_dir))).score(queries[5:6], texts[5:6])
    np.testing.assert_allclose(one, big[5:6], atol=1e-5)


def test_a_model_with_more_than_one_label_is_refused(tmp_path):
    from tests.fixtures.models import save_tiny_cross_encoder

    path = save_tiny_cross_encoder(tmp_path / "two", num_labels=2)
    with pytest.raises(ValueError, match="exactly one"):
        CrossEncoder(RerankerConfig(model=str(path)))


def test_only_the_top_depth_is_reordered_and_the_rest_follows_in_order(tiny_cross_encoder_dir):
    reranker = Reranker(RerankerConfig(model=str(tiny_cross_encoder_dir), depth=4, first_weight=0.0), TEXTS)
    hits = [(f"p{n}", 10.0 - n) for n in range(8)]
    [ranked] = reranker.rerank_many(["drill"], [hits])
    assert sorted(i for i, _ in ranked[:4]) == ["p0", "p1", "p2", "p3"]
    assert [i for i, _ in ranked[4:]] == ["p4", "p5", "p6", "p7"]
    scores = [s for _, s in ranked]
    assert scores == sorted(scores, reverse=True)  # sorting by score keeps this order
    cross = reranker.pair_scores("drill", ["p0", "p1", "p2", "p3"])
    assert [i for i, _ in ranked[:4]] == [f"p{n}" for n in np.argsort(-cross, kind="stable")]


def test_a_heavy_first_stage_weight_keeps_the_first_stage_order(tiny_cross_encoder_dir):
    reranker = Reranker(RerankerConfig(model=str(tiny_cross_encoder_dir), depth=8, first_weight=1e6), TEXTS)
    hits = [(f"p{n}", 10.0 - n) for n in range(8)]
    assert [i for i, _ in reranker.rerank_many(["lamp"], [hits])[0]] == [i for i, _ in hits]


class _Fixed:
    """A first stage that returns the same hits for every request, as many as asked."""

    def __init__(self, hits):
        self.hits, self.asked = hits, []

    def search(self, requests, k):
        self.asked.append(k)
        return [list(self.hits[:k]) for _ in requests]


def test_reranked_retriever_reads_deep_enough_and_leaves_clicks_only_users_alone(tiny_cross_encoder_dir):
    hits = [(f"p{n}", 10.0 - n) for n in range(8)]
    first = _Fixed(hits)
    reranker = Reranker(RerankerConfig(model=str(tiny_cross_encoder_dir), depth=6, first_weight=0.0), TEXTS)
    retriever = RerankedRetriever(first, reranker)
    by_query, by_clicks = retriever.search([UserRequest(query="lamp"), UserRequest(clicks=("p7",))], 3)
    assert first.asked == [6]  # the cross-encoder sees its whole depth even when 3 are wanted
    assert len(by_query) == 3 and len(by_clicks) == 3
    assert by_clicks == hits[:3]
    expected = reranker.rerank_many(["lamp"], [hits[:6]])[0][:3]
    assert by_query == expected
