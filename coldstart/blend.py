"""Blending several full-catalog score vectors into one: the "multi-model ensemble" for one request.

Each signal (dense cosine, BM25, judged neighbours, co-visitation, popularity) gives one ``(n,)`` score per
catalog item. Signals live on different scales, so each is z-scored over the catalog for that request before the
weighted sum; a signal that is constant for a request (no BM25 term matched, no co-visits) contributes nothing
rather than noise. Unlike rank fusion this scores *every* item, so judged pairs outside any top-k still get a
score (needed for ROC-AUC over judged pairs) and the run and the pair scores agree.
"""

from __future__ import annotations

from typing import Mapping

import numpy as np


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
