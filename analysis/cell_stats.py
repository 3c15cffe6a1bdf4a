"""Per-cell statistics over replications: every figure with a 95% interval.

Replications are i.i.d., so each per-replication summary in ``cells.parquet`` (the throughput,
utilisation, depth, slope, ...) is one observation and :func:`analysis.estimate.mean_ci` gives the
Student t interval of its expectation. **Latency** figures (mean and p50/p95/p99 of wait and
sojourn, :data:`analysis.quantiles.LATENCY_METRICS`) are steady-state figures instead, read from
``items/`` by the one estimator of :mod:`analysis.quantiles` (MSER-5 warm-up cut on the ensemble,
all kept items pooled, sectioning interval), the estimator ``qbench plan`` and compare use: the
mean of per-replication percentiles of runs started empty is biased low. Derived figures:

Only rows with data count (status ``ok``, ``capped`` or ``lagged``: :data:`analysis.load.DATA_STATUSES`).

* **backlog growth** and its verdict (:mod:`analysis.backlog`); items still queued at the end are
  part of the depth, and their count is reported per cell (``censored``): wait and sojourn figures
  are over items that were taken or finished, so for an overloaded cell they are lower bounds;
* **steady state** (:func:`steady_state`): the mean wait and the share of items that wait, by the
  same estimator and warm-up cut; the truncation point is reported with it, the raw data is untouched.
  A cell whose arrival process is not stationary (``stationary`` false) has none: its latency
  figures cover the whole run (no warm-up cut) and its verdict is *non-stationary*;
* **Little's law** (:func:`little`): the time-average number waiting ``L`` (``depth_mean``)
  against ``lam * W`` with ``lam = n_put / t_end`` and ``W = wait_mean``, paired per replication.
  It holds when the interval of ``L - lam W`` contains 0 or the relative gap is under
  :data:`LITTLE_TOLERANCE` (finite-horizon edge effects are ``O(1/t_end)``); it is not checked
  for overloaded cells, which have no steady state, nor for cells with abandonment or retries, whose
  queue time ``wait`` does not describe (:func:`analysis.behaviours.little_applies`);
* **input checks** (:mod:`analysis.inputs`): the measured mean inter-arrival and service times
  against their specs' means, which warn when a heavy tail kept the sample far from the spec.
"""

from __future__ import annotations

import math
import multiprocessing
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from analysis.backlog import Growth, stationary, verdict
from analysis.behaviours import checks_inputs, little_applies, workers_label
from analysis.estimate import Estimate, mean_ci
from analysis.inputs import InputCheck, input_checks
from analysis.load import Run, data_rows
from analysis.quantiles import LATENCY_METRICS, Sample, estimates, kept_share_waiting, run_samples
from analysis.theory import fluid_slope
from analysis.warmup import Truncation

__all__ = [
    "CellStats", "LITTLE_TOLERANCE", "Little", "METRICS", "PARALLEL_FROM", "SteadyState", "cell_stats", "little",
    "steady_state", "summarize",
]  # fmt: skip

#: Per-replication metrics of ``cells.parquet`` summarised with a CI, in display order.
METRICS = (
    "wait_mean", "wait_p50", "wait_p95", "wait_p99", "sojourn_mean", "sojourn_p50", "sojourn_p95",
    "sojourn_p99", "throughput", "utilisation", "depth_mean", "depth_max", "backlog_slope", "goodput", "abandon_rate",
    "worker_seconds", "workers_peak",
)  # fmt: skip

#: Relative gap under which Little's law counts as holding even when the CI excludes 0.
LITTLE_TOLERANCE = 0.02


@dataclass(frozen=True)
class Little:
    """Little's law check ``L = lam W`` for one cell.

    Attributes:
        length: time-average number waiting, ``L``.
        product: ``lam * W``.
        gap: ``L - lam W``, paired across replications.
        verdict: ``holds``, ``violated`` or ``n/a`` (overloaded or no data).
    """

    length: Estimate
    product: Estimate
    gap: Estimate
    verdict: str


