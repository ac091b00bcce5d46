"""What a serving replica holds and does, without Ray: the live version, and in the fused topology the query
encoder and the re-ranker beside it.

- :class:`RetrievalCore`: the live index version of the store (:class:`~coldstart.artifacts.live_index.LiveIndex`,
  loaded at start, polled and swapped in a background thread), its ranking pipeline, and the answers for a
  batch of users. The composed topology's retriever replicas are one of these.
- :class:`FusedCore`: a :class:`RetrievalCore` plus the cached query encoder and the optional cross-encoder, so
  that a batch of HTTP requests is answered by one call in one worker thread: cache lookups → one forward pass
  over the misses → one search → blend → (re-rank). The small-machine default: no handle hops, no per-stage
  queues, and the batch that the ingress collects is the batch every stage sees.

:func:`retrieval_queries` and :func:`apply_rerank` are shared by both topologies, so a request is turned into a
search and a re-ranked answer the same way whether the stages are one replica or three.
"""

from __future__ import annotations

import dataclasses
import logging
import threading
import time
from dataclasses import dataclass
from typing import Any, Sequence

from coldstart.serving.batch import RetrievalQuery, RetrievalResult
from coldstart.serving.config import ServeAppArgs
from coldstart.serving.query_encoding import QueryEmbedding
from coldstart.serving.schema import RecommendRequest

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Answer:
    """One request's answer and when each stage ended (``time.perf_counter()``)."""

    embedding: QueryEmbedding | None
    result: RetrievalResult | None  # None while no index version is loaded
    encoded_at: float
    retrieved_at: float
    reranked_at: float


def has_query(body: RecommendRequest) -> bool:
    return bool(body.query and body.query.strip())


def retrieval_queries(bodies: Sequence[RecommendRequest], embeddings: Sequence[QueryEmbedding | None], *,
                      rerank_depth: int) -> list[RetrievalQuery]:
    """The retriever's view of each request; a query request without diversity asks for re-rank candidates
    when a re-ranker is configured (``rerank_depth`` > 0)."""
    return [RetrievalQuery(
        query=e.text if e else None, query_vector=e.vector if e else None,
        clicks=tuple(b.clicks), exclude=tuple(b.exclude), k=b.k, diversity=b.diversity,
        rerank_depth=rerank_depth if e is not None and b.diversity == 0 else 0,
    ) for b, e in zip(bodies, embeddings)]


def rerank_jobs(queries: Sequence[RetrievalQuery], results: Sequence[RetrievalResult | None]) -> list[int]:
    """Which requests the re-ranker re-scores: those that asked for candidates and got some."""
    return [n for n, (q, r) in enumerate(zip(queries, results)) if q.rerank_depth and r is not None and r.items]


def apply_rerank(bodies: Sequence[RecommendRequest], results: list[RetrievalResult | None], chosen: Sequence[int],
                 reordered: Sequence[Sequence[tuple[str, float]]]) -> None:
    """Replace the chosen results' items by the re-ranked order (fused scores), cut to each request's ``k``."""
    for n, ranking in zip(chosen, reordered):
        by_id = {i.item_id: i for i in results[n].items}
        items = [dataclasses.replace(by_id[item_id], score=score, text=None) for item_id, score in ranking[: bodies[n].k]]
        results[n] = dataclasses.replace(results[n], items=items, signals=results[n].signals + ["reranker"])


