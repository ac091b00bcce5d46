"""The online cold-start service on Ray Serve, in one of two topologies (``topology`` in the app's args).

**Fused** (the default, and the fastest on a few cores): one :class:`Ingress` deployment holds every stage
(:class:`~coldstart.serving.replica.FusedCore`). Concurrent requests are answered together by one call in a
worker thread — cache lookups, one forward pass over the misses, one search, the blend, the re-ranker — so
there are no handle hops and the batch the ingress collects is the batch every stage sees.

**Composed** (for clusters: encoders on GPU nodes, retrievers on CPU nodes, each scaled on its own):

- :class:`QueryEncoder` normalises the query, answers from its LRU cache when it can, and otherwise queues the
  query for the next forward pass: concurrent cache misses share one.
- :class:`Retriever` serves the live index version (:class:`~coldstart.artifacts.live_index.LiveIndex`: loaded and
  verified at start, swapped when a new one is published, a refused one never replaces the last good one) and
  its ranking pipeline. Users that arrive together are searched in one index call.
- :class:`Reranker` (only with ``reranker=`` in the args) re-scores the top ``rerank_depth`` candidates of every
  request that has a query with the cross-encoder (:mod:`coldstart.ranking.rerank`), requests that arrive
  together in one pass.
- :class:`Ingress` sends users that arrive together on together: one encoder call and one retriever call carry
  the whole group.

Either way :class:`Ingress` is the FastAPI app: validation with messages that say what to change,
``/recommend``, ``/healthz`` (every replica's version, from the replica board), ``/metrics``, ``/items/{item_id}``,
and ``/``, a page where a person tries it as a new user (:mod:`~coldstart.serving.page`).
Every batching step is a :class:`~coldstart.serving.batching.Batcher` (why not ``@serve.batch``: see there).

The logic lives in ``coldstart`` (:mod:`~coldstart.serving.query_encoding`, :mod:`~coldstart.serving.batch`,
:mod:`~coldstart.artifacts.live_index`, :mod:`~coldstart.serving.schema`, :mod:`~coldstart.serving.prometheus`); this module builds it
from :class:`~coldstart.serving.config.ServeAppArgs` and sets resources. Run it with
``serve run deploy/serve.yaml`` or ``serve run pipelines.serve_app:app_builder store=/path/to/store``.

No ``from __future__ import annotations`` here: FastAPI and Serve read the route and builder annotations at
runtime (string annotations turn the request body into query parameters).
"""

import asyncio
import functools
import logging
import threading
import time
import uuid
from typing import Any

import ray
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, JSONResponse, Response
from ray import serve
from ray.serve import Application
from ray.serve.handle import DeploymentHandle
from starlette.exceptions import HTTPException as StarletteHTTPException

from coldstart.serving.replica import Answer
from coldstart.serving.schema import (
    ErrorResponse,
    Health,
    Item,
    ReplicaHealth,
    RecommendRequest,
    RecommendResponse,
    RecommendedItem,
    Timing,
    explain_validation_errors,
)
from coldstart.serving.batch import RetrievalQuery, RetrievalResult
from coldstart.serving.batching import Batcher
from coldstart.serving.query_encoding import QueryEmbedding
from coldstart.serving.config import ServeAppArgs
from coldstart.serving.page import PAGE_HEADERS, asset, index_html
from coldstart.serving.prometheus import ServiceMetrics
from coldstart.serving.request_log import SERVE_EXTRA, content_fields, request_fields

logger = logging.getLogger(__name__)
# One line per request, through Serve's replica logger (a child of "ray.serve" reaches its handlers: the replica's
# log file, with Serve's `logging_config` level and encoding); a plain module logger is not configured in a replica.
request_log = logging.getLogger("ray.serve.coldstart")


# ------------------------------------------------------------------------------------------ query encoder


@serve.deployment(ray_actor_options={"num_cpus": 0.5}, max_ongoing_requests=64)
class QueryEncoder:
    def __init__(self, args: ServeAppArgs):
        from coldstart.encoders.encoder import Encoder
        from coldstart.serving.query_encoding import CachedQueryEncoder

        self.core = CachedQueryEncoder(Encoder(args.encoder_config()), cache_size=args.query_cache_size)
        self._batcher = Batcher(self._encode_batch, max_batch_size=args.batch_max_size,
                                wait_s=args.batch_wait_ms / 1000)

    async def embed(self, text: str) -> QueryEmbedding:
        """The query's ``(d,)`` vector, from the cache or from the next batched forward pass."""
        key = self.core.key(text)
        return self.core.cached(key) or await self._batcher.submit(key)

    async def embed_many(self, texts: list[str]) -> list[QueryEmbedding]:
        """Several users' queries in one call: hits at once, the misses queued together for the forward pass."""
        return list(await asyncio.gather(*(self.embed(t) for t in texts)))

    async def _encode_batch(self, keys: list[str]) -> list[QueryEmbedding]:
        # In a worker thread: the forward pass releases the GIL, and the event loop keeps queueing the next batch.
        return await asyncio.to_thread(self.core.encode, keys)


