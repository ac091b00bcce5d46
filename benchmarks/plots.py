"""Pictures of recorded benchmark results: PNGs drawn with matplotlib (Agg, no display) from the JSON the benchmarks
write, for BENCHMARKS.md.

    python -m benchmarks.plots                       # every file in benchmarks/results/ -> docs/plots/
    python -m benchmarks.plots bench-out/serve_load.json --out /tmp/plots   # a fresh run's file

Each results file names its ``benchmark``; one drawing per kind:

- ``serve_load`` (``benchmarks/serve_load.py --out``): throughput and p99 latency against the number of clients, the
  Serve app against the plain FastAPI peer (and the other systems of the run);
- ``index_recall`` (``benchmarks/index_recall.py``): recall@10 against queries/s per index kind and setting;
- ``ablation`` (``benchmarks/ablation.py --out``): NDCG@10 per configuration, Home Depot and Amazon Scientific
  (whiskers where a row records an interval, ``ndcg@10_ci: [low, high]``);
- ``embed_throughput`` (``benchmarks/encoder_backends.py --out``): titles/s per encoder backend.

Titles carry the machine and the date the file records. Files under ``benchmarks/results/`` hold numbers copied
from BENCHMARKS.md where a run wrote no JSON (each says from which section), or a run's own output. A file that is
not JSON, names no known benchmark or lacks a field is refused with an error that names the file and the field.
"""

from __future__ import annotations

import argparse
import json
import sys
import textwrap
from pathlib import Path
from typing import Any, Callable

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results"
OUT = ROOT / "docs" / "plots"
DPI = 90

REQUIRED = {
    "serve_load": ("system", "concurrency", "throughput_rps", "p99_ms"),
    "index_recall": ("kind", "refine", "recall_at_10", "queries_per_s"),
    "ablation": ("dataset", "label"),
    "embed_throughput": ("encoder", "system", "backend", "titles_per_s"),
}


class ResultsError(ValueError):
    """A results file that cannot be drawn; the message names the file and what is wrong with it."""


def load(path: Path) -> dict[str, Any]:
    """A results file, checked: JSON, a known ``benchmark``, a non-empty ``results`` list whose rows have the fields
    that benchmark's drawing reads."""
    path = Path(path)
    try:
        report = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as err:
        raise ResultsError(f"{path}: not valid JSON ({err.msg} at line {err.lineno}, column {err.colno})") from err
    if not isinstance(report, dict):
        raise ResultsError(f"{path}: a results file is a JSON object with 'benchmark' and 'results'")
    kind = report.get("benchmark")
    if kind not in REQUIRED:
        raise ResultsError(f"{path}: 'benchmark' is {kind!r}; use one of {', '.join(REQUIRED)}")
    rows = report.get("results")
    if not isinstance(rows, list) or not rows:
        raise ResultsError(f"{path}: 'results' must be a non-empty list of rows")
    for n, row in enumerate(rows):
        missing = [key for key in REQUIRED[kind] if not isinstance(row, dict) or key not in row]
        if missing:
            raise ResultsError(f"{path}: results[{n}] has no {', '.join(repr(m) for m in missing)} (every {kind} row "
                               f"needs {', '.join(REQUIRED[kind])})")
    if kind == "ablation":
        for n, row in enumerate(rows):
            if not any(key.endswith("ndcg@10") and isinstance(row.get(key), (int, float)) for key in row):
                raise ResultsError(f"{path}: results[{n}] ({row['label']!r}) has no NDCG@10 value")
    return report


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")  # files only: no display on a CI box or a Ray node
    import matplotlib.pyplot as plt

    plt.rcParams.update({"font.size": 10, "axes.titlesize": 11, "figure.titlesize": 12, "axes.grid": True,
                         "grid.alpha": 0.3, "axes.spines.top": False, "axes.spines.right": False})
    return plt


def _where_when(report: dict[str, Any]) -> str:
    """'2-core CPU box, 2026-12-02 04:44-04:52 UTC' from the file's machine and date."""
    machine = report.get("machine") or {}
    cpus = machine.get("cpus")
    where = f"{cpus}-core CPU box" if cpus else "machine not recorded"
    dates = report.get("date") or "; ".join(sorted({s.get("date", "") for s in (report.get("sources") or {}).values()}))
    return f"{where}, {dates or 'date not recorded'}"


