"""The KubeRay manifests name what the app needs: renaming a deployment, the import path, the entrypoint
or the store variable in one place and not the other breaks these tests."""

from __future__ import annotations

import ast
from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
KUBERAY = ROOT / "deploy" / "kuberay"

IMPORT_PATH = "pipelines.serve_app:app_builder"
DEPLOYMENTS = {"QueryEncoder", "Retriever", "Ingress"}
AUTOSCALED = {"QueryEncoder", "Retriever"}
ENTRYPOINT = "python -m jobs.reembed --config configs/cluster.toml"
RAY_VERSION = "2.60.0"

pytestmark = pytest.mark.timeout(30)


def _docs(name: str) -> list[dict[str, Any]]:
    return [doc for doc in yaml.safe_load_all((KUBERAY / name).read_text()) if doc is not None]


def _one(docs: list[dict[str, Any]], kind: str) -> dict[str, Any]:
    matches = [d for d in docs if d["kind"] == kind]
    assert len(matches) == 1, f"expected one {kind}, found {len(matches)}"
    return matches[0]


def _pod_specs(cluster_spec: dict[str, Any]) -> dict[str, dict[str, Any]]:
    specs = {"head": cluster_spec["headGroupSpec"]["template"]["spec"]}
    for group in cluster_spec["workerGroupSpecs"]:
        specs[group["groupName"]] = group["template"]["spec"]
    return specs


def _env(container: dict[str, Any]) -> dict[str, str]:
    return {e["name"]: e["value"] for e in container.get("env", [])}


@pytest.fixture(scope="module")
def service_docs() -> list[dict[str, Any]]:
    return _docs("rayservice.yaml")


@pytest.fixture(scope="module")
def rayservice(service_docs) -> dict[str, Any]:
    return _one(service_docs, "RayService")


@pytest.fixture(scope="module")
def serve_config(rayservice) -> dict[str, Any]:
    return yaml.safe_load(rayservice["spec"]["serveConfigV2"])


@pytest.fixture(scope="module")
def reembed_docs() -> list[dict[str, Any]]:
    return _docs("nightly-reembed.yaml")


@pytest.fixture(scope="module")
def rayjob(reembed_docs) -> dict[str, Any]:
    template = _one(reembed_docs, "ConfigMap")["data"]["rayjob.yaml"]
    return yaml.safe_load(template)


# ------------------------------------------------------------------------------------------ RayService
def test_rayservice_kinds(service_docs, rayservice) -> None:
    assert rayservice["apiVersion"] == "ray.io/v1"
    assert rayservice["metadata"]["name"] == "coldstart"
    assert {d["kind"] for d in service_docs} == {"ServiceAccount", "RayService"}


def test_serve_app_import_path_and_deployments(serve_config) -> None:
    (app,) = serve_config["applications"]
    assert app["import_path"] == IMPORT_PATH
    assert app["route_prefix"] == "/"
    assert {d["name"] for d in app["deployments"]} == DEPLOYMENTS


@pytest.mark.parametrize("name", sorted(AUTOSCALED))
def test_deployment_autoscales(serve_config, name: str) -> None:
    (app,) = serve_config["applications"]
    deployment = next(d for d in app["deployments"] if d["name"] == name)
    scaling = deployment["autoscaling_config"]
    assert "num_replicas" not in deployment, "num_replicas and autoscaling_config are mutually exclusive"
    assert 1 <= scaling["min_replicas"] <= scaling["max_replicas"]
    assert scaling["target_ongoing_requests"] > 0


def test_cluster_has_head_and_cpu_and_gpu_workers(rayservice) -> None:
    cluster = rayservice["spec"]["rayClusterConfig"]
    assert cluster["rayVersion"] == RAY_VERSION
    assert cluster["headGroupSpec"]["rayStartParams"]["num-cpus"] == "0"
    groups = {g["groupName"]: g for g in cluster["workerGroupSpecs"]}
    assert set(groups) == {"cpu", "gpu"}
    assert groups["cpu"]["minReplicas"] >= 1
    assert groups["gpu"]["minReplicas"] == 0
    (gpu_container,) = groups["gpu"]["template"]["spec"]["containers"]
    assert gpu_container["resources"]["limits"]["nvidia.com/gpu"] == "1"


def test_every_ray_container_gets_the_store_and_one_image(rayservice) -> None:
    images = set()
    for group, pod in _pod_specs(rayservice["spec"]["rayClusterConfig"]).items():
        for container in pod["containers"]:
            images.add(container["image"])
            assert _env(container)["COLDSTART_STORE"].startswith("s3://"), group
    assert len(images) == 1, f"Ray version skew risk: groups run different images {images}"


