"""Reading a product catalog, composing the text to encode, and quarantining bad rows.

A catalog is Parquet, CSV or JSON Lines (one file, or a folder/prefix of files), local or in object storage.
A :class:`CatalogSchema` maps its columns (id, the text columns in the order they are composed) and an optional
text template, e.g. ``"{title}. {brand}. {categories}"``.

Validation happens here, at the boundary. Every row ends up either in the good table or in the quarantine with
its source file, row number and reason — nothing is dropped silently, and ``rows_read == rows_good +
rows_quarantined`` always holds. Reasons: missing id, duplicate id, empty text, invalid UTF-8, text over
``max_chars``, a value of the wrong type, a line that is not JSON.
"""

from __future__ import annotations

import contextlib
import csv
import hashlib
import io
import json
import logging
import math
import re
import string
import tempfile
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any, BinaryIO, Iterator
from urllib.parse import urlparse

import pyarrow as pa
import pyarrow.parquet as pq

logger = logging.getLogger(__name__)

FORMATS = {".parquet": "parquet", ".pq": "parquet", ".csv": "csv", ".jsonl": "jsonl", ".json": "jsonl", ".ndjson": "jsonl"}
GOOD_SCHEMA = pa.schema([("item_id", pa.string()), ("title", pa.string()), ("text", pa.string()), ("fingerprint", pa.string())])


class CatalogError(ValueError):
    """The catalog cannot be used at all (not found, no good rows, unknown columns)."""


@dataclass(frozen=True)
class CatalogSchema:
    id_col: str = "item_id"
    text_cols: tuple[str, ...] = ("title",)
    template: str | None = None
    title_col: str | None = None  # shown to people; defaults to the first text column
    max_chars: int = 10_000
    # columns every good row must have non-empty (e.g. the title a result shows): a row with any of them empty —
    # missing, "", whitespace, NaN — is quarantined even when the other text columns have text
    required: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if not self.text_cols:
            raise ValueError("catalog.text_cols is empty: name at least one column to encode (e.g. title)")
        if self.template is not None:
            names = {f for _, f, _, _ in string.Formatter().parse(self.template) if f}
            unknown = names - set(self.text_cols)
            if unknown:
                raise ValueError(
                    f"catalog.template uses {sorted(unknown)} which are not in text_cols {list(self.text_cols)}"
                )
        if self.max_chars < 1:
            raise ValueError(f"catalog.max_chars={self.max_chars}: must be positive")

    @property
    def display_col(self) -> str:
        return self.title_col or self.text_cols[0]


@dataclass
class ValidatedCatalog:
    """``good``: item_id, title, text, fingerprint (one row per product); ``quarantine``: one dict per bad row."""

    good: pa.Table
    quarantine: list[dict[str, Any]]
    rows_read: int
    sources: list[str] = field(default_factory=list)

    @property
    def rows_good(self) -> int:
        return self.good.num_rows

    @property
    def rows_quarantined(self) -> int:
        return len(self.quarantine)

    def fingerprint(self) -> str:
        """Order-independent digest of the good rows' ids and texts: same catalog content, same fingerprint."""
        pairs = sorted(zip(self.good.column("item_id").to_pylist(), self.good.column("fingerprint").to_pylist()))
        return hashlib.sha256("\n".join(f"{i}\t{f}" for i, f in pairs).encode()).hexdigest()

    def quarantine_jsonl(self) -> bytes:
        return "".join(json.dumps(q, ensure_ascii=False) + "\n" for q in self.quarantine).encode()

    def require_rows(self) -> None:
        """A catalog with zero good rows is an error, not an empty index (call after saving the quarantine)."""
        if self.rows_good == 0:
            first = self.quarantine[0]["reason"] if self.quarantine else "the files hold no rows"
            raise CatalogError(
                f"catalog: none of its {self.rows_read} rows is usable (first reason: {first}); nothing to index"
            )

    def counts(self) -> dict[str, int]:
        return {"rows_read": self.rows_read, "rows_good": self.rows_good, "rows_quarantined": self.rows_quarantined}


