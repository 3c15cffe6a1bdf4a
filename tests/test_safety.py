"""Nothing destroyed, nothing silently wrong: what ``--force`` may replace, resuming with changed
inputs, signals, broken pipes, and model times that would leave the virtual clock's range."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest

from bench import results_format
from bench.cli import main

ROOT = Path(__file__).resolve().parents[1]
QBENCH = [sys.executable, "-m", "bench"]
BASE = ["--workers", "1", "--arrival", "exp:1", "--service", "exp:0.5", "--items", "10", "--no-progress",
        "--no-summary", "--jobs", "1"]  # fmt: skip


def _tree(folder: Path) -> dict[str, bytes]:
    """Every file under ``folder`` with its bytes (hidden ones included)."""
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def _one_line_error(capsys, code: int, fragment: str) -> None:
    err = capsys.readouterr().err
    assert code == 2, err
    assert len(err.strip().splitlines()) == 1 and fragment in err, err


class _Null:
    """A sink that drops every batch."""

    def items(self, columns):
        pass

    def depth(self, columns):
        pass


# -- --force replaces only qbench runs -----------------------------------------------------------


def test_force_leaves_a_project_with_a_git_folder_and_a_manifest_untouched(tmp_path, capsys, monkeypatch):
    project = tmp_path / "project"
    (project / ".git").mkdir(parents=True)
    (project / ".git" / "HEAD").write_text("ref: refs/heads/main\n")
    (project / "manifest.json").write_text(json.dumps({"name": "my-extension", "version": "1.0"}))
    (project / "src").mkdir()
    (project / "src" / "main.js").write_text("console.log('hi')\n")
    before = _tree(project)
    monkeypatch.chdir(project)
    _one_line_error(capsys, main(["run", "--out", ".", "--force", *BASE]), "working directory")
    monkeypatch.chdir(tmp_path)
    _one_line_error(capsys, main(["run", "--out", str(project), "--force", *BASE]), "holds a .git")
    assert _tree(project) == before


def test_force_refuses_a_folder_whose_manifest_is_not_a_qbench_one(tmp_path, capsys):
    extension = tmp_path / "extension"
    (extension / "src").mkdir(parents=True)
    (extension / "manifest.json").write_text(json.dumps({"manifest_version": 3, "name": "x"}))
    (extension / "src" / "background.js").write_text("// code\n")
    before = _tree(extension)
    _one_line_error(capsys, main(["run", "--out", str(extension), "--force", *BASE]), "not a qbench results folder")
    assert _tree(extension) == before


def test_force_refuses_a_qbench_run_holding_files_qbench_did_not_write(tmp_path, capsys):
    run = tmp_path / "run"
    assert main(["run", "--out", str(run), *BASE]) == 0
    (run / "notes.txt").write_text("my notes")
    (run / "items" / "extra.csv").write_text("a,b\n")
    before = _tree(run)
    _one_line_error(capsys, main(["run", "--out", str(run), "--force", *BASE]), "holds files qbench did not write")
    assert _tree(run) == before


def test_force_refuses_the_parents_of_the_working_directory_and_home(tmp_path, capsys, monkeypatch):
    inner = tmp_path / "a" / "b"
    inner.mkdir(parents=True)
    monkeypatch.chdir(inner)
    _one_line_error(capsys, main(["run", "--out", str(tmp_path / "a"), "--force", *BASE]), "working directory")
    home = tmp_path / "home"
    assert main(["run", "--out", str(home), *BASE]) == 0  # even a pure qbench run, if it is a home
    capsys.readouterr()
    monkeypatch.setenv("HOME", str(home))
    _one_line_error(capsys, main(["run", "--out", str(home), "--force", *BASE]), "home directory")
    assert (home / "manifest.json").exists()


def test_force_replaces_a_pure_qbench_run_and_an_empty_folder(tmp_path):
    run = tmp_path / "run"
    assert main(["run", "--out", str(run), *BASE, "--seed", "1"]) == 0
    (run / "report").mkdir()
    (run / "report" / "index.html").write_text("<html></html>")
    assert main(["run", "--out", str(run), *BASE, "--seed", "2", "--force"]) == 0
    assert json.loads((run / "manifest.json").read_text())["grid"]["seed"] == 2
    assert not (run / "report").exists()
    empty = tmp_path / "empty"
    empty.mkdir()
    assert main(["run", "--out", str(empty), *BASE, "--force"]) == 0
    assert results_format.is_run(empty)


def test_a_version_1_run_is_recognised_by_its_manifest_keys(tmp_path):
    old = tmp_path / "old"
    old.mkdir()
    keys = {"schema_version": 1, "run": "old", "status": "complete", "grid": {}, "cells": []}
    (old / "manifest.json").write_text(json.dumps(keys))
    assert results_format.is_run(old)
    (old / "manifest.json").write_text(json.dumps({k: v for k, v in keys.items() if k != "cells"}))
    assert not results_format.is_run(old)


# -- resume -------------------------------------------------------------------------------------


def test_resume_refuses_an_empirical_file_edited_since_the_run_began(tmp_path, capsys):
    data = tmp_path / "durations.csv"
    data.write_text("s\n" + "\n".join(str(0.2 + i / 100) for i in range(40)) + "\n")
    run = tmp_path / "run"
    args = ["--workers", "1", "--arrival", "exp:1", "--service", f"empirical:{data}", "--items", "50", "--no-progress",
            "--no-summary", "--jobs", "1"]  # fmt: skip
    assert main(["run", "--out", str(run), *args]) == 0
    inputs = json.loads((run / "manifest.json").read_text())["inputs"]
    assert [entry["path"] for entry in inputs] == [str(data.resolve())] and len(inputs[0]["sha256"]) == 64
    assert main(["run", "--resume", str(run), "--no-progress", "--no-summary"]) == 0  # unchanged: fine
    data.write_text(data.read_text() + "9.5\n")
    _one_line_error(capsys, main(["run", "--resume", str(run), "--no-progress"]), "changed since")


def test_a_worker_refuses_an_empirical_file_changed_after_the_grid_read_it(tmp_path):
    import pickle

    from bench.distributions import parse

    data = tmp_path / "d.csv"
    data.write_text("1.0\n2.0\n")
    shipped = pickle.dumps(parse(f"empirical:{data}"))
    data.write_text("1.0\n7.0\n")
    import numpy as np

    with pytest.raises(ValueError, match="changed since the run read it"):
        pickle.loads(shipped).sample(np.random.default_rng(0), 3)


def test_resume_refuses_a_manifest_without_a_grid_or_not_written_by_qbench(tmp_path, capsys):
    run = tmp_path / "run"
    assert main(["run", "--out", str(run), *BASE]) == 0
    manifest = json.loads((run / "manifest.json").read_text())
    del manifest["grid"]
    manifest["format"] = results_format.FORMAT
    (run / "manifest.json").write_text(json.dumps(manifest))
    _one_line_error(capsys, main(["run", "--resume", str(run)]), "holds no grid")
    (run / "manifest.json").write_text(json.dumps({"schema_version": 2}))
    _one_line_error(capsys, main(["run", "--resume", str(run)]), "not a results folder")


# -- signals and pipes ---------------------------------------------------------------------------


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGHUP])
def test_sigterm_and_sighup_leave_the_manifest_saying_interrupted(tmp_path, signum):
    out = tmp_path / "run"
    args = ["run", "--out", str(out), "--workers", "1,2,3,4", "--arrival", "exp:1", "--service", "exp:0.9",
            "--items", "200000", "--replications", "2", "--jobs", "1", "--no-progress", "--no-summary"]  # fmt: skip
    process = subprocess.Popen([*QBENCH, *args], cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                               text=True)  # fmt: skip
    deadline = time.monotonic() + 30
    while not (out / "manifest.json").exists() and time.monotonic() < deadline:
        time.sleep(0.02)
    time.sleep(0.3)
    process.send_signal(signum)
    _, err = process.communicate(timeout=60)
    assert process.returncode == 128 + signum, err
    assert json.loads((out / "manifest.json").read_text())["status"] == "interrupted"
    assert "Traceback" not in err and "--resume" in err


def test_a_closed_pipe_ends_compare_quietly(tmp_path):
    run = tmp_path / "run"
    assert main(["run", "--out", str(run), *BASE, "--replications", "2"]) == 0
    process = subprocess.Popen([*QBENCH, "compare", str(run), str(run)], cwd=ROOT, stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE)  # fmt: skip
    process.stdout.close()  # the reader (say, `head -0`) went away before anything was written
    err = process.stderr.read().decode()
    process.wait(timeout=60)
    assert "Traceback" not in err and process.returncode in (0, 141), err


# -- the clock's range at run time ----------------------------------------------------------------


@pytest.mark.parametrize("engine", ["asyncio", "recurrence"])
def test_a_cell_whose_times_pass_the_clocks_range_fails_with_a_message(tmp_path, engine):
    """The grid refuses such specs up front; a grid built without those checks still fails the cell,
    with its reason, on either engine — never negative or zero times with status ok."""
    from bench.distributions import parse
    from bench.grid import Grid
    from bench.runner import create_run, run_cell

    grid = Grid((1,), (parse("const:1e8"),), (parse("const:1"),), items=100, engine=engine)
    run = tmp_path / "run"
    create_run(run, grid)
    rows = run_cell(run, grid, grid.cells()[0])
    assert {r["status"] for r in rows} == {"failed"}
    assert "OverflowError" in rows[0]["error"] and "range" in rows[0]["error"]


# -- big seeds -----------------------------------------------------------------------------------


def test_a_128_bit_seed_runs_and_is_kept_exactly(tmp_path):
    seed = 2**128 - 1
    run = tmp_path / "run"
    assert main(["run", "--out", str(run), *BASE, "--seed", str(seed)]) == 0
    assert json.loads((run / "manifest.json").read_text())["grid"]["seed"] == seed
    assert pd.read_parquet(run / "cells.parquet")["seed"].tolist() == [str(seed)]


# -- scaled time that falls behind ---------------------------------------------------------------


def test_a_scaled_run_that_falls_behind_real_time_is_marked_lagged(tmp_path):
    """At 10 us of real time per model second, arrivals every ~10 us: no event loop keeps pace."""
    from bench.grid import make_grid
    from bench.runner import create_run, run_cell

    grid = make_grid(dict(workers=[2], arrival="exp:1", service="exp:1.5", items=3000, clock="scaled:1e-5"))
    run = tmp_path / "run"
    create_run(run, grid)
    (row,) = run_cell(run, grid, grid.cells()[0])
    assert row["status"] == "lagged", row
    assert row["clock_lag_mean"] > 0.01 and "fell behind real time" in row["error"]
    assert row["utilisation"] <= 1.0 and row["t_end"] >= row["t_last_put"]


def test_virtual_time_is_never_late():
    from bench.grid import make_grid
    from bench.runner import replicate

    grid = make_grid(dict(workers=[1], arrival="exp:1", service="exp:0.8", duration=500, seed=1))
    stats = replicate(grid, grid.cells()[0], 0, _Null(), None)
    assert (stats["clock_lag_mean"], stats["clock_lag_max"], stats["status"]) == (0.0, 0.0, "ok")


def test_a_pusher_that_fails_in_a_duration_run_fails_the_replication():
    """The pusher's error used to vanish in a duration run (it died, nothing more arrived, status ok)."""
    import numpy as np

    from bench.distributions import Distribution, Stream, parse
    from bench.loop import run_virtual
    from bench.recorder import Recorder
    from bench.scenario import Scenario, run_scenario

    blocks = []

    def second_block_fails(rng, n):  # the pusher draws services in blocks of 4096: it fails mid-run
        blocks.append(n)
        if len(blocks) > 1:
            raise RuntimeError("the service sampler broke")
        return rng.exponential(0.5, n)

    service = Distribution("flaky", "flaky", 0.5, 1.0, second_block_fails)
    scenario = Scenario(2, parse("exp:1"), service, duration=10_000.0)
    arrivals = Stream(parse("exp:1"), np.random.default_rng(1))
    with pytest.raises(RuntimeError, match="the service sampler broke"):
        run_virtual(run_scenario(scenario, arrivals, Stream(service, np.random.default_rng(2)), Recorder(_Null())))


