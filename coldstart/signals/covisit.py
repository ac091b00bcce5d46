"""Co-visitation: what other users clicked (or bought) after an item, learned from their sessions.

The user is new, the products are not: other users' sessions say which items follow which. For every training
session and every ordered pair of items (a, b) with b at most ``window`` positions after a, the pair gets weight
``1 / distance ** distance_decay``; pairs in the other direction (b before a) get ``backward_weight`` of that. Rows
are then scaled by ``count(a) ** -row_norm`` so a very popular item does not speak loudest for every user.

A new user's clicks ``c_1..c_k`` score every item as ``Σ_i recency ** (k - i) · C[c_i, item]``. Items never seen
after any of the clicks get 0; :meth:`CoVisitation.popularity` is the fallback that ranks them.

Matrices are dense ``(n_items, n_items) float32`` — fine up to ``MAX_ITEMS`` (25,000) items, refused beyond
with a message saying so; a bigger catalog would keep the top neighbours per row instead.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Iterable, Sequence

import numpy as np

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class CoVisitConfig:
    window: int = 5
    distance_decay: float = 1.0
    backward_weight: float = 0.5
    row_norm: float = 0.5  # 0 = raw counts, 1 = conditional frequency
    recency: float = 0.7  # weight of a click one step older than the next

    def __post_init__(self) -> None:
        if self.window < 1:
            raise ValueError(f"covisit.window={self.window}: use at least 1 (the next item)")
        if not 0 <= self.backward_weight <= 1 or not 0 <= self.row_norm <= 1 or not 0 < self.recency <= 1:
            raise ValueError("covisit: backward_weight and row_norm in [0, 1], recency in (0, 1]")


# Two dense (n, n) float32 matrices while fitting: 25,000 items are 5 GB. Past that, refuse with the reason
# instead of dying of memory halfway through a job.
MAX_ITEMS = 25_000


class CoVisitation:
    """Item→item scores from sessions over a fixed item list; unknown items in sessions are skipped."""

    def __init__(self, item_ids: Sequence[str], config: CoVisitConfig = CoVisitConfig()):
        self.ids = list(item_ids)
        if len(self.ids) > MAX_ITEMS:
            raise ValueError(f"co-visitation keeps a dense item x item matrix: {len(self.ids):,} items would need "
                             f"{2 * 4 * len(self.ids) ** 2 / 2**30:.0f} GiB while fitting; it supports up to "
                             f"{MAX_ITEMS:,} (a top-neighbours version for bigger catalogs is not built yet)")
        self.row = {item: n for n, item in enumerate(self.ids)}
        if len(self.row) != len(self.ids):
            raise ValueError("item ids must be unique")
        self.config = config
        self.matrix = np.zeros((len(self.ids), len(self.ids)), dtype=np.float32)  # (n, n)
        self.counts = np.zeros(len(self.ids), dtype=np.float64)  # (n,) sessions containing the item

    def fit(self, sessions: Iterable[Sequence[str]]) -> "CoVisitation":
        c = self.config
        raw = np.zeros_like(self.matrix)
        for items in sessions:
            rows = [self.row[i] for i in items if i in self.row]
            for r in set(rows):
                self.counts[r] += 1
            for a in range(len(rows)):
                for b in range(a + 1, min(len(rows), a + 1 + c.window)):
                    if rows[a] == rows[b]:
                        continue
                    w = 1.0 / (b - a) ** c.distance_decay
                    raw[rows[a], rows[b]] += w
                    raw[rows[b], rows[a]] += w * c.backward_weight
        scale = np.where(self.counts > 0, self.counts, 1.0) ** -c.row_norm
        self.matrix = (raw * scale[:, None]).astype(np.float32)
        logger.info("co-visitation over %d items: %d non-zero pairs", len(self.ids), int((self.matrix > 0).sum()))
        return self

    def popularity(self) -> np.ndarray:
        """``(n,) float32`` session counts, the fallback for items without co-visits."""
        return self.counts.astype(np.float32)

    def scores(self, clicks: Sequence[str]) -> np.ndarray:
        """``(n,) float32`` item scores for one user's clicks (oldest first); unknown clicks are ignored."""
        out = np.zeros(len(self.ids), dtype=np.float32)
        k = len(clicks)
        for i, item in enumerate(clicks):
            r = self.row.get(item)
            if r is not None:
                out += (self.config.recency ** (k - 1 - i)) * self.matrix[r]
        return out
