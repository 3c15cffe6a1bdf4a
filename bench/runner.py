"""Running a grid: each cell (all its replications) as one task, results to a run folder.

:func:`run_cell` runs one cell's replications on the grid's clock and writes its files;
:func:`run_grid` runs every cell not yet finished on an executor (:mod:`bench.executor`: this
process, local worker processes or Dask) with progress bars, and keeps the manifest and
``cells.parquet`` current. A cell that raises is recorded as failed, not fatal; a cell whose backlog
reaches ``max_backlog`` is stopped and recorded as capped. On Ctrl-C the workers stop, finished
cells stay on disk and the manifest says ``interrupted``; running the grid again resumes it.
"""

from __future__ import annotations

import contextlib
import datetime as _dt
import os
import platform
import signal
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from bench import store
from bench.distributions import Stream
from bench.executor import make_executor
from bench.grid import HORIZON, Cell, Grid, streams
from bench.recorder import Sink
from bench.replication import Replication, engine
from bench.replication_stats import ReplicationStats
from bench.results_format import CELL_DIRS, FORMAT, SCHEMA_VERSION

__all__ = ["LAG_TOLERANCE", "RunResult", "create_run", "manifest", "replicate", "row_params", "run_cell", "run_grid"]

#: A replication on a scaled or real clock is ``lagged`` (its figures unreliable) when its timers woke
#: late by more than this share of the cell's shortest mean delay (arrival or service), on average.
LAG_TOLERANCE = 0.01


@dataclass(frozen=True)
class RunResult:
    """What a run did: cells finished now, finished before (skipped), failed, or to be warned about
    (stopped by the backlog cap, or lagging behind real time), with their messages, and whether it
    was interrupted."""

    run: Path
    total: int
    finished: int
    skipped: int
    failed: list[tuple[int, str]]
    warned: list[tuple[int, str]]
    interrupted: bool
    wall_seconds: float
    disk_full: str | None = None  # why the run stopped when its file system filled up
    notes: list[tuple[int, str]] = field(default_factory=list)  # e.g. a trace that ran out before the run's end


class _Tee:
    """A sink that forwards every batch to several sinks (events to those that take them)."""

    def __init__(self, *sinks: Any) -> None:
        self._sinks = sinks

    def items(self, columns):
        for sink in self._sinks:
            sink.items(columns)

    def depth(self, columns):
        for sink in self._sinks:
            sink.depth(columns)

    def events(self, columns):
        for sink in self._sinks:
            send = getattr(sink, "events", None)
            if send is not None:
                send(columns)


def replicate(grid: Grid, cell: Cell, replication: int, sink: Sink, on_progress=None, *,
              inputs: tuple[Stream, Stream] | None = None) -> dict[str, Any]:  # fmt: skip
    """Run one replication of ``cell`` on the grid's engine and clock into ``sink``; return its
    summary statistics (the row of ``cells.parquet`` without the parameters of :func:`row_params`).

    Args:
        grid: the settings.
        cell: the cell.
        replication: the replication id (it keys the random streams).
        sink: receives the item and depth batches (e.g. a :class:`~bench.store.CellWriter`).
        on_progress: called with the items of each batch.
        inputs: the (arrivals, services) streams to use instead of the cell's own (a plan that scales
            the load draws from the unscaled cell's streams: common random numbers across loads).
    """
    stats = ReplicationStats(grid.items, backlog0=cell.backlog0)
    arrivals, services = streams(grid.seed, cell, replication) if inputs is None else inputs
    start = time.perf_counter()
    run = engine(grid.engine)
    tee = _Tee(sink, stats)
    done = run(grid.scenario(cell), arrivals, services, tee, on_progress=on_progress, scale=grid.scale,
               loop_factory=grid.loop_factory)  # fmt: skip
    t_end = done.t_end
    if t_end >= HORIZON:  # past the span a run may use (at the range's end, a timer was clamped)
        raise OverflowError(f"model time passed {HORIZON:.4g} s, half the virtual clock's range of int64 "
                            "nanoseconds; shorten the run or its delays")  # fmt: skip
    tee.events(_events(cell, arrivals, done, t_end))
    worker_seconds = done.worker_seconds if done.worker_seconds is not None else cell.workers * t_end
    return {
        **_counts(done, t_end),
        "n_put": done.n_put,
        "n_got": done.n_got,
        "n_done": done.n_done,
        "t_end": t_end,
        "t_last_put": done.t_last_put,
        "throughput": done.n_done / t_end if t_end > 0 else float("nan"),
        "utilisation": done.busy / worker_seconds if worker_seconds > 0 else float("nan"),
        **stats.finish(t_end),
        "clock_lag_mean": done.lag_mean,
        "clock_lag_max": done.lag_max,
        **_status(done, cell),
        "wall_seconds": time.perf_counter() - start,
        "worker_seconds": worker_seconds,
        "workers_peak": done.workers_peak if done.workers_peak is not None else cell.workers,
        "arrivals_end": done.arrivals_end,
    }


