import numpy as np
import pytest

from coldstart.ranking.user_vector import ProfileConfig, build_profile, clicks_vector


def test_query_only_is_normalised_query():
    q = np.array([3.0, 4.0], np.float32)
    np.testing.assert_allclose(build_profile(q, None), [0.6, 0.8], rtol=1e-6)


def test_recency_decay_by_hand():
    clicks = np.array([[1.0, 0.0], [0.0, 1.0]], np.float32)  # oldest first
    # weights: oldest 0.5, latest 1 → (0.5, 1) / 1.5, normalised → (1, 2)/sqrt(5)
    np.testing.assert_allclose(clicks_vector(clicks, 0.5), np.array([1, 2]) / np.sqrt(5), rtol=1e-6)


def test_query_and_clicks_mix():
    q = np.array([1.0, 0.0], np.float32)
    c = np.array([[0.0, 1.0]], np.float32)
    p = build_profile(q, c, ProfileConfig(query_weight=0.75))
    np.testing.assert_allclose(p, np.array([0.75, 0.25]) / np.linalg.norm([0.75, 0.25]), rtol=1e-6)


def test_needs_some_signal_and_valid_config():
    with pytest.raises(ValueError, match="query or at least one"):
        build_profile(None, np.zeros((0, 2), np.float32))
    with pytest.raises(ValueError, match="query_weight"):
        ProfileConfig(query_weight=1.5)
