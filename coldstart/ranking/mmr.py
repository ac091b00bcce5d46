"""Maximal marginal relevance: re-rank the top candidates so a result list covers more than one kind of product.

A new user who typed "chair" matches many near-identical office chairs best; a list of ten of them tells the
user nothing the first one did not. MMR (Carbonell & Goldstein, 1998) picks greedily the candidate that is
relevant to the user *and* unlike what is already picked::

    next = argmax_i  (1 - λ) · relevance_i  -  λ · max_{j picked} cos(v_i, v_j)

``λ = 0`` keeps the relevance order; ``λ = 1`` ignores relevance after the first pick. The scores reported to
the client stay the relevance scores: MMR changes the order, not what a score means.
"""

from __future__ import annotations

import numpy as np


def mmr_order(relevance: np.ndarray, vectors: np.ndarray, k: int, *, diversity: float) -> np.ndarray:
    """Indices of the ``k`` candidates to show, in MMR order.

    ``relevance``: ``(n,) float32`` similarity of each candidate to the user's profile;
    ``vectors``: ``(n, d) float32`` L2-normalised candidate vectors (so ``v_i · v_j`` is the cosine);
    ``diversity``: ``λ`` in ``[0, 1]``. Returns ``(min(k, n),) int64``.

    Cost: ``k`` matrix-vector products over the ``n`` candidates, ``O(k · n · d)`` — cheap for the 50–100
    candidates a serving request re-ranks.
    """
    if not 0.0 <= diversity <= 1.0:
        raise ValueError(f"diversity={diversity}: use a value in [0, 1] (0 = relevance order, 1 = most diverse)")
    relevance = np.asarray(relevance, dtype=np.float32)
    n = relevance.shape[0]
    assert vectors.shape[0] == n, (vectors.shape, relevance.shape)
    k = min(k, n)
    if k <= 0:
        return np.empty(0, dtype=np.int64)
    if diversity == 0.0:
        return np.argsort(-relevance, kind="stable")[:k].astype(np.int64)

    picked = np.empty(k, dtype=np.int64)
    available = np.ones(n, dtype=bool)
    closest = np.full(n, -np.inf, dtype=np.float32)  # max cosine to anything picked so far
    for step in range(k):
        if step == 0:
            score = relevance.copy()  # nothing picked yet: no redundancy term
        else:
            score = (1.0 - diversity) * relevance - diversity * closest
        score[~available] = -np.inf
        best = int(np.argmax(score))
        picked[step] = best
        available[best] = False
        closest = np.maximum(closest, vectors @ vectors[best])
    return picked
