"""How the final ranking blends its signals: weights chosen on dev, read from the ``[retrieval]`` TOML table.

    [retrieval.homedepot]   dense = 1.0; bm25 = 0.15; neighbours = 0.0        # query → product
    [retrieval.sessions]    covisit = 1.0; content = 0.5; bm25 = 0.5; popularity = 0.1; category = 0.5; brand = 0.5
    [retrieval.covisit]     window = 5; recency = 0.7; ...                  # clicks → product, above
    [retrieval.transitions] smoothing = 1.0; share_power = 1.0; recency = 0.7   # the category/brand signals
    [retrieval.neighbours]  neighbours = 10; temperature = 0.05
"""

from __future__ import annotations

import json
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from coldstart.signals.covisit import CoVisitConfig
from coldstart.ranking.judged_neighbours import NeighbourConfig
from coldstart.signals.transitions import TransitionConfig

QUERY_SIGNALS = ("dense", "bm25", "neighbours")
SESSION_SIGNALS = ("covisit", "content", "bm25", "popularity", "category", "brand")


@dataclass(frozen=True)
class RetrievalConfig:
    query_weights: dict[str, float] = field(default_factory=lambda: {"dense": 1.0, "bm25": 0.15, "neighbours": 0.0})
    session_weights: dict[str, float] = field(
        default_factory=lambda: {"covisit": 1.0, "content": 0.5, "bm25": 0.5, "popularity": 0.1, "category": 0.5,
                                 "brand": 0.5})
    # whole-session window: every later item counts for a new user, not just the next one (better on dev)
    covisit: CoVisitConfig = field(default_factory=lambda: CoVisitConfig(window=50, distance_decay=0.0,
                                                                         backward_weight=1.0))
    # category and brand: what kinds of product follow the kinds clicked (coldstart.signals.transitions)
    transitions: TransitionConfig = field(default_factory=TransitionConfig)
    neighbours: NeighbourConfig = field(default_factory=NeighbourConfig)
    encode_max_length: int = 64
    # What a judged (query, product) pair is scored with in the .scores file (ROC-AUC): "dense" = the encoder's
    # cosine, comparable across queries; "blend" = the ranking score, z-scored per query (on dev: ROC-AUC 0.75
    # vs 0.67 for the fine-tuned model, so the ranking and the pair scores use different normalisations).
    pair_score: str = "dense"
    # The cross-encoder re-ranker (when one is given): how many first-stage candidates it re-scores, and the weight
    # of the first stage's z-score beside its own. Pair scores under pair_score = "reranker" are its raw logits
    # plus rerank_pair_dense_weight x the encoder's cosine.
    rerank_depth: int = 30
    rerank_first_weight: float = 1.0
    rerank_pair_dense_weight: float = 0.0
    # BM25 tokenisation for product search: "units" keeps 1/2, 3/4 and one-letter words (Home Depot dev: bm25 alone
    # 0.359 vs 0.343, in the blend 0.417 vs 0.413); "bm25s" is the baseline's.
    query_bm25_tokens: str = "units"

    def __post_init__(self) -> None:
        if self.query_bm25_tokens not in ("units", "bm25s"):
            raise ValueError(f"retrieval.query_bm25_tokens={self.query_bm25_tokens!r}: use 'units' or 'bm25s'")
        if self.pair_score not in ("dense", "blend", "reranker"):
            raise ValueError(f"retrieval.pair_score={self.pair_score!r}: use 'dense', 'blend' or 'reranker'")
        if self.rerank_depth < 1 or self.rerank_first_weight < 0:
            raise ValueError("retrieval.rerank_depth must be ≥ 1 and retrieval.rerank_first_weight ≥ 0")
        for name, known, weights in (("homedepot", QUERY_SIGNALS, self.query_weights),
                                     ("sessions", SESSION_SIGNALS, self.session_weights)):
            bad = set(weights) - set(known)
            if bad:
                raise ValueError(f"[retrieval.{name}] has unknown signals {sorted(bad)}; known: {known}")
            if not any(weights.values()):
                raise ValueError(f"[retrieval.{name}]: every weight is zero; give one signal a weight")


def retrieval_config_from_dict(raw: dict[str, Any]) -> RetrievalConfig:
    raw = dict(raw)
    kwargs: dict[str, Any] = {}
    if "homedepot" in raw:
        kwargs["query_weights"] = {k: float(v) for k, v in raw.pop("homedepot").items()}
    if "sessions" in raw:
        kwargs["session_weights"] = {k: float(v) for k, v in raw.pop("sessions").items()}
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