def _events(cell: Cell, arrivals: Stream, done: Replication, t_end: float) -> dict[str, Any]:
    """The rows of ``events/`` the runner writes for a replication: the arrival rate in force over
    [0, t_end] (summed over a merged spec's pushers), fixed workers' count at 0 (elastic workers
    record their own changes) and when the arrival process ran out."""
    if cell.arrival.parts:
        steps = [arrivals.sibling(f"arrival/{p}", part).rates(t_end) for p, part in enumerate(cell.arrival.parts)]
        times = np.unique(np.concatenate([t for t, _ in steps] + [np.zeros(1)]))
        rates = sum((r[np.maximum(np.searchsorted(t, times, "right") - 1, 0)] if t.size else np.zeros(times.size)
                     for t, r in steps), np.zeros(times.size))  # fmt: skip
    else:
        times, rates = arrivals.rates(t_end)
    rows_t, kinds, values = [times], [np.full(times.size, "rate", dtype=object)], [np.asarray(rates, dtype=float)]
    if cell.elastic is None:
        rows_t.append(np.zeros(2))
        kinds.append(np.array(["workers", "provisioned"], dtype=object))
        values.append(np.full(2, float(cell.workers)))
    if done.arrivals_end is not None:
        rows_t.append(np.array([done.arrivals_end]))
        kinds.append(np.array(["arrivals_end"], dtype=object))
        values.append(np.array([float(done.n_put)]))
    return {"t": np.concatenate(rows_t).astype(np.float64), "kind": np.concatenate(kinds),
            "value": np.concatenate(values)}  # fmt: skip


def _counts(done: Replication, t_end: float) -> dict[str, Any]:
    """What became of the items (version-3 columns): served, abandoned, given up, attempts; goodput
    (served per second) and the abandonment rate (of the items that were taken or abandoned)."""
    served = done.n_done if done.n_served is None else done.n_served
    decided = done.n_abandoned + done.n_got
    return {
        "n_served": served,
        "n_abandoned": done.n_abandoned,
        "n_gave_up": done.n_gave_up,
        "n_attempts": done.n_got if done.n_attempts is None else done.n_attempts,
        "goodput": served / t_end if t_end > 0 else float("nan"),
        "abandon_rate": done.n_abandoned / decided if decided else float("nan"),
    }


def _status(done: Replication, cell: Cell) -> dict[str, Any]:
    """``ok``, ``capped`` or ``lagged``, with the reason (see the output contract)."""
    capped, lag_mean = done.capped, done.lag_mean
    if capped is not None:
        t, depth = capped
        return {"status": "capped",
                "error": f"backlog reached {depth} items at t={t:.6g}s (max_backlog); stopped early"}  # fmt: skip
    shortest = min(cell.arrival.mean, cell.service.mean)
    if lag_mean > LAG_TOLERANCE * shortest:
        return {"status": "lagged",
                "error": f"the clock fell behind real time: timers woke {lag_mean:.3g} model s late on average, "
                         f"{lag_mean / shortest:.0%} of the shortest mean delay ({shortest:g} s); figures are "
                         "unreliable (use a larger scale or the virtual clock)"}  # fmt: skip
    return {"status": "ok", "error": None}


def _failed_rows(grid: Grid, cell: Cell, err: BaseException) -> list[dict[str, Any]]:
    message = f"{type(err).__name__}: {err}".splitlines()[0] if str(err) else type(err).__name__
    return [{**row_params(grid, cell, r), "status": "failed", "error": message} for r in range(grid.replications)]


def row_params(grid: Grid, cell: Cell, replication: int) -> dict[str, Any]:
    """The parameter columns of one row of ``cells.parquet``: the cell's, the replication's and the grid's."""
    return {
        **cell.params(),
        **grid.settings_params(),
        "replication": replication,
        "items_target": grid.items,
        "duration": grid.duration,
        "clock": grid.clock,
        "engine": grid.engine,
        "seed": str(grid.seed),
    }


