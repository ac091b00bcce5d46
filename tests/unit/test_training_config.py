"""The training and retrieval configs: shipped files load, bad values are refused with a hint."""

from pathlib import Path

import pytest

from coldstart.ranking.config import load_retrieval_config, retrieval_config_from_dict
from coldstart.training.config import TrainConfig, load_train_config, train_config_from_dict
from jobs.finetune import build_config, parse_overrides

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize("name", ["train-cpu.toml", "train-gpu.toml"])
def test_shipped_configs_load(name):
    config = load_train_config(ROOT / "configs" / name)
    assert config.max_steps > 0 and config.objective == "bi_encoder"
    reranker = load_train_config(ROOT / "configs" / name, "reranker")
    assert reranker.objective == "cross_encoder" and reranker.max_steps > 0
    retrieval = load_retrieval_config(ROOT / "configs" / name)
    assert retrieval.query_weights["dense"] > 0 and retrieval.pair_score == "reranker"


def test_a_missing_table_and_an_unknown_objective_are_refused(tmp_path):
    path = tmp_path / "only-train.toml"
    path.write_text("[train]\nmax_steps = 3\n")
    with pytest.raises(ValueError, match=r"no \[reranker\] table"):
        load_train_config(path, "reranker")
    with pytest.raises(ValueError, match="objective"):
        TrainConfig(objective="colbert")
    with pytest.raises(ValueError, match="random_negatives"):
        TrainConfig(random_negatives=1.5)


def test_unknown_keys_and_bad_values_are_refused():
    with pytest.raises(ValueError, match="unknown keys"):
        train_config_from_dict({"learning_rate": 1e-5})
    with pytest.raises(ValueError, match="negative_max_grade"):
        TrainConfig(negative_max_grade=3, relevant_min_grade=3)
    with pytest.raises(ValueError, match="unknown signals"):
        retrieval_config_from_dict({"query": {"dense": 1.0, "colbert": 1.0}})


def test_overrides_reach_nested_sections():
    assert parse_overrides(["max_steps=7", "adversarial.method='pgd'"]) == {
        "max_steps": 7, "adversarial": {"method": "pgd"}}
    config = build_config(str(ROOT / "configs" / "train-cpu.toml"), ["max_steps=7", "adversarial.method='fgm'"])
    assert config.max_steps == 7 and config.adversarial.method == "fgm" and config.lr == 5e-5
