"""Retrievers over one published version, behind one call: ``search(requests, k) -> ranked (item_id, score)``.

- ``dense``: the encoder + FAISS (:class:`~coldstart.ranking.dense.DenseRecommender`).
- ``bm25``: lexical BM25 over the items' texts, what shops run today; a clicks-only user is searched with the
  clicked items' texts (first 200 characters each).
- ``hybrid``: reciprocal rank fusion of the top ``depth`` of both.
- ``blend``: every catalog item scored by both, each signal z-scored over the catalog for the request and summed
  with weights (``[retrieval.query]`` of the config: dense 1.0 + bm25 0.15 was best on Home Depot dev for
  the fine-tuned model, about 0.02 NDCG@10 above rank fusion; BENCHMARKS.md). The default ranking of
  ``benchmarks/reproduce_quality.sh``. Given other users' sessions (:class:`~coldstart.signals.sessions.
  SessionSignals`), requests without a query are blended with ``click_weights`` over the session signals too
  (``[retrieval.clicks]``: co-visitation, category and brand transitions, popularity).

Any of them can be followed by a cross-encoder re-ranker (:class:`RerankedRetriever`, ``--reranker`` of
``coldstart search``) that re-scores the top ``depth`` of requests with a query.

Clicked and excluded items are never returned by any of them.
"""

from __future__ import annotations

import logging
from typing import Protocol, Sequence

import numpy as np

from coldstart.ranking.dense import DenseRecommender, UserRequest

logger = logging.getLogger(__name__)

RETRIEVERS = ("dense", "bm25", "hybrid", "blend")
Ranking = list[tuple[str, float]]


class RankingStage(Protocol):
    """Any first stage or re-ranked stage (not the Serve app's ``Retriever``, which is a deployment).

    ``query_vectors`` (``(r, d) float32``, rows of requests without a query ignored) are the queries' embeddings
    when the caller computed them (the Serve app's encoder replicas); otherwise the recommender's encoder runs."""

    def search(self, requests: Sequence[UserRequest], k: int, query_vectors=None) -> list[Ranking]: ...


class DenseRetriever:
    def __init__(self, recommender: DenseRecommender):
        self.recommender = recommender

    def search(self, requests: Sequence[UserRequest], k: int, query_vectors=None) -> list[Ranking]:
        return [r.items for r in self.recommender.recommend_batch(requests, k, query_vectors)]


class LexicalRetriever:
    """BM25 over the version's item texts (index built once, in memory)."""

    def __init__(self, ids: list[str], texts: list[str], *, click_chars: int = 200, tokens: str = "bm25s"):
        from coldstart.ranking.bm25 import BM25Retriever

        self.bm25 = BM25Retriever(ids, texts, tokens=tokens)
        self.known = set(ids)
        self.click_chars = click_chars

    def query_text(self, request: UserRequest) -> str:
        """What BM25 searches for a request: its query, or else the known clicked items' texts; may be empty."""
        if request.query:
            return request.query
        rows = [self.bm25.row_of[c] for c in request.clicks if c in self.known]
        return " ".join(self.bm25.texts[r][:self.click_chars] for r in rows)

    def search(self, requests: Sequence[UserRequest], k: int, query_vectors=None) -> list[Ranking]:
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

    def __init__(self, dense: RankingStage, lexical: RankingStage, *, depth: int = 100, rrf_k: int = 60):
        self.dense, self.lexical, self.depth, self.rrf_k = dense, lexical, depth, rrf_k

    def search(self, requests: Sequence[UserRequest], k: int, query_vectors=None) -> list[Ranking]:
        from coldstart.ranking.fusion import reciprocal_rank_fusion

        depth = max(k, self.depth)
        dense = (self.dense.search(requests, depth) if query_vectors is None
                 else self.dense.search(requests, depth, query_vectors))
        lexical = self.lexical.search(requests, depth)
        return [reciprocal_rank_fusion([d, l], k=self.rrf_k, depth=depth)[:k] for d, l in zip(dense, lexical)]


