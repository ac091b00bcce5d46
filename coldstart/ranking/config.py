"""How the ranking pipeline blends its signals: weights chosen on dev, read from the ``[retrieval]`` TOML table.

Tables are named for the request they rank, not for a data set::

    [retrieval.query]       dense = 1.0; bm25 = 0.15; neighbours = 0.0        # a request with a query
    [retrieval.clicks]      dense = 0.5; bm25 = 0.5; covisit = 1.0; popularity = 0.1; category = 0.5; brand = 0.5
    [retrieval.covisit]     window = 50; recency = 0.7; ...                   # how co-visitation is counted
    [retrieval.transitions] smoothing = 1.0; share_power = 1.0; recency = 0.7 # the category/brand signals
    [retrieval.neighbours]  neighbours = 10; temperature = 0.05

``dense`` is the encoder's cosine with the user's vector (the query's, or the recency-weighted clicks'). The old
names — ``[retrieval.homedepot]``, ``[retrieval.sessions]`` and its ``content`` weight — are still read, with a
:class:`DeprecationWarning`.
"""

from __future__ import annotations

import json
import re
import tomllib
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from coldstart.ranking.judged_neighbours import NeighbourConfig
from coldstart.signals.covisit import CoVisitConfig
from coldstart.signals.transitions import TransitionConfig

QUERY_SIGNALS = ("dense", "bm25", "neighbours")
CLICK_SIGNALS = ("dense", "bm25", "covisit", "popularity", "category", "brand")
_RENAMED_TABLES = {"homedepot": "query", "sessions": "clicks"}


@dataclass(frozen=True)
class RetrievalConfig:
    query_weights: dict[str, float] = field(default_factory=lambda: {"dense": 1.0, "bm25": 0.15, "neighbours": 0.0})
    click_weights: dict[str, float] = field(
        default_factory=lambda: {"dense": 0.5, "bm25": 0.5, "covisit": 1.0, "popularity": 0.1, "category": 0.5,
                                 "brand": 0.5})
    # whole-session window: every later item counts for a new user, not just the next one (better on dev)
    covisit: CoVisitConfig = field(default_factory=lambda: CoVisitConfig(window=50, distance_decay=0.0,
                                                                         backward_weight=1.0))
    # category and brand: what kinds of product follow the kinds clicked (coldstart.signals.transitions)
    transitions: TransitionConfig = field(default_factory=TransitionConfig)
    neighbours: NeighbourConfig = field(default_factory=NeighbourConfig)
    # Where a catalog has no category/brand columns, a regular expression with named groups ``category`` and/or
    # ``brand`` that finds them in its text (Amazon review data writes "title. categories. brand."); None: columns only.
    attributes_pattern: str | None = None
    # What a judged (query, product) pair is scored with (`coldstart score`, the .scores files, ROC-AUC): "dense" =
    # the encoder's cosine, comparable across queries; "blend" = the ranking score, z-scored per query (on dev:
    # ROC-AUC 0.75 vs 0.67 for the fine-tuned model, so the ranking and the pair scores use different normalisations);
    # "reranker" = the cross-encoder's logit + rerank_pair_dense_weight x the cosine; "ranker" = the learned ranker's
    # query model over the pair's features (a LambdaRank score: trained to order within a query).
    pair_score: str = "dense"
    # The cross-encoder re-ranker (when one is given): how many first-stage candidates it re-scores, and the weight
    # of the first stage's z-score beside its own.
    rerank_depth: int = 30
    rerank_first_weight: float = 1.0
    rerank_pair_dense_weight: float = 0.0
    # BM25 tokenisation for product search: "units" keeps 1/2, 3/4 and one-letter words (Home Depot dev: bm25 alone
    # 0.359 vs 0.343, in the blend 0.417 vs 0.413); "bm25s" is the baseline's.
    query_bm25_tokens: str = "units"

    def __post_init__(self) -> None:
        if self.query_bm25_tokens not in ("units", "bm25s"):
            raise ValueError(f"retrieval.query_bm25_tokens={self.query_bm25_tokens!r}: use 'units' or 'bm25s'")
        if self.pair_score not in ("dense", "blend", "reranker", "ranker"):
            raise ValueError(f"retrieval.pair_score={self.pair_score!r}: use 'dense', 'blend', 'reranker' or "
                             "'ranker'")
        if self.rerank_depth < 1 or self.rerank_first_weight < 0:
            raise ValueError("retrieval.rerank_depth must be ≥ 1 and retrieval.rerank_first_weight ≥ 0")
        if self.attributes_pattern is not None:
            try:
                groups = set(re.compile(self.attributes_pattern).groupindex)
            except re.error as e:
                raise ValueError(f"retrieval.attributes_pattern does not compile: {e}") from e
            if not groups & {"category", "brand"}:
                raise ValueError("retrieval.attributes_pattern needs a named group 'category' and/or 'brand'")
        for name, known, weights in (("query", QUERY_SIGNALS, self.query_weights),
                                     ("clicks", CLICK_SIGNALS, self.click_weights)):
            bad = set(weights) - set(known)
            if bad:
                raise ValueError(f"[retrieval.{name}] has unknown signals {sorted(bad)}; known: {known}")
            if not any(weights.values()):
                raise ValueError(f"[retrieval.{name}]: every weight is zero; give one signal a weight")


def retrieval_config_from_dict(raw: dict[str, Any]) -> RetrievalConfig:
    raw = dict(raw)
    for old, new in _RENAMED_TABLES.items():
        if old in raw:
            warnings.warn(f"[retrieval.{old}] is now [retrieval.{new}]; the old name will stop being read",
                          DeprecationWarning, stacklevel=2)
            if new in raw:
                raise ValueError(f"[retrieval.{old}] and [retrieval.{new}] are the same table: keep [retrieval.{new}]")
            raw[new] = raw.pop(old)
    if "encode_max_length" in raw:
        raise ValueError("retrieval.encode_max_length is gone: the encoder's max_length is [encoder] max_length")
    kwargs: dict[str, Any] = {}
    if "query" in raw:
        kwargs["query_weights"] = {k: float(v) for k, v in raw.pop("query").items()}
    if "clicks" in raw:
        clicks = {k: float(v) for k, v in raw.pop("clicks").items()}
        if "content" in clicks:
            warnings.warn("[retrieval.clicks] content is now dense (the encoder's cosine, as for queries)",
                          DeprecationWarning, stacklevel=2)
            if "dense" in clicks:
                raise ValueError("[retrieval.clicks] names both content and dense: they are one signal, keep dense")
            clicks["dense"] = clicks.pop("content")
        kwargs["click_weights"] = clicks
    if "covisit" in raw:
        kwargs["covisit"] = CoVisitConfig(**raw.pop("covisit"))
    if "transitions" in raw:
        kwargs["transitions"] = TransitionConfig(**raw.pop("transitions"))
    if "neighbours" in raw:
        kwargs["neighbours"] = NeighbourConfig(**raw.pop("neighbours"))
    kwargs.update(raw)
    return RetrievalConfig(**kwargs)


def load_retrieval_config(path: str | Path | None) -> RetrievalConfig:
    if path is None:
        return RetrievalConfig()
    path = Path(path)
    raw = json.loads(path.read_text()) if path.suffix == ".json" else tomllib.loads(path.read_text())
    return retrieval_config_from_dict(raw.get("retrieval", {}))
