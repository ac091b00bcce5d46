"""Popularity / class resampling weights and seeded pair draws."""

from __future__ import annotations

import numpy as np
import pytest

from coldstart.training.resample import popularity_weights, resample_pairs

COUNTS = np.array([500, 120, 40, 10, 3, 1, 0])


def entropy(p: np.ndarray) -> float:
    p = p[p > 0]
    return float(-(p * np.log(p)).sum())


def test_temperature_one_keeps_the_empirical_distribution():
    np.testing.assert_allclose(popularity_weights(COUNTS, temperature=1.0), COUNTS / COUNTS.sum())


def test_temperature_zero_is_uniform_over_items_with_pairs():
    w = popularity_weights(COUNTS, temperature=0.0)
    np.testing.assert_allclose(w[:-1], 1 / 6)
    assert w[-1] == 0.0, "an item without pairs cannot be drawn"


def test_lower_temperature_flattens_monotonically():
    taus = [1.0, 0.75, 0.5, 0.25, 0.0]
    weights = [popularity_weights(COUNTS, temperature=t) for t in taus]
    entropies = [entropy(w) for w in weights]
    head_share = [w[0] for w in weights]
    assert entropies == sorted(entropies) and len(set(entropies)) == len(taus)
    assert head_share == sorted(head_share, reverse=True)
    for w in weights:  # flattening never reorders items
        assert np.all(np.diff(w[:-1]) <= 0)
        assert w.sum() == pytest.approx(1.0)


def test_class_labels_two_level_weights():
    counts = np.array([90, 10, 5, 5])
    labels = np.array(["tools", "tools", "paint", "paint"])
    empirical = popularity_weights(counts, temperature=1.0, labels=labels)
    np.testing.assert_allclose(empirical, counts / counts.sum())
    balanced = popularity_weights(counts, temperature=1.0, labels=labels, class_temperature=0.0)
    np.testing.assert_allclose(balanced, [0.45, 0.05, 0.25, 0.25])
    uniform = popularity_weights(counts, temperature=0.0, labels=labels)
    np.testing.assert_allclose(uniform, [0.25] * 4)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"counts": [1, -1]}, ">= 0"),
        ({"counts": [0, 0]}, "no training pairs"),
        ({"counts": [1, 2], "temperature": -0.5}, "temperature"),
        ({"counts": [1, 2], "labels": [0]}, "one label per item"),
    ],
)
def test_bad_inputs_are_explained(kwargs, message):
    with pytest.raises(ValueError, match=message):
        popularity_weights(**kwargs)


def test_resampled_pairs_follow_the_weights_and_are_seeded():
    pair_items = np.repeat(np.arange(4), [700, 200, 80, 20])
    for tau in (0.0, 0.5, 1.0):
        draw = resample_pairs(
            pair_items, rng=np.random.default_rng(7), temperature=tau, n_samples=40_000
        )
        again = resample_pairs(
            pair_items, rng=np.random.default_rng(7), temperature=tau, n_samples=40_000
        )
        np.testing.assert_array_equal(draw, again)
        assert draw.dtype == np.int64 and draw.min() >= 0 and draw.max() < len(pair_items)
        observed = np.bincount(pair_items[draw], minlength=4) / len(draw)
        expected = popularity_weights(np.bincount(pair_items), temperature=tau)
        np.testing.assert_allclose(observed, expected, atol=0.01)


def test_resample_defaults_to_one_epoch_and_respects_item_labels():
    pair_items = np.array([0, 0, 0, 1, 2])
    draw = resample_pairs(pair_items, rng=np.random.default_rng(0))
    assert draw.shape == (5,)
    with pytest.raises(ValueError, match="label for every item"):
        resample_pairs(pair_items, rng=np.random.default_rng(0), item_labels=[0, 1])
    with pytest.raises(TypeError, match="default_rng"):
        resample_pairs(pair_items, rng=42)  # type: ignore[arg-type]
