"""The command line end to end, through a subprocess, as a user runs it."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pyarrow.parquet as pq
import pytest

from analysis.load import open_run, read_depth, read_events, read_items
from bench.encoding import DEPTH_FILE_SCHEMA, ITEMS_FILE_SCHEMA
from bench.results_format import EVENTS_SCHEMA

ROOT = Path(__file__).resolve().parents[1]
QBENCH = [sys.executable, "-m", "bench"]
SMALL = ["--workers", "1,2", "--arrival", "exp:1", "--service", "exp:1.5", "--items", "300", "--seed", "3"]


def qbench(*args, check=False, **kwargs) -> subprocess.CompletedProcess:
    return subprocess.run([*QBENCH, *map(str, args)], capture_output=True, text=True, check=check, cwd=ROOT, **kwargs)


def _one_line_error(done: subprocess.CompletedProcess, fragment: str) -> None:
    assert done.returncode == 2, done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    assert lines[0].startswith("qbench: error:")
    assert fragment in lines[0]
    assert "Traceback" not in done.stderr


def test_run_writes_a_results_folder_matching_the_contract(tmp_path):
    out = tmp_path / "small"
    done = qbench("run", "--out", out, *SMALL, "--replications", "2", "--jobs", "2", "--no-progress", check=True)
    assert "wrote" in done.stdout
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["status"] == "complete"
    assert manifest["grid"]["workers"] == [1, 2] and manifest["grid"]["items"] == 300
    assert len(manifest["cells"]) == 2 and manifest["seeds"]["seed"] == 3
    assert {"python", "numpy", "pyarrow", "qbench"} <= set(manifest["versions"])
    items_cols = {
        "cell",
        "replication",
        "item",
        "worker",
        "t_put",
        "t_get",
        "t_done",
        "wait",
        "service",
        "sojourn",
        "depth_at_put",
        "status",
        "class",
        "pusher",
        "attempts",
        "t_leave",
    }
    for kind, stored in (("items", ITEMS_FILE_SCHEMA), ("depth", DEPTH_FILE_SCHEMA), ("events", EVENTS_SCHEMA)):
        files = sorted((out / kind).glob("*.parquet"))
        assert [f.name for f in files] == ["cell-00000.parquet", "cell-00001.parquet"]
        schema = pq.read_schema(files[0])
        assert schema.remove_metadata().equals(stored.remove_metadata())
        assert schema.metadata[b"qbench.schema_version"] == b"5"
    run = open_run(out)
    items, depth = read_items(run, join=False), read_depth(run)
    assert set(items.columns) == items_cols | {"t_arrive"} and set(depth.columns) == {
        "cell",
        "replication",
        "t",
        "depth",
        "event",
    }
    assert str(items["t_put"].dtype) == str(depth["t"].dtype) == "float64"
    assert len(items) == 2 * 2 * 300 and items["t_done"].notna().all()
    events = read_events(run)
    assert set(events.columns) == {"cell", "replication", "t", "kind", "value"}
    cells = pd.read_parquet(out / "cells.parquet")
    assert len(cells) == 4 and set(cells.status) == {"ok"}
    assert not list(out.rglob("*.tmp"))


def test_console_script_and_module_both_run(tmp_path):
    script = Path(sys.executable).with_name("qbench")
    assert script.exists()
    a = subprocess.run([script, "--help"], capture_output=True, text=True)
    b = qbench("--help")
    assert a.returncode == b.returncode == 0
    assert a.stdout == b.stdout


def test_run_help_shows_examples():
    done = qbench("run", "--help")
    assert done.returncode == 0
    assert "examples:" in done.stdout and "qbench run bench/grids/default.toml" in done.stdout


def test_existing_results_folder_is_refused_unless_forced(tmp_path):
    out = tmp_path / "r"
    qbench("run", "--out", out, *SMALL, "--no-progress", "--jobs", "1", check=True)
    _one_line_error(qbench("run", "--out", out, *SMALL, "--no-progress"), "--force")
    qbench("run", "--out", out, *SMALL, "--no-progress", "--jobs", "1", "--force", check=True)


def test_bad_input_exits_2_with_one_line(tmp_path):
    """The process itself, once: tests/test_bad_input.py checks every kind of bad input in-process."""
    base = ["--workers", "two", "--arrival", "exp:1", "--service", "exp:0.5", "--items", "10"]
    out = tmp_path / "never"
    _one_line_error(qbench("run", "--out", out, *base, "--no-progress"), "bad list")
    assert not out.exists()


def test_flags_override_the_grid_file(tmp_path):
    grid = tmp_path / "g.toml"
    grid.write_text('workers = [1, 2, 3]\narrival = ["exp:1"]\nservice = ["exp:0.5"]\nduration = 50\nseed = 4\n')
    out = tmp_path / "o"
    qbench("run", grid, "--out", out, "--workers", "2", "--items", "40", "--no-progress", check=True)
    cells = pd.read_parquet(out / "cells.parquet")
    assert list(cells.workers) == [2]
    assert cells.items_target.iloc[0] == 40 and pd.isna(cells.duration.iloc[0])
    assert cells.seed.iloc[0] == "4"  # seeds are kept as text (up to 128 bits)


def test_default_grid_is_valid_and_holds_the_seed_scenario():
    from bench.grid import load_grid, make_grid

    grid = make_grid(load_grid(ROOT / "bench" / "grids" / "default.toml"))
    specs = {(c.arrival.spec, c.service.spec, c.workers) for c in grid.cells()}
    assert ("const:1", "uniform:0:5", 2) in specs and ("const:1", "uniform:0:5", 3) in specs
    assert {"exp:1"} <= {c.arrival.spec for c in grid.cells()}
    assert set(grid.workers) == {1, 2, 3, 4}


def test_demo_prints_the_blog_lines():
    done = qbench("demo", "--scale", "0.002", "--items", "12", "--seed", "1", check=True, timeout=60)
    lines = done.stdout.strip().splitlines()
    assert len(lines) == 12
    assert all(line.startswith(("[Fred] Got item: ", "[George] Got item: ")) for line in lines)
    assert lines[0] == "[Fred] Got item: 0 (size 0)"


def test_ctrl_c_keeps_finished_cells_and_marks_the_run_interrupted(tmp_path):
    out = tmp_path / "long"
    args = [
        "run",
        "--out",
        out,
        "--workers",
        ",".join(map(str, range(1, 41))),
        "--arrival",
        "exp:1",
        "--service",
        "exp:0.9",
        "--items",
        "40000",
        "--jobs",
        "2",
        "--no-progress",
    ]
    process = subprocess.Popen(
        [*QBENCH, *map(str, args)], cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and len(list((out / "parts").glob("*.parquet"))) < 2:
        time.sleep(0.05)
    process.send_signal(signal.SIGINT)
    _, stderr = process.communicate(timeout=60)
    assert process.returncode == 130, stderr
    assert "interrupted" in stderr and "Traceback" not in stderr
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["status"] == "interrupted"
    parts = sorted(p.name for p in (out / "parts").glob("*.parquet"))
    assert 2 <= len(parts) < 40
    assert sorted(p.name for p in (out / "items").glob("*.parquet")) == parts
    assert not list(out.rglob("*.tmp"))
    assert len(pd.read_parquet(out / "cells.parquet").cell.unique()) == len(parts)


@pytest.mark.skipif(shutil.which("make") is None, reason="make not installed")
def test_makefile_has_the_readme_targets():
    text = (ROOT / "Makefile").read_text()
    for target in ("install:", "test:", "bench:", "report:", "perf:", "plan-perf:"):
        assert f"\n{target}" in text
    assert "make test" in (ROOT / ".ci" / "run").read_text()
    assert os.access(ROOT / ".ci" / "run", os.X_OK)