# ------------------------------------------------------------------------------------------ retriever


@serve.deployment(ray_actor_options={"num_cpus": 0.25}, max_ongoing_requests=64)
class Retriever:
    def __init__(self, args: ServeAppArgs):
        from coldstart.serving.replica import RetrievalCore

        self.core = RetrievalCore(args)  # loads LATEST here: a new replica takes traffic once it has an index
        self.board = ReplicaBoard("Retriever", self.core, args.poll_interval_s)
        self._batcher = Batcher(self._retrieve_batch, max_batch_size=args.search_batch_max_size,
                                wait_s=args.search_batch_wait_ms / 1000)

    async def retrieve(self, query: RetrievalQuery) -> RetrievalResult | None:
        """Recommendations for one user; None while no index version is loaded."""
        return await self._batcher.submit(query)

    async def retrieve_many(self, queries: list[RetrievalQuery]) -> list[RetrievalResult | None]:
        """Several users in one call, searched together (up to ``search_batch_max_size`` per index call)."""
        return list(await asyncio.gather(*(self._batcher.submit(q) for q in queries)))

    async def _retrieve_batch(self, queries: list[RetrievalQuery]) -> list[RetrievalResult | None]:
        return await asyncio.to_thread(self.core.retrieve, queries)

    def status(self) -> dict[str, Any]:
        return self.core.status()

    async def replicas(self) -> list[dict[str, Any]]:
        return await self.board.all()

    def item(self, item_id: str) -> tuple[str | None, dict[str, Any] | None]:
        return self.core.item(item_id)

    def check_health(self) -> None:
        """Serve calls this every few seconds; raising marks the replica unhealthy and Serve replaces it."""
        problem = self.core.health_problem()
        if problem:
            raise RuntimeError(problem)

    def __del__(self):
        for part in (getattr(self, "board", None), getattr(self, "core", None)):
            if part is not None:
                part.close()


# ------------------------------------------------------------------------------------------ replica board


@ray.remote(num_cpus=0)
class _Board:
    """Every replica's last status, for ``/healthz``: replicas report here; entries not refreshed for
    ``3 × poll interval`` (a replica that died) are dropped."""

    def __init__(self):
        self.entries: dict[str, dict[str, Any]] = {}

    def report(self, replica: str, status: dict[str, Any], ttl_s: float) -> None:
        self.entries[replica] = {**status, "replica": replica, "reported_at": time.time(), "ttl_s": ttl_s}

    def forget(self, replica: str) -> None:
        self.entries.pop(replica, None)

    def all(self) -> list[dict[str, Any]]:
        now = time.time()
        self.entries = {k: v for k, v in self.entries.items() if now - v["reported_at"] <= v["ttl_s"]}
        return sorted(self.entries.values(), key=lambda e: e["replica"])


class ReplicaBoard:
    """This replica's side of the board: its status reported every poll interval from a daemon thread.

    A named Ray actor per app rather than a Serve deployment: Serve routes a request to *one* replica, and
    ``/healthz`` must show them all. The first replica that reports creates it and owns it (so it goes with the
    app, nothing is left behind); if that replica dies the board goes too, and the next report re-creates it:
    within one poll interval every live replica is back on it."""

    def __init__(self, deployment: str, core, interval_s: float):
        app, replica = _replica_names()
        self.name = f"coldstart-replicas-{app}"
        self.replica = f"{deployment}#{replica}"
        self.core = core
        self.ttl_s = max(3 * interval_s, 5.0)
        self._stop = threading.Event()
        self._actor = None
        self._report()  # before the first request: /healthz never misses a replica that serves
        threading.Thread(target=self._loop, args=(interval_s,), daemon=True, name="replica-board").start()

    def _board(self):
        if self._actor is None:
            self._actor = _Board.options(name=self.name, namespace="coldstart", get_if_exists=True).remote()
        return self._actor

    def _report(self) -> None:
        try:
            status = self.core.status()
            problem = self.core.health_problem()
            ray.get(self._board().report.remote(self.replica, {
                "healthy": problem is None, "problem": problem, "ready": status["ready"],
                "index_version": status["version"], "items": status["items"], "swaps": status["swaps"],
                "rejected_versions": status["rejected"], "last_error": status["last_error"],
                "signals_version": status["signals"], "rejected_signals": status["rejected_signals"]}, self.ttl_s),
                timeout=10)
        except Exception as err:  # noqa: BLE001 - the board is for health pages; serving goes on without it
            logger.warning("could not report to the replica board %s: %s", self.name, err)
            self._actor = None

    def _loop(self, interval_s: float) -> None:
        while not self._stop.wait(interval_s):
            self._report()

    async def all(self) -> list[dict[str, Any]]:
        try:
            return await asyncio.wait_for(asyncio.wrap_future(self._board().all.remote().future()), timeout=10)
        except Exception as err:  # noqa: BLE001
            logger.warning("could not read the replica board %s: %s", self.name, err)
            self._actor = None
            return []

    def close(self) -> None:
        self._stop.set()
        try:
            self._board().forget.remote(self.replica)
        except Exception:  # noqa: BLE001 - shutting down
            pass