class RetrievalCore:
    """The live version of ``args.store`` and the answers for a batch of users from it.

    Loads ``LATEST`` in the constructor (a replica takes traffic only once it has an index, when there is one),
    then polls every ``args.poll_interval_s`` in a daemon thread until :meth:`close`.
    """

    def __init__(self, args: ServeAppArgs):
        from coldstart.artifacts.live_index import LiveIndex
        from coldstart.artifacts.store import open_store
        from coldstart.artifacts.versions import load_version
        from coldstart.encoders.encoder import describe_encoder
        from coldstart.ranking.faiss_index import import_faiss
        from coldstart.serving.batch import ServingVersion

        import_faiss().omp_set_num_threads(args.faiss_threads)
        expect = describe_encoder(args.encoder_config())  # from the model files: no weights loaded here
        self.store = store = open_store(args.store)
        self.profile = args.profile_config()
        self.mmr_candidates = args.mmr_candidates
        self.session_signals = args.session_signals
        self.rejected_signals: dict[str, str] = {}
        self.pipeline_for = pipeline_factory(args, self.profile)

        def prepare(version: str) -> ServingVersion:
            loaded = load_version(store, version, expect=expect)
            signals, signals_id = self._published_signals(loaded)
            return ServingVersion.prepare(loaded, self.pipeline_for, signals=signals, signals_id=signals_id)

        self.live = LiveIndex(store, prepare)
        self.live.start()
        self._stop = threading.Event()
        self._poller = threading.Thread(target=self._poll, args=(args.poll_interval_s,), daemon=True,
                                        name="index-poller")
        self._poller.start()

    def _poll(self, interval_s: float) -> None:
        while not self._stop.wait(interval_s):
            self.refresh()

    def refresh(self) -> None:
        """One poll: a new index version (with its signals), else newer signals for the live one."""
        if self.live.refresh() or not self.session_signals:
            return
        from coldstart.signals.artifact import latest_signals

        live = self.live.live
        if live is None:
            return
        try:
            latest = latest_signals(self.store, live.version)
        except Exception as err:  # noqa: BLE001 - the store may be briefly unreachable; keep serving
            logger.warning("cannot read the session signals of version %s: %s", live.version, err)
            return
        if latest is None or latest == live.value.signals_id or latest in self.rejected_signals:
            return
        signals, signals_id = self._published_signals(live.value.loaded, latest)
        if signals is not None and self.live.swap_value(live.version, live.value.with_signals(
                self.pipeline_for, signals, signals_id)):
            logger.info("version %s now ranks with session signals %s (was %s)", live.version, signals_id,
                        live.value.signals_id)

    def _published_signals(self, loaded, signals_id: str | None = None):
        """(signals, id) published beside ``loaded``'s version, or (None, None): not configured, none published
        yet, or refused (remembered with the reason, shown in /healthz, never retried)."""
        if not self.session_signals:
            return None, None
        from coldstart.artifacts.manifest import VersionRejected
        from coldstart.signals.artifact import latest_signals, load_signals

        signals_id = signals_id or latest_signals(self.store, loaded.version)
        if signals_id is None:
            logger.warning("version %s has no session signals yet: clicks rank without other users' sessions "
                           "until `jobs.fit_signals` publishes them", loaded.version)
            return None, None
        try:
            signals, manifest = load_signals(self.store, loaded.version, loaded.index.ids, signals_id)
        except VersionRejected as err:
            self.rejected_signals[signals_id] = str(err)
            logger.warning("refused session signals %s: %s", signals_id, err)
            return None, None
        return signals, manifest.signals_id

    def retrieve(self, queries: Sequence[RetrievalQuery]) -> list[RetrievalResult | None]:
        """Blocking: one search for the whole batch from one version (even if a swap follows); Nones while no
        version is loaded."""
        from coldstart.serving.batch import retrieve

        live = self.live.live
        if live is None:
            return [None] * len(queries)
        return list(retrieve(live.value, queries, profile=self.profile, mmr_candidates=self.mmr_candidates))

    def status(self) -> dict[str, Any]:
        status = self.live.status()
        live = self.live.live
        status["items"] = len(live.value) if live else None
        status["signals"] = live.value.signals_id if live else None
        status["rejected_signals"] = dict(self.rejected_signals)
        return status

    def item(self, item_id: str) -> tuple[str | None, dict[str, Any] | None]:
        """(live version, the product as stored in it); (None, None) while no version is loaded."""
        live = self.live.live
        if live is None:
            return None, None
        return live.version, live.value.loaded.item(item_id)

    def health_problem(self) -> str | None:
        """Why this replica cannot serve, or None. A replica with no version although the store has one it
        tried (refused, or failing to load) is unhealthy: Serve replaces it, and a fresh one retries and falls
        back to an older version. An empty store is not a fault of the replica — restarting cannot help — so it
        stays healthy and ``/healthz`` answers 503 ``loading`` until something is published."""
        if self.live.ready:
            return None
        stats = self.live.stats
        if stats.rejected or stats.failures:
            return f"no index version loaded: {stats.last_error}"
        return None

    def close(self) -> None:
        self._stop.set()


