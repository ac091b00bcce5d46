"""Training a cross-encoder re-ranker on graded judgments: one (query, product) pair in, one score out.

The bi-encoder ranks by cosine, which is comparable within a query but only loosely across queries; a
cross-encoder reads the query and the product together and is trained pointwise on the grade itself, so its score
means the same thing for every query (the judged-pairs ROC-AUC) and it sees word-level matches the cosine misses
(the top of the ranking).

- every judged pair is an example with target ``grade / grade_max`` (binary cross-entropy on a soft label:
  grades are used as grades, the weak ones pull less than the strong ones);
- per example, with probability ``random_negatives``, one catalog product drawn at random is added with target 0,
  so the model also learns what an unrelated product looks like (the candidates it re-ranks were never judged);
- queries are augmented like the bi-encoder's; FGM/PGD perturb the word embeddings of the pair, through
  :func:`coldstart.training.adversarial.adversarial_backward` (correct under DDP).

The model is a Hugging Face ``AutoModelForSequenceClassification`` with one label: the standard cross-encoder
layout, so any such directory (e.g. an MS MARCO cross-encoder) can be re-ranked with or fine-tuned further.
"""

from __future__ import annotations

import logging
import random
from dataclasses import dataclass
from typing import Callable, ContextManager, Mapping, Sequence

import torch
import torch.nn.functional as F

from coldstart.training.adversarial import Attack
from coldstart.training.step import optimise

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class PointwiseExample:
    """One judged (query, product) pair; ``label`` in [0, 1] is the grade scaled by the highest grade; ``judged``
    is every product judged for the query (never drawn as its random negative)."""

    qid: str
    query: str
    item: str
    label: float
    grade: int
    judged: frozenset[str] = frozenset()


def pointwise_examples(
    queries: Mapping[str, str],
    qrels: Mapping[str, Mapping[str, int]],
    *,
    grade_max: int | None = None,
) -> list[PointwiseExample]:
    """Every judged pair of a known query, in qrels order; ``grade_max`` defaults to the highest grade seen."""
    unknown = [qid for qid in qrels if qid not in queries]
    if unknown:
        raise ValueError(f"{len(unknown)} qrels queries have no text (e.g. {unknown[0]!r}); pass the matching queries")
    grades = [g for judged in qrels.values() for g in judged.values()]
    if not grades:
        raise ValueError("no judged pairs: the qrels are empty")
    top = grade_max if grade_max is not None else max(grades)
    if top <= 0 or min(grades) < 0 or max(grades) > top:
        raise ValueError(f"grades must lie in [0, grade_max]; found {min(grades)}..{max(grades)}, grade_max={top}")
    examples = [PointwiseExample(qid, queries[qid], item, grade / top, grade, every)
                for qid, judged in qrels.items() for every in [frozenset(judged)]
                for item, grade in judged.items()]
    logger.info("%d judged pairs from %d queries, labels = grade / %d", len(examples), len(qrels), top)
    return examples


@dataclass
class PairBatch:
    queries: list[str]
    texts: list[str]
    labels: torch.Tensor  # (n,) float32 in [0, 1]


def make_pair_batch(
    examples: Sequence[PointwiseExample],
    texts: Mapping[str, str],
    *,
    rng: random.Random,
    item_ids: Sequence[str],
    random_negatives: float = 0.0,
    augment: Callable[[str, random.Random], str] | None = None,
) -> PairBatch:
    """The judged pairs of ``examples`` plus, per example with probability ``random_negatives``, the same query
    against a random catalog product (target 0). A random product that is judged for the query is skipped."""
    queries, docs, labels = [], [], []
    for e in examples:
        query = augment(e.query, rng) if augment is not None else e.query
        queries.append(query)
        docs.append(texts[e.item])
        labels.append(e.label)
        if random_negatives and rng.random() < random_negatives:
            other = item_ids[rng.randrange(len(item_ids))]
            if other != e.item and other not in e.judged:
                queries.append(query)
                docs.append(texts[other])
                labels.append(0.0)
    return PairBatch(queries, docs, torch.tensor(labels, dtype=torch.float32))


def pair_logits(model, encoded: Mapping[str, torch.Tensor]) -> torch.Tensor:
    """``(n,)`` one logit per pair from a one-label sequence-classification model."""
    logits = model(**encoded).logits
    if logits.shape[-1] != 1:
        raise ValueError(f"the cross-encoder has {logits.shape[-1]} labels; a re-ranker needs exactly one "
                         "(AutoModelForSequenceClassification with num_labels=1)")
    return logits[:, 0]


def pointwise_step(
    model,
    tokenizer,
    batch: PairBatch,
    *,
    attack: Attack,
    optimizer: torch.optim.Optimizer,
    scheduler=None,
    max_length: int = 64,
    grad_clip: float | None = 1.0,
    device: torch.device | str = "cpu",
    no_sync: Callable[[], ContextManager[None]] | None = None,
) -> dict[str, float]:
    """One optimiser step of binary cross-entropy against the soft labels; same contract as ``train_step``."""
    model.train()
    encoded = {k: v.to(device) for k, v in tokenizer(batch.queries, batch.texts, padding=True, truncation=True,
                                                       max_length=max_length, return_tensors="pt").items()}
    labels = batch.labels.to(device)

    def compute_loss() -> torch.Tensor:
        return F.binary_cross_entropy_with_logits(pair_logits(model, encoded), labels)

    return optimise(model, attack, compute_loss, optimizer=optimizer, scheduler=scheduler, grad_clip=grad_clip,
                    no_sync=no_sync)
