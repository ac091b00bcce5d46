"""The two Serve configs — deploy/serve.yaml (a laptop, fused) and the KubeRay RayService's serveConfigV2 (a
cluster, composed) — pass the same checks: Serve's own schema, typed args, the deployments their topology builds,
batches that can fill, bounded queues that answer 503 with Retry-After, a request timeout, the same replica
environment."""

from pathlib import Path

import pytest
import yaml

from coldstart.serving.config import STORE_ENV, ServeAppArgs

ROOT = Path(__file__).resolve().parents[2]
LAPTOP = ROOT / "deploy" / "serve.yaml"
CLUSTER = ROOT / "deploy" / "kuberay" / "rayservice.yaml"


def _laptop() -> dict:
    return yaml.safe_load(LAPTOP.read_text())


def _cluster() -> dict:
    [service] = [d for d in yaml.safe_load_all(CLUSTER.read_text()) if d and d["kind"] == "RayService"]
    return yaml.safe_load(service["spec"]["serveConfigV2"])


@pytest.fixture(params=["laptop", "cluster"])
def config(request):
    return {"laptop": _laptop, "cluster": _cluster}[request.param]()


def _app(config) -> dict:
    [app] = config["applications"]
    return app


def _args(config) -> ServeAppArgs:
    return ServeAppArgs.model_validate({"store": "/tmp/s", **_app(config).get("args", {})})


def test_valid_serve_deploy_schema(config):
    from ray.serve.schema import ServeDeploySchema

    [app] = ServeDeploySchema.model_validate(config).applications
    assert app.import_path == "pipelines.serve_app:app_builder"


def test_the_deployments_are_those_the_topology_builds_and_their_batches_can_fill(config):
    args = _args(config)
    deployments = {d["name"]: d for d in _app(config)["deployments"]}
    assert set(deployments) == set(args.deployments())
    for name, batch in args.deployments().items():
        assert deployments[name]["max_ongoing_requests"] >= batch, \
            f"{name}: max_ongoing_requests below its batch size {batch}: the batch never fills"


def test_queues_are_bounded_and_answer_503_with_retry_after_and_requests_time_out(config):
    ingress = next(d for d in _app(config)["deployments"] if d["name"] == "Ingress")
    # the replica refuses beyond max_pending; Serve's router must not queue before that (it backs off and retries)
    assert ingress["max_ongoing_requests"] > _args(config).max_pending
    assert 0 < ingress["max_queued_requests"] <= 4 * ingress["max_ongoing_requests"]
    assert ingress["backpressure_config"]["status_code"] == 503
    assert ingress["backpressure_config"]["retry_after_s"] >= 1
    assert 0 < config["http_options"]["request_timeout_s"] <= 30


def test_both_run_the_replicas_with_the_same_tuned_environment():
    assert _app(_laptop())["runtime_env"]["env_vars"] == _app(_cluster())["runtime_env"]["env_vars"]
    for config in (_laptop(), _cluster()):  # no Serve access log line per request, in the proxy or the replicas
        assert config["logging_config"]["enable_access_log"] is False
        assert _app(config)["logging_config"]["enable_access_log"] is False


def test_both_rank_with_the_batch_blend_and_share_the_batch_settings():
    laptop, cluster = _args(_laptop()), _args(_cluster())
    assert laptop.retriever == cluster.retriever == "blend" and laptop.session_signals and cluster.session_signals
    for field in ("ingress_batch_max_size", "ingress_batch_wait_ms", "query_cache_size", "max_length",
                  "poll_interval_s"):
        assert getattr(laptop, field) == getattr(cluster, field), field


def test_the_laptop_config_listens_on_loopback_and_fits_two_cores():
    config = _laptop()
    assert config["http_options"]["host"] == "127.0.0.1"
    assert _args(config).topology == "fused"
    total = sum(d["ray_actor_options"]["num_cpus"] * d.get("num_replicas", 1) for d in _app(config)["deployments"])
    assert total <= 2


def test_args_validate_with_the_store_from_the_environment(monkeypatch):
    args = _app(_laptop())["args"]
    monkeypatch.setenv(STORE_ENV, "s3://shop/coldstart")
    assert ServeAppArgs.model_validate(args).store == "s3://shop/coldstart"
    monkeypatch.delenv(STORE_ENV)
    with pytest.raises(ValueError, match=STORE_ENV):
        ServeAppArgs.model_validate(args)


def test_a_typo_in_args_names_the_field():
    with pytest.raises(ValueError, match="batch_wait_msec"):
        ServeAppArgs.model_validate({"store": "/tmp/s", "batch_wait_msec": 3})
