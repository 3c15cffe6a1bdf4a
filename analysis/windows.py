"""Statistics over time: per window of model time, across replications, with intervals.

A queue fed by a non-stationary arrival process (a schedule, a daily cycle, a trace), run with
elastic workers, or started with a backlog (``backlog0``) has no single steady state to estimate:
what a reader needs is how its latency, backlog and workers move through the run. Per cell, the run
is cut into windows of equal width (:func:`window_width`: a round width giving at least
:data:`MIN_WINDOWS` of them, e.g. an hour for a day), and per window:

* **latency percentiles and mean** of the items *put* in the window: the pooled statistic of every
  replication's items in it, with the sectioning interval across replications (the estimator of
  :mod:`analysis.quantiles`, without a warm-up cut); items never taken (still queued at the end of a
  duration run) have no wait and are left out, and counted;
* **the queue depth**: each replication's time-average number waiting over the window, its mean
  across replications with a Student t interval;
* **the arrival rate**: in force (``events/``: the schedule's rate, the cycle's, an on/off process's
  phase; averaged over the window), and as measured (arrivals in the window per second);
* **workers**: the time-average number of workers taking items (elastic cells: it changes).

Beside the measurement:

* the **fluid backlog** ``Q(t)``: ``Q' = lam(t) - c / E[S]`` while ``Q > 0`` (clipped at 0), from
  ``Q(0) = backlog0``, computed exactly for the step function of the rate in force (deterministic
  processes only: a schedule or a cycle; fixed workers only). Where the overload is large the queue
  follows it; where the load is below capacity it is 0 and the real queue holds the few items
  random arrivals leave (of the order of the M/M/c queue length);
* **pieces of a schedule**: for each piece of constant rate long against the queue's relaxation
  time (:data:`LONG_PIECE` relaxation times), its M/M/c figure (Erlang C; Allen-Cunneen for other
  services, labelled approximate) beside the mean wait of the items put in the piece's second half,
  or, for an overloaded piece, the fluid slope ``lam - c / E[S]`` beside the measured backlog slope;
* **time to drain** a backlog at t = 0: per replication, the first time the queue holds no more than
  its steady-state mean (``floor`` of the cell's time-average depth after the warm-up; 0 for a
  non-stationary cell), with a Student t interval across replications, beside the fluid time
  ``backlog0 / (c / E[S] - lam)``.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from analysis.agreement import Agreement
from analysis.backlog import step_slope
from analysis.cell_stats import CellStats
from analysis.estimate import LEVEL, Estimate, mean_ci
from analysis.load import (
    Run,
    data_rows,
    has_depth,
    has_items,
    read_depth,
    read_digests,
    read_events,
    read_items,
    record_level,
)
from analysis.quantiles import estimate, run_samples, sectioning
from analysis.theory import allen_cunneen, mmc
from bench.digest import Digest
from bench.results_format import sample_fraction

__all__ = [
    "LONG_PIECE", "MIN_WINDOWS", "CellWindows", "Window", "cell_windows", "drain_time", "fluid_backlog",
    "piece_theory", "time_varying", "window_width",
]  # fmt: skip

#: Fewest windows a run is cut into.
MIN_WINDOWS = 24
#: Round window widths, seconds: 1 s .. 1 day.
WIDTHS = (1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600, 7200, 10800, 21600, 43200, 86400)
#: A schedule's piece gets a theory row when it lasts this many relaxation times of its queue.
LONG_PIECE = 20
_LEVELS = {"wait_p50": 0.50, "wait_p95": 0.95, "wait_p99": 0.99}


def time_varying(params: Mapping[str, Any]) -> bool:
    """Whether a cell needs figures over time: non-stationary arrivals, elastic workers or a backlog at 0."""
    stationary = params.get("stationary")
    moving = stationary is not None and not pd.isna(stationary) and not bool(stationary)
    elastic = params.get("elastic")
    return moving or (elastic is not None and not pd.isna(elastic)) or int(params.get("backlog0") or 0) > 0


def window_width(horizon: float) -> float:
    """The widest round width that cuts ``horizon`` seconds into at least :data:`MIN_WINDOWS` windows
    (a day into hours; 5,000 s into 2-minute windows); below 1 s, a plain twenty-fourth."""
    fitting = [w for w in WIDTHS if horizon / w >= MIN_WINDOWS]
    return float(max(fitting)) if fitting else horizon / MIN_WINDOWS


@dataclass(frozen=True)
class Window:
    """One window of one cell, across its replications.

    Attributes:
        start, end: the window, model seconds.
        items: items put in it (all replications).
        censored: of those, items never taken (no wait).
        latency: ``wait_mean``, ``wait_p50``, ``wait_p95``, ``wait_p99`` of the items put in it.
        depth: the time-average number waiting.
        rate: the arrival rate in force, items/s (NaN where the process has none, a trace).
        arrivals: the measured arrival rate, items/s.
        workers: the time-average number of workers taking items.
    """

    start: float
    end: float
    items: int
    censored: int
    latency: dict[str, Estimate]
    depth: Estimate
    rate: Estimate
    arrivals: Estimate
    workers: Estimate


@dataclass(frozen=True)
class CellWindows:
    """A cell's figures over time.

    Attributes:
        cell: the cell id.
        width: the windows' width, s.
        windows: the windows, in time order.
        fluid: ``(t, Q(t))`` of the fluid backlog, or None where it does not apply.
        rate_steps: ``(t, rate)``: the rate in force (replication 0's; all replications' for a
            deterministic process), or None without one.
        worker_steps: per replication, ``(t, workers)`` step functions (elastic cells), else empty.
        drain: the time to drain the backlog at t = 0 (None without one).
        drain_target: the depth it drains to.
        replications: replications with data.
    """

    cell: int
    width: float
    windows: list[Window]
    fluid: tuple[np.ndarray, np.ndarray] | None = field(default=None, repr=False)
    rate_steps: tuple[np.ndarray, np.ndarray] | None = field(default=None, repr=False)
    worker_steps: list[tuple[np.ndarray, np.ndarray]] = field(default_factory=list, repr=False)
    drain: Estimate | None = None
    drain_target: int = 0
    replications: int = 0


def _step_area(t: np.ndarray, value: np.ndarray, edges: np.ndarray) -> np.ndarray:
    """Integrals of a right-continuous step function (``value[k]`` from ``t[k]`` on; 0 before the first)
    over ``[edges[j], edges[j+1]]``."""
    if not len(t):
        return np.zeros(len(edges) - 1)
    t, value = np.asarray(t, dtype=float), np.asarray(value, dtype=float)
    cumulative = np.concatenate(([0.0], np.cumsum(value[:-1] * np.diff(t))))  # area from t[0] to each t[k]
    k = np.searchsorted(t, edges, side="right") - 1
    at = np.maximum(k, 0)
    area = np.where(k < 0, 0.0, cumulative[at] + value[at] * (edges - t[at]))
    return np.diff(area)


def _binned(run: Run, cell: int) -> dict[int, Digest] | None:
    """The digests of a cell by replication when the run kept no depth changes of it (its depth then
    comes from their time bins), else None."""
    return None if has_depth(run, cell) else {d.replication: d for d in read_digests(run, cell)}


def _bin_steps(digest: Digest) -> tuple[np.ndarray, np.ndarray]:
    """A replication's depth from its digest (a run that kept no depth changes): the step function
    of the depth at each time bin's end, from 0 at t = 0."""
    ends = (np.arange(len(digest.depth_last)) + 1) * digest.bin_width
    return np.concatenate(([0.0], ends)), np.concatenate(([0.0], digest.depth_last.astype(float)))


