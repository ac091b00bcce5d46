"""InfoNCE for a bi-encoder: in-batch negatives plus hard negatives, a temperature and per-example weights.

For a batch of ``b`` queries with positives ``p`` and ``h`` hard negatives each, the candidates are all ``b``
positives and all ``b * h`` hard negatives of the batch. Query i's target is its own positive. A candidate that is
judged relevant for query i (another query's positive that happens to be relevant to i too, or the same product)
is masked out of i's softmax, so a relevant product is never pushed away.

    loss = Σ_i w_i · (−log softmax(q_i · C / τ)[i]) / Σ_i w_i
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


def contrastive_loss(
    queries: torch.Tensor,
    candidates: torch.Tensor,
    *,
    temperature: float,
    weights: torch.Tensor | None = None,
    mask: torch.Tensor | None = None,
) -> torch.Tensor:
    """Weighted InfoNCE; returns a scalar.

    Args:
        queries: ``(b, d)`` L2-normalised query vectors.
        candidates: ``(n, d)`` L2-normalised candidate vectors, ``n ≥ b``; row i (< b) is query i's positive.
        temperature: τ > 0; cosine similarities are divided by it.
        weights: ``(b,)`` non-negative example weights (grade weights); None = all 1.
        mask: ``(b, n)`` bool, True where candidate j must not count as a negative for query i. The diagonal
            (the target) is never masked.
    """
    b, n = queries.shape[0], candidates.shape[0]
    assert n >= b and queries.shape[1] == candidates.shape[1], (queries.shape, candidates.shape)
    logits = queries @ candidates.T / temperature  # (b, n)
    if mask is not None:
        mask = mask.clone()
        mask[torch.arange(b), torch.arange(b)] = False
        logits = logits.masked_fill(mask, float("-inf"))
    per_example = F.cross_entropy(logits, torch.arange(b, device=logits.device), reduction="none")  # (b,)
    if weights is None:
        return per_example.mean()
    return (per_example * weights).sum() / weights.sum().clamp(min=1e-12)
