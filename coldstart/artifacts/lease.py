"""One publisher per store at a time: a lease held in the store itself with conditional writes.

The nightly job (and every other command that moves ``LATEST``) takes the lease ``locks/publish.json`` before it
reads the catalog and gives it back when it is done, so two runs on one store — a retried cron entry, a person
running the job by hand beside the schedule — cannot interleave. The second run stops at once with a message
that names the holder, when it took the lease and when it expires.

- **Taking it** is a create-if-absent write (``If-None-Match: *`` on S3, ``link(2)`` locally): of two runs that
  try at once, exactly one wins.
- **Holding it**: a daemon thread renews it every ``ttl / 3`` with a compare-and-swap on the token it last wrote
  (``If-Match: <ETag>``), so a run of any length keeps it and a run that dies stops renewing.
- **A stale lease** — past its expiry, or held by a process on this host that no longer exists — is taken over by
  a compare-and-swap on the stale record's token, so of two runs that find it stale, one wins.
- **Fencing**: :meth:`Lease.check` renews synchronously and raises :class:`LeaseLost` if another run took the
  lease (this one stalled past its expiry); the job calls it just before the manifest and ``LATEST`` are written.

Expiry compares the holder's clock with the taker's: hosts are assumed NTP-synchronised to well within the TTL.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import os
import socket
import threading
import uuid
from dataclasses import dataclass, field
from typing import Any

from coldstart.artifacts.store import ArtifactStore, PreconditionFailed, StoreError, StoreKeyMissing

logger = logging.getLogger(__name__)

PUBLISH_LEASE = "locks/publish.json"
DEFAULT_TTL_S = 600.0


class LeaseHeld(StoreError):
    """Another run holds the lease; the message names it and says when it expires."""


class LeaseLost(StoreError):
    """This run's lease expired and another run took it: stop before writing anything it could overwrite."""


def _now() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc)


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # it exists, owned by someone else
        return True
    return True


@dataclass
class Holder:
    """Who holds a lease (written as JSON into the lease object)."""

    run_id: str
    host: str
    pid: int
    purpose: str
    acquired_at: str
    expires_at: str

    @classmethod
    def parse(cls, data: bytes) -> "Holder | None":
        try:
            return cls(**{k: v for k, v in json.loads(data).items() if k in cls.__dataclass_fields__})
        except (ValueError, TypeError):
            return None  # unreadable: treat as stale

    def to_json(self) -> bytes:
        return json.dumps(self.__dict__, indent=2).encode()

    def describe(self) -> str:
        return (f"run {self.run_id} ({self.purpose}) on {self.host}, pid {self.pid}, since {self.acquired_at}, "
                f"expires {self.expires_at}")

    def stale_because(self, now: dt.datetime) -> str | None:
        try:
            expires = dt.datetime.fromisoformat(self.expires_at)
        except (TypeError, ValueError):
            return f"its expiry {self.expires_at!r} is unreadable"
        if expires < now:
            return f"expired at {self.expires_at}"
        if self.host == socket.gethostname() and not _pid_alive(self.pid):
            return f"its process {self.pid} on this host is gone"
        return None


