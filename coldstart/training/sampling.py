"""Resampling against imbalance: popular products (and big classes) dominate the training pairs.

Each example's sampling weight is ``count(key) ** (temperature - 1)``, where ``key`` is the example's positive
product (or its class). With temperature 1 every example is equally likely, so a product with 50 judged
queries is seen 50 times as often as one with 1; with temperature 0 every product is equally likely; values in
between flatten the distribution smoothly (the "temperature sampling" of multilingual LMs).
"""

from __future__ import annotations

from collections import Counter
from typing import Hashable, Sequence

import numpy as np


def resampling_weights(keys: Sequence[Hashable], temperature: float,
                       classes: Sequence[Hashable] | None = None) -> np.ndarray:
    """``(n,) float64`` probabilities (sum 1) for drawing examples with the given keys.

    ``classes``, when given, are flattened the same way first (by class size), then products within a class.
    """
    if not 0.0 <= temperature <= 1.0:
        raise ValueError(f"temperature={temperature}: use a value in [0, 1] (1 = no resampling)")
    n = len(keys)
    if n == 0:
        return np.zeros(0)
    counts = Counter(keys)
    w = np.array([counts[k] for k in keys], dtype=np.float64) ** (temperature - 1.0)
    if classes is not None:
        if len(classes) != n:
            raise ValueError(f"got {len(classes)} classes for {n} examples; pass one per example")
        class_counts = Counter(classes)
        w *= np.array([class_counts[c] for c in classes], dtype=np.float64) ** (temperature - 1.0)
    return w / w.sum()


def epoch_order(weights: np.ndarray, *, seed: int, epoch: int) -> np.ndarray:
    """``(n,) int64`` example indices for one epoch: a weighted draw with replacement, reproducible by (seed, epoch).

    Uniform weights give a plain permutation (every example once), so temperature 1 means 'as in the data'.
    """
    rng = np.random.default_rng([seed, epoch])
    n = len(weights)
    if np.allclose(weights, 1.0 / n):
        return rng.permutation(n)
    return rng.choice(n, size=n, replace=True, p=weights)
