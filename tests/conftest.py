"""Fixtures shared by the test modules: the only way a test reaches the test helpers.

Synthetic results folders, for the analysis tests (code in ``tests/support/synthetic.py``):

``write_run``
    ``write_run(folder, grid, *, duration=2000.0, items=None, replications=5, seed=1, ...)`` writes
    a results folder, per ``results/README.md`` (schema version 5), with one cell per
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
    The seed scenario's grid, a tuple of cells: 2, 3 and 4 workers, ``const:1`` arrivals,
    ``uniform:0:5`` service.

The engines, for the engine tests (code in ``tests/support/engines.py`` and, for
``crashing_task``, ``tests/support/crashing_task.py``):

``collect``
    A factory of sinks: ``collect()`` is a new sink that keeps a copy of every batch it is given;
    ``sink.table("items")`` or ``sink.table("depth")`` joins them into columns.
``run_asyncio``
    ``run_asyncio(scenario, cell, seed, sink, *, loop_factory=None, batch=BATCH, accelerated=True)``
    runs replication 0 of a scenario through the asyncio engine's entry point and returns
    ``(replication, t_end)``.
``reference_queues``
    The module ``tests/support/reference_queues.py``: independent implementations of the pool's
    patience (``fifo_with_patience``) and batches (``batches``), for item-by-item checks.
``crashing_task``
    The pair ``(cell, task)``: a cell task for ``ProcessExecutor.run_cells`` that runs every cell
    but ``cell``, whose worker process it ends abruptly. ``task`` is importable by name in spawned
    worker processes.

Only this file imports ``tests/support/``; test modules take the fixtures as parameters (and pass
them on to their own helpers). Every fixture here is session-scoped: each gives a function, a class
or constants, never state, so module-scoped fixtures can use them too.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pandas as pd
import pytest
from support import crashing_task as _crashing_task
from support import engines, synthetic
from support import reference_queues as _reference_queues

from bench.replication import Replication


@pytest.fixture(scope="session")
def write_run() -> Callable[..., Path]:
    """Write a synthetic results folder (see the module docstring)."""
    return synthetic.write_run


@pytest.fixture(scope="session")
def restatus() -> Callable[..., None]:
    """Rewrite the status and columns of some replications of a synthetic run."""
    return synthetic.restatus


@pytest.fixture(scope="session")
def simulate() -> Callable[..., tuple[pd.DataFrame, pd.DataFrame]]:
    """Simulate one replication of a FIFO G/G/c queue: its (items, depth) frames."""
    return synthetic.simulate


@pytest.fixture(scope="session")
def fixture_slope() -> Callable[..., float]:
    """The slope of a step function, computed independently of ``analysis``."""
    return synthetic.step_slope


@pytest.fixture(scope="session")
def seed_grid() -> tuple[tuple, ...]:
    """The seed scenario's grid, one (workers, arrival, service) per cell (immutable: shared)."""
    return tuple(synthetic.SEED_GRID)


@pytest.fixture(scope="session")
def collect() -> type[engines.Collect]:
    """A factory of sinks that keep every batch: ``collect()`` is a new, empty one."""
    return engines.Collect


@pytest.fixture(scope="session")
def run_asyncio() -> Callable[..., tuple[Replication, float]]:
    """One asyncio replication through the engine's entry point: ``(replication, t_end)``."""
    return engines.run_asyncio


@pytest.fixture(scope="session")
def plain_and_pool() -> Callable[..., tuple[Replication, Replication]]:
    """``plain_and_pool(scenario, cell)``: one replication by the plain program and by
    the general pool, their records checked identical; returns both engines' results."""
    return engines.plain_and_pool


@pytest.fixture(scope="session")
def reference_queues():
    """Independent implementations of patience and batches (``tests/support/reference_queues.py``)."""
    return _reference_queues


@pytest.fixture(scope="session")
def crashing_task() -> tuple[int, Callable[..., object]]:
    """``(cell, task)``: a cell task whose worker process dies on ``cell`` and runs the others."""
    return _crashing_task.CRASH_CELL, _crashing_task.crash_on_one_cell
