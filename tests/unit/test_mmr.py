"""MMR re-ranking: λ=0 is the relevance order, near-duplicates get spread, and it matches a slow reference."""

import numpy as np
import pytest

from coldstart.ranking.mmr import mmr_order


def _unit(v):
    v = np.asarray(v, dtype=np.float32)
    return v / np.linalg.norm(v, axis=-1, keepdims=True)


def _chairs(seed=0):
    """Six near-identical office chairs, three dining and three garden chairs; the query leans to office."""
    rng = np.random.default_rng(seed)
    dim = 16
    chair, office, dining, garden = np.eye(dim, dtype=np.float32)[:4]
    kinds, vectors = [], []
    for kind, direction, count in (("office", office, 6), ("dining", dining, 3), ("garden", garden, 3)):
        for _ in range(count):
            vectors.append(chair + 0.8 * direction + 0.02 * rng.standard_normal(dim))
            kinds.append(kind)
    vectors = _unit(vectors)
    query = _unit(chair + 0.3 * office)
    return vectors, vectors @ query, np.array(kinds)


def test_zero_diversity_is_the_relevance_order():
    vectors, relevance, _ = _chairs()
    assert list(mmr_order(relevance, vectors, 5, diversity=0.0)) == list(np.argsort(-relevance)[:5])


def test_near_duplicate_chairs_get_spread_over_kinds():
    vectors, relevance, kinds = _chairs()
    plain = kinds[mmr_order(relevance, vectors, 5, diversity=0.0)]
    assert set(plain) == {"office"}  # without diversity: five copies of one chair
    diverse = kinds[mmr_order(relevance, vectors, 3, diversity=0.5)]
    assert set(diverse) == {"office", "dining", "garden"}
    assert diverse[0] == "office"  # the most relevant item still comes first


def _reference_mmr(relevance, vectors, k, diversity):
    """The textbook loop: recompute the max similarity to every picked item at each step."""
    picked, left = [], list(range(len(relevance)))
    while left and len(picked) < k:
        def score(i):
            if not picked:
                return relevance[i]
            return (1 - diversity) * relevance[i] - diversity * max(float(vectors[i] @ vectors[j]) for j in picked)
        best = max(left, key=score)
        picked.append(best)
        left.remove(best)
    return picked


@pytest.mark.parametrize("diversity", [0.1, 0.3, 0.7, 1.0])
def test_matches_the_textbook_loop(diversity):
    rng = np.random.default_rng(1)
    vectors = _unit(rng.standard_normal((40, 8)))
    relevance = vectors @ _unit(rng.standard_normal(8))
    assert list(mmr_order(relevance, vectors, 10, diversity=diversity)) == _reference_mmr(relevance, vectors, 10, diversity)


def test_k_larger_than_candidates_and_bad_lambda():
    vectors, relevance, _ = _chairs()
    assert sorted(mmr_order(relevance, vectors, 50, diversity=0.4)) == list(range(len(relevance)))
    with pytest.raises(ValueError, match="diversity"):
        mmr_order(relevance, vectors, 3, diversity=1.5)
