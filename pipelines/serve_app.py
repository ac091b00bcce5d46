"""The online cold-start service on Ray Serve: HTTP ingress → query encoder → retriever (→ re-ranker).

Three deployments, composed with deployment handles, and a fourth when a re-ranker is configured:

- :class:`QueryEncoder` normalises the query, answers from its LRU cache when it can, and otherwise queues the
  query for ``@serve.batch``: concurrent cache misses share one forward pass.
- :class:`Retriever` serves the live index version (:class:`~coldstart.artifacts.live_index.LiveIndex`: loaded and verified
  at start, swapped when a new one is published, a refused one never replaces the last good one). Users that
  arrive together are searched in one index call, then re-ranked with MMR when they asked for diversity.
- :class:`Reranker` (only with ``reranker=`` in the args) re-scores the top ``rerank_depth`` candidates of every
  request that has a query with the cross-encoder (:mod:`coldstart.ranking.rerank`); requests that arrive together share
  one forward pass. Clicks-only and diversity requests keep the retriever's order.
- :class:`Ingress` is the FastAPI app: validation with messages that say what to change, ``/recommend``,
  ``/healthz``, ``/metrics``, ``/items/{item_id}``, and the request metrics. Users that arrive together are sent
  on together too (``@serve.batch`` again): one call to the encoder and one to the retriever carry the whole
  group, so a handle hop is paid per group, not per user, and the encoder sees the group's misses at once.

The logic lives in ``coldstart`` (:mod:`~coldstart.serving.query_encoding`, :mod:`~coldstart.serving.batch`,
:mod:`~coldstart.artifacts.live_index`, :mod:`~coldstart.serving.schema`, :mod:`~coldstart.serving.prometheus`); this module builds it
from :class:`~coldstart.serving.config.ServeAppArgs` and sets resources. Run it with
``serve run deploy/serve.yaml`` or ``serve run pipelines.serve_app:app_builder store=/path/to/store``.

No ``from __future__ import annotations`` here: FastAPI and Serve read the route and builder annotations at
runtime (string annotations turn the request body into query parameters).
"""

import asyncio
import dataclasses
import functools
import logging
import threading
import time
import uuid
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from ray import serve
from ray.serve import Application
from ray.serve.handle import DeploymentHandle

from coldstart.serving.schema import (
    ErrorResponse,
    Health,
    Item,
    RecommendRequest,
    RecommendResponse,
    RecommendedItem,
    Timing,
    explain_validation_errors,
)
from coldstart.serving.query_encoding import QueryEmbedding
from coldstart.serving.batch import RetrievalQuery, RetrievalResult
from coldstart.serving.config import ServeAppArgs
from coldstart.serving.prometheus import ServiceMetrics

logger = logging.getLogger(__name__)


# ------------------------------------------------------------------------------------------ query encoder


@serve.deployment(ray_actor_options={"num_cpus": 0.5}, max_ongoing_requests=64)
class QueryEncoder:
    def __init__(self, args: ServeAppArgs):
        from coldstart.encoders.encoder import Encoder
        from coldstart.serving.query_encoding import CachedQueryEncoder

        self.core = CachedQueryEncoder(Encoder(args.encoder_config()), cache_size=args.query_cache_size)
        self._encode_batch.set_max_batch_size(args.batch_max_size)
        self._encode_batch.set_batch_wait_timeout_s(args.batch_wait_ms / 1000)

    async def embed(self, text: str) -> QueryEmbedding:
        """The query's ``(d,)`` vector, from the cache or from the next batched forward pass."""
        key = self.core.key(text)
        return self.core.cached(key) or await self._encode_batch(key)

    async def embed_many(self, texts: list[str]) -> list[QueryEmbedding]:
        """Several users' queries in one call: hits at once, the misses queued together for the forward pass."""
        return list(await asyncio.gather(*(self.embed(t) for t in texts)))

    @serve.batch(max_batch_size=32, batch_wait_timeout_s=0.001)  # both reset from the args in __init__
    async def _encode_batch(self, keys: list[str]) -> list[QueryEmbedding]:
        # In a worker thread: the forward pass releases the GIL, and the event loop keeps queueing the next batch.
        return await asyncio.to_thread(self.core.encode, keys)


