"""Resampling training pairs against popularity (and class) imbalance.

A few popular items dominate interaction logs, so an encoder trained on raw pairs learns
the head of the catalogue and little else. Sampling pairs so that item ``i`` is drawn with
probability

    w_i = n_i ** tau / sum_j n_j ** tau          (n_i = pairs of item i)

interpolates between the empirical distribution (``tau = 1``) and uniform over items
(``tau = 0``); values in between flatten the head without ignoring it. Items with no pairs
get weight 0, since there is nothing to draw for them.

With a class label per item (e.g. a top-level category), the mass is split in two levels,
``P(class c) ∝ N_c ** class_tau`` with ``N_c`` the pairs in class ``c``, then
``P(item | c) ∝ n_i ** tau``: ``class_tau = 0`` balances classes, ``class_tau = tau = 1``
again gives the empirical distribution.
"""

from __future__ import annotations

import logging

import numpy as np
from numpy.typing import ArrayLike

logger = logging.getLogger(__name__)


def _check_temperature(value: float, name: str) -> float:
    value = float(value)
    if not (np.isfinite(value) and value >= 0):
        raise ValueError(
            f"{name}={value} must be a finite number >= 0 (1 = empirical, 0 = uniform)"
        )
    return value


def _flatten(counts: np.ndarray, tau: float) -> np.ndarray:
    """``counts ** tau`` normalised over the positive counts, 0 elsewhere; ``(n,)`` float64."""
    weights = np.zeros_like(counts, dtype=np.float64)
    positive = counts > 0
    weights[positive] = counts[positive] ** tau
    return weights / weights.sum()


def popularity_weights(
    counts: ArrayLike,
    *,
    temperature: float = 1.0,
    labels: ArrayLike | None = None,
    class_temperature: float | None = None,
) -> np.ndarray:
    """Sampling probability of each item.

    Args:
        counts: ``(n_items,)`` non-negative pair counts (popularity) per item.
        temperature: ``tau`` above; 1 keeps the empirical distribution, 0 is uniform.
        labels: optional ``(n_items,)`` class label per item (any hashable numpy dtype).
        class_temperature: exponent for class totals; defaults to ``temperature``.

    Returns:
        ``(n_items,)`` float64, non-negative, summing to 1; 0 for items with count 0.
    """
    counts = np.asarray(counts, dtype=np.float64)
    if counts.ndim != 1 or counts.size == 0:
        raise ValueError(f"counts must be a non-empty 1-d array, got shape {counts.shape}")
    if not np.all(np.isfinite(counts)) or np.any(counts < 0):
        raise ValueError("counts must be finite and >= 0; drop or fix the offending items")
    if counts.sum() == 0:
        raise ValueError("all counts are 0: there are no training pairs to resample")
    tau = _check_temperature(temperature, "temperature")
    if labels is None:
        return _flatten(counts, tau)

    labels = np.asarray(labels)
    if labels.shape != counts.shape:
        raise ValueError(
            f"labels has shape {labels.shape} but counts has {counts.shape}; "
            "give one label per item"
        )
    class_tau = _check_temperature(
        tau if class_temperature is None else class_temperature, "class_temperature"
    )
    classes, inverse = np.unique(labels, return_inverse=True)
    class_totals = np.bincount(inverse, weights=counts, minlength=len(classes))
    class_mass = _flatten(class_totals, class_tau)
    weights = np.zeros_like(counts)
    for c in range(len(classes)):
        members = inverse == c
        if class_totals[c] > 0:
            weights[members] = class_mass[c] * _flatten(counts[members], tau)
    return weights


def resample_pairs(
    pair_items: ArrayLike,
    *,
    rng: np.random.Generator,
    temperature: float = 1.0,
    n_samples: int | None = None,
    item_labels: ArrayLike | None = None,
    class_temperature: float | None = None,
) -> np.ndarray:
    """Draw training-pair indices (with replacement) so items follow :func:`popularity_weights`.

    Each pair of item ``i`` gets probability ``w_i / n_i``, so the drawn pairs' items follow
    ``w`` while the pairs within an item stay equally likely.

    Args:
        pair_items: ``(n_pairs,)`` int item index of each training pair.
        rng: a seeded ``numpy.random.Generator``; the same seed gives the same draw.
        temperature, class_temperature: as in :func:`popularity_weights`.
        n_samples: how many indices to draw; defaults to ``n_pairs`` (one epoch).
        item_labels: optional ``(n_items,)`` class label per item, indexed by item id.

    Returns:
        ``(n_samples,)`` int64 indices into the pairs.
    """
    if not isinstance(rng, np.random.Generator):
        raise TypeError("rng must be a numpy Generator, e.g. numpy.random.default_rng(seed)")
    pair_items = np.asarray(pair_items)
    if pair_items.ndim != 1 or pair_items.size == 0:
        raise ValueError(f"pair_items must be a non-empty 1-d array, got shape {pair_items.shape}")
    if not np.issubdtype(pair_items.dtype, np.integer) or pair_items.min() < 0:
        raise ValueError("pair_items must hold non-negative integer item indices")
    n_items = int(pair_items.max()) + 1
    if item_labels is not None:
        item_labels = np.asarray(item_labels)
        if item_labels.ndim != 1 or len(item_labels) < n_items:
            raise ValueError(
                f"item_labels has {len(item_labels)} entries but pairs reference item "
                f"{n_items - 1}; give a label for every item id"
            )
        n_items = len(item_labels)
    counts = np.bincount(pair_items, minlength=n_items)
    weights = popularity_weights(
        counts, temperature=temperature, labels=item_labels, class_temperature=class_temperature
    )
    pair_prob = weights[pair_items] / counts[pair_items]
    pair_prob /= pair_prob.sum()  # remove float drift before numpy's sum-to-1 check
    size = len(pair_items) if n_samples is None else int(n_samples)
    if size < 0:
        raise ValueError(f"n_samples={n_samples} must be >= 0")
    return rng.choice(len(pair_items), size=size, replace=True, p=pair_prob).astype(np.int64)
