"""Session signals as a published artifact, beside the index version whose items they are indexed by.

Fitting co-visitation and attribute transitions from a sessions file takes seconds to minutes and needs the
file; a serving replica should do neither. ``jobs.fit_signals`` (and the nightly job, before it moves
``LATEST``) fits them once over a version's items and publishes::

    versions/<version>/signals/<signals_id>/signals.npz     co-visitation (sparse CSR), counts, transitions
    versions/<version>/signals/<signals_id>/manifest.json   what was fitted from what, the file's checksum,
                                                            the version and a checksum of its item ids
    versions/<version>/signals/LATEST                       {"signals": <signals_id>}: written last

A replica that loads ``version`` loads its latest signals with it, and swaps in newer ones (sessions are refitted
daily while the catalog may not change) as it swaps index versions: verified completely first, never half.
Signals whose item list does not match the version's (another catalog), or whose file fails its checksum, are
refused with :class:`~coldstart.artifacts.manifest.VersionRejected`; the replica keeps what it serves. Retention
removes them with their version.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
import io
import json
import logging
import secrets
from dataclasses import dataclass, field
from typing import Any, Sequence

import numpy as np
import scipy.sparse as sp

from coldstart.artifacts.manifest import VersionRejected, sha256, version_prefix
from coldstart.artifacts.store import ArtifactStore, StoreKeyMissing
from coldstart.signals.covisit import CoVisitation, CoVisitConfig
from coldstart.signals.sessions import SessionSignals, SessionSignalsInfo
from coldstart.signals.transitions import AttributeTransitions, TransitionConfig

logger = logging.getLogger(__name__)

SIGNALS_FILE = "signals.npz"
FORMAT = 1


@dataclass(frozen=True)
class SignalsManifest:
    signals_id: str
    version: str  # the index version whose items these signals are indexed by
    created_at: str
    items: int
    items_sha256: str
    source: str  # the sessions file (and attributes) fitted from
    info: dict[str, Any]  # SessionSignalsInfo: sessions, clicks, unknown clicks, labelled items
    config: dict[str, Any]  # the covisit and transitions settings
    files: dict[str, dict[str, Any]] = field(default_factory=dict)
    format: int = FORMAT

    def to_json(self) -> bytes:
        return json.dumps(dataclasses.asdict(self), indent=2, sort_keys=True).encode()

    @classmethod
    def from_json(cls, data: bytes) -> "SignalsManifest":
        return cls(**json.loads(data))


def items_checksum(item_ids: Sequence[str]) -> str:
    """The item list's identity: ids in row order (signals are indexed by row)."""
    digest = hashlib.sha256()
    for item in item_ids:
        digest.update(item.encode())
        digest.update(b"\0")
    return digest.hexdigest()


def _prefix(version: str) -> str:
    return f"{version_prefix(version)}/signals"


def latest_signals(store: ArtifactStore, version: str) -> str | None:
    """The newest signals id published for ``version``, or None."""
    try:
        return json.loads(store.read_bytes(f"{_prefix(version)}/LATEST"))["signals"]
    except StoreKeyMissing:
        return None


def _to_npz(signals: SessionSignals) -> bytes:
    m = signals.covisit.matrix
    arrays = {"covisit_data": m.data, "covisit_indices": m.indices, "covisit_indptr": m.indptr,
              "counts": signals.covisit.counts}
    for name, t in signals.transitions.items():
        arrays |= {f"{name}_labels": np.array(t.labels, dtype=object), f"{name}_label_of": t.label_of,
                   f"{name}_matrix": t.matrix, f"{name}_share": t.share}
    sink = io.BytesIO()
    np.savez(sink, **{k: (v.astype(str) if v.dtype == object else v) for k, v in arrays.items()})
    return sink.getvalue()


def publish_signals(store: ArtifactStore, version: str, signals: SessionSignals, *, source: str) -> SignalsManifest:
    """Write ``signals`` (fitted over ``version``'s items) beside that version; ``LATEST`` of its signals last."""
    data = _to_npz(signals)
    signals_id = dt.datetime.now(dt.timezone.utc).strftime("%Y%m%dT%H%M%S%fZ") + "-" + secrets.token_hex(3)
    prefix = f"{_prefix(version)}/{signals_id}"
    store.write_bytes(f"{prefix}/{SIGNALS_FILE}", data)
    manifest = SignalsManifest(
        signals_id=signals_id, version=version,
        created_at=dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        items=len(signals.ids), items_sha256=items_checksum(signals.ids), source=source,
        info=dataclasses.asdict(signals.info),
        config={"covisit": dataclasses.asdict(signals.covisit.config),
                "transitions": dataclasses.asdict(next(iter(signals.transitions.values())).config)
                if signals.transitions else None},
        files={SIGNALS_FILE: {"sha256": sha256(data), "bytes": len(data)}})
    store.write_bytes(f"{prefix}/manifest.json", manifest.to_json())
    store.write_bytes(f"{_prefix(version)}/LATEST", json.dumps({"signals": signals_id}).encode())
    logger.info("published session signals %s for version %s: %s, %.1f MB", signals_id, version, signals.info,
                len(data) / 1e6)
    return manifest


