"""The embedding job's steps, with the embedding itself passed in: catalog → validated text → vectors → version.

1. read and validate the catalog (in the driver: exact duplicate detection and row numbers need one pass over all
   ids, and it costs ~1 s per 100k rows);
2. plan: diff against the live version and keep the vectors of unchanged products (incremental by default);
3. embed the rest with the ``embed`` step the caller passes: :func:`embed_in_process` here (one process, the
   encoder's length-sorted batches), or the Ray Data actor pool of ``pipelines.embed`` for a cluster;
4. build the FAISS index, write items + vectors + index + quarantine + ``report.json`` (counts and seconds) as a
   new version, then its manifest, and move the ``LATEST`` pointer last;
5. retention: drop versions beyond the newest ``embed.retention`` and folders of runs that died before
   publishing, never the live version.

The whole run holds the store's publish lease (:mod:`coldstart.artifacts.lease`): a second run on the same store
stops at once with a message naming the first. A run with no catalog change publishes nothing. Counts always add up: rows read = embedded + carried over +
quarantined. ``LATEST`` is the last write, so a run killed at any point leaves the live version untouched.
"""

from __future__ import annotations

import json
import logging
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable

import numpy as np
import pyarrow as pa

from coldstart.artifacts.lease import Lease, acquire as acquire_lease
from coldstart.artifacts.manifest import EncoderInfo, latest_version, read_manifest
from coldstart.artifacts.retention import apply_retention
from coldstart.artifacts.store import ArtifactStore, S3Store, open_store
from coldstart.artifacts.versions import arrow_to_vectors, read_items, stage_version
from coldstart.catalog.incremental import EmbeddingPlan, plan_embedding
from coldstart.catalog.reader import ValidatedCatalog, validate_catalog
from coldstart.config import JobConfig
from coldstart.encoders.encoder import describe_encoder

logger = logging.getLogger(__name__)

REPORT_FILE = "report.json"

EmbedStep = Callable[[pa.Table, JobConfig], np.ndarray]
"""``(table of item_id, text; config) → (n, d) float32`` L2-normalised vectors in table order."""


@dataclass
class EmbedResult:
    version: str | None  # None when nothing changed and nothing was published
    published: bool
    counts: dict[str, int]
    seconds: dict[str, float] = field(default_factory=dict)
    store: str = ""
    full_reembed: bool = False  # every product was embedded (first run, another encoder, or incremental off)
    removed: list[str] = field(default_factory=list)  # version folders deleted by retention

    def summary(self) -> dict[str, Any]:
        return asdict(self)


def embed_in_process(table: pa.Table, config: JobConfig) -> np.ndarray:
    """The embedding step without Ray: the configured encoder in this process (length-sorted batches)."""
    from coldstart.encoders.encoder import Encoder
    from coldstart.progress import Progress

    if table.num_rows == 0:
        return np.empty((0, 0), dtype=np.float32)
    encoder = Encoder(config.encoder)
    with Progress(table.num_rows, desc="embed", unit="titles") as progress:
        return encoder.encode(table.column("text").to_pylist(), on_batch=progress.update)


def _live_items(store: ArtifactStore) -> tuple[str | None, pa.Table | None, EncoderInfo | None]:
    version = latest_version(store)
    if version is None:
        return None, None, None
    manifest = read_manifest(store, version)
    with tempfile.TemporaryDirectory(prefix="coldstart-live-") as tmp:
        table = read_items(store, manifest, Path(tmp))
    return version, table, manifest.encoder


def _save_rejected(store: ArtifactStore, catalog: ValidatedCatalog) -> str:
    key = f"rejected/{time.strftime('%Y%m%dT%H%M%S')}/quarantine.jsonl"
    store.write_bytes(key, catalog.quarantine_jsonl())
    return f"{store.uri}/{key}"


def fit_signals(store: ArtifactStore, version: str, item_ids: list[str], config: JobConfig):
    """The session signals of ``config.signals`` fitted over ``version``'s items and published beside it."""
    from coldstart.signals.artifact import fit_and_publish

    return fit_and_publish(store, version, item_ids, sessions=config.signals.sessions,
                           attributes=config.signals.attributes, config=config.retrieval)


def publish_catalog(config: JobConfig, embed: EmbedStep = embed_in_process) -> EmbedResult:
    """Run the whole job with ``embed`` as its embedding step; returns what was published and the counts. Raises
    with a clear cause on failure."""
    if not config.catalog:
        raise ValueError("no catalog given: pass --catalog URI or set `catalog` in the config file")
    t0 = time.perf_counter()
    store = open_store(config.store)
    if isinstance(store, S3Store):
        store.check_access()
    with acquire_lease(store, f"embed {config.catalog}", ttl_s=config.embed.lease_ttl_s) as lease:
        return _publish_holding(config, embed, store, lease, t0)


