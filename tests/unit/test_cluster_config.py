"""cluster.yaml passes the checks `ray up` runs before it calls AWS, and keeps the layout the jobs rely on.

`ray up` loads the YAML, fills in the AWS defaults (`prepare_config`) and validates the result against
ray/autoscaler/ray-schema.json (`validate_config`); only then does it bootstrap against EC2. We run the
same two functions, then check each node_config against botocore's model of EC2 RunInstances (which
Ray calls with it), all offline.
"""

from __future__ import annotations

import copy
import re
from pathlib import Path
from typing import Any

import botocore.session
import botocore.validate
import jsonschema
import pytest
import yaml
from ray._private.label_utils import validate_node_labels
from ray.autoscaler._private.util import prepare_config, validate_config

CLUSTER_YAML = Path(__file__).resolve().parents[2] / "cluster.yaml"

pytestmark = pytest.mark.timeout(60)


def _raw() -> dict[str, Any]:
    return yaml.safe_load(CLUSTER_YAML.read_text())


def _validated(config: dict[str, Any]) -> dict[str, Any]:
    prepared = prepare_config(copy.deepcopy(config))
    validate_config(prepared)
    return prepared


@pytest.fixture(scope="module")
def config() -> dict[str, Any]:
    return _validated(_raw())


def test_cluster_yaml_passes_rays_own_validation(config: dict[str, Any]) -> None:
    assert config["provider"]["type"] == "aws"
    assert set(config["available_node_types"]) == {"head", "gpu_worker", "serve_worker"}


@pytest.mark.parametrize(
    ("break_it", "message"),
    [
        pytest.param(
            lambda c: c.__setitem__("setup_comands", c.pop("setup_commands")),
            "'setup_comands' was unexpected",
            id="misspelt-top-level-key",
        ),
        pytest.param(
            lambda c: c["available_node_types"]["gpu_worker"]["resources"].update(GPU="one"),
            "'one' is not of type 'integer'",
            id="non-int-resource",
        ),
        pytest.param(
            lambda c: c["available_node_types"]["serve_worker"].pop("node_config"),
            "'node_config' is a required property",
            id="missing-node-config",
        ),
        pytest.param(
            lambda c: c["auth"].update(ssh_usr="ubuntu"),
            "'ssh_usr' was unexpected",
            id="misspelt-auth-key",
        ),
    ],
)
def test_validation_rejects_a_broken_config(break_it, message: str) -> None:
    broken = _raw()
    break_it(broken)
    with pytest.raises(jsonschema.ValidationError, match=re.escape(message)):
        _validated(broken)


def test_head_takes_no_work(config: dict[str, Any]) -> None:
    head = config["available_node_types"][config["head_node_type"]]
    assert head["resources"] == {"CPU": 0}
    assert head["max_workers"] == 0


def test_gpu_workers_autoscale_from_zero(config: dict[str, Any]) -> None:
    gpu = config["available_node_types"]["gpu_worker"]
    assert gpu["min_workers"] == 0
    assert gpu["max_workers"] >= 1
    assert gpu["resources"]["GPU"] >= 1


def test_serve_workers_are_cpu_and_always_up(config: dict[str, Any]) -> None:
    serve = config["available_node_types"]["serve_worker"]
    assert serve["min_workers"] >= 1
    assert serve["resources"].get("GPU", 0) == 0
    assert serve["resources"]["CPU"] >= 1


def test_every_node_gets_s3_access_from_an_instance_profile_not_keys(config: dict[str, Any]) -> None:
    for name, node_type in config["available_node_types"].items():
        profile = node_type["node_config"].get("IamInstanceProfile", {})
        assert profile.get("Name") or profile.get("Arn"), f"{name} has no IamInstanceProfile"
    text = CLUSTER_YAML.read_text().lower()
    for secret_hint in ("aws_access_key_id", "aws_secret_access_key", "secretaccesskey"):
        assert secret_hint not in text


def test_setup_installs_the_project_with_the_gpu_extra(config: dict[str, Any]) -> None:
    install = [cmd for cmd in config["setup_commands"] if "pip install" in cmd and "coldstart" in cmd]
    assert len(install) == 1 and "coldstart[gpu]" in install[0]
    # prepare_config folds setup_commands into both the head's and the workers' lists.
    assert install[0] in config["head_setup_commands"]
    assert install[0] in config["worker_setup_commands"]
    assert any("ray start --head" in cmd for cmd in config["head_start_ray_commands"])
    assert any("ray start --address=$RAY_HEAD_IP" in cmd for cmd in config["worker_start_ray_commands"])


@pytest.mark.parametrize("node_type", ["head", "gpu_worker", "serve_worker"])
def test_node_config_is_a_valid_ec2_run_instances_request(config: dict[str, Any], node_type: str) -> None:
    ec2 = botocore.session.get_session().get_service_model("ec2")
    shape = ec2.operation_model("RunInstances").input_shape
    # Ray adds MinCount/MaxCount (and tags and the subnet) itself before calling RunInstances.
    request = {**config["available_node_types"][node_type]["node_config"], "MinCount": 1, "MaxCount": 1}
    report = botocore.validate.ParamValidator().validate(request, shape)
    assert not report.has_errors(), report.generate_report()


def test_ec2_check_catches_a_misspelt_field() -> None:
    ec2 = botocore.session.get_session().get_service_model("ec2")
    shape = ec2.operation_model("RunInstances").input_shape
    request = {"InstanceType": "g5.xlarge", "IAMInstanceProfile": {"Name": "x"}, "MinCount": 1, "MaxCount": 1}
    assert botocore.validate.ParamValidator().validate(request, shape).has_errors()


def test_node_labels_are_valid_ray_labels(config: dict[str, Any]) -> None:
    for node_type in config["available_node_types"].values():
        validate_node_labels(node_type.get("labels", {}))