def pipeline_factory(args: ServeAppArgs, profile):
    """``(loaded version, published signals or None) → RankingPipeline`` as ``coldstart search`` builds it from
    the same config, or None when the app ranks by the plain dense search. With a sessions file instead of
    published signals, the file is read once and its signals fitted per version (they are indexed by its items)."""
    if args.retriever == "dense" and not args.sessions and not args.session_signals:
        return None  # (a ranker needs the blend: ServeAppArgs refuses it with dense)
    from coldstart.ranking.config import load_retrieval_config
    from coldstart.ranking.dense import DenseRecommender
    from coldstart.ranking.pipeline import RankingPipeline
    from coldstart.signals.sessions import SessionData

    config = load_retrieval_config(args.retrieval_config)
    data = SessionData.read(args.sessions, attributes=args.attributes, config=config) if args.sessions else None

    def build(loaded, signals=None):
        if signals is None and data is not None:
            signals = data.fit(loaded.index.ids)
        ranker = None
        if args.ranker:  # read with each version: `latest` follows jobs.fit_ranker without a restart
            from coldstart.artifacts.store import open_store
            from coldstart.ranking.ranker_artifact import load_ranker

            ranker = load_ranker(open_store(args.store), args.ranker)
            logger.info("version %s ranks with learned ranker %s", loaded.version, ranker.ranker_id)
        return RankingPipeline(DenseRecommender(None, loaded, profile), config, retriever=args.retriever,
                               sessions=signals, ranker=ranker, reranker=args.reranker if ranker else None)

    return build


class FusedCore:
    """Every stage in one replica: :meth:`answer` takes a batch of requests and returns their answers."""

    def __init__(self, args: ServeAppArgs):
        from coldstart.encoders.encoder import Encoder
        from coldstart.serving.query_encoding import CachedQueryEncoder

        self.retrieval = RetrievalCore(args)
        self.encoder = CachedQueryEncoder(Encoder(args.encoder_config()), cache_size=args.query_cache_size)
        self.reranker = None
        self.rerank_depth = 0
        if args.separate_reranker:
            from coldstart.ranking.rerank import CrossEncoder

            self.reranker_config = args.reranker_config()
            self.reranker = CrossEncoder(self.reranker_config)
            self.rerank_depth = args.rerank_depth

    def embed(self, bodies: Sequence[RecommendRequest]) -> list[QueryEmbedding | None]:
        """Each request's query embedding (None without a query): hits from the cache, the misses of the whole
        batch in one forward pass."""
        keys = [self.encoder.key(b.query) if has_query(b) else None for b in bodies]
        found = {k: hit for k in set(keys) - {None} for hit in [self.encoder.cached(k)] if hit is not None}
        misses = [k for k in dict.fromkeys(keys) if k is not None and k not in found]
        if misses:
            found.update(zip(misses, self.encoder.encode(misses)))
        return [found[k] if k is not None else None for k in keys]

    def answer(self, bodies: Sequence[RecommendRequest]) -> list[Answer]:
        """Blocking (the forward passes and the search): the replica runs it in a worker thread."""
        embeddings = self.embed(bodies)
        encoded = time.perf_counter()
        queries = retrieval_queries(bodies, embeddings, rerank_depth=self.rerank_depth)
        results = self.retrieval.retrieve(queries)
        retrieved = time.perf_counter()
        chosen = rerank_jobs(queries, results) if self.reranker is not None else []
        if chosen:
            from coldstart.ranking.rerank import rerank_hits

            reordered = rerank_hits(self.reranker, [bodies[n].query for n in chosen],
                                    [[(i.item_id, i.score) for i in results[n].items] for n in chosen],
                                    [[i.text for i in results[n].items[: self.rerank_depth]] for n in chosen],
                                    depth=self.reranker_config.depth, first_weight=self.reranker_config.first_weight)
            apply_rerank(bodies, results, chosen, reordered)
        reranked = time.perf_counter()
        return [Answer(e, r, encoded, retrieved, reranked) for e, r in zip(embeddings, results)]

    def close(self) -> None:
        self.retrieval.close()
