"""The test S3 server behaves like S3 where our code depends on it: auth is enforced, identities are
scoped, and boto3 and pyarrow both work against it with nothing but the AWS_* variables."""

from __future__ import annotations

import os
import socket
import sys
from pathlib import Path

import boto3
import botocore
import botocore.config
import botocore.exceptions
import pyarrow as pa
import pyarrow.fs
import pyarrow.parquet as pq
import pytest

from tests.fixtures.s3 import S3TestServer, unique_bucket_name
from tests.fixtures.seaweed import HOST, PORT_NAMES, SeaweedServer

pytestmark = pytest.mark.s3


def _bucket_name(uri: str) -> str:
    assert uri.startswith("s3://")
    return uri.removeprefix("s3://")


def _error_code(exc_info: pytest.ExceptionInfo[botocore.exceptions.ClientError]) -> tuple[int, str]:
    response = exc_info.value.response
    return response["ResponseMetadata"]["HTTPStatusCode"], response["Error"]["Code"]


def _client(server: S3TestServer, **kwargs):
    return boto3.client("s3", endpoint_url=server.endpoint_url, region_name=server.region, **kwargs)


@pytest.mark.timeout(120)
def test_admin_can_put_and_get(s3_server: S3TestServer, s3_bucket: str) -> None:
    s3 = s3_server.client()
    bucket = _bucket_name(s3_bucket)
    s3.put_object(Bucket=bucket, Key="catalog/item.json", Body=b'{"id": 1}')

    assert s3.get_object(Bucket=bucket, Key="catalog/item.json")["Body"].read() == b'{"id": 1}'
    listed = s3.list_objects_v2(Bucket=bucket, Prefix="catalog/")
    assert [obj["Key"] for obj in listed["Contents"]] == ["catalog/item.json"]


@pytest.mark.timeout(120)
def test_s3_bucket_sets_environment_for_default_clients(s3_server: S3TestServer, s3_bucket: str) -> None:
    assert os.environ["AWS_ENDPOINT_URL"] == s3_server.endpoint_url
    s3 = boto3.client("s3")  # everything from the environment, as application code would do it
    bucket = _bucket_name(s3_bucket)
    s3.put_object(Bucket=bucket, Key="k", Body=b"v")
    assert s3.get_object(Bucket=bucket, Key="k")["Body"].read() == b"v"


@pytest.mark.timeout(120)
def test_wrong_secret_is_rejected(s3_server: S3TestServer, s3_bucket: str) -> None:
    s3 = _client(s3_server, aws_access_key_id=s3_server.access_key, aws_secret_access_key="not-the-secret")
    with pytest.raises(botocore.exceptions.ClientError) as exc_info:
        s3.get_object(Bucket=_bucket_name(s3_bucket), Key="anything")
    assert _error_code(exc_info) == (403, "SignatureDoesNotMatch")


@pytest.mark.timeout(120)
def test_unknown_access_key_is_rejected(s3_server: S3TestServer, s3_bucket: str) -> None:
    s3 = _client(s3_server, aws_access_key_id="AKNOBODY00000000", aws_secret_access_key="whatever")
    with pytest.raises(botocore.exceptions.ClientError) as exc_info:
        s3.list_objects_v2(Bucket=_bucket_name(s3_bucket))
    assert _error_code(exc_info) == (403, "InvalidAccessKeyId")


@pytest.mark.timeout(120)
def test_anonymous_requests_are_denied(s3_server: S3TestServer, s3_bucket: str) -> None:
    bucket = _bucket_name(s3_bucket)
    s3_server.client().put_object(Bucket=bucket, Key="private", Body=b"secret")
    anonymous = _client(s3_server, config=botocore.config.Config(signature_version=botocore.UNSIGNED))

    with pytest.raises(botocore.exceptions.ClientError) as read_info:
        anonymous.get_object(Bucket=bucket, Key="private")
    assert _error_code(read_info) == (403, "AccessDenied")
    with pytest.raises(botocore.exceptions.ClientError) as write_info:
        anonymous.put_object(Bucket=bucket, Key="planted", Body=b"x")
    assert _error_code(write_info) == (403, "AccessDenied")


@pytest.mark.timeout(120)
def test_readonly_identity_reads_but_cannot_write(s3_server: S3TestServer, s3_bucket: str) -> None:
    if s3_server.readonly_access_key is None:
        pytest.skip("external S3 server without COLDSTART_TEST_S3_READONLY_ACCESS_KEY/_SECRET_KEY")
    bucket = _bucket_name(s3_bucket)
    s3_server.client().put_object(Bucket=bucket, Key="index/manifest.json", Body=b"{}")
    readonly = s3_server.client(readonly=True)

    assert readonly.get_object(Bucket=bucket, Key="index/manifest.json")["Body"].read() == b"{}"
    assert [o["Key"] for o in readonly.list_objects_v2(Bucket=bucket)["Contents"]] == ["index/manifest.json"]
    with pytest.raises(botocore.exceptions.ClientError) as put_info:
        readonly.put_object(Bucket=bucket, Key="index/manifest.json", Body=b"overwritten")
    assert _error_code(put_info) == (403, "AccessDenied")
    with pytest.raises(botocore.exceptions.ClientError) as delete_info:
        readonly.delete_object(Bucket=bucket, Key="index/manifest.json")
    assert _error_code(delete_info) == (403, "AccessDenied")
    assert s3_server.client().get_object(Bucket=bucket, Key="index/manifest.json")["Body"].read() == b"{}"


