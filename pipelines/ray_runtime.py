"""Connecting to Ray: the cluster named by ``RAY_ADDRESS`` when there is one, else a local Ray on loopback.

The laptop profile and the cluster profile differ only here, by ``RAY_ADDRESS`` — never by a second copy of a
job. A local Ray is started with the settings that work on a small machine (see STACK-NOTES): no dashboard,
token auth off (a single-user local session), no usage stats, every port on 127.0.0.1.
"""

from __future__ import annotations

import logging
import os

logger = logging.getLogger(__name__)

_LOCAL_ENV = {
    "RAY_AUTH_MODE": "disabled",
    "RAY_USAGE_STATS_ENABLED": "0",
    "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "0",
    # Ray starts workers at nice 15; on a machine shared with other jobs they then get a fraction of their CPU
    # share (seen: training at ~9% CPU per worker next to plain processes at 20-45%).
    "RAY_worker_niceness": "0",
}


# S3 settings a Ray worker may need that are not secrets. Credentials never travel in a runtime_env: Ray writes it
# in clear text into its logs (runtime_env_agent.log), the job info and the dashboard. Workers find their keys
# through the credential chain — their own environment (a local Ray inherits the driver's), a credentials file
# named by AWS_SHARED_CREDENTIALS_FILE (a path, not a secret), an instance or pod role.
S3_SETTINGS = ("AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_S3", "AWS_REGION", "AWS_DEFAULT_REGION", "AWS_PROFILE",
               "AWS_SHARED_CREDENTIALS_FILE", "AWS_CONFIG_FILE", "AWS_CA_BUNDLE", "AWS_ROLE_ARN",
               "AWS_WEB_IDENTITY_TOKEN_FILE")
SECRETS = ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_SECURITY_TOKEN")


def worker_env() -> dict[str, str]:
    """The driver's non-secret S3 settings, for a ``runtime_env``'s ``env_vars`` (workers of a long-lived Ray may
    have started before the driver set them); never a key or a token."""
    return {name: os.environ[name] for name in S3_SETTINGS if os.environ.get(name)}


def refuse_secrets(env_vars: dict[str, str] | None, *, where: str) -> None:
    """Raise when ``env_vars`` (headed for a runtime_env) holds a credential."""
    found = sorted(set(env_vars or {}) & set(SECRETS))
    if found:
        raise ValueError(f"{where} carries {found}: Ray writes a runtime_env into its logs and job info in clear "
                         "text. Give the workers their credentials through the chain instead: "
                         "AWS_SHARED_CREDENTIALS_FILE (a path), the Ray nodes' environment, or an instance role")


def local_ray_env() -> dict[str, str]:
    """Environment variables for a private local Ray (set before ``ray`` starts processes)."""
    return dict(_LOCAL_ENV)


def init_ray(*, num_cpus: int | None = None, address: str | None = None) -> None:
    """Start or join Ray once per process. ``address`` or ``RAY_ADDRESS`` joins a running cluster."""
    import ray

    if ray.is_initialized():
        return
    address = address or os.environ.get("RAY_ADDRESS")
    from coldstart.logs import adopt_ray_loggers

    if address:
        logger.info("joining the Ray cluster at %s", address)
        ray.init(address=address, log_to_driver=True)
        adopt_ray_loggers()
        return
    for key, value in _LOCAL_ENV.items():
        os.environ.setdefault(key, value)
    _loopback_in_this_process()
    logger.info("starting a local Ray (%s CPUs) on 127.0.0.1", num_cpus or "all")
    ray.init(
        address="local",
        num_cpus=num_cpus,
        include_dashboard=False,
        _node_ip_address="127.0.0.1",
        configure_logging=False,
        log_to_driver=True,
        # in every worker of the job, Ray's own actors among them: drops Ray Train's once-a-second warning that
        # the (dashboard's) state API is unavailable, which it is by design here (coldstart/logs.py)
        runtime_env={"worker_process_setup_hook": "coldstart.logs.ray_worker_setup"},
    )
    adopt_ray_loggers()  # with --log-format json, Ray's driver-side lines are JSON too


def _loopback_in_this_process() -> None:
    """Ray reads RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER once, when ``ray`` is first imported; a job that imported it
    before calling :func:`init_ray` would otherwise resolve ``127.0.0.1`` to the host's interface and start the
    raylet, the agents and the workers on it (seen: a finetune job's raylet on the machine's address, agents on
    0.0.0.0). The child processes read the environment variable set above; this process needs the constant."""
    from ray._private import ray_constants

    if os.environ.get("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER") == "0" and getattr(ray_constants, "ENABLE_RAY_CLUSTER",
                                                                                False):
        ray_constants.ENABLE_RAY_CLUSTER = False


def cluster_resources() -> dict[str, float]:
    import ray

    return dict(ray.cluster_resources())
