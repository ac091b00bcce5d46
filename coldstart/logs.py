"""Logging for entry points (the CLI and the jobs): one format, quiet third-party loggers, no hub access.

Library modules only ever call ``logging.getLogger(__name__)``; this is the one place that configures handlers.

Two formats: ``text`` (``time LEVEL logger: message``) and ``json`` — one JSON object per line with ``timestamp``
(ISO 8601, UTC), ``level``, ``logger``, ``message``, every structured field the call passed with ``extra=``, and
``exc_info`` for a traceback. Chosen by ``--log-format`` or ``COLDSTART_LOG_FORMAT``; :func:`setup_logging` writes
the choice back to the environment so child processes and a local Ray's workers inherit it, and
:func:`log_env` hands it to the workers of a cluster through a ``runtime_env``.

The JSON formatter is the standard library's ``logging.Formatter`` and 20 lines, not python-json-logger: the keys are
ours to name (``level``, ``logger``), every Ray worker image already has it, and nothing else here needs the library.
The Serve app's request log uses Ray Serve's own ``logging_config: encoding: JSON`` instead (docs/serving.md).
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import os
import sys

LOG_FORMAT_ENV = "COLDSTART_LOG_FORMAT"
LOG_FORMATS = ("text", "json")
TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
NOISY = ("faiss.loader", "ray.data", "urllib3", "botocore", "bm25s")

# Attributes every LogRecord has; anything else on a record came from ``extra=`` (or a filter) and is a field.
_RECORD_ATTRS = frozenset(vars(logging.LogRecord("", 0, "", 0, "", (), None))) | {"message", "asctime"}


class JsonFormatter(logging.Formatter):
    """One JSON object per record: ``timestamp``, ``level``, ``logger``, ``message``, the ``extra=`` fields."""

    def format(self, record: logging.LogRecord) -> str:
        out = {
            "timestamp": dt.datetime.fromtimestamp(record.created, dt.timezone.utc).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        for key, value in record.__dict__.items():
            if key == "ray_serve_extra_fields" and isinstance(value, dict):  # Serve's key for fields: flattened,
                out.update((k, v) for k, v in value.items() if k not in out)  # as Serve's own formatter does
            elif key not in _RECORD_ATTRS and not key.startswith("_") and key not in out:
                out[key] = value
        if record.exc_info:
            out["exc_info"] = self.formatException(record.exc_info)
        if record.stack_info:
            out["stack_info"] = self.formatStack(record.stack_info)
        return json.dumps(out, default=str, ensure_ascii=False)


def log_format(chosen: str | None = None) -> str:
    """``chosen``, else ``COLDSTART_LOG_FORMAT``, else ``text``; refused unless ``text`` or ``json``."""
    value = (chosen or os.environ.get(LOG_FORMAT_ENV) or "text").strip().lower()
    if value not in LOG_FORMATS:
        raise ValueError(f"log format {value!r} (--log-format or {LOG_FORMAT_ENV}): use text or json")
    return value


def log_env() -> dict[str, str]:
    """``{COLDSTART_LOG_FORMAT: ...}`` when set, for a Ray ``runtime_env``'s ``env_vars``."""
    return {LOG_FORMAT_ENV: os.environ[LOG_FORMAT_ENV]} if os.environ.get(LOG_FORMAT_ENV) else {}


class _StderrHandler(logging.StreamHandler):
    """Writes to whatever ``sys.stderr`` is when a record is emitted (a test's capture, a redirect), never to a
    stream closed since it was configured."""

    def __init__(self):
        super().__init__(sys.stderr)

    @property
    def stream(self):
        return sys.stderr

    @stream.setter
    def stream(self, value) -> None:
        pass


def _not_hidden(record: logging.LogRecord) -> bool:
    return not getattr(record, "hide", False)  # Ray Data's mark for records meant for its log file only


def _handler(fmt: str, stream, level: int) -> logging.Handler:
    handler = _StderrHandler() if stream is None else logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter() if fmt == "json" else logging.Formatter(TEXT_FORMAT))
    handler.setLevel(level)  # also for records that propagate from loggers with a lower level of their own
    handler.addFilter(_not_hidden)
    handler._coldstart = True  # type: ignore[attr-defined]  # ours: replaced, never doubled, on a second call
    return handler


def _install(level: int, fmt: str, stream) -> None:
    root = logging.getLogger()
    for old in [h for h in root.handlers if getattr(h, "_coldstart", False)]:
        root.removeHandler(old)
    root.addHandler(_handler(fmt, stream, level))
    root.setLevel(level)
    for noisy in NOISY:
        logging.getLogger(noisy).setLevel(logging.WARNING)


