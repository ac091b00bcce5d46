"""Published versions of an embedding set and its index, each described by a manifest.

Layout below a store root::

    versions/<version_id>/manifest.json    what the version is (encoder, dimension, counts, checksums)
    versions/<version_id>/items.parquet    item_id, title, text, fingerprint, vector (float32, L2-normalised)
    versions/<version_id>/index.faiss      the FAISS index, rows in items.parquet order
    versions/<version_id>/...              quarantine.jsonl, report.json
    LATEST                                 {"version": <version_id>}: written last

A version's files are written first and the ``LATEST`` pointer last, so a reader that follows ``LATEST`` never
sees a half-written version. A reader checks the manifest against its own encoder (fingerprint and dimension)
and every file against its checksum, and refuses a mismatch with :class:`VersionRejected`.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import logging
import secrets
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from coldstart.artifacts.store import ArtifactStore, StoreKeyMissing

logger = logging.getLogger(__name__)

FORMAT = 1
LATEST_KEY = "LATEST"
VERSIONS_PREFIX = "versions"


class VersionRejected(RuntimeError):
    """A published version cannot be used: wrong encoder, wrong dimension, or corrupt files."""


@dataclass(frozen=True)
class EncoderInfo:
    name: str
    fingerprint: str  # the vector space: weights, tokenizer, pooling, max length (not the runtime)
    dim: int
    pooling: str
    max_length: int
    backend: str = "torch"  # what computed the vectors: torch, onnx (fp32) or onnx-int8; older manifests: torch


# Which item-vector backends a query backend may search (the query's backend → the version's). torch and onnx are
# the same fp32 arithmetic (cosine ≥ 0.9999); int8 vectors (per-channel, cosine 0.992 to fp32) mixed with fp32 ones
# cost at most 0.3 % of Home Depot dev NDCG@10 with the packaged MiniLM and 1.1 % with a fine-tuned encoder, about
# what int8 on both sides costs (BENCHMARKS.md, issue 13), so those pairs are accepted. USE v3 ("numpy") vectors
# live in their own space. This table is where a backend whose measured loss is too high would be refused.
COMPATIBLE_BACKENDS: dict[str, frozenset[str]] = {
    "torch": frozenset({"torch", "onnx", "onnx-int8"}),
    "onnx": frozenset({"torch", "onnx", "onnx-int8"}),
    "onnx-int8": frozenset({"torch", "onnx", "onnx-int8"}),
    "numpy": frozenset({"numpy"}),  # model = "multilingual" (USE v3): one engine only
}


@dataclass(frozen=True)
class Manifest:
    version: str
    created_at: str
    encoder: EncoderInfo
    metric: str
    index: dict[str, Any]
    rows: int
    catalog: dict[str, Any]
    files: dict[str, dict[str, Any]]
    parent: str | None = None
    format: int = FORMAT
    extra: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> bytes:
        return json.dumps(asdict(self), indent=2, sort_keys=True).encode()

    @classmethod
    def from_json(cls, data: bytes) -> "Manifest":
        raw = json.loads(data)
        if raw.get("format") != FORMAT:
            raise VersionRejected(f"manifest format {raw.get('format')!r} is not supported (expected {FORMAT})")
        raw["encoder"] = EncoderInfo(**raw["encoder"])
        return cls(**raw)


def new_version_id(now: dt.datetime | None = None) -> str:
    """A sortable, unique id: UTC timestamp plus random suffix, e.g. ``20261130T071500Z-3f9a1c2e``."""
    now = now or dt.datetime.now(dt.timezone.utc)
    return now.strftime("%Y%m%dT%H%M%S") + f"{now.microsecond // 1000:03d}Z-" + secrets.token_hex(4)


def version_created_at(version: str) -> dt.datetime | None:
    """The UTC time encoded in an id made by :func:`new_version_id`; None for an id of another form."""
    try:
        return dt.datetime.strptime(version[:15], "%Y%m%dT%H%M%S").replace(tzinfo=dt.timezone.utc)
    except ValueError:
        return None


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def file_sha256(path: Path) -> str:
    """The SHA-256 of a file, read in 1 MB chunks."""
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def version_prefix(version: str) -> str:
    return f"{VERSIONS_PREFIX}/{version}"


class VersionWriter:
    """Stages the files of one new version; :meth:`publish` writes the manifest and then moves ``LATEST``."""

    def __init__(self, store: ArtifactStore, version: str | None = None):
        self.store = store
        self.version = version or new_version_id()
        self.files: dict[str, dict[str, Any]] = {}

    def put(self, name: str, data: bytes) -> None:
        self.store.write_bytes(f"{version_prefix(self.version)}/{name}", data)
        self.files[name] = {"sha256": sha256(data), "bytes": len(data)}

    def put_file(self, name: str, path: Path) -> None:
        """Like :meth:`put` for a local file, streamed (large indexes and tables never sit in memory as bytes)."""
        path = Path(path)
        self.store.write_file(f"{version_prefix(self.version)}/{name}", path)
        self.files[name] = {"sha256": file_sha256(path), "bytes": path.stat().st_size}

    def write_manifest(self, **fields: Any) -> Manifest:
        manifest = Manifest(
            version=self.version,
            created_at=dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
            files=dict(self.files),
            **fields,
        )
        self.store.write_bytes(f"{version_prefix(self.version)}/manifest.json", manifest.to_json())
        return manifest

    def publish(self, **fields: Any) -> Manifest:
        """Write the manifest, then point ``LATEST`` at this version (the last write)."""
        manifest = self.write_manifest(**fields)
        set_latest(self.store, self.version)
        logger.info("published version %s (%d rows) to %s", self.version, manifest.rows, self.store.uri)
        return manifest


def set_latest(store: ArtifactStore, version: str) -> None:
    store.write_bytes(LATEST_KEY, json.dumps({"version": version}).encode())


def latest_version(store: ArtifactStore) -> str | None:
    """The live version id, or None when nothing was published yet."""
    try:
        return json.loads(store.read_bytes(LATEST_KEY))["version"]
    except StoreKeyMissing:
        return None


def list_versions(store: ArtifactStore) -> list[str]:
    """Version ids that have a manifest, oldest first."""
    keys = store.list(VERSIONS_PREFIX)
    return sorted({k.split("/")[1] for k in keys if k.endswith("/manifest.json") and k.count("/") == 2})


def read_manifest(store: ArtifactStore, version: str) -> Manifest:
    return Manifest.from_json(store.read_bytes(f"{version_prefix(version)}/manifest.json"))


def check_encoder(manifest: Manifest, *, fingerprint: str, dim: int, backend: str = "torch") -> None:
    """Refuse a version embedded by another encoder (its vectors live in a different space), or by a backend whose
    vectors this query backend may not be compared with (:data:`COMPATIBLE_BACKENDS`)."""
    if manifest.encoder.dim != dim:
        raise VersionRejected(
            f"version {manifest.version} has dimension {manifest.encoder.dim} but the encoder produces {dim}: "
            "re-embed the catalog with this encoder, or load the encoder it was built with "
            f"({manifest.encoder.name})"
        )
    if manifest.encoder.fingerprint != fingerprint:
        raise VersionRejected(
            f"version {manifest.version} was embedded with encoder {manifest.encoder.name} "
            f"(fingerprint {manifest.encoder.fingerprint[:12]}), not with this one ({fingerprint[:12]}): "
            "re-embed the catalog with this encoder, or serve the encoder the version was built with"
        )
    items = manifest.encoder.backend
    if items not in COMPATIBLE_BACKENDS.get(backend, frozenset()):
        raise VersionRejected(
            f"version {manifest.version} holds {items} vectors, which {backend} queries may not search: re-embed "
            f"the catalog with `--backend {backend}`, or query with one of "
            f"{sorted(b for b, ok in COMPATIBLE_BACKENDS.items() if items in ok)}"
        )


def read_verified_file(store: ArtifactStore, manifest: Manifest, name: str, dest: Path) -> Path:
    """Download one file of a version to ``dest`` (streamed) and check it against the manifest's checksum."""
    meta = manifest.files.get(name)
    if meta is None:
        raise VersionRejected(f"version {manifest.version} has no file {name!r} in its manifest")
    path = store.read_to_file(f"{version_prefix(manifest.version)}/{name}", Path(dest))
    if path.stat().st_size != meta["bytes"] or file_sha256(path) != meta["sha256"]:
        raise VersionRejected(
            f"version {manifest.version}: {name} does not match its checksum (corrupt or partly written); "
            "re-publish the version"
        )
    return path


def read_verified(store: ArtifactStore, manifest: Manifest, name: str) -> bytes:
    """Read one file of a version and check it against the manifest's checksum."""
    meta = manifest.files.get(name)
    if meta is None:
        raise VersionRejected(f"version {manifest.version} has no file {name!r} in its manifest")
    data = store.read_bytes(f"{version_prefix(manifest.version)}/{name}")
    if len(data) != meta["bytes"] or sha256(data) != meta["sha256"]:
        raise VersionRejected(
            f"version {manifest.version}: {name} does not match its checksum (corrupt or partly written); "
            "re-publish the version"
        )
    return data
