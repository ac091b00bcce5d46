"""The serving query encoder: cache hits equal fresh encodings, batches are deduplicated, truncation is reported."""

import numpy as np
import pytest

from coldstart.encoders.encoder import Encoder, EncoderConfig
from coldstart.serving.query_encoding import CachedQueryEncoder


@pytest.fixture(scope="module")
def encoder(tiny_model_dir):
    return Encoder(EncoderConfig(model=str(tiny_model_dir), max_length=16, num_threads=1))


def test_miss_then_hit_gives_the_same_vector(encoder):
    core = CachedQueryEncoder(encoder, cache_size=10)
    key = core.key("  Office   CHAIR ")
    assert key == "office chair"  # the MiniLM tokenizer is uncased, so case folds into the key
    assert core.cached(key) is None
    [fresh] = core.encode([key])
    assert not fresh.cache_hit and fresh.batch_size == 1 and fresh.vector.shape == (encoder.dim,)
    np.testing.assert_allclose(fresh.vector, encoder.encode(["office chair"])[0], atol=1e-6)
    hit = core.cached(core.key("office chair"))
    assert hit.cache_hit and hit.batch_size == 0
    np.testing.assert_array_equal(hit.vector, fresh.vector)
    assert not hit.vector.flags.writeable  # shared with the cache: nobody may change it
    assert (core.cache.hits, core.cache.misses) == (1, 1)


def test_batch_encodes_each_distinct_query_once(encoder):
    core = CachedQueryEncoder(encoder, cache_size=10)
    out = core.encode(["drill", "saw", "drill"])
    assert [e.text for e in out] == ["drill", "saw", "drill"]
    assert {e.batch_size for e in out} == {2}
    np.testing.assert_array_equal(out[0].vector, out[2].vector)
    np.testing.assert_allclose(out[1].vector, encoder.encode(["saw"])[0], atol=1e-6)


def test_long_query_is_flagged_as_truncated(encoder):
    core = CachedQueryEncoder(encoder, cache_size=0)
    short, long = core.encode(["chair", core.key("chair " * 40)])
    assert not short.truncated and short.tokens == 3
    assert long.truncated and long.tokens == 42  # 40 words + [CLS] + [SEP]; the encoder reads 16
