"""The order in which a training run sees its examples, epoch by epoch, reproducible by (seed, epoch).

Resampling against popularity is :func:`coldstart.training.resample.resample_pairs` (temperature 1 = as in the data,
0 = every product equally often); this module only turns it into a per-epoch order that every worker can
recompute on its own, so a restarted worker sees the batches it would have seen.
"""

from __future__ import annotations

from typing import Hashable, Sequence

import numpy as np

from coldstart.training.resample import resample_pairs


def item_indices(keys: Sequence[Hashable]) -> np.ndarray:
    """``(n,) int64``: the product of each example as a dense index (first-seen order)."""
    index: dict[Hashable, int] = {}
    return np.fromiter((index.setdefault(k, len(index)) for k in keys), dtype=np.int64, count=len(keys))


def epoch_order(items: np.ndarray, *, temperature: float, seed: int, epoch: int) -> np.ndarray:
    """``(n,) int64`` example indices for one epoch.

    Temperature 1 gives a plain permutation (every example once); below 1 a weighted draw with replacement that
    flattens product popularity.
    """
    rng = np.random.default_rng([seed, epoch])
    if temperature >= 1.0:
        return rng.permutation(len(items))
    return resample_pairs(items, rng=rng, temperature=temperature)
