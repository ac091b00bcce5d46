"""Co-visitation: what other users clicked (or bought) after an item, learned from their sessions.

The user is new, the products are not: other users' sessions say which items follow which. For every training
session and every ordered pair of items (a, b) with b at most ``window`` positions after a, the pair gets weight
``1 / distance ** distance_decay``; pairs in the other direction (b before a) get ``backward_weight`` of that. Rows
are then scaled by ``count(a) ** -row_norm`` so a very popular item does not speak loudest for every user.

A new user's clicks ``c_1..c_k`` score every item as ``Σ_i recency ** (k - i) · C[c_i, item]``. Items never seen
after any of the clicks get 0; :meth:`CoVisitation.popularity` is the fallback that ranks them.

The matrix is sparse (``scipy.sparse`` CSR, float32) and keeps each item's ``top_n`` strongest neighbours, so
its memory is bounded by ``n_items × top_n × 8`` bytes whatever the catalog size (54,667 items at top_n=200: at
most 87 MB; 1,000,000 items: at most 1.6 GB, and in practice far less: only pairs that sessions contain are
stored). Fitting is vectorised over all sessions at once: memory ~ 12 bytes per counted pair.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Iterable, Sequence

import numpy as np
import scipy.sparse as sp

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class CoVisitConfig:
    window: int = 5
    distance_decay: float = 1.0
    backward_weight: float = 0.5
    row_norm: float = 0.5  # 0 = raw counts, 1 = conditional frequency
    recency: float = 0.7  # weight of a click one step older than the next
    top_n: int | None = 200  # neighbours kept per item (None: all)

    def __post_init__(self) -> None:
        if self.window < 1:
            raise ValueError(f"covisit.window={self.window}: use at least 1 (the next item)")
        if not 0 <= self.backward_weight <= 1 or not 0 <= self.row_norm <= 1 or not 0 < self.recency <= 1:
            raise ValueError("covisit: backward_weight and row_norm in [0, 1], recency in (0, 1]")
        if self.top_n is not None and self.top_n < 1:
            raise ValueError(f"covisit.top_n={self.top_n}: keep at least 1 neighbour per item, or none to keep all")


class CoVisitation:
    """Item→item scores from sessions over a fixed item list; unknown items in sessions are skipped."""

    def __init__(self, item_ids: Sequence[str], config: CoVisitConfig = CoVisitConfig()):
        self.ids = list(item_ids)
        self.row = {item: n for n, item in enumerate(self.ids)}
        if len(self.row) != len(self.ids):
            raise ValueError("item ids must be unique")
        self.config = config
        n = len(self.ids)
        self.matrix = sp.csr_matrix((n, n), dtype=np.float32)  # (n, n) sparse, top_n per row
        self.counts = np.zeros(n, dtype=np.float64)  # (n,) sessions containing the item

    @classmethod
    def from_arrays(cls, item_ids: Sequence[str], config: CoVisitConfig, matrix: sp.csr_matrix,
                    counts: np.ndarray) -> "CoVisitation":
        """A fitted co-visitation from its arrays (a published signals artifact)."""
        out = cls(item_ids, config)
        if matrix.shape != (len(out.ids), len(out.ids)) or counts.shape != (len(out.ids),):
            raise ValueError(f"co-visitation arrays of shape {matrix.shape} / {counts.shape} for {len(out.ids)} items")
        out.matrix, out.counts = matrix.tocsr().astype(np.float32), counts.astype(np.float64)
        return out

    def fit(self, sessions: Iterable[Sequence[str]]) -> "CoVisitation":
        c, n = self.config, len(self.ids)
        rows_of = [np.fromiter((self.row[i] for i in items if i in self.row), dtype=np.int64) for items in sessions]
        rows_of = [r for r in rows_of if len(r)]
        rows = np.concatenate(rows_of) if rows_of else np.zeros(0, dtype=np.int64)  # every kept click, in order
        session = np.repeat(np.arange(len(rows_of)), [len(r) for r in rows_of])
        # sessions containing each item: one count per (session, item)
        self.counts = np.bincount(np.unique(session * n + rows) % n, minlength=n).astype(np.float64)
        src, dst, weight = [], [], []
        for d in range(1, c.window + 1):  # every pair (a, b) with b exactly d clicks after a in one session
            a, b = rows[:-d], rows[d:]
            within = session[:-d] == session[d:]
            if not within.any():
                break  # no session is longer than d
            same = within & (a != b)
            w = np.float32(1.0 / d ** c.distance_decay)
            src += [a[same], b[same]]
            dst += [b[same], a[same]]
            weight += [np.full(int(same.sum()), w, np.float32), np.full(int(same.sum()), w * c.backward_weight,
                                                                        np.float32)]
        if src:
            raw = sp.coo_matrix((np.concatenate(weight), (np.concatenate(src), np.concatenate(dst))),
                                shape=(n, n), dtype=np.float32).tocsr()  # duplicates summed
        else:
            raw = sp.csr_matrix((n, n), dtype=np.float32)
        raw.eliminate_zeros()
        scale = (np.where(self.counts > 0, self.counts, 1.0) ** -c.row_norm).astype(np.float32)
        self.matrix = _top_n_per_row(sp.diags(scale).dot(raw).tocsr().astype(np.float32), c.top_n)
        logger.info("co-visitation over %d items: %d non-zero pairs (%.1f MB)", n, self.matrix.nnz, self.nbytes / 1e6)
        return self

    @property
    def nbytes(self) -> int:
        m = self.matrix
        return m.data.nbytes + m.indices.nbytes + m.indptr.nbytes + self.counts.nbytes

    def popularity(self) -> np.ndarray:
        """``(n,) float32`` session counts, the fallback for items without co-visits."""
        return self.counts.astype(np.float32)

    def scores(self, clicks: Sequence[str]) -> np.ndarray:
        """``(n,) float32`` item scores for one user's clicks (oldest first); unknown clicks are ignored."""
        out = np.zeros(len(self.ids), dtype=np.float32)
        m, k = self.matrix, len(clicks)
        for i, item in enumerate(clicks):
            r = self.row.get(item)
            if r is not None:
                start, end = m.indptr[r], m.indptr[r + 1]
                out[m.indices[start:end]] += np.float32(self.config.recency ** (k - 1 - i)) * m.data[start:end]
        return out


def _top_n_per_row(matrix: sp.csr_matrix, top_n: int | None) -> sp.csr_matrix:
    """Keep each row's ``top_n`` largest entries (ties: the lower column first); the rest are dropped."""
    matrix.sort_indices()
    lengths = np.diff(matrix.indptr)
    if top_n is None or lengths.max(initial=0) <= top_n:
        return matrix
    keep = np.ones(matrix.nnz, dtype=bool)
    for r in np.flatnonzero(lengths > top_n):
        start, end = matrix.indptr[r], matrix.indptr[r + 1]
        order = np.argsort(-matrix.data[start:end], kind="stable")
        keep[start + order[top_n:]] = False
    row_of = np.repeat(np.arange(matrix.shape[0]), lengths)
    return sp.csr_matrix((matrix.data[keep], (row_of[keep], matrix.indices[keep])), shape=matrix.shape,
                         dtype=np.float32)
