"""Attribute transitions against hand-computed cases, the session signals that hold them, and attribute labels."""

from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from coldstart.signals.transitions import AttributeTransitions, TransitionConfig

ITEMS = ["s1", "s2", "w1", "w2", "x"]
LABELS = {"s1": "sanding", "s2": "sanding", "w1": "wheels", "w2": "wheels", "x": ""}


def test_transitions_hand_computed():
    cfg = TransitionConfig(smoothing=1.0, share_power=1.0, recency=0.5)
    t = AttributeTransitions(ITEMS, LABELS, cfg).fit([["s1", "w1"], ["s1", "w2", "x"], ["s2", "s1"], ["w1", "zzz"]])
    assert t.labels == ["sanding", "wheels"]  # the empty label is no label
    # pairs (both orders): s1-w1, s1-w2, s2-s1 → sanding→sanding 2, sanding→wheels 2, wheels→sanding 2
    assert t.matrix == pytest.approx(np.array([[2 / 5, 2 / 5], [2 / 3, 0.0]]))
    # sessions per item: s1 3, s2 1, w1 2, w2 1; per label: sanding 4, wheels 3
    share = np.array([4 / 5, 2 / 5, 3 / 4, 2 / 4, 0.0])
    assert t.share == pytest.approx(share)
    # clicks w1 (older, weight 0.5) then s2 (weight 1)
    by_label = 0.5 * t.matrix[1] + t.matrix[0]
    expected = np.array([by_label[0], by_label[0], by_label[1], by_label[1], 0.0]) * share
    assert t.scores(["w1", "s2"]) == pytest.approx(expected.astype(np.float32))


def test_unlabelled_and_unknown_clicks_add_nothing():
    t = AttributeTransitions(ITEMS, LABELS).fit([["s1", "w1"], ["s2", "w2"]])
    assert not t.scores(["x", "nope"]).any()
    assert t.scores(["x", "s1"]) == pytest.approx(t.scores(["s1"]))  # an older unlabelled click


def test_share_power_zero_ranks_a_label_alike():
    t = AttributeTransitions(ITEMS, LABELS, TransitionConfig(share_power=0.0)).fit(
        [["s1", "w1"], ["s1", "w1"], ["s2", "w2"]])
    s = t.scores(["s1"])
    assert s[2] == s[3] > 0 and s[4] == 0


def test_bad_config_and_ids_are_refused():
    with pytest.raises(ValueError, match="recency"):
        TransitionConfig(recency=0.0)
    with pytest.raises(ValueError, match="unique"):
        AttributeTransitions(["a", "a"], {})


def test_no_labels_gives_zeros():
    t = AttributeTransitions(["a", "b"], {}).fit([["a", "b"]])
    assert t.scores(["a"]).tolist() == [0.0, 0.0]


def test_attributes_from_text_with_the_configs_pattern_or_from_columns(tmp_path):
    from coldstart.catalog.attributes import read_attributes
    from coldstart.ranking.config import load_retrieval_config

    pattern = load_retrieval_config(Path(__file__).parents[2] / "configs" / "train-cpu.toml").attributes_pattern

    texts = {
        "a": "PORTER-CABLE 4 1/2-Inch Sanding Roll. Industrial & Scientific Abrasive Products Sanding Rolls. PORTER-CABLE.",
        "b": "B&C Eagle Staples (5,000 per box). Industrial & Scientific Fasteners Staples. B & C Eagle.",
        "c": "A title with no categories at all.",
    }
    path = tmp_path / "items.parquet"
    pq.write_table(pa.table({"item_id": list(texts), "text": list(texts.values())}), path)
    labels = read_attributes(path, pattern=pattern)
    assert labels["category"] == {"a": "Industrial & Scientific Abrasive Products Sanding Rolls",
                                  "b": "Industrial & Scientific Fasteners Staples"}
    assert labels["brand"] == {"a": "PORTER-CABLE", "b": "B & C Eagle"}
    # columns win over the text
    pq.write_table(pa.table({"item_id": ["a", "c"], "text": ["x", "y"], "category": ["tools", None],
                             "brand": ["Acme Inc.", "ACME inc"]}), path)
    labels = read_attributes(path, pattern=pattern)
    assert labels["category"] == {"a": "tools"}
    assert labels["brand"] == {"a": "Acme Inc.", "c": "ACME inc"}


def test_session_signals_normalise_brands_and_count_unknown_clicks():
    from coldstart.signals.sessions import SessionSignals

    labels = {"brand": {"s1": "B&C Eagle", "s2": "b & c eagle", "w1": "Acme"}, "category": {}}
    signals = SessionSignals(ITEMS, [["s1", "w1", "gone"], ["s2", "w1"]], labels=labels)
    assert signals.names == ("covisit", "popularity", "brand")  # no category label at all: no signal
    assert signals.transitions["brand"].labels == ["acme", "bceagle"]
    assert signals.info.sessions == 2 and signals.info.clicks == 5 and signals.info.clicks_unknown == 1
    out = signals.signals(["s1"])
    assert set(out) == {"covisit", "popularity", "brand"}
    assert out["covisit"][2] > 0 and out["brand"][2] > 0 and out["brand"][4] == 0
    assert out["popularity"] == pytest.approx(np.log1p([1, 1, 2, 0, 0]))
    with pytest.raises(ValueError, match="not signals"):
        SessionSignals(ITEMS, [], labels={"colour": {"s1": "red"}})


def test_read_attributes(tmp_path):
    from coldstart.catalog.attributes import read_attributes

    path = tmp_path / "attrs.csv"
    path.write_text("item_id,category,brand\ns1,sanding,3M\nw1,,Acme\n")
    assert read_attributes(path) == {"category": {"s1": "sanding"}, "brand": {"s1": "3M", "w1": "Acme"}}
    bad = tmp_path / "bad.csv"
    bad.write_text("item_id,colour\ns1,red\n")
    with pytest.raises(ValueError, match="category"):
        read_attributes(bad)
