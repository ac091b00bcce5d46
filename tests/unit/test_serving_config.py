"""deploy/serve.yaml is a valid Serve config for this app: schema, loopback, autoscaling, typed args."""

from pathlib import Path

import pytest
import yaml

from coldstart.serving.config import STORE_ENV, ServeAppArgs

CONFIG = Path(__file__).resolve().parents[2] / "deploy" / "serve.yaml"


@pytest.fixture(scope="module")
def config():
    return yaml.safe_load(CONFIG.read_text())


def test_valid_serve_deploy_schema(config):
    from ray.serve.schema import ServeDeploySchema

    [app] = ServeDeploySchema.model_validate(config).applications
    assert app.import_path == "pipelines.serve_app:app_builder"


def test_listens_on_loopback_only(config):
    assert config["http_options"]["host"] == "127.0.0.1"


def test_both_workers_autoscale_and_fit_two_cores(config):
    deployments = {d["name"]: d for d in config["applications"][0]["deployments"]}
    assert set(deployments) == {"QueryEncoder", "Retriever", "Ingress"}
    for name in ("QueryEncoder", "Retriever"):
        scaling = deployments[name]["autoscaling_config"]
        assert 1 <= scaling["min_replicas"] <= scaling["max_replicas"]
        assert scaling["target_ongoing_requests"] > 0
    worst_case = sum(d["ray_actor_options"]["num_cpus"] * d.get("autoscaling_config", {}).get("max_replicas", 1)
                     for d in deployments.values())
    assert worst_case <= 2
    args = ServeAppArgs.model_validate({"store": "/tmp/s", **config["applications"][0]["args"]})
    assert deployments["QueryEncoder"]["max_ongoing_requests"] >= args.batch_max_size


def test_args_validate_with_the_store_from_the_environment(config, monkeypatch):
    monkeypatch.setenv(STORE_ENV, "s3://shop/coldstart")
    args = ServeAppArgs.model_validate(config["applications"][0]["args"])
    assert args.store == "s3://shop/coldstart"
    monkeypatch.delenv(STORE_ENV)
    with pytest.raises(ValueError, match=STORE_ENV):
        ServeAppArgs.model_validate(config["applications"][0]["args"])


def test_a_typo_in_args_names_the_field(config):
    with pytest.raises(ValueError, match="batch_wait_msec"):
        ServeAppArgs.model_validate({"store": "/tmp/s", "batch_wait_msec": 3})
