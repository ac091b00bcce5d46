"""A cross-encoder re-ranker: reads the query and each of the first stage's top products together.

The first stage (dense, BM25 or their blend) finds candidates over the whole catalog; the cross-encoder re-scores
only the top ``depth`` of them, where its cost (one transformer pass per pair) is affordable. The final score of a
candidate is ``z(cross-encoder) + first_weight · z(first stage)`` over those candidates (z-scored per query, so the
two scales do not matter); candidates below ``depth`` keep their first-stage order after them.

Its raw score is also a pair score comparable across queries (it was trained pointwise on the grades), which is what
the judged-pairs ROC-AUC needs.

The model is any Hugging Face ``AutoModelForSequenceClassification`` directory with one label (ours from
``jobs.finetune --table reranker``, or an off-the-shelf cross-encoder), a local path or an ``s3://`` prefix.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Callable, Mapping, Sequence

import numpy as np

from coldstart.ranking.fusion import fuse_rerank

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class RerankerConfig:
    model: str
    max_length: int = 64
    batch_size: int = 64
    device: str = "auto"
    depth: int = 30  # how many first-stage candidates are re-scored
    first_weight: float = 1.0  # weight of the first stage's z-score beside the cross-encoder's

    def __post_init__(self) -> None:
        if self.depth < 1 or self.batch_size < 1 or self.max_length < 8:
            raise ValueError("reranker: depth and batch_size must be ≥ 1, max_length ≥ 8")
        if self.first_weight < 0:
            raise ValueError(f"reranker.first_weight={self.first_weight}: use a weight ≥ 0")


class CrossEncoder:
    """Scores (query, text) pairs with a one-label sequence classifier; batches are sorted by length."""

    def __init__(self, config: RerankerConfig):
        import torch
        from transformers import AutoModelForSequenceClassification, AutoTokenizer

        from coldstart.encoders.device import resolve_device
        from coldstart.encoders.model_source import resolve_model_dir

        self.config = config
        model_dir = resolve_model_dir(config.model)
        self.device = resolve_device(config.device)
        self.tokenizer = AutoTokenizer.from_pretrained(model_dir)
        self.model = AutoModelForSequenceClassification.from_pretrained(model_dir).to(self.device).eval()
        if self.model.config.num_labels != 1:
            raise ValueError(f"{config.model}: the model has {self.model.config.num_labels} labels; a re-ranker needs "
                             "exactly one (train it with jobs.finetune --table reranker)")
        self._torch = torch

    def score(self, queries: Sequence[str], texts: Sequence[str]) -> np.ndarray:
        """``(n,) float32`` logits, one per (query, text) pair."""
        if len(queries) != len(texts):
            raise ValueError(f"{len(queries)} queries but {len(texts)} texts: pass one query per text")
        out = np.zeros(len(texts), dtype=np.float32)
        order = sorted(range(len(texts)), key=lambda n: len(queries[n]) + len(texts[n]))
        torch = self._torch
        with torch.inference_mode():
            for start in range(0, len(order), self.config.batch_size):
                idx = order[start:start + self.config.batch_size]
                encoded = self.tokenizer([queries[n] for n in idx], [texts[n] for n in idx], padding=True,
                                         truncation=True, max_length=self.config.max_length, return_tensors="pt")
                logits = self.model(**{k: v.to(self.device) for k, v in encoded.items()}).logits[:, 0]
                out[idx] = logits.float().cpu().numpy()
        return out


def rerank_hits(cross: CrossEncoder, queries: Sequence[str], hits: Sequence[Sequence[tuple[str, float]]],
                texts: Sequence[Sequence[str]], *, depth: int, first_weight: float) -> list[list[tuple[str, float]]]:
    """Every query's top ``depth`` hits re-scored in one cross-encoder pass; ``texts[n]`` holds the texts of (at
    least) the first ``depth`` hits of query ``n``. Returns each list re-ordered, same length.

    Re-scored candidates carry their fused score; those below ``depth`` keep their order after them, with scores
    moved below the lowest fused score so a caller sorting by score gets the same order."""
    if not len(queries) == len(hits) == len(texts):
        raise ValueError(f"{len(queries)} queries, {len(hits)} hit lists and {len(texts)} text lists: pass one each")
    heads = [list(h[:depth]) for h in hits]
    for head, t in zip(heads, texts):
        if len(t) < len(head):
            raise ValueError(f"{len(head)} hits to re-rank but {len(t)} texts: pass the text of every re-ranked hit")
    pair_q = [q for q, head in zip(queries, heads) for _ in head]
    pair_t = [t for head, ts in zip(heads, texts) for t in ts[:len(head)]]
    cross_scores = cross.score(pair_q, pair_t)
    out, pos = [], 0
    for head, full in zip(heads, hits):
        c = cross_scores[pos:pos + len(head)]
        pos += len(head)
        if not head:
            out.append([])
            continue
        fused = fuse_rerank(np.array([s for _, s in head]), c, first_weight)
        ranked = [(head[n][0], float(fused[n])) for n in np.argsort(-fused, kind="stable")]
        tail = list(full[len(head):])
        if tail:
            floor, top_tail = float(fused.min()) - 1.0, tail[0][1]
            ranked += [(item, floor - (top_tail - s)) for item, s in tail]
        out.append(ranked)
    return out


class Reranker:
    """Re-ranks first-stage hits ``[(item_id, score), ...]`` (best first) with a :class:`CrossEncoder`, looking
    the products' texts up by id."""

    def __init__(self, config: RerankerConfig, text_of: Callable[[str], str] | Mapping[str, str]):
        self.config = config
        self.cross = CrossEncoder(config)
        self.text = text_of.__getitem__ if isinstance(text_of, Mapping) else text_of

    def rerank_many(self, queries: Sequence[str], hits: Sequence[Sequence[tuple[str, float]]]
                    ) -> list[list[tuple[str, float]]]:
        """One cross-encoder pass over every query's top ``depth`` (see :func:`rerank_hits`)."""
        texts = [[self.text(item) for item, _ in h[: self.config.depth]] for h in hits]
        return rerank_hits(self.cross, queries, hits, texts, depth=self.config.depth,
                           first_weight=self.config.first_weight)

    def pair_scores(self, query: str, items: Sequence[str]) -> np.ndarray:
        """The cross-encoder's raw logits for judged pairs (comparable across queries)."""
        return self.cross.score([query] * len(items), [self.text(i) for i in items])
