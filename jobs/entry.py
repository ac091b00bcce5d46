"""What every job entry point shares: flags → config, logging, and how success and failure are reported.

A job runs the same way on a laptop and on a cluster; only ``RAY_ADDRESS`` differs (``ray job submit`` sets it
for the driver)::

    python -m jobs.reembed --config configs/laptop.toml
    ray job submit --working-dir . -- python -m jobs.reembed --config configs/cluster.toml

The store is, in order of precedence: ``--store``, the ``COLDSTART_STORE`` environment variable (what the KubeRay
manifests in ``deploy/kuberay`` set, the same for the jobs and the Serve app), the config file's ``store``.

Exit status 0 means success and nothing else does. A failure prints ``error: <one line of cause>`` to stderr
first, so that the last line a scheduler or ``ray job logs`` shows is never the only clue, then the traceback
(the details), and exits 1. ``ray job submit`` turns a non-zero exit into a FAILED job.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
import traceback
from typing import Callable

# The CLI's rules (from the library, not the CLI) for "config file, then flags override it" and for logging, shared on purpose so that
# `coldstart embed` and `python -m jobs.reembed` can never disagree about what a flag means.
from coldstart.config import config_from_flags as job_config  # noqa: F401  (re-exported for the jobs)
from coldstart.encoders.onnx_backend import BACKENDS
from coldstart.logs import LOG_FORMAT_ENV, LOG_FORMATS, setup_logging

STORE_ENV = "COLDSTART_STORE"


def base_parser(description: str) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--config", required=True, help="TOML or JSON job config, e.g. configs/laptop.toml")
    parser.add_argument("--store", default=os.environ.get(STORE_ENV) or None,
                        help=f"override the config's store: local path, file://… or s3://bucket/prefix "
                             f"(default: ${STORE_ENV} when set)")
    parser.add_argument("--backend", choices=BACKENDS, help="override the config's [encoder] backend: torch, onnx "
                        "or onnx-int8")
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logs")
    parser.add_argument("--log-format", choices=LOG_FORMATS, help="text (default) or json: one JSON object per "
                        f"line, for log pipelines (default: ${LOG_FORMAT_ENV} when set)")
    return parser


def cause_line(err: BaseException) -> str:
    """One line saying what went wrong: the message's first line, or the exception's type when it has none."""
    text = str(err).strip()
    first = text.splitlines()[0] if text else ""
    return first or type(err).__name__


def run_job(body: Callable[[argparse.Namespace], None], parser: argparse.ArgumentParser,
            argv: list[str] | None = None) -> int:
    """Parse ``argv``, configure logging, run ``body(args)``; returns the exit status."""
    args = parser.parse_args(argv)
    json_logs = setup_logging(args.verbose, args.log_format) == "json"
    try:
        body(args)
    except KeyboardInterrupt:
        print("error: interrupted", file=sys.stderr, flush=True)
        return 130
    except Exception as err:  # the job's boundary: one line of cause, then every detail
        if json_logs:  # one JSON object: the cause in "message", the details in "exc_info"
            logging.getLogger("jobs").error("error: %s", cause_line(err), exc_info=True,
                                            extra={"error": type(err).__name__})
            return 1
        print(f"error: {cause_line(err)}", file=sys.stderr, flush=True)
        traceback.print_exc(file=sys.stderr)
        return 1
    return 0
