"""The perf suite's pieces run (no timing is asserted: benchmarks live in bench/studies/perf.py)."""

from __future__ import annotations

import asyncio
import json

import pytest

from bench.studies import perf


@pytest.mark.parametrize(
    "engine", ["asyncio", "asyncio-py", "asyncio-ref", "recurrence", "simpy-store", "simpy-resource", "ciw"]
)
def test_every_engine_runs_a_small_model(engine, tmp_path, monkeypatch):
    if not perf._available(engine):
        pytest.skip(f"{engine} is not installed (extra 'perf')")
    monkeypatch.setenv("QBENCH_PERF_CACHE", str(tmp_path))
    perf._prepare([("mm2", engine, 500)])
    assert perf._time_func(1, engine, "mm2", 500) > 0


def test_raw_queue_throughput_completes():
    asyncio.run(perf._queue_throughput(500, 3))


def test_ratio_table_has_one_row_per_benchmark():
    rates = {
        "mm2/asyncio": 100.0,
        "mm2/simpy-store": 200.0,
        "mm2/recurrence": 3000.0,
        "queue/asyncio/1c": 10.0,
        "queue/uvloop/1c": 20.0,
    }
    table = perf.ratio_table(rates).splitlines()
    assert len(table) == 1 + len(rates)
    assert any("mm2/recurrence" in line and "15.00x" in line for line in table)
    assert any("queue/uvloop/1c" in line and "2.00x" in line for line in table)


def test_the_plan_benchmark_times_the_command_and_writes_its_json(tmp_path):
    from bench.studies import plan_perf

    assert plan_perf.main(["--engines", "recurrence", "--repeat", "1", "--items", "20000", "--out", str(tmp_path)]) == 0
    written = json.loads(next(tmp_path.glob("plan-*.json")).read_text())
    result = written["results"]["recurrence"]
    assert result["workers"] == 4 and result["decided"] and len(result["seconds"]) == 1


def test_the_whole_process_benchmarks_run_their_commands(tmp_path, monkeypatch):
    """Small: every command of the whole-process study runs to the end and is timed."""
    from bench.studies import whole

    pytest.importorskip("simpy")
    rows = whole.whole_study(items=2000, repeats=1, out=tmp_path)
    assert [r["benchmark"] for r in rows] == [f"whole/{name}" for name in whole.COMMANDS]
    assert all(r["seconds"] > 0 and r["vs_simpy_script"] > 0 for r in rows)
    assert (tmp_path / "whole.json").exists()


@pytest.mark.parametrize("record", ["items", "summary"])
def test_qbench_run_imports_only_what_running_needs(tmp_path, record):
    """Start-up is part of what a user waits for: ``qbench run`` writes parquet without pandas (a
    sixth of a second to import) nor matplotlib, whatever it records."""
    import subprocess
    import sys

    probe = (
        "import atexit, runpy, sys\n"
        "atexit.register(lambda: print('loaded:', *sorted(m for m in ('pandas', 'matplotlib', 'pyarrow.dataset')"
        " if m in sys.modules)))\n"
        f"sys.argv = ['qbench', 'run', '--out', {str(tmp_path / 'run')!r}, '--workers', '2', '--arrival', 'exp:1',"
        f" '--service', 'exp:1.8', '--items', '2000', '--engine', 'recurrence', '--record', {record!r},"
        " '--no-progress', '--no-summary', '--jobs', '1']\n"
        "runpy.run_module('bench', run_name='__main__')\n"
    )
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip().splitlines()[-1] == "loaded:", done.stdout