def _save(fig, out: Path) -> Path:
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=DPI, metadata={"Software": "benchmarks/plots.py (matplotlib)"}, pil_kwargs={"optimize": True})
    import matplotlib.pyplot as plt

    plt.close(fig)
    return out


# ------------------------------------------------------------------------------------------ (a) serving


def plot_serving(report: dict[str, Any], out_dir: Path, stem: str) -> list[Path]:
    """Throughput and p99 latency against clients; the Serve app and the plain FastAPI peer drawn strongest."""
    plt = _pyplot()
    rows = report["results"]
    systems = list(dict.fromkeys(r["system"] for r in rows))
    levels = sorted({int(r["concurrency"]) for r in rows})
    fig, (left, right) = plt.subplots(1, 2, figsize=(11, 4.6), layout="constrained")
    for system in systems:
        mine = sorted((r for r in rows if r["system"] == system), key=lambda r: r["concurrency"])
        x = [r["concurrency"] for r in mine]
        ours = system.startswith("serve")
        main = system in ("serve", "plain-1t")
        style = dict(marker="o" if ours else "s", linestyle="-" if ours else "--", linewidth=2.4 if main else 1.2,
                     alpha=1.0 if main else 0.65, markersize=6 if main else 4)
        label = {"serve": "serve (ours, deploy/serve.yaml)", "plain-1t": "plain FastAPI peer, 1 thread (fp32)"
                 }.get(system, system)
        left.plot(x, [r["throughput_rps"] for r in mine], label=label, **style)
        right.plot(x, [r["p99_ms"] for r in mine], label=label, **style)
    for ax in (left, right):
        ax.set_xscale("log", base=2)
        ax.set_xticks(levels, [str(c) for c in levels])
        ax.set_xlabel("concurrent clients (closed loop)")
    left.set_ylabel("throughput, requests/s (higher is better)")
    left.set_ylim(bottom=0)
    right.set_ylabel("p99 latency, ms (log; lower is better)")
    right.set_yscale("log")
    left.set_title("Throughput")
    right.set_title("p99 latency")
    left.legend(fontsize=8, loc="upper left")
    cache = "repeated queries (Zipf)" if report.get("zipf") else "every query distinct, cache off"
    fig.suptitle(f"Serving Home Depot recommendations: Ray Serve app vs plain FastAPI peer ({cache})\n"
                 f"{_where_when(report)}")
    return [_save(fig, out_dir / f"{stem}.png")]


# ------------------------------------------------------------------------------------------ (b) index kinds


def plot_index_recall(report: dict[str, Any], out_dir: Path, stem: str) -> list[Path]:
    """Recall@10 (of the exact top 10) against queries/s, one curve per index kind and re-score setting."""
    plt = _pyplot()
    rows = report["results"]
    fig, ax = plt.subplots(figsize=(9, 5.2), layout="constrained")
    colours = {"hnsw": "tab:blue", "ivf_sq8": "tab:green", "ivf_pq": "tab:red"}
    for (kind, refine) in dict.fromkeys((r["kind"], r["refine"]) for r in rows if r["kind"] != "flat"):
        mine = sorted((r for r in rows if r["kind"] == kind and r["refine"] == refine),
                      key=lambda r: r.get("value") or 0)
        label = f"{kind}, {'exact re-score of 4 x k' if refine else 'no re-score'}"
        ax.plot([r["queries_per_s"] for r in mine], [r["recall_at_10"] for r in mine], marker="o",
                linestyle="-" if refine else ":", color=colours.get(kind), alpha=1.0 if refine else 0.7, label=label)
        if refine:  # the setting a version is searched with; the knob's values on its curve
            for r in mine:
                ax.annotate(f"{'ef' if r['param'] == 'ef_search' else 'np'} {r['value']}",
                            (r["queries_per_s"], r["recall_at_10"]), textcoords="offset points",
                            xytext=(5, -3 if kind == "hnsw" else -9), fontsize=7, color=colours.get(kind))
    for r in (r for r in rows if r["kind"] == "flat"):
        ax.plot([r["queries_per_s"]], [r["recall_at_10"]], marker="*", markersize=14, color="black", linestyle="",
                label="flat (exact: the reference)")
    ax.set_xscale("log")
    ax.set_xlabel("queries/s, all dev queries in one batch, FAISS on 1 thread (log; best of the timed repeats)")
    ax.set_ylabel("recall@10 against exact search")
    ax.legend(fontsize=8, loc="lower left", title="ef: ef_search, np: nprobe", title_fontsize=8)
    data = report.get("data") or {}
    load = (report.get("machine") or {}).get("load_average_at_start")
    shared = f", load average {load[0]:.1f} at the start" if load else ""
    fig.suptitle(f"Index kinds on {data.get('items', '?'):,} Home Depot title vectors ({data.get('dim', '?')}-d, "
                 f"{data.get('encoder', '?')}), {data.get('queries', '?'):,} dev queries\n{_where_when(report)}{shared}")
    return [_save(fig, out_dir / f"{stem}.png")]


