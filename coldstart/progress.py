"""Progress of long work (embedding a catalog, fine-tuning, ranking and scoring a query set): one helper for all.

On a terminal it is a tqdm bar with rate and ETA. Where stderr is not a terminal (CI logs, ``ray job logs``, a
file) a bar would be a stream of carriage returns, so it writes a plain log line instead, every ``every_s``
seconds and at every ``every_pct`` per cent, plus one when the work is done::

    embed: 12,288/54,667 titles (22%), 241 titles/s, elapsed 00:51, ETA 02:56

The line goes through :mod:`logging` (logger ``coldstart.progress``) with the numbers as structured fields
(``done``, ``total``, ``rate_per_s``, ``eta_s``, ``unit``, ``task``), so ``--log-format json`` makes it a JSON object a
log pipeline can read.

Which of the two (or neither) is chosen by ``COLDSTART_PROGRESS`` (``bar``, ``log`` or ``off``) when it is set, else
by whether stderr is a terminal. A driver passes its choice to Ray workers with :func:`progress_env` (their stderr
is never a terminal: Ray forwards it line by line); a worker asked for a bar draws it with Ray's ``tqdm_ray``,
which the driver renders as a real tqdm bar.
"""

from __future__ import annotations

import logging
import os
import sys
import time
from typing import Literal

logger = logging.getLogger("coldstart.progress")

PROGRESS_ENV = "COLDSTART_PROGRESS"
Mode = Literal["bar", "log", "off"]
MODES = ("bar", "log", "off")


def progress_mode(stream=None) -> Mode:
    """``COLDSTART_PROGRESS`` when set (``bar``, ``log``, ``off``), else ``log`` with JSON logs (a bar would break
    the lines) or off a terminal, ``bar`` on one."""
    chosen = os.environ.get(PROGRESS_ENV, "").strip().lower()
    if chosen:
        if chosen not in MODES:
            raise ValueError(f"{PROGRESS_ENV}={chosen!r}: use one of {', '.join(MODES)}")
        return chosen  # type: ignore[return-value]
    if os.environ.get("COLDSTART_LOG_FORMAT") == "json":  # stderr is for JSON lines: a bar would break them
        return "log"
    stream = stream if stream is not None else sys.stderr
    isatty = getattr(stream, "isatty", None)
    return "bar" if isatty is not None and isatty() else "log"


def progress_env() -> dict[str, str]:
    """``{COLDSTART_PROGRESS: mode}`` of this process, for a Ray ``runtime_env``'s ``env_vars``: workers show progress
    the way the driver's terminal (or log) can."""
    return {PROGRESS_ENV: progress_mode()}


def _terminal_columns(stream) -> int:
    try:
        return os.get_terminal_size(stream.fileno()).columns
    except (AttributeError, OSError, ValueError):
        return 0


class Progress:
    """Count ``total`` units of work as they are done: ``update(n)`` after each batch, ``close()`` at the end (or
    use it as a context manager).

    ``remote=True`` in a Ray worker: the bar (when one is asked for) is Ray's ``tqdm_ray``, drawn by the driver.
    Rates and ETAs are averages since the start: the embedding steps work longest texts first, so an early ETA
    errs long.
    """

    def __init__(self, total: int, *, desc: str, unit: str = "it", initial: int = 0, every_s: float = 30.0,
                 every_pct: float = 10.0, mode: Mode | None = None, remote: bool = False, stream=None):
        self.total = int(total)
        self.initial = int(initial)  # already done before this process started (a resumed run): not in the rate
        self.desc = desc
        self.unit = unit
        self.every_s = every_s
        self.every_pct = every_pct
        self.mode: Mode = mode or progress_mode(stream)
        self.n = self.initial
        self._start = self._last_line = time.monotonic()
        self._next_pct = every_pct
        while self.total and self._next_pct <= 100.0 * self.n / self.total:
            self._next_pct += every_pct
        self._closed = False
        self._bar = None
        if self.mode == "bar":
            if remote:
                from ray.experimental.tqdm_ray import tqdm as ray_tqdm

                self._bar = ray_tqdm(total=self.total, desc=desc, unit=unit)
                if self.initial:
                    self._bar.update(self.initial)
            else:
                from tqdm import tqdm

                stream = stream or sys.stderr
                # a terminal that reports a size of 0 x 0 (a pty under `script`, some CI runners) hides tqdm's bars
                sized = _terminal_columns(stream) > 0
                self._bar = tqdm(total=self.total, desc=desc, unit=f" {unit}", file=stream, dynamic_ncols=sized,
                                 ncols=None if sized else 100, nrows=None if sized else 24, mininterval=0.5,
                                 smoothing=0.1, initial=self.initial)

    def __enter__(self) -> "Progress":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def update(self, n: int = 1) -> None:
        self.n += n
        if self._bar is not None:
            self._bar.update(n)
        elif self.mode == "log":
            now = time.monotonic()
            pct = 100.0 * self.n / self.total if self.total else 100.0
            if now - self._last_line >= self.every_s or (pct >= self._next_pct and self.n < self.total):
                self._log(now)
                while self._next_pct <= pct:
                    self._next_pct += self.every_pct

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        if self._bar is not None:
            self._bar.close()
        elif self.mode == "log":
            self._log(time.monotonic())

    def status(self, now: float | None = None) -> dict:
        """The numbers of the plain line: ``done``, ``total``, ``elapsed_s``, ``rate_per_s``, ``eta_s`` (None until
        something is done)."""
        elapsed = (now if now is not None else time.monotonic()) - self._start
        done_here = self.n - self.initial
        rate = done_here / elapsed if elapsed > 0 and done_here > 0 else None
        eta = (self.total - self.n) / rate if rate else None
        return {"task": self.desc, "done": self.n, "total": self.total, "unit": self.unit,
                "elapsed_s": round(elapsed, 1), "rate_per_s": round(rate, 2) if rate else None,
                "eta_s": round(max(eta, 0.0), 1) if eta is not None else None}

    def line(self, now: float | None = None) -> str:
        """The plain progress line: done/total, per cent, rate, elapsed and ETA (times as tqdm writes them)."""
        from tqdm import tqdm

        status = self.status(now)
        pct = 100.0 * self.n / self.total if self.total else 100.0
        rate = f"{status['rate_per_s']:,.1f} {self.unit}/s" if status["rate_per_s"] else f"? {self.unit}/s"
        eta = tqdm.format_interval(status["eta_s"]) if status["eta_s"] is not None else "?"
        return (f"{self.desc}: {self.n:,}/{self.total:,} {self.unit} ({pct:.0f}%), {rate}, "
                f"elapsed {tqdm.format_interval(status['elapsed_s'])}, ETA {eta}")

    def _log(self, now: float) -> None:
        self._last_line = now
        logger.info("%s", self.line(now), extra={"progress": self.status(now)})
