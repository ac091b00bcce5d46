"""The cross-encoder's training data and step: grades as soft labels, random negatives never judged, FGM/PGD."""

from __future__ import annotations

import random

import pytest
import torch

from coldstart.training.adversarial import AdversarialConfig, make_attack
from coldstart.training.pointwise import PointwiseExample, make_pair_batch, pointwise_examples, pointwise_step

QUERIES = {"q1": "red drill", "q2": "blue lamp"}
QRELS = {"q1": {"red-drill": 6, "red-saw": 3, "blue-drill": 0}, "q2": {"blue-lamp": 4}}
TEXTS = {i: i.replace("-", " ") + " for the home" for i in
         ("red-drill", "red-saw", "blue-drill", "blue-lamp", "green-lamp", "grey-hammer")}


def test_every_judged_pair_becomes_an_example_with_its_grade_scaled():
    examples = pointwise_examples(QUERIES, QRELS)
    assert [(e.qid, e.item, e.label, e.grade) for e in examples] == [
        ("q1", "red-drill", 1.0, 6), ("q1", "red-saw", 0.5, 3), ("q1", "blue-drill", 0.0, 0),
        ("q2", "blue-lamp", 4 / 6, 4)]
    # an explicit scale, e.g. a split whose best grade is below the scale's top
    assert pointwise_examples(QUERIES, {"q2": {"blue-lamp": 4}}, grade_max=8)[0].label == 0.5


def test_bad_judgments_are_refused_with_the_reason():
    with pytest.raises(ValueError, match="no text"):
        pointwise_examples({"q1": "red drill"}, QRELS)
    with pytest.raises(ValueError, match="grade_max"):
        pointwise_examples(QUERIES, QRELS, grade_max=5)
    with pytest.raises(ValueError, match="empty"):
        pointwise_examples(QUERIES, {})


def test_random_negatives_are_never_products_judged_for_the_query():
    qrels = {"q1": {"red-drill": 6, "red-saw": 3}, "q2": {"blue-lamp": 4}}  # no judged 0: every 0 is drawn
    examples = pointwise_examples(QUERIES, qrels)
    judged = {QUERIES[q]: {TEXTS[i] for i in j} for q, j in qrels.items()}
    rng, drawn = random.Random(0), 0
    for _ in range(50):
        batch = make_pair_batch(examples, TEXTS, rng=rng, item_ids=list(TEXTS), random_negatives=1.0)
        for q, t, y in zip(batch.queries, batch.texts, batch.labels.tolist()):
            if y == 0.0:
                drawn += 1
                assert t not in judged[q]
    assert 50 <= drawn < 150  # most draws land on an unjudged product; those that do not are skipped
    assert len(make_pair_batch(examples, TEXTS, rng=rng, item_ids=list(TEXTS), random_negatives=0.0).queries) == 3


def test_augmentation_reaches_the_query_of_the_pair_and_its_negative():
    examples = [PointwiseExample("q1", "red drill", "red-drill", 1.0, 6)]
    batch = make_pair_batch(examples, TEXTS, rng=random.Random(1), item_ids=["grey-hammer"], random_negatives=1.0,
                            augment=lambda text, rng: text.upper())
    assert batch.queries == ["RED DRILL", "RED DRILL"] and batch.labels.tolist() == [1.0, 0.0]


@pytest.mark.parametrize("method", ["none", "fgm", "pgd"])
def test_steps_learn_the_grades_and_leave_the_embeddings_as_the_optimiser_put_them(tiny_cross_encoder_dir, method):
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    torch.manual_seed(0)
    model = AutoModelForSequenceClassification.from_pretrained(tiny_cross_encoder_dir)
    tokenizer = AutoTokenizer.from_pretrained(tiny_cross_encoder_dir)
    attack = make_attack(model, AdversarialConfig(method=method, epsilon=0.1, alpha=0.05, steps=2))
    optimizer = torch.optim.AdamW(model.parameters(), lr=3e-3)
    examples = pointwise_examples(QUERIES, QRELS)
    batch = make_pair_batch(examples, TEXTS, rng=random.Random(0), item_ids=list(TEXTS))

    def logits():
        model.eval()
        with torch.no_grad():
            enc = tokenizer(batch.queries, batch.texts, padding=True, return_tensors="pt")
            return model(**enc).logits[:, 0]

    losses = []
    for _ in range(40):
        out = pointwise_step(model, tokenizer, batch, attack=attack, optimizer=optimizer, max_length=32)
        losses.append(out["loss_clean"])
        assert (out.get("loss_adv") is not None) == (method != "none")
    assert losses[-1] < losses[0]
    # the learned order follows the grades: red drill (6) > blue lamp (4) > red saw (3) > blue drill (0)
    order = torch.argsort(logits(), descending=True).tolist()
    assert [examples[i].grade for i in order] == [6, 4, 3, 0]
