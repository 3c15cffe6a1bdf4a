"""Fixtures shared by the test modules: the only way a test reaches the test helpers.

Synthetic results folders (the analysis tests):

``write_run``
    ``write_run(folder, grid, *, duration=2000.0, items=None, replications=5, seed=1, ...)`` writes
    a results folder, per ``results/README.md`` (schema version 2), with one cell per
    ``(workers, arrival, service[, maxsize])`` of ``grid``, simulated as a FIFO G/G/c queue; it
    returns ``folder``. ``failed={cell: error}`` records cells as failed, ``max_backlog`` caps them.
``restatus``
    ``restatus(folder, cell, replications, status, **values)`` rewrites some replications of a cell
    in ``cells.parquet`` and in the cell's part: a new status and column values.
``simulate``
    ``simulate(arrival, service, workers, duration, seed, replication, maxsize=0)`` simulates one
    replication over ``[0, duration]`` and returns its ``(items, depth)`` frames.
``fixture_slope``
    ``fixture_slope(t, y, end)``: the least-squares slope of a step function over ``[0, end]``,
    computed independently of ``analysis.backlog.step_slope`` so that one checks the other.
``seed_grid``
    The seed scenario's grid: 2, 3 and 4 workers, ``const:1`` arrivals, ``uniform:0:5`` service.

The engines (the engine tests):

``collect``
    A factory of sinks: ``collect()`` is a new sink that keeps a copy of every batch it is given;
    ``sink.table("items")`` or ``sink.table("depth")`` joins them into columns.
``run_asyncio``
    ``run_asyncio(scenario, cell, seed, sink, *, loop_factory=None, batch=BATCH, accelerated=True)``
    runs replication 0 of a scenario through the asyncio engine's entry point and returns
    ``(replication, t_end)``.
``crashing_task``
    The pair ``(cell, task)``: a cell task for ``ProcessExecutor.run_cells`` that runs every cell
    but ``cell``, whose worker process it ends abruptly. ``task`` is importable by name in spawned
    worker processes.

The code of these helpers lives in ``tests/support/``, which only this file imports. Every fixture
here is session-scoped: each gives a function, a class or constants, never state, so module-scoped
fixtures can use them too.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from analysis_fixtures import SEED_GRID
from analysis_fixtures import restatus as _restatus
from analysis_fixtures import simulate as _simulate
from analysis_fixtures import step_slope as _step_slope
from analysis_fixtures import write_run as _write_run
from crashing_task import CRASH_CELL, crash_on_one_cell
from engine_helpers import Collect
from engine_helpers import run_asyncio as _run_asyncio


@pytest.fixture(scope="session")
def write_run() -> Callable[..., Path]:
    """Write a synthetic results folder (see the module docstring)."""
    return _write_run


@pytest.fixture(scope="session")
def restatus() -> Callable[..., None]:
    """Rewrite the status and columns of some replications of a synthetic run."""
    return _restatus


@pytest.fixture(scope="session")
def simulate() -> Callable[..., tuple]:
    """Simulate one replication of a FIFO G/G/c queue: its (items, depth) frames."""
    return _simulate


@pytest.fixture(scope="session")
def fixture_slope() -> Callable[..., float]:
    """The slope of a step function, computed independently of ``analysis``."""
    return _step_slope


@pytest.fixture(scope="session")
def seed_grid() -> tuple[tuple, ...]:
    """The seed scenario's grid, one (workers, arrival, service) per cell (immutable: shared)."""
    return tuple(SEED_GRID)


@pytest.fixture(scope="session")
def collect() -> type[Collect]:
    """A factory of sinks that keep every batch: ``collect()`` is a new, empty one."""
    return Collect


@pytest.fixture(scope="session")
def run_asyncio() -> Callable[..., tuple]:
    """One asyncio replication through the engine's entry point: ``(replication, t_end)``."""
    return _run_asyncio


@pytest.fixture(scope="session")
def crashing_task() -> tuple[int, Callable[..., object]]:
    """``(cell, task)``: a cell task whose worker process dies on ``cell`` and runs the others."""
    return CRASH_CELL, crash_on_one_cell
