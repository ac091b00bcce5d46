"""Writing and loading one published version: item table + vectors + FAISS index, checked against a manifest.

``items.parquet`` holds ``item_id, title, text, fingerprint`` and ``vector`` (``fixed_size_list<float32>[d]``,
L2-normalised) in index row order; ``index.faiss`` is the serialised FAISS index over the same rows.
"""

from __future__ import annotations

import json
import logging
import tempfile
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from coldstart.ranking.faiss_index import IndexConfig, VectorIndex
from coldstart.artifacts.manifest import (
    EncoderInfo,
    Manifest,
    VersionRejected,
    VersionWriter,
    check_encoder,
    latest_version,
    read_manifest,
    read_verified,
    read_verified_file,
)
from coldstart.artifacts.store import ArtifactStore

logger = logging.getLogger(__name__)

ITEMS_FILE = "items.parquet"
INDEX_FILE = "index.faiss"


def vectors_to_arrow(vectors: np.ndarray) -> pa.FixedSizeListArray:
    """``(n, d) float32`` → Arrow ``fixed_size_list<float32>[d]`` without a copy."""
    vectors = np.ascontiguousarray(vectors, dtype=np.float32)
    return pa.FixedSizeListArray.from_arrays(pa.array(vectors.reshape(-1)), vectors.shape[1])


def arrow_to_vectors(column: pa.ChunkedArray | pa.Array, dim: int) -> np.ndarray:
    """Arrow list column → ``(n, d) float32``."""
    if isinstance(column, pa.ChunkedArray):
        column = column.combine_chunks()
    flat = column.flatten().to_numpy(zero_copy_only=False).astype(np.float32, copy=False)
    return flat.reshape(-1, dim)


def items_table(items: pa.Table, vectors: np.ndarray) -> pa.Table:
    """Append the ``vector`` column to ``item_id, title, text, fingerprint``."""
    assert items.num_rows == vectors.shape[0]
    return items.select(["item_id", "title", "text", "fingerprint"]).append_column("vector", vectors_to_arrow(vectors))


@dataclass
class StagedVersion:
    """A version whose items and index are written but which is not published yet.

    More files (a report, the quarantine) can be added with :meth:`put` until :meth:`publish` writes the manifest
    and moves ``LATEST``. A run that dies before then leaves an unpublished folder that no reader follows and
    that :func:`coldstart.artifacts.retention.apply_retention` removes once it is past the grace period.
    """

    writer: VersionWriter
    fields: dict[str, Any]

    @property
    def version(self) -> str:
        return self.writer.version

    def put(self, name: str, data: bytes) -> None:
        self.writer.put(name, data)

    def publish(self) -> Manifest:
        return self.writer.publish(**self.fields)


def stage_version(
    store: ArtifactStore,
    *,
    items: pa.Table,
    vectors: np.ndarray,
    encoder: EncoderInfo,
    index_config: IndexConfig,
    catalog: dict[str, Any],
    parent: str | None = None,
    version: str | None = None,
    extra: dict[str, Any] | None = None,
) -> StagedVersion:
    """Build the index and write items + vectors + index as a new, not yet published, version."""
    index = VectorIndex.build(items.column("item_id").to_pylist(), vectors, index_config)
    writer = VersionWriter(store, version)  # after the build: the id's timestamp is when files start to appear
    with tempfile.TemporaryDirectory(prefix="coldstart-version-") as tmp:  # files, streamed up (multipart on S3)
        pq.write_table(items_table(items, vectors), Path(tmp) / ITEMS_FILE, compression="zstd")
        writer.put_file(ITEMS_FILE, Path(tmp) / ITEMS_FILE)
        index.save(Path(tmp) / INDEX_FILE)
        writer.put_file(INDEX_FILE, Path(tmp) / INDEX_FILE)
    fields = dict(encoder=encoder, metric="cosine", index=asdict(index_config), rows=items.num_rows,
                  catalog=catalog, parent=parent, extra=extra or {})
    return StagedVersion(writer, fields)


def write_version(
    store: ArtifactStore,
    *,
    extra_files: dict[str, bytes] | None = None,
    **stage_args: Any,
) -> Manifest:
    """Write items, vectors and the index as a new version, then publish it (``LATEST`` moves last).

    ``stage_args`` are those of :func:`stage_version`.
    """
    staged = stage_version(store, **stage_args)
    for name, data in (extra_files or {}).items():
        staged.put(name, data)
    return staged.publish()


@dataclass
class LoadedVersion:
    manifest: Manifest
    index: VectorIndex
    items: pa.Table  # item_id, title, text, fingerprint (no vectors: those live in index.vectors)

    @property
    def version(self) -> str:
        return self.manifest.version

    def item(self, item_id: str) -> dict[str, Any] | None:
        row = self.index.row_of.get(item_id)
        if row is None:
            return None
        return {c: self.items.column(c)[row].as_py() for c in ("item_id", "title", "text")}


def load_version(
    store: ArtifactStore,
    version: str | None = None,
    *,
    expect: EncoderInfo | None = None,
    index_config: IndexConfig | None = None,
) -> LoadedVersion:
    """Load ``version`` (default: the live one), verifying checksums and, given ``expect``, the encoder.

    Raises :class:`VersionRejected` for a mismatched or corrupt version, ``LookupError`` when none is published.
    """
    version = version or latest_version(store)
    if version is None:
        raise LookupError(f"no index version is published in {store.uri}: run `coldstart embed` first")
    manifest = read_manifest(store, version)
    if expect is not None:
        check_encoder(manifest, fingerprint=expect.fingerprint, dim=expect.dim, backend=expect.backend)
    config = index_config or IndexConfig(**manifest.index)
    with tempfile.TemporaryDirectory(prefix="coldstart-load-") as tmp:  # streamed down, checked, then read once
        table = read_items(store, manifest, Path(tmp))
        if table.num_rows != manifest.rows:
            raise VersionRejected(f"version {version}: items.parquet has {table.num_rows} rows, manifest says "
                                  f"{manifest.rows}")
        vectors = arrow_to_vectors(table.column("vector"), manifest.encoder.dim)
        index = VectorIndex.load(read_verified_file(store, manifest, INDEX_FILE, Path(tmp) / INDEX_FILE),
                                 table.column("item_id").to_pylist(), vectors, config)
    logger.info("loaded version %s from %s: %d items", version, store.uri, len(index))
    return LoadedVersion(manifest=manifest, index=index, items=table.drop_columns(["vector"]))


def read_items(store: ArtifactStore, manifest: Manifest, tmp: Path) -> pa.Table:
    """A version's ``items.parquet`` (vectors included), downloaded into ``tmp`` and checked first."""
    return pq.read_table(read_verified_file(store, manifest, ITEMS_FILE, Path(tmp) / ITEMS_FILE))


def read_json_file(store: ArtifactStore, manifest: Manifest, name: str) -> Any:
    return json.loads(read_verified(store, manifest, name))