@dataclass(frozen=True)
class SteadyState:
    """Steady-state wait of one cell after MSER-5 warm-up truncation.

    Attributes:
        wait: the steady-state mean wait (pooled after truncation, sectioning interval), s.
        p_wait: fraction of items that waited (wait > 0) after truncation, likewise.
        truncation: items dropped from the start of every replication (one cut for the cell).
        settled: the truncation fell inside the search range (else: no evidence of steady state).
    """

    wait: Estimate
    p_wait: Estimate
    truncation: Estimate
    settled: bool


@dataclass(frozen=True)
class CellStats:
    """All statistics of one cell.

    Attributes:
        cell: the cell id.
        params: the cell's parameters (``workers``, ``arrival``, ``service``, ``rho``, ...).
        metrics: each of :data:`METRICS` present in the run, as an Estimate.
        growth: backlog growth and verdict (with the pusher's throttling on a bounded queue).
        little: Little's law check.
        censored: items still queued at the end of a replication (``n_put - n_got``).
        replications: replications with data (status ``ok``, ``capped`` or ``lagged``).
        failed: replications that failed.
        inputs: the measured input means against their specs (:mod:`analysis.inputs`).
        error: the first error of a failed replication, or None.
        steady: the cell's steady-state wait figures (None without data).
    """

    cell: int
    params: dict = field(repr=False)
    metrics: dict[str, Estimate] = field(repr=False)
    growth: Growth
    little: Little
    censored: Estimate
    replications: int
    failed: int
    inputs: list[InputCheck] = field(default_factory=list, repr=False)
    error: str | None = None
    steady: SteadyState | None = field(default=None, repr=False)

    @property
    def settled(self) -> bool:
        """The warm-up ended within the runs (False: no steady state; latency figures then cover the
        second half of each run)."""
        return self.steady is None or self.steady.settled

    @property
    def stationary(self) -> bool:
        """The arrival process is stationary (else no steady state: figures cover the whole run)."""
        return stationary(self.params)

    @property
    def warnings(self) -> list[InputCheck]:
        """The input checks that failed: the spec's mean outside the measured mean's interval."""
        return [check for check in self.inputs if not check.ok]

    @property
    def arrival_rate(self) -> float:
        """Items/s: ``1 / arrival_mean``."""
        return 1.0 / float(self.params["arrival_mean"])

    @property
    def fluid_slope(self) -> float:
        """Fluid-limit backlog growth ``lam - c / E[S]``, items/s (:func:`analysis.theory.fluid_slope`)."""
        return fluid_slope(self.arrival_rate, float(self.params["service_mean"]), int(self.params["workers"]))

    @property
    def label(self) -> str:
        """A short label such as ``c=2 const:1 / uniform:0:5`` (``, maxsize 5`` for a bounded queue)."""
        bound = int(self.params.get("maxsize") or 0)
        tail = f", maxsize {bound}" if bound else ""
        return f"c={workers_label(self.params)} {self.params['arrival']} / {self.params['service']}{tail}"


def little(rows: pd.DataFrame, overloaded: bool) -> Little:
    """Little's law check from a cell's replication rows (see the module docstring).

    Args:
        rows: the cell's ``cells.parquet`` rows that hold data.
        overloaded: the cell's backlog verdict is *overloaded* (then the check is ``n/a``).
    """
    length = rows["depth_mean"].to_numpy(dtype=float)
    product = (rows["n_put"] / rows["t_end"] * rows["wait_mean"]).to_numpy(dtype=float)
    est_l, est_p, gap = mean_ci(length), mean_ci(product), mean_ci(length - product)
    if overloaded or gap.n == 0 or math.isnan(gap.mean):
        return Little(est_l, est_p, gap, "n/a")
    relative = abs(gap.mean) / est_l.mean if est_l.mean else (0.0 if gap.mean == 0 else math.inf)
    holds = gap.contains(0.0) or relative <= LITTLE_TOLERANCE
    return Little(est_l, est_p, gap, "holds" if holds else "violated")


