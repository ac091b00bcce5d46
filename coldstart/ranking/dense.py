"""Recommendations for new users from a published version: profile → inner-product search → results.

:class:`DenseRecommender` is the in-process path used by batch search, the demo and (per replica) the serving
app: the query is encoded, the clicks are looked up among the stored item vectors, the two are mixed into a
profile (:mod:`coldstart.ranking.user_vector`), and the index is searched with the clicked items excluded. Unknown click ids
are ignored and reported, never an error: a shop's click stream can mention products newer than the index.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Sequence

import numpy as np

from coldstart.encoders.encoder import Encoder
from coldstart.artifacts.versions import LoadedVersion
from coldstart.ranking.user_vector import ProfileConfig, build_profile

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class UserRequest:
    query: str | None = None
    clicks: tuple[str, ...] = ()  # oldest first
    exclude: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        query = self.query.strip() if isinstance(self.query, str) else None
        object.__setattr__(self, "query", query or None)
        object.__setattr__(self, "clicks", tuple(self.clicks))
        object.__setattr__(self, "exclude", tuple(self.exclude))


@dataclass
class Recommendation:
    items: list[tuple[str, float]]
    version: str
    unknown_clicks: list[str] = field(default_factory=list)
    reason: str | None = None  # set when nothing could be recommended (e.g. only unknown clicks)


class DenseRecommender:
    """``encoder`` may be None when every caller passes query vectors in (the serving retriever: queries are
    encoded by separate replicas)."""

    def __init__(self, encoder: Encoder | None, version: LoadedVersion, profile: ProfileConfig = ProfileConfig()):
        self.encoder = encoder
        self.version = version
        self.profile = profile

    def profiles(
        self, requests: Sequence[UserRequest], query_vectors: np.ndarray | None = None
    ) -> tuple[np.ndarray, list[list[str]], list[bool]]:
        """``(r, d)`` profiles, unknown clicks per request, and whether each request had any signal at all.

        ``query_vectors`` (``(r, d)``, rows for requests without a query ignored) lets a caller that batches or
        caches query encodings pass them in; otherwise queries are encoded here in one batch.
        """
        index = self.version.index
        if query_vectors is None:
            texts = [r.query for r in requests if r.query]
            encoded = iter(self.encoder.encode(texts)) if texts else iter(())
            query_vectors = np.zeros((len(requests), index.dim), dtype=np.float32)
            for i, r in enumerate(requests):
                if r.query:
                    query_vectors[i] = next(encoded)
        out = np.zeros((len(requests), index.dim), dtype=np.float32)
        unknown_all, ok = [], []
        for i, r in enumerate(requests):
            clicked, unknown = index.vectors_for(r.clicks)
            unknown_all.append(unknown)
            has_signal = bool(r.query) or len(clicked) > 0
            ok.append(has_signal)
            if has_signal:
                out[i] = build_profile(query_vectors[i] if r.query else None, clicked, self.profile)
        return out, unknown_all, ok

    def recommend_batch(self, requests: Sequence[UserRequest], k: int,
                        query_vectors: np.ndarray | None = None) -> list[Recommendation]:
        """``query_vectors``: see :meth:`profiles` (a caller that encodes queries elsewhere passes them in)."""
        profiles, unknown, ok = self.profiles(requests, query_vectors)
        exclude = [tuple(r.clicks) + tuple(r.exclude) for r in requests]
        hits = self.version.index.search(profiles, k, exclude=exclude)
        results = []
        for i in range(len(requests)):
            if ok[i]:
                results.append(Recommendation(hits[i], self.version.version, unknown[i]))
            else:
                results.append(Recommendation([], self.version.version, unknown[i],
                                              reason="no query and none of the clicked items is in the index"))
        return results

    def recommend(self, request: UserRequest, k: int = 10) -> Recommendation:
        return self.recommend_batch([request], k)[0]

    def score_pairs(self, queries: Sequence[str], item_ids: Sequence[str]) -> np.ndarray:
        """``(n,) float32`` cosine similarity of each query with its item (NaN for an unknown item)."""
        unique = sorted(set(queries))
        vectors = dict(zip(unique, self.encoder.encode(unique)))
        out = np.full(len(queries), np.nan, dtype=np.float32)
        index = self.version.index
        for i, (q, item_id) in enumerate(zip(queries, item_ids)):
            row = index.row_of.get(item_id)
            if row is not None:
                out[i] = float(vectors[q] @ index.vectors[row])
        return out
