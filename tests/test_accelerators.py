"""Each optional C extension against its pure-Python twin, one extension at a time and all together.

The in-process comparisons of the loops and of the recurrence engine's server loops are in
test_loop_ordering.py and test_recurrence.py; here: the recorder's row log, whole runs with
extensions blocked (as on a machine without a compiler), and the C types' refusal of use before
``__init__``.
"""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pandas as pd
import pytest

from bench import loop, recorder, recurrence
from bench.cli import main
from bench.distributions import parse
from bench.grid import Cell
from bench.scenario import Scenario

#: each extension -> the flag of the module it speeds up
FLAGS = {"bench.loop._core": loop.ACCELERATED, "bench._recorder": recorder.ACCELERATED,
         "bench._recurrence": recurrence.ACCELERATED}  # fmt: skip
ALL_BUILT = all(FLAGS.values())

#: two cells per engine: unbounded and bounded, two workers (the recurrence engine's C loops both run)
_RUN = ["run", "--workers", "2", "--arrival", "exp:1", "--service", "exp:1.5", "--maxsize", "0,3", "--items", "3000",
        "--replications", "1", "--seed", "5", "--jobs", "1", "--no-progress", "--no-summary"]  # fmt: skip
_ENGINES = ("asyncio", "recurrence")

#: what a run blocks: one extension at a time, then all three (a machine without a C compiler)
_BLOCKED = [("bench.loop._core",), ("bench._recorder",), ("bench._recurrence",), tuple(FLAGS)]

_BLOCKED_RUN = """
import sys
blocked = {blocked!r}
for name in blocked:
    sys.modules[name] = None
from bench import loop, recorder, recurrence
flags = {{"bench.loop._core": loop.ACCELERATED, "bench._recorder": recorder.ACCELERATED,
          "bench._recurrence": recurrence.ACCELERATED}}
assert flags == {{name: name not in blocked for name in flags}}, flags
assert (loop.VirtualEventLoop is loop.PyVirtualEventLoop) == ("bench.loop._core" in blocked)
assert (recorder.Log is recorder.PyLog) == ("bench._recorder" in blocked)
from bench.cli import main
for engine in {engines!r}:
    code = main({args!r} + ["--engine", engine, "--out", {out!r} + "/" + engine])
    assert code == 0, (engine, code)
"""


@pytest.fixture(scope="module")
def blocked_runs(tmp_path_factory):
    """Run both engines with every extension built (in this process) and, concurrently, in one
    subprocess per entry of ``_BLOCKED``; return the folders: ``{blocked: {engine: path}}``."""
    root = tmp_path_factory.mktemp("blocked")
    procs = {}
    for blocked in _BLOCKED:
        out = root / "-".join(name.rsplit(".", 1)[1] for name in blocked)
        program = _BLOCKED_RUN.format(blocked=blocked, engines=_ENGINES, args=_RUN, out=str(out))
        procs[blocked] = (out, subprocess.Popen([sys.executable, "-c", program], stdout=subprocess.PIPE,
                                                stderr=subprocess.PIPE, text=True))  # fmt: skip
    for engine in _ENGINES:
        assert main([*_RUN, "--engine", engine, "--out", str(root / "built" / engine)]) == 0
    runs = {(): {engine: root / "built" / engine for engine in _ENGINES}}
    for blocked, (out, proc) in procs.items():
        _, stderr = proc.communicate(timeout=120)
        assert proc.returncode == 0, (blocked, stderr)
        runs[blocked] = {engine: out / engine for engine in _ENGINES}
    return runs


@pytest.mark.skipif(not ALL_BUILT, reason="a C extension is not built: the runs would not compare C with Python")
@pytest.mark.parametrize("blocked", _BLOCKED, ids="+".join)
@pytest.mark.parametrize("engine", _ENGINES)
def test_a_run_with_extensions_blocked_writes_the_same_data(blocked_runs, blocked, engine):
    """Block extensions (as on a machine without a compiler): their pure-Python twins take over
    and write the very same items and depth files."""
    built, twin = blocked_runs[()][engine], blocked_runs[blocked][engine]
    for table in ("items", "depth"):
        for cell in ("cell-00000", "cell-00001"):
            c = pd.read_parquet(built / table / f"{cell}.parquet")
            py = pd.read_parquet(twin / table / f"{cell}.parquet")
            assert len(c) > 3000 if table == "depth" else len(c) == 3000
            pd.testing.assert_frame_equal(py, c)


@pytest.mark.skipif(not recorder.ACCELERATED, reason="bench._recorder is not built")
def test_the_python_row_log_records_the_same_rows(collect, run_asyncio):
    config = (2, "const:0.5", "exp:1.1", 2, 700)  # bounded, with many batches of 101 rows
    workers, arrival, service, maxsize, items = config
    cell = Cell(0, workers, parse(arrival), parse(service), maxsize)
    scenario = Scenario(workers, cell.arrival, cell.service, maxsize, items, None)
    tables = []
    for accelerated in (True, False):  # the same loop, the C row log or the Python one
        keep = collect()
        rec, t_end = run_asyncio(scenario, cell, 3, keep, batch=101, loop_factory=loop.VirtualEventLoop,
                                 accelerated=accelerated)  # fmt: skip
        tables.append((t_end, rec.busy, {kind: keep.table(kind) for kind in ("items", "depth")}))
    (t_c, busy_c, c), (t_py, busy_py, py) = tables
    assert recorder.Log is not recorder.PyLog and (t_py, busy_py) == (t_c, busy_c)
    for kind in ("items", "depth"):
        assert c[kind].keys() == py[kind].keys()
        for name in c[kind]:
            np.testing.assert_array_equal(py[kind][name], c[kind][name], err_msg=f"{kind}.{name}")


@pytest.mark.skipif(not loop.ACCELERATED, reason="bench.loop._core is not built")
def test_the_loop_core_refuses_use_before_init():
    from bench.loop import _core

    core = _core.Core.__new__(_core.Core)
    for call in (lambda: core.call_soon(print), lambda: core.call_later(1, print), lambda: core.run(None)):
        with pytest.raises(RuntimeError, match="__init__"):
            call()


@pytest.mark.skipif(not recorder.ACCELERATED, reason="bench._recorder is not built")
def test_the_row_log_refuses_use_before_init():
    from bench import _recorder

    log = _recorder.Log.__new__(_recorder.Log)
    with pytest.raises(RuntimeError, match="__init__"):
        log.put(1, 2.0, 3)
