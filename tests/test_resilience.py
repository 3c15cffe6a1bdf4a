"""Nothing lost: kill-and-resume, failure isolation, the backlog cap, and identical data on every executor."""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from analysis.load import open_run, read_items
from bench import runner
from bench.executor import DaskExecutor, ProcessExecutor, SerialExecutor
from bench.grid import make_grid
from bench.runner import run_grid

ROOT = Path(__file__).resolve().parents[1]
QBENCH = [sys.executable, "-m", "bench"]


def _same_data(a: Path, b: Path) -> None:
    """Two run folders hold exactly the same records (timings aside)."""
    for kind in ("items", "depth"):
        names_a = sorted(p.name for p in (a / kind).glob("*.parquet"))
        assert names_a == sorted(p.name for p in (b / kind).glob("*.parquet"))
        for name in names_a:
            assert pd.read_parquet(a / kind / name).equals(pd.read_parquet(b / kind / name)), f"{kind}/{name}"
    cells_a = pd.read_parquet(a / "cells.parquet").drop(columns="wall_seconds")
    cells_b = pd.read_parquet(b / "cells.parquet").drop(columns="wall_seconds")
    assert cells_a.equals(cells_b)


def _no_duplicates(run: Path) -> None:
    items = read_items(open_run(run), join=False)
    cells = pd.read_parquet(run / "cells.parquet")
    counts = items.groupby(["cell", "replication"]).item.agg(["count", "nunique", "max"])
    assert (counts["count"] == counts["nunique"]).all() and (counts["max"] + 1 == counts["count"]).all()
    assert counts["count"].sum() == cells.n_put.sum()
    assert not list(run.rglob("*.tmp"))


# -- kill and resume -------------------------------------------------------------------------------

KILL_ARGS = [
    "--workers",
    "1,2,3,4,5",
    "--arrival",
    "exp:1,const:1",
    "--service",
    "exp:1.5,uniform:0:4,gamma:2:2",
    "--items",
    "3000",
    "--replications",
    "2",
    "--seed",
    "77",
    "--no-progress",
    "--no-summary",
]


def _start(args: list[str]) -> subprocess.Popen:
    return subprocess.Popen(
        [*QBENCH, *args], cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, start_new_session=True
    )


def test_a_run_killed_at_random_moments_resumes_to_exactly_the_uninterrupted_data(tmp_path):
    reference = tmp_path / "reference"
    subprocess.run(
        [*QBENCH, "run", "--out", reference, *KILL_ARGS, "--jobs", "2"], cwd=ROOT, check=True, capture_output=True
    )
    rng = random.Random(20261125)
    resume = ["--jobs", "2", "--no-progress", "--no-summary"]
    for attempt in range(3):
        out = tmp_path / f"killed-{attempt}"
        fresh = ["run", "--out", str(out), *KILL_ARGS, "--jobs", "2"]
        process = _start(fresh)
        for _ in range(2):
            try:
                process.wait(timeout=rng.uniform(0.5, 1.6))
                break  # finished before the kill: the resume below must then be a no-op
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait()
            # Killed before it made the folder: nothing to resume, so the user runs it again.
            process = _start(["run", "--resume", str(out), *resume] if out.exists() else fresh)
        process.wait(timeout=120)
        if not out.exists():
            subprocess.run([*QBENCH, *fresh], cwd=ROOT, capture_output=True, check=True)
        done = subprocess.run([*QBENCH, "run", "--resume", out, *resume], cwd=ROOT, capture_output=True, text=True)
        assert done.returncode == 0, done.stderr
        assert json.loads((out / "manifest.json").read_text())["status"] == "complete"
        _no_duplicates(out)
        _same_data(reference, out)


# -- failure isolation -----------------------------------------------------------------------------


def test_a_failing_cell_is_recorded_and_the_others_finish_then_resume_retries_it(tmp_path, monkeypatch):
    grid = make_grid(dict(workers=[1, 2, 3], arrival="exp:1", service="exp:1.5", items=200, seed=1))
    real = runner.replicate

    def flaky(grid, cell, replication, sink, on_progress):
        if cell.id == 1:
            raise RuntimeError("simulated failure in cell 1\nsecond line of detail")
        return real(grid, cell, replication, sink, on_progress)

    monkeypatch.setattr(runner, "replicate", flaky)
    run = tmp_path / "run"
    result = run_grid(run, grid, jobs=1, progress=False)
    assert result.failed == [(1, "RuntimeError: simulated failure in cell 1")]
    cells = pd.read_parquet(run / "cells.parquet")
    assert dict(zip(cells.cell, cells.status)) == {0: "ok", 1: "failed", 2: "ok"}
    assert not (run / "items" / "cell-00001.parquet").exists()
    assert json.loads((run / "manifest.json").read_text())["status"] == "failed"

    monkeypatch.setattr(runner, "replicate", real)
    again = run_grid(run, grid, jobs=1, progress=False)
    assert again.skipped == 2 and again.finished == 1 and not again.failed
    assert set(pd.read_parquet(run / "cells.parquet").status) == {"ok"}
    _no_duplicates(run)