def cell_stats(run: Run, cell: int) -> CellStats:
    """Statistics of one cell: from ``cells.parquet``, and the latency figures from ``items/`` (only
    this cell's ``wait`` and ``sojourn`` columns are read).

    Args:
        run: an opened run.
        cell: the cell id.

    Raises:
        KeyError: no such cell in the run.
    """
    params = run.params.loc[cell].to_dict()
    every = run.rows_of(cell)
    rows = data_rows(every)
    metrics = {m: mean_ci(rows[m].to_numpy(dtype=float)) for m in METRICS if m in rows}
    samples = run_samples(run, cell) if len(rows) else []
    steady = None
    if samples:
        latency, cut = estimates(samples, LATENCY_METRICS)
        metrics.update({m: latency[m].estimate for m in LATENCY_METRICS})
        steady = _steady(samples, latency["wait_mean"].estimate, cut)
    grow = verdict(every, params)
    censored = mean_ci((rows["n_put"] - rows["n_got"]).to_numpy(dtype=float))
    check = little(rows, grow.verdict == "overloaded" or not little_applies(params))
    failed = every[every["status"] == "failed"]
    error = str(failed["error"].dropna().iloc[0]) if failed["error"].notna().any() else None
    arrival_ok, service_ok = checks_inputs(params)
    inputs = [c for c in input_checks(int(cell), rows, params)
              if (arrival_ok if c.quantity.startswith("inter-arrival") else service_ok)]  # fmt: skip
    return CellStats(int(cell), params, metrics, grow, check, censored, len(rows), len(failed), inputs,
                     error, steady)  # fmt: skip


#: From this many cells, :func:`summarize` spreads the cells over worker processes (one per core):
#: each cell's digests are read and estimated on their own, so a 10,000-cell run scales with cores.
PARALLEL_FROM = 400


def summarize(run: Run, jobs: int = 1, progress: Callable[[int], object] | None = None) -> list[CellStats]:
    """:func:`cell_stats` for every cell of the run, in cell order.

    Args:
        run: an opened run.
        jobs: worker processes for a run of :data:`PARALLEL_FROM` cells or more (``qbench report``
            uses one per core). They are spawned, so a script that asks for more than 1 needs the
            ``if __name__ == "__main__":`` guard of :mod:`multiprocessing`.
        progress: called with the number of cells done as they are (a progress bar's ``update``).
    """
    cells = [int(c) for c in run.params.index]
    tick = progress or (lambda n: None)
    if len(cells) < PARALLEL_FROM or jobs <= 1:
        found = []
        for c in cells:
            found.append(cell_stats(run, c))
            tick(1)
        return found
    size = max(len(cells) // (jobs * 8), 1)  # a few chunks per process: an even spread, few round trips
    chunks = [cells[k : k + size] for k in range(0, len(cells), size)]
    context = multiprocessing.get_context("spawn")
    found = []
    with ProcessPoolExecutor(jobs, mp_context=context) as pool:
        for part in pool.map(_summarize_chunk, [str(run.path)] * len(chunks), chunks):
            found.extend(part)
            tick(len(part))
    return found


_OPENED: dict[str, Run] = {}


def _summarize_chunk(path: str, cells: list[int]) -> list[CellStats]:
    """:func:`cell_stats` of some cells, in a worker process (the run opened once per process)."""
    from analysis.load import open_run

    run = _OPENED.get(path)
    if run is None:
        run = _OPENED[path] = open_run(Path(path))
    return [cell_stats(run, c) for c in cells]


def steady_state(run: Run, cell: int) -> SteadyState:
    """Steady-state wait of one cell: the mean wait and the share of items that wait, after the
    MSER-5 warm-up cut found on the ensemble (:mod:`analysis.quantiles`).

    Only this cell's waits are read. Items never taken (censored) end the series: they have no wait yet.

    Args:
        run: an opened run.
        cell: the cell id.
    """
    samples = run_samples(run, cell, ["wait_mean"])
    found, cut = estimates(samples, ["wait_mean"])
    return _steady(samples, found["wait_mean"].estimate, cut)


def _steady(samples: list[Sample], wait: Estimate, cut: Truncation) -> SteadyState:
    """The steady state from a cell's replications (their digests), their mean wait and their warm-up cut."""
    p_wait = kept_share_waiting(samples, cut)
    truncation = Estimate(float(cut.index), float(cut.index), float(cut.index), len(samples))
    return SteadyState(wait, p_wait, truncation, cut.settled)
