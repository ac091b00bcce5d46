"""Product attributes for the category/brand session signals: ``{"category": {item_id: label}, "brand": {...}}``.

Read from a table with an ``item_id`` column and ``category`` and/or ``brand`` columns — Parquet, CSV or JSON Lines,
a file or a folder, local or S3, through the catalog's own reader (:func:`coldstart.catalog.reader.iter_table_rows`).
A catalog without such columns can still give labels from its text: ``pattern`` is a regular expression with named
groups ``category`` and/or ``brand`` searched in the ``text`` column (the config's ``[retrieval]
attributes_pattern``); a column's value wins over the text's. Rows without an ``item_id`` or unreadable are counted
and logged with their source and row, never silently dropped.
"""

from __future__ import annotations

import logging
import re
from pathlib import Path

logger = logging.getLogger(__name__)

ATTRIBUTES = ("category", "brand")


def read_attributes(uri: str | Path, *, pattern: str | None = None, text_col: str = "text"
                    ) -> dict[str, dict[str, str]]:
    """``{name: {item_id: label}}`` for each attribute the table (or ``pattern``) provides."""
    from coldstart.catalog.reader import iter_table_rows

    found = re.compile(pattern) if pattern else None
    names = [n for n in ATTRIBUTES if n in found.groupindex] if found else list(ATTRIBUTES)
    out: dict[str, dict[str, str]] = {name: {} for name in ATTRIBUTES}
    seen: set[str] = set()
    rows = bad = from_text = 0
    for source, row, record, problem in iter_table_rows(str(uri)):
        rows += 1
        if record is None or record.get("item_id") in (None, ""):
            bad += 1
            logger.warning("attributes %s row %d skipped: %s", source, row, problem or "no item_id")
            continue
        seen.update(record)
        labels = {name: record[name] for name in ATTRIBUTES if record.get(name) not in (None, "")}
        if found is not None and len(labels) < len(names) and isinstance(record.get(text_col), str):
            m = found.search(record[text_col].strip())
            if m:
                from_text += 1
                labels = {**{k: v for k, v in m.groupdict().items() if k in ATTRIBUTES and v}, **labels}
        for name, value in labels.items():
            out[name][str(record["item_id"])] = str(value)
    available = {n for n in ATTRIBUTES if n in seen or (found is not None and n in found.groupindex)}
    if "item_id" not in seen or not available:
        hint = f" (or a pattern over its {text_col!r} column)" if found is None else ""
        raise ValueError(f"{uri}: needs an item_id column and at least one of {ATTRIBUTES}{hint}; has {sorted(seen)}")
    out = {name: labels for name, labels in out.items() if name in available}
    logger.info("attributes from %s: %d rows, %d skipped, %d labelled from the text, labels %s", uri, rows, bad,
                from_text, {n: len(v) for n, v in out.items()})
    return out
