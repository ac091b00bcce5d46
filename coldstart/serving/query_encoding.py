"""Query encoding for serving: the encoder behind a query cache, one forward pass per batch of distinct queries.

The serving query-encoder replica batches concurrent requests (Ray Serve's ``@serve.batch``) and hands each
batch of *cache misses* to :meth:`CachedQueryEncoder.encode`; hits never reach the batch. Each result says
whether it came from the cache, how large the forward batch was, and whether the query was longer than the
encoder reads (``max_length`` tokens) and so was cut.
"""

from __future__ import annotations

import dataclasses
import logging
from dataclasses import dataclass
from typing import Sequence

import numpy as np

from coldstart.encoders.encoder import Encoder
from coldstart.serving.query_cache import QueryCache, normalise_query

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class QueryEmbedding:
    vector: np.ndarray  # (d,) float32, L2-normalised, read-only (shared with the cache)
    text: str  # the normalised text that was encoded
    tokens: int  # token count before truncation, special tokens included
    truncated: bool  # tokens > the encoder's max_length: only the first max_length were read
    cache_hit: bool = False
    batch_size: int = 0  # distinct texts in the forward pass that computed it; 0 for a cache hit


class CachedQueryEncoder:
    """An :class:`~coldstart.encoders.encoder.Encoder` with a bounded LRU of query vectors in front of it."""

    def __init__(self, encoder: Encoder, *, cache_size: int):
        self.encoder = encoder
        self.cache: QueryCache[QueryEmbedding] = QueryCache(cache_size)
        self.lowercase = encoder.lowercases
        self.max_length = encoder.config.max_length

    def key(self, text: str) -> str:
        """The normalised text: the cache key and what is encoded (see :mod:`coldstart.serving.query_cache`)."""
        return normalise_query(text, lowercase=self.lowercase)

    def cached(self, key: str) -> QueryEmbedding | None:
        """The cached embedding of a normalised query (marked as a hit), or None; counts the lookup."""
        hit = self.cache.get(key)
        return dataclasses.replace(hit, cache_hit=True, batch_size=0) if hit is not None else None

    def encode(self, keys: Sequence[str]) -> list[QueryEmbedding]:
        """Embed normalised queries in one forward pass over the distinct ones, and cache them.

        Blocking (a transformer forward pass): the serving replica runs it in a worker thread.
        """
        unique = list(dict.fromkeys(keys))
        vectors = self.encoder.encode(unique, batch_size=max(1, len(unique)))
        tokens = self.encoder.token_lengths(unique)
        out: dict[str, QueryEmbedding] = {}
        for text, row, n_tokens in zip(unique, vectors, tokens):
            vector = row.copy()  # its own buffer: an evicted entry frees its memory
            vector.setflags(write=False)
            embedding = QueryEmbedding(vector=vector, text=text, tokens=int(n_tokens),
                                       truncated=bool(n_tokens > self.max_length), batch_size=len(unique))
            self.cache.put(text, embedding)
            out[text] = embedding
        return [out[k] for k in keys]
