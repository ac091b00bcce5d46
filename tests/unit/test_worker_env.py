"""What a runtime_env may carry to Ray workers: S3 settings, never a credential (Ray logs runtime envs)."""

import pytest

from pipelines.ray_runtime import SECRETS, refuse_secrets, worker_env


def test_worker_env_carries_the_s3_settings_and_no_credential(monkeypatch):
    monkeypatch.setenv("AWS_ENDPOINT_URL", "http://127.0.0.1:8333")
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", "/etc/coldstart/s3.credentials")
    for name in SECRETS:
        monkeypatch.setenv(name, "do-not-log-me")
    env = worker_env()
    assert env["AWS_ENDPOINT_URL"] == "http://127.0.0.1:8333"
    assert env["AWS_SHARED_CREDENTIALS_FILE"] == "/etc/coldstart/s3.credentials"
    assert "do-not-log-me" not in env.values() and not set(env) & set(SECRETS)


def test_a_runtime_env_with_a_key_is_refused_with_what_to_do_instead():
    refuse_secrets({"AWS_ENDPOINT_URL": "http://x"}, where="test")
    with pytest.raises(ValueError, match="AWS_SHARED_CREDENTIALS_FILE"):
        refuse_secrets({"AWS_SESSION_TOKEN": "t"}, where="test")


def test_no_library_or_glue_module_copies_every_aws_variable():
    """The pattern that leaked the secret key into Ray's logs (a copy of every AWS_* variable) is gone."""
    from pathlib import Path

    root = Path(__file__).resolve().parents[2]
    offenders = [str(p.relative_to(root)) for folder in ("coldstart", "pipelines", "jobs")
                 for p in (root / folder).rglob("*.py") if 'startswith("AWS_")' in p.read_text()]
    assert offenders == []
