"""Users' own scenarios: a file or module outside the package runs through the whole harness, and a
scenario that breaks fails its own cell with one line while the others run."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from analysis.load import open_run, read_items
from bench.cli import main
from bench.grid import make_grid
from bench.runner import run_grid
from bench.scenarios import ScenarioError, load, resolve

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE = ROOT / "bench" / "scenarios" / "examples" / "rate_limited.py"


def _qbench(*args: str, env: dict | None = None, cwd: Path | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "bench", *args], capture_output=True, text=True, timeout=300,
                          env=env, cwd=cwd)  # fmt: skip


def test_the_example_scenario_runs_through_run_and_report_from_a_folder_outside_the_package(tmp_path):
    mine = tmp_path / "elsewhere"
    mine.mkdir()
    shutil.copy(EXAMPLE, mine / "rate_limited.py")
    out = tmp_path / "run"
    # two worker processes (spawned: each imports the file by its path), a duration and an items cell
    ran = _qbench("run", "--scenario", f"{mine / 'rate_limited.py'}:rate_limited", "--out", str(out), "--workers",
                  "2,8", "--arrival", "exp:0.1", "--service", "exp:0.5", "--duration", "2000", "--replications", "2",
                  "--seed", "3", "--jobs", "2", "--no-progress", cwd=tmp_path)  # fmt: skip
    assert ran.returncode == 0, ran.stderr
    cells = pd.read_parquet(out / "cells.parquet")
    assert set(cells.status) == {"ok"} and set(cells.scenario) == {f"{mine / 'rate_limited.py'}:rate_limited"}
    eight = cells[cells.workers == 8]
    # 8 workers, 10 requests/s: the downstream (2 calls at once, 0.4 s each) caps goodput at 5/s;
    # about 10,000 completions per replication make that +-0.25 more than 4 standard errors
    assert eight.goodput.mean() == pytest.approx(5.0, abs=0.25)
    manifest = json.loads((out / "manifest.json").read_text())
    [entry] = manifest["inputs"]
    assert entry["path"] == str(mine / "rate_limited.py") and len(entry["sha256"]) == 64
    report = _qbench("report", str(out), "--no-progress")
    assert report.returncode == 0, report.stderr
    text = (out / "report" / "report.md").read_text()
    assert "What became of the items" in text and "scenario rate_limited.py:rate_limited" in text


def test_a_scenario_named_as_an_importable_module_runs(tmp_path):
    shutil.copy(EXAMPLE, tmp_path / "my_limits.py")
    env = {**os.environ, "PYTHONPATH": str(tmp_path)}
    out = tmp_path / "run"
    ran = _qbench("run", "--scenario", "my_limits:rate_limited", "--out", str(out), "--workers", "4", "--arrival",
                  "exp:1", "--service", "exp:0.5", "--items", "500", "--jobs", "1", "--no-progress", "--no-summary",
                  env=env)  # fmt: skip
    assert ran.returncode == 0, ran.stderr
    items = read_items(open_run(out), join=False)
    assert len(items) == 500 and set(items.status) == {"served"}


def test_resume_refuses_a_scenario_file_that_changed(tmp_path, capsys):
    scenario = tmp_path / "mine.py"
    shutil.copy(EXAMPLE, scenario)
    out = tmp_path / "run"
    argv = ["run", "--scenario", f"{scenario}:rate_limited", "--out", str(out), "--workers", "2", "--arrival",
            "exp:1", "--service", "exp:0.5", "--items", "200", "--jobs", "1", "--no-progress", "--no-summary"]  # fmt: skip
    assert main(argv) == 0
    scenario.write_text(scenario.read_text() + "\nLIMIT = 3\n")
    capsys.readouterr()
    assert main(["run", "--resume", str(out)]) == 2
    assert "changed since" in capsys.readouterr().err


def test_a_worker_that_finds_the_file_changed_refuses_it(tmp_path):
    scenario = tmp_path / "mine.py"
    shutil.copy(EXAMPLE, scenario)
    ref = resolve(f"{scenario}:rate_limited")  # the grid, when the run began
    scenario.write_text(scenario.read_text() + "\n# edited\n")  # then a worker process loads it
    with pytest.raises(ScenarioError, match="changed since the run read it"):
        load(ref.reference, ref.sha256)


BROKEN = """
import asyncio

async def fine(ctx):
    for i in range(ctx.items):
        ctx.recorder.arrive(i, ctx.now()); ctx.recorder.put(i, ctx.now(), 1)
        ctx.recorder.get(i, 0, ctx.now(), 0); await ctx.sleep(1); ctx.recorder.done(i, ctx.now())

async def raises(ctx):
    await ctx.sleep(3)
    raise ValueError("boom in the scenario")

async def deadlocks(ctx):
    ctx.recorder.arrive(0, ctx.now()); ctx.recorder.put(0, ctx.now(), 1)
    await asyncio.Event().wait()

async def worker_dies(ctx):
    async def worker():
        await ctx.sleep(1)
        raise KeyError("worker crashed")
    task = asyncio.create_task(worker(), name="worker-0")
    ctx.recorder.arrive(0, ctx.now())
    await asyncio.Event().wait()

