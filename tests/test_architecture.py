"""Imports run one way: each module imports only modules earlier in the data flow (CONTRIBUTING.md)."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

#: The data flow's order: a bench module may import bench modules of its own rank or below.
RANK = {
    "bench.loop": 0,
    "bench.errors": 0,
    "bench.item_status": 0,
    "bench.model_time": 0,
    "bench.distributions": 1,
    "bench.processes": 1,
    "bench.recorder": 2,
    "bench.full_recorder": 2,
    "bench.behaviour": 2,
    "bench.scenario": 3,
    "bench.scenarios": 3,
    "bench.replication": 4,
    "bench.replication_stats": 4,
    "bench.digest": 4,
    "bench.asyncio_engine": 5,
    "bench.recurrence": 5,
    "bench.grid": 6,
    "bench.results_format": 6,
    "bench.encoding": 6,
    "bench.store": 7,
    "bench.executor": 7,
    "bench.runner": 8,
    "bench.sampling": 9,
    "bench.studies": 9,
    "bench.pytest_plugin": 9,
    "bench.cli": 10,
    "bench.__main__": 10,
}
#: What the analysis may import of bench: the results format (its layout, its encoding, the model
#: time it is written in, the digests and their histograms) and the error type, nothing that runs.
ANALYSIS_MAY_IMPORT = {
    "bench.errors", "bench.results_format", "bench.encoding", "bench.model_time", "bench.digest", "bench.replication_stats",
}  # fmt: skip


def _modules() -> list[tuple[str, Path]]:
    found = []
    for package in ("bench", "analysis"):
        for path in sorted((ROOT / package).rglob("*.py")):
            parts = path.relative_to(ROOT).with_suffix("").parts
            name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
            found.append((name, path))
    return found


def _imports(path: Path, name: str) -> set[str]:
    """Every project module a file imports, at module level or inside functions."""
    names: set[str] = set()
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                base = ".".join(
                    package.split(".")[: len(package.split(".")) - node.level + 1] + ([base] if base else [])
                )
            names.add(base)
            names.update(f"{base}.{alias.name}" for alias in node.names)
    return {n for n in names if n.split(".")[0] in ("bench", "analysis")}


def _rank(module: str) -> int | None:
    for prefix, rank in sorted(RANK.items(), key=lambda item: -len(item[0])):
        if module == prefix or module.startswith(prefix + "."):
            return rank
    return None


@pytest.mark.parametrize(("name", "path"), _modules(), ids=[name for name, _ in _modules()])
def test_imports_run_one_way(name, path):
    imported = _imports(path, name)
    if name.startswith("analysis"):
        allowed = ("analysis", *ANALYSIS_MAY_IMPORT)
        assert all(any(m == a or m.startswith(a + ".") for a in allowed) for m in imported), sorted(imported)
        return
    if name == "bench":
        return  # the package's __init__ imports its public names lazily, by string
    if name.startswith("bench.loop"):
        assert all(m.startswith("bench.loop") for m in imported), sorted(imported)
        return
    if name not in ("bench.cli", "bench.__main__"):
        assert not any(m.startswith("analysis") for m in imported), sorted(imported)
    mine = _rank(name)
    assert mine is not None, f"{name} has no place in RANK"
    above = sorted(m for m in imported if m.startswith("bench.") and (_rank(m) or 0) > mine)
    assert not above, f"{name} (rank {mine}) imports modules further along the flow: {above}"


def test_the_reports_charts_are_the_ones_the_results_format_lists():
    """--force recognises a report's files by these names: a chart added to the report must be listed
    (the targets chart is drawn only for a run with targets)."""
    from analysis.plots import CHARTS, TARGETS_CHART
    from bench.results_format import REPORT_CHARTS

    assert (*CHARTS, *TARGETS_CHART) == REPORT_CHARTS
