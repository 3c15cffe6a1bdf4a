"""Simulation on demand, for ``qbench plan``: more replications of a cell, their items returned in memory.

The planner (``analysis/plan.py``) decides which worker count (or load) to try and how many
replications it needs; this module runs them. :meth:`Sampler.sample` runs replications
``first .. first + count - 1`` of a cell on the grid's engine, through the engine's entry point,
and returns each replication's item columns (``wait``, ``sojourn``, ...). Replication ``r`` of every
worker count draws from the same streams (:func:`bench.grid.generators`, keyed by the specs and the
replication, not by the worker count): common random numbers. A load scaled by ``s`` divides the
same inter-arrival draws by ``s`` (:func:`bench.distributions.scaled`), so loads share their random
numbers too.

With an evidence folder, every replication is also written through the store, cell by cell, as a
normal run folder (``qbench report`` and ``compare`` read it): each cell's writer stays open while
the plan adds replications and is committed by :meth:`Sampler.finish`, which writes ``parts/``,
``cells.parquet`` and the manifest, listing the cells the plan tried (not a product of axes) and
the plan's answer. A plan interrupted or failed leaves the folder with status ``interrupted`` or
``failed`` and no cells.

An arrival process whose rate changes over time is sampled over a horizon (``until``): each
replication puts the arrivals before it, then drains (the grid's ``items`` is only a bound), so
every item of the run has its wait. Elastic workers (``auto:...``) run on the asyncio engine
whatever the grid's engine (the recurrences have no controller), with the same random numbers.
"""

from __future__ import annotations

import dataclasses
import time
from pathlib import Path
from typing import Any

import numpy as np

from bench import store
from bench.behaviour import Elastic
from bench.digest import Digest, Digester
from bench.distributions import Distribution, Stream, scaled
from bench.grid import HORIZON, Cell, Grid, generators
from bench.replication import engine
from bench.results_format import PLAN_KEY
from bench.runner import manifest, replicate, row_params

__all__ = ["Sampler"]

#: The item columns a sampler can return (``abandoned`` is 1 for an item that left at its deadline).
COLUMNS = ("wait", "sojourn", "service", "t_put", "t_get", "t_done", "abandoned")  # abandoned: 1 or 0


class _Collect:
    """A sink that keeps the requested item columns of every batch."""

    def __init__(self, columns: tuple[str, ...]) -> None:
        self._columns = columns
        self._batches: list[dict[str, np.ndarray]] = []

    def items(self, columns: dict[str, np.ndarray]) -> None:
        self._batches.append({name: self._column(columns, name) for name in self._columns})

    @staticmethod
    def _column(columns: dict[str, np.ndarray], name: str) -> np.ndarray:
        if name == "abandoned":  # 1 for an item that left at its deadline (only scenarios with patience have any)
            status = columns.get("status")
            if status is None:
                return np.zeros(len(columns["item"]))
            return (np.asarray(status) == "abandoned").astype(np.float64)
        return np.array(columns[name], dtype=np.float64)

    def depth(self, columns: dict[str, np.ndarray]) -> None:
        return None

    def table(self) -> dict[str, np.ndarray]:
        if not self._batches:
            return {name: np.empty(0) for name in self._columns}
        return {name: np.concatenate([b[name] for b in self._batches]) for name in self._columns}


class _Tee:
    def __init__(self, *sinks: Any) -> None:
        self._sinks = sinks

    def items(self, columns: dict[str, np.ndarray]) -> None:
        for sink in self._sinks:
            sink.items(columns)

    def depth(self, columns: dict[str, np.ndarray]) -> None:
        for sink in self._sinks:
            sink.depth(columns)

    def events(self, columns: dict[str, np.ndarray]) -> None:
        for sink in self._sinks:
            send = getattr(sink, "events", None)
            if send is not None:
                send(columns)


