"""The steady-state estimator: one way to turn replications into a figure with an interval, used by
``qbench plan``, the report and compare alike.

**What is estimated.** A queue started empty forgets its start; what is left is its *steady state*.
The steady-state p99 of the wait is the time within which 99% of items are taken once that has
happened: the 0.99-quantile of the stationary wait distribution. Means, the workers' utilisation
and the time-average number waiting (``depth_mean``) are estimated the same way.

**How.** Per cell, with R independent replications (each a series of items in put order):

1. *Warm-up*: MSER-5 on the ensemble of the replications' wait series (their item-by-item mean,
   :func:`analysis.warmup.truncate_ensemble`) gives one cut ``d``; the first ``d`` items of every
   replication are dropped. The cut is found on the wait, the queue's state, and applies to every
   figure of the cell. ``settled`` is False when MSER's minimum sat at its search limit (half the
   run): the series never settled, the queue had no steady state within the run (an overloaded
   cell), and its figures are those of the second half of each run.
2. *Point estimate*: the statistic of all kept items of all replications pooled: for a quantile
   the inverted empirical distribution function (the smallest observed value whose share of
   observations at or below it is at least the level, the definition the streaming percentiles of
   ``cells.parquet`` use); for a mean the pooled mean; for ``utilisation`` and ``depth_mean`` a
   ratio of sums over each replication's window after the warm-up (from the put of its first kept
   item to its last put): busy worker-seconds over ``workers`` x window, and queue-seconds over the
   window.
3. *Interval* by *sectioning* (Asmussen & Glynn, *Stochastic Simulation*, 2007, III.5a): the same
   statistic computed on each replication alone gives R independent sections ``x_r``; the interval
   is ``pooled +/- t(1 - a/2, R - 1) * s / sqrt(R)`` with ``s^2 = sum (x_r - pooled)^2 / (R - 1)``:
   the spread is taken around the pooled estimate, which keeps it honest (a little wider) when
   short sections are biased, as per-replication quantiles of short runs are (low, for a tail).

So "p99 of the wait meets 5 s at 95%" means: the 95% interval of the steady-state 99th percentile
of the wait, built as above from R replications, lies at or below 5 s.

**Residual bias.** Pooling removes the bias of averaging per-replication quantiles of short runs
(a quantile of a run that happened to miss a busy spell is low; the mean of such quantiles is
biased low). What is left is the warm-up MSER misses and the finite run: the estimate converges as
the runs get longer (a plan chooses their length from the theory's relaxation time; a report takes
the run it is given).

**Non-stationary arrivals** (a schedule, a daily cycle, a trace: the cell's ``stationary`` is false)
have no steady state: there the same figures are taken over the whole run (no warm-up cut; every
item of every replication pooled, the same sectioning interval), which is what a plan of a day
asks (the p99 over the day's items), and the analysis says so.

Items never taken (still queued at the end of a ``duration`` run) have no wait: they are dropped,
as are unfinished items from sojourn figures; in a stable queue they are the last few items of a
replication (a bias of the order of the backlog over the run's length). A plan's runs put a fixed
number of items and drain, so nothing is censored there.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

import numpy as np

from analysis.estimate import LEVEL, Estimate, bootstrap_ratio
from analysis.load import Run, data_rows, read_items
from analysis.student_t import t_quantile
from analysis.warmup import Truncation, truncate_ensemble
from bench.results_format import Target

__all__ = [
    "COLUMNS", "LATENCY_METRICS", "Sample", "Steady", "columns_for", "estimate", "estimates", "ratio",
    "run_samples", "sectioning", "section_difference", "warmup",
]  # fmt: skip

#: The item columns the estimator reads.
COLUMNS = ("wait", "sojourn", "service", "t_put", "t_get", "t_done", "abandoned")
#: The latency metrics the report and compare take from this estimator (``cells.parquet`` holds
#: per-replication figures of the same names, which are not steady state).
LATENCY_METRICS = (
    "wait_mean", "wait_p50", "wait_p95", "wait_p99", "sojourn_mean", "sojourn_p50", "sojourn_p95", "sojourn_p99",
)  # fmt: skip


@dataclass(frozen=True)
class Sample:
    """One replication's items, in put order.

    Attributes:
        replication: the replication id (common random numbers: the same id sees the same
            arrivals and services whatever the worker count).
        workers: the worker count it ran with (elastic workers: their most).
        columns: item columns by name (any of :data:`COLUMNS`; ``wait`` always), NaN where censored.
        stationary: the arrival process is stationary (else no warm-up is cut: the whole run counts).
        worker_seconds: the workers' cost over the replication (elastic workers: provisioned), or None.
        workers_mean: the average number of workers over the replication (``worker_seconds / t_end``;
            elastic workers' utilisation divides by it), or None for fixed workers.
    """

    replication: int
    workers: int
    columns: dict[str, np.ndarray] = field(repr=False)
    stationary: bool = True
    worker_seconds: float | None = None
    workers_mean: float | None = None

    @property
    def items(self) -> int:
        """Items put."""
        return len(self.columns["wait"])


@dataclass(frozen=True)
class Steady:
    """One steady-state figure of a cell.

    Attributes:
        estimate: the pooled point estimate with its sectioning interval (``n`` = replications).
        sections: the statistic of each replication alone (NaN where a replication had no data).
        replications: the replication ids of ``sections``.
        cut: items dropped from the start of every replication (the warm-up).
        settled: False when the warm-up never ended within the runs (no steady state).
        count: observations pooled.
    """

    estimate: Estimate
    sections: np.ndarray = field(repr=False)
    replications: np.ndarray = field(repr=False)
    cut: int
    settled: bool
    count: int


def columns_for(metrics: Iterable[str]) -> tuple[str, ...]:
    """The item columns the estimator needs for ``metrics`` (``wait`` always: it finds the warm-up)."""
    wanted = {"wait"}
    for metric in metrics:
        quantity = _quantity(metric)
        if quantity in ("sojourn", "service"):
            wanted.add(quantity)
        elif quantity == "depth":
            wanted |= {"t_put", "t_get"}
        elif quantity == "utilisation":
            wanted |= {"t_put", "t_get", "t_done"}
        elif quantity == "abandon":
            wanted.add("abandoned")
    return tuple(c for c in COLUMNS if c in wanted)


def _quantity(metric: str) -> str:
    """What a metric measures: ``wait``, ``sojourn``, ``service``, ``utilisation``, ``depth`` or ``abandon``."""
    return metric.split("_", 1)[0]


def _level(metric: str) -> float | None:
    """The quantile level of a ``*_pP`` metric (the grammar of targets, :class:`Target`), ``None``
    for a mean, utilisation or depth."""
    quantity, _, stat = metric.partition("_")
    if quantity == "service":  # the service times' quantile: the limit of the sojourn's with many workers
        return Target("wait_" + stat, "<=", 0.0).level
    return Target(metric, "<=", 0.0).level


def warmup(samples: Sequence[Sample]) -> Truncation:
    """The MSER-5 warm-up cut of a cell, found on the ensemble of its wait series (censored waits,
    a suffix in a FIFO queue, left out); no cut for a non-stationary arrival process (the whole run
    counts: there is no steady state to warm up to)."""
    series = [_known(s.columns["wait"]) for s in samples]
    if any(not s.stationary for s in samples):
        known = np.concatenate(series) if series else np.empty(0)
        return Truncation(0, True, float(known.mean()) if len(known) else float("nan"))
    return truncate_ensemble(series)


def _known(values: np.ndarray) -> np.ndarray:
    """``values`` without NaNs (censored items), copied only when there are some."""
    missing = np.isnan(values)
    return values[~missing] if missing.any() else values


def sectioning(point: float, sections: np.ndarray, level: float = LEVEL) -> Estimate:
    """The sectioning interval: ``point +/- t * s / sqrt(R)``, ``s`` the spread of the R sections
    around ``point`` (see the module docstring); no interval with fewer than two sections.

    Args:
        point: the pooled estimate.
        sections: one estimate per replication (NaNs ignored).
        level: confidence level.
    """
    x = np.asarray(sections, dtype=np.float64)
    x = x[~np.isnan(x)]
    r = len(x)
    if r < 2 or math.isnan(point):
        return Estimate(point, math.nan, math.nan, r, level)
    spread = math.sqrt(float(np.sum((x - point) ** 2)) / (r - 1))
    half = t_quantile(0.5 + level / 2.0, r - 1) * spread / math.sqrt(r)
    return Estimate(point, point - half, point + half, r, level)


def _statistic(values: np.ndarray, level: float | None) -> float:
    if len(values) == 0:
        return math.nan
    if level is None:
        return float(values.mean())
    return float(np.quantile(values, level, method="inverted_cdf"))


def _window(sample: Sample, cut: int) -> tuple[float, float]:
    """The replication's window after the warm-up: from the put of its first kept item to its last put."""
    t_put = sample.columns["t_put"]
    if cut >= len(t_put):
        return math.nan, math.nan
    return float(t_put[cut]), float(np.nanmax(t_put))


def _occupied(start: np.ndarray, end: np.ndarray, a: float, b: float) -> float:
    """Seconds of the intervals [start, end) inside [a, b]; a missing end (censored) is b."""
    end = np.where(np.isnan(end), b, end)
    inside = np.minimum(end, b) - np.maximum(start, a)
    return float(np.sum(inside[~np.isnan(inside) & (inside > 0)]))


def _window_sums(sample: Sample, quantity: str, cut: int) -> tuple[float, float]:
    """(numerator, denominator) of a window statistic of one replication."""
    a, b = _window(sample, cut)
    if not b > a:
        return math.nan, math.nan
    cols = sample.columns
    if quantity == "depth":
        return _occupied(cols["t_put"], cols["t_get"], a, b), b - a
    started = ~np.isnan(cols["t_get"])
    busy = _occupied(cols["t_get"][started], cols["t_done"][started], a, b)
    workers = sample.workers if sample.workers_mean is None else sample.workers_mean  # elastic: their average
    return busy, workers * (b - a)


def estimate(samples: Sequence[Sample], metric: str, cut: Truncation | None = None, level: float = LEVEL) -> Steady:
    """The steady-state estimate of ``metric`` from a cell's replications (module docstring).

    Args:
        samples: the cell's replications.
        metric: ``wait_mean``, ``wait_pP``, ``sojourn_mean``, ``sojourn_pP``, ``service_pP``,
            ``utilisation`` or ``depth_mean``.
        cut: the warm-up (default: :func:`warmup` of ``samples``).
        level: confidence level of the interval.
    """
    truncation = warmup(samples) if cut is None else cut
    d = truncation.index
    ids = np.array([s.replication for s in samples], dtype=np.int64)
    quantity, stat = _quantity(metric), _level(metric)
    if quantity in ("wait", "sojourn", "service", "abandon"):
        column = "abandoned" if quantity == "abandon" else quantity  # 1 for an abandoned item, 0 otherwise
        kept = [_known(s.columns[column][d:]) for s in samples]
        sections = np.array([_statistic(k, stat) for k in kept])
        pooled = np.concatenate(kept) if kept else np.empty(0)
        point, count = _statistic(pooled, stat), len(pooled)
    else:
        sums = np.array([_window_sums(s, quantity, d) for s in samples]).reshape(-1, 2)
        with np.errstate(invalid="ignore", divide="ignore"):
            sections = sums[:, 0] / sums[:, 1]
        good = ~np.isnan(sections)
        total = float(sums[good, 1].sum())
        point = float(sums[good, 0].sum()) / total if total > 0 else math.nan
        count = int(sum(max(s.items - d, 0) for s in samples))
    return Steady(sectioning(point, sections, level), sections, ids, d, truncation.settled, count)


def estimates(
    samples: Sequence[Sample], metrics: Iterable[str], level: float = LEVEL
) -> tuple[dict[str, Steady], Truncation]:
    """:func:`estimate` of several metrics under one warm-up cut; returns them and the cut."""
    cut = warmup(samples)
    return {m: estimate(samples, m, cut, level) for m in metrics}, cut


def run_samples(run: Run, cell: int, metrics: Iterable[str] = LATENCY_METRICS) -> list[Sample]:
    """A cell's replications with data (status ``ok``, ``capped`` or ``lagged``) read from ``items/``,
    with the columns ``metrics`` need, in put order.

    Args:
        run: an opened run.
        cell: the cell id.
        metrics: the metrics to be estimated (they decide the columns read).
    """
    columns = list(columns_for(metrics))
    read = ["status" if c == "abandoned" else c for c in columns]
    rows = data_rows(run.cells)
    keep = sorted(int(r) for r in rows.loc[rows["cell"] == cell, "replication"])
    if not keep:
        return []
    items = read_items(run, cells=[cell], replications=keep, columns=["item", *read], join=False)
    if "abandoned" in columns:
        items["abandoned"] = (items.pop("status") == "abandoned").astype(np.float64)
    items = items.sort_values(["replication", "item"], kind="stable")
    workers = int(run.params.loc[cell, "workers"])
    flag = run.params.loc[cell].get("stationary")
    stationary = bool(flag) if flag is not None and not (isinstance(flag, float) and math.isnan(flag)) else True
    mine = rows[rows["cell"] == cell]
    costs = dict(zip(mine["replication"].astype(int), mine["worker_seconds"].astype(float)))
    ends = dict(zip(mine["replication"].astype(int), mine["t_end"].astype(float)))
    elastic = run.params.loc[cell].get("elastic")
    moving = isinstance(elastic, str) and bool(elastic)
    samples = []
    for rep, group in items.groupby("replication", sort=True):
        cols = {c: group[c].to_numpy(dtype=np.float64) for c in columns}
        cost, end = costs.get(int(rep)), ends.get(int(rep))
        average = cost / end if moving and cost is not None and end else None
        samples.append(Sample(int(rep), workers, cols, stationary, cost, average))
    return samples


def section_difference(a: Steady, b: Steady, *, paired: bool, level: float = LEVEL) -> Estimate:
    """The interval of ``B - A`` for two steady-state figures, by sectioning: centred on the
    difference of the pooled estimates; paired (common random numbers) from the spread of the
    per-replication differences (replications matched by id), else Welch's interval from each side's
    spread around its own pooled estimate (Satterthwaite's degrees of freedom).

    Args:
        a: the baseline's figure.
        b: the contender's.
        paired: the replications share their random numbers.
        level: confidence level.
    """
    point = b.estimate.mean - a.estimate.mean
    if paired:
        common, ia, ib = np.intersect1d(a.replications, b.replications, return_indices=True)
        return sectioning(point, b.sections[ib] - a.sections[ia], level) if len(common) else _none(point, level)
    xa, xb = a.sections[~np.isnan(a.sections)], b.sections[~np.isnan(b.sections)]
    if min(len(xa), len(xb)) < 2 or math.isnan(point):
        return _none(point, level, min(len(xa), len(xb)))
    va = float(np.sum((xa - a.estimate.mean) ** 2)) / (len(xa) - 1) / len(xa)
    vb = float(np.sum((xb - b.estimate.mean) ** 2)) / (len(xb) - 1) / len(xb)
    if va + vb == 0:
        return Estimate(point, point, point, min(len(xa), len(xb)), level)
    df = (va + vb) ** 2 / (va**2 / (len(xa) - 1) + vb**2 / (len(xb) - 1))
    half = t_quantile(0.5 + level / 2.0, df) * math.sqrt(va + vb)
    return Estimate(point, point - half, point + half, min(len(xa), len(xb)), level)


def _none(point: float, level: float, n: int = 0) -> Estimate:
    return Estimate(point, math.nan, math.nan, n, level)


def ratio(a: Steady, b: Steady, *, paired: bool, level: float = LEVEL) -> Estimate:
    """``B / A`` of two steady-state figures: the ratio of the pooled estimates, with the percentile
    bootstrap interval of the ratio of section means (:func:`analysis.estimate.bootstrap_ratio`,
    replications resampled in pairs when ``paired``) rescaled to be centred on it.

    Args:
        a: the baseline's figure (the denominator).
        b: the contender's.
        paired: resample matched replications together.
        level: confidence level.
    """
    point = b.estimate.mean / a.estimate.mean if a.estimate.mean else math.nan
    if paired:
        _, ia, ib = np.intersect1d(a.replications, b.replications, return_indices=True)
        xa, xb = a.sections[ia], b.sections[ib]
        good = ~(np.isnan(xa) | np.isnan(xb))
        xa, xb = xa[good], xb[good]
    else:
        xa, xb = a.sections[~np.isnan(a.sections)], b.sections[~np.isnan(b.sections)]
    boot = bootstrap_ratio(xa, xb, paired=paired, level=level)
    if math.isnan(point) or math.isnan(boot.low) or not boot.mean:
        return Estimate(point, math.nan, math.nan, boot.n, level)
    scale = point / boot.mean
    low, high = sorted((boot.low * scale, boot.high * scale))
    return Estimate(point, low, high, boot.n, level)
