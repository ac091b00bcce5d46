"""Co-visitation, judged neighbours and the blend against hand-computed cases."""

import numpy as np
import pytest

from coldstart.ranking.fusion import blend, top_k, zscore
from coldstart.signals.covisit import CoVisitation, CoVisitConfig
from coldstart.ranking.judged_neighbours import JudgedNeighbours, NeighbourConfig


def test_covisit_hand_computed():
    cfg = CoVisitConfig(window=2, distance_decay=1.0, backward_weight=0.5, row_norm=0.0, recency=0.5)
    cv = CoVisitation(["a", "b", "c", "x"], cfg).fit([["a", "b", "c"], ["a", "c"], ["zzz", "b"]])
    m = cv.matrix.toarray()
    assert m[0, 1] == pytest.approx(1.0)  # a→b at distance 1
    assert m[0, 2] == pytest.approx(0.5 + 1.0)  # a→c at distance 2, then 1
    assert m[1, 0] == pytest.approx(0.5)  # backward b→a
    assert m[2, 0] == pytest.approx(0.25 + 0.5)
    assert m[3].sum() == 0 and m[:, 3].sum() == 0
    assert cv.popularity().tolist() == [2, 2, 2, 0]
    # clicks b then a: recency 0.5 for the older click b
    assert cv.scores(["b", "a"]) == pytest.approx(0.5 * m[1] + m[0])


def test_covisit_keeps_the_top_n_neighbours_of_each_item_and_matches_the_full_matrix_on_them():
    rng = np.random.default_rng(0)
    ids = [f"i{n}" for n in range(300)]
    sessions = [[ids[j] for j in rng.integers(0, 300, rng.integers(2, 12))] for _ in range(2000)]
    full = CoVisitation(ids, CoVisitConfig(top_n=None)).fit(sessions).matrix.toarray()
    top = CoVisitation(ids, CoVisitConfig(top_n=5)).fit(sessions).matrix
    assert np.diff(top.indptr).max() == 5
    for r in range(300):
        kept = top[r].toarray()[0]
        assert np.allclose(kept[kept > 0], full[r][kept > 0])  # kept values are exact
        assert kept[kept > 0].min() >= np.sort(full[r])[-5] - 1e-6  # and they are the row's largest


def test_covisit_scales_to_a_million_items_without_a_dense_matrix():
    ids = [f"i{n}" for n in range(1_000_000)]
    rng = np.random.default_rng(1)
    sessions = [[ids[j] for j in rng.integers(0, 1_000_000, 6)] for _ in range(20_000)]
    cv = CoVisitation(ids, CoVisitConfig(window=5)).fit(sessions)
    assert cv.matrix.shape == (1_000_000, 1_000_000)
    assert cv.nbytes < 50e6  # a dense float32 matrix would be 4 TB
    assert cv.scores([sessions[0][0]])[cv.row[sessions[0][1]]] > 0


def test_covisit_row_norm_divides_by_count_power():
    cv = CoVisitation(["a", "b"], CoVisitConfig(window=1, backward_weight=0.0, row_norm=1.0))
    cv.fit([["a", "b"], ["a"], ["a"], ["a", "b"]])
    assert cv.matrix[0, 1] == pytest.approx(2 / 4)


def test_covisit_round_trips_through_its_arrays():
    cv = CoVisitation(["a", "b", "c"]).fit([["a", "b", "c"], ["b", "c"]])
    again = CoVisitation.from_arrays(cv.ids, cv.config, cv.matrix, cv.counts)
    assert again.scores(["a", "b"]) == pytest.approx(cv.scores(["a", "b"]))


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
