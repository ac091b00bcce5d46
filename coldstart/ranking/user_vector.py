"""A new user's profile vector from what little we know: what they typed, and the first products they clicked.

The profile lives in the item space, so ranking is one inner-product search. Clicks use the items' stored
vectors (never re-encoded), weighted by recency: the latest click weighs 1, the one before ``decay``, then
``decay**2``... The query and the clicks are mixed by ``query_weight`` when both are present.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class ProfileConfig:
    query_weight: float = 0.5  # share of the query when a user has both a query and clicks
    click_decay: float = 0.7  # weight of each older click relative to the next one

    def __post_init__(self) -> None:
        if not 0.0 <= self.query_weight <= 1.0:
            raise ValueError(f"profile.query_weight={self.query_weight}: use a value in [0, 1]")
        if not 0.0 < self.click_decay <= 1.0:
            raise ValueError(f"profile.click_decay={self.click_decay}: use a value in (0, 1] (1 = no decay)")


def _normalise(v: np.ndarray) -> np.ndarray:
    norm = float(np.linalg.norm(v))
    return v / norm if norm > 0 else v


def clicks_vector(click_vectors: np.ndarray, decay: float) -> np.ndarray:
    """``(m, d)`` clicked items' vectors, oldest first → ``(d,)`` recency-weighted, L2-normalised mean."""
    m = click_vectors.shape[0]
    weights = decay ** np.arange(m - 1, -1, -1, dtype=np.float32)  # oldest gets decay**(m-1), latest 1
    return _normalise((weights[:, None] * click_vectors).sum(axis=0) / weights.sum()).astype(np.float32)


def build_profile(
    query_vector: np.ndarray | None, click_vectors: np.ndarray | None, config: ProfileConfig = ProfileConfig()
) -> np.ndarray:
    """``(d,) float32`` L2-normalised profile.

    ``query_vector`` is ``(d,)`` or None; ``click_vectors`` is ``(m, d)`` (oldest first) or None/empty.
    At least one must be given.
    """
    has_clicks = click_vectors is not None and len(click_vectors) > 0
    if query_vector is None and not has_clicks:
        raise ValueError("a profile needs a query or at least one known clicked item")
    if not has_clicks:
        return _normalise(np.asarray(query_vector, dtype=np.float32))
    clicks = clicks_vector(np.asarray(click_vectors, dtype=np.float32), config.click_decay)
    if query_vector is None:
        return clicks
    w = config.query_weight
    return _normalise(w * np.asarray(query_vector, dtype=np.float32) + (1.0 - w) * clicks).astype(np.float32)
