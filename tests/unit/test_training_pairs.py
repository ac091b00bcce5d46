"""Training examples: grades become weights, and no judged-relevant product is ever a negative."""

import random

from coldstart.training.pairs import build_examples, session_examples
import numpy as np

from coldstart.training.sampling import epoch_order, item_indices
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


def test_graded_partners_have_lower_grades_and_every_judged_pair_is_listed():
    ex = build_examples(QUERIES, QRELS, mined={"q1": ["f"], "q2": ["g"]})
    batch = make_batch(ex, TEXTS, hard_negatives=0, rng=random.Random(0), graded_partners=2)
    cands = [t.split()[-1] for t in batch.candidates]
    partners = cands[len(ex):]
    assert partners and not set(partners) & set(cands[:len(ex)])  # a product already in the batch is not added
    assert len(partners) == len(set(partners))
    q1a = next(i for i, e in enumerate(ex) if (e.qid, e.positive) == ("q1", "a"))
    # q1/a (grade 6) brings two of its query's lower-graded products; q1/b (grade 4) only c or d
    listed = {(ex[i].qid, cands[j], g) for (i, j), g in zip(batch.graded_index.tolist(), batch.graded_grades.tolist())}
    expected = {(e.qid, c, float(QRELS[e.qid][c])) for e in ex for c in cands if c in QRELS[e.qid]}
    assert listed == expected
    assert ("q1", "a", 6.0) in listed and ("q2", "e", 0.0) in listed
    assert sum(1 for (qid, c, g) in listed if qid == "q1" and ex[q1a].qid == qid and g < 6) >= 2
    for i, e in enumerate(ex):  # the contrastive mask still protects every judged-relevant product
        for j, c in enumerate(cands):
            if c in e.relevant:
                assert batch.mask[i, j]


def test_without_graded_partners_the_batch_is_unchanged():
    ex = build_examples(QUERIES, QRELS, mined={"q1": ["f"], "q2": ["g"]})
    plain = make_batch(ex, TEXTS, hard_negatives=1, rng=random.Random(0))
    assert len(plain.candidates) == 2 * len(ex)


def test_session_pairs_within_window():
    ex = session_examples([["a", "b", "c", "d"]], TEXTS, window=2)
    assert {(e.query, e.positive) for e in ex} == {
        ("title a", "b"), ("title a", "c"), ("title b", "c"), ("title b", "d"), ("title c", "d")}


def test_epoch_order_is_reproducible_and_flattens_popularity():
    items = item_indices(["p"] * 9 + ["r"])
    assert items.tolist() == [0] * 9 + [1]
    assert sorted(epoch_order(items, temperature=1.0, seed=1, epoch=0).tolist()) == list(range(10))
    flat = epoch_order(items, temperature=0.0, seed=1, epoch=0)
    assert (flat == epoch_order(items, temperature=0.0, seed=1, epoch=0)).all()
    many = np.concatenate([epoch_order(items, temperature=0.0, seed=1, epoch=e) for e in range(200)])
    assert 0.4 < (many == 9).mean() < 0.6  # the rare product drawn about half the time
