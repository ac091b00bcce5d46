"""Arguments of the serving application (``args:`` in ``deploy/serve.yaml``, or ``key=value`` on ``serve run``).

A pydantic model because it crosses a process boundary: Ray Serve validates the config file's ``args`` into it
before anything starts, so a typo ("batch_wait_msec") fails the deploy with the field's name instead of a replica
crash later. ``store`` may come from ``COLDSTART_STORE`` instead, as the KubeRay manifests set it. Replica counts, CPUs and autoscaling are not here: they are Serve's own deployment options in the
same config file.
"""

from __future__ import annotations

import os
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from coldstart.encoders.encoder import POOLINGS, EncoderConfig
from coldstart.ranking.user_vector import ProfileConfig

STORE_ENV = "COLDSTART_STORE"


class ServeAppArgs(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    topology: Literal["fused", "composed"] = Field("fused", description=(
        "fused: one deployment holds every stage (normalise → cache → one batched encode → one batched search → "
        "blend → re-rank) — the default, and the fastest on a few cores. composed: an ingress with query-encoder, "
        "retriever (and re-ranker) deployments, each scaled and placed on its own (encoders on GPU nodes)."))
    store: str = Field(
        default_factory=lambda: os.environ.get(STORE_ENV, ""), validate_default=True,
        description=f"Where index versions are published: a local folder, file://… or s3://bucket/prefix. "
        f"Defaults to ${STORE_ENV} of the process that builds the app (how the KubeRay RayService sets it).",
    )
    model: str = Field("default", description="Query encoder: `default` (packaged all-MiniLM-L6-v2), a local "
                       "Hugging Face directory or s3://… prefix. Must be the encoder the index was built with.")
    max_length: int = Field(128, ge=1, le=8192, description="Tokens the encoder reads; longer queries are cut.")
    pooling: str = Field("mean", pattern="^(" + "|".join(POOLINGS) + ")$")
    backend: Literal["torch", "onnx", "onnx-int8"] = Field("torch", description=(
        "Encoder runtime: torch, onnx (fp32) or onnx-int8 (dynamic int8, CPU); exported once per model and cached."))
    torch_threads: int = Field(1, ge=1, le=64, description="Encoder intra-op threads per encoder replica (torch or "
                               "ONNX Runtime).")
    faiss_threads: int = Field(1, ge=1, le=64, description="FAISS OpenMP threads per retriever replica.")

    batch_max_size: int = Field(32, ge=1, le=512, description="Most queries encoded in one forward pass.")
    batch_wait_ms: float = Field(1.0, ge=0, le=1000, description="How long a batch waits to fill before it runs.")
    search_batch_max_size: int = Field(32, ge=1, le=512, description="Most users searched in one FAISS call.")
    search_batch_wait_ms: float = Field(0.5, ge=0, le=1000)
    ingress_batch_max_size: int = Field(32, ge=1, le=512, description=(
        "Most concurrent users an ingress replica sends on together: one encoder call and one retriever call for "
        "all of them instead of one each (1: no ingress batching)."))
    ingress_batch_wait_ms: float = Field(0.0, ge=0, le=1000, description=(
        "How long an ingress batch waits to fill. 0: a lone request goes at once; under load the batch fills from "
        "the requests that queued while the last one ran (max_ongoing_requests must be ≥ the batch size)."))
    max_pending: int = Field(48, ge=1, le=100_000, description=(
        "Requests a replica holds (its running batch and those waiting for the next); beyond that it answers 503 "
        "with Retry-After at once, so overload costs the excess requests a retry instead of every request its "
        "latency. Set the deployment's max_ongoing_requests above it, so Serve's router never queues."))
    query_cache_size: int = Field(10_000, ge=0, description="Query embeddings kept per encoder replica (0: off).")

    reranker: str | None = Field(None, description=(
        "A cross-encoder re-ranking the top `rerank_depth` of every request with a query (and no diversity): "
        "a Hugging Face one-label sequence classifier, local dir or s3://… (`jobs.finetune --table reranker`). "
        "None: the retriever's order is the answer."))
    rerank_depth: int = Field(30, ge=1, le=1000, description="Candidates the re-ranker re-scores per request.")
    rerank_first_weight: float = Field(1.0, ge=0, description="Weight of the retriever's z-scored score beside "
                                       "the cross-encoder's (chosen on dev, BENCHMARKS.md).")
    rerank_max_length: int = Field(64, ge=8, le=8192, description="Tokens of query + product text it reads.")
    rerank_batch_max_size: int = Field(16, ge=1, le=512, description="Most requests re-ranked in one pass.")
    rerank_batch_wait_ms: float = Field(1.0, ge=0, le=1000)

    retriever: Literal["dense", "bm25", "hybrid", "blend"] = Field("dense", description=(
        "The first stage, as `coldstart search --retriever`: dense (the encoder + FAISS), bm25, hybrid (rank fusion) "
        "or blend (weighted z-scores of the signals, weights from `retrieval_config`)."))
    retrieval_config: str | None = Field(None, description=(
        "A TOML/JSON file whose [retrieval] table sets the blend's weights (e.g. configs/train-cpu.toml); None: the "
        "defaults. The same file `coldstart search --config` reads, so HTTP and batch rank alike."))
    sessions: str | None = Field(None, description=(
        "Other users' sessions (a local JSON Lines file) for the clicks-only blend (retriever = blend), fitted "
        "over each version's items when it loads."))
    session_signals: bool = Field(False, description=(
        "Rank clicks with the session signals published beside each index version (`python -m jobs.fit_signals`, "
        "or the nightly job's [signals] table), loaded and hot-swapped with the index; needs retriever = 'blend'. "
        "The deployed alternative to `sessions`: no sessions file on the replicas, no fitting at load."))
    attributes: str | None = Field(None, description="With `sessions`: item_id + category/brand (or text read by "
                                   "[retrieval] attributes_pattern) for the category/brand signals.")

    ranker: str | None = Field(None, description=(
        "The learned ranker of the store (`python -m jobs.fit_ranker`): an id, or `latest` (read again with each "
        "index version); it orders the blend's candidates (retriever = 'blend'). A ranker trained with the "
        "cross-encoder's logit needs `reranker`, which then runs inside the ranking stage, not after it."))

    log_request_content: bool = Field(False, description=(
        "Also write each request's query text and click ids into the request log line. Off: the log holds the "
        "request id, version, counts and timing only, so no user data is kept server-side."))
    poll_interval_s: float = Field(10.0, gt=0, le=3600, description="How often a retriever checks for a new version.")
    mmr_candidates: int = Field(50, ge=1, le=1000, description="Top candidates a diversity request re-ranks.")
    query_weight: float = Field(0.5, ge=0, le=1, description="Share of the query in a profile with clicks.")
    click_decay: float = Field(0.7, gt=0, le=1, description="Weight of each older click relative to the next.")

    @field_validator("store")
    @classmethod
    def _store_given(cls, value: str) -> str:
        if not value.strip():
            raise ValueError(f"no index store: set `store` in the app's args or {STORE_ENV} in the environment "
                             "(a local folder, file://… or s3://bucket/prefix where `coldstart embed` publishes)")
        return value.strip()

    @model_validator(mode="after")
    def _sessions_need_the_blend(self) -> "ServeAppArgs":
        if (self.sessions or self.session_signals) and self.retriever != "blend":
            raise ValueError("sessions are blended with the other signals: set retriever = 'blend'")
        if self.sessions and self.session_signals:
            raise ValueError("give `sessions` (a file fitted at load) or `session_signals` (published ones), not both")
        if self.attributes and not self.sessions:
            raise ValueError("attributes are for the session signals: give `sessions` with them")
        if self.ranker and self.retriever != "blend":
            raise ValueError("the learned ranker orders the blend's candidates: set retriever = 'blend'")
        return self

    @property
    def separate_reranker(self) -> bool:
        """Whether the cross-encoder re-ranks after retrieval (its own stage), rather than being read by the
        learned ranker inside the ranking pipeline."""
        return bool(self.reranker) and not self.ranker

    def deployments(self) -> dict[str, int]:
        """The Serve deployments this topology builds, each with the batch size its ``@serve.batch`` step takes
        (its ``max_ongoing_requests`` must be at least that, or the batch never fills)."""
        if self.topology == "fused":
            return {"Ingress": self.ingress_batch_max_size}
        out = {"Ingress": self.ingress_batch_max_size, "QueryEncoder": self.batch_max_size,
               "Retriever": self.search_batch_max_size}
        if self.separate_reranker:
            out["Reranker"] = self.rerank_batch_max_size
        return out

    def encoder_config(self) -> EncoderConfig:
        return EncoderConfig(model=self.model, pooling=self.pooling, max_length=self.max_length,
                             batch_size=self.batch_max_size, num_threads=self.torch_threads, backend=self.backend)

    def reranker_config(self):
        """The re-ranker's :class:`~coldstart.ranking.rerank.RerankerConfig`, or None when none is configured."""
        from coldstart.ranking.rerank import RerankerConfig

        if not self.reranker:
            return None
        return RerankerConfig(model=self.reranker, max_length=self.rerank_max_length, depth=self.rerank_depth,
                              first_weight=self.rerank_first_weight)

    def profile_config(self) -> ProfileConfig:
        return ProfileConfig(query_weight=self.query_weight, click_decay=self.click_decay)
