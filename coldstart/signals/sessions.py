"""What other users' sessions say about a new user's clicks: co-visitation, attribute transitions, popularity.

One object fitted once from training sessions over a fixed item list, asked per user: ``signals(clicks)`` gives
each signal's ``(n,) float32`` scores in ``ids`` order, ready for :func:`coldstart.ranking.fusion.blend` next to the content
signals (the encoder's cosine, BM25). Used by the ``blend`` retriever (``coldstart search --sessions``) and the
benchmarks. Signal names are those of ``[retrieval.sessions]``: ``covisit``, ``category``, ``brand`` (one per
attribute that has labels) and ``popularity`` (``log1p`` of the sessions an item is in).

Sessions and attributes are read from JSON Lines ``{"user_id": ..., "items": [...]}`` and a table with an
``item_id`` column plus ``category`` and/or ``brand`` (Parquet, CSV or JSON Lines); items missing from the item
list are counted and skipped, never an error: the catalog moves on while old sessions stay.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable, Mapping, Sequence

import numpy as np

from coldstart.signals.covisit import CoVisitation, CoVisitConfig
from coldstart.signals.transitions import AttributeTransitions, TransitionConfig

logger = logging.getLogger(__name__)

ATTRIBUTES = ("category", "brand")


@dataclass(frozen=True)
class SessionSignalsInfo:
    sessions: int
    clicks: int
    clicks_unknown: int  # clicks on items not in the item list (skipped)
    labelled: dict[str, int] = field(default_factory=dict)  # attribute → items with a label


class SessionSignals:
    """Co-visitation, attribute transitions and popularity over ``item_ids``, fitted from ``sessions``.

    ``labels``: attribute (``category``/``brand``) → ``{item_id: label}``; brands are compared without case,
    spaces and punctuation ("B&C Eagle" = "B & C Eagle").
    """

    def __init__(self, item_ids: Sequence[str], sessions: Iterable[Sequence[str]], *,
                 labels: Mapping[str, Mapping[str, str]] | None = None,
                 covisit: CoVisitConfig = CoVisitConfig(), transitions: TransitionConfig = TransitionConfig()):
        unknown = set(labels or {}) - set(ATTRIBUTES)
        if unknown:
            raise ValueError(f"attributes {sorted(unknown)} are not signals; use {ATTRIBUTES}")
        self.ids = list(item_ids)
        known = set(self.ids)
        sessions = [list(s) for s in sessions]
        clicks = sum(len(s) for s in sessions)
        unknown_clicks = sum(1 for s in sessions for i in s if i not in known)
        self.covisit = CoVisitation(self.ids, covisit).fit(sessions)
        self.popularity = np.log1p(self.covisit.popularity()).astype(np.float32)
        self.transitions = {}
        for name, by_item in (labels or {}).items():
            by_item = {i: normalise_label(name, v) for i, v in by_item.items()}
            if any(by_item.values()):
                self.transitions[name] = AttributeTransitions(self.ids, by_item, transitions).fit(sessions)
        self.info = SessionSignalsInfo(len(sessions), clicks, unknown_clicks,
                                       {n: int((t.label_of >= 0).sum()) for n, t in self.transitions.items()})
        if unknown_clicks:
            logger.warning("sessions: %d of %d clicks are on items not in the catalog; skipped",
                           unknown_clicks, clicks)

    @property
    def names(self) -> tuple[str, ...]:
        return ("covisit", "popularity", *self.transitions)

    def signals(self, clicks: Sequence[str]) -> dict[str, np.ndarray]:
        """``{name: (n,) float32}`` in ``ids`` order for one user's clicks (oldest first)."""
        return {"covisit": self.covisit.scores(clicks), "popularity": self.popularity,
                **{name: t.scores(clicks) for name, t in self.transitions.items()}}


def normalise_label(attribute: str, value) -> str:
    if value is None:
        return ""
    value = str(value).strip()
    return re.sub(r"[\W_]+", "", value.lower()) if attribute == "brand" else value


def read_attributes(uri: str | Path) -> dict[str, dict[str, str]]:
    """``{"category": {item_id: label}, "brand": {...}}`` from a table with ``item_id`` and either column: a
    Parquet / CSV / JSON Lines file or folder, local or S3, read as the catalog is. Rows without an ``item_id``
    or unreadable are counted and logged with their source and row, never silently dropped."""
    from coldstart.catalog.reader import iter_table_rows

    out: dict[str, dict[str, str]] = {name: {} for name in ATTRIBUTES}
    seen: set[str] = set()
    rows = bad = 0
    for source, row, record, problem in iter_table_rows(str(uri)):
        rows += 1
        if record is None or record.get("item_id") in (None, ""):
            bad += 1
            logger.warning("attributes %s row %d skipped: %s", source, row, problem or "no item_id")
            continue
        seen.update(record)
        for name in ATTRIBUTES:
            if record.get(name) not in (None, ""):
                out[name][str(record["item_id"])] = str(record[name])
    if "item_id" not in seen or not seen & set(ATTRIBUTES):
        raise ValueError(f"{uri}: needs an item_id column and at least one of {ATTRIBUTES}; has {sorted(seen)}")
    out = {name: labels for name, labels in out.items() if name in seen}
    logger.info("attributes from %s: %d rows, %d skipped, labels %s", uri, rows, bad,
                {n: len(v) for n, v in out.items()})
    return out
