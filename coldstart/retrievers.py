"""Retrievers over one published version, behind one call: ``search(requests, k) -> ranked (item_id, score)``.

- ``dense``: the encoder + FAISS (:class:`~coldstart.recommend.DenseRecommender`).
- ``bm25``: lexical BM25 over the items' texts, what shops run today; a clicks-only user is searched with the
  clicked items' texts (first 200 characters each).
- ``hybrid``: reciprocal rank fusion of the top ``depth`` of both.

Clicked and excluded items are never returned by any of them.
"""

from __future__ import annotations

import logging
from typing import Protocol, Sequence

from coldstart.recommend import DenseRecommender, UserRequest

logger = logging.getLogger(__name__)

RETRIEVERS = ("dense", "bm25", "hybrid")
Ranking = list[tuple[str, float]]


class Retriever(Protocol):
    def search(self, requests: Sequence[UserRequest], k: int) -> list[Ranking]: ...


class DenseRetriever:
    def __init__(self, recommender: DenseRecommender):
        self.recommender = recommender

    def search(self, requests: Sequence[UserRequest], k: int) -> list[Ranking]:
        return [r.items for r in self.recommender.recommend_batch(requests, k)]


class LexicalRetriever:
    """BM25 over the version's item texts (index built once, in memory)."""

    def __init__(self, ids: list[str], texts: list[str], *, click_chars: int = 200):
        from coldstart.bm25 import BM25Retriever

        self.bm25 = BM25Retriever(ids, texts)
        self.known = set(ids)
        self.click_chars = click_chars

    def search(self, requests: Sequence[UserRequest], k: int) -> list[Ranking]:
        out: list[Ranking] = []
        for r in requests:
            banned = list(r.clicks) + list(r.exclude)
            if r.query:
                out.append(self.bm25.search([r.query], k, exclude=[banned])[0])
            elif any(c in self.known for c in r.clicks):  # unknown clicks have no text to search with
                clicks = [c for c in r.clicks if c in self.known]
                out.append(self.bm25.search_clicks([clicks], k, chars=self.click_chars, exclude=[banned])[0])
            else:
                out.append([])
        return out


class HybridRetriever:
    """Reciprocal rank fusion (``rrf_k``) of the dense and lexical top ``depth``."""

    def __init__(self, dense: Retriever, lexical: Retriever, *, depth: int = 100, rrf_k: int = 60):
        self.dense, self.lexical, self.depth, self.rrf_k = dense, lexical, depth, rrf_k

    def search(self, requests: Sequence[UserRequest], k: int) -> list[Ranking]:
        from coldstart.fusion import reciprocal_rank_fusion

        depth = max(k, self.depth)
        dense = self.dense.search(requests, depth)
        lexical = self.lexical.search(requests, depth)
        return [reciprocal_rank_fusion([d, l], k=self.rrf_k, depth=depth)[:k] for d, l in zip(dense, lexical)]


def make_retriever(kind: str, recommender: DenseRecommender) -> Retriever:
    if kind not in RETRIEVERS:
        raise ValueError(f"unknown retriever {kind!r}: use one of {RETRIEVERS}")
    dense = DenseRetriever(recommender)
    if kind == "dense":
        return dense
    items = recommender.version.items
    lexical = LexicalRetriever(items.column("item_id").to_pylist(), items.column("text").to_pylist())
    return lexical if kind == "bm25" else HybridRetriever(dense, lexical)