def _publish_holding(config: JobConfig, embed: EmbedStep, store: ArtifactStore, lease: Lease,
                     t0: float) -> EmbedResult:
    seconds: dict[str, float] = {}
    catalog = validate_catalog(config.catalog, config.schema)
    if catalog.rows_good == 0:
        where = _save_rejected(store, catalog)
        logger.error("every row was quarantined; reasons in %s", where)
        catalog.require_rows()
    seconds["validate"] = time.perf_counter() - t0

    encoder = describe_encoder(config.encoder)
    live_version, live_table, live_encoder = _live_items(store) if config.embed.incremental else (None, None, None)
    # the same space and the same backend: a version never mixes vectors from two backends
    same_encoder = (live_encoder is not None and live_encoder.fingerprint == encoder.fingerprint
                    and live_encoder.backend == encoder.backend)
    plan: EmbeddingPlan = plan_embedding(catalog.good, live_table, same_encoder=same_encoder)
    counts = {**catalog.counts(), **plan.counts(), "embedded": int(len(plan.embed_rows)),
              "carried_over": int(len(plan.unchanged_rows))}
    seconds["plan"] = time.perf_counter() - t0 - seconds["validate"]
    if plan.is_noop and catalog.rows_quarantined == _live_quarantined(store, live_version):
        logger.info("catalog unchanged since version %s: nothing to publish", live_version)
        if config.signals.sessions:  # the sessions grew since: refit them for the live version
            lease.check()
            fit_signals(store, live_version, live_table.column("item_id").to_pylist(), config)
        removed = apply_retention(store, keep=config.embed.retention)
        return EmbedResult(version=live_version, published=False, counts=counts,
                           seconds={**seconds, "total": time.perf_counter() - t0}, store=store.uri, removed=removed)
    if live_encoder is not None and not same_encoder:
        logger.info("the encoder changed since version %s (%s %s → %s %s): re-embedding everything", live_version,
                    live_encoder.fingerprint[:12], live_encoder.backend, encoder.fingerprint[:12], encoder.backend)
    logger.info("embedding %d products (%d new, %d changed), carrying over %d, dropping %d",
                counts["embedded"], counts["new"], counts["changed"], counts["carried_over"], counts["deleted"])

    t1 = time.perf_counter()
    to_embed = catalog.good.take(pa.array(plan.embed_rows))
    fresh = embed(to_embed, config)
    seconds["embed"] = time.perf_counter() - t1

    vectors = np.empty((catalog.rows_good, encoder.dim), dtype=np.float32)
    if len(plan.embed_rows):
        if fresh.shape[1] != encoder.dim:
            raise RuntimeError(f"the encoder produced dim {fresh.shape[1]}, its config says {encoder.dim}")
        vectors[plan.embed_rows] = fresh
    if len(plan.unchanged_rows):
        live_vectors = arrow_to_vectors(live_table.column("vector"), encoder.dim)
        vectors[plan.unchanged_rows] = live_vectors[plan.carry_from]

    t2 = time.perf_counter()
    staged = stage_version(
        store,
        items=catalog.good,
        vectors=vectors,
        encoder=encoder,
        index_config=config.index,
        catalog={"uri": config.catalog, "fingerprint": catalog.fingerprint(), **catalog.counts()},
        parent=live_version,
        extra={"counts": counts},
    )
    staged.put("quarantine.jsonl", catalog.quarantine_jsonl())
    seconds["index_and_write"] = time.perf_counter() - t2
    # The report is the version's last file, so its total covers everything but the manifest and LATEST writes.
    seconds["total"] = time.perf_counter() - t0
    report = {"version": staged.version, "parent": live_version, "catalog": config.catalog,
              "full_reembed": plan.full, "counts": counts, "seconds": seconds}
    staged.put(REPORT_FILE, json.dumps(report, indent=2).encode())
    if config.signals.sessions:  # before LATEST moves: a replica that sees the version finds its signals
        fit_signals(store, staged.version, catalog.good.column("item_id").to_pylist(), config)
    lease.check()  # fence: a run that stalled past its lease must not move LATEST over the run that took it
    manifest = staged.publish()
    removed = apply_retention(store, keep=config.embed.retention)
    return EmbedResult(version=manifest.version, published=True, counts=counts, seconds=seconds, store=store.uri,
                       full_reembed=plan.full, removed=removed)


def _live_quarantined(store: ArtifactStore, version: str | None) -> int | None:
    if version is None:
        return None
    return read_manifest(store, version).catalog.get("rows_quarantined")
