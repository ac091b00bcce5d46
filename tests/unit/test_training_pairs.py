"""Training examples: grades become weights, and no judged-relevant product is ever a negative."""

import random

from coldstart.training.pairs import build_examples, session_examples
from coldstart.training.sampling import epoch_order, resampling_weights
from coldstart.training.step import make_batch

QUERIES = {"q1": "deck screws", "q2": "angle bracket"}
QRELS = {"q1": {"a": 6, "b": 4, "c": 3, "d": 1}, "q2": {"b": 6, "e": 0}}
TEXTS = {i: f"title {i}" for i in "abcdefgh"}


def test_strong_and_weak_positives_with_weights():
    ex = build_examples(QUERIES, QRELS, strong_min_grade=5, weak_min_grade=4, weak_weight=0.5)
    got = {(e.qid, e.positive): e.weight for e in ex}
    assert got == {("q1", "a"): 1.0, ("q1", "b"): 0.5, ("q2", "b"): 1.0}


def test_negatives_never_judged_relevant():
    mined = {"q1": ["c", "a", "f", "b", "g"], "q2": ["b", "a", "h"]}
    ex = build_examples(QUERIES, QRELS, mined=mined, negative_max_grade=2, relevant_min_grade=3)
    for e in ex:
        judged = QRELS[e.qid]
        assert not any(judged.get(n, 0) >= 3 for n in e.negatives)
        assert e.positive not in e.negatives
    q1 = next(e for e in ex if e.qid == "q1")
    assert q1.negatives[0] == "d"  # the judged negative comes first
    assert set(q1.negatives) == {"d", "f", "g"}
    assert q1.relevant == frozenset("abc")


def test_batch_masks_in_batch_candidates_relevant_to_another_query():
    ex = build_examples(QUERIES, QRELS, mined={"q1": ["f"], "q2": ["g"]})
    batch = make_batch(ex, TEXTS, hard_negatives=1, rng=random.Random(0))
    cands = [t.split()[-1] for t in batch.candidates]
    for i, e in enumerate(ex):
        for j, c in enumerate(cands):
            if c in e.relevant and j != i:
                assert batch.mask[i, j]
            if j == i:
                assert batch.mask[i, j]  # the target is masked here; the loss unmasks the diagonal


def test_session_pairs_within_window():
    ex = session_examples([["a", "b", "c", "d"]], TEXTS, window=2)
    assert {(e.query, e.positive) for e in ex} == {
        ("title a", "b"), ("title a", "c"), ("title b", "c"), ("title b", "d"), ("title c", "d")}


def test_resampling_temperature():
    keys = ["p"] * 9 + ["r"]
    flat = resampling_weights(keys, 0.0)
    assert abs(flat[:9].sum() - 0.5) < 1e-9 and abs(flat[9] - 0.5) < 1e-9
    same = resampling_weights(keys, 1.0)
    assert abs(same[9] - 0.1) < 1e-9
    half = resampling_weights(keys, 0.5)
    assert 0.1 < half[9] < 0.5
    order = epoch_order(same, seed=1, epoch=0)
    assert sorted(order.tolist()) == list(range(10))  # uniform: a permutation
    assert (epoch_order(half, seed=1, epoch=3) == epoch_order(half, seed=1, epoch=3)).all()
