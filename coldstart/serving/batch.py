"""Serving-side retrieval over one loaded version: profiles for a batch of users → search → optional MMR.

The serving retriever receives query vectors already encoded (by the query-encoder replicas), so this module
never touches the encoder: it builds each user's profile with :meth:`DenseRecommender.profiles` from the query
vector and the clicked items' stored vectors, searches the whole batch in one FAISS call, and re-ranks each
user's top candidates with :func:`~coldstart.ranking.mmr.mmr_order` when the request asks for diversity, or returns the top
``rerank_depth`` with their texts for the cross-encoder re-ranker when the request asks for that. Clicked and
excluded items are never returned; unknown click ids are ignored and reported.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Sequence

import numpy as np

from coldstart.artifacts.versions import LoadedVersion
from coldstart.ranking.mmr import mmr_order
from coldstart.ranking.user_vector import ProfileConfig
from coldstart.ranking.dense import DenseRecommender, UserRequest

SESSION_SIGNALS = frozenset({"covisit", "popularity", "category", "brand"})  # what other users' sessions give
NO_SIGNAL = "no query, and none of the clicked items is in the index: nothing to recommend from"


@dataclass(frozen=True)
class RetrievalQuery:
    """One user's request as the retriever sees it: ``query_vector`` (``(d,) float32``) encodes ``query``."""

    query: str | None = None
    query_vector: np.ndarray | None = None
    clicks: tuple[str, ...] = ()  # oldest first
    exclude: tuple[str, ...] = ()
    k: int = 10
    diversity: float = 0.0  # MMR λ; 0 keeps the relevance order
    rerank_depth: int = 0  # return this many candidates (≥ k) with their texts, for a re-ranker; 0 = none

    def __post_init__(self) -> None:
        if (self.query is None) != (self.query_vector is None):
            raise ValueError("a retrieval query needs both the query text and its vector, or neither")
        if self.rerank_depth and self.diversity:
            raise ValueError("a re-ranked request keeps the relevance order: ask for diversity or re-ranking")


@dataclass(frozen=True)
class RetrievedItem:
    item_id: str
    title: str
    score: float  # cosine similarity to the user's profile
    text: str | None = None  # the product text the encoder read; only for candidates of a re-ranker


@dataclass(frozen=True)
class RetrievalResult:
    version: str
    items: list[RetrievedItem]
    unknown_clicks: list[str] = field(default_factory=list)
    known_clicks: int = 0
    reason: str | None = None  # why ``items`` is empty, when it is
    batch_size: int = 1  # users answered by the same search call
    signals: list[str] = field(default_factory=list)  # what ranked it: dense, bm25, covisit, ..., mmr
    signals_version: str | None = None  # the published session signals, when they ranked it


@dataclass(frozen=True)
class ServingVersion:
    """A loaded version plus what serving reads per hit (titles in row order), prepared once per version.

    ``pipeline`` is the :class:`~coldstart.ranking.pipeline.RankingPipeline` that ranks requests without
    diversity — the one ``coldstart search`` builds from the same ``[retrieval]`` config (BM25 over this version's
    texts, session signals fitted over its items) — or None for the plain dense search."""

    loaded: LoadedVersion
    titles: list[str]
    texts: list[str]
    pipeline: object | None = None
    signals_id: str | None = None  # the published session signals the pipeline blends (None: none, or fitted here)

    @classmethod
    def prepare(cls, loaded: LoadedVersion, pipeline_for=None, *, signals=None,
                signals_id: str | None = None) -> "ServingVersion":
        """``pipeline_for(loaded, signals)`` builds the version's ranking pipeline (None: dense search)."""
        return cls(loaded=loaded, titles=loaded.items.column("title").to_pylist(),
                   texts=loaded.items.column("text").to_pylist(),
                   pipeline=pipeline_for(loaded, signals) if pipeline_for is not None else None, signals_id=signals_id)

    def with_signals(self, pipeline_for, signals, signals_id: str) -> "ServingVersion":
        """The same loaded version, ranked with other session signals."""
        return dataclasses.replace(self, pipeline=pipeline_for(self.loaded, signals), signals_id=signals_id)

    @property
    def version(self) -> str:
        return self.loaded.version

    def __len__(self) -> int:
        return len(self.loaded.index)


def retrieve(
    serving: ServingVersion,
    queries: Sequence[RetrievalQuery],
    *,
    profile: ProfileConfig,
    mmr_candidates: int = 50,
) -> list[RetrievalResult]:
    """Answer a batch of users from one version (one FAISS search for the whole batch).

    ``mmr_candidates``: how many of the top candidates a diversity request re-ranks (at least its ``k``).
    """
    index = serving.loaded.index
    requests = [UserRequest(query=q.query, clicks=q.clicks, exclude=q.exclude) for q in queries]
    query_vectors = np.zeros((len(queries), index.dim), dtype=np.float32)
    for i, q in enumerate(queries):
        if q.query_vector is not None:
            if q.query_vector.shape != (index.dim,):
                raise ValueError(f"query vector has shape {q.query_vector.shape}, the index has dim {index.dim}")
            query_vectors[i] = q.query_vector
    recommender = DenseRecommender(None, serving.loaded, profile)
    profiles, unknown, ok = recommender.profiles(requests, query_vectors)

    rows = [i for i in range(len(queries)) if ok[i]]
    depth = {i: max(queries[i].k, queries[i].rerank_depth) if queries[i].diversity == 0
             else max(queries[i].k, mmr_candidates) for i in rows}
    pipeline = serving.pipeline
    ranked = [i for i in rows if pipeline is not None and queries[i].diversity == 0]
    hits_of: dict[int, list[tuple[str, float]]] = {}
    if ranked:  # the batch ranking: one pipeline call for every such user of the batch
        found = pipeline.search([requests[i] for i in ranked], max(depth[i] for i in ranked),
                                query_vectors=query_vectors[ranked])
        hits_of.update(zip(ranked, found))
    searched = [i for i in rows if i not in hits_of]
    if searched:
        hits = index.search(profiles[searched], max(depth[i] for i in searched),
                            exclude=[tuple(queries[i].clicks) + tuple(queries[i].exclude) for i in searched])
        hits_of.update(zip(searched, hits))

    results = []
    for i, q in enumerate(queries):
        known = len(q.clicks) - len(unknown[i])
        if not ok[i]:
            results.append(RetrievalResult(serving.version, [], unknown[i], known, reason=NO_SIGNAL,
                                           batch_size=len(queries)))
            continue
        hits = hits_of[i][: depth[i]]
        signals = pipeline.signals_for(requests[i]) if i in ranked else ["dense"]
        if q.diversity > 0 and len(hits) > 1:
            vectors, _ = index.vectors_for([item_id for item_id, _ in hits])
            order = mmr_order(np.array([s for _, s in hits], dtype=np.float32), vectors, q.k, diversity=q.diversity)
            hits = [hits[j] for j in order]
            signals = signals + ["mmr"]
        keep = max(q.k, q.rerank_depth)
        items = [RetrievedItem(item_id, serving.titles[row], score, serving.texts[row] if n < q.rerank_depth else None)
                 for n, (item_id, score) in enumerate(hits[:keep]) for row in [index.row_of[item_id]]]
        results.append(RetrievalResult(serving.version, items, unknown[i], known, batch_size=len(queries),
                                       signals=signals, signals_version=serving.signals_id
                                       if SESSION_SIGNALS.intersection(signals) else None))
    return results