# ------------------------------------------------------------------------------------------ (c) ablation


GROUP_COLOURS = {"baseline": "tab:gray", "dense": "tab:blue", "blend": "tab:green", "reranker": "tab:purple",
                 "sessions": "tab:orange", "other": "tab:red"}


def _bars(ax, rows: list[dict], key: str, *, label_width: int = 52, first: bool = True) -> None:
    """Horizontal bars of ``row[key]`` top-down in file order (``first``: this axis sets the shared y axis)."""
    labels = [textwrap.shorten(r["label"], label_width, placeholder="…") for r in rows]
    values = [r.get(key) for r in rows]
    colours = [GROUP_COLOURS.get(r.get("group"), "tab:blue") for r in rows]
    y = list(range(len(rows)))
    errors = None
    if any(isinstance(r.get(f"{key}_ci"), list) for r in rows):
        errors = [[v - r[f"{key}_ci"][0] if r.get(f"{key}_ci") else 0 for v, r in zip(values, rows)],
                  [r[f"{key}_ci"][1] - v if r.get(f"{key}_ci") else 0 for v, r in zip(values, rows)]]
    bars = ax.barh(y, values, color=colours, xerr=errors, capsize=2)
    for bar, row in zip(bars, rows):
        if row.get("default"):
            bar.set_edgecolor("black")
            bar.set_linewidth(1.8)
    for yy, v in zip(y, values):
        ax.text(v, yy, f" {v:.3f}", va="center", fontsize=7)
    if first:  # with a shared y axis, a second inversion would undo the first
        ax.set_yticks(y, labels, fontsize=8)
        ax.invert_yaxis()
    ax.grid(axis="y", visible=False)


def plot_ablation(report: dict[str, Any], out_dir: Path, stem: str) -> list[Path]:
    """NDCG@10 per configuration: Home Depot dev (graded), and Amazon Scientific dev at k = 1 and k = 3 clicks."""
    plt = _pyplot()
    from matplotlib.patches import Patch

    written = []
    intervals = "whiskers: recorded intervals" if any(
        isinstance(v, list) for r in report["results"] for k, v in r.items() if k.endswith("_ci")) else \
        "one run per row, no intervals recorded"
    hd = [r for r in report["results"] if r["dataset"].startswith("homedepot")
          and isinstance(r.get("ndcg@10"), (int, float))]
    if hd:
        fig, ax = plt.subplots(figsize=(10, 0.27 * len(hd) + 1.6), layout="constrained")
        _bars(ax, hd, "ndcg@10")
        ax.set_xlabel("NDCG@10 on Home Depot dev (graded gains; higher is better)")
        ax.set_xlim(0, max(r["ndcg@10"] for r in hd) * 1.4)  # room on the right for the legend
        ax.margins(y=0.01)
        groups = list(dict.fromkeys(r.get("group", "other") for r in hd))
        ax.legend(handles=[Patch(color=GROUP_COLOURS.get(g, "tab:blue"), label=g) for g in groups]
                  + [Patch(facecolor="white", edgecolor="black", linewidth=1.8, label="the default configuration")],
                  fontsize=8, loc="center right", title="ranked by", title_fontsize=8)
        fig.suptitle(f"Ablation: NDCG@10 per configuration, Home Depot dev (1,171 queries; {intervals})\n"
                     f"{_where_when(report)}")
        written.append(_save(fig, out_dir / f"{stem}_homedepot.png"))
    sci = [r for r in report["results"] if r["dataset"].startswith("amazon")
           and all(isinstance(r.get(f"k{k}_ndcg@10"), (int, float)) for k in (1, 3))]
    if sci:
        fig, axes = plt.subplots(1, 2, figsize=(11, 0.4 * len(sci) + 1.8), sharey=True, layout="constrained")
        for ax, k in zip(axes, (1, 3)):
            _bars(ax, sci, f"k{k}_ndcg@10", first=k == 1)
            ax.set_xlabel(f"NDCG@10, {'the first click' if k == 1 else f'the first {k} clicks'} given")
            ax.set_xlim(0, max(r[f"k{k}_ndcg@10"] for r in sci) * 1.18)
        fig.suptitle(f"Ablation: new users' next items, Amazon Industrial & Scientific dev (791 users; {intervals})\n"
                     f"{_where_when(report)}")
        written.append(_save(fig, out_dir / f"{stem}_amazon.png"))
    return written


