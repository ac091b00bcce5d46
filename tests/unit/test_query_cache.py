"""The query cache: normalised keys, LRU eviction, hit/miss counters."""

import pytest

from coldstart.serving.query_cache import QueryCache, normalise_query


def test_normalise_query():
    assert normalise_query("  Office\t\nChair  ", lowercase=True) == "office chair"
    assert normalise_query("ｎｉｋｅ　Ｓｈｏｅｓ", lowercase=True) == "nike shoes"  # full-width → NFKC
    assert normalise_query("Nike  Shoes", lowercase=False) == "Nike Shoes"  # a cased model keeps case
    assert normalise_query("Nike鞋", lowercase=True) == "nike鞋"


def test_lru_eviction_and_recency():
    cache = QueryCache(2)
    cache.put("a", 1)
    cache.put("b", 2)
    assert cache.get("a") == 1  # a is now the most recent
    cache.put("c", 3)  # evicts b, the least recently used
    assert "b" not in cache and cache.get("a") == 1 and cache.get("c") == 3
    assert len(cache) == 2


def test_counters_and_ratio():
    cache = QueryCache(10)
    assert cache.hit_ratio == 0.0
    assert cache.get("x") is None
    cache.put("x", "v")
    assert cache.get("x") == "v" and cache.get("x") == "v"
    assert (cache.hits, cache.misses) == (2, 1)
    assert cache.hit_ratio == pytest.approx(2 / 3)


def test_capacity_zero_disables_and_negative_is_refused():
    cache = QueryCache(0)
    cache.put("x", 1)
    assert cache.get("x") is None and len(cache) == 0
    with pytest.raises(ValueError, match="capacity"):
        QueryCache(-1)