# ------------------------------------------------------------------------------------------ retriever


@serve.deployment(ray_actor_options={"num_cpus": 0.25}, max_ongoing_requests=64)
class Retriever:
    def __init__(self, args: ServeAppArgs):
        from coldstart.encoders.encoder import describe_encoder
        from coldstart.ranking.faiss_index import import_faiss
        from coldstart.artifacts.versions import load_version
        from coldstart.artifacts.live_index import LiveIndex
        from coldstart.serving.batch import ServingVersion
        from coldstart.artifacts.store import open_store

        import_faiss().omp_set_num_threads(args.faiss_threads)
        expect = describe_encoder(args.encoder_config())  # from the model files: no weights loaded here
        store = open_store(args.store)
        self.profile = args.profile_config()
        self.mmr_candidates = args.mmr_candidates
        pipeline_for = _pipeline_factory(args, self.profile)
        self.live = LiveIndex(store, lambda version: ServingVersion.prepare(
            load_version(store, version, expect=expect), pipeline_for))
        self.live.start()  # in the constructor: a new replica takes traffic only once it has an index
        self._retrieve_batch.set_max_batch_size(args.search_batch_max_size)
        self._retrieve_batch.set_batch_wait_timeout_s(args.search_batch_wait_ms / 1000)
        self._stop = threading.Event()
        self._poller = threading.Thread(target=self._poll, args=(args.poll_interval_s,), daemon=True,
                                        name="index-poller")
        self._poller.start()

    def _poll(self, interval_s: float) -> None:
        while not self._stop.wait(interval_s):
            self.live.refresh()

    async def retrieve(self, query: RetrievalQuery) -> RetrievalResult | None:
        """Recommendations for one user; None while no index version is loaded."""
        return await self._retrieve_batch(query)

    async def retrieve_many(self, queries: list[RetrievalQuery]) -> list[RetrievalResult | None]:
        """Several users in one call, searched together (up to ``search_batch_max_size`` per index call)."""
        return list(await asyncio.gather(*(self._retrieve_batch(q) for q in queries)))

    @serve.batch(max_batch_size=32, batch_wait_timeout_s=0.0005)  # both reset from the args in __init__
    async def _retrieve_batch(self, queries: list[RetrievalQuery]) -> list[RetrievalResult | None]:
        from coldstart.serving.batch import retrieve

        live = self.live.live  # one read: the whole batch is answered by this version, even if a swap follows
        if live is None:
            return [None] * len(queries)
        return await asyncio.to_thread(retrieve, live.value, queries, profile=self.profile,
                                       mmr_candidates=self.mmr_candidates)

    def status(self) -> dict[str, Any]:
        status = self.live.status()
        live = self.live.live
        status["items"] = len(live.value) if live else None
        return status

    def item(self, item_id: str) -> tuple[str | None, dict[str, Any] | None]:
        """(live version, the product as stored in it); (None, None) while no version is loaded."""
        live = self.live.live
        if live is None:
            return None, None
        return live.version, live.value.loaded.item(item_id)

    def __del__(self):
        stop = getattr(self, "_stop", None)
        if stop is not None:
            stop.set()


def _pipeline_factory(args: ServeAppArgs, profile):
    """``loaded version → RankingPipeline`` as ``coldstart search`` builds it from the same config, or None when
    the app ranks by the plain dense search. The sessions file is read once; its signals are fitted per version
    (they are indexed by the version's items)."""
    if args.retriever == "dense" and not args.sessions:
        return None
    from coldstart.ranking.config import load_retrieval_config
    from coldstart.ranking.dense import DenseRecommender
    from coldstart.ranking.pipeline import RankingPipeline
    from coldstart.signals.sessions import SessionData

    config = load_retrieval_config(args.retrieval_config)
    data = SessionData.read(args.sessions, attributes=args.attributes, config=config) if args.sessions else None

    def build(loaded):
        return RankingPipeline(DenseRecommender(None, loaded, profile), config, retriever=args.retriever,
                               sessions=data.fit(loaded.index.ids) if data is not None else None)

    return build


