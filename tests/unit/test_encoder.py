import numpy as np
import pytest

from coldstart.encoders.encoder import Encoder, EncoderConfig, encoder_fingerprint


def test_config_errors_say_what_to_change():
    with pytest.raises(ValueError, match="pooling"):
        EncoderConfig(pooling="max")
    with pytest.raises(ValueError, match="device"):
        EncoderConfig(device="tpu")


def test_length_sorted_batching_gives_the_same_vectors(tiny_model_dir):
    enc = Encoder(EncoderConfig(model=str(tiny_model_dir), batch_size=3))
    texts = ["a", "a much longer product title with many words in it", "drill", "", "cordless drill 20V"]
    batched = enc.encode(texts)
    one_by_one = np.stack([enc.encode([t])[0] for t in texts])
    np.testing.assert_allclose(batched, one_by_one, atol=1e-5)
    assert batched.dtype == np.float32 and batched.shape == (5, enc.dim)
    np.testing.assert_allclose(np.linalg.norm(batched, axis=1), 1.0, atol=1e-5)


def test_fingerprint_depends_on_pooling_and_weights(tiny_model_dir, tmp_path):
    from tests.fixtures.models import save_tiny_bert

    mean = encoder_fingerprint(tiny_model_dir, pooling="mean", max_length=128)
    assert mean != encoder_fingerprint(tiny_model_dir, pooling="cls", max_length=128)
    other = save_tiny_bert(tmp_path / "other", seed=1)
    assert mean != encoder_fingerprint(other, pooling="mean", max_length=128)
    assert Encoder(EncoderConfig(model=str(tiny_model_dir))).fingerprint == mean


def test_missing_model_dir_is_clear(tmp_path):
    with pytest.raises(FileNotFoundError, match="no config.json"):
        Encoder(EncoderConfig(model=str(tmp_path)))


def test_packaged_minilm_matches_reference_and_ranks_nike():
    """The real packaged model: 'Nike' must rank 'Nike鞋' above 'Adidas鞋' (the user's own example)."""
    enc = Encoder(EncoderConfig())
    q, nike, adidas = enc.encode(["Nike", "Nike鞋", "Adidas鞋"])
    assert enc.dim == 384
    assert float(q @ nike) > float(q @ adidas)