class BlendRetriever:
    """Weighted sum of z-scored full-catalog signals (:func:`coldstart.ranking.fusion.blend`): the user vector's
    cosine with every item vector (``dense``) and BM25 (``bm25``); for requests with a query, optionally the
    judged neighbours (``neighbours``, a :class:`~coldstart.ranking.judged_neighbours.JudgedNeighbours` over the
    version's items); for requests without a query, ``click_weights`` over those and, when ``sessions`` is given,
    its signals. A request with no signal gets an empty ranking."""

    def __init__(self, recommender: DenseRecommender, lexical: LexicalRetriever, weights: dict[str, float], *,
                 sessions=None, click_weights: dict[str, float] | None = None, neighbours=None):
        self.recommender, self.lexical, self.sessions, self.neighbours = recommender, lexical, sessions, neighbours
        self.weights = _checked_weights(weights, ("neighbours",) if neighbours is not None else ())
        self.click_weights = (self.weights if click_weights is None
                              else _checked_weights(click_weights, sessions.names if sessions else ()))
        index = recommender.version.index
        # BM25 and session scores come in their own item order; reorder them to the index's rows once.
        self._bm25_rows = np.array([lexical.bm25.row_of[i] for i in index.ids], dtype=np.int64)
        if neighbours is not None and neighbours.n_items != len(index):
            raise ValueError(f"judged neighbours cover {neighbours.n_items} items, the version has {len(index)}: "
                             "build them over the version's item ids")
        if sessions is not None:
            row = {item: n for n, item in enumerate(sessions.ids)}
            missing = [i for i in index.ids if i not in row]
            if missing:
                raise ValueError(f"session signals lack {len(missing)} of the version's items (e.g. {missing[0]!r}):"
                                 " fit them over the version's item ids")
            self._session_rows = np.array([row[i] for i in index.ids], dtype=np.int64)

    def weights_for(self, request: UserRequest) -> dict[str, float]:
        """The non-zero weights that rank ``request``: the query's, or the clicks' when it has no query."""
        return {name: w for name, w in (self.weights if request.query else self.click_weights).items() if w}

    def score_all(self, requests: Sequence[UserRequest], query_vectors=None) -> list[np.ndarray | None]:
        """Each request's blended ``(n,) float32`` score of every item in index row order (None: no signal)."""
        from coldstart.ranking.fusion import blend

        return [None if s is None else blend(s, {name: w for name, w in self.weights_for(r).items() if name in s})
                for r, s in zip(requests, self.signals_all(requests, query_vectors))]

    def signals_all(self, requests: Sequence[UserRequest], query_vectors=None, *, every: bool = False
                    ) -> list[dict[str, np.ndarray] | None]:
        """Each request's raw signals ``{name: (n,) float32}`` in index row order, before z-scoring (None: no
        signal): those its weights name, or with ``every`` all that the request kind has data for (what the
        learned ranker reads as features)."""
        index = self.recommender.version.index
        profiles, _, ok = self.recommender.profiles(requests, query_vectors)
        dense = (profiles @ index.vectors.T if every or self.weights.get("dense") or self.click_weights.get("dense")
                 else None)
        judged = None
        if self.neighbours is not None and (every or self.weights.get("neighbours")):
            with_query = [n for n, r in enumerate(requests) if r.query and ok[n]]
            judged = dict(zip(with_query, self.neighbours.scores(profiles[with_query]))) if with_query else {}
        out: list[dict[str, np.ndarray] | None] = []
        for i, r in enumerate(requests):
            if not ok[i]:
                out.append(None)
                continue
            wanted = self.weights_for(r)
            signals = {"dense": dense[i]} if dense is not None else {}
            if every or wanted.get("bm25"):
                text = self.lexical.query_text(r)
                signals["bm25"] = (self.lexical.bm25.scores(text)[self._bm25_rows] if text
                                   else np.zeros(len(index), np.float32))
            if judged is not None and i in judged:
                signals["neighbours"] = judged[i]
            if self.sessions is not None and not r.query:
                signals.update((name, v[self._session_rows]) for name, v in self.sessions.signals(r.clicks).items()
                               if every or wanted.get(name))
            out.append(signals)
        return out

    def search(self, requests: Sequence[UserRequest], k: int, query_vectors=None) -> list[Ranking]:
        from coldstart.ranking.fusion import top_k

        index = self.recommender.version.index
        out: list[Ranking] = []
        for r, scores in zip(requests, self.score_all(requests, query_vectors)):
            if scores is None:
                out.append([])
                continue
            banned = np.array([index.row_of[c] for c in (*r.clicks, *r.exclude) if c in index.row_of], np.int64)
            out.append([(index.ids[row], float(scores[row])) for row in top_k(scores, k, exclude=banned)])
        return out


