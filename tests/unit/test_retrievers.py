"""The ``blend`` retriever: weighted z-scores of the profile's cosine and BM25 over the whole catalog."""

import numpy as np
import pytest

from coldstart.ranking.fusion import zscore
from coldstart.artifacts.versions import load_version
from coldstart.ranking.dense import DenseRecommender, UserRequest
from coldstart.ranking.retrievers import BlendRetriever, LexicalRetriever, make_retriever
from coldstart.artifacts.store import LocalStore
from tests.fixtures.versions import items_table, publish, random_encoder_info

IDS = ["a0", "a1", "a2", "a3", "a4", "a5"]
TEXTS = ["red chair", "red table", "blue chair", "green lamp", "blue lamp", "red lamp"]


@pytest.fixture
def recommender(tmp_path):
    rng = np.random.default_rng(3)
    vectors = rng.standard_normal((len(IDS), 8)).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    store = LocalStore(tmp_path / "store")
    publish(store, items_table(IDS, TEXTS), vectors, random_encoder_info())
    return DenseRecommender(None, load_version(store))  # clicks only: no query to encode


def test_dense_weight_alone_ranks_like_the_dense_retriever(recommender):
    request = UserRequest(clicks=("a0",))
    blended = make_retriever("blend", recommender, weights={"dense": 1.0}).search([request], 5)[0]
    dense = make_retriever("dense", recommender).search([request], 5)[0]
    assert [i for i, _ in blended] == [i for i, _ in dense]
    assert "a0" not in [i for i, _ in blended]


def test_bm25_weight_alone_ranks_the_clicked_words_first(recommender):
    ranking = make_retriever("blend", recommender, weights={"bm25": 1.0}).search([UserRequest(clicks=("a0",))], 3)[0]
    assert {i for i, _ in ranking} == {"a1", "a2", "a5"}  # share "red" or "chair" with the click


def test_scores_are_the_weighted_sum_of_z_scores(recommender):
    lexical = LexicalRetriever(IDS, TEXTS)
    retriever = BlendRetriever(recommender, lexical, {"dense": 1.0, "bm25": 0.5})
    request = UserRequest(clicks=("a2",), exclude=("a4",))
    ranking = retriever.search([request], 6)[0]
    vectors = recommender.version.index.vectors
    expected = zscore(vectors @ vectors[2]) + 0.5 * zscore(lexical.bm25.scores("blue chair"))
    assert [i for i, _ in ranking] == [IDS[r] for r in np.argsort(-expected) if IDS[r] not in ("a2", "a4")]
    for item_id, score in ranking:
        assert score == pytest.approx(expected[IDS.index(item_id)], abs=1e-5)


def test_no_signal_gives_an_empty_ranking_and_bad_weights_are_refused(recommender):
    retriever = make_retriever("blend", recommender)
    assert retriever.search([UserRequest(clicks=("NOT-A-SKU",))], 3) == [[]]
    with pytest.raises(ValueError, match="blend weights"):
        make_retriever("blend", recommender, weights={"dense": 1.0, "neighbours": 0.3})
    with pytest.raises(ValueError, match="unknown retriever"):
        make_retriever("rrf", recommender)


def test_clicks_only_requests_blend_session_signals(recommender):
    from coldstart.signals.sessions import SessionSignals

    # Other users who bought a0 went on to buy a3 (a lamp, unlike a0 in text and vector alike).
    sessions = SessionSignals(IDS, [["a0", "a3"]] * 5 + [["a1", "a4"]])
    retriever = make_retriever("blend", recommender, weights={"dense": 1.0}, sessions=sessions,
                               click_weights={"covisit": 1.0})
    clicks_only = UserRequest(clicks=("a0",))
    assert retriever.search([clicks_only], 1)[0][0][0] == "a3"
    dense = make_retriever("blend", recommender, weights={"dense": 1.0})
    assert [i for i, _ in retriever.search([clicks_only], 5)[0]] != [i for i, _ in dense.search([clicks_only], 5)[0]]
    with pytest.raises(ValueError, match="need session signals"):
        make_retriever("blend", recommender, click_weights={"brand": 1.0}, sessions=sessions)
    with pytest.raises(ValueError, match="lack"):
        make_retriever("blend", recommender, sessions=SessionSignals(IDS[:3], []))
    with pytest.raises(ValueError, match="'blend' retriever"):
        make_retriever("dense", recommender, sessions=sessions)