def _replica_names() -> tuple[str, str]:
    """(app name, replica id) of the replica this runs in."""
    context = serve.get_replica_context()
    return context.app_name, context.replica_id.unique_id


# ------------------------------------------------------------------------------------------ re-ranker


@serve.deployment(ray_actor_options={"num_cpus": 0.5}, max_ongoing_requests=64)
class Reranker:
    def __init__(self, args: ServeAppArgs):
        from coldstart.ranking.rerank import CrossEncoder

        self.config = args.reranker_config()
        self.cross = CrossEncoder(self.config)
        self._batcher = Batcher(self._rerank_batch, max_batch_size=args.rerank_batch_max_size,
                                wait_s=args.rerank_batch_wait_ms / 1000)

    async def rerank_many(self, jobs: list[tuple[str, list[tuple[str, float]], list[str]]]
                          ) -> list[list[tuple[str, float]]]:
        """``(query, hits, texts of the hits)`` per request → the hits re-ordered with fused scores."""
        return list(await asyncio.gather(*(self._batcher.submit(job) for job in jobs)))

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
          503: {"model": ErrorResponse, "description": "No index version is loaded yet, or the replica is "
                "overloaded; retry after the Retry-After seconds."}}


@functools.cache
def _metrics() -> ServiceMetrics:
    """This ingress replica's metrics (one registry per process, created on first use)."""
    return ServiceMetrics()


def _error(status: int, message: str, **headers: str) -> JSONResponse:
    return JSONResponse(ErrorResponse(error=message).model_dump(), status_code=status, headers=headers or None)


@app.exception_handler(RequestValidationError)
async def _invalid_request(request: Request, exc: RequestValidationError) -> JSONResponse:
    status, body = explain_validation_errors(list(exc.errors()))
    request_log.info("rejected request to %s: %d %s", request.url.path, status, body.error)
    return JSONResponse(body.model_dump(), status_code=status)


