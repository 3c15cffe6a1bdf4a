"""Backlog growth: the slope of queue depth over time, its confidence interval and a verdict.

The depth recorded in ``depth/`` is a step function ``y(t)``: the number of items *waiting* (items
still queued at the end of a run are in it, so censored items count; items in service are not,
which shifts the level by at most the worker count and leaves the slope unchanged). Its growth
rate in one replication is the time-weighted least-squares slope over the arrival period
``[0, T]`` (``T`` = the last put):

    b = integral (t - T/2) y(t) dt / (T^3 / 12),

the same definition as ``backlog_slope`` in ``cells.parquet``. Replications are independent, so
the mean slope gets a Student t interval across them.

**Verdict rule.** Let ``lam`` be the arrival rate and ``delta = PRACTICAL * lam`` (by default 1%
of the arrival rate: a backlog that grows more slowly than that gains fewer than 36 items per hour
per item/s of traffic and is not a capacity problem). With the 95% interval ``[low, high]``:

* *overloaded* iff ``low > 0`` and the mean slope ``>= delta``: growth is real and material;
* *stable* iff ``high < delta``: any growth is confidently below the practical threshold;
* *inconclusive* otherwise (including a cell with a single replication, which has no interval).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from analysis.estimate import Estimate, mean_ci

__all__ = ["DEPTH_TARGET", "PRACTICAL", "Growth", "growth", "sample_depth", "step_slope"]

#: The practical threshold for growth, as a fraction of the arrival rate.
PRACTICAL = 0.01

#: The depth whose time of arrival an overloaded verdict reports.
DEPTH_TARGET = 1000


@dataclass(frozen=True)
class Growth:
    """Backlog growth of one cell.

    Attributes:
        slope: mean slope across replications with its CI, items/s.
        verdict: ``stable``, ``overloaded`` or ``inconclusive``.
        threshold: the practical threshold ``delta`` used, items/s.
        time_to_target: model seconds from empty to a depth of :data:`DEPTH_TARGET` at the measured
            rate (an Estimate whose bounds come from the slope's bounds), or None unless overloaded.
    """

    slope: Estimate
    verdict: str
    threshold: float
    time_to_target: Estimate | None


def step_slope(t: np.ndarray, depth: np.ndarray, end: float) -> float:
    """Time-weighted least-squares slope of a depth step function over ``[0, end]``, items/s.

    Args:
        t: event times in order; the depth before the first is 0.
        depth: depth right after each event.
        end: end of the fitting window (the last put), > 0.

    Raises:
        ValueError: ``end`` not positive.
    """
    if end <= 0:
        raise ValueError(f"step_slope needs end > 0, got {end}")
    t, y = np.asarray(t, dtype=np.float64), np.asarray(depth, dtype=np.float64)
    keep = t <= end
    starts = np.concatenate([[0.0], t[keep]]) - end / 2.0
    levels = np.concatenate([[0.0], y[keep]])
    stops = np.append(starts[1:], end / 2.0)
    return float(np.sum(levels * (stops**2 - starts**2)) / 2.0 / (end**3 / 12.0))


def sample_depth(t: np.ndarray, depth: np.ndarray, grid: np.ndarray) -> np.ndarray:
    """Values of the depth step function at the times ``grid`` (0 before the first event).

    Args:
        t: event times in order.
        depth: depth right after each event.
        grid: times to evaluate at.
    """
    index = np.searchsorted(np.asarray(t), np.asarray(grid), side="right") - 1
    values = np.asarray(depth, dtype=np.float64)[np.maximum(index, 0)]
    return np.where(index >= 0, values, 0.0)


def growth(slopes: np.ndarray, arrival_rate: float, practical: float = PRACTICAL) -> Growth:
    """Verdict on backlog growth from per-replication slopes (rule in the module docstring).

    Args:
        slopes: one least-squares slope per replication, items/s.
        arrival_rate: items/s, sets the practical threshold.
        practical: the threshold as a fraction of the arrival rate.
    """
    est = mean_ci(slopes)
    delta = practical * arrival_rate
    if est.n >= 2 and est.low > 0 and est.mean >= delta:
        return Growth(est, "overloaded", delta, _time_to(est))
    if est.n >= 2 and est.high < delta:
        return Growth(est, "stable", delta, None)
    return Growth(est, "inconclusive", delta, None)


def _time_to(slope: Estimate) -> Estimate:
    """Time to reach :data:`DEPTH_TARGET` from empty at the measured rate, with bounds."""
    inverse = lambda v: DEPTH_TARGET / v if v > 0 else math.inf  # noqa: E731
    return Estimate(inverse(slope.mean), inverse(slope.high), inverse(slope.low), slope.n, slope.level)