def load_signals(store: ArtifactStore, version: str, item_ids: Sequence[str],
                 signals_id: str | None = None) -> tuple[SessionSignals, SignalsManifest]:
    """The signals ``signals_id`` (default: the latest) of ``version``, checked against ``item_ids`` — the
    loaded version's items, in row order — and their checksum. Raises ``VersionRejected`` on a mismatch,
    ``LookupError`` when the version has none."""
    signals_id = signals_id or latest_signals(store, version)
    if signals_id is None:
        raise LookupError(f"version {version} has no session signals: run `python -m jobs.fit_signals`")
    prefix = f"{_prefix(version)}/{signals_id}"
    manifest = SignalsManifest.from_json(store.read_bytes(f"{prefix}/manifest.json"))
    if manifest.version != version or manifest.items_sha256 != items_checksum(item_ids):
        raise VersionRejected(f"session signals {signals_id} were fitted over another item list ({manifest.items} "
                              f"items of version {manifest.version}) than version {version}'s {len(item_ids)}: "
                              "refit them for this version")
    data = store.read_bytes(f"{prefix}/{SIGNALS_FILE}")
    meta = manifest.files[SIGNALS_FILE]
    if len(data) != meta["bytes"] or sha256(data) != meta["sha256"]:
        raise VersionRejected(f"session signals {signals_id} of version {version}: {SIGNALS_FILE} does not match "
                              "its checksum (corrupt or partly written); refit them")
    arrays = np.load(io.BytesIO(data), allow_pickle=False)
    n = len(item_ids)
    matrix = sp.csr_matrix((arrays["covisit_data"], arrays["covisit_indices"], arrays["covisit_indptr"]), shape=(n, n))
    covisit = CoVisitation.from_arrays(item_ids, CoVisitConfig(**manifest.config["covisit"]), matrix, arrays["counts"])
    transitions = {}
    for name in manifest.info.get("labelled", {}):
        transitions[name] = AttributeTransitions.from_arrays(
            item_ids, TransitionConfig(**manifest.config["transitions"]), labels=arrays[f"{name}_labels"].tolist(),
            label_of=arrays[f"{name}_label_of"], matrix=arrays[f"{name}_matrix"], share=arrays[f"{name}_share"])
    signals = SessionSignals.from_parts(item_ids, covisit, transitions, SessionSignalsInfo(**manifest.info))
    return signals, manifest


def fit_and_publish(store: ArtifactStore, version: str, item_ids: Sequence[str], *, sessions: str,
                    attributes: str | None = None, config=None) -> SignalsManifest:
    """Fit the session signals from ``sessions`` (and ``attributes``) over ``version``'s ``item_ids`` with the
    co-visitation and transition settings of ``config`` (a RetrievalConfig), and publish them beside it.
    Files may be local or ``s3://`` (read with the store's credentials chain)."""
    from coldstart.signals.sessions import SessionData

    with _local(sessions) as sessions_path:
        data = SessionData.read(sessions_path, attributes=attributes, config=config)
    source = str(sessions) + (f" + {attributes}" if attributes else "")
    return publish_signals(store, version, data.fit(item_ids), source=source)


class _local:
    """A local path for a local path, or a temporary copy of an ``s3://`` object (removed on exit)."""

    def __init__(self, uri: str):
        self.uri = str(uri)
        self._tmp = None

    def __enter__(self) -> str:
        if not self.uri.startswith("s3://"):
            return self.uri
        import tempfile

        from coldstart.artifacts.store import open_store

        parent, _, name = self.uri.rpartition("/")
        self._tmp = tempfile.NamedTemporaryFile(prefix="coldstart-sessions-", suffix="-" + name)
        self._tmp.write(open_store(parent).read_bytes(name))
        self._tmp.flush()
        return self._tmp.name

    def __exit__(self, *exc) -> None:
        if self._tmp is not None:
            self._tmp.close()
