"""Fusing several rankings of the same catalog into one (e.g. BM25 + dense = the "hybrid" baseline).

A ranking is a list of ``(item_id, score)`` pairs, best first, as ``BM25Retriever.search`` returns it.
Both functions return one such list. Ties in the fused score keep the order in which items are first met
when the input lists are read one after another, each from the top, so results are deterministic.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Hashable, Sequence

import numpy as np

logger = logging.getLogger(__name__)

Ranking = Sequence[tuple[Hashable, float]]


def _check_weights(weights: Sequence[float] | None, n: int) -> list[float]:
    if weights is None:
        return [1.0] * n
    weights = [float(w) for w in weights]
    if len(weights) != n:
        raise ValueError(f"got {len(weights)} weights for {n} rankings; give one weight per ranking")
    if any(not math.isfinite(w) or w < 0 for w in weights):
        raise ValueError(f"weights must be finite and >= 0, got {weights}")
    return weights


def _check_unique(ranking: Ranking, which: int) -> None:
    seen: set[Hashable] = set()
    for item_id, _ in ranking:
        if item_id in seen:
            raise ValueError(f"ranking {which} lists item {item_id!r} twice; deduplicate it before fusing")
        seen.add(item_id)


def _sorted(fused: dict[Hashable, float]) -> list[tuple[Hashable, float]]:
    """Highest fused score first; dict order (first met) breaks ties because the sort is stable."""
    return sorted(fused.items(), key=lambda entry: -entry[1])


def reciprocal_rank_fusion(
    rankings: Sequence[Ranking],
    k: float = 60,
    depth: int = 100,
    weights: Sequence[float] | None = None,
) -> list[tuple[Hashable, float]]:
    """Reciprocal rank fusion (Cormack et al. 2009): ``score(d) = sum_i w_i / (k + rank_i(d))``, rank from 1.

    Only positions matter, not the scores, so lists on different scales (BM25, cosine) fuse without tuning.
    Each ranking is read to ``depth`` (its order as given; scores are ignored), an item absent from a list
    gets nothing from it, and the ``depth`` best fused items are returned.
    """
    if k < 0 or not math.isfinite(k):
        raise ValueError(f"k must be a finite number >= 0 (60 in the original paper), got {k!r}")
    if not isinstance(depth, int) or depth < 1:
        raise ValueError(f"depth must be a positive int, got {depth!r}")
    weights = _check_weights(weights, len(rankings))
    fused: dict[Hashable, float] = {}
    for which, (ranking, weight) in enumerate(zip(rankings, weights)):
        _check_unique(ranking, which)
        for rank, (item_id, _) in enumerate(ranking[:depth], start=1):
            fused[item_id] = fused.get(item_id, 0.0) + weight / (k + rank)
    return _sorted(fused)[:depth]


def _normalise(scores: np.ndarray, how: str) -> np.ndarray:
    """(n,) float64 -> (n,) float64 on a common scale; a constant list maps to all zeros (it ranks nothing)."""
    if how == "minmax":
        low, high = scores.min(), scores.max()
        return (scores - low) / (high - low) if high > low else np.zeros_like(scores)
    std = scores.std()
    return (scores - scores.mean()) / std if std > 0 else np.zeros_like(scores)


def weighted_score_fusion(
    rankings: Sequence[Ranking],
    weights: Sequence[float],
    normalise: str = "minmax",
) -> list[tuple[Hashable, float]]:
    """Weighted sum of per-list normalised scores: ``score(d) = sum_i w_i * norm_i(d)``.

    ``normalise`` is ``"minmax"`` (to [0, 1]) or ``"zscore"`` (mean 0, population std 1), applied to each
    list on its own so that scales do not decide the weights. An item missing from a list gets that list's
    minimum after normalisation: it was ranked no better than the list's last item. Empty lists add nothing.
    All fused items are returned, best first.
    """
    if normalise not in ("minmax", "zscore"):
        raise ValueError(f"normalise must be 'minmax' or 'zscore', got {normalise!r}")
    weights = _check_weights(weights, len(rankings))
    normalised: list[dict[Hashable, float]] = []
    floors: list[float] = []
    order: dict[Hashable, None] = {}
    for which, ranking in enumerate(rankings):
        _check_unique(ranking, which)
        if not ranking:
            normalised.append({})
            floors.append(0.0)
            continue
        raw = np.asarray([score for _, score in ranking], dtype=np.float64)
        if not np.all(np.isfinite(raw)):
            raise ValueError(f"ranking {which} has a NaN or infinite score; fix the retriever that produced it")
        scaled = _normalise(raw, normalise)
        normalised.append({item_id: float(s) for (item_id, _), s in zip(ranking, scaled)})
        floors.append(float(scaled.min()))
        order.update((item_id, None) for item_id, _ in ranking)
    fused = {
        item_id: sum(w * scores.get(item_id, floor) for w, scores, floor in zip(weights, normalised, floors))
        for item_id in order
    }
    return _sorted(fused)