def run_cell(run: Path, grid: Grid, cell: Cell, on_progress: Callable[[int], None] | None = None) -> list[dict]:
    """Run every replication of ``cell``, write its files and summary part; return the summary rows.

    An exception inside the cell is recorded in its rows (``status = failed``) and not raised;
    ``KeyboardInterrupt`` removes the cell's temporary files and propagates, and so does a full disk
    (as :class:`bench.store.DiskFull`: the run stops, no cell is marked failed for want of room).
    """
    try:
        writer = store.CellWriter(run, cell.id, grid.record, grid.seed)
        rows = []
        try:
            for replication in range(grid.replications):
                writer.start_replication(replication, cell.workers)
                stats = replicate(grid, cell, replication, writer, on_progress)
                writer.end_replication(stats["t_end"])
                rows.append({**row_params(grid, cell, replication), **stats})
            files = writer.commit()
        except Exception as err:
            writer.abort()
            if store.disk_full(err):
                raise
            rows, files = _failed_rows(grid, cell, err), None
        except BaseException:
            writer.abort()
            raise
        store.write_part(run, cell.id, rows, files)
    except Exception as err:
        if store.disk_full(err):
            raise store.DiskFull(f"no room left to write {str(run)!r}: {err}".splitlines()[0]) from None
        raise
    return rows


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

    return {
        "python": platform.python_version(),
        "numpy": numpy.__version__,
        "pyarrow": pyarrow.__version__,
        "qbench": __version__,
    }


def manifest(run: Path, grid: Grid, status: str, timings: dict[str, Any], command: list[str] | None, *,
             cells: list[Cell] | None = None, extra: dict[str, Any] | None = None) -> dict[str, Any]:  # fmt: skip
    """Build the ``manifest.json`` of a run.

    Args:
        run: the folder.
        grid: its settings.
        status: ``created``, ``running``, ``complete``, ``interrupted`` or ``failed``.
        timings: wall seconds per cell and in all.
        command: the command line.
        cells: the cells the run holds, when they are not every cell of the grid (a plan's evidence
            folder holds the worker counts it tried, not a product of axes).
        extra: more keys (a plan's answer under :data:`bench.results_format.PLAN_KEY`).
    """
    return {
        "format": FORMAT,
        "schema_version": SCHEMA_VERSION,
        "run": run.name,
        "status": status,
        "created": _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds"),
        "command": command,
        "grid": grid.to_dict(),
        "cells": [c.params() for c in (grid.cells() if cells is None else cells)],
        "seeds": {
            "seed": grid.seed,
            "streams": "numpy PCG64 from SeedSequence(seed, spawn_key=(crc32(arrival spec), crc32(service spec), "
            "maxsize, replication, purpose)); purpose 0 = arrivals, 1 = services; blocks of 4096 draws; a "
            "scenario's named streams (class/P, patience/P, failure/P, arrival/P, ...) add (2, crc32(name)) to the "
            "arrival stream's spawn key",
        },
        "inputs": grid.inputs(),
        "engine": grid.engine,
        "loop": grid.loop if grid.scale is not None else "virtual",
        "clock": grid.clock,
        "versions": _versions(),
        "platform": {"system": platform.system(), "machine": platform.machine(), "cpus": os.cpu_count()},
        "git_commit": _git_commit(),
        "timings": timings,
        **(extra or {}),
    }


# -- the run -----------------------------------------------------------------------------------


def _bars(total_cells: int, done: int, enabled: bool):
    from tqdm import tqdm

    cells = tqdm(total=total_cells, initial=done, desc="cells", unit="cell", disable=not enabled, position=0)
    items = tqdm(desc="items", unit="item", unit_scale=True, disable=not enabled, position=1, leave=False)
    return cells, items


@contextlib.contextmanager
def _signals_held() -> Iterator[None]:
    """Hold SIGINT, SIGTERM and SIGHUP back (in the main thread) until the block ends."""
    signals = {getattr(signal, name) for name in ("SIGINT", "SIGTERM", "SIGHUP") if hasattr(signal, name)}
    if not hasattr(signal, "pthread_sigmask") or threading.current_thread() is not threading.main_thread():
        yield
        return
    signal.pthread_sigmask(signal.SIG_BLOCK, signals)
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_UNBLOCK, signals)


def create_run(run: Path, grid: Grid, command: list[str] | None = None) -> None:
    """Create a results folder atomically: built under a temporary name with its manifest, then renamed.

    Raises:
        OSError: the folder cannot be written.
    """
    run.parent.mkdir(parents=True, exist_ok=True)
    staging = run.with_name(f".{run.name}.creating-{os.getpid()}")
    staging.mkdir()
    try:
        for sub in CELL_DIRS:
            (staging / sub).mkdir()
        store.write_manifest(staging, manifest(run, grid, "created", {}, command))
        os.rename(staging, run)
    except BaseException:
        import shutil

        shutil.rmtree(staging, ignore_errors=True)
        raise