# -- a second writer, odd paths, the report's own files ------------------------------------------

LONG = ["--workers", "1,2,3,4,5,6", "--arrival", "exp:1", "--service", "exp:0.9", "--items", "150000",
        "--replications", "3", "--jobs", "1", "--no-progress", "--no-summary"]  # fmt: skip


def _wait_for(path: Path, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while not path.exists() and time.monotonic() < deadline:
        time.sleep(0.02)


def test_a_folder_being_written_is_refused_to_a_second_run_and_to_resume(tmp_path, capsys):
    out = tmp_path / "busy"
    first = subprocess.Popen([*QBENCH, "run", "--out", str(out), *LONG], cwd=ROOT, stderr=subprocess.PIPE, text=True)
    try:
        _wait_for(out / ".lock")
        time.sleep(0.3)
        before = _tree(out / "parts") if (out / "parts").exists() else {}
        _one_line_error(capsys, main(["run", "--out", str(out), "--force", *BASE]), "being written by another")
        _one_line_error(capsys, main(["run", "--resume", str(out), "--no-progress"]), "being written by another")
        assert all(name in _tree(out / "parts") for name in before)  # nothing of the first run was removed
    finally:
        first.terminate()
        first.wait(timeout=60)
    assert json.loads((out / "manifest.json").read_text())["status"] == "interrupted"
    assert main(["run", "--resume", str(out), "--no-progress", "--no-summary", "--jobs", "1"]) == 0  # lock released


def test_force_takes_a_path_as_written_lexically(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert main(["run", "--out", "r", *BASE]) == 0
    link = tmp_path / "l"
    link.symlink_to(tmp_path / "r")
    before = _tree(tmp_path / "r")
    _one_line_error(capsys, main(["run", "--out", "l/items/..", "--force", *BASE]), "symbolic link")
    assert _tree(tmp_path / "r") == before
    assert main(["run", "--out", "r/parts/..", "--force", *BASE, "--seed", "5"]) == 0  # 'r/parts/..' is 'r'
    assert json.loads((tmp_path / "r" / "manifest.json").read_text())["grid"]["seed"] == 5


def test_force_refuses_files_of_yours_in_the_report_folder(tmp_path, capsys):
    run = tmp_path / "run"
    assert main(["run", "--out", str(run), *BASE]) == 0
    (run / "report").mkdir()
    (run / "report" / "notes.md").write_text("mine")
    _one_line_error(capsys, main(["run", "--out", str(run), "--force", *BASE]), "'notes.md'")
    assert (run / "report" / "notes.md").read_text() == "mine"


def test_resume_refuses_a_symlinked_subfolder_and_reruns_a_damaged_part(tmp_path, capsys):
    run = tmp_path / "run"
    assert main(["run", "--out", str(run), "--workers", "1,2", *BASE[2:]]) == 0
    reference = pd.read_parquet(run / "cells.parquet").drop(columns="wall_seconds")
    (run / "parts" / "cell-00001.parquet").write_bytes(os.urandom(100))  # damaged
    assert main(["run", "--resume", str(run), "--no-progress", "--no-summary"]) == 0
    assert pd.read_parquet(run / "cells.parquet").drop(columns="wall_seconds").equals(reference)
    elsewhere = tmp_path / "elsewhere"
    (run / "depth").rename(elsewhere)
    (run / "depth").symlink_to(elsewhere)
    _one_line_error(capsys, main(["run", "--resume", str(run)]), "depth/ is a symbolic link")


def test_resume_refuses_malformed_inputs_in_the_manifest(tmp_path, capsys):
    run = tmp_path / "run"
    assert main(["run", "--out", str(run), *BASE]) == 0
    manifest = json.loads((run / "manifest.json").read_text())
    manifest["inputs"] = "abc"
    (run / "manifest.json").write_text(json.dumps(manifest))
    _one_line_error(capsys, main(["run", "--resume", str(run)]), "'inputs' is malformed")


def test_a_grid_file_is_not_read_whole_when_it_is_huge(tmp_path, capsys):
    _one_line_error(capsys, main(["run", "/dev/zero", "--out", str(tmp_path / "o")]), "larger than 16 MB")
    assert not (tmp_path / "o").exists()


def test_a_killed_run_leaves_no_worker_process_behind(tmp_path):
    out = tmp_path / "run"
    args = ["run", "--out", str(out), *LONG[:-4], "--jobs", "2", "--no-progress", "--no-summary"]
    parent = subprocess.Popen([*QBENCH, *args], cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    _wait_for(out / ".lock")
    deadline = time.monotonic() + 30
    children: list[int] = []
    while len(children) < 2 and time.monotonic() < deadline:  # the pool's workers (and a resource tracker)
        time.sleep(0.1)
        children = [int(p) for p in Path(f"/proc/{parent.pid}/task/{parent.pid}/children").read_text().split()]
    parent.kill()
    parent.wait()
    deadline = time.monotonic() + 20
    while any(Path(f"/proc/{pid}").exists() for pid in children) and time.monotonic() < deadline:
        time.sleep(0.1)
    alive = [pid for pid in children if Path(f"/proc/{pid}/status").exists()
             and "zombie" not in Path(f"/proc/{pid}/status").read_text()]  # fmt: skip
    assert children and not alive


def test_demo_ends_when_its_reader_goes_away():
    demo = subprocess.Popen([*QBENCH, "demo", "--scale", "0.001", "--items", "100"], cwd=ROOT,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)  # fmt: skip
    assert demo.stdout.readline().startswith(b"[")
    demo.stdout.close()  # like `qbench demo | head -1`
    _, err = demo.communicate(timeout=60)  # it used to wait for ever for a take that never came
    assert b"Traceback" not in err and demo.returncode in (0, 141)


def test_report_of_a_run_whose_manifest_has_odd_fields(tmp_path):
    run = tmp_path / "run"
    assert main(["run", "--out", str(run), *BASE, "--replications", "2"]) == 0
    manifest = json.loads((run / "manifest.json").read_text())
    manifest["timings"] = None
    (run / "manifest.json").write_text(json.dumps(manifest))
    assert main(["report", str(run), "--no-progress"]) == 0
