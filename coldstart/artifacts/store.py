"""Artifact store: one small interface over a local folder and S3.

Every artifact the project writes (embeddings, indexes, manifests, models, checkpoints) goes through
:class:`ArtifactStore`, addressed by a key relative to the store's root URI. Two backends:

- ``file:///path`` or a plain path: a local folder, the embedded default. Writes are atomic (temp file +
  rename), so a reader never sees half a file.
- ``s3://bucket/prefix``: S3 through boto3. The endpoint and credentials come from the environment
  (``AWS_ENDPOINT_URL``, ``AWS_ACCESS_KEY_ID``, ...) or from :class:`S3Options`, so the same code talks to AWS
  and to any S3-compatible server. Objects above a threshold (64 MB, ``COLDSTART_S3_MULTIPART_MB``) go up as
  multipart uploads, and large objects are read to files with ranged GETs, so no size limit applies and no
  artifact is held in memory twice. An object appears whole or not at all (PUT and CompleteMultipartUpload are
  atomic on S3).

Errors from either backend are raised as :class:`StoreError` with a message that says what to change, never as a
botocore traceback from deep inside.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import logging
import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator, Protocol
from urllib.parse import urlparse

logger = logging.getLogger(__name__)


class StoreError(RuntimeError):
    """An artifact store operation failed; the message says why and what to change."""


class StoreKeyMissing(StoreError, KeyError):
    """The requested key does not exist in the store."""

    def __str__(self) -> str:  # KeyError quotes its argument; keep the plain message.
        return str(self.args[0])


class PreconditionFailed(StoreError):
    """A conditional write lost: the key already existed (create) or changed since it was read (replace)."""


class ArtifactStore(Protocol):
    """Key/value access to artifacts below one root URI. Keys use ``/`` as separator."""

    uri: str

    def read_bytes(self, key: str) -> bytes: ...

    def write_bytes(self, key: str, data: bytes) -> None: ...

    def exists(self, key: str) -> bool: ...

    def list(self, prefix: str = "") -> list[str]: ...

    def delete_prefix(self, prefix: str) -> int: ...

    def write_file(self, key: str, path: Path) -> None: ...

    def read_to_file(self, key: str, path: Path) -> Path: ...

    def download_prefix(self, prefix: str, dest: Path) -> list[Path]: ...

    def upload_dir(self, src: Path, prefix: str) -> list[str]: ...

    def child(self, prefix: str) -> "ArtifactStore": ...

    # Conditional writes (compare-and-swap): the building block of the publish lease (:mod:`.lease`).
    # A token names one state of one object (an ETag on S3, a content hash locally).

    def read_with_token(self, key: str) -> tuple[bytes, str]: ...

    def create_bytes(self, key: str, data: bytes) -> str: ...

    def replace_bytes(self, key: str, data: bytes, token: str) -> str: ...

    def delete_if(self, key: str, token: str) -> None: ...


def _content_token(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _join(*parts: str) -> str:
    return "/".join(p.strip("/") for p in parts if p and p.strip("/"))


def _check_key(key: str) -> str:
    key = key.strip("/")
    if not key or ".." in key.split("/"):
        raise StoreError(f"invalid artifact key {key!r}: keys are relative paths without '..'")
    return key


class _StoreBase:
    """Helpers shared by both backends, written in terms of the primitive operations."""

    def download_prefix(self, prefix: str, dest: Path) -> list[Path]:
        """Copy every object below ``prefix`` into ``dest``, keeping relative paths."""
        out = []
        prefix = prefix.strip("/")
        for key in self.list(prefix):
            rel = key[len(prefix):].lstrip("/") if prefix else key
            out.append(self.read_to_file(key, Path(dest) / rel))
        return out

    def upload_dir(self, src: Path, prefix: str) -> list[str]:
        """Copy every file below the local folder ``src`` to ``prefix``; returns the keys written."""
        keys = []
        for path in sorted(Path(src).rglob("*")):
            if path.is_file():
                key = _join(prefix, path.relative_to(src).as_posix())
                self.write_file(key, path)
                keys.append(key)
        return keys


class LocalStore(_StoreBase):
    """A local folder used as the object store."""

    def __init__(self, root: str | Path):
        self.root = Path(root).expanduser().resolve()
        self.uri = self.root.as_uri()

    def _path(self, key: str) -> Path:
        return self.root / _check_key(key)

    def read_bytes(self, key: str) -> bytes:
        path = self._path(key)
        try:
            return path.read_bytes()
        except FileNotFoundError:
            raise StoreKeyMissing(f"{self.uri}/{key} does not exist") from None

    def write_bytes(self, key: str, data: bytes) -> None:
        self._write(key, lambda out: out.write(data))

    def write_file(self, key: str, path: Path) -> None:
        """Copy the local file ``path`` to ``key`` (atomic like :meth:`write_bytes`, never held in memory)."""
        def copy(out) -> None:
            with open(path, "rb") as src:
                shutil.copyfileobj(src, out, _COPY_CHUNK)

        self._write(key, copy)

    def _write(self, key: str, fill) -> None:
        """``fill(file)`` writes a temporary file beside ``key``, synced, then renamed over it: readers see the old
        object or the new one, never part of one."""
        try:
            with self._staged(self._path(key)) as (out, tmp):
                fill(out)
            os.replace(tmp, self._path(key))
        except OSError as err:
            raise StoreError(f"cannot write {self.uri}/{key}: {err.strerror or err}") from err

    @staticmethod
    @contextlib.contextmanager
    def _staged(path: Path):
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
        try:
            with os.fdopen(fd, "wb") as out:
                yield out, tmp
                out.flush()
                os.fsync(out.fileno())
        except BaseException:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(tmp)
            raise

    def read_to_file(self, key: str, path: Path) -> Path:
        """Copy ``key`` into the local file ``path`` (streamed); returns ``path``."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        try:
            shutil.copyfile(self._path(key), path)
        except FileNotFoundError:
            if not self._path(key).is_file():
                raise StoreKeyMissing(f"{self.uri}/{key} does not exist") from None
            raise
        return path

    def exists(self, key: str) -> bool:
        return self._path(key).is_file()

    def list(self, prefix: str = "") -> list[str]:
        base = self.root / prefix.strip("/") if prefix.strip("/") else self.root
        if not base.exists():
            return []
        if base.is_file():
            return [prefix.strip("/")]
        return sorted(
            p.relative_to(self.root).as_posix()
            for p in base.rglob("*")
            if p.is_file() and not p.name.endswith((".tmp", ".cas"))  # in-flight writes, conditional-write locks
        )

    def delete_prefix(self, prefix: str) -> int:
        target = self._path(prefix)
        if target.is_file():
            target.unlink()
            return 1
        if not target.exists():
            return 0
        count = sum(1 for p in target.rglob("*") if p.is_file())
        shutil.rmtree(target)
        return count


    # Conditional writes. Creating uses link(2), which fails when the name exists; replacing and deleting compare
    # the content hash under an flock on a sidecar file, which every conditional writer of this folder takes.

    def read_with_token(self, key: str) -> tuple[bytes, str]:
        data = self.read_bytes(key)
        return data, _content_token(data)

    def create_bytes(self, key: str, data: bytes) -> str:
        path = self._path(key)
        with self._staged(path) as (out, tmp):
            out.write(data)
        try:
            with self._cas(path):
                os.link(tmp, path)
        except FileExistsError:
            raise PreconditionFailed(f"{self.uri}/{key} already exists") from None
        finally:
            os.unlink(tmp)
        return _content_token(data)

    def replace_bytes(self, key: str, data: bytes, token: str) -> str:
        path = self._path(key)
        with self._cas(path):
            self._expect(key, token)
            self.write_bytes(key, data)
        return _content_token(data)

    def delete_if(self, key: str, token: str) -> None:
        path = self._path(key)
        with self._cas(path):
            self._expect(key, token)
            path.unlink()

    def _expect(self, key: str, token: str) -> None:
        try:
            current = _content_token(self._path(key).read_bytes())
        except FileNotFoundError:
            raise PreconditionFailed(f"{self.uri}/{key} no longer exists") from None
        if current != token:
            raise PreconditionFailed(f"{self.uri}/{key} changed since it was read")

    @contextlib.contextmanager
    def _cas(self, path: Path):
        import fcntl

        with open(path.parent / f".{path.name}.cas", "a+b") as fh:
            fcntl.flock(fh, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(fh, fcntl.LOCK_UN)

    def child(self, prefix: str) -> "LocalStore":
        return LocalStore(self.root / prefix.strip("/"))

    def __repr__(self) -> str:
        return f"LocalStore({self.uri})"


@dataclass(frozen=True)
class S3Options:
    """Explicit S3 settings; every field left None falls back to boto3's environment/config chain."""

    endpoint_url: str | None = None
    region: str | None = None
    access_key: str | None = None
    secret_key: str | None = None
    # Objects at or above this size go up in parts of this size (boto3's transfer manager; S3's single PUT stops at
    # 5 GB). None: $COLDSTART_S3_MULTIPART_MB, else 64 MB.
    multipart_mb: float | None = None


_COPY_CHUNK = 1 << 20
MULTIPART_ENV = "COLDSTART_S3_MULTIPART_MB"


def _explain_client_error(err: Exception, uri: str) -> StoreError:
    """Turn a botocore error into one line that says what to change."""
    code = ""
    response = getattr(err, "response", None) or {}
    code = str(response.get("Error", {}).get("Code", ""))
    status = response.get("ResponseMetadata", {}).get("HTTPStatusCode")
    hints = {
        "NoSuchBucket": "the bucket does not exist: create it or fix the bucket name in the URI",
        "InvalidAccessKeyId": "the access key is unknown to the server: check AWS_ACCESS_KEY_ID",
        "SignatureDoesNotMatch": "the secret key is wrong: check AWS_SECRET_ACCESS_KEY",
        "AccessDenied": "access denied: the credentials lack permission for this bucket/prefix "
        "(or none were given: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY)",
        "403": "access denied: check the credentials and their permissions on this bucket",
        "404": "not found: check the bucket and prefix",
    }
    hint = hints.get(code) or hints.get(str(status)) or str(err)
    return StoreError(f"S3 error on {uri}: {code or status}: {hint}")


class S3Store(_StoreBase):
    """An ``s3://bucket/prefix`` store through boto3."""

    def __init__(self, uri: str, options: S3Options | None = None):
        parsed = urlparse(uri)
        if parsed.scheme != "s3" or not parsed.netloc:
            raise StoreError(f"not an S3 URI: {uri!r} (expected s3://bucket/prefix)")
        self.bucket = parsed.netloc
        self.prefix = parsed.path.strip("/")
        self.uri = f"s3://{self.bucket}" + (f"/{self.prefix}" if self.prefix else "")
        self.options = options or S3Options()
        self._client = None

    @property
    def client(self):
        if self._client is None:
            import boto3
            from botocore.config import Config

            o = self.options
            self._client = boto3.client(
                "s3",
                endpoint_url=o.endpoint_url or os.environ.get("AWS_ENDPOINT_URL") or None,
                region_name=o.region or os.environ.get("AWS_DEFAULT_REGION") or "us-east-1",
                aws_access_key_id=o.access_key,
                aws_secret_access_key=o.secret_key,
                config=Config(retries={"max_attempts": 4, "mode": "standard"}, connect_timeout=10),
            )
        return self._client

    @property
    def transfer_config(self):
        """boto3's transfer manager settings: multipart above the threshold, at most 4 parts in flight (so memory
        stays near 4 parts whatever the object's size)."""
        from boto3.s3.transfer import TransferConfig

        mb = self.options.multipart_mb or float(os.environ.get(MULTIPART_ENV) or 64)
        part = max(int(mb * 1024 * 1024), 5 * 1024 * 1024)  # S3's smallest part is 5 MB
        return TransferConfig(multipart_threshold=part, multipart_chunksize=part, max_concurrency=4,
                              io_chunksize=_COPY_CHUNK)

    def __getstate__(self):  # boto3 clients do not pickle; Ray ships stores to workers.
        state = dict(self.__dict__)
        state["_client"] = None
        return state

    def _key(self, key: str) -> str:
        return _join(self.prefix, _check_key(key))

    def _call(self, what: str, fn, *args, **kwargs):
        from boto3.exceptions import S3UploadFailedError
        from botocore.exceptions import BotoCoreError, ClientError, NoCredentialsError

        try:
            return fn(*args, **kwargs)
        except NoCredentialsError:
            raise StoreError(
                f"S3 error on {self.uri}: no credentials found: set AWS_ACCESS_KEY_ID and "
                "AWS_SECRET_ACCESS_KEY, or use an instance role"
            ) from None
        except ClientError as err:
            raise _explain_client_error(err, f"{self.uri} ({what})") from None
        except BotoCoreError as err:
            raise StoreError(f"S3 error on {self.uri} ({what}): {err}") from None
        except S3UploadFailedError as err:  # the transfer manager wraps the ClientError in text only
            cause = err.__context__ if isinstance(err.__context__, ClientError) else None
            if cause is not None:
                raise _explain_client_error(cause, f"{self.uri} ({what})") from None
            raise StoreError(f"S3 error on {self.uri} ({what}): {err}") from None

    def read_bytes(self, key: str) -> bytes:
        return self.read_with_token(key)[0]

    def write_bytes(self, key: str, data: bytes) -> None:
        full = self._key(key)
        if len(data) < self.transfer_config.multipart_threshold:
            self._call(f"write {full}", self.client.put_object, Bucket=self.bucket, Key=full, Body=data)
        else:
            self._call(f"write {full}", self.client.upload_fileobj, io.BytesIO(data), self.bucket, full,
                       Config=self.transfer_config)

    def write_file(self, key: str, path: Path) -> None:
        """Upload the local file ``path`` streaming: one PUT below the multipart threshold, parts above it. A
        multipart upload that fails is aborted by the transfer manager, so no half object appears under ``key``."""
        full = self._key(key)
        self._call(f"write {full}", self.client.upload_file, str(path), self.bucket, full,
                   Config=self.transfer_config)

    def read_to_file(self, key: str, path: Path) -> Path:
        """Download ``key`` into the local file ``path`` streaming (ranged GETs for large objects)."""
        from botocore.exceptions import ClientError

        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        full = self._key(key)
        try:
            self.client.download_file(self.bucket, full, str(path), Config=self.transfer_config)
        except ClientError as err:
            if err.response.get("Error", {}).get("Code") in ("NoSuchKey", "404"):
                raise StoreKeyMissing(f"s3://{self.bucket}/{full} does not exist") from None
            raise _explain_client_error(err, f"s3://{self.bucket}/{full}") from None
        except Exception as err:  # connection refused mid-download, ...
            raise StoreError(f"S3 error on s3://{self.bucket}/{full} (read): {err}") from None
        return path

    def exists(self, key: str) -> bool:
        from botocore.exceptions import ClientError

        try:
            self.client.head_object(Bucket=self.bucket, Key=self._key(key))
            return True
        except ClientError as err:
            if err.response.get("ResponseMetadata", {}).get("HTTPStatusCode") == 404:
                return False
            raise _explain_client_error(err, f"{self.uri}/{key}") from None

    def _iter_keys(self, prefix: str) -> Iterator[str]:
        full = _join(self.prefix, prefix.strip("/"))
        if full:
            full += "/" if prefix.strip("/") or self.prefix else ""
        paginator = self.client.get_paginator("list_objects_v2")
        pages = self._call("list", lambda: list(paginator.paginate(Bucket=self.bucket, Prefix=full)))
        for page in pages:
            for item in page.get("Contents", []):
                yield item["Key"]

    def list(self, prefix: str = "") -> list[str]:
        strip = len(self.prefix) + 1 if self.prefix else 0
        return sorted(k[strip:] for k in self._iter_keys(prefix))

    def delete_prefix(self, prefix: str) -> int:
        keys = list(self._iter_keys(_check_key(prefix)))
        for start in range(0, len(keys), 1000):
            chunk = [{"Key": k} for k in keys[start:start + 1000]]
            self._call("delete", self.client.delete_objects, Bucket=self.bucket, Delete={"Objects": chunk})
        return len(keys)


    # Conditional writes: If-None-Match / If-Match on PutObject and DeleteObject (AWS S3 since 2024–25; SeaweedFS
    # answers them too). A server that ignores the headers would make the lease advisory only.

    def read_with_token(self, key: str) -> tuple[bytes, str]:
        from botocore.exceptions import ClientError

        full = self._key(key)
        try:
            obj = self.client.get_object(Bucket=self.bucket, Key=full)
        except ClientError as err:
            if err.response.get("Error", {}).get("Code") in ("NoSuchKey", "404"):
                raise StoreKeyMissing(f"s3://{self.bucket}/{full} does not exist") from None
            raise _explain_client_error(err, f"s3://{self.bucket}/{full}") from None
        return self._call("read", obj["Body"].read), obj["ETag"]

    def _conditional(self, what: str, fn, **kwargs):
        from botocore.exceptions import ClientError

        try:
            return fn(Bucket=self.bucket, **kwargs)
        except ClientError as err:
            status = err.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
            if status in (409, 412) or err.response.get("Error", {}).get("Code") in (
                    "PreconditionFailed", "ConditionalRequestConflict"):
                raise PreconditionFailed(f"{self.uri}/{kwargs['Key']}: {what} lost to another writer") from None
            raise _explain_client_error(err, f"{self.uri} ({what})") from None
        except Exception as err:
            raise StoreError(f"S3 error on {self.uri} ({what}): {err}") from None

    def create_bytes(self, key: str, data: bytes) -> str:
        return self._conditional("create", self.client.put_object, Key=self._key(key), Body=data,
                                 IfNoneMatch="*")["ETag"]

    def replace_bytes(self, key: str, data: bytes, token: str) -> str:
        return self._conditional("replace", self.client.put_object, Key=self._key(key), Body=data,
                                 IfMatch=token)["ETag"]

    def delete_if(self, key: str, token: str) -> None:
        self._conditional("delete", self.client.delete_object, Key=self._key(key), IfMatch=token)

    def check_access(self) -> None:
        """Fail fast with one clear line when the bucket is missing or the credentials are wrong."""
        from botocore.exceptions import ClientError

        try:
            self.client.head_bucket(Bucket=self.bucket)
        except ClientError as err:
            status = err.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
            if status == 404:
                raise StoreError(f"S3 error on {self.uri}: NoSuchBucket: bucket {self.bucket!r} does not exist: "
                                 "create it or fix the bucket name in the URI") from None
            if status == 403:  # HEAD responses carry no error code: ask once more with a body to learn which
                self._call("list bucket", self.client.list_objects_v2, Bucket=self.bucket, MaxKeys=1)
            raise _explain_client_error(err, self.uri) from None
        except Exception as err:  # connection refused, bad endpoint URL, ...
            raise StoreError(f"S3 error on {self.uri}: cannot reach the endpoint: {err}") from None

    def child(self, prefix: str) -> "S3Store":
        return S3Store(f"{self.uri}/{prefix.strip('/')}", self.options)

    def __repr__(self) -> str:
        return f"S3Store({self.uri})"


def open_store(uri: str | Path, s3: S3Options | None = None) -> ArtifactStore:
    """Open the store at ``uri``: a local path, ``file://…`` or ``s3://bucket/prefix``."""
    text = str(uri)
    parsed = urlparse(text)
    if parsed.scheme == "s3":
        return S3Store(text, s3)
    if parsed.scheme == "file":
        return LocalStore(parsed.path)
    if parsed.scheme in ("", "local") or len(parsed.scheme) == 1:  # one letter: a Windows drive
        return LocalStore(text)
    raise StoreError(f"unsupported store URI {text!r}: use a local path, file://… or s3://bucket/prefix")