@pytest.mark.timeout(120)
def test_pyarrow_writes_and_reads_parquet(s3_server: S3TestServer, s3_bucket: str) -> None:
    endpoint = s3_server.endpoint_url
    scheme, _, host_port = endpoint.partition("://")
    fs = pyarrow.fs.S3FileSystem(
        endpoint_override=host_port,
        scheme=scheme,
        access_key=s3_server.access_key,
        secret_key=s3_server.secret_key,
        region=s3_server.region,
    )
    table = pa.table({"item_id": pa.array([1, 2, 3], pa.int64()), "title": ["red mug", "blue mug", "lamp"]})
    path = f"{_bucket_name(s3_bucket)}/catalog/part-0.parquet"

    pq.write_table(table, path, filesystem=fs)

    assert fs.get_file_info(path).type == pyarrow.fs.FileType.File
    assert pq.read_table(path, filesystem=fs).equals(table)


@pytest.mark.timeout(120)
def test_pyarrow_from_uri_uses_environment(s3_bucket: str) -> None:
    # What pipeline code does with a store URI and the AWS_* variables (no explicit filesystem).
    table = pa.table({"x": [1.5, 2.5]})
    fs, path = pyarrow.fs.FileSystem.from_uri(f"{s3_bucket}/vectors.parquet")
    pq.write_table(table, path, filesystem=fs)
    assert pq.read_table(path, filesystem=fs).equals(table)


def _listening_sockets(pid: int) -> set[tuple[str, int, str]]:
    """(ip, port, proto) for every TCP socket in LISTEN state and every bound UDP socket that `pid` owns."""
    inodes = set()
    for fd in Path(f"/proc/{pid}/fd").iterdir():
        try:
            target = os.readlink(fd)
        except OSError:
            continue
        if target.startswith("socket:["):
            inodes.add(target[len("socket:[") : -1])
    found = set()
    for proto in ("tcp", "tcp6", "udp", "udp6"):
        lines = Path(f"/proc/net/{proto}").read_text().splitlines()[1:]
        for line in lines:
            cols = line.split()
            local, state, inode = cols[1], cols[3], cols[9]
            if inode not in inodes or (proto.startswith("tcp") and state != "0A"):
                continue
            ip_hex, port_hex = local.split(":")
            if len(ip_hex) == 8:
                ip = ".".join(str(int(ip_hex[i : i + 2], 16)) for i in (6, 4, 2, 0))
            else:
                ip = f"ipv6:{ip_hex}"
            found.add((ip, int(port_hex, 16), proto))
    return found


@pytest.mark.timeout(120)
@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")
def test_local_server_listens_only_on_chosen_loopback_ports(s3_server: S3TestServer) -> None:
    server = s3_server.local_server
    if server is None:
        pytest.skip("external S3 server: its sockets are not ours to inspect")
    sockets = _listening_sockets(server.pid)
    assert {(ip, proto) for ip, _, proto in sockets} == {(HOST, "tcp")}
    assert {port for _, port, _ in sockets} == set(server.ports.values())


@pytest.mark.slow
@pytest.mark.timeout(180)
def test_second_server_runs_beside_the_session_one_and_stops_cleanly(
    s3_server: S3TestServer, tmp_path: Path
) -> None:
    """Two sessions on one machine must not collide, and stop() must leave nothing behind."""
    if s3_server.local_server is None:
        pytest.skip("external S3 server")
    with SeaweedServer(tmp_path / "second") as second:
        assert set(second.ports.values()).isdisjoint(s3_server.local_server.ports.values())
        assert second.admin != s3_server.local_server.admin
        bucket = unique_bucket_name("second")
        second.client().create_bucket(Bucket=bucket)
        second.client().put_object(Bucket=bucket, Key="k", Body=b"second")
        # Keys of one server mean nothing to the other.
        with pytest.raises(botocore.exceptions.ClientError) as exc_info:
            s3_server.client().get_object(Bucket=bucket, Key="k")
        assert exc_info.value.response["Error"]["Code"] in {"NoSuchBucket", "NoSuchKey"}

    assert not second.is_running()
    assert second.stop_seconds is not None and second.stop_seconds < second.stop_timeout_s
    leftovers = [
        p
        for p in Path("/tmp").glob("seaweedfs-*-grpc-*.sock")
        if int(p.stem.rsplit("-", 1)[1]) in second.ports.values()
    ]
    assert leftovers == []
    assert s3_server.client().list_buckets()["ResponseMetadata"]["HTTPStatusCode"] == 200


@pytest.mark.slow
@pytest.mark.timeout(180)
def test_start_retries_with_new_ports_when_one_was_taken(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Ports are picked free but bound by weed a moment later; losing that race must not fail the session."""
    import tests.fixtures.seaweed as seaweed

    squatter = socket.socket()
    squatter.bind((HOST, 0))
    squatter.listen()
    taken = squatter.getsockname()[1]
    real_free_ports = seaweed.free_ports
    calls = []

    def first_call_collides(count: int, host: str = HOST) -> list[int]:
        ports = real_free_ports(count, host)
        calls.append(ports)
        if len(calls) == 1:
            ports[PORT_NAMES.index("filer")] = taken
        return ports

    monkeypatch.setattr(seaweed, "free_ports", first_call_collides)
    try:
        with SeaweedServer(tmp_path / "srv") as server:
            assert len(calls) == 2
            assert taken not in server.ports.values()
            server.client().list_buckets()
    finally:
        squatter.close()
