"""One home for every way this project fuses signals or rankings into one ranking.

**Score blends over the whole catalog** (:func:`blend`, :func:`zscore`, :func:`top_k`): the "multi-model ensemble"
for one request.

Each signal (dense cosine, BM25, judged neighbours, co-visitation, popularity) gives one ``(n,)`` score per
catalog item. Signals live on different scales, so each is z-scored over the catalog for that request before the
weighted sum; a signal that is constant for a request (no BM25 term matched, no co-visits) contributes nothing
rather than noise. Unlike rank fusion this scores *every* item, so judged pairs outside any top-k still get a
score (needed for ROC-AUC over judged pairs) and the run and the pair scores agree.

**Rank fusion of top-k lists** (:func:`reciprocal_rank_fusion`, :func:`weighted_score_fusion`): several rankings
of the same catalog into one (BM25 + dense rank fusion is the "hybrid" baseline). A ranking is a list of ``(item_id, score)`` pairs, best first, as ``BM25Retriever.search`` returns it.
Both functions return one such list. Ties in the fused score keep the order in which items are first met
when the input lists are read one after another, each from the top, so results are deterministic.

Why not ``ranx.fuse``: it fuses whole offline runs (``Run`` objects, numba-compiled), 280x slower than this on the
1,171 Home Depot dev queries and with its own order for ties; fusion here runs per request, on the serving path
too (BENCHMARKS.md, issue 11).

**Re-ranking** (:func:`fuse_rerank`): a cross-encoder's scores over the first stage's top candidates, z-scored
beside the first stage's own.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Hashable, Sequence
from typing import Mapping

import numpy as np

logger = logging.getLogger(__name__)


def zscore(scores: np.ndarray) -> np.ndarray:
    """``(n,)`` → ``(n,) float32`` with mean 0 and std 1; all zeros when the input is constant."""
    scores = np.asarray(scores, dtype=np.float64)
    std = scores.std()
    if not np.isfinite(std) or std == 0:
        return np.zeros(scores.shape, dtype=np.float32)
    return ((scores - scores.mean()) / std).astype(np.float32)


def blend(signals: Mapping[str, np.ndarray], weights: Mapping[str, float]) -> np.ndarray:
    """``Σ_s weights[s] · zscore(signals[s])`` over the signals with a non-zero weight; ``(n,) float32``.

    A weight naming a missing signal is an error (a typo would silently drop a signal otherwise).
    """
    unknown = [name for name, w in weights.items() if w and name not in signals]
    if unknown:
        raise KeyError(f"blend weights name signals {unknown} that were not computed; have {sorted(signals)}")
    out = None
    for name, w in weights.items():
        if not w:
            continue
        part = np.float32(w) * zscore(signals[name])
        out = part if out is None else out + part
    if out is None:
        raise ValueError("every blend weight is zero; give at least one signal a weight")
    return out


def top_k(scores: np.ndarray, k: int, exclude: np.ndarray | None = None) -> np.ndarray:
    """Row indices of the ``k`` best scores, best first (ties: lower row first); ``exclude`` rows are skipped."""
    scores = np.asarray(scores, dtype=np.float32)
    banned = np.zeros(len(scores), dtype=bool)
    if exclude is not None and len(exclude):
        banned[np.asarray(exclude, dtype=np.int64)] = True
        scores = np.where(banned, -np.inf, scores).astype(np.float32)
    k = min(k, int((~banned).sum()))  # fewer items than k left: every one of them, never an excluded one
    if k <= 0:
        return np.zeros(0, dtype=np.int64)
    part = np.argpartition(-scores, k - 1)[:k]
    return part[np.lexsort((part, -scores[part]))]


def fuse_rerank(first: np.ndarray, cross: np.ndarray, first_weight: float) -> np.ndarray:
    """``z(cross) + first_weight · z(first)`` for one query's re-scored candidates (``(n,)`` each → ``(n,)``)."""
    first, cross = np.asarray(first, np.float32), np.asarray(cross, np.float32)
    if first.shape != cross.shape:
        raise ValueError(f"{first.shape} first-stage scores but {cross.shape} cross-encoder scores")
    return zscore(cross) + first_weight * zscore(first)

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
