"""Rank fusion against hand-computed cases (arithmetic in the comments)."""

import pytest

from coldstart.ranking.fusion import reciprocal_rank_fusion, weighted_score_fusion

# Scores are deliberately on different scales and ignored by RRF: only positions count.
BM25 = [("a", 12.0), ("b", 7.5), ("c", 3.1)]
DENSE = [("c", 0.91), ("a", 0.80), ("d", 0.42)]


def _ids(fused):
    return [item_id for item_id, _ in fused]


def test_rrf_by_hand():
    fused = reciprocal_rank_fusion([BM25, DENSE], k=60)
    # a: 1/(60+1) + 1/(60+2) = 0.0163934 + 0.0161290 = 0.0325225
    # c: 1/(60+3) + 1/(60+1) = 0.0158730 + 0.0163934 = 0.0322664
    # b: 1/(60+2)                                     = 0.0161290
    # d: 1/(60+3)                                     = 0.0158730
    assert _ids(fused) == ["a", "c", "b", "d"]
    assert [s for _, s in fused] == pytest.approx([1 / 61 + 1 / 62, 1 / 63 + 1 / 61, 1 / 62, 1 / 63])


def test_rrf_weights():
    fused = reciprocal_rank_fusion([BM25, DENSE], k=60, weights=[1, 3])
    # a: 1/61 + 3/62 = 0.0647805;  c: 1/63 + 3/61 = 0.0650534;  d: 3/63 = 0.0476190;  b: 1/62 = 0.0161290
    assert _ids(fused) == ["c", "a", "d", "b"]
    assert fused[0][1] == pytest.approx(1 / 63 + 3 / 61)


def test_rrf_depth_cuts_inputs_and_output():
    fused = reciprocal_rank_fusion([BM25, DENSE], k=60, depth=2)
    # only [a, b] and [c, a] are read: a 1/61 + 1/62, c 1/61, b 1/62; the best 2 are returned
    assert fused == [("a", pytest.approx(1 / 61 + 1 / 62)), ("c", pytest.approx(1 / 61))]


def test_rrf_ties_keep_first_met_order():
    # x: 1/61 + 1/62 and y: 1/62 + 1/61 are the same number; x is met first
    assert _ids(reciprocal_rank_fusion([[("x", 1), ("y", 0)], [("y", 1), ("x", 0)]])) == ["x", "y"]
    assert _ids(reciprocal_rank_fusion([[("y", 1), ("x", 0)], [("x", 1), ("y", 0)]])) == ["y", "x"]


def test_rrf_handles_empty_lists_and_rejects_bad_input():
    assert reciprocal_rank_fusion([[], []]) == []
    assert _ids(reciprocal_rank_fusion([[], DENSE])) == ["c", "a", "d"]
    with pytest.raises(ValueError, match="one weight per ranking"):
        reciprocal_rank_fusion([BM25, DENSE], weights=[1])
    with pytest.raises(ValueError, match="lists item 'a' twice"):
        reciprocal_rank_fusion([[("a", 1), ("a", 0)]])


def test_weighted_minmax_by_hand():
    lexical = [("a", 10.0), ("b", 6.0), ("c", 2.0)]
    dense = [("b", 0.9), ("d", 0.5)]
    fused = weighted_score_fusion([lexical, dense], weights=[1, 1], normalise="minmax")
    # lexical: a (10-2)/8 = 1, b 4/8 = 0.5, c 0; dense: b 1, d 0; a missing item gets the list minimum, 0
    # a 1 + 0 = 1;  b 0.5 + 1 = 1.5;  c 0 + 0 = 0;  d 0 + 0 = 0 (tie with c, which is met first)
    assert fused == [("b", 1.5), ("a", 1.0), ("c", 0.0), ("d", 0.0)]


def test_weighted_zscore_by_hand():
    lexical = [("a", 10.0), ("b", 6.0), ("c", 2.0)]
    dense = [("b", 0.9), ("d", 0.5)]
    fused = weighted_score_fusion([lexical, dense], weights=[1, 2], normalise="zscore")
    # lexical: mean 6, population std sqrt((16 + 0 + 16) / 3) = 3.2659863 -> a 1.2247449, b 0, c -1.2247449
    # dense: mean 0.7, std 0.2 -> b 1, d -1; missing items get the minimum: lexical -1.2247449, dense -1
    z = 4 / (32 / 3) ** 0.5
    # a: z + 2 * (-1) = -0.7752551;  b: 0 + 2 * 1 = 2;  c: -z + 2 * (-1) = -3.2247449;  d: -z + 2 * (-1)
    assert _ids(fused) == ["b", "a", "c", "d"]
    assert [s for _, s in fused] == pytest.approx([2, z - 2, -z - 2, -z - 2])


def test_weighted_constant_list_adds_nothing_and_errors_say_what_to_fix():
    fused = weighted_score_fusion([[("a", 3.0), ("b", 3.0)], [("b", 2.0), ("a", 1.0)]], weights=[1, 1])
    assert fused == [("b", 1.0), ("a", 0.0)]
    with pytest.raises(ValueError, match="'minmax' or 'zscore'"):
        weighted_score_fusion([BM25], weights=[1], normalise="rank")
    with pytest.raises(ValueError, match="NaN or infinite"):
        weighted_score_fusion([[("a", float("nan"))]], weights=[1])
