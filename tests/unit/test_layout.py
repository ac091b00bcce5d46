"""The layout's rules, read from the source: indexed folders, a pure core, no import cycles, benchmarks that
only call the library."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
LIBRARY = ROOT / "coldstart"


def _modules() -> dict[str, Path]:
    out = {}
    for path in LIBRARY.rglob("*.py"):
        parts = path.relative_to(ROOT).with_suffix("").parts
        out[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    return out


def _imports(path: Path, *, top_level_only: bool) -> set[str]:
    tree = ast.parse(path.read_text())
    nodes = tree.body if top_level_only else list(ast.walk(tree))
    found = set()
    for node in nodes:
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
            found.update(f"{node.module}.{alias.name}" for alias in node.names)
    return found


def test_every_library_folder_has_a_readme_index_named_in_the_librarys_readme():
    index = (LIBRARY / "README.md").read_text()
    folders = [p for p in LIBRARY.rglob("*") if p.is_dir() and p.name != "__pycache__"]
    assert folders
    for folder in folders:
        assert (folder / "README.md").is_file(), f"{folder.relative_to(ROOT)} has no README.md index"
    for folder in (p for p in LIBRARY.iterdir() if p.is_dir() and p.name != "__pycache__"):
        assert f"`{folder.name}/`" in index, f"coldstart/README.md does not list {folder.name}/"


def test_each_readme_lists_every_module_of_its_folder():
    for readme in LIBRARY.rglob("README.md"):
        text = readme.read_text()
        for module in readme.parent.glob("*.py"):
            if module.name != "__init__.py":
                assert f"`{module.name}`" in text or module.name in text, \
                    f"{readme.relative_to(ROOT)} does not list {module.name}"


def test_only_the_cli_edge_imports_the_ray_glue_or_the_jobs():
    for name, path in _modules().items():
        if name == "coldstart.cli":
            continue
        edge = {i for i in _imports(path, top_level_only=False) if i.split(".")[0] in ("pipelines", "jobs")}
        assert not edge, f"{name} imports {sorted(edge)}: only coldstart/cli.py may"


def test_the_library_has_no_import_cycles():
    modules = _modules()
    graph = {name: {i for i in _imports(path, top_level_only=True) if i in modules and i != name}
             for name, path in modules.items()}
    state: dict[str, int] = {}

    def visit(node: str, trail: list[str]) -> None:
        state[node] = 1
        for nxt in sorted(graph[node]):
            if state.get(nxt) == 1:
                cycle = trail[trail.index(nxt):] + [nxt] if nxt in trail else [node, nxt]
                pytest.fail(f"import cycle: {' -> '.join(cycle)}")
            if nxt not in state:
                visit(nxt, trail + [nxt])
        state[node] = 2

    for name in sorted(graph):
        if name not in state:
            visit(name, [name])


def test_jobs_do_not_import_the_cli():
    for path in (ROOT / "jobs").glob("*.py"):
        assert "coldstart.cli" not in _imports(path, top_level_only=False), f"{path.name} imports the CLI"


def test_no_test_imports_the_benchmarks():
    for path in (ROOT / "tests").rglob("*.py"):
        bad = {i for i in _imports(path, top_level_only=False) if i.split(".")[0] == "benchmarks"}
        assert not bad, f"{path.relative_to(ROOT)} imports {sorted(bad)}"


def test_benchmarks_define_no_ranking_system():
    pattern = re.compile(r"(System|Retriever|Ranker|Recommender|Pipeline)$")
    for path in (ROOT / "benchmarks").glob("*.py"):
        classes = [n.name for n in ast.walk(ast.parse(path.read_text())) if isinstance(n, ast.ClassDef)]
        assert not [c for c in classes if pattern.search(c)], f"{path.name} defines {classes}"
