"""What other users' sessions say about a new user's clicks: co-visitation, attribute transitions, popularity.

One object fitted once from training sessions over a fixed item list, asked per user: ``signals(clicks)`` gives
each signal's ``(n,) float32`` scores in ``ids`` order, ready for :func:`coldstart.ranking.fusion.blend` next to the content
signals (the encoder's cosine, BM25). Used by the ``blend`` retriever (``coldstart search --sessions``) and the
benchmarks. Signal names are those of ``[retrieval.clicks]``: ``covisit``, ``category``, ``brand`` (one per
attribute that has labels) and ``popularity`` (``log1p`` of the sessions an item is in).

Sessions are read from JSON Lines ``{"user_id": ..., "items": [...]}``, the labels by
:func:`coldstart.catalog.attributes.read_attributes`; items missing from the item list are counted and skipped,
never an error: the catalog moves on while old sessions stay.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable, Mapping, Sequence

import numpy as np

from coldstart.catalog.attributes import ATTRIBUTES
from coldstart.signals.covisit import CoVisitation, CoVisitConfig
from coldstart.signals.transitions import AttributeTransitions, TransitionConfig

logger = logging.getLogger(__name__)



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

    @classmethod
    def from_parts(cls, item_ids: Sequence[str], covisit: CoVisitation,
                   transitions: Mapping[str, AttributeTransitions], info: SessionSignalsInfo) -> "SessionSignals":
        """Already fitted parts (a published signals artifact, :mod:`coldstart.signals.artifact`)."""
        out = cls.__new__(cls)
        out.ids, out.covisit, out.transitions, out.info = list(item_ids), covisit, dict(transitions), info
        out.popularity = np.log1p(covisit.popularity()).astype(np.float32)
        return out

    @property
    def names(self) -> tuple[str, ...]:
        return ("covisit", "popularity", *self.transitions)

    @classmethod
    def from_files(cls, item_ids: Sequence[str], sessions: str | Path, *, attributes: str | Path | None = None,
                   config=None) -> "SessionSignals":
        """Fitted from a sessions file (and, for the category/brand signals, an attributes table), with the
        co-visitation and transition settings of ``config`` (a :class:`coldstart.ranking.config.RetrievalConfig`)."""
        return SessionData.read(sessions, attributes=attributes, config=config).fit(item_ids)

    def signals(self, clicks: Sequence[str]) -> dict[str, np.ndarray]:
        """``{name: (n,) float32}`` in ``ids`` order for one user's clicks (oldest first)."""
        return {"covisit": self.covisit.scores(clicks), "popularity": self.popularity,
                **{name: t.scores(clicks) for name, t in self.transitions.items()}}


def normalise_label(attribute: str, value) -> str:
    if value is None:
        return ""
    value = str(value).strip()
    return re.sub(r"[\W_]+", "", value.lower()) if attribute == "brand" else value


@dataclass(frozen=True)
class SessionData:
    """What session signals are fitted from, read once: the sessions, the attribute labels, the config. A server
    keeps this and fits :class:`SessionSignals` over each version's items as it loads."""

    source: str
    sessions: list[list[str]]
    labels: dict[str, dict[str, str]]
    config: object  # a coldstart.ranking.config.RetrievalConfig

    @classmethod
    def read(cls, sessions: str | Path, *, attributes: str | Path | None = None, config=None) -> "SessionData":
        from coldstart.catalog.attributes import read_attributes
        from coldstart.evaluation.trec import read_sessions
        from coldstart.ranking.config import RetrievalConfig

        config = config or RetrievalConfig()
        labels = read_attributes(attributes, pattern=config.attributes_pattern) if attributes else {}
        return cls(str(sessions), [list(s.items) for s in read_sessions(sessions)], labels, config)

    def fit(self, item_ids: Sequence[str]) -> SessionSignals:
        fitted = SessionSignals(item_ids, self.sessions, labels=self.labels, covisit=self.config.covisit,
                                transitions=self.config.transitions)
        logger.info("session signals from %s: %s", self.source, fitted.info)
        return fitted