def _queue_area(digest: Digest, edges: np.ndarray) -> np.ndarray:
    """The queue's integral over each window between ``edges``, from the digest's cumulative queue
    (exact at the bins' boundaries, linear inside a bin)."""
    return np.diff(np.interp(edges, np.arange(len(digest.queue)) * digest.bin_width, digest.queue))


def _steps(frame: pd.DataFrame, kind: str, rep: int) -> tuple[np.ndarray, np.ndarray]:
    rows = frame[(frame["replication"] == rep) & (frame["kind"] == kind)]
    return rows["t"].to_numpy(dtype=float), rows["value"].to_numpy(dtype=float)


def _depth_steps(depth: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    """The depth step function from its events, 0 at t = 0 (one value per instant: the last)."""
    t, d = depth["t"].to_numpy(dtype=float), depth["depth"].to_numpy(dtype=float)
    return np.concatenate(([0.0], t)), np.concatenate(([0.0], d))


def cell_windows(run: Run, stats: CellStats, width: float | None = None, level: float = LEVEL) -> CellWindows:
    """Per-window statistics of one cell (see the module docstring).

    Args:
        run: an opened run.
        stats: the cell's statistics (:func:`analysis.cell_stats.cell_stats`).
        width: the windows' width, s (default :func:`window_width` of the longest replication).
        level: the intervals' level.
    """
    cell = stats.cell
    rows = data_rows(run.cells)
    rows = rows[rows["cell"] == cell]
    reps = sorted(int(r) for r in rows["replication"])
    if not reps:
        return CellWindows(cell, width or 1.0, [])
    horizon = float(rows["t_end"].max())
    width = width or window_width(horizon)
    edges = np.arange(0.0, horizon + width * 1e-9, width)
    if edges[-1] < horizon:
        edges = np.append(edges, edges[-1] + width)
    if len(edges) < 2:
        edges = np.array([0.0, max(horizon, width)])
    n = len(edges) - 1
    items = read_items(run, cells=[cell], replications=reps, columns=["item", "t_put", "t_arrive", "wait"], join=False)
    kept, share = has_items(run, cell), sample_fraction(record_level(run)) or 1.0  # a sample: arrivals scaled
    digests = _binned(run, cell)
    events = read_events(run, cells=[cell], replications=reps)
    backlog = int(stats.params.get("backlog0") or 0)
    waits: dict[int, list[np.ndarray]] = {}
    depth_avg, rate_avg, arrived, busy_workers = (np.full((len(reps), n), np.nan) for _ in range(4))
    counts, censored = np.zeros(n, dtype=int), np.zeros(n, dtype=int)
    worker_steps = []
    drains = []
    target = _drain_target(run, stats)
    for i, rep in enumerate(reps):
        mine = items[items["replication"] == rep]
        t_end = float(rows.loc[rows["replication"] == rep, "t_end"].iloc[0])
        cover = np.clip(np.minimum(edges[1:], t_end) - edges[:-1], 0.0, None)  # seconds of the window the run saw
        index = np.minimum((mine["t_put"].to_numpy(dtype=float) // width).astype(int), n - 1)
        wait = mine["wait"].to_numpy(dtype=float)
        waits[rep] = [wait[index == j] for j in range(n)]
        counts += np.bincount(index, minlength=n)
        censored += np.bincount(index[np.isnan(wait)], minlength=n)
        fresh = mine["item"].to_numpy() >= backlog  # arrivals, not the backlog queued at 0
        came = np.minimum((mine["t_arrive"].to_numpy(dtype=float)[fresh] // width).astype(int), n - 1)
        with np.errstate(invalid="ignore", divide="ignore"):
            arrived[i] = np.where(cover > 0, np.bincount(came, minlength=n) / share / cover, np.nan)
            if not kept:
                arrived[i] = np.nan
        if digests is None:
            dt, dd = _depth_steps(read_depth(run, cells=[cell], replications=[rep], columns=["t", "depth"]))
            area = _step_area(dt, dd, np.minimum(edges, t_end))
        else:  # no depth changes recorded: the digest's queue integral, and its depth at each bin's end
            dt, dd = _bin_steps(digests[rep])
            area = _queue_area(digests[rep], np.minimum(edges, t_end))
        with np.errstate(invalid="ignore", divide="ignore"):
            depth_avg[i] = np.where(cover > 0, area / cover, np.nan)
            rt, rv = _steps(events, "rate", rep)
            if len(rt):
                rate_avg[i] = np.where(cover > 0, _step_area(rt, rv, np.minimum(edges, t_end)) / cover, np.nan)
            wt, wv = _steps(events, "workers", rep)
            if len(wt):
                busy_workers[i] = np.where(cover > 0, _step_area(wt, wv, np.minimum(edges, t_end)) / cover, np.nan)
                if len(wt) > 1:
                    worker_steps.append((wt, wv))
        if backlog:
            drains.append(drain_time(dt, dd, target))
    windows = []
    for j in range(n):
        latency = {}
        parts = [waits[rep][j][~np.isnan(waits[rep][j])] for rep in reps]
        pooled = np.concatenate(parts) if parts else np.empty(0)
        for name, q in (("wait_mean", None), *_LEVELS.items()):
            point = _stat(pooled, q)
            latency[name] = sectioning(point, np.array([_stat(p, q) for p in parts]), level)
        windows.append(Window(float(edges[j]), float(edges[j + 1]), int(counts[j]), int(censored[j]), latency,
                              mean_ci(depth_avg[:, j], level), mean_ci(rate_avg[:, j], level),
                              mean_ci(arrived[:, j], level), mean_ci(busy_workers[:, j], level)))  # fmt: skip
    rate_steps = _shared_steps(events, "rate", reps)
    fluid = None
    if rate_steps is not None and not _elastic(stats.params) and len(rate_steps[0]):
        fluid = fluid_backlog(*rate_steps, float(stats.params["service_mean"]), int(stats.params["workers"]),
                              float(backlog), horizon)  # fmt: skip
    drain = mean_ci(np.array(drains, dtype=float), level) if backlog else None
    return CellWindows(cell, float(width), windows, fluid, rate_steps, worker_steps, drain, target, len(reps))


def _stat(values: np.ndarray, q: float | None) -> float:
    if not len(values):
        return math.nan
    return float(values.mean()) if q is None else float(np.quantile(values, q, method="inverted_cdf"))


def _elastic(params: Mapping[str, Any]) -> bool:
    value = params.get("elastic")
    return value is not None and not pd.isna(value)


def _shared_steps(events: pd.DataFrame, kind: str, reps: list[int]) -> tuple[np.ndarray, np.ndarray] | None:
    """A step function every replication shares (a deterministic rate), or None when they differ or
    there is none."""
    first = _steps(events, kind, reps[0])
    if not len(first[0]):
        return None
    for rep in reps[1:]:
        other = _steps(events, kind, rep)
        n = min(len(other[0]), len(first[0]))
        if not (np.array_equal(other[0][:n], first[0][:n]) and np.array_equal(other[1][:n], first[1][:n])):
            return None
    return first


def fluid_backlog(t: np.ndarray, rate: np.ndarray, mean_s: float, workers: int, start: float, end: float,
                  points: int = 2000) -> tuple[np.ndarray, np.ndarray]:  # fmt: skip
    """The fluid backlog ``Q(t)`` on ``[0, end]``: ``Q' = rate(t) - workers / mean_s`` while ``Q > 0``,
    ``Q(0) = start``, for a step-function rate (``rate[k]`` from ``t[k]`` on); exact at every breakpoint
    and at ``points`` evenly spaced times.

    Args:
        t: the times the rate changes (the first is 0).
        rate: the rate from each, items/s.
        mean_s: mean service time, s.
        workers: the worker count.
        start: the backlog at t = 0.
        end: the last time.
        points: evenly spaced times to add.
    """
    capacity = workers / mean_s
    grid = np.unique(np.concatenate((t[t <= end], np.linspace(0.0, end, points))))
    k = np.maximum(np.searchsorted(t, grid, side="right") - 1, 0)
    drift = rate[k] - capacity  # in force from each grid time to the next
    q = np.empty(len(grid))
    level = start
    q[0] = level
    for j in range(1, len(grid)):
        level = max(0.0, level + drift[j - 1] * (grid[j] - grid[j - 1]))
        q[j] = level
    return grid, q


def _drain_target(run: Run, stats: CellStats) -> int:
    """The depth a backlog at 0 drains to: the steady-state time-average depth, rounded to a whole
    item (the estimator of :mod:`analysis.quantiles`, after its warm-up cut, which drops the backlog's drain)
    for a stationary cell, 0 otherwise."""
    if not stats.stationary or not int(stats.params.get("backlog0") or 0):
        return 0
    samples = run_samples(run, stats.cell, ["depth_mean"])
    depth = estimate(samples, "depth_mean").estimate.mean if samples else math.nan
    return int(round(depth)) if math.isfinite(depth) else 0


def drain_time(t: np.ndarray, depth: np.ndarray, target: int) -> float:
    """The first time the depth step function is at or below ``target`` (NaN if never), from its
    change times and values (``depth[0]`` at ``t[0] = 0``: the queue before the backlog is put; the
    first change at or after the backlog's last put counts)."""
    t, depth = np.asarray(t, dtype=float), np.asarray(depth, dtype=float)
    if len(t) < 2:
        return math.nan
    peak = int(np.argmax(depth))  # the backlog is in the queue at its (first) largest depth near 0
    below = np.flatnonzero(depth[peak:] <= target)
    return float(t[peak + below[0]]) if len(below) else math.nan


def piece_theory(run: Run, stats: CellStats, windows: CellWindows, level: float = LEVEL) -> list[Agreement]:
    """Theory rows over time for one cell: each long piece of a deterministic rate schedule (M/M/c or
    Allen-Cunneen beside the measured mean wait in the piece's second half; the fluid slope beside the
    measured backlog slope when overloaded), and the fluid time to drain a backlog at 0.

    Args:
        run: the opened run.
        stats: the cell's statistics.
        windows: its figures over time (:func:`cell_windows`).
        level: the intervals' level.
    """
    p = stats.params
    rows: list[Agreement] = []
    if int(p.get("maxsize") or 0) > 0 or _elastic(p) or not windows.replications:
        return rows
    mean_s, c = float(p["service_mean"]), int(p["workers"])
    scv_s = float(p["service_cv"]) ** 2 if p.get("service_cv") is not None and not pd.isna(p["service_cv"]) else None
    backlog = int(p.get("backlog0") or 0)
    if backlog and windows.drain is not None:
        lam = 1.0 / float(p["arrival_mean"])
        if c / mean_s > lam:
            fluid = backlog / (c / mean_s - lam)
            rows.append(Agreement(stats.cell, "time to drain", "fluid backlog0 / (c/E[S] - lam)", False, fluid,
                                  windows.drain, f"first time the depth is <= {windows.drain_target} (its steady "
                                  "mean), per replication"))  # fmt: skip
    steps = windows.rate_steps
    stationary = p.get("stationary")
    schedule = str(p["arrival"]).startswith("schedule:")  # pieces of constant rate (a cycle's are samples)
    if steps is None or scv_s is None or stationary is None or pd.isna(stationary) or bool(stationary) or not schedule:
        return rows
    t, rate = steps
    data = data_rows(run.cells)
    ends = data.loc[data["cell"] == stats.cell, "t_end"].to_numpy(dtype=float)
    horizon = float(ends.min())
    bounds = np.append(t, horizon)
    reps = sorted(int(r) for r in data.loc[data["cell"] == stats.cell, "replication"])
    items = read_items(run, cells=[stats.cell], replications=reps, columns=["t_put", "wait"], join=False)
    depths: dict[int, tuple[np.ndarray, np.ndarray]] = {}
    seen: set[float] = set()
    for k in range(len(t)):
        start, stop, lam = float(bounds[k]), float(min(bounds[k + 1], horizon)), float(rate[k])
        if stop <= start or lam in seen:
            continue
        rho = lam * mean_s / c
        if lam <= 0:
            continue
        if rho < 1:
            relax = mean_s / c * max((1.0 + scv_s) / 2.0, 0.05) / (1.0 - math.sqrt(rho)) ** 2
            if stop - start < LONG_PIECE * relax:
                continue
            occurrences = [(float(a), float(min(b, horizon))) for a, b, r in zip(bounds[:-1], bounds[1:], rate)
                           if r == lam and min(b, horizon) - a >= LONG_PIECE * relax]  # fmt: skip
            sections = []
            for rep in reps:
                mine = items[items["replication"] == rep]
                keep = np.zeros(len(mine), dtype=bool)
                put = mine["t_put"].to_numpy(dtype=float)
                for a, b in occurrences:
                    keep |= (put >= (a + b) / 2) & (put < b)
                w = mine["wait"].to_numpy(dtype=float)[keep]
                sections.append(w[~np.isnan(w)])
            pooled = np.concatenate(sections) if sections else np.empty(0)
            if not len(pooled):
                continue
            measured = sectioning(float(pooled.mean()), np.array([x.mean() if len(x) else math.nan for x in sections]),
                                  level)  # fmt: skip
            exact = scv_s == 1.0
            prediction = mmc(lam, mean_s, c) if exact else allen_cunneen(lam, mean_s, c, 1.0, scv_s)
            rows.append(Agreement(stats.cell, f"Wq, piece lam={lam:g}/s", prediction.model, exact, prediction.wq,
                                  measured, f"items put in the second half of the piece(s) at {lam:g}/s "
                                  f"({len(occurrences)} of them; each lasts >= {LONG_PIECE} relaxation times)"))  # fmt: skip
        else:
            if stop - start < LONG_PIECE * mean_s:
                continue
            slopes = []
            binned = _binned(run, stats.cell)
            for rep in reps:
                if rep not in depths:
                    depths[rep] = (_depth_steps(read_depth(run, cells=[stats.cell], replications=[rep],
                                                           columns=["t", "depth"]))
                                   if binned is None else _bin_steps(binned[rep]))  # fmt: skip
                dt, dd = depths[rep]
                inside = (dt >= start) & (dt < stop)
                level_at = dd[max(int(np.searchsorted(dt, start, "right")) - 1, 0)]
                tt = np.concatenate(([0.0], dt[inside] - start))  # the level at the piece's start, then its changes
                yy = np.concatenate(([level_at], dd[inside]))
                slopes.append(step_slope(tt, yy, stop - start))
            measured = mean_ci(np.array(slopes), level)
            rows.append(Agreement(stats.cell, f"backlog slope, piece lam={lam:g}/s", "fluid limit lam - c/E[S]", False,
                                  lam - c / mean_s, measured, f"least-squares slope over [{start:g}, {stop:g}) s"))  # fmt: skip
        seen.add(lam)
    return rows
