"""Running a grid: each cell (all its replications) in a worker process, results to a run folder.

:func:`run_cell` runs one cell's replications on the grid's clock and writes its files;
:func:`run_grid` runs every cell not yet finished, in parallel, with progress bars, and keeps the
manifest and ``cells.parquet`` current. A cell that raises is recorded as failed, not fatal. On
Ctrl-C the workers stop, finished cells stay on disk and the manifest says ``interrupted``.
"""

from __future__ import annotations

import asyncio
import datetime as _dt
import multiprocessing
import os
import platform
import signal
import subprocess
import time
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from bench import store
from bench.clock import loop_factory, run_virtual
from bench.grid import Cell, Grid, streams
from bench.recorder import Recorder
from bench.scenario import Scenario, run_scenario
from bench.summary import Summary

__all__ = ["RunResult", "run_cell", "run_grid", "ENGINE"]

ENGINE = "asyncio"


@dataclass(frozen=True)
class RunResult:
    """What a run did: cells finished now, finished before (skipped), failed, and whether it was interrupted."""

    run: Path
    total: int
    finished: int
    skipped: int
    failed: list[tuple[int, str]]
    interrupted: bool
    wall_seconds: float


class _Tee:
    """A sink that forwards every batch to several sinks."""

    def __init__(self, *sinks: Any) -> None:
        self._sinks = sinks

    def items(self, columns):
        for sink in self._sinks:
            sink.items(columns)

    def depth(self, columns):
        for sink in self._sinks:
            sink.depth(columns)


def _replicate(grid: Grid, cell: Cell, replication: int, sink: Any, on_progress) -> dict[str, Any]:
    scenario = Scenario(cell.workers, cell.arrival, cell.service, cell.maxsize, grid.items, grid.duration)
    summary = Summary(grid.items)
    recorder = Recorder(_Tee(sink, summary), on_progress=on_progress)
    arrivals, services = streams(grid.seed, cell, replication)
    start = time.perf_counter()
    engine = getattr(grid, "engine", ENGINE)
    if engine == "recurrence":
        from bench.recurrence import run_recurrence

        recorder = run_recurrence(scenario, arrivals, services, _Tee(sink, summary), on_progress)
        t_end = recorder.t_end
    else:
        coro = run_scenario(scenario, arrivals, services, recorder, grid.scale or 1.0)
        if grid.scale is None:
            t_end = run_virtual(coro)
        else:
            with asyncio.Runner(loop_factory=loop_factory(getattr(grid, "loop", "asyncio"))) as real:
                t_end = real.run(coro)
        recorder.close(t_end)
    return {
        "n_put": recorder.n_put,
        "n_got": recorder.n_got,
        "n_done": recorder.n_done,
        "t_end": t_end,
        "t_last_put": recorder.t_last_put,
        "throughput": recorder.n_done / t_end if t_end > 0 else float("nan"),
        "utilisation": recorder.busy / (cell.workers * t_end) if t_end > 0 else float("nan"),
        **summary.finish(t_end),
        "status": "ok",
        "error": None,
        "wall_seconds": time.perf_counter() - start,
    }


def _row_params(grid: Grid, cell: Cell, replication: int) -> dict[str, Any]:
    return {
        **cell.params(),
        "replication": replication,
        "items_target": grid.items,
        "duration": grid.duration,
        "clock": grid.clock,
        "engine": getattr(grid, "engine", ENGINE),
        "seed": grid.seed,
    }


def run_cell(run: Path, grid: Grid, cell: Cell, on_progress: Callable[[int], None] | None = None) -> list[dict]:
    """Run every replication of ``cell``, write its files and summary part; return the summary rows.

    An exception inside the cell is recorded in its rows (``status = failed``) and not raised;
    ``KeyboardInterrupt`` removes the cell's temporary files and propagates.
    """
    writer = store.CellWriter(run, cell.id)
    rows = []
    try:
        for replication in range(grid.replications):
            writer.replication(replication)
            stats = _replicate(grid, cell, replication, writer, on_progress)
            rows.append({**_row_params(grid, cell, replication), **stats})
        writer.commit()
    except Exception as err:
        writer.abort()
        message = f"{type(err).__name__}: {err}".splitlines()[0]
        rows = [
            {**_row_params(grid, cell, r), "status": "failed", "error": message}
            for r in range(grid.replications)
        ]
    except BaseException:
        writer.abort()
        raise
    store.write_part(run, cell.id, rows)
    return rows


# -- worker processes --------------------------------------------------------------------------

_progress_queue = None


def _init_worker(queue) -> None:
    global _progress_queue
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent decides what Ctrl-C means
    _progress_queue = queue


def _report(n: int) -> None:
    _progress_queue.put(n)


def _run_cell_in_worker(run: Path, grid: Grid, cell: Cell) -> list[dict]:
    return run_cell(run, grid, cell, _report if _progress_queue is not None else None)


# -- the manifest ------------------------------------------------------------------------------