# ------------------------------------------------------------------------------------------ (d) embedding


def plot_embed_throughput(report: dict[str, Any], out_dir: Path, stem: str) -> list[Path]:
    """Titles/s per encoder backend: one process (6-layer and pruned 3-layer MiniLM) and the Ray Data job end to end;
    the plain transformers loop as reference lines."""
    plt = _pyplot()
    rows = report["results"]
    backends = [b for b in ("torch", "onnx", "onnx-int8") if any(r["backend"] == b for r in rows)]
    backends += sorted({r["backend"] for r in rows} - set(backends))
    series = list(dict.fromkeys((r["encoder"], r["system"]) for r in rows if r["system"] != "plain loop"))
    fig, ax = plt.subplots(figsize=(10, 4.8), layout="constrained")
    width = 0.8 / max(1, len(series))
    colours = ["tab:blue", "tab:orange", "tab:green", "tab:purple", "tab:red"]
    sources = report.get("sources") or {}
    for n, (encoder, system) in enumerate(series):
        mine = [r for r in rows if (r["encoder"], r["system"]) == (encoder, system)]
        by_backend = {r["backend"]: r["titles_per_s"] for r in mine}
        xs = [i + (n - (len(series) - 1) / 2) * width for i, b in enumerate(backends) if b in by_backend]
        vs = [by_backend[b] for b in backends if b in by_backend]
        setting = mine[0].get("setting") or (sources.get(mine[0].get("source")) or {}).get("setting")
        label = f"{encoder}, {system}" + (f" ({setting})" if setting else "")
        bars = ax.bar(xs, vs, width, label=textwrap.fill(label, 95), color=colours[n % len(colours)])
        for bar, v in zip(bars, vs):
            ax.text(bar.get_x() + bar.get_width() / 2, v, f"{v:,.0f}", ha="center", va="bottom", fontsize=8)
    for n, r in enumerate(r for r in rows if r["system"] == "plain loop"):
        ax.axhline(r["titles_per_s"], color="black", linestyle=["--", ":"][n % 2], linewidth=1,
                   label=f"plain transformers loop, {r['encoder']}: {r['titles_per_s']:,.0f}/s")
    ax.set_xticks(range(len(backends)), backends)
    ax.set_xlabel("encoder backend")
    ax.set_ylabel("Home Depot titles embedded per second")
    ax.grid(axis="x", visible=False)
    ax.legend(fontsize=8, loc="upper left")
    ax.set_ylim(0, max(r["titles_per_s"] for r in rows) * 1.15)
    fig.suptitle(f"Embedding throughput per encoder backend\n{_where_when(report)}")
    return [_save(fig, out_dir / f"{stem}.png")]


DRAW: dict[str, Callable[[dict, Path, str], list[Path]]] = {
    "serve_load": plot_serving, "index_recall": plot_index_recall, "ablation": plot_ablation,
    "embed_throughput": plot_embed_throughput,
}


def draw(paths: list[Path], out_dir: Path) -> list[Path]:
    """Every file's PNGs into ``out_dir``, named after the file; all files are checked before anything is drawn."""
    reports = [(Path(p), load(p)) for p in paths]
    written = []
    for path, report in reports:
        written += DRAW[report["benchmark"]](report, Path(out_dir), path.stem)
    return written


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("files", nargs="*", type=Path, help=f"results files (default: every *.json in {RESULTS})")
    parser.add_argument("--out", type=Path, default=OUT, help=f"where the PNGs go (default {OUT})")
    args = parser.parse_args(argv)
    files = args.files or sorted(RESULTS.glob("*.json"))
    if not files:
        print(f"error: no results files given and none in {RESULTS}", file=sys.stderr)
        return 1
    try:
        written = draw(files, args.out)
    except (ResultsError, OSError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    for path in written:
        print(f"{path} ({path.stat().st_size / 1024:.0f} KB)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
