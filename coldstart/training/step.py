"""One training step: build a batch, tokenise it once, clean + adversarial backward, clip, step.

The adversarial part is :func:`coldstart.training.adversarial.adversarial_backward`; under DDP it is given
``model.no_sync`` so every worker attacks its own batch and gradients are averaged once.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from typing import Callable, ContextManager, Mapping, Sequence

import torch
import torch.nn.functional as F

from coldstart.training.adversarial import Attack, adversarial_backward
from coldstart.encoders.encoder import pool
from coldstart.training.loss import contrastive_loss, graded_pair_loss
from coldstart.training.pairs import Example


@dataclass
class Batch:
    """Texts of one step: ``queries`` (b), ``candidates`` (b positives, then the hard negatives, then the graded
    partners), mask (b, n), and every judged (query, candidate) pair of the batch with its grade."""

    queries: list[str]
    candidates: list[str]
    weights: torch.Tensor  # (b,) float32
    mask: torch.Tensor  # (b, n) bool, True = not a negative for that query
    graded_index: torch.Tensor = field(default_factory=lambda: torch.zeros((0, 2), dtype=torch.long))  # (m, 2)
    graded_grades: torch.Tensor = field(default_factory=lambda: torch.zeros(0))  # (m,) float32


def make_batch(
    examples: Sequence[Example],
    texts: Mapping[str, str],
    *,
    hard_negatives: int,
    rng: random.Random,
    augment: Callable[[str, random.Random], str] | None = None,
    graded_partners: int = 0,
) -> Batch:
    """Pick ``hard_negatives`` per example (from its top negatives) and mask every judged-relevant candidate.

    ``graded_partners``: per example, that many more products judged for the same query with a *lower* grade than
    its positive (grade 3 included, which is neither a positive nor a negative for the contrastive loss), so the
    graded loss has something to order. Every (query, candidate) pair of the batch that was judged is listed in
    ``graded_index`` / ``graded_grades``.
    """
    cand_ids = [e.positive for e in examples]
    for e in examples:
        pool_ = list(e.negatives[: max(hard_negatives * 4, hard_negatives)])
        cand_ids.extend(rng.sample(pool_, min(hard_negatives, len(pool_))))
    if graded_partners:
        for e in examples:
            if e.grade is None:
                continue
            lower = [i for i, g in e.judged if g < e.grade and i not in cand_ids]
            cand_ids.extend(rng.sample(lower, min(graded_partners, len(lower))))
    mask = torch.tensor([[c in e.relevant or (c == e.positive) for c in cand_ids] for e in examples], dtype=torch.bool)
    queries = [augment(e.query, rng) if augment is not None else e.query for e in examples]
    column = {c: j for j, c in enumerate(cand_ids)}
    pairs = [(i, column[item], grade) for i, e in enumerate(examples) for item, grade in e.judged if item in column]
    return Batch(
        queries=queries,
        candidates=[texts[c] for c in cand_ids],
        weights=torch.tensor([e.weight for e in examples], dtype=torch.float32),
        mask=mask,
        graded_index=torch.tensor([p[:2] for p in pairs], dtype=torch.long).reshape(-1, 2),
        graded_grades=torch.tensor([p[2] for p in pairs], dtype=torch.float32),
    )


def embed(model, encoded: Mapping[str, torch.Tensor], pooling: str) -> torch.Tensor:
    """``(b, d)`` L2-normalised, with gradients: the same pooling as :class:`coldstart.encoders.encoder.Encoder`."""
    hidden = model(**encoded).last_hidden_state
    return F.normalize(pool(hidden, encoded["attention_mask"], pooling), p=2, dim=1)


def train_step(
    model,
    tokenizer,
    batch: Batch,
    *,
    attack: Attack,
    optimizer: torch.optim.Optimizer,
    scheduler=None,
    temperature: float,
    graded_weight: float = 0.0,
    graded_scale: float = 20.0,
    pooling: str = "mean",
    max_length: int = 48,
    grad_clip: float | None = 1.0,
    device: torch.device | str = "cpu",
    no_sync: Callable[[], ContextManager[None]] | None = None,
) -> dict[str, float]:
    """One optimiser step on ``batch``; returns the losses. Raises NonFiniteLossError on a NaN/inf loss.

    The loss is InfoNCE plus ``graded_weight`` × the cross-query graded pair loss over ``batch.graded_*``.
    """
    model.train()
    q = {k: v.to(device) for k, v in tokenizer(batch.queries, padding=True, truncation=True, max_length=max_length,
                                                 return_tensors="pt").items()}
    c = {k: v.to(device) for k, v in tokenizer(batch.candidates, padding=True, truncation=True,
                                                 max_length=max_length, return_tensors="pt").items()}
    weights, mask = batch.weights.to(device), batch.mask.to(device)
    graded_index, graded_grades = batch.graded_index.to(device), batch.graded_grades.to(device)

    def compute_loss() -> torch.Tensor:
        # One forward over queries and candidates together: one DDP forward per backward, as no_sync needs.
        n_q = q["input_ids"].shape[0]
        both = _concat(q, c)
        vectors = embed(model, both, pooling)
        loss = contrastive_loss(vectors[:n_q], vectors[n_q:], temperature=temperature, weights=weights, mask=mask)
        if graded_weight:
            loss = loss + graded_weight * graded_pair_loss(vectors[:n_q], vectors[n_q:], graded_index, graded_grades,
                                                           scale=graded_scale)
        return loss

    return optimise(model, attack, compute_loss, optimizer=optimizer, scheduler=scheduler, grad_clip=grad_clip,
                    no_sync=no_sync)


def optimise(model, attack: Attack, compute_loss: Callable[[], torch.Tensor], *, optimizer, scheduler=None,
             grad_clip: float | None = 1.0, no_sync: Callable[[], ContextManager[None]] | None = None
             ) -> dict[str, float]:
    """Zero the gradients, clean + adversarial backward of ``compute_loss``, clip, step: the part of a training
    step that does not depend on what is trained (the bi-encoder here, the cross-encoder in ``pointwise``)."""
    optimizer.zero_grad(set_to_none=True)
    result = adversarial_backward(model, attack, compute_loss, no_sync=no_sync)
    if grad_clip:
        result["grad_norm"] = float(torch.nn.utils.clip_grad_norm_(model.parameters(), grad_clip))
    optimizer.step()
    if scheduler is not None:
        scheduler.step()
    return result


def _concat(a: Mapping[str, torch.Tensor], b: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Stack two tokenised batches, right-padding the shorter one (pad id 0, mask 0)."""
    t = max(a["input_ids"].shape[1], b["input_ids"].shape[1])
    out = {}
    for key in a:
        xa = F.pad(a[key], (0, t - a[key].shape[1]))
        xb = F.pad(b[key], (0, t - b[key].shape[1]))
        out[key] = torch.cat([xa, xb])
    return out
