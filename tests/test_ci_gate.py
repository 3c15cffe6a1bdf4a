"""The latency gate for CI: compare --fail-if, compare pairing runs that differ in one axis, and the
pytest plugin's virtual_time marker (with and without pytest-asyncio)."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from analysis.compare import compare_runs
from analysis.gate import failures, parse_condition
from analysis.load import ResultsError

ROOT = Path(__file__).resolve().parents[1]
QBENCH = [sys.executable, "-m", "bench"]
#: The README's CI example: the same grid and seed before and after a change.
GRID = ["--workers", "2", "--arrival", "exp:1", "--items", "20000", "--replications", "10", "--seed", "7",
        "--engine", "recurrence", "--no-progress", "--no-summary", "--jobs", "1"]  # fmt: skip
GATE = ["--fail-if", "wait_p99 > +5%", "--fail-if", "backlog_slope > 0"]


def _qbench(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([*QBENCH, *args], cwd=ROOT, capture_output=True, text=True, timeout=300)


@pytest.fixture(scope="module")
def base(tmp_path_factory):
    out = tmp_path_factory.mktemp("gate") / "base"
    assert _qbench("run", "--out", str(out), *GRID, "--service", "exp:1.5").returncode == 0
    return out


def test_the_gate_fails_a_seeded_regression_and_passes_without_one(base, tmp_path):
    same = tmp_path / "same"
    slower = tmp_path / "slower"
    assert _qbench("run", "--out", str(same), *GRID, "--service", "exp:1.5").returncode == 0
    assert _qbench("run", "--out", str(slower), *GRID, "--service", "exp:1.65").returncode == 0  # 10% slower service
    passed = _qbench("compare", str(base), str(same), *GATE)
    assert passed.returncode == 0, passed.stderr
    assert "no --fail-if condition holds (2 checked)" in passed.stderr
    failed = _qbench("compare", str(base), str(slower), *GATE)
    assert failed.returncode == 1, failed.stderr
    assert "wait_p99 > +5%: " in failed.stderr and "backlog_slope > 0" not in failed.stderr


@pytest.mark.parametrize(
    ("text", "kind", "threshold"),
    [("wait_p99 > +5%", "relative", 0.05), ("wait_mean>=-2.5", "difference", -2.5), ("backlog_slope > 0", "value", 0.0),
     ("utilisation <= .9", "value", 0.9)],
)  # fmt: skip
def test_conditions_parse(text, kind, threshold):
    condition = parse_condition(text)
    assert (condition.kind, condition.threshold) == (kind, pytest.approx(threshold))


@pytest.mark.parametrize(
    ("text", "message"),
    [("wait_p99 >> 5", "expected METRIC OP THRESHOLD"), ("colour > 1", "unknown metric"), ("wait_p99 > 5%", "a sign"),
     ("status > 1", "unknown metric"), ("wait_p99 > 1_0", "expected METRIC OP")],
)  # fmt: skip
def test_bad_conditions_are_one_line_errors(text, message):
    with pytest.raises(ResultsError, match=message):
        parse_condition(text)


def test_a_condition_holds_only_when_the_whole_interval_is_beyond_it(write_run, tmp_path):
    """Noise alone must not fail a build: the interval, not the point estimate, decides."""
    grid = [(2, "exp:1", "exp:1.5")]
    a = write_run(tmp_path / "a", grid, duration=2000.0, replications=8, seed=1)
    b = write_run(tmp_path / "b", grid, duration=2000.0, replications=8, seed=2)  # same system, other draws
    result = compare_runs(str(a), str(b), metrics=["wait_mean"])
    (row,) = result.rows
    assert row.diff.low < 0 < row.diff.high  # no significant change
    change = row.diff.mean / row.a.mean
    op, sign = (">", "+") if change > 0 else ("<", "-")
    half = parse_condition(f"wait_mean {op} {sign}{abs(change) * 50:.6f}%")  # the point estimate is beyond it
    assert abs(change) > abs(half.threshold)
    assert failures(result, [half]) == []


def test_runs_that_differ_in_one_axis_pair_across_it(write_run, tmp_path):
    three = write_run(tmp_path / "three", [(3, "exp:1", "exp:2")], duration=500.0, replications=3, seed=1)
    four = write_run(tmp_path / "four", [(4, "exp:1", "exp:2")], duration=500.0, replications=3, seed=1)
    result = compare_runs(str(three), str(four), metrics=["wait_mean"])
    assert len(result.pairs) == 1 and result.across == ["workers: A 3, B 4"]
    low = write_run(tmp_path / "low", [(1, "exp:1", "exp:2"), (2, "exp:1", "exp:2")], duration=500.0, seed=1)
    high = write_run(tmp_path / "high", [(3, "exp:1", "exp:2"), (4, "exp:1", "exp:2")], duration=500.0, seed=1)
    with pytest.raises(ResultsError, match="nothing to compare"):  # which of 3, 4 goes with which of 1, 2?
        compare_runs(str(low), str(high))


@pytest.mark.virtual_time
async def test_an_hour_of_sleep_takes_no_time_on_the_marked_loop():
    from bench.loop import VirtualEventLoop

    loop = asyncio.get_running_loop()
    assert isinstance(loop, VirtualEventLoop)
    await asyncio.sleep(3600)
    assert loop.time() == 3600


@pytest.mark.parametrize("mode", ["strict", "auto"])
def test_the_marker_works_beside_pytest_asyncio(tmp_path, mode):
    pytest.importorskip("pytest_asyncio")
    (tmp_path / "test_user.py").write_text(
        textwrap.dedent("""
        import asyncio
        import pytest

        @pytest.mark.virtual_time
        async def test_virtual():
            from bench.loop import VirtualEventLoop
            assert isinstance(asyncio.get_running_loop(), VirtualEventLoop)
            await asyncio.sleep(86400)

        @pytest.mark.asyncio
        async def test_pytest_asyncio_still_owns_its_tests():
            from bench.loop import VirtualEventLoop
            assert not isinstance(asyncio.get_running_loop(), VirtualEventLoop)
    """)
    )
    done = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-o", f"asyncio_mode={mode}",
                           "-o", "asyncio_default_fixture_loop_scope=function", str(tmp_path)], cwd=tmp_path,
                          capture_output=True, text=True, timeout=120)  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    assert "2 passed" in done.stdout


def test_the_marker_refuses_a_plain_function(tmp_path):
    (tmp_path / "test_user.py").write_text("import pytest\n\n@pytest.mark.virtual_time\ndef test_sync():\n    pass\n")
    done = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", str(tmp_path)], cwd=tmp_path,
                          capture_output=True, text=True, timeout=120)  # fmt: skip
    assert done.returncode == 1 and "marks an async def test" in done.stdout


def test_the_readme_example_asserts_a_p99_bound_on_a_small_grid(tmp_path):
    """The README's plugin example, as written there."""
    import pandas as pd

    from bench import make_grid, run_grid

    grid = make_grid({"workers": [3], "arrival": "const:1", "service": "uniform:0:5", "items": 20000,
                      "replications": 5, "seed": 1, "engine": "recurrence"})  # fmt: skip
    run_grid(tmp_path / "run", grid, jobs=1, progress=False)
    assert pd.read_parquet(tmp_path / "run" / "cells.parquet").wait_p99.max() <= 5
