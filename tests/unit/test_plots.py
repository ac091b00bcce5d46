"""benchmarks/plots.py on the committed results files: valid PNGs of a sensible size, and a clear error naming the
file for a malformed one. Run as the command people run (``python -m benchmarks.plots``): tests never import the
benchmarks (tests/unit/test_layout.py)."""

from __future__ import annotations

import json
import struct
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("matplotlib", reason="the plots need matplotlib (the dev extra)")

ROOT = Path(__file__).resolve().parents[2]
RESULTS = ROOT / "benchmarks" / "results"
DRAWINGS = {"serve_load", "index_recall", "ablation", "embed_throughput"}  # the four the issue asks for


def _plots(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "benchmarks.plots", *args], cwd=ROOT, capture_output=True,
                          text=True, timeout=120)


def _kind(path: Path) -> str:
    return json.loads(path.read_text())["benchmark"]
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def _png_size(path: Path) -> tuple[int, int]:
    data = path.read_bytes()
    assert data[:8] == PNG_SIGNATURE and data[12:16] == b"IHDR", f"{path} is not a PNG"
    return struct.unpack(">II", data[16:24])


def test_every_committed_results_file_draws_small_readable_pngs(tmp_path):
    files = sorted(RESULTS.glob("*.json"))
    assert {_kind(f) for f in files} == DRAWINGS  # one file at least per drawing
    run = _plots(*map(str, files), "--out", str(tmp_path))
    assert run.returncode == 0, run.stderr
    written = sorted(tmp_path.glob("*.png"))
    assert len(written) == len(run.stdout.splitlines()) >= len(files)
    for png in written:
        width, height = _png_size(png)
        assert 600 <= width <= 1400 and 300 <= height <= 1400, (png.name, width, height)
        assert 10_000 < png.stat().st_size <= 150_000, (png.name, png.stat().st_size)


def test_the_committed_pngs_are_the_ones_the_committed_results_draw():
    docs = Path(__file__).resolve().parents[2] / "docs" / "plots"
    expected = {f"{f.stem}.png" for f in RESULTS.glob("*.json") if _kind(f) != "ablation"}
    expected |= {f"{f.stem}_{part}.png" for f in RESULTS.glob("*.json") if _kind(f) == "ablation"
                 for part in ("homedepot", "amazon")}
    assert expected <= {p.name for p in docs.glob("*.png")}


@pytest.mark.parametrize("content, says", [
    ("{not json", "not valid JSON"),
    (json.dumps({"benchmark": "serve_load", "results": [{"system": "serve", "concurrency": 1,
                                                          "throughput_rps": 30.0}]}), "results[0] has no 'p99_ms'"),
    (json.dumps({"benchmark": "latency_heatmap", "results": [{}]}), "'benchmark' is 'latency_heatmap'"),
    (json.dumps({"benchmark": "ablation", "results": []}), "'results' must be a non-empty list"),
    (json.dumps({"benchmark": "ablation", "results": [{"dataset": "homedepot-dev", "label": "bm25"}]}),
     "has no NDCG@10 value"),
])
def test_a_malformed_results_file_is_refused_with_its_name(tmp_path, content, says):
    bad = tmp_path / "broken_results.json"
    bad.write_text(content)
    good = sorted(RESULTS.glob("*.json"))[0]
    run = _plots(str(good), str(bad), "--out", str(tmp_path / "out"))
    assert run.returncode == 1
    err = run.stderr
    assert err.startswith(f"error: {bad}: ") and says in err
    assert not (tmp_path / "out").exists()  # every file is checked before anything is drawn
