"""The index version a server answers from, and the switch to a newly published one.

:class:`LiveIndex` holds one loaded version behind a single reference. :meth:`LiveIndex.refresh` (called every
few seconds by the serving retriever) reads the store's ``LATEST`` pointer; when it names another version, that
version is loaded and verified *completely* (manifest against the encoder, every file against its checksum)
before the reference is replaced. A request takes the reference once and uses that version to the end, so a
swap never changes the index under a running request, and a request never sees a half-loaded one.

What can go wrong keeps the last good version serving:

- a version the loader refuses (:class:`~coldstart.artifacts.manifest.VersionRejected`: other encoder, other dimension,
  bad checksum) is remembered with its reason and never retried — version ids are never reused;
- any other failure (store unreachable, a file that does not parse) is recorded and retried at the next refresh,
  up to ``max_attempts`` times per version, after which the version counts as rejected too.

At start-up there is no last good version yet; when ``LATEST`` is refused, :meth:`start` falls back to the
newest older version that loads, so a bad publish does not keep a restarted replica from serving.

After a swap the replaced version is garbage once the requests that took it finish; at the next refresh the freed
memory is handed back to the system (:func:`release_freed_memory`), so a replica's RSS returns to one version's
worth instead of staying at the two-versions peak of every swap.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from typing import Callable, Generic, TypeVar

from coldstart.artifacts.manifest import VersionRejected, latest_version, list_versions
from coldstart.artifacts.store import ArtifactStore

logger = logging.getLogger(__name__)

T = TypeVar("T")


@dataclass(frozen=True)
class Live(Generic[T]):
    """One loaded version: what requests read. Replaced as a whole, never mutated."""

    version: str
    value: T
    loaded_at: float


@dataclass
class LiveIndexStats:
    swaps: int = 0  # versions loaded after the first
    rejected: dict[str, str] = field(default_factory=dict)  # version → reason; never retried
    failures: dict[str, int] = field(default_factory=dict)  # version → failed attempts (not refusals)
    last_error: str | None = None
    last_check: float | None = None


class LiveIndex(Generic[T]):
    """The serving version of one store, swapped atomically when ``LATEST`` moves.

    ``load(version_id)`` must return the loaded, verified version or raise (``VersionRejected`` for a version
    that can never be used). It runs in the caller's thread; the serving retriever calls :meth:`refresh` from a
    worker thread so loading does not stall requests.
    """

    def __init__(
        self,
        store: ArtifactStore,
        load: Callable[[str], T],
        *,
        max_attempts: int = 3,
        startup_fallbacks: int = 3,
        clock: Callable[[], float] = time.time,
    ):
        if max_attempts < 1 or startup_fallbacks < 0:
            raise ValueError("max_attempts must be ≥ 1 and startup_fallbacks ≥ 0")
        self.store = store
        self._load = load
        self._max_attempts = max_attempts
        self._startup_fallbacks = startup_fallbacks
        self._clock = clock
        self._live: Live[T] | None = None
        self._release_pending = False
        self.stats = LiveIndexStats()

    @property
    def live(self) -> Live[T] | None:
        """The current version (None until one loaded). Read it once per request and keep the object."""
        return self._live

    @property
    def ready(self) -> bool:
        return self._live is not None

    def start(self) -> bool:
        """Load ``LATEST``, or when it is refused, the newest older version that loads. True once serving."""
        self.refresh()
        if self._live is not None or self._startup_fallbacks == 0:
            return self._live is not None
        try:
            candidates = [v for v in reversed(list_versions(self.store)) if v not in self.stats.rejected]
        except Exception as err:  # noqa: BLE001 - reported in status; start() is retried by refresh()
            self._record_error(f"cannot list versions in {self.store.uri}: {err}")
            return False
        for version in candidates[: self._startup_fallbacks]:
            if self._try_load(version):
                logger.warning("serving older version %s: the latest one was refused", version)
                return True
        return False

    def refresh(self) -> bool:
        """One poll of ``LATEST``; True when a new version was swapped in."""
        self.stats.last_check = self._clock()
        if self._release_pending:  # a poll interval after a swap: the old version's requests are done
            self._release_pending = False
            release_freed_memory()
        try:
            latest = latest_version(self.store)
        except Exception as err:  # noqa: BLE001 - the store may be briefly unreachable; keep serving
            self._record_error(f"cannot read LATEST from {self.store.uri}: {err}")
            return False
        current = self._live.version if self._live else None
        if latest is None or latest == current or latest in self.stats.rejected:
            return False
        return self._try_load(latest)

    def _try_load(self, version: str) -> bool:
        started = self._clock()
        try:
            value = self._load(version)
        except VersionRejected as err:
            self._reject(version, str(err))
            return False
        except Exception as err:  # noqa: BLE001 - any failure must leave the last good version serving
            attempts = self.stats.failures.get(version, 0) + 1
            self.stats.failures[version] = attempts
            reason = f"{type(err).__name__}: {err}"
            self._record_error(f"loading version {version} failed (attempt {attempts}): {reason}")
            if attempts >= self._max_attempts:
                self._reject(version, f"failed {attempts} times; last error: {reason}")
            return False
        previous = self._live
        self._live = Live(version=version, value=value, loaded_at=self._clock())  # the one swap
        if previous is not None:
            self.stats.swaps += 1
            self._release_pending = True
        self.stats.last_error = None
        logger.info("serving index version %s (was %s; loaded in %.2f s)",
                    version, previous.version if previous else None, self._clock() - started)
        return True

    def swap_value(self, version: str, value: T) -> bool:
        """Replace what the live ``version`` serves by ``value`` (e.g. the same index with newer session signals);
        False, and nothing changes, when another version went live meanwhile."""
        live = self._live
        if live is None or live.version != version:
            return False
        self._live = Live(version=version, value=value, loaded_at=self._clock())
        return True

    def _reject(self, version: str, reason: str) -> None:
        self.stats.rejected[version] = reason
        self.stats.last_error = f"version {version} refused: {reason}"
        logger.warning("refused index version %s, still serving %s: %s",
                       version, self._live.version if self._live else "nothing", reason)

    def _record_error(self, message: str) -> None:
        self.stats.last_error = message
        logger.warning("%s (still serving %s)", message, self._live.version if self._live else "nothing")

    def status(self) -> dict:
        """A JSON-able summary for health checks and metrics."""
        live = self._live
        return {
            "ready": live is not None,
            "version": live.version if live else None,
            "loaded_at": live.loaded_at if live else None,
            "swaps": self.stats.swaps,
            "rejected": dict(self.stats.rejected),
            "last_error": self.stats.last_error,
            "last_check": self.stats.last_check,
            "store": self.store.uri,
        }


def release_freed_memory() -> None:
    """Collect garbage, then return freed memory to the system: Arrow's pool (``release_unused``) and glibc's heap
    (``malloc_trim``, where the C library has it). Without this, every swap leaves the process at the peak of two
    versions loaded at once (measured: +18 % RSS over 20 swaps, BENCHMARKS.md "Faults survived")."""
    import ctypes
    import ctypes.util
    import gc

    gc.collect()
    try:
        import pyarrow as pa

        pa.default_memory_pool().release_unused()
    except Exception:  # noqa: BLE001 - best effort
        pass
    name = ctypes.util.find_library("c")
    try:
        libc = ctypes.CDLL(name) if name else None
        trim = getattr(libc, "malloc_trim", None)
        if trim is not None:
            trim(0)
    except OSError:
        pass
