"""The shipped profiles load and say what they promise."""

from __future__ import annotations

from pathlib import Path

import pytest

from coldstart.config import JobConfig, load_config

CONFIGS = Path(__file__).resolve().parents[2] / "configs"


def test_laptop_profile_is_local_and_fits_two_cores():
    config = load_config(CONFIGS / "laptop.toml")
    assert "://" not in config.store  # a local folder
    assert config.encoder.model == "default"
    assert config.embed.actors == 2 and config.embed.cpus_per_actor == 0.5 and config.embed.gpus_per_actor == 0
    assert config.embed.actors * config.embed.cpus_per_actor < 2  # leaves room for the read tasks
    assert config.embed.incremental


def test_cluster_profile_uses_s3_gpus_and_hnsw():
    config = load_config(CONFIGS / "cluster.toml")
    assert config.store.startswith("s3://") and config.catalog.startswith("s3://")
    assert config.embed.gpus_per_actor == 1 and config.embed.cpus_per_actor == 1
    assert config.index.kind == "hnsw"
    assert config.encoder.device == "auto"  # a CPU-only head node can still run the driver
    assert config.embed.incremental


@pytest.mark.parametrize("name", ["laptop.toml", "cluster.toml"])
def test_flags_override_the_profile(name):
    config = load_config(CONFIGS / name).replace(catalog="/data/catalog.parquet", store="/tmp/store")
    assert (config.catalog, config.store) == ("/data/catalog.parquet", "/tmp/store")


def test_a_job_config_may_carry_the_retrieval_weights(tmp_path):
    from coldstart.ranking.config import load_retrieval_config

    path = tmp_path / "job.toml"
    path.write_text('store = "x"\n[retrieval.clicks]\ncovisit = 1.0\nbrand = 0.2\n')
    assert load_config(path).store == "x"
    assert load_retrieval_config(path).click_weights == {"covisit": 1.0, "brand": 0.2}
    path.write_text('[retrieval.clicks]\ncovisti = 1.0\n')
    with pytest.raises(ValueError, match=r"\[retrieval\].*covisti"):
        load_config(path)


def test_old_retrieval_table_names_still_read_with_a_deprecation_warning(tmp_path):
    from coldstart.ranking.config import load_retrieval_config

    path = tmp_path / "job.toml"
    path.write_text('[retrieval.homedepot]\ndense = 1.0\nbm25 = 0.3\n[retrieval.sessions]\ncontent = 0.5\ncovisit = 1.0\n')
    with pytest.warns(DeprecationWarning) as seen:
        config = load_retrieval_config(path)
    assert config.query_weights == {"dense": 1.0, "bm25": 0.3}
    assert config.click_weights == {"dense": 0.5, "covisit": 1.0}
    assert {"[retrieval.homedepot] is now [retrieval.query]", "[retrieval.sessions] is now [retrieval.clicks]"} <= {
        str(w.message).split(";")[0] for w in seen}
    path.write_text('[retrieval.sessions]\ncovisit = 1.0\n[retrieval.clicks]\ncovisit = 1.0\n')
    with pytest.raises(ValueError, match="same table"), pytest.warns(DeprecationWarning):
        load_retrieval_config(path)


def test_a_job_config_may_carry_the_training_tables():
    config = load_config(CONFIGS / "train-cpu.toml")
    assert config.store == JobConfig().store  # [train]/[reranker] are jobs.finetune's; the job config ignores them