# ------------------------------------------------------------------------------------------ re-ranker


@serve.deployment(ray_actor_options={"num_cpus": 0.5}, max_ongoing_requests=64)
class Reranker:
    def __init__(self, args: ServeAppArgs):
        from coldstart.ranking.rerank import CrossEncoder

        self.config = args.reranker_config()
        self.cross = CrossEncoder(self.config)
        self._rerank_batch.set_max_batch_size(args.rerank_batch_max_size)
        self._rerank_batch.set_batch_wait_timeout_s(args.rerank_batch_wait_ms / 1000)

    async def rerank_many(self, jobs: list[tuple[str, list[tuple[str, float]], list[str]]]
                          ) -> list[list[tuple[str, float]]]:
        """``(query, hits, texts of the hits)`` per request → the hits re-ordered with fused scores."""
        return list(await asyncio.gather(*(self._rerank_batch(job) for job in jobs)))

    @serve.batch(max_batch_size=16, batch_wait_timeout_s=0.001)  # both reset from the args in __init__
    async def _rerank_batch(self, jobs: list[tuple[str, list[tuple[str, float]], list[str]]]
                            ) -> list[list[tuple[str, float]]]:
        from coldstart.ranking.rerank import rerank_hits

        return await asyncio.to_thread(rerank_hits, self.cross, [q for q, _, _ in jobs], [h for _, h, _ in jobs],
                                       [t for _, _, t in jobs], depth=self.config.depth,
                                       first_weight=self.config.first_weight)


# ------------------------------------------------------------------------------------------ HTTP ingress

API_DESCRIPTION = """Product recommendations for new users of an online shop, from what they typed and the
first products they clicked. The service keeps no user data: send the user's recent clicks with each request.

Every answer names the index version that produced it; the index is swapped without downtime when a new catalog
embedding is published. Errors are 4xx with an `error` message that says what to change."""

app = FastAPI(title="coldstart: cold-start recommendations", version="1", description=API_DESCRIPTION)

ERRORS = {400: {"model": ErrorResponse, "description": "The body is not JSON."},
          422: {"model": ErrorResponse, "description": "The JSON has a wrong or missing field."},
          503: {"model": ErrorResponse, "description": "No index version is loaded yet; retry shortly."}}


@functools.cache
def _metrics() -> ServiceMetrics:
    """This ingress replica's metrics (one registry per process, created on first use)."""
    return ServiceMetrics()


def _error(status: int, message: str, **headers: str) -> JSONResponse:
    return JSONResponse(ErrorResponse(error=message).model_dump(), status_code=status, headers=headers or None)


@app.exception_handler(RequestValidationError)
async def _invalid_request(request: Request, exc: RequestValidationError) -> JSONResponse:
    status, body = explain_validation_errors(list(exc.errors()))
    logger.info("rejected request to %s: %d %s", request.url.path, status, body.error)
    return JSONResponse(body.model_dump(), status_code=status)


class _CountRequests:
    """ASGI middleware: count every HTTP request by route template and status, and time it.

    Plain ASGI rather than ``@app.middleware("http")``: Starlette's BaseHTTPMiddleware re-streams every response
    through extra tasks, which costs measurable CPU per request on a 2-core machine.
    """

    def __init__(self, app):
        self.app = app

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        started = time.perf_counter()
        status = 500

        async def send_and_note_status(message):
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_and_note_status)
        finally:
            endpoint = getattr(scope.get("route"), "path", "unmatched")  # the template: /items/{item_id}
            _metrics().observe_request(endpoint, status, time.perf_counter() - started)


app.add_middleware(_CountRequests)


