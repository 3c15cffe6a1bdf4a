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
from analysis.load import Run, data_rows, read_digests
from analysis.student_t import t_quantile
from analysis.warmup import Truncation, mser_of_means
from bench.digest import WHOLE_RUN, Digest, merge_pairs
from bench.replication_stats import SLOTS, rank_slot, slot_value
from bench.results_format import Target

__all__ = [
    "COLUMNS", "LATENCY_METRICS", "Sample", "Steady", "columns_for", "digests", "estimate", "estimates",
    "first_kept_item", "kept_share_waiting", "ratio", "run_samples", "sectioning", "section_difference", "stationary",
    "warmup",
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
        columns: item columns by name (any of :data:`COLUMNS`; ``wait`` always unless ``digest`` is
            given), NaN where censored.
        stationary: the arrival process is stationary (else no warm-up is cut: the whole run counts).
        worker_seconds: the workers' cost over the replication (elastic workers: provisioned), or None.
        workers_mean: the average number of workers over the replication (``worker_seconds / t_end``;
            elastic workers' utilisation divides by it), or None for fixed workers.
        digest: the replication's digest as recorded (``digests/``); made from ``columns`` if None.
    """

    replication: int
    workers: int
    columns: dict[str, np.ndarray] = field(repr=False)
    stationary: bool = True
    worker_seconds: float | None = None
    workers_mean: float | None = None
    digest: Digest | None = field(default=None, repr=False, compare=False)

    @property
    def items(self) -> int:
        """Items put."""
        return len(self.columns["wait"]) if "wait" in self.columns else self.digested().items

    def digested(self) -> Digest:
        """The replication's digest: the one recorded beside it, else made from its columns."""
        return self.digest if self.digest is not None else Digest.of(self.columns, self.workers, self.replication)


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


def digests(samples: Sequence[Sample | Digest]) -> list[Digest]:
    """The digests of a cell's replications (:class:`Sample` or :class:`~bench.digest.Digest`)."""
    return [s if isinstance(s, Digest) else s.digested() for s in samples]


def warmup(samples: Sequence[Sample | Digest]) -> Truncation:
    """The MSER warm-up cut of a cell, found on the ensemble of its wait series (censored waits left
    out): the replications' warm-up batch means (:mod:`bench.digest`), brought to the coarsest
    batch among them, averaged batch by batch over the replications. ``index`` counts known waits."""
    found = digests(samples)
    if not found:
        return Truncation(0, False, math.nan)
    if not stationary(samples):  # no steady state to warm up to: the whole run counts
        return Truncation(0, True, _mean(found, "wait", [0] * len(found)))
    size = max(d.mser_batch for d in found)
    series = [_coarsen(d.mser_sums, d.mser_batch, size) / size for d in found]
    length = min(len(x) for x in series)
    if length < 4:  # too few batches to look for a warm-up: keep everything
        mean = _mean(found, "wait", [0] * len(found))
        return Truncation(0, not math.isnan(mean), mean)
    ensemble = np.mean([x[:length] for x in series], axis=0)
    stat = mser_of_means(ensemble)
    d = int(np.argmin(stat))
    return Truncation(d * size, d < len(stat) - 1, float(ensemble[d:].mean()))


def stationary(samples: Sequence[Sample | Digest]) -> bool:
    """Whether a cell's arrival process is stationary (a bare digest is taken to be): else there is
    no steady state, no warm-up is cut and every item of the run counts."""
    return all(s.stationary for s in samples if isinstance(s, Sample))


def _mean(found: list[Digest], kind: str, first: list[int]) -> float:
    """The pooled mean of ``kind`` over the segments each digest keeps (``first`` on)."""
    top = sum(float(x.sums[kind][k:].sum()) for x, k in zip(found, first))
    bottom = sum(float(x.counts[kind][k:].sum()) for x, k in zip(found, first))
    return _ratio(top, bottom)


def _coarsen(sums: np.ndarray, size: int, target: int) -> np.ndarray:
    """Batch sums of ``size`` merged in pairs until their batches hold ``target``."""
    while size < target:
        sums, size = merge_pairs(sums), size * 2
    return sums


def _first_kept(digest: Digest, cut: int) -> int:
    """The first segment a replication keeps after a cut of ``cut`` known waits: the segment
    holding the item of the cut's first kept wait, rounded up to a segment start."""
    if cut <= 0:
        return 0
    batch = cut // digest.mser_batch
    item = int(digest.mser_first[batch]) if batch < len(digest.mser_first) else digest.items
    return -(-item // digest.segment)


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


def first_kept_item(sample: Sample | Digest, cut: Truncation) -> int:
    """The index of the first item a replication keeps after the warm-up cut ``cut``: the cut's
    first kept wait, rounded up to the start of a segment of the replication's digest."""
    digest = digests([sample])[0]
    return _first_kept(digest, cut.index) * digest.segment


def _histogram(digest: Digest, kind: str, first: int) -> tuple[np.ndarray, np.ndarray]:
    """The sparse histogram (sorted slots, tallies) of ``kind`` over segments ``first`` on (the whole
    run for service times, whose digest keeps one histogram: :data:`bench.digest.WHOLE_RUN`)."""
    keys, tallies = digest.keys[kind], digest.tallies[kind]
    keep = keys >= (0 if kind in WHOLE_RUN else first) * SLOTS
    slots, inverse = np.unique(keys[keep] % SLOTS, return_inverse=True)
    return slots, np.bincount(inverse, weights=tallies[keep], minlength=len(slots)).astype(np.int64)


#: A quantity's histograms: each replication's (slots, tallies) after its cut, and their pool.
_Histograms = tuple[list[tuple[np.ndarray, np.ndarray]], tuple[np.ndarray, np.ndarray]]


def _quantile(slots: np.ndarray, tallies: np.ndarray, level: float) -> float:
    return slot_value(rank_slot(slots, tallies, level)) if tallies.sum() else math.nan


def _pooled(parts: list[tuple[np.ndarray, np.ndarray]]) -> tuple[np.ndarray, np.ndarray]:
    if not parts:
        return np.empty(0, dtype=np.int64), np.empty(0, dtype=np.int64)
    slots, inverse = np.unique(np.concatenate([p[0] for p in parts]), return_inverse=True)
    tallies = np.bincount(inverse, weights=np.concatenate([p[1] for p in parts]), minlength=len(slots))
    return slots, tallies.astype(np.int64)


def _ratio(top: float, bottom: float) -> float:
    return top / bottom if bottom else math.nan


def _at(digest: Digest, cumulative: np.ndarray, t: float) -> float:
    """A cumulative integral at time ``t``, linear between the time bins' boundaries."""
    return float(np.interp(t, np.arange(len(cumulative)) * digest.bin_width, cumulative))


def _window_sums(digest: Digest, quantity: str, first: int, workers: float) -> tuple[float, float]:
    """(numerator, denominator) of a window statistic of one replication: from the put of its first
    kept item to its last put, busy worker-seconds over workers x window (``utilisation``; elastic
    workers: their average) or queued item-seconds over the window (``depth``)."""
    if first >= len(digest.seg_first_t):
        return math.nan, math.nan
    a, b = float(digest.seg_first_t[first]), digest.last_put
    if not b > a:
        return math.nan, math.nan
    if quantity == "depth":
        return _at(digest, digest.queue, b) - _at(digest, digest.queue, a), b - a
    return _at(digest, digest.busy, b) - _at(digest, digest.busy, a), workers * (b - a)


def estimate(samples: Sequence[Sample | Digest], metric: str, cut: Truncation | None = None,
             level: float = LEVEL, _hists: dict[str, _Histograms] | None = None) -> Steady:  # fmt: skip
    """The steady-state estimate of ``metric`` from a cell's replications (module docstring).

    Args:
        samples: the cell's replications.
        metric: ``wait_mean``, ``wait_pP``, ``sojourn_mean``, ``sojourn_pP``, ``service_pP``,
            ``utilisation`` or ``depth_mean``.
        cut: the warm-up (default: :func:`warmup` of ``samples``).
        level: confidence level of the interval.
    """
    found = digests(samples)
    truncation = warmup(found) if cut is None else cut
    d = truncation.index
    ids = np.array([x.replication for x in found], dtype=np.int64)
    first = [_first_kept(x, d) for x in found]
    quantity, stat = _quantity(metric), _level(metric)
    if quantity in ("wait", "sojourn", "service"):
        if stat is None:
            sums = [
                (float(x.sums[quantity][k:].sum()), float(x.counts[quantity][k:].sum())) for x, k in zip(found, first)
            ]
            sections = np.array([_ratio(a, b) for a, b in sums])
            count = int(sum(b for _, b in sums))
            point = _ratio(sum(a for a, _ in sums), count)
        else:
            known: _Histograms | None = None if _hists is None else _hists.get(quantity)
            if known is None:
                hists = [_histogram(x, quantity, k) for x, k in zip(found, first)]
                known = (hists, _pooled(hists))
                if _hists is not None:  # the other quantiles of the same quantity reuse them
                    _hists[quantity] = known
            hists, pooled = known
            sections = np.array([_quantile(*h, stat) for h in hists])
            point, count = _quantile(*pooled, stat), int(pooled[1].sum())
    elif quantity == "abandon":
        sums = [(float(x.seg_abandoned[k:].sum()), float(x.seg_items[k:].sum())) for x, k in zip(found, first)]
        sections = np.array([_ratio(a, b) for a, b in sums])
        count = int(sum(b for _, b in sums))
        point = _ratio(sum(a for a, _ in sums), count)
    else:
        workers = [_workers(s, x) for s, x in zip(samples, found)]
        pairs = np.array([_window_sums(x, quantity, k, w) for x, k, w in zip(found, first, workers)]).reshape(-1, 2)
        with np.errstate(invalid="ignore", divide="ignore"):
            sections = pairs[:, 0] / pairs[:, 1]
        good = ~np.isnan(sections)
        total = float(pairs[good, 1].sum())
        point = float(pairs[good, 0].sum()) / total if total > 0 else math.nan
        count = int(sum(max(x.items - k * x.segment, 0) for x, k in zip(found, first)))
    return Steady(sectioning(point, sections, level), sections, ids, d, truncation.settled, count)


def _workers(sample: Sample | Digest, digest: Digest) -> float:
    """The workers a replication's utilisation divides by: elastic workers' average, else its count."""
    if isinstance(sample, Sample) and sample.workers_mean is not None:
        return sample.workers_mean
    return float(digest.workers)


def kept_share_waiting(samples: Sequence[Sample | Digest], cut: Truncation) -> Estimate:
    """The share of kept items that waited (a wait above zero) after the warm-up cut, pooled, with
    its sectioning interval: the steady-state probability of waiting."""
    found = digests(samples)
    shares = []
    for x in found:
        slots, tallies = _histogram(x, "wait", _first_kept(x, cut.index))
        total = int(tallies.sum())
        zero = int(tallies[slots == 0].sum())
        shares.append((total - zero, total))
    sections = np.array([_ratio(a, b) for a, b in shares])
    return sectioning(_ratio(sum(a for a, _ in shares), sum(b for _, b in shares)), sections)


def estimates(
    samples: Sequence[Sample | Digest], metrics: Iterable[str], level: float = LEVEL
) -> tuple[dict[str, Steady], Truncation]:
    """:func:`estimate` of several metrics under one warm-up cut; returns them and the cut."""
    cut = warmup(samples)
    hists: dict[str, _Histograms] = {}
    return {m: estimate(samples, m, cut, level, hists) for m in metrics}, cut


def run_samples(run: Run, cell: int, metrics: Iterable[str] = LATENCY_METRICS) -> list[Sample]:
    """A cell's replications with data (status ``ok``, ``capped`` or ``lagged``), each with its
    digest as the run recorded it in ``digests/`` (every record level keeps them).

    Args:
        run: an opened run.
        cell: the cell id.
        metrics: the metrics to be estimated (every digest serves them all).
    """
    rows = data_rows(run.rows_of(cell))
    keep = {int(r) for r in rows["replication"]}
    if not keep:
        return []
    workers = int(run.params.loc[cell, "workers"])
    flag = run.params.loc[cell].get("stationary")
    steady = bool(flag) if flag is not None and not (isinstance(flag, float) and math.isnan(flag)) else True

    costs = dict(zip(rows["replication"].astype(int), rows["worker_seconds"].astype(float)))
    ends = dict(zip(rows["replication"].astype(int), rows["t_end"].astype(float)))
    elastic = run.params.loc[cell].get("elastic")
    moving = isinstance(elastic, str) and bool(elastic)
    samples = []
    for d in read_digests(run, cell):
        if d.replication in keep:
            cost, end = costs.get(d.replication), ends.get(d.replication)
            average = cost / end if moving and cost is not None and end else None
            samples.append(Sample(d.replication, workers, {}, steady, cost, average, digest=d))
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