def test_an_empirical_file_missing_at_run_time_fails_only_its_cells(tmp_path):
    data = tmp_path / "durations.csv"
    data.write_text("s\n" + "\n".join(str(v) for v in np.linspace(0.5, 2.5, 50)) + "\n")
    grid = tmp_path / "grid.toml"
    grid.write_text(f'workers = [1, 2]\narrival = ["exp:1"]\nservice = ["exp:0.5", "empirical:{data}"]\nitems = 100\n')
    process = subprocess.Popen(
        [*QBENCH, "run", str(grid), "--out", str(tmp_path / "run"), "--jobs", "2", "--no-progress"],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    # The grid is validated (file present), then the file disappears before the workers read it.
    deadline = time.monotonic() + 30
    while not (tmp_path / "run" / "manifest.json").exists() and time.monotonic() < deadline:
        time.sleep(0.005)
    data.unlink()
    _, stderr = process.communicate(timeout=120)
    cells = pd.read_parquet(tmp_path / "run" / "cells.parquet")
    if (cells.status == "ok").all():
        pytest.skip("the workers read the file before it was removed (a race this test cannot force)")
    assert process.returncode == 1
    assert "cell(s) failed" in stderr and "not found" in stderr and "Traceback" not in stderr
    assert set(cells[cells.service == "exp:0.5"].status) == {"ok"}


# -- the backlog cap -------------------------------------------------------------------------------


def test_backlog_cap_stops_a_runaway_cell_cleanly(tmp_path):
    out = tmp_path / "run"
    done = subprocess.run(
        [
            *QBENCH,
            "run",
            "--out",
            out,
            "--workers",
            "1,4",
            "--arrival",
            "exp:1",
            "--service",
            "exp:2",
            "--duration",
            "100000",
            "--max-backlog",
            "500",
            "--seed",
            "3",
            "--no-progress",
            "--jobs",
            "1",
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0, done.stderr
    assert "warning: cell 0 backlog reached 500 items" in done.stderr
    cells = pd.read_parquet(out / "cells.parquet").set_index("workers")
    assert cells.loc[1, "status"] == "capped" and cells.loc[4, "status"] == "ok"
    assert cells.loc[1, "depth_max"] == 500 and cells.loc[1, "t_end"] < 100000
    items = read_items(open_run(out), cells=[0], join=False)
    assert items.t_get.isna().sum() == 500  # the backlog is recorded, censored
    assert cells.loc[4, "t_end"] == 100000


# -- determinism on every executor ----------------------------------------------------------------

_DET_GRID = dict(
    workers=[1, 2, 3],
    arrival=["exp:1", "const:1"],
    service=["uniform:0:4", "lognormal:1.5:1"],
    duration=200,
    replications=2,
    seed=99,
)


def test_serial_processes_and_any_jobs_give_identical_data(tmp_path):
    grid = make_grid(_DET_GRID)
    serial = tmp_path / "serial"
    with SerialExecutor() as executor:
        run_grid(serial, grid, progress=False, executor=executor)
    for jobs in (2, 3):
        with ProcessExecutor(jobs) as executor:
            run_grid(tmp_path / f"jobs{jobs}", grid, progress=False, executor=executor)
        _same_data(serial, tmp_path / f"jobs{jobs}")


def test_dask_local_cluster_gives_identical_data_on_a_200_cell_grid(tmp_path):
    pytest.importorskip("distributed")
    grid = make_grid(
        dict(
            workers=list(range(1, 11)),
            arrival=["exp:1", "const:1", "erlang:2:1", "uniform:0.5:1.5"],
            service=["exp:1.5", "uniform:0:4", "gamma:2:2", "const:0.9", "hyperexp:1:2"],
            items=150,
            seed=5,
        )
    )
    assert len(grid.cells()) == 200
    local = tmp_path / "local"
    with ProcessExecutor(2) as executor:
        run_grid(local, grid, progress=False, executor=executor)
    with DaskExecutor(None, 2) as executor:
        result = run_grid(tmp_path / "dask", grid, progress=False, executor=executor)
    assert result.finished == 200 and not result.failed
    _same_data(local, tmp_path / "dask")


def test_dask_workers_report_finished_items_to_the_progress_bar(tmp_path):
    pytest.importorskip("distributed")
    from bench.runner import create_run, run_cell

    grid = make_grid(dict(workers=[1, 2], arrival="exp:1", service="exp:0.8", items=3000, replications=2, seed=3))
    run = tmp_path / "run"
    create_run(run, grid)
    seen, finished = [], []
    with DaskExecutor(None, 2) as executor:
        executor.run_cells(run_cell, run, grid, grid.cells(), lambda cell, rows: finished.append(cell.id), seen.append)
        deadline = time.monotonic() + 30  # events travel worker -> scheduler -> client on their own
        while sum(seen) < 2 * 2 * 3000 and time.monotonic() < deadline:
            time.sleep(0.05)
    assert sorted(finished) == [0, 1]
    assert sum(seen) == 2 * 2 * 3000


def test_dask_executor_through_the_cli(tmp_path):
    pytest.importorskip("distributed")
    out = tmp_path / "run"
    done = subprocess.run(
        [
            *QBENCH,
            "run",
            "--out",
            out,
            "--workers",
            "1,2",
            "--arrival",
            "exp:1",
            "--service",
            "exp:0.8",
            "--items",
            "300",
            "--executor",
            "dask",
            "--jobs",
            "2",
            "--no-progress",
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert done.returncode == 0, done.stderr
    assert set(pd.read_parquet(out / "cells.parquet").status) == {"ok"}


def test_a_worker_process_that_dies_costs_only_its_own_cell(tmp_path, crashing_task):
    from bench.executor import WorkerDied

    crash_cell, crash_on_one_cell = crashing_task

    grid = make_grid(dict(workers=[1, 2, 3, 4, 5], arrival="exp:1", service="exp:0.8", items=300, seed=2))
    run = tmp_path / "run"
    runner.create_run(run, grid)
    outcomes = {}
    with ProcessExecutor(2) as executor:
        executor.run_cells(
            crash_on_one_cell,
            run,
            grid,
            grid.cells(),
            lambda cell, rows: outcomes.update({cell.id: rows}),
            lambda n: None,
        )
    assert sorted(outcomes) == [0, 1, 2, 3, 4]
    assert isinstance(outcomes[crash_cell], WorkerDied)
    for cell, rows in outcomes.items():
        if cell != crash_cell:
            assert [r["status"] for r in rows] == ["ok"]
            assert (run / "items" / f"cell-{cell:05d}.parquet").exists()


# -- faults at scale: a full disk, damaged cell files, a Dask worker killed mid-cell -----------------

FAULT_ARGS = ["--workers", "1,2,3,4", "--arrival", "exp:1", "--service", "exp:0.5", "--items", "20000", "--seed", "4",
              "--no-progress", "--no-summary"]  # fmt: skip


@pytest.fixture
def small_filesystem(tmp_path):
    """A 640 kB tmpfs (it holds about two of FAULT_ARGS' four cells of ~300 kB), remountable larger;
    skipped where this process may not mount."""
    mount = tmp_path / "fs"
    mount.mkdir()
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=640k", "tmpfs", str(mount)], capture_output=True)
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {done.stderr.decode().strip()}")
    try:
        yield mount
    finally:
        subprocess.run(["umount", str(mount)], capture_output=True)


def test_a_full_disk_stops_the_run_and_resume_finishes_it_when_there_is_room(tmp_path, small_filesystem):
    reference = tmp_path / "reference"
    subprocess.run([*QBENCH, "run", "--out", reference, *FAULT_ARGS, "--jobs", "2"], cwd=ROOT, check=True,
                   capture_output=True)  # fmt: skip
    out = small_filesystem / "run"
    full = subprocess.run([*QBENCH, "run", "--out", out, *FAULT_ARGS, "--jobs", "1"], cwd=ROOT, capture_output=True,
                          text=True)  # fmt: skip
    lines = full.stderr.strip().splitlines()
    assert full.returncode == 1 and len(lines) == 1 and "No space left on device" in lines[0], full.stderr
    assert "--resume" in lines[0] and "Traceback" not in full.stderr
    kept = {p.name for p in (out / "parts").iterdir()}
    assert kept and len(kept) < 4  # some cells finished, not all
    assert not [p for p in out.rglob("*.tmp")]
    subprocess.run(["mount", "-o", "remount,size=20m", str(small_filesystem)], check=True)
    done = subprocess.run([*QBENCH, "run", "--resume", out, "--jobs", "2", "--no-progress", "--no-summary"], cwd=ROOT,
                          capture_output=True, text=True)  # fmt: skip
    assert done.returncode == 0, done.stderr
    _same_data(reference, out)


def test_no_room_at_a_cell_s_commit_stops_the_run_keeps_finished_cells_and_resume_completes(tmp_path, monkeypatch):
    """The full-disk path without mounting anything (where a tmpfs cannot be mounted): the third
    cell's files cannot be written (ENOSPC); the run stops as interrupted, the two cells before it
    stay, and a resume with room runs only the rest, to the same data as an uninterrupted run."""
    import errno

    from bench import store

    grid = make_grid({"workers": [1, 2, 3, 4], "arrival": "exp:1", "service": "exp:0.5", "items": 3000, "seed": 4})
    commit, calls = store.CellWriter.commit, []

    def full(self):
        calls.append(1)
        if len(calls) == 3:
            raise OSError(errno.ENOSPC, "No space left on device")
        return commit(self)

    monkeypatch.setattr(store.CellWriter, "commit", full)
    stopped = run_grid(tmp_path / "run", grid, jobs=1, progress=False)
    assert (
        stopped.interrupted and stopped.disk_full and "no room" in stopped.disk_full and "\n" not in stopped.disk_full
    )
    assert store.finished_cells(tmp_path / "run") == {0, 1}
    assert not list((tmp_path / "run").rglob("*.tmp"))
    monkeypatch.setattr(store.CellWriter, "commit", commit)
    resumed = run_grid(tmp_path / "run", grid, jobs=1, progress=False)
    assert not resumed.interrupted and resumed.skipped == 2
    whole = run_grid(tmp_path / "whole", grid, jobs=1, progress=False)
    assert not whole.interrupted
    a, b = open_run(tmp_path / "run"), open_run(tmp_path / "whole")
    assert read_items(a, join=False).equals(read_items(b, join=False))


@pytest.mark.parametrize("damage", ["truncate", "flip"])
def test_a_damaged_cell_file_is_found_on_resume_and_its_cell_runs_again(tmp_path, damage):
    reference = tmp_path / "reference"
    subprocess.run([*QBENCH, "run", "--out", reference, *FAULT_ARGS, "--jobs", "1"], cwd=ROOT, check=True,
                   capture_output=True)  # fmt: skip
    out = tmp_path / "run"
    subprocess.run(["cp", "-r", str(reference), str(out)], check=True)
    victim = out / "items" / "cell-00002.parquet"
    data = bytearray(victim.read_bytes())
    if damage == "truncate":
        data = data[: len(data) // 2]
    else:
        data[len(data) // 3] ^= 0xFF  # one bit pattern changed in the middle of a page
    victim.write_bytes(bytes(data))
    done = subprocess.run([*QBENCH, "run", "--resume", out, "--jobs", "1", "--no-progress"], cwd=ROOT,
                          capture_output=True, text=True)  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert "(4 cells, 3 already done" in done.stdout
    _same_data(reference, out)


def test_a_dask_worker_killed_mid_cell_costs_only_a_retry_of_that_cell(tmp_path):
    pytest.importorskip("distributed")
    grid = make_grid(dict(workers=[1, 2, 3, 4], arrival="exp:1", service="exp:0.9", items=150_000, seed=6))
    local = tmp_path / "local"
    run_grid(local, grid, jobs=1, progress=False)
    killed = []
    with DaskExecutor(None, 2) as executor:
        client = executor._client
        pids = client.run(os.getpid)

        def kill_one_worker(cell, rows):  # after the first cell ends, kill a worker while others run
            if not killed:
                victim = sorted(pids.values())[0]
                os.kill(victim, signal.SIGKILL)
                killed.append(victim)

        real_run_cells = executor.run_cells

        def run_cells(task, folder, grid_, cells, finished, progress):
            def both(cell, rows):
                finished(cell, rows)
                kill_one_worker(cell, rows)

            return real_run_cells(task, folder, grid_, cells, both, progress)

        executor.run_cells = run_cells  # type: ignore[method-assign]
        result = run_grid(tmp_path / "dask", grid, progress=False, executor=executor)
    assert killed and result.finished == 4 and not result.failed
    _same_data(local, tmp_path / "dask")
