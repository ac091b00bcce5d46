"""Judged neighbours: a new query borrows the judgments of the most similar past queries.

A shop's judged queries (``qrels_train``) say which products answered which searches. For a new query q with
vector v, the ``m`` most similar judged queries j (cosine ``s_j``) vote for their judged products:

    score(d) = Σ_j softmax(s / τ)_j · (grade(j, d) − centre) / scale

so a product judged relevant for a near-duplicate search ("deck screw" ↔ "deck screws") rises, and one judged
irrelevant for it sinks. Products no neighbour judged get 0.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Mapping, Sequence

import numpy as np


@dataclass(frozen=True)
class NeighbourConfig:
    neighbours: int = 10
    temperature: float = 0.05
    centre: float = 3.0
    scale: float = 3.0


class JudgedNeighbours:
    """Judged queries as ``(m, d)`` L2-normalised vectors and a sparse ``(m, n_items)`` grade matrix."""

    def __init__(self, item_ids: Sequence[str], query_vectors: np.ndarray, qrels: Sequence[Mapping[str, int]],
                 config: NeighbourConfig = NeighbourConfig()):
        from scipy.sparse import csr_matrix

        if len(query_vectors) != len(qrels):
            raise ValueError(f"got {len(query_vectors)} query vectors and {len(qrels)} qrels; pass one per query")
        row = {item: n for n, item in enumerate(item_ids)}
        self.n_items = len(row)
        r, c, v = [], [], []
        for i, judged in enumerate(qrels):
            for item, grade in judged.items():
                if item in row:
                    r.append(i)
                    c.append(row[item])
                    v.append((grade - config.centre) / config.scale)
        self.grades = csr_matrix((np.asarray(v, np.float32), (r, c)), shape=(len(qrels), self.n_items))
        self.vectors = np.ascontiguousarray(query_vectors, dtype=np.float32)
        self.config = config

    @classmethod
    def from_files(cls, item_ids: Sequence[str], encoder, queries_path, qrels_path,
                   config: NeighbourConfig = NeighbourConfig()) -> "JudgedNeighbours":
        """Judged training queries (``qid<TAB>query`` + TREC qrels) encoded by ``encoder`` (the pipeline's)."""
        from coldstart.evaluation.trec import read_qrels, read_requests

        qrels = read_qrels(qrels_path)
        judged = [r for r in read_requests(queries_path) if r.query and r.qid in qrels]
        return cls(item_ids, encoder.encode([r.query for r in judged]), [qrels[r.qid] for r in judged], config)

    def scores(self, vectors: np.ndarray) -> np.ndarray:
        """``(b, d)`` query vectors → ``(b, n_items) float32`` scores."""
        sims = vectors @ self.vectors.T  # (b, m)
        m = min(self.config.neighbours, sims.shape[1])
        idx = np.argpartition(-sims, m - 1, axis=1)[:, :m]  # (b, m)
        top = np.take_along_axis(sims, idx, axis=1) / self.config.temperature
        w = np.exp(top - top.max(axis=1, keepdims=True))
        w /= w.sum(axis=1, keepdims=True)
        out = np.zeros((len(vectors), self.n_items), dtype=np.float32)
        for b in range(len(vectors)):
            out[b] = w[b] @ self.grades[idx[b]].toarray()
        return out