@serve.deployment(ray_actor_options={"num_cpus": 0.25}, max_ongoing_requests=256)
@serve.ingress(app)
class Ingress:
    def __init__(self, encoder: DeploymentHandle, retriever: DeploymentHandle, args: ServeAppArgs,
                 reranker: DeploymentHandle | None = None):
        self.encoder = encoder
        self.retriever = retriever
        self.reranker = reranker
        self.rerank_depth = args.rerank_depth if reranker is not None else 0
        self.max_length = args.max_length
        self._answer.set_max_batch_size(args.ingress_batch_max_size)
        self._answer.set_batch_wait_timeout_s(args.ingress_batch_wait_ms / 1000)

    @serve.batch(max_batch_size=32, batch_wait_timeout_s=0.001)  # both reset from the args in __init__
    async def _answer(self, bodies: list[RecommendRequest]) -> list[tuple]:
        """``(embedding or None, result or None, encoded_at, retrieved_at, reranked_at)`` per request; one encoder
        call, one retriever call and (with a re-ranker) one re-ranker call for the whole group."""
        _metrics().observe_ingress_batch(len(bodies))
        texts = [b.query for b in bodies if b.query and b.query.strip()]
        found = iter(await self.encoder.embed_many.remote(texts) if texts else [])
        embeddings = [next(found) if b.query and b.query.strip() else None for b in bodies]
        encoded = time.perf_counter()
        rerank = [e is not None and b.diversity == 0 and self.rerank_depth > 0 for b, e in zip(bodies, embeddings)]
        results = await self.retriever.retrieve_many.remote([RetrievalQuery(
            query=e.text if e else None, query_vector=e.vector if e else None,
            clicks=tuple(b.clicks), exclude=tuple(b.exclude), k=b.k, diversity=b.diversity,
            rerank_depth=self.rerank_depth if r else 0,
        ) for b, e, r in zip(bodies, embeddings, rerank)])
        done = time.perf_counter()
        chosen = [n for n, r in enumerate(results) if rerank[n] and r is not None and r.items]
        if chosen:
            reordered = await self.reranker.rerank_many.remote([(
                bodies[n].query, [(i.item_id, i.score) for i in results[n].items],
                [i.text for i in results[n].items[: self.rerank_depth]]) for n in chosen])
            for n, ranking in zip(chosen, reordered):
                by_id = {i.item_id: i for i in results[n].items}
                items = [dataclasses.replace(by_id[item_id], score=score, text=None)
                         for item_id, score in ranking[: bodies[n].k]]
                results[n] = dataclasses.replace(results[n], items=items)
        reranked = time.perf_counter()
        return [(e, r, encoded, done, reranked) for e, r in zip(embeddings, results)]

    @app.post("/recommend", response_model=RecommendResponse, responses=ERRORS,
              summary="Recommend products to a new user")
    async def recommend(self, body: RecommendRequest, request: Request) -> Response:
        """Rank the catalog for a new user from their query, their clicks, or both.

        The profile mixes the query's embedding with the clicked products' stored vectors (recent clicks weigh
        more); clicked and `exclude`d products are never returned.
        """
        started = time.perf_counter()
        request_id = request.headers.get("x-request-id") or uuid.uuid4().hex[:16]
        metrics = _metrics()
        embedding: QueryEmbedding | None
        result: RetrievalResult | None
        embedding, result, encoded, done, reranked = await self._answer(body)
        if embedding is not None:
            metrics.observe_query(cache_hit=embedding.cache_hit, batch_size=embedding.batch_size)
        if result is None:
            return _error(503, "no index version is loaded yet: publish one with `coldstart embed` to the "
                          "service's store, or wait for the retriever to load it", **{"Retry-After": "5"})
        metrics.observe_clicks(known=result.known_clicks, unknown=len(result.unknown_clicks))
        metrics.observe_search(batch_size=result.batch_size)
        metrics.observe_stage("encode", encoded - started)
        metrics.observe_stage("retrieve", done - encoded)
        if self.reranker is not None:
            metrics.observe_stage("rerank", reranked - done)

        warnings = []
        if embedding is not None and embedding.truncated:
            warnings.append(f"the query has {embedding.tokens} tokens and the encoder reads {self.max_length}: "
                            "the rest was ignored; put the words that matter first")
        if result.unknown_clicks:
            warnings.append(f"{len(result.unknown_clicks)} clicked id(s) are not in index version "
                            f"{result.version} and were ignored (see unknown_clicks)")
        if result.reason:
            warnings.append(result.reason)
        response = RecommendResponse(
            request_id=request_id,
            index_version=result.version,
            items=[RecommendedItem(item_id=i.item_id, title=i.title, score=i.score) for i in result.items],
            unknown_clicks=result.unknown_clicks,
            query_truncated=bool(embedding and embedding.truncated),
            cache_hit=embedding.cache_hit if embedding else None,
            warnings=warnings,
            signals=result.signals + (["reranker"] if self.reranker is not None and body.query and not body.diversity
                                      and result.items else []),
            timing_ms=Timing(total_ms=(time.perf_counter() - started) * 1000, encode_ms=(encoded - started) * 1000,
                             retrieve_ms=(done - encoded) * 1000,
                             rerank_ms=(reranked - done) * 1000 if self.reranker is not None else 0.0),
        )
        logger.info("recommend request_id=%s index_version=%s k=%d items=%d clicks=%d unknown_clicks=%d "
                    "cache_hit=%s latency_ms=%.1f", request_id, result.version, body.k, len(result.items),
                    len(body.clicks), len(result.unknown_clicks), response.cache_hit, response.timing_ms.total_ms)
        return JSONResponse(response.model_dump(), headers={"X-Request-ID": request_id})

    @app.get("/healthz", response_model=Health, responses={503: {"model": Health}},
             summary="Ready once an index version is loaded")
    async def healthz(self) -> Response:
        status = await self.retriever.status.remote()
        health = Health(status="ok" if status["ready"] else "loading", index_version=status["version"],
                        items=status["items"], last_error=status["last_error"], rejected_versions=status["rejected"])
        return JSONResponse(health.model_dump(), status_code=200 if status["ready"] else 503)

    @app.get("/metrics", summary="Prometheus metrics", response_class=Response,
             responses={200: {"content": {"text/plain": {}}}})
    async def metrics(self) -> Response:
        from prometheus_client import CONTENT_TYPE_LATEST

        status = await self.retriever.status.remote()
        return Response(_metrics().render(status), media_type=CONTENT_TYPE_LATEST)

    @app.get("/items/{item_id}", response_model=Item, responses={404: {"model": ErrorResponse}, 503: ERRORS[503]},
             summary="A product as stored in the served index version")
    async def item(self, item_id: str) -> Response:
        version, found = await self.retriever.item.remote(item_id)
        if version is None:
            return _error(503, "no index version is loaded yet; retry shortly", **{"Retry-After": "5"})
        if found is None:
            return _error(404, f"item {item_id!r} is not in index version {version}: check the id")
        return JSONResponse(Item(**found, index_version=version).model_dump())


