"""Logging for entry points (the CLI and the jobs): one format, quiet third-party loggers, no hub access.

Library modules only ever call ``logging.getLogger(__name__)``; this is the one place that configures handlers.
"""

from __future__ import annotations

import logging
import os
import sys


def setup_logging(verbose: bool) -> None:
    logging.basicConfig(level=logging.DEBUG if verbose else logging.INFO,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s", stream=sys.stderr)
    os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
    os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    for noisy in ("faiss.loader", "ray.data", "urllib3", "botocore", "bm25s"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