def test_s3_access_is_irsa_not_keys(service_docs, rayservice) -> None:
    accounts = {d["metadata"]["name"]: d for d in service_docs if d["kind"] == "ServiceAccount"}
    for group, pod in _pod_specs(rayservice["spec"]["rayClusterConfig"]).items():
        account = accounts.get(pod.get("serviceAccountName"))
        assert account is not None, f"{group} does not run as the IRSA service account"
        assert account["metadata"]["annotations"]["eks.amazonaws.com/role-arn"].startswith("arn:aws:iam::")


@pytest.mark.parametrize("name", ["rayservice.yaml", "nightly-reembed.yaml"])
def test_no_static_credentials(name: str) -> None:
    text = (KUBERAY / name).read_text()
    for secret_hint in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN"):
        assert secret_hint not in text


# ------------------------------------------------------------------------------------- nightly re-embed
def test_reembed_kinds(reembed_docs, rayjob) -> None:
    assert {d["kind"] for d in reembed_docs} == {"ServiceAccount", "Role", "RoleBinding", "ConfigMap", "CronJob"}
    assert rayjob["apiVersion"] == "ray.io/v1"
    assert rayjob["kind"] == "RayJob"


def test_rayjob_runs_the_reembed_job_and_cleans_up(rayjob) -> None:
    spec = rayjob["spec"]
    assert spec["entrypoint"] == ENTRYPOINT
    assert spec["shutdownAfterJobFinishes"] is True
    assert rayjob["metadata"]["generateName"].endswith("-"), "each night needs a fresh name"
    assert "name" not in rayjob["metadata"]
    assert spec["rayClusterSpec"]["rayVersion"] == RAY_VERSION
    # A stuck run must end before the next night's one starts.
    assert spec["activeDeadlineSeconds"] < 24 * 3600


def test_cronjob_submits_the_rayjob_template(reembed_docs) -> None:
    cron = _one(reembed_docs, "CronJob")
    assert cron["apiVersion"] == "batch/v1"
    assert cron["spec"]["concurrencyPolicy"] == "Forbid"
    assert len(cron["spec"]["schedule"].split()) == 5
    pod = cron["spec"]["jobTemplate"]["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    mount = container["volumeMounts"][0]["mountPath"]
    assert container["command"] == ["kubectl", "create", "-f", f"{mount}/rayjob.yaml"]
    configmap = _one(reembed_docs, "ConfigMap")
    assert pod["volumes"][0]["configMap"]["name"] == configmap["metadata"]["name"]

    role = _one(reembed_docs, "Role")
    binding = _one(reembed_docs, "RoleBinding")
    assert binding["roleRef"]["name"] == role["metadata"]["name"]
    assert binding["subjects"][0]["name"] == pod["serviceAccountName"]
    assert any("rayjobs" in r["resources"] and "create" in r["verbs"] for r in role["rules"])


def test_reembed_writes_where_the_service_reads(rayjob, rayservice, service_docs) -> None:
    service_pods = _pod_specs(rayservice["spec"]["rayClusterConfig"])
    job_pods = _pod_specs(rayjob["spec"]["rayClusterSpec"])
    service_store = {_env(c)["COLDSTART_STORE"] for pod in service_pods.values() for c in pod["containers"]}
    job_store = {_env(c)["COLDSTART_STORE"] for pod in job_pods.values() for c in pod["containers"]}
    assert job_store == service_store and len(job_store) == 1
    # Same image, same IRSA service account (defined in rayservice.yaml).
    service_images = {c["image"] for pod in service_pods.values() for c in pod["containers"]}
    job_images = {c["image"] for pod in job_pods.values() for c in pod["containers"]}
    assert job_images == service_images
    accounts = {d["metadata"]["name"] for d in service_docs if d["kind"] == "ServiceAccount"}
    assert {pod["serviceAccountName"] for pod in job_pods.values()} <= accounts


# --------------------------------------------------------------------------- manifests vs. the code
def _module_file(dotted: str) -> Path:
    return ROOT.joinpath(*dotted.split(".")).with_suffix(".py")


def test_import_path_names_a_top_level_callable_in_the_repo() -> None:
    module, _, attr = IMPORT_PATH.partition(":")
    path = _module_file(module)
    if not path.exists():
        pytest.skip(f"{path.relative_to(ROOT)} is not on this branch yet")
    tree = ast.parse(path.read_text())
    names = {n.name for n in tree.body if isinstance(n, (ast.FunctionDef, ast.ClassDef))}
    names |= {t.id for n in tree.body if isinstance(n, ast.Assign) for t in n.targets if isinstance(t, ast.Name)}
    assert attr in names, f"{path.relative_to(ROOT)} defines no top-level {attr!r}"


def test_entrypoint_module_and_config_exist_in_the_repo() -> None:
    argv = ENTRYPOINT.split()
    module = _module_file(argv[argv.index("-m") + 1])
    config = ROOT / argv[argv.index("--config") + 1]
    missing = [str(p.relative_to(ROOT)) for p in (module, config) if not p.exists()]
    if missing:
        pytest.skip(f"not on this branch yet: {', '.join(missing)}")