def text_fingerprint(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()[:32]


# ---------------------------------------------------------------------------------------------- reading


def _list_sources(uri: str) -> list[tuple[str, str]]:
    """(source uri, format) for a file or every catalog file below a folder/prefix."""
    parsed = urlparse(uri)
    if parsed.scheme == "s3":
        from coldstart.artifacts.store import open_store

        suffix = PurePosixPath(parsed.path).suffix.lower()
        if suffix in FORMATS:
            return [(uri, FORMATS[suffix])]
        keys = open_store(uri).list("")
        return [(f"{uri.rstrip('/')}/{k}", FORMATS[PurePosixPath(k).suffix.lower()])
                for k in keys if PurePosixPath(k).suffix.lower() in FORMATS]
    path = Path(parsed.path if parsed.scheme == "file" else uri).expanduser()
    if path.is_file():
        fmt = FORMATS.get(path.suffix.lower())
        if fmt is None:
            raise CatalogError(f"catalog {uri}: unknown file type {path.suffix!r}; use one of {sorted(FORMATS)}")
        return [(str(path), fmt)]
    if path.is_dir():
        return [(str(p), FORMATS[p.suffix.lower()]) for p in sorted(path.rglob("*"))
                if p.is_file() and p.suffix.lower() in FORMATS]
    raise CatalogError(f"catalog {uri} does not exist")


@contextlib.contextmanager
def _open_source(source: str) -> Iterator[BinaryIO]:
    """A binary file handle on one catalog file; an ``s3://`` object is streamed into a temporary file first, so a
    catalog is never held in memory whole."""
    if not source.startswith("s3://"):
        with open(source, "rb") as fh:
            yield fh
        return
    from coldstart.artifacts.store import open_store

    parent, _, name = source.rpartition("/")
    with tempfile.TemporaryDirectory(prefix="coldstart-catalog-") as tmp:
        path = open_store(parent).read_to_file(name, Path(tmp) / "part")
        with open(path, "rb") as fh:
            yield fh


def _iter_rows(source: str, fmt: str) -> Iterator[tuple[int, dict[str, Any] | None, str | None]]:
    """Yield ``(row number from 1, row dict or None, problem or None)`` for one file, read as a stream."""
    with _open_source(source) as fh:
        if fmt == "parquet":
            yield from _iter_parquet(fh)
        elif fmt == "jsonl":
            yield from _iter_jsonl(fh)
        else:
            yield from _iter_csv(fh)


def _iter_parquet(fh: BinaryIO) -> Iterator[tuple[int, dict[str, Any] | None, str | None]]:
    row = 0
    for batch in pq.ParquetFile(fh).iter_batches(batch_size=8192):
        for record in batch.to_pylist():
            row += 1
            yield row, record, None


def _iter_jsonl(fh: BinaryIO) -> Iterator[tuple[int, dict[str, Any] | None, str | None]]:
    for row, line in enumerate(_lines(fh), start=1):
        if not line.strip():
            yield row, None, "blank line"
            continue
        try:
            text = line.decode("utf-8")
        except UnicodeDecodeError as err:
            yield row, None, f"invalid UTF-8 at byte {err.start}"
            continue
        try:
            record = json.loads(text)
        except json.JSONDecodeError as err:
            yield row, None, f"not valid JSON ({err.msg})"
            continue
        if not isinstance(record, dict):
            yield row, None, "a JSON line must be an object"
            continue
        yield row, record, None


def _lines(fh: BinaryIO) -> Iterator[bytes]:
    """Lines split like ``bytes.splitlines`` (``\\n``, ``\\r\\n`` and a lone ``\\r``), read as a stream."""
    for raw in fh:
        parts = raw.rstrip(b"\n").split(b"\r")
        if len(parts) > 1 and parts[-1] == b"":  # \r\n
            parts.pop()
        yield from parts


_BAD_BYTE = re.compile("[\udc80-\udcff]")  # what surrogateescape decodes an invalid UTF-8 byte to


def _iter_csv(fh: BinaryIO) -> Iterator[tuple[int, dict[str, Any] | None, str | None]]:
    """CSV records by the ``csv`` module over the whole file (streamed), so a quoted field may hold commas and
    newlines (``"Garden hose,⏎50 ft"`` is one title). Bytes that are not UTF-8 survive decoding as surrogates and
    cost only the record they are in; row numbers count records, not physical lines."""
    # utf-8-sig: a byte-order mark is not part of the first column's name
    text = io.TextIOWrapper(fh, encoding="utf-8-sig", errors="surrogateescape", newline="")
    reader = csv.reader(text)
    try:
        header = next(reader, [])
    except csv.Error as err:
        raise CatalogError(f"the CSV header does not parse: {err}") from err
    row = 0
    while True:
        row += 1
        try:
            values = next(reader)
        except StopIteration:
            return
        except csv.Error as err:  # e.g. a NUL byte; the reader goes on with the next line
            yield row, None, f"not valid CSV ({err}; line {reader.line_num})"
            continue
        if not values or not any(v.strip() for v in values):
            yield row, None, "blank line"
            continue
        bad = next((n for n, v in enumerate(values) if _BAD_BYTE.search(v)), None)
        if bad is not None:
            where = f"field {header[bad]!r}" if bad < len(header) else f"field {bad + 1}"
            yield row, None, f"invalid UTF-8 in {where} (line {reader.line_num})"
            continue
        if len(values) != len(header):
            yield row, None, f"has {len(values)} fields, the header has {len(header)} (line {reader.line_num})"
            continue
        yield row, dict(zip(header, values)), None


def iter_table_rows(uri: str) -> Iterator[tuple[str, int, dict[str, Any] | None, str | None]]:
    """``(source, row number from 1, row dict or None, problem or None)`` for every row of every Parquet / CSV /
    JSON Lines file at ``uri`` (a file or a folder/prefix, local or S3): the catalog's reader, for other tables
    keyed by item (e.g. item attributes)."""
    sources = _list_sources(str(uri))
    if not sources:
        raise CatalogError(f"{uri}: no .parquet, .csv or .jsonl files there")
    for source, fmt in sources:
        for row, record, problem in _iter_rows(source, fmt):
            yield source, row, record, problem


# ------------------------------------------------------------------------------------------- validation


def _as_id(value: Any) -> str | None:
    if value is None:
        return None
    if isinstance(value, bool):
        raise TypeError
    if isinstance(value, int):
        return str(value)
    if isinstance(value, str):
        return value.strip() or None
    raise TypeError


def _is_empty(value: Any) -> bool:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return True
    if isinstance(value, str):
        return not value.strip()
    if isinstance(value, (list, tuple, dict, bytes, bytearray)):
        return len(value) == 0
    return False


def _as_text(value: Any) -> str:
    """A column value as text: strings as-is, lists joined, mappings as ``key: value``; else TypeError."""
    if value is None:
        return ""
    if isinstance(value, str):
        return value.strip()
    if isinstance(value, float) and math.isnan(value):  # pandas' missing value
        return ""
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return str(value)
    if isinstance(value, (bytes, bytearray)):
        return bytes(value).decode("utf-8").strip()  # UnicodeDecodeError is reported as invalid UTF-8
    if isinstance(value, (list, tuple)) and all(isinstance(v, (str, int, float)) for v in value):
        return ", ".join(str(v).strip() for v in value if str(v).strip())
    if isinstance(value, dict) and all(isinstance(v, (str, int, float)) for v in value.values()):
        return "; ".join(f"{k}: {v}" for k, v in value.items())
    if isinstance(value, list) and all(isinstance(v, dict) and {"key", "value"} <= set(v) for v in value):
        return "; ".join(f"{v['key']}: {v['value']}" for v in value)  # Arrow maps arrive as key/value lists
    raise TypeError


def compose_text(fields: dict[str, str], schema: CatalogSchema) -> str:
    if schema.template is not None:
        text = schema.template.format_map(fields)
        # A template like "{title}. {brand}." leaves ". ." behind when brand is empty: tidy that up.
        while ". ." in text or "  " in text:
            text = text.replace(". .", ".").replace("  ", " ")
        return text.strip(" .;,") if text.strip(" .;,") else ""
    return ". ".join(v for v in (fields[c] for c in schema.text_cols) if v)


def _preview(record: dict[str, Any] | None) -> str:
    if record is None:
        return ""
    text = json.dumps(record, ensure_ascii=False, default=str)
    return text if len(text) <= 300 else text[:300] + "…"


def validate_catalog(uri: str, schema: CatalogSchema = CatalogSchema()) -> ValidatedCatalog:
    """Read every catalog file below ``uri`` and split the rows into good ones and quarantined ones."""
    sources = _list_sources(str(uri))
    if not sources:
        raise CatalogError(f"catalog {uri}: no .parquet, .csv or .jsonl files there")
    ids, titles, texts, fps = [], [], [], []
    first_row: dict[str, str] = {}
    quarantine: list[dict[str, Any]] = []
    rows_read = 0
    columns_seen: set[str] = set()

    def reject(source, row, item_id, reason, record):
        quarantine.append({"source": source, "row": row, "item_id": item_id, "reason": reason, "record": _preview(record)})

    for source, fmt in sources:
        for row, record, problem in _iter_rows(source, fmt):
            rows_read += 1
            where = f"{source}:{row}"
            if problem is not None:
                reject(source, row, None, problem, record)
                continue
            columns_seen.update(record)
            try:
                item_id = _as_id(record.get(schema.id_col))
            except TypeError:
                reject(source, row, None, f"{schema.id_col} must be a string or an integer, "
                       f"got {type(record.get(schema.id_col)).__name__}", record)
                continue
            if item_id is None:
                reject(source, row, None, f"missing id (column {schema.id_col!r} is empty)", record)
                continue
            if item_id in first_row:
                reject(source, row, item_id, f"duplicate id (first seen at {first_row[item_id]})", record)
                continue
            empty = next((col for col in schema.required if _is_empty(record.get(col))), None)
            if empty is not None:
                reject(source, row, item_id, f"required column {empty!r} is empty", record)
                continue
            fields, bad = {}, None
            for col in schema.text_cols:
                try:
                    fields[col] = _as_text(record.get(col))
                except UnicodeDecodeError as err:
                    bad = f"column {col!r}: invalid UTF-8 at byte {err.start}"
                    break
                except TypeError:
                    bad = f"column {col!r}: wrong type {type(record.get(col)).__name__} (expected text)"
                    break
            if bad is None:
                text = compose_text(fields, schema)
                if not text:
                    bad = f"empty text (columns {', '.join(schema.text_cols)} are all empty)"
                elif len(text) > schema.max_chars:
                    bad = f"text is {len(text)} characters, over max_chars={schema.max_chars}"
                elif "\ufffd" in text or "\x00" in text:
                    bad = "text contains replacement or NUL characters (broken encoding upstream)"
            if bad is not None:
                reject(source, row, item_id, bad, record)
                continue
            first_row[item_id] = where
            ids.append(item_id)
            titles.append(fields.get(schema.display_col) or text[:200])
            texts.append(text)
            fps.append(text_fingerprint(text))

    missing = ({schema.id_col, *schema.text_cols, *schema.required} - columns_seen) if columns_seen else set()
    unusable = schema.id_col in missing or set(schema.text_cols) <= missing
    if missing and unusable:
        raise CatalogError(
            f"catalog {uri}: columns {sorted(missing)} not found (it has {sorted(columns_seen)}); "
            "set --id-col / --text-cols to its column names"
        )
    if missing:
        logger.warning("catalog %s: columns %s never appear", uri, sorted(missing))
    good = pa.table({"item_id": ids, "title": titles, "text": texts, "fingerprint": fps}, schema=GOOD_SCHEMA)
    result = ValidatedCatalog(good=good, quarantine=quarantine, rows_read=rows_read, sources=[s for s, _ in sources])
    assert result.rows_read == result.rows_good + result.rows_quarantined
    logger.info("catalog %s: %d rows read, %d good, %d quarantined", uri, rows_read, result.rows_good,
                result.rows_quarantined)
    return result