class Sampler:
    """Runs replications of cells of one grid on demand.

    Args:
        grid: the settings (``items``, ``seed``, ``engine``, ``max_backlog``; virtual clock); its
            worker and replication values are ignored, the planner chooses them.
        columns: the item columns to return (``wait`` is always among them).
        evidence: a results folder created for the plan (:func:`bench.runner.create_run`) to write
            every replication into, or ``None``.
        command: the command line, for the evidence's manifest.
        until: an arrival process's arrivals at or after this time are left out (its horizon), or None.
    """

    def __init__(self, grid: Grid, columns: tuple[str, ...], evidence: Path | None = None,
                 command: list[str] | None = None, until: float | None = None) -> None:  # fmt: skip
        self.grid = grid
        self.until = until
        self.columns = tuple(dict.fromkeys(("wait", *columns)))
        unknown = [c for c in self.columns if c not in COLUMNS]
        if unknown:
            raise ValueError(f"unknown item column(s): {', '.join(unknown)}")
        self.evidence = evidence
        self.command = command
        self._cells: dict[tuple[str, str, int, int, float, str], Cell] = {}
        self._writers: dict[int, store.CellWriter] = {}
        self._rows: dict[int, list[dict[str, Any]]] = {}
        self._run = engine(grid.engine)
        self._lock: Any = None

    # -- the cells -----------------------------------------------------------------------------------

    def cell(self, arrival: Distribution, service: Distribution, maxsize: int, workers: int,
             scale: float = 1.0, elastic: Elastic | None = None) -> Cell:  # fmt: skip
        """The cell of ``workers`` workers (or ``elastic`` ones) at ``scale`` times the arrival rate; ids
        in order of first use."""
        key = (arrival.spec, service.spec, maxsize, workers, scale, elastic.spec if elastic else "")
        if key not in self._cells:
            shown = arrival if scale == 1.0 else scaled(arrival, 1.0 / scale)
            cell = self._with_behaviours(Cell(len(self._cells), workers, shown, service, maxsize))
            self._cells[key] = dataclasses.replace(cell, elastic=elastic)
        return self._cells[key]

    def _grid_of(self, cell: Cell) -> Grid:
        """The grid a cell runs under: elastic workers on the asyncio engine."""
        if cell.elastic is not None and self.grid.engine != "asyncio":
            return dataclasses.replace(self.grid, engine="asyncio")
        return self.grid

    def _with_behaviours(self, cell: Cell) -> Cell:
        """The cell with the grid's scenario and behaviours (a plan takes one value of each axis)."""
        grid = self.grid
        return dataclasses.replace(cell, scenario=grid.programs[0], discipline=grid.discipline[0],
                                   patience=grid.patience[0], batch=grid.batch[0], failure=grid.failure[0],
                                   backlog0=grid.backlog0[0])  # fmt: skip

    def sample(self, arrival: Distribution, service: Distribution, maxsize: int, workers: int, scale: float,
               replications: range, elastic: Elastic | None = None
               ) -> list[tuple[int, dict[str, np.ndarray], float, float, Digest]]:  # fmt: skip
        """Run ``replications`` of a cell; return ``(replication id, item columns, worker-seconds, t_end,
        digest)`` for each, in order (the digest is the one a run of the cell records, :mod:`bench.digest`).

        Args:
            arrival: the arrival distribution at scale 1 (its streams are the ones drawn from).
            service: the service distribution.
            maxsize: the queue bound (0 = none).
            workers: the worker count.
            scale: the arrival-rate factor (inter-arrival draws divided by it).
            replications: the replication ids to run.
            elastic: elastic workers (``workers`` is then their most), or None.

        Raises:
            OverflowError: a replication's model time passed the clock's range.
        """
        cell = self.cell(arrival, service, maxsize, workers, scale, elastic)
        base = self._with_behaviours(Cell(cell.id, workers, arrival, service, maxsize))
        grid = self._grid_of(cell)
        run = self._run if grid is self.grid else engine(grid.engine)
        out = []
        for replication in replications:
            rng_a, rng_s = generators(self.grid.seed, base, replication)
            inputs = (Stream(cell.arrival, rng_a, self.until), Stream(service, rng_s))
            collect = _Collect(self.columns)
            if self.evidence is None:
                digester = Digester(workers, replication)
                done = run(grid.scenario(cell), *inputs, _Tee(collect, digester))
                if done.t_end >= HORIZON:
                    raise OverflowError(f"model time passed {HORIZON:.4g} s, half the virtual clock's range")
                cost = done.worker_seconds if done.worker_seconds is not None else workers * done.t_end
                end = done.t_end
                digest = digester.finish(end)
            else:
                cost, end, digest = self._record(cell, replication, collect, inputs)
            out.append((replication, collect.table(), float(cost), float(end), digest))
        return out

    def _record(self, cell: Cell, replication: int, collect: _Collect,
                inputs: tuple[Stream, Stream]) -> tuple[float, float, Digest]:  # fmt: skip
        """Run one replication into the evidence folder (and ``collect``), keep its summary row and
        return its worker-seconds, end time and digest."""
        assert self.evidence is not None
        writer = self._writers.get(cell.id)
        if writer is None:
            writer = self._writers[cell.id] = store.CellWriter(self.evidence, cell.id, self.grid.record, self.grid.seed)
        writer.start_replication(replication, cell.workers)
        grid = self._grid_of(cell)
        stats = replicate(grid, cell, replication, _Tee(collect, writer), inputs=inputs)
        self._rows.setdefault(cell.id, []).append({**row_params(grid, cell, replication), **stats})
        digest = writer.end_replication(stats["t_end"])
        return float(stats["worker_seconds"]), float(stats["t_end"]), digest

    # -- the evidence folder ---------------------------------------------------------------------------

    def __enter__(self) -> Sampler:
        if self.evidence is not None:
            self._lock = store.locked(self.evidence)
            self._lock.__enter__()
        return self

    def __exit__(self, kind: Any, err: Any, tb: Any) -> None:
        try:
            if err is not None and self.evidence is not None:
                for writer in self._writers.values():
                    writer.abort()
                self._writers.clear()
                status = "interrupted" if isinstance(err, KeyboardInterrupt) else "failed"
                store.write_manifest(self.evidence, manifest(self.evidence, self.grid, status, {}, self.command,
                                                             cells=[]))  # fmt: skip
        finally:
            if self._lock is not None:
                self._lock.__exit__(kind, err, tb)
                self._lock = None

    def finish(self, plan: dict[str, Any] | list[dict[str, Any]], started: float | None = None) -> None:
        """Commit the evidence folder: every cell's files and summary rows, ``cells.parquet`` and the
        manifest (the cells tried, the grid they make up, and the plan's answer under ``plan``).

        Args:
            plan: the plan's answer as JSON-ready data (one object, or a list for several rows).
            started: ``time.perf_counter()`` when the plan began, for the manifest's timings.
        """
        if self.evidence is None:
            return
        run = self.evidence
        for cell_id, writer in self._writers.items():
            writer.commit()
            store.write_part(run, cell_id, self._rows[cell_id])
        self._writers.clear()
        store.write_cells(run)
        cells = sorted(self._cells.values(), key=lambda c: c.id)
        fixed = sorted({c.workers for c in cells if c.elastic is None})
        moving = list({c.elastic.spec: c.elastic for c in cells if c.elastic is not None}.values())
        grid = dataclasses.replace(
            self.grid,
            workers=(*fixed, *moving) or self.grid.workers,
            arrival=tuple({c.arrival.spec: c.arrival for c in cells}.values()) or self.grid.arrival,
            replications=max((len(rows) for rows in self._rows.values()), default=self.grid.replications),
        )
        timings = {str(cell): round(sum(r.get("wall_seconds") or 0.0 for r in rows), 6)
                   for cell, rows in self._rows.items()}  # fmt: skip
        total = {"total_seconds": round(time.perf_counter() - started, 3)} if started is not None else {}
        store.write_manifest(run, manifest(run, grid, "complete", {**total, "cells": timings}, self.command,
                                           cells=cells, extra={PLAN_KEY: plan}))  # fmt: skip