async def never_returns(ctx):
    await fine(ctx)
    while True:
        await ctx.sleep(1000)

async def leaves_a_stubborn_task(ctx):
    async def heartbeat():
        while True:
            try:
                await ctx.sleep(1)
            except asyncio.CancelledError:
                pass
    asyncio.create_task(heartbeat(), name="heartbeat")
    await fine(ctx)

async def too_many_items(ctx):
    for i in range(ctx.items + 1):
        ctx.recorder.arrive(i, ctx.now()); await ctx.sleep(1)

async def returns_early(ctx):
    ctx.recorder.arrive(0, ctx.now())

async def serves_twice(ctx):
    ctx.recorder.arrive(0, ctx.now()); ctx.recorder.put(0, ctx.now(), 1); ctx.recorder.get(0, 0, ctx.now(), 0)
    ctx.recorder.done(0, ctx.now()); ctx.recorder.done(0, ctx.now())
    await ctx.sleep(1)

async def wants_more(ctx, other):
    pass
"""

#: scenario -> a fragment of its cell's error
FAILURES = {
    "raises": "raised ValueError: boom in the scenario",
    "deadlocks": "stalled: nothing was recorded",
    "worker_dies": "task 'worker-0' died of KeyError: 'worker crashed'",
    "never_returns": "every one of its 5 items has left but it did not return",
    "leaves_a_stubborn_task": "task 'heartbeat' did not stop when cancelled",
    "too_many_items": "broke the recorder contract: item 5 arrived, but the grid's items = 5",
    "returns_early": "returned at t=0s with 5 of its 5 items not finished",
    "serves_twice": "done(0, ...): item 0 has already left the system (served)",
    "wants_more": "could not start: calling it with the context raised TypeError",
}


def test_a_broken_scenario_fails_its_own_cell_with_one_line_and_the_run_goes_on(tmp_path):
    (tmp_path / "broken.py").write_text(BROKEN)
    names = ["fine", *FAILURES]
    grid = make_grid({"workers": [1], "arrival": "exp:1", "service": "exp:1", "items": 5,
                      "scenario": [f"{tmp_path / 'broken.py'}:{n}" for n in names]})  # fmt: skip
    result = run_grid(tmp_path / "run", grid, jobs=1, progress=False)
    errors = dict(result.failed)
    cells = pd.read_parquet(tmp_path / "run" / "cells.parquet").set_index("cell")
    assert cells.loc[0, "status"] == "ok" and 0 not in errors
    for cell, name in enumerate(names[1:], start=1):
        assert cells.loc[cell, "status"] == "failed"
        assert FAILURES[name] in errors[cell] and "\n" not in errors[cell], errors[cell]


def test_a_scenario_that_ignores_the_duration_is_stopped_there(tmp_path):
    (tmp_path / "loops.py").write_text(
        BROKEN
        + """
async def ignores_duration(ctx):
    i = 0
    while True:
        ctx.recorder.arrive(i, ctx.now()); ctx.recorder.put(i, ctx.now(), 1)
        ctx.recorder.get(i, 0, ctx.now(), 0); await ctx.sleep(1); ctx.recorder.done(i, ctx.now())
        i += 1
"""
    )
    grid = make_grid({"workers": [1], "arrival": "exp:1", "service": "exp:1", "duration": 50.5,
                      "scenario": f"{tmp_path / 'loops.py'}:ignores_duration"})  # fmt: skip
    result = run_grid(tmp_path / "run", grid, jobs=1, progress=False)
    assert not result.failed
    items = read_items(open_run(tmp_path / "run"), join=False)
    cells = pd.read_parquet(tmp_path / "run" / "cells.parquet")
    assert cells.t_end.iloc[0] == 50.5 and items.t_put.max() < 50.5 and len(items) == 51
    assert items.status.iloc[-1] == "in_service"  # the last item's service would end at 51


def test_plan_answers_for_the_example_scenario_from_a_folder_outside_the_package(tmp_path):
    """The plan's runs go through the grid and the engines' entry points, so a user's scenario is
    planned like the built-in pool (on the asyncio engine, which 'auto' picks for it)."""
    mine = tmp_path / "elsewhere"
    mine.mkdir()
    shutil.copy(EXAMPLE, mine / "rate_limited.py")
    scenario = f"{mine / 'rate_limited.py'}:rate_limited"
    out = tmp_path / "evidence"
    # 1 request/s, 0.5 s of work then a downstream call (2 at once, 0.4 s): one worker is busy
    # about 0.9 of the time, so the answer is at least 2
    planned = _qbench("plan", "--scenario", scenario, "--arrival", "exp:1", "--service", "exp:0.5", "--slo",
                      "wait_p99<=2", "--items", "2000", "--budget", "400000", "--seed", "2", "--format", "json",
                      "--no-progress", "--out", str(out), cwd=tmp_path)  # fmt: skip
    assert planned.returncode == 0, planned.stderr
    answer = json.loads(planned.stdout)
    assert answer["workers"] is not None and answer["workers"] >= 2
    cells = pd.read_parquet(out / "cells.parquet")
    assert set(cells.scenario) == {scenario} and set(cells.engine) == {"asyncio"}
    assert _qbench("report", str(out), "--no-progress").returncode == 0
