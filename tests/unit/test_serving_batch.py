"""Serving retrieval over one version: same answers as the in-process recommender, clicks handled, MMR applied."""

import numpy as np
import pytest

from coldstart.artifacts.versions import load_version
from coldstart.ranking.user_vector import ProfileConfig
from coldstart.ranking.dense import DenseRecommender, UserRequest
from coldstart.serving.batch import NO_SIGNAL, RetrievalQuery, ServingVersion, retrieve
from coldstart.artifacts.store import open_store
from tests.fixtures.versions import publish_random, random_encoder_info

PROFILE = ProfileConfig(query_weight=0.6, click_decay=0.5)


@pytest.fixture(scope="module")
def serving(tmp_path_factory):
    store = open_store(tmp_path_factory.mktemp("store"))
    publish_random(store, n=60, encoder=random_encoder_info(dim=8), seed=4)
    return ServingVersion.prepare(load_version(store))


class FixedEncoder:
    """Stands in for the encoder replica: a fixed vector per query text."""

    def __init__(self, vectors):
        self.vectors = vectors

    def encode(self, texts):
        return np.stack([self.vectors[t] for t in texts])


def _unit(v):
    return (v / np.linalg.norm(v)).astype(np.float32)


def test_same_answers_as_the_in_process_recommender(serving):
    rng = np.random.default_rng(0)
    vectors = {"drill": _unit(rng.standard_normal(8)), "saw": _unit(rng.standard_normal(8))}
    users = [UserRequest(query="drill"), UserRequest(query="saw", clicks=("item3", "item7")),
             UserRequest(clicks=("item1", "nope", "item2"), exclude=("item9",))]
    reference = DenseRecommender(FixedEncoder(vectors), serving.loaded, PROFILE).recommend_batch(users, 5)
    got = retrieve(serving, [
        RetrievalQuery(query=u.query, query_vector=vectors[u.query] if u.query else None,
                       clicks=u.clicks, exclude=u.exclude, k=5) for u in users], profile=PROFILE)
    for ref, res in zip(reference, got):
        assert [i.item_id for i in res.items] == [item_id for item_id, _ in ref.items]
        np.testing.assert_allclose([i.score for i in res.items], [s for _, s in ref.items], atol=1e-6)
        assert res.unknown_clicks == ref.unknown_clicks and res.version == serving.version
    assert got[2].unknown_clicks == ["nope"] and got[2].known_clicks == 2
    assert {r.batch_size for r in got} == {3}  # one search answered all three
    assert got[1].items[0].title == serving.titles[serving.loaded.index.row_of[got[1].items[0].item_id]]


def test_clicked_and_excluded_items_are_never_returned(serving):
    clicks = tuple(f"item{i}" for i in range(5))
    [res] = retrieve(serving, [RetrievalQuery(clicks=clicks, exclude=("item5", "item6"), k=50)], profile=PROFILE)
    returned = {i.item_id for i in res.items}
    assert len(res.items) == 50 and not returned & set(clicks + ("item5", "item6"))


def test_only_unknown_clicks_gives_an_empty_answer_with_a_reason(serving):
    [res] = retrieve(serving, [RetrievalQuery(clicks=("gone1", "gone2"), k=5)], profile=PROFILE)
    assert res.items == [] and res.reason == NO_SIGNAL and res.unknown_clicks == ["gone1", "gone2"]


def test_diversity_reranks_the_candidates_and_keeps_k(serving):
    query = RetrievalQuery(query="x", query_vector=serving.loaded.index.vectors[0], k=5)
    diverse = RetrievalQuery(query="x", query_vector=serving.loaded.index.vectors[0], k=5, diversity=0.9)
    plain_res, diverse_res = retrieve(serving, [query, diverse], profile=PROFILE, mmr_candidates=30)
    assert len(diverse_res.items) == 5
    assert diverse_res.items[0] == plain_res.items[0]  # the best match stays first
    assert [i.item_id for i in diverse_res.items] != [i.item_id for i in plain_res.items]
    # every re-ranked item comes from the top 30 by relevance
    [top30] = retrieve(serving, [RetrievalQuery(query="x", query_vector=query.query_vector, k=30)], profile=PROFILE)
    assert {i.item_id for i in diverse_res.items} <= {i.item_id for i in top30.items}


def test_query_text_and_vector_go_together():
    with pytest.raises(ValueError, match="both"):
        RetrievalQuery(query="drill")


def test_a_reranked_request_gets_its_depth_of_candidates_with_their_texts(serving):
    vector = _unit(np.random.default_rng(1).standard_normal(8))
    plain, deep = retrieve(serving, [RetrievalQuery(query="drill", query_vector=vector, k=3),
                                     RetrievalQuery(query="drill", query_vector=vector, k=3, rerank_depth=10)],
                           profile=PROFILE)
    assert [i.item_id for i in deep.items[:3]] == [i.item_id for i in plain.items] and len(deep.items) == 10
    row_of = serving.loaded.index.row_of
    assert [i.text for i in deep.items] == [serving.texts[row_of[i.item_id]] for i in deep.items]
    assert all(i.text is None for i in plain.items)  # no texts travel when nobody re-ranks
    with pytest.raises(ValueError, match="diversity or re-ranking"):
        RetrievalQuery(query="drill", query_vector=vector, diversity=0.5, rerank_depth=10)


def test_with_a_pipeline_the_served_ranking_is_the_pipelines_and_says_what_ranked_it(serving):
    """The batch ranking (coldstart search's RankingPipeline) answers every user without diversity, from the
    vectors the encoder replica sent; diversity requests keep the dense candidates and MMR."""
    from coldstart.ranking.config import RetrievalConfig
    from coldstart.ranking.pipeline import RankingPipeline

    config = RetrievalConfig(query_weights={"dense": 1.0, "bm25": 0.5})
    with_pipeline = ServingVersion.prepare(
        serving.loaded, lambda loaded, signals: RankingPipeline(DenseRecommender(None, loaded, PROFILE), config))
    rng = np.random.default_rng(1)
    text = serving.texts[5].split()[0]  # a word of a product's text, so BM25 has something to say
    vector = _unit(rng.standard_normal(8))
    users = [UserRequest(query=text), UserRequest(query=text, clicks=("item3",)), UserRequest(clicks=("item1",))]
    queries = [RetrievalQuery(query=u.query, query_vector=vector if u.query else None, clicks=u.clicks, k=6)
               for u in users]
    got = retrieve(with_pipeline, queries, profile=PROFILE)
    vectors = np.stack([vector if u.query else np.zeros(8, np.float32) for u in users])
    expected = with_pipeline.pipeline.search(users, 6, query_vectors=vectors)
    for res, ranking in zip(got, expected):
        assert [(i.item_id, round(i.score, 5)) for i in res.items] == [(i, round(s, 5)) for i, s in ranking]
        assert res.signals == ["dense", "bm25"]
    dense = retrieve(serving, queries[:1], profile=PROFILE)[0]
    assert dense.signals == ["dense"]  # without a pipeline: the plain dense search
    diverse = retrieve(with_pipeline, [RetrievalQuery(query=text, query_vector=vector, k=4, diversity=0.5)],
                       profile=PROFILE)[0]
    assert diverse.signals == ["dense", "mmr"] and len(diverse.items) == 4