def run_grid(
    run: Path,
    grid: Grid,
    jobs: int = 1,
    progress: bool = True,
    command: list[str] | None = None,
    executor: Any = None,
) -> RunResult:
    """Run every cell of ``grid`` that ``run`` does not hold yet, writing results into ``run``.

    Finished cells already in ``run`` are skipped (that is how a run resumes); failed ones run again.
    The folder's lock is held throughout (:func:`bench.store.locked`): a second writer is refused.

    Args:
        run: the results folder (created if missing).
        grid: what to run.
        jobs: worker processes when no ``executor`` is given; 1 runs the cells in this process.
        progress: show progress bars on stderr.
        command: the command line, for the manifest.
        executor: an entered executor from :mod:`bench.executor` (default: local processes).

    Raises:
        bench.store.FolderBusy: another process is writing ``run``.
    """
    run = run.resolve()
    run.mkdir(parents=True, exist_ok=True)
    with store.locked(run):
        return _run_locked(run, grid, jobs, progress, command, executor)


def _run_locked(
    run: Path, grid: Grid, jobs: int, progress: bool, command: list[str] | None, executor: Any
) -> RunResult:
    start = time.perf_counter()
    for sub in CELL_DIRS:
        (run / sub).mkdir(exist_ok=True)
    store.clean_partial(run)
    cells = grid.cells()
    done = store.finished_cells(run)
    todo = [c for c in cells if c.id not in done]
    store.write_manifest(run, manifest(run, grid, "running", {}, command))
    timings: dict[str, float] = {}
    failed: list[tuple[int, str]] = []
    warned: list[tuple[int, str]] = []
    notes: list[tuple[int, str]] = []
    bar_cells, bar_items = _bars(len(cells), len(cells) - len(todo), progress)
    interrupted = False

    def finished(cell: Cell, rows: list[dict] | BaseException) -> None:
        if isinstance(rows, BaseException) and store.disk_full(rows):
            raise rows  # stop the run: nothing more can be written
        if isinstance(rows, BaseException):  # the worker running the cell died
            rows = _failed_rows(grid, cell, rows)
            store.write_part(run, cell.id, rows)
        timings[str(cell.id)] = round(sum(r.get("wall_seconds") or 0.0 for r in rows), 6)
        statuses = {r["status"] for r in rows}
        if "failed" in statuses:
            failed.append((cell.id, rows[0]["error"]))
        elif "capped" in statuses or "lagged" in statuses:
            warned.append((cell.id, next(r["error"] for r in rows if r["status"] in ("capped", "lagged"))))
        ended = [r["arrivals_end"] for r in rows if r.get("arrivals_end") is not None]
        if ended:
            when = f"{min(ended):.6g}" + (f"..{max(ended):.6g}" if max(ended) > min(ended) else "")
            notes.append((cell.id, f"its arrival process ran out before the run's end in {len(ended)} of {len(rows)} "
                                   f"replication(s), at t={when} s (a trace shorter than the run): no item arrived "
                                   "after that"))  # fmt: skip
        bar_cells.update(1)

    owned = executor is None
    if owned:
        executor = make_executor("local", jobs).__enter__()
    full = None
    try:
        executor.run_cells(run_cell, run, grid, todo, finished, bar_items.update)
    except KeyboardInterrupt:
        interrupted = True
    except store.DiskFull as err:
        interrupted, full = True, str(err)
    finally:
        if owned:
            executor.__exit__(None, None, None)
        bar_items.close()
        bar_cells.close()
        store.clean_partial(run)
    try:
        store.write_cells(run)
    except KeyboardInterrupt:  # a signal during the last writes: the parts are whole, resume rewrites this
        interrupted = True
    except OSError as err:
        if not store.disk_full(err):
            raise
        interrupted, full = True, full or f"no room left to write {str(run)!r}: {err}".splitlines()[0]
    wall = time.perf_counter() - start
    status = "interrupted" if interrupted else ("failed" if failed else "complete")
    try:
        with _signals_held():  # the final status is written whatever arrives meanwhile (it is handled after)
            store.write_manifest(run, manifest(run, grid, status, {"total_seconds": round(wall, 3), "cells": timings},
                                               command))  # fmt: skip
    except OSError as err:
        if not store.disk_full(err):
            raise  # with no room, the manifest keeps saying 'running': resume still reads it
    return RunResult(run, len(cells), len(timings), len(cells) - len(todo), failed, warned, interrupted, wall, full,
                     notes)  # fmt: skip
