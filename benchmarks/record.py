"""The results-file format the benchmarks write and ``benchmarks/plots.py`` draws: one JSON object per run.

    {"benchmark": "ablation", "command": "python -m benchmarks.ablation ...", "date": "2026-12-02 14:10 UTC",
     "machine": {"cpus": 2, "platform": ..., "load_average_at_start": [...], ...}, "results": [{...}, ...]}

``benchmark`` names the drawing; each row holds the fields ``plots.REQUIRED`` lists for it (and any others).
``benchmarks/serve_load.py`` writes the same keys with its own code; files copied from BENCHMARKS.md tables by hand
(``benchmarks/results/``) add a ``source`` saying from where.
"""

from __future__ import annotations

import json
import os
import platform
import sys
import time
from pathlib import Path
from typing import Any


def machine() -> dict[str, Any]:
    return {"cpus": os.cpu_count(), "platform": platform.platform(), "python": platform.python_version(),
            "load_average": list(os.getloadavg())}


def write_results(path: Path, benchmark: str, results: list[dict[str, Any]], *, script: str, started: float,
                  argv: list[str] | None = None, **extra: Any) -> Path:
    """Write one run's rows to ``path``: ``script`` the module that ran (``benchmarks.ablation``), ``started`` its
    ``time.time()`` at the start, ``argv`` its arguments (default ``sys.argv[1:]``)."""
    report = {"benchmark": benchmark,
              "command": " ".join(["python -m", script, *(argv if argv is not None else sys.argv[1:])]),
              "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime(started)),
              "machine": machine(), **extra, "results": results}
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(report, indent=2, ensure_ascii=False, default=float) + "\n")
    return path
