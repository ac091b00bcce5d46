"""The ranking pipeline: the one object that ranks for ``coldstart search``, ``coldstart score``, the jobs and
the benchmark scripts (and, with the serving work, the Serve app).

It maps a config onto the stages of :mod:`coldstart.ranking.retrievers` — the first stage (``dense``, ``bm25``,
``hybrid`` or ``blend`` with the ``[retrieval.query]`` / ``[retrieval.clicks]`` weights), the session signals
for clicks-only requests, the judged neighbours, the cross-encoder re-ranker, or instead of the re-ranker the
learned ranker (:mod:`coldstart.ranking.ltr`), which orders the blend's candidates and reads the cross-encoder as
one of its features — so that every caller given the same published version and the same config gets the same
ranking::

    pipeline = RankingPipeline.from_store(job_config, retrieval_config, retriever="blend",
                                          sessions="sessions_train.jsonl", attributes="items.parquet")
    rankings = pipeline.search([UserRequest(query="cordless drill")], k=100)   # [[(item_id, score), ...]]
    scores = pipeline.pair_scores(["cordless drill"], ["p17"])                  # (1,) float32

Signals a request's weights name but that have no data (``category`` without attributes, say) are dropped with a
warning, never silently: :attr:`RankingPipeline.dropped` lists them.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Sequence

import numpy as np

from coldstart.ranking.config import RetrievalConfig
from coldstart.ranking.dense import DenseRecommender, UserRequest
from coldstart.ranking.retrievers import RETRIEVERS, BlendRetriever, Ranking, RerankedRetriever, make_retriever

logger = logging.getLogger(__name__)


class RankingPipeline:
    """One published version ranked as ``config`` says.

    ``recommender`` holds the version and the query encoder; ``sessions`` is a fitted
    :class:`~coldstart.signals.sessions.SessionSignals` over the version's items (blend only); ``neighbours`` a
    :class:`~coldstart.ranking.judged_neighbours.JudgedNeighbours` over them (blend only, used where
    ``[retrieval.query] neighbours`` is non-zero); ``reranker`` a cross-encoder model (local dir or ``s3://``);
    ``ranker`` a loaded :class:`~coldstart.ranking.ranker_artifact.RankerArtifact` (blend only; refused for a
    version of another encoder).
    """

    def __init__(self, recommender: DenseRecommender, config: RetrievalConfig = RetrievalConfig(), *,
                 retriever: str = "blend", sessions=None, neighbours=None, reranker: str | None = None,
                 device: str = "auto", ranker=None):
        if retriever not in RETRIEVERS:
            raise ValueError(f"unknown retriever {retriever!r}: use one of {RETRIEVERS}")
        if (sessions is not None or neighbours is not None) and retriever != "blend":
            raise ValueError("session signals and judged neighbours are blended: use the 'blend' retriever, not "
                             f"{retriever!r}")
        self.recommender, self.config, self.kind = recommender, config, retriever
        self.dropped: list[str] = []
        options: dict = {}
        if retriever == "blend":  # weights and tokens chosen on dev; bm25/hybrid stay the published baselines
            options["weights"] = self._available(config.query_weights, "query",
                                                 {"dense", "bm25"} | ({"neighbours"} if neighbours else set()))
            options["bm25_tokens"] = config.query_bm25_tokens
            options["neighbours"] = neighbours if options["weights"].get("neighbours") else None
            if sessions is not None:
                options["sessions"] = sessions
                options["click_weights"] = self._available(config.click_weights, "clicks",
                                                           {"dense", "bm25", *sessions.names})
        if reranker:
            from coldstart.ranking.rerank import RerankerConfig

            options["reranker"] = RerankerConfig(model=reranker, depth=config.rerank_depth,
                                                 first_weight=config.rerank_first_weight, device=device)
        if ranker is not None and retriever != "blend":
            raise ValueError(f"the learned ranker orders the blend's candidates: use the 'blend' retriever, not "
                             f"{retriever!r}")
        self.retriever = make_retriever(retriever, recommender, **options)
        self.ranker = None
        if ranker is not None:  # the blend finds the candidates, the ranker (with the cross-encoder) orders them
            from coldstart.ranking.ltr import LearnedRanker

            ranker.check_encoder(recommender.version)
            self.ranker = ranker
            self.retriever = LearnedRanker(self.features(depth=ranker.depth, cross_depth=ranker.cross_depth),
                                           ranker.models)

    def features(self, *, depth: int = 100, cross_depth: int | None = None):
        """A :class:`~coldstart.ranking.ltr.FeatureBuilder` over this pipeline's blend and cross-encoder: what a
        learned ranker is trained on and reads."""
        from coldstart.ranking.ltr import FeatureBuilder

        first, cross = self._stages()
        if not isinstance(first, BlendRetriever):
            raise ValueError(f"ranker features come from the 'blend' retriever, not {self.kind!r}")
        return FeatureBuilder(first, cross=cross, depth=depth,
                              cross_depth=self.config.rerank_depth if cross_depth is None else cross_depth)

    @classmethod
    def from_store(cls, job, config: RetrievalConfig = RetrievalConfig(), *, retriever: str = "blend",
                   sessions: str | Path | None = None, attributes: str | Path | None = None,
                   reranker: str | None = None, neighbours=None, ranker: str | None = None) -> "RankingPipeline":
        """The live version of ``job.store`` (a :class:`coldstart.config.JobConfig`) with ``job.encoder`` as the
        query encoder (refused when the version's vectors come from another encoder); ``sessions`` and
        ``attributes`` are files or ``s3://`` URIs the session signals are fitted from; ``ranker``: a learned
        ranker id of the store, or ``"latest"`` (:mod:`coldstart.ranking.ranker_artifact`)."""
        recommender = load_recommender(job)
        loaded_ranker = None
        if ranker is not None:
            from coldstart.artifacts.store import open_store
            from coldstart.ranking.ranker_artifact import load_ranker

            loaded_ranker = load_ranker(open_store(job.store), ranker)
        fitted = None
        if sessions is not None:
            from coldstart.signals.sessions import SessionSignals

            fitted = SessionSignals.from_files(recommender.version.index.ids, sessions, attributes=attributes, config=config)
        elif attributes is not None:
            raise ValueError("attributes are for the session signals: give the sessions file with them")
        return cls(recommender, config, retriever=retriever, sessions=fitted, neighbours=neighbours,
                   reranker=reranker, device=job.encoder.device, ranker=loaded_ranker)

    def _available(self, weights: dict[str, float], table: str, available: set[str]) -> dict[str, float]:
        dropped = sorted(n for n, w in weights.items() if w and n not in available)
        if dropped:
            logger.warning("[retrieval.%s] weights %s have no data here (sessions, attributes or judged queries not "
                           "given); ranked without them", table, dropped)
            self.dropped.extend(f"{table}.{n}" for n in dropped)
        return {n: w for n, w in weights.items() if n in available}

    def _stages(self):
        """``(first stage, cross-encoder Reranker or None)`` whichever stage ranks last."""
        from coldstart.ranking.ltr import LearnedRanker

        if isinstance(self.retriever, LearnedRanker):
            return self.retriever.builder.first, self.retriever.builder.cross
        if isinstance(self.retriever, RerankedRetriever):
            return self.retriever.first, self.retriever.reranker
        return self.retriever, None

    @property
    def version(self) -> str:
        return self.recommender.version.version

    def search(self, requests: Sequence[UserRequest], k: int, query_vectors: np.ndarray | None = None
               ) -> list[Ranking]:
        """Top ``k`` ``(item_id, score)`` per request, best first; clicked and excluded items never appear.
        ``query_vectors`` (``(r, d) float32``): the queries' embeddings when the caller has them (the Serve app's
        encoder replicas), so that the pipeline needs no encoder of its own."""
        return self.retriever.search(requests, k, query_vectors)

    def signals_for(self, request: UserRequest) -> list[str]:
        """The names of the signals that rank ``request`` (e.g. ``["dense", "bm25", "reranker"]``)."""
        if self.ranker is not None:
            from coldstart.ranking.ltr import kind_of

            stage = self.retriever
            names = [n for n in stage.builder.first.weights_for(request) if n != "neighbours" or request.query]
            if kind_of(request) in stage.models:
                cross = ["reranker"] if request.query and stage.builder.cross is not None else []
                return names + cross + ["ranker"]
            return names
        reranked = isinstance(self.retriever, RerankedRetriever)
        first = self.retriever.first if reranked else self.retriever
        if isinstance(first, BlendRetriever):
            names = [n for n in first.weights_for(request) if n != "neighbours" or request.query]
        else:
            names = {"dense": ["dense"], "bm25": ["bm25"], "hybrid": ["dense", "bm25"]}[self.kind]
        return names + (["reranker"] if reranked and request.query else [])

    def pair_scores(self, queries: Sequence[str], item_ids: Sequence[str]) -> np.ndarray:
        """``(n,) float32`` score of each (query, item) pair as ``[retrieval] pair_score`` says; NaN for an item
        not in the version. Comparable across queries for ``dense`` and ``reranker`` (what ROC-AUC needs)."""
        if len(queries) != len(item_ids):
            raise ValueError(f"{len(queries)} queries but {len(item_ids)} items: pass one query per item")
        how = self.config.pair_score
        if how == "blend":
            return self._blend_pair_scores(queries, item_ids)
        if how == "ranker":
            if self.ranker is None:
                raise ValueError("[retrieval] pair_score = 'ranker' needs a learned ranker (--ranker)")
            return self.retriever.pair_scores(queries, item_ids)
        cosine = self.recommender.score_pairs(queries, item_ids)
        if how == "dense":
            return cosine
        reranker = self._stages()[1]
        if reranker is None:
            raise ValueError("[retrieval] pair_score = 'reranker' needs a re-ranker model (--reranker)")
        known = np.flatnonzero(~np.isnan(cosine))
        out = np.full(len(queries), np.nan, dtype=np.float32)
        logits = reranker.cross.score([queries[n] for n in known], [reranker.text(item_ids[n]) for n in known])
        out[known] = logits + np.float32(self.config.rerank_pair_dense_weight) * cosine[known]
        return out

    def _blend_pair_scores(self, queries: Sequence[str], item_ids: Sequence[str]) -> np.ndarray:
        first = self._stages()[0]
        if not isinstance(first, BlendRetriever):
            raise ValueError(f"[retrieval] pair_score = 'blend' needs the 'blend' retriever, not {self.kind!r}")
        unique = sorted(set(queries))
        scored = dict(zip(unique, first.score_all([UserRequest(query=q) for q in unique])))
        row_of = self.recommender.version.index.row_of
        out = np.full(len(queries), np.nan, dtype=np.float32)
        for n, (q, item) in enumerate(zip(queries, item_ids)):
            if item in row_of and scored[q] is not None:
                out[n] = scored[q][row_of[item]]
        return out


def load_recommender(job) -> DenseRecommender:
    """``job.store``'s live version with ``job.encoder`` loaded as its query encoder and ``job.profile``'s user
    vectors; refused (:class:`~coldstart.artifacts.manifest.VersionRejected`) when the version's vectors come from
    another encoder."""
    from coldstart.artifacts.store import open_store
    from coldstart.artifacts.versions import load_version
    from coldstart.encoders.encoder import Encoder

    encoder = Encoder(job.encoder)
    version = load_version(open_store(job.store), expect=encoder.info())
    return DenseRecommender(encoder, version, job.profile)
