"""Attribute transitions: which *kinds* of product (a category, a brand) users go on to buy after a kind they clicked.

Co-visitation (:mod:`coldstart.signals.covisit`) only knows item pairs that other users' sessions contain; for most of a new
user's later items no training session links them to the clicks (66 % of them on Amazon Scientific dev). One level
up the pairs are dense: people who buy sanding rolls go on to buy abrasive wheels, people who buy one brand of 3D
printer filament buy more of it. For one attribute (say the category) with label ``l(i)`` per item:

- ``T[x, y]``: over every training session and every ordered pair of its items ``(a, b)``, ``a ≠ b``, in either
  order, the count of ``l(a) = x, l(b) = y``; rows divided by ``row total + smoothing``.
- ``share(i) = (sessions with i + 1) / (sessions with any item labelled l(i) + 1)``: how much of its label's
  traffic an item takes, so the label's usual pick ranks first within it.

A new user's clicks ``c_1..c_k`` score item ``i`` as ``Σ_j recency ** (k - j) · T[l(c_j), l(i)] · share(i) **
share_power``. Items without a label, and clicks without one, contribute nothing (an unknown brand is not a brand).
Labels are small in number, so ``T`` is dense ``(n_labels, n_labels) float64``.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Iterable, Mapping, Sequence

import numpy as np

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class TransitionConfig:
    smoothing: float = 1.0  # added to each row total: rare labels say less
    share_power: float = 1.0  # 0 = every item of a label alike, 1 = in proportion to its share of the label
    recency: float = 0.7  # weight of a click one step older than the next

    def __post_init__(self) -> None:
        if self.smoothing < 0 or self.share_power < 0 or not 0 < self.recency <= 1:
            raise ValueError(f"transitions: smoothing and share_power ≥ 0, recency in (0, 1]; got {self}")


class AttributeTransitions:
    """Label→label transitions from sessions over a fixed item list; unknown items in sessions are skipped.

    ``labels`` maps item id → label; items missing from it, or with an empty label, are unlabelled.
    """

    def __init__(self, item_ids: Sequence[str], labels: Mapping[str, str | None],
                 config: TransitionConfig = TransitionConfig()):
        self.ids = list(item_ids)
        self.row = {item: n for n, item in enumerate(self.ids)}
        if len(self.row) != len(self.ids):
            raise ValueError("item ids must be unique")
        self.config = config
        names = sorted({v for v in labels.values() if v})
        index = {name: n for n, name in enumerate(names)}
        self.labels = names
        self.label_of = np.array([index.get(labels.get(i) or "", -1) for i in self.ids], dtype=np.int64)  # (n,)
        self.matrix = np.zeros((len(names), len(names)), dtype=np.float64)
        self.share = np.zeros(len(self.ids), dtype=np.float64)  # (n,) share ** share_power, 0 when unlabelled
        if not names:
            logger.warning("attribute transitions: no item has a label; the signal is all zeros")

    @classmethod
    def from_arrays(cls, item_ids: Sequence[str], config: TransitionConfig, *, labels: Sequence[str],
                    label_of: np.ndarray, matrix: np.ndarray, share: np.ndarray) -> "AttributeTransitions":
        """Fitted transitions from their arrays (a published signals artifact)."""
        out = cls.__new__(cls)  # not __init__: it builds empty arrays and warns that nothing is labelled
        out.ids, out.config = list(item_ids), config
        out.row = {item: n for n, item in enumerate(out.ids)}
        n, k = len(out.ids), len(labels)
        if label_of.shape != (n,) or share.shape != (n,) or matrix.shape != (k, k):
            raise ValueError(f"transition arrays {label_of.shape} / {share.shape} / {matrix.shape} for {n} items "
                             f"and {k} labels")
        out.labels, out.label_of, out.matrix, out.share = list(labels), label_of.astype(np.int64), matrix, share
        return out

    def fit(self, sessions: Iterable[Sequence[str]]) -> "AttributeTransitions":
        n_labels = len(self.labels)
        counts = np.zeros(n_labels * n_labels, dtype=np.float64)
        item_sessions = np.zeros(len(self.ids), dtype=np.float64)
        seen = 0
        for items in sessions:
            seen += 1
            rows = [self.row[i] for i in items if i in self.row]
            item_sessions[list(set(rows))] += 1
            labelled = [(r, self.label_of[r]) for r in rows if self.label_of[r] >= 0]
            for a in range(len(labelled)):
                for b in range(a + 1, len(labelled)):
                    (ra, la), (rb, lb) = labelled[a], labelled[b]
                    if ra != rb:
                        counts[la * n_labels + lb] += 1
                        counts[lb * n_labels + la] += 1
        counts = counts.reshape(n_labels, n_labels)
        self.matrix = counts / (counts.sum(axis=1, keepdims=True) + self.config.smoothing)
        labelled = self.label_of >= 0
        label_total = np.bincount(self.label_of[labelled], weights=item_sessions[labelled], minlength=n_labels)
        share = np.zeros(len(self.ids), dtype=np.float64)
        share[labelled] = (item_sessions[labelled] + 1) / (label_total[self.label_of[labelled]] + 1)
        self.share = np.where(labelled, share ** self.config.share_power, 0.0)
        logger.info("attribute transitions: %d sessions, %d labels over %d of %d items, %d non-zero label pairs",
                    seen, n_labels, int(labelled.sum()), len(self.ids), int((counts > 0).sum()))
        return self

    def scores(self, clicks: Sequence[str]) -> np.ndarray:
        """``(n,) float32`` item scores for one user's clicks (oldest first); unknown or unlabelled clicks add 0."""
        k = len(clicks)
        by_label = np.zeros(len(self.labels), dtype=np.float64)
        for j, item in enumerate(clicks):
            r = self.row.get(item)
            if r is not None and self.label_of[r] >= 0:
                by_label += self.config.recency ** (k - 1 - j) * self.matrix[self.label_of[r]]
        out = np.zeros(len(self.ids), dtype=np.float64)
        labelled = self.label_of >= 0
        out[labelled] = by_label[self.label_of[labelled]] * self.share[labelled]
        return out.astype(np.float32)