# ------------------------------------------------------------------------------------------ builder


def build_app(args: ServeAppArgs, *, runtime_env: dict[str, Any] | None = None) -> Application:
    """The deployments wired together (the re-ranker only when ``args.reranker`` names one). ``runtime_env``
    (e.g. ``{"env_vars": {"AWS_ENDPOINT_URL": …}}``) goes to every replica, as an application's ``runtime_env`` in a
    config file does; credentials in it are refused (Ray logs a runtime_env in clear text)."""
    from pipelines.ray_runtime import refuse_secrets

    refuse_secrets((runtime_env or {}).get("env_vars"), where="the Serve app's runtime_env")
    ingress, encoder, retriever, ranker = Ingress, QueryEncoder, Retriever, Reranker
    if runtime_env:
        ingress, encoder, retriever, ranker = (
            d.options(ray_actor_options={**d.ray_actor_options, "runtime_env": runtime_env})
            for d in (Ingress, QueryEncoder, Retriever, Reranker))
    return ingress.bind(encoder.bind(args), retriever.bind(args), args,
                        ranker.bind(args) if args.reranker else None)


def app_builder(args: ServeAppArgs) -> Application:
    """The app for ``serve run`` / ``serve deploy`` (import path ``pipelines.serve_app:app_builder``).

    Serve validates the config's ``args`` into :class:`ServeAppArgs`; a plain dict is accepted too.
    """
    if not isinstance(args, ServeAppArgs):
        args = ServeAppArgs.model_validate(args)
    return build_app(args)