@app.exception_handler(StarletteHTTPException)
async def _http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
    """FastAPI's and Starlette's own errors — a body that is not UTF-8, an unknown path, a wrong method — in the
    API's error shape (``{"error": …}``), like every other 4xx."""
    hints = {400: "send a UTF-8 JSON object, e.g. " + '{"query": "office chair"}',
             404: "the API's paths are listed at /docs", 405: "see /docs for each path's methods"}
    detail = exc.detail if isinstance(exc.detail, str) else "request refused"
    message = f"{detail.rstrip('.')}: {hints[exc.status_code]}" if exc.status_code in hints else detail
    request_log.info("rejected request to %s: %d %s", request.url.path, exc.status_code, message)
    return _error(exc.status_code, message, **(exc.headers or {}))


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
    """The HTTP front. Fused (``encoder`` and ``retriever`` None): every stage runs in this replica, one batch
    step per group of concurrent requests. Composed: the group goes on to the encoder and retriever replicas
    in one call each (and to the re-ranker's)."""

    def __init__(self, args: ServeAppArgs, encoder: DeploymentHandle | None = None,
                 retriever: DeploymentHandle | None = None, reranker: DeploymentHandle | None = None):
        from coldstart.serving.replica import FusedCore

        self.encoder = encoder
        self.retriever = retriever
        self.reranker = reranker
        self.fused = FusedCore(args) if retriever is None else None
        self.board = ReplicaBoard("Ingress", self.fused.retrieval, args.poll_interval_s) if self.fused else None
        self.has_reranker = args.separate_reranker
        self.max_pending = args.max_pending
        self.log_request_content = args.log_request_content
        self.rerank_depth = args.rerank_depth if args.separate_reranker else 0
        self.max_length = args.max_length
        self._batcher = Batcher(self._answer, max_batch_size=args.ingress_batch_max_size,
                                wait_s=args.ingress_batch_wait_ms / 1000)

    async def _answer(self, bodies: list[RecommendRequest]) -> list[Answer]:
        """One answer per request; fused: one worker-thread call for the whole group (encode the misses, search,
        blend, re-rank), composed: one encoder call, one retriever call and (with a re-ranker) one re-ranker call
        for the whole group."""
        _metrics().observe_ingress_batch(len(bodies))
        if self.fused is not None:
            return await asyncio.to_thread(self.fused.answer, bodies)
        from coldstart.serving.replica import apply_rerank, has_query, rerank_jobs, retrieval_queries

        texts = [b.query for b in bodies if has_query(b)]
        found = iter(await self.encoder.embed_many.remote(texts) if texts else [])
        embeddings = [next(found) if has_query(b) else None for b in bodies]
        encoded = time.perf_counter()
        queries = retrieval_queries(bodies, embeddings, rerank_depth=self.rerank_depth)
        results = await self.retriever.retrieve_many.remote(queries)
        done = time.perf_counter()
        chosen = rerank_jobs(queries, results) if self.reranker is not None else []
        if chosen:
            reordered = await self.reranker.rerank_many.remote([(
                bodies[n].query, [(i.item_id, i.score) for i in results[n].items],
                [i.text for i in results[n].items[: self.rerank_depth]]) for n in chosen])
            apply_rerank(bodies, results, chosen, reordered)
        reranked = time.perf_counter()
        return [Answer(e, r, encoded, done, reranked) for e, r in zip(embeddings, results)]

    async def _status(self) -> dict[str, Any]:
        return self.fused.retrieval.status() if self.fused else await self.retriever.status.remote()

    async def _replicas(self) -> list[dict[str, Any]]:
        return await self.board.all() if self.fused else await self.retriever.replicas.remote()

    def check_health(self) -> None:
        """Fused: unhealthy when the store has a version this replica could not load (Serve replaces it)."""
        problem = self.fused.retrieval.health_problem() if self.fused else None
        if problem:
            raise RuntimeError(problem)

    def __del__(self):
        for part in (getattr(self, "board", None), getattr(self, "fused", None)):
            if part is not None:
                part.close()

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
        if self._batcher.pending >= self.max_pending:  # admission control: refuse at once, never queue without bound
            metrics.observe_rejected()
            return _error(503, f"overloaded: {self._batcher.pending} requests are waiting in this replica; retry "
                          "after the Retry-After seconds", **{"Retry-After": "1"})
        answer: Answer = await self._batcher.submit(body)
        embedding, result = answer.embedding, answer.result
        encoded, done, reranked = answer.encoded_at, answer.retrieved_at, answer.reranked_at
        if embedding is not None:
            metrics.observe_query(cache_hit=embedding.cache_hit, batch_size=embedding.batch_size)
        if result is None:
            return _error(503, "no index version is loaded yet: publish one with `coldstart embed` to the "
                          "service's store, or wait for the retriever to load it", **{"Retry-After": "5"})
        metrics.observe_clicks(known=result.known_clicks, unknown=len(result.unknown_clicks))
        metrics.observe_search(batch_size=result.batch_size)
        metrics.observe_stage("encode", encoded - started)
        metrics.observe_stage("retrieve", done - encoded)
        if self.has_reranker:
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
            signals=result.signals,
            signals_version=result.signals_version,
            timing_ms=Timing(total_ms=(time.perf_counter() - started) * 1000, encode_ms=(encoded - started) * 1000,
                             retrieve_ms=(done - encoded) * 1000,
                             rerank_ms=(reranked - done) * 1000 if self.has_reranker else 0.0),
        )
        # the fields also as structured data: one JSON object per line with Serve's `logging_config: encoding: JSON`
        request_log.info("recommend request_id=%s index_version=%s k=%d items=%d clicks=%d unknown_clicks=%d "
                         "cache_hit=%s latency_ms=%.1f", request_id, result.version, body.k, len(result.items),
                         len(body.clicks), len(result.unknown_clicks), response.cache_hit,
                         response.timing_ms.total_ms, extra={SERVE_EXTRA: request_fields(
                             request_id=request_id, index_version=result.version, k=body.k, items=len(result.items),
                             clicks=len(body.clicks), unknown_clicks=len(result.unknown_clicks),
                             cache_hit=response.cache_hit, latency_ms=response.timing_ms.total_ms)})
        if self.log_request_content:  # the operator asked for it (ServeAppArgs.log_request_content)
            request_log.info("recommend request_id=%s query=%r clicks=%s", request_id, body.query, list(body.clicks),
                             extra={SERVE_EXTRA: content_fields(request_id=request_id, query=body.query,
                                                                clicks=body.clicks)})
        return JSONResponse(response.model_dump(), headers={"X-Request-ID": request_id})

    @app.get("/healthz", response_model=Health, responses={503: {"model": Health}},
             summary="Ready once an index version is loaded")
    async def healthz(self) -> Response:
        """This replica's view (the fused replica's own version, or the retriever replica that answered), and
        every serving replica's version and health from the replica board."""
        status = await self._status()
        health = Health(status="ok" if status["ready"] else "loading", index_version=status["version"],
                        items=status["items"], last_error=status["last_error"], rejected_versions=status["rejected"],
                        signals_version=status["signals"], rejected_signals=status["rejected_signals"],
                        replicas=[ReplicaHealth.model_validate(r) for r in await self._replicas()])
        return JSONResponse(health.model_dump(), status_code=200 if status["ready"] else 503)

    @app.get("/metrics", summary="Prometheus metrics", response_class=Response,
             responses={200: {"content": {"text/plain": {}}}})
    async def metrics(self) -> Response:
        from prometheus_client import CONTENT_TYPE_LATEST

        status = await self._status()
        return Response(_metrics().render(status), media_type=CONTENT_TYPE_LATEST)

    @app.get("/", include_in_schema=False)
    async def page(self, request: Request) -> Response:
        """The try-it page (:mod:`coldstart.serving.page`): a person searches and clicks as a new user; the page
        keeps the clicks and calls ``/recommend`` like any client. Not in the OpenAPI schema: not part of the API."""
        return HTMLResponse(index_html(request.scope.get("root_path", "")), headers=PAGE_HEADERS)

    @app.get("/static/{name}", include_in_schema=False)
    async def page_asset(self, name: str) -> Response:
        found = asset(name)
        if found is None:
            return _error(404, f"no page asset {name!r}")
        content, media_type = found
        return Response(content, media_type=media_type, headers=PAGE_HEADERS)

    @app.get("/items/{item_id}", response_model=Item, responses={404: {"model": ErrorResponse}, 503: ERRORS[503]},
             summary="A product as stored in the served index version")
    async def item(self, item_id: str) -> Response:
        version, found = (self.fused.retrieval.item(item_id) if self.fused
                          else await self.retriever.item.remote(item_id))
        if version is None:
            return _error(503, "no index version is loaded yet; retry shortly", **{"Retry-After": "5"})
        if found is None:
            return _error(404, f"item {item_id!r} is not in index version {version}: check the id")
        return JSONResponse(Item(**found, index_version=version).model_dump())


