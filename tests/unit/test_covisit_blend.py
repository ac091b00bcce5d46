"""Co-visitation, judged neighbours and the blend against hand-computed cases."""

import numpy as np
import pytest

from coldstart.ranking.fusion import blend, top_k, zscore
from coldstart.signals.covisit import CoVisitation, CoVisitConfig
from coldstart.ranking.judged_neighbours import JudgedNeighbours, NeighbourConfig


def test_covisit_hand_computed():
    cfg = CoVisitConfig(window=2, distance_decay=1.0, backward_weight=0.5, row_norm=0.0, recency=0.5)
    cv = CoVisitation(["a", "b", "c", "x"], cfg).fit([["a", "b", "c"], ["a", "c"], ["zzz", "b"]])
    m = cv.matrix
    assert m[0, 1] == pytest.approx(1.0)  # a→b at distance 1
    assert m[0, 2] == pytest.approx(0.5 + 1.0)  # a→c at distance 2, then 1
    assert m[1, 0] == pytest.approx(0.5)  # backward b→a
    assert m[2, 0] == pytest.approx(0.25 + 0.5)
    assert m[3].sum() == 0 and m[:, 3].sum() == 0
    assert cv.popularity().tolist() == [2, 2, 2, 0]
    # clicks b then a: recency 0.5 for the older click b
    assert cv.scores(["b", "a"]) == pytest.approx(0.5 * m[1] + m[0])


def test_covisit_refuses_a_catalog_its_dense_matrix_cannot_hold(monkeypatch):
    import coldstart.signals.covisit as covisit

    monkeypatch.setattr(covisit, "MAX_ITEMS", 3)
    with pytest.raises(ValueError, match="4 items would need .* up to 3"):
        CoVisitation(["a", "b", "c", "d"])


def test_covisit_row_norm_divides_by_count_power():
    cv = CoVisitation(["a", "b"], CoVisitConfig(window=1, backward_weight=0.0, row_norm=1.0))
    cv.fit([["a", "b"], ["a"], ["a"], ["a", "b"]])
    assert cv.matrix[0, 1] == pytest.approx(2 / 4)


def test_blend_zscores_and_ignores_constant_signals():
    a = np.array([1.0, 2.0, 3.0])
    out = blend({"a": a, "flat": np.ones(3)}, {"a": 2.0, "flat": 5.0})
    assert out == pytest.approx(2 * zscore(a))
    with pytest.raises(KeyError):
        blend({"a": a}, {"typo": 1.0})


def test_top_k_excludes_and_breaks_ties_by_row():
    s = np.array([0.5, 0.9, 0.9, 0.1])
    assert top_k(s, 3).tolist() == [1, 2, 0]
    assert top_k(s, 2, exclude=np.array([1])).tolist() == [2, 0]


def test_top_k_never_returns_an_excluded_row_even_when_k_exceeds_the_rest():
    s = np.array([0.1, 0.9, 0.5, 0.3], dtype=np.float32)
    assert top_k(s, 10, exclude=np.array([1, 3])).tolist() == [2, 0]
    assert top_k(s, 2, exclude=np.array([0, 1, 2, 3])).tolist() == []


def test_judged_neighbours_vote_with_grades():
    vecs = np.array([[1.0, 0.0], [0.0, 1.0]], dtype=np.float32)
    jn = JudgedNeighbours(["p", "q", "r"], vecs, [{"p": 6, "q": 0}, {"r": 6}],
                          NeighbourConfig(neighbours=1, temperature=1.0, centre=3.0, scale=3.0))
    s = jn.scores(np.array([[0.9, 0.1]], dtype=np.float32))
    assert s[0].tolist() == pytest.approx([1.0, -1.0, 0.0])