def _git_commit() -> str | None:
    try:
        out = subprocess.run(
            ["git", "rev-parse", "HEAD"],
            cwd=Path(__file__).resolve().parent,
            capture_output=True,
            text=True,
            timeout=5,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip() or None if out.returncode == 0 else None


def _versions() -> dict[str, str]:
    import numpy
    import pyarrow

    from bench import __version__

    return {"python": platform.python_version(), "numpy": numpy.__version__, "pyarrow": pyarrow.__version__, "qbench": __version__}


def manifest(run: Path, grid: Grid, status: str, timings: dict[str, Any], command: list[str] | None) -> dict[str, Any]:
    """Build the ``manifest.json`` of a run."""
    return {
        "schema_version": store.SCHEMA_VERSION,
        "run": run.name,
        "status": status,
        "created": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "command": command,
        "grid": grid.to_dict(),
        "cells": [c.params() for c in grid.cells()],
        "seeds": {
            "seed": grid.seed,
            "streams": "numpy PCG64 from SeedSequence(seed, spawn_key=(crc32(arrival spec), crc32(service spec), "
            "maxsize, replication, purpose)); purpose 0 = arrivals, 1 = services; blocks of 4096 draws",
        },
        "engine": getattr(grid, "engine", ENGINE),
        "loop": getattr(grid, "loop", "asyncio") if grid.scale is not None else "virtual",
        "clock": grid.clock,
        "versions": _versions(),
        "platform": {"system": platform.system(), "machine": platform.machine(), "cpus": os.cpu_count()},
        "git_commit": _git_commit(),
        "timings": timings,
    }


# -- the run -----------------------------------------------------------------------------------


def _bars(total_cells: int, done: int, grid: Grid, enabled: bool):
    from tqdm import tqdm

    cells = tqdm(total=total_cells, initial=done, desc="cells", unit="cell", disable=not enabled, position=0)
    items = tqdm(desc="items", unit="item", unit_scale=True, disable=not enabled, position=1, leave=False)
    return cells, items


def run_grid(
    run: Path,
    grid: Grid,
    jobs: int = 1,
    progress: bool = True,
    command: list[str] | None = None,
) -> RunResult:
    """Run every cell of ``grid`` that ``run`` does not hold yet, writing results into ``run``.

    Args:
        run: the results folder (created if missing; finished cells in it are skipped).
        grid: what to run.
        jobs: worker processes; 1 runs the cells in this process.
        progress: show progress bars on stderr.
        command: the command line, for the manifest.
    """
    start = time.perf_counter()
    for sub in ("items", "depth", "parts"):
        (run / sub).mkdir(parents=True, exist_ok=True)
    store.clean_partial(run)
    cells = grid.cells()
    done = store.finished_cells(run)
    todo = [c for c in cells if c.id not in done]
    store.write_manifest(run, manifest(run, grid, "running", {}, command))
    timings: dict[str, float] = {}
    failed: list[tuple[int, str]] = []
    bar_cells, bar_items = _bars(len(cells), len(cells) - len(todo), grid, progress)
    interrupted = False

    def finished(cell: Cell, rows: list[dict]) -> None:
        timings[str(cell.id)] = round(sum(r.get("wall_seconds") or 0.0 for r in rows), 6)
        if rows and rows[0]["status"] != "ok":
            failed.append((cell.id, rows[0]["error"]))
        bar_cells.update(1)

    try:
        if jobs <= 1:
            for cell in todo:
                finished(cell, run_cell(run, grid, cell, bar_items.update))
        else:
            _run_parallel(run, grid, todo, jobs, finished, bar_items)
    except KeyboardInterrupt:
        interrupted = True
        store.clean_partial(run)
    finally:
        bar_items.close()
        bar_cells.close()
    store.write_cells(run)
    wall = time.perf_counter() - start
    status = "interrupted" if interrupted else ("failed" if failed else "complete")
    store.write_manifest(run, manifest(run, grid, status, {"total_seconds": round(wall, 3), "cells": timings}, command))
    finished_now = len(timings)
    return RunResult(run, len(cells), finished_now, len(cells) - len(todo), failed, interrupted, wall)


def _run_parallel(run: Path, grid: Grid, todo: list[Cell], jobs: int, finished, bar_items) -> None:
    context = multiprocessing.get_context("spawn")
    queue = context.Queue()
    pool = ProcessPoolExecutor(max_workers=jobs, mp_context=context, initializer=_init_worker, initargs=(queue,))
    pending: dict[Future, Cell] = {}
    try:
        for cell in todo:
            pending[pool.submit(_run_cell_in_worker, run, grid, cell)] = cell
        while pending:
            ready, _ = wait(pending, timeout=0.2, return_when=FIRST_COMPLETED)
            _drain(queue, bar_items)
            for future in ready:
                cell = pending.pop(future)
                try:
                    rows = future.result()
                except Exception as err:  # the worker itself died
                    message = f"{type(err).__name__}: {err}".splitlines()[0]
                    rows = [{**_row_params(grid, cell, r), "status": "failed", "error": message} for r in range(grid.replications)]
                    store.write_part(run, cell.id, rows)
                finished(cell, rows)
        _drain(queue, bar_items)
        pool.shutdown(wait=True)
    except BaseException:
        for process in list(getattr(pool, "_processes", {}).values()):
            process.kill()
        pool.shutdown(wait=False, cancel_futures=True)
        raise


def _drain(queue, bar) -> None:
    import queue as _queue

    total = 0
    while True:
        try:
            total += queue.get_nowait()
        except _queue.Empty:
            break
    if total:
        bar.update(total)