def setup_logging(verbose: bool, log_format_name: str | None = None, *, stream=None) -> str:
    """Configure the root logger of an entry point; returns the format chosen (``text`` or ``json``)."""
    fmt = log_format(log_format_name)
    os.environ[LOG_FORMAT_ENV] = fmt  # subprocesses and a local Ray's workers log alike
    if fmt == "json":  # Ray's documented switches, read when Ray starts: worker lines reach the driver as written,
        os.environ.setdefault("RAY_DISABLE_WORKER_LOG_PREFIX", "1")  # without a "(Actor pid=…)" prefix
        os.environ.setdefault("RAY_DEDUP_LOGS", "0")  # nor merged into "[repeated 3x]" (it compares without digits)
    _install(logging.DEBUG if verbose else logging.INFO, fmt, stream)
    os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
    os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    if "transformers" in sys.modules:  # imported already: it read the variables above at import time
        from transformers.utils import logging as hf_logging

        hf_logging.disable_progress_bar()
    quiet_ray_noise()
    return fmt


def setup_worker_logging() -> None:
    """In a Ray worker running our code (a Ray Train worker, a Ray Data actor): INFO records of our loggers to
    stderr, which Ray forwards to the driver, in the driver's format. Without it a worker's root logger has no
    handler and Python drops everything below WARNING."""
    root = logging.getLogger()
    if any(getattr(h, "_coldstart", False) for h in root.handlers):
        return
    # Ray Train's workers give the root logger a console handler that writes the bare message; ours replaces it
    # (one line per record, with time, level and logger, or JSON). Its JSON file handler stays.
    try:
        from ray._private.log import PlainRayHandler
    except ImportError:  # not in Ray
        PlainRayHandler = ()  # type: ignore[assignment]  # noqa: N806
    for bare in [h for h in root.handlers if isinstance(h, PlainRayHandler)]:
        root.removeHandler(bare)
    _install(logging.INFO, log_format(None), None)
    for ours in [h for h in root.handlers if getattr(h, "_coldstart", False)]:
        ours.setFormatter(_RayTqdmVerbatim(ours.formatter))
    quiet_ray_noise()


class _RayTqdmVerbatim(logging.Formatter):
    """Ray Train sends a worker's ``print`` through the root logger, ``tqdm_ray``'s bar states among them; the driver
    reads those only as bare JSON lines, so they pass unformatted."""

    def __init__(self, inner: logging.Formatter | None):
        super().__init__()
        self.inner = inner or logging.Formatter()

    def format(self, record: logging.LogRecord) -> str:
        message = record.getMessage()
        return message if "__ray_tqdm_magic_token__" in message else self.inner.format(record)


def adopt_ray_loggers() -> None:
    """With JSON logs, the driver's ``ray`` loggers write through the root logger's JSON handler instead of their
    own text handlers (call after ``ray.init``: Ray installs them when it is imported)."""
    if os.environ.get(LOG_FORMAT_ENV) != "json":
        return
    import ray.data  # noqa: F401  # Ray Data configures its loggers when it is imported: before we adopt them

    for name in ("ray", "ray.data", "ray.train", "ray.tune"):
        ray_logger = logging.getLogger(name)
        for handler in [h for h in ray_logger.handlers if isinstance(h, logging.StreamHandler)
                        and not isinstance(h, logging.FileHandler)]:
            ray_logger.removeHandler(handler)
        ray_logger.propagate = True


# ------------------------------------------------------------------------------------------ Ray's noise

# Ray Train 2.60 starts a detached PlacementGroupCleaner actor per run that asks the state API every second whether
# the run's controller is alive; the state API is the dashboard's, and a local Ray here runs without one, so every
# second it logs this warning (ray/train/v2/_internal/execution/controller/placement_group_cleaner.py). The first
# one is let through, with the reason; repeats are dropped. Its other warnings (a placement group it could not
# remove, a controller found dead) are real and pass untouched.
PG_CLEANER_LOGGER = "ray.train.v2._internal.execution.controller.placement_group_cleaner"
PG_CLEANER_NOISE = "Failed to query Ray Train Controller actor state"


class RepeatFilter(logging.Filter):
    """Let the first record whose message starts with ``prefix`` through (with ``note`` added), drop the repeats."""

    def __init__(self, prefix: str, note: str = ""):
        super().__init__()
        self.prefix = prefix
        self.note = note
        self.seen = False

    def filter(self, record: logging.LogRecord) -> bool:
        if not str(record.msg).startswith(self.prefix):
            return True
        if self.seen:
            return False
        self.seen = True
        if self.note:
            record.msg = f"{record.getMessage()} {self.note}"
            record.args = None
        return True


def quiet_ray_noise() -> None:
    """Install the filters for Ray's repeated warnings in this process (idempotent)."""
    target = logging.getLogger(PG_CLEANER_LOGGER)
    if not any(isinstance(f, RepeatFilter) and f.prefix == PG_CLEANER_NOISE for f in target.filters):
        target.addFilter(RepeatFilter(PG_CLEANER_NOISE, "(repeats dropped by coldstart.logs: without a dashboard "
                                                        "the state API never answers; harmless)"))


def ray_worker_setup() -> None:
    """Ray's ``worker_process_setup_hook`` for a local Ray (``pipelines.ray_runtime.init_ray``): runs in every worker
    process of the job, Ray's own actors among them, where the noise above is logged."""
    quiet_ray_noise()