# ------------------------------------------------------------------------------------------ builder


def build_app(args: ServeAppArgs, *, runtime_env: dict[str, Any] | None = None) -> Application:
    """The deployments wired together: fused, one ``Ingress`` deployment that holds every stage; composed,
    ``Ingress`` → ``QueryEncoder`` + ``Retriever`` (+ ``Reranker`` when ``args.reranker`` names one). ``runtime_env``
    (e.g. ``{"env_vars": {"AWS_ENDPOINT_URL": …}}``) goes to every replica, as an application's ``runtime_env`` in a
    config file does; credentials in it are refused (Ray logs a runtime_env in clear text)."""
    from pipelines.ray_runtime import refuse_secrets

    refuse_secrets((runtime_env or {}).get("env_vars"), where="the Serve app's runtime_env")
    ingress, encoder, retriever, ranker = Ingress, QueryEncoder, Retriever, Reranker
    if runtime_env:
        ingress, encoder, retriever, ranker = (
            d.options(ray_actor_options={**d.ray_actor_options, "runtime_env": runtime_env})
            for d in (Ingress, QueryEncoder, Retriever, Reranker))
    if args.topology == "fused":
        return ingress.options(ray_actor_options={**ingress.ray_actor_options, "num_cpus": 0.5}).bind(args)
    return ingress.bind(args, encoder.bind(args), retriever.bind(args),
                        ranker.bind(args) if args.separate_reranker else None)


def app_builder(args: ServeAppArgs) -> Application:
    """The app for ``serve run`` / ``serve deploy`` (import path ``pipelines.serve_app:app_builder``).

    Serve validates the config's ``args`` into :class:`ServeAppArgs`; a plain dict is accepted too.
    """
    if not isinstance(args, ServeAppArgs):
        args = ServeAppArgs.model_validate(args)
    return build_app(args)