@dataclass
class Lease:
    """A held lease. Use as a context manager, or call :meth:`release`."""

    store: ArtifactStore
    key: str
    holder: Holder
    ttl_s: float
    token: str
    _lost: str | None = None
    _stop: threading.Event = field(default_factory=threading.Event)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _thread: threading.Thread | None = None

    def _start_renewing(self) -> None:
        self._thread = threading.Thread(target=self._renew_loop, name=f"lease-{self.key}", daemon=True)
        self._thread.start()

    def _renew_loop(self) -> None:
        while not self._stop.wait(self.ttl_s / 3):
            try:
                self.renew()
            except LeaseLost:
                return
            except StoreError as err:  # the store is unreachable: keep trying until the lease would expire
                logger.warning("could not renew the publish lease %s: %s", self.key, err)

    def renew(self) -> None:
        """Push the expiry ``ttl_s`` ahead with a compare-and-swap; :class:`LeaseLost` if another run took it."""
        with self._lock:
            if self._lost:
                raise LeaseLost(self._lost)
            self.holder.expires_at = (_now() + dt.timedelta(seconds=self.ttl_s)).isoformat()
            try:
                self.token = self.store.replace_bytes(self.key, self.holder.to_json(), self.token)
            except (PreconditionFailed, StoreKeyMissing):
                self._lost = (f"the publish lease {self.store.uri}/{self.key} of run {self.holder.run_id} was taken "
                              "over by another run (this one stalled past its expiry): nothing more is published")
                logger.error(self._lost)
                raise LeaseLost(self._lost) from None

    def check(self) -> None:
        """Fence: renew now; raises :class:`LeaseLost` unless this run still holds the lease."""
        self.renew()

    def release(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
        with self._lock:
            if self._lost:
                return
            try:
                self.store.delete_if(self.key, self.token)
            except PreconditionFailed:
                logger.warning("the publish lease %s was taken over before it was released", self.key)
            except StoreError as err:  # unreachable store: the lease expires on its own
                logger.warning("could not release the publish lease %s (it expires at %s): %s", self.key,
                               self.holder.expires_at, err)

    def __enter__(self) -> "Lease":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.release()


def acquire(store: ArtifactStore, purpose: str, *, key: str = PUBLISH_LEASE, ttl_s: float = DEFAULT_TTL_S,
            renew: bool = True) -> Lease:
    """Take the lease ``key`` in ``store`` for ``purpose`` or raise :class:`LeaseHeld` naming the holder."""
    if ttl_s <= 0:
        raise ValueError(f"lease ttl_s={ttl_s}: must be positive")
    now = _now()
    holder = Holder(run_id=uuid.uuid4().hex[:12], host=socket.gethostname(), pid=os.getpid(), purpose=purpose,
                    acquired_at=now.isoformat(), expires_at=(now + dt.timedelta(seconds=ttl_s)).isoformat())
    try:
        token = store.create_bytes(key, holder.to_json())
    except PreconditionFailed:
        try:
            data, stale_token = store.read_with_token(key)
        except StoreKeyMissing:  # released between our two calls: try once more
            token = _create_or_held(store, key, holder)
        else:
            current = Holder.parse(data)
            why = "it is unreadable" if current is None else current.stale_because(now)
            if why is None:
                raise LeaseHeld(
                    f"another run is publishing to {store.uri}: {current.describe()}. This run stops without "
                    f"changes; run it again later, or once that run is known dead delete {store.uri}/{key} "
                    "(it also frees itself at its expiry)") from None
            try:
                token = store.replace_bytes(key, holder.to_json(), stale_token)
            except (PreconditionFailed, StoreKeyMissing):
                raise LeaseHeld(f"another run took over the stale publish lease {store.uri}/{key} first; this run "
                                "stops without changes") from None
            logger.warning("took over the publish lease %s/%s: %s", store.uri, key,
                           why if current is None else f"{current.describe()}: {why}")
    lease = Lease(store=store, key=key, holder=holder, ttl_s=ttl_s, token=token)
    if renew:
        lease._start_renewing()
    logger.info("holding the publish lease %s/%s as run %s", store.uri, key, holder.run_id)
    return lease


def _create_or_held(store: ArtifactStore, key: str, holder: Holder) -> str:
    try:
        return store.create_bytes(key, holder.to_json())
    except PreconditionFailed:
        raise LeaseHeld(f"another run is publishing to {store.uri} (it took {key} just now); this run stops "
                        "without changes") from None


def current_holder(store: ArtifactStore, key: str = PUBLISH_LEASE) -> Holder | None:
    """Who holds the lease now (None when free), for status commands and tests."""
    try:
        return Holder.parse(store.read_bytes(key))
    except StoreKeyMissing:
        return None