def _checked_weights(weights: dict[str, float], extra_names: Sequence[str]) -> dict[str, float]:
    known = {"dense", "bm25", *extra_names}
    unknown = set(weights) - known
    if unknown or not any(weights.values()):
        raise ValueError(f"blend weights {weights}: use {sorted(known)}, at least one non-zero"
                         + (f"; {sorted(unknown)} need session signals or judged neighbours with them"
                            if unknown else ""))
    return dict(weights)


class RerankedRetriever:
    """A first stage, then a cross-encoder over the top ``depth`` of every request that has a query.

    A clicks-only request has no query for the cross-encoder to read: it keeps the first stage's ranking."""

    def __init__(self, first: RankingStage, reranker):
        self.first, self.reranker = first, reranker

    def search(self, requests: Sequence[UserRequest], k: int, query_vectors=None) -> list[Ranking]:
        depth = max(k, self.reranker.config.depth)
        hits = (self.first.search(requests, depth) if query_vectors is None
                else self.first.search(requests, depth, query_vectors))
        with_query = [n for n, r in enumerate(requests) if r.query and hits[n]]
        reranked = self.reranker.rerank_many([requests[n].query for n in with_query], [hits[n] for n in with_query])
        for n, ranking in zip(with_query, reranked):
            hits[n] = ranking
        return [h[:k] for h in hits]


def make_retriever(kind: str, recommender: DenseRecommender, *, weights: dict[str, float] | None = None,
                   bm25_tokens: str = "bm25s", reranker=None, sessions=None,
                   click_weights: dict[str, float] | None = None, neighbours=None) -> RankingStage:
    """``weights`` (``blend`` only; default dense 1.0 + bm25 0.15) and ``bm25_tokens`` come from the config's
    ``[retrieval]`` table (:class:`coldstart.ranking.config.RetrievalConfig`); ``reranker`` is a
    :class:`coldstart.ranking.rerank.RerankerConfig` or None; ``sessions`` (a fitted
    :class:`~coldstart.signals.sessions.SessionSignals`), ``click_weights`` and ``neighbours`` are for ``blend``
    only. Callers normally build a :class:`coldstart.ranking.pipeline.RankingPipeline`, which maps the config
    onto these arguments."""
    if kind not in RETRIEVERS:
        raise ValueError(f"unknown retriever {kind!r}: use one of {RETRIEVERS}")
    if (sessions is not None or click_weights is not None or neighbours is not None) and kind != "blend":
        raise ValueError(f"session signals and judged neighbours need the 'blend' retriever, not {kind!r}")
    first = _first_stage(kind, recommender, weights=weights, bm25_tokens=bm25_tokens, sessions=sessions,
                         click_weights=click_weights, neighbours=neighbours)
    if reranker is None:
        return first
    from coldstart.ranking.rerank import Reranker

    version = recommender.version
    texts = version.items.column("text").to_pylist()
    return RerankedRetriever(first, Reranker(reranker, lambda item: texts[version.index.row_of[item]]))


def _first_stage(kind: str, recommender: DenseRecommender, *, weights, bm25_tokens: str, sessions,
                 click_weights, neighbours) -> RankingStage:
    dense = DenseRetriever(recommender)
    if kind == "dense":
        return dense
    items = recommender.version.items
    lexical = LexicalRetriever(items.column("item_id").to_pylist(), items.column("text").to_pylist(),
                               tokens=bm25_tokens)
    if kind == "blend":
        return BlendRetriever(recommender, lexical, weights or {"dense": 1.0, "bm25": 0.15}, sessions=sessions,
                              click_weights=click_weights, neighbours=neighbours)
    return lexical if kind == "bm25" else HybridRetriever(dense, lexical)
