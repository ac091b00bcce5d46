"""InfoNCE for a bi-encoder: in-batch negatives plus hard negatives, a temperature and per-example weights.

For a batch of ``b`` queries with positives ``p`` and ``h`` hard negatives each, the candidates are all ``b``
positives and all ``b * h`` hard negatives of the batch. Query i's target is its own positive. A candidate that is
judged relevant for query i (another query's positive that happens to be relevant to i too, or the same product)
is masked out of i's softmax, so a relevant product is never pushed away.

    loss = Σ_i w_i · (−log softmax(q_i · C / τ)[i]) / Σ_i w_i

InfoNCE only orders candidates *within* one query's softmax, so a cosine of 0.6 can mean "relevant" for one query
and "irrelevant" for another. :func:`graded_pair_loss` adds the missing cross-query order: over every judged
(query, product) pair of the batch, a pair with a higher grade must have a higher cosine than one with a lower
grade, whichever queries they belong to (CoSENT, Su 2022). That is what a threshold on the score, or ROC-AUC
over judged pairs, needs.
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


def graded_pair_loss(
    queries: torch.Tensor,
    candidates: torch.Tensor,
    index: torch.Tensor,
    grades: torch.Tensor,
    *,
    scale: float = 20.0,
) -> torch.Tensor:
    """CoSENT over judged pairs: ``log(1 + Σ_{g_a > g_b} exp(scale · (s_b − s_a)))``; 0 with no ordered pair.

    Args:
        queries: ``(b, d)`` L2-normalised query vectors.
        candidates: ``(n, d)`` L2-normalised candidate vectors.
        index: ``(m, 2)`` long, rows ``(query row, candidate row)`` of the judged pairs.
        grades: ``(m,)`` the judged grade of each pair.
        scale: inverse temperature of the pairwise comparison.
    """
    if index.shape[0] < 2:
        return queries.sum() * 0.0  # keeps the graph (and DDP's bookkeeping) intact
    s = (queries[index[:, 0]] * candidates[index[:, 1]]).sum(dim=1) * scale  # (m,)
    ordered = grades[:, None] > grades[None, :]  # [a, b]: a must score above b
    if not bool(ordered.any()):
        return queries.sum() * 0.0
    diff = (s[None, :] - s[:, None])[ordered]  # s_b − s_a for every ordered (a, b)
    return torch.logsumexp(torch.cat([diff.new_zeros(1), diff]), dim=0)
