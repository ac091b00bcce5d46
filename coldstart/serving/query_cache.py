"""A bounded LRU cache of query embeddings, keyed by the normalised query text.

Search boxes repeat themselves: the same few hundred queries ("drill", "office chair") come from many users, and
a keystroke stream repeats prefixes. A hit skips the transformer's forward pass entirely.

The key is the query as the encoder will see it: Unicode NFKC (full-width "ｎｉｋｅ" → "nike"), runs of
whitespace collapsed, ends stripped, and lower-cased only when the tokenizer lower-cases anyway (an uncased
model like MiniLM gives "Nike" and "nike" the same vector; a cased one does not). The serving encoder embeds
the normalised text, so a hit returns exactly the vector a miss would have computed.
"""

from __future__ import annotations

import threading
import unicodedata
from collections import OrderedDict
from typing import Generic, TypeVar

V = TypeVar("V")


def normalise_query(text: str, *, lowercase: bool) -> str:
    """NFKC, whitespace runs → one space, stripped, and case-folded when ``lowercase``."""
    text = " ".join(unicodedata.normalize("NFKC", text).split())
    return text.lower() if lowercase else text


class QueryCache(Generic[V]):
    """LRU of at most ``capacity`` entries with hit and miss counters; ``capacity=0`` disables caching.

    Thread-safe: the serving encoder reads it on its event loop and fills it from the thread that runs the
    forward pass.
    """

    def __init__(self, capacity: int):
        if capacity < 0:
            raise ValueError(f"query cache capacity={capacity}: use 0 (off) or a positive number of entries")
        self.capacity = capacity
        self.hits = 0
        self.misses = 0
        self._entries: OrderedDict[str, V] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key: str) -> V | None:
        """The cached value (now most recently used), or None; counts a hit or a miss."""
        with self._lock:
            value = self._entries.get(key)
            if value is None:
                self.misses += 1
                return None
            self._entries.move_to_end(key)
            self.hits += 1
            return value

    def put(self, key: str, value: V) -> None:
        """Insert or refresh ``key``; evicts the least recently used entry beyond capacity."""
        if self.capacity == 0:
            return
        with self._lock:
            self._entries[key] = value
            self._entries.move_to_end(key)
            while len(self._entries) > self.capacity:
                self._entries.popitem(last=False)

    def __len__(self) -> int:
        return len(self._entries)

    def __contains__(self, key: str) -> bool:  # does not count as a lookup
        return key in self._entries

    @property
    def hit_ratio(self) -> float:
        lookups = self.hits + self.misses
        return self.hits / lookups if lookups else 0.0
