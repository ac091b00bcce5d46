"""Prometheus metrics of the serving app, kept by the HTTP ingress and rendered as text for ``GET /metrics``.

Every request passes the ingress, and every answer from the encoder and the retriever comes back through it with
what happened (cache hit, forward batch size, known and unknown clicks), so request-path metrics are counted in
one place with no extra calls. The index's state (version, swaps, refused versions) is read from a retriever when
the metrics are scraped.

Each ingress replica has its own :class:`prometheus_client.CollectorRegistry` (never the process-global one, which
Ray's own libraries also use); with more than one ingress replica, each scrape shows the replica that answered.

Metric names (all prefixed ``coldstart_``):

- ``requests_total{endpoint,status}``, ``request_latency_seconds{endpoint}`` (histogram);
- ``stage_latency_seconds{stage=encode|retrieve|rerank}`` (histogram; rerank only with a re-ranker);
- ``query_batch_size`` (histogram): distinct queries in the forward pass each cache-missing query rode in;
- ``search_batch_size`` (histogram): users in the FAISS search each /recommend rode in;
- ``query_cache_lookups_total{result=hit|miss}``, ``query_cache_hit_ratio``;
- ``click_lookups_total{result=known|unknown}``, ``click_vector_hit_ratio`` (clicked items found among the index's
  in-memory item vectors);
- ``index_version_info{version}`` (1 for the version served), ``index_items``, ``index_swaps``,
  ``index_rejected_versions``, ``index_loaded_timestamp_seconds``.
"""

from __future__ import annotations

from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

LATENCY_BUCKETS = (0.005, 0.01, 0.02, 0.03, 0.05, 0.075, 0.1, 0.15, 0.25, 0.5, 1.0, 2.5, 5.0)
BATCH_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256, 512)


class _Ratio:
    """Hits over lookups, as a gauge callback (0 before the first lookup)."""

    def __init__(self) -> None:
        self.hits = 0
        self.lookups = 0

    def add(self, hits: int, lookups: int) -> None:
        self.hits += hits
        self.lookups += lookups

    def __call__(self) -> float:
        return self.hits / self.lookups if self.lookups else 0.0


class ServiceMetrics:
    def __init__(self) -> None:
        r = self.registry = CollectorRegistry(auto_describe=True)
        self.requests = Counter("coldstart_requests", "HTTP requests by endpoint and status code.",
                                ["endpoint", "status"], registry=r)
        self.latency = Histogram("coldstart_request_latency_seconds", "Time in the service per request.",
                                 ["endpoint"], buckets=LATENCY_BUCKETS, registry=r)
        self.stages = Histogram("coldstart_stage_latency_seconds", "Time per stage of /recommend.",
                                ["stage"], buckets=LATENCY_BUCKETS, registry=r)
        self.batch_size = Histogram("coldstart_query_batch_size",
                                    "Distinct queries in the forward pass that encoded each cache-missing query.",
                                    buckets=BATCH_BUCKETS, registry=r)
        self.search_batch_size = Histogram("coldstart_search_batch_size",
                                           "Users in the retriever search that answered each request.",
                                           buckets=BATCH_BUCKETS, registry=r)
        self.ingress_batch_size = Histogram("coldstart_ingress_batch_size",
                                            "Users an ingress replica sent on together (one encoder call and one "
                                            "retriever call for all of them).", buckets=BATCH_BUCKETS, registry=r)
        self.cache = Counter("coldstart_query_cache_lookups", "Query-embedding cache lookups.", ["result"],
                             registry=r)
        self.rejected = Counter("coldstart_overload_rejections", "Requests answered 503 because the replica held "
                                "max_pending requests already.", registry=r)
        self.clicks = Counter("coldstart_click_lookups", "Clicked ids looked up among the in-memory item vectors.",
                              ["result"], registry=r)
        self._cache_ratio, self._click_ratio = _Ratio(), _Ratio()
        Gauge("coldstart_query_cache_hit_ratio", "Query-embedding cache hits / lookups.",
              registry=r).set_function(self._cache_ratio)
        Gauge("coldstart_click_vector_hit_ratio", "Clicked ids found in the index / clicked ids looked up.",
              registry=r).set_function(self._click_ratio)
        self.index_version = Gauge("coldstart_index_version_info", "1 for the index version being served.",
                                   ["version"], registry=r)
        self.index_items = Gauge("coldstart_index_items", "Products in the served index version.", registry=r)
        self.index_swaps = Gauge("coldstart_index_swaps", "Index versions swapped in since the retriever started.",
                                 registry=r)
        self.index_rejected = Gauge("coldstart_index_rejected_versions",
                                    "Published versions the retriever refused (mismatch or corrupt).", registry=r)
        self.index_loaded = Gauge("coldstart_index_loaded_timestamp_seconds",
                                  "When the served version was loaded (Unix time).", registry=r)

    def observe_request(self, endpoint: str, status: int, seconds: float) -> None:
        self.requests.labels(endpoint=endpoint, status=str(status)).inc()
        self.latency.labels(endpoint=endpoint).observe(seconds)

    def observe_stage(self, stage: str, seconds: float) -> None:
        self.stages.labels(stage=stage).observe(seconds)

    def observe_query(self, *, cache_hit: bool, batch_size: int) -> None:
        self.cache.labels(result="hit" if cache_hit else "miss").inc()
        self._cache_ratio.add(int(cache_hit), 1)
        if not cache_hit:
            self.batch_size.observe(batch_size)

    def observe_rejected(self) -> None:
        self.rejected.inc()

    def observe_ingress_batch(self, size: int) -> None:
        self.ingress_batch_size.observe(size)

    def observe_search(self, *, batch_size: int) -> None:
        self.search_batch_size.observe(batch_size)

    def observe_clicks(self, *, known: int, unknown: int) -> None:
        if known:
            self.clicks.labels(result="known").inc(known)
        if unknown:
            self.clicks.labels(result="unknown").inc(unknown)
        self._click_ratio.add(known, known + unknown)

    def render(self, index_status: dict[str, Any] | None) -> bytes:
        """Prometheus text exposition, with the index gauges set from a retriever's ``status()``."""
        self.index_version.clear()
        if index_status and index_status.get("version"):
            self.index_version.labels(version=index_status["version"]).set(1)
            self.index_items.set(index_status.get("items") or 0)
            self.index_loaded.set(index_status.get("loaded_at") or 0)
        if index_status:
            self.index_swaps.set(index_status.get("swaps", 0))
            self.index_rejected.set(len(index_status.get("rejected", {})))
        return generate_latest(self.registry)
