"""Backlog growth: the slope of queue depth over time, its confidence interval, and a cell's verdict.

The depth recorded in ``depth/`` is a step function ``y(t)``: the number of items *waiting* (items
still queued at the end of a run are in it, so censored items count; items in service are not,
which shifts the level by at most the worker count and leaves the slope unchanged). Its growth
rate in one replication is the time-weighted least-squares slope over the arrival period
``[0, T]`` (``T`` = the last put):

    b = integral (t - T/2) y(t) dt / (T^3 / 12),

the same definition as ``backlog_slope`` in ``cells.parquet``. Replications are independent, so
the mean slope gets a Student t interval across them.

**Verdict rules.** Rows with data are the replications with status ``ok``, ``capped`` or
``lagged``; ``failed`` ones have none. Let ``lam = 1 / arrival_mean`` be the offered arrival rate
and ``delta = PRACTICAL * lam`` (1% of the arrival rate: a backlog that grows more slowly than that
gains fewer than 36 items per hour per item/s of traffic and is not a capacity problem). The
first rule that applies decides:

1. *failed*: no replication has data; the verdict gives the error.
2. *unreliable*: some replication is ``lagged``: a scaled or real clock fell behind real time
   (its mean timer lag exceeded 1% of min(arrival_mean, service_mean)), so the figures describe
   the machine more than the model. Never called stable or overloaded; the verdict gives the
   largest mean and maximum lag and how many replications lagged.
3. *overloaded* (hit the cap): some replication is ``capped``: its queue reached ``max_backlog``
   and it was stopped early. The slope shown is that of the data rows (over ``[0, t_end]``) and
   the verdict says how many replications hit the cap.
4. *throttled*: a bounded queue (``maxsize > 0``) whose pusher was blocked in ``put`` for a
   material part of the arrival period (``blocked_fraction``): with two or more replications of
   random inputs, the 95% interval of the blocked fraction has ``low > 0`` and mean ``>= PRACTICAL``;
   with one replication, or deterministic inputs, the measured fraction ``>= PRACTICAL`` (each
   replication's fraction is a fact of that run, not an estimate). A full bounded queue cannot
   grow, so its slope is ~0 whatever the load: the overload shows instead as an achieved arrival
   rate (``arrival_rate``) below the offered ``lam``; the verdict gives both.
5. The slope, with the 95% interval ``[low, high]`` of the mean slope:

   a. deterministic inputs (``arrival_cv == 0`` and ``service_cv == 0``): every replication is
      the same run, so the point value decides: *overloaded* iff the slope ``>= delta``, else
      *stable*;
   b. one replication (random inputs): *inconclusive (1 replication: no interval; use
      --replications 2 or more)*; the slope is still shown;
   c. every replication gave the same slope (a zero-width interval) with random inputs: that
      spread is not sampling noise and decides nothing: *inconclusive (replications identical:
      zero-width interval)*;
   d. *overloaded* iff ``low > 0`` and the mean slope ``>= delta``; *stable* iff ``high < delta``;
      *inconclusive* otherwise (the interval straddles the threshold).

6. A bounded queue that rule 5 calls *stable* but whose blocked fraction is not confidently below
   ``PRACTICAL`` (interval ``high >= PRACTICAL``) is *inconclusive*: it may be stable only because
   the pusher was held back.

A cell whose arrival process is not stationary (``stationary`` false: a schedule, a daily cycle, a
trace) has no steady state and no single growth rate: after rules 1-3 its verdict is
*non-stationary*, with the slope shown for information; its figures over time
(:mod:`analysis.windows`) say what the backlog does.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from analysis.estimate import Estimate, mean_ci
from analysis.load import data_rows

__all__ = [
    "DEPTH_TARGET", "LAG_FRACTION", "PRACTICAL", "Growth", "Throttling", "deterministic", "growth", "identical",
    "sample_depth", "stationary", "step_slope", "throttling", "verdict",
]  # fmt: skip

#: The practical threshold for growth, as a fraction of the arrival rate; also the blocked
#: fraction of the arrival period above which a bounded queue's pusher counts as throttled.
PRACTICAL = 0.01

#: The depth whose time of arrival an overloaded verdict reports.
DEPTH_TARGET = 1000

#: A replication is ``lagged`` when its mean clock lag exceeds this fraction of
#: min(arrival_mean, service_mean) (decided by the runner; shown in the verdict).
LAG_FRACTION = 0.01

_ONE_REPLICATION = "1 replication: no interval; use --replications 2 or more"
_IDENTICAL = "replications identical: zero-width interval"


@dataclass(frozen=True)
class Throttling:
    """How much a bounded queue held its pusher back.

    Attributes:
        blocked: fraction of the arrival period the pusher spent blocked in ``put``, with its CI.
        achieved: achieved arrival rate ``(n_put - 1) / t_last_put``, items/s, with its CI.
        offered: offered arrival rate ``1 / arrival_mean``, items/s.
        state: ``throttled`` (rule 4 of the module docstring), ``free`` (the blocked fraction is
            below :data:`PRACTICAL`: confidently, or as a fact of one run) or ``undecided``.
    """

    blocked: Estimate
    achieved: Estimate
    offered: float
    state: str

    def describe(self) -> str:
        """E.g. ``pusher blocked 60% of the arrival period; achieved 0.4 ± 0.01 of 1 items/s offered``."""
        blocked = self.blocked.mean
        spread = "" if math.isnan(self.blocked.half_width) else f" ± {100 * self.blocked.half_width:.2g}%"
        return (f"pusher blocked {100 * blocked:.3g}%{spread} of the arrival period; "
                f"achieved {self.achieved.format()} of {self.offered:.3g} items/s offered")  # fmt: skip


@dataclass(frozen=True)
class Growth:
    """Backlog growth of one cell and its verdict.

    Attributes:
        slope: mean slope across the replications with data, with its CI, items/s.
        verdict: ``stable``, ``overloaded``, ``throttled``, ``inconclusive``, ``unreliable``, ``failed`` or
            ``non-stationary``.
        threshold: the practical threshold ``delta`` used, items/s.
        time_to_target: model seconds from empty to a depth of :data:`DEPTH_TARGET` at the measured
            rate (an Estimate whose bounds come from the slope's bounds), or None unless overloaded.
        reason: why, in words (empty for a plain verdict), e.g. the reason a cell is inconclusive.
        throttling: the pusher's blocking on a bounded queue (None for an unbounded queue).
    """

    slope: Estimate
    verdict: str
    threshold: float
    time_to_target: Estimate | None
    reason: str = ""
    throttling: Throttling | None = None

    def describe(self) -> str:
        """The verdict with its reason in parentheses, e.g. ``inconclusive (1 replication: ...)``."""
        return f"{self.verdict} ({self.reason})" if self.reason else self.verdict


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
    """Values of the depth step function at the times ``grid`` (0 before the first event and
    everywhere when there is no event).

    Args:
        t: event times in order.
        depth: depth right after each event.
        grid: times to evaluate at.
    """
    grid = np.asarray(grid, dtype=np.float64)
    if len(t) == 0:
        return np.zeros(len(grid))
    index = np.searchsorted(np.asarray(t), grid, side="right") - 1
    values = np.asarray(depth, dtype=np.float64)[np.maximum(index, 0)]
    return np.where(index >= 0, values, 0.0)


def identical(values: np.ndarray) -> bool:
    """Whether two or more values (NaNs ignored) are all the same, to 1e-12 relative: a zero-width interval.

    Args:
        values: one number per replication.
    """
    x = np.asarray(values, dtype=np.float64)
    x = x[~np.isnan(x)]
    return len(x) >= 2 and float(np.ptp(x)) <= 1e-12 * max(float(np.max(np.abs(x))), 1e-300)


def stationary(params: Mapping[str, Any]) -> bool:
    """Whether a cell's arrival process is stationary (the ``stationary`` parameter; True where absent).

    Args:
        params: the cell's parameters.
    """
    value = params.get("stationary")
    return True if value is None or pd.isna(value) else bool(value)


def deterministic(params: Mapping[str, Any]) -> bool:
    """Whether a cell's inputs are deterministic: ``arrival_cv == 0`` and ``service_cv == 0``.

    Args:
        params: the cell's parameters.
    """
    return all(_number(params.get(key)) == 0.0 for key in ("arrival_cv", "service_cv"))


def _number(value: float | None) -> float:
    """A parameter as a float (NaN when missing)."""
    return math.nan if value is None or pd.isna(value) else float(value)


def growth(slopes: np.ndarray, arrival_rate: float, practical: float = PRACTICAL, *, fixed: bool = False) -> Growth:
    """Verdict on backlog growth from per-replication slopes (rule 5 of the module docstring).

    Args:
        slopes: one least-squares slope per replication, items/s.
        arrival_rate: items/s, sets the practical threshold.
        practical: the threshold as a fraction of the arrival rate.
        fixed: the inputs are deterministic, so every replication is the same run and the point
            value decides.
    """
    est = mean_ci(slopes)
    delta = practical * arrival_rate
    if est.n == 0:
        return Growth(est, "inconclusive", delta, None, "no data")
    if fixed:
        return _decided(est, delta, est.mean >= delta, est.mean < delta)
    if est.n == 1:
        return Growth(est, "inconclusive", delta, None, _ONE_REPLICATION)
    if identical(slopes):
        return Growth(est, "inconclusive", delta, None, _IDENTICAL)
    decided = _decided(est, delta, est.low > 0 and est.mean >= delta, est.high < delta)
    if decided.verdict == "inconclusive":
        return Growth(est, "inconclusive", delta, None, f"interval straddles the {practical:.0%} threshold")
    return decided


def _decided(est: Estimate, delta: float, overloaded: bool, stable: bool) -> Growth:
    """The Growth of a decided (or undecided) slope."""
    if overloaded:
        return Growth(est, "overloaded", delta, _time_to(est))
    return Growth(est, "stable" if stable else "inconclusive", delta, None)


def throttling(
    blocked: np.ndarray, achieved: np.ndarray, offered: float, practical: float = PRACTICAL, *, fixed: bool = False
) -> Throttling:
    """How much a bounded queue held its pusher back (rule 4 of the module docstring).

    Args:
        blocked: ``blocked_fraction`` per replication.
        achieved: ``arrival_rate`` per replication, items/s.
        offered: ``1 / arrival_mean``, items/s.
        practical: the blocked fraction that counts as material.
        fixed: the inputs are deterministic (the point value decides).
    """
    est = mean_ci(blocked)
    rate = mean_ci(achieved)
    if est.n == 0:
        return Throttling(est, rate, offered, "undecided")
    if fixed or est.n == 1:
        state = "throttled" if est.mean >= practical else "free"
    elif est.low > 0 and est.mean >= practical:
        state = "throttled"
    else:
        state = "free" if est.high < practical else "undecided"
    return Throttling(est, rate, offered, state)


def verdict(rows: pd.DataFrame, params: Mapping[str, Any], practical: float = PRACTICAL) -> Growth:
    """The verdict of one cell from all its ``cells.parquet`` rows (rules 1-6 of the module docstring).

    Args:
        rows: the cell's rows, every status.
        params: the cell's parameters (``arrival_mean``, ``arrival_cv``, ``service_cv``, ``maxsize``, ...).
        practical: the practical threshold as a fraction of the arrival rate.
    """
    data = data_rows(rows)
    offered, fixed = 1.0 / float(params["arrival_mean"]), deterministic(params)
    slope = growth(data["backlog_slope"].to_numpy(dtype=float), offered, practical, fixed=fixed)
    bounded = int(params.get("maxsize") or 0) > 0
    held = None
    if bounded and len(data):
        held = throttling(data["blocked_fraction"].to_numpy(dtype=float), data["arrival_rate"].to_numpy(dtype=float),
                          offered, practical, fixed=fixed)  # fmt: skip
    status = rows["status"]
    if data.empty:
        return _with(slope, "failed", _failure(rows), held)
    if (status == "lagged").any():
        return _with(slope, "unreliable", _lag(data, params), held)
    if (status == "capped").any():
        note = f"hit the backlog cap (max_backlog) in {int((status == 'capped').sum())} of {len(data)} replications"
        return Growth(slope.slope, "overloaded", slope.threshold, _time_to(slope.slope), note, held)
    if not stationary(params):
        return _with(slope, "non-stationary", "the arrival rate changes over time: no steady state or single "
                     "slope; see the figures per window", held)  # fmt: skip
    if held is not None and held.state == "throttled":
        return _with(slope, "throttled", held.describe(), held)
    if held is not None and slope.verdict == "stable" and held.state == "undecided":
        return _with(slope, "inconclusive", f"bounded queue: {held.describe()}; not confidently below "
                     f"{practical:.0%}", held)  # fmt: skip
    return _with(slope, slope.verdict, slope.reason, held)


def _with(slope: Growth, word: str, reason: str, held: Throttling | None) -> Growth:
    """``slope`` with another verdict and reason (a time to the target only when overloaded)."""
    target = slope.time_to_target if word == "overloaded" else None
    return Growth(slope.slope, word, slope.threshold, target, reason, held)


def _failure(rows: pd.DataFrame) -> str:
    """Why a cell has no data: its (first) error."""
    errors = rows["error"].dropna() if "error" in rows else pd.Series(dtype=object)
    first = str(errors.iloc[0]) if len(errors) else "no error recorded"
    return f"{len(rows)} of {len(rows)} replications failed: {first}"


def _lag(data: pd.DataFrame, params: Mapping[str, Any]) -> str:
    """The lag behind an ``unreliable`` verdict."""
    lagged = data[data["status"] == "lagged"]
    limit = LAG_FRACTION * min(float(params["arrival_mean"]), float(params["service_mean"]))
    mean, worst = (_seconds(lagged[column].max()) for column in ("clock_lag_mean", "clock_lag_max"))
    return (f"clock fell behind real time in {len(lagged)} of {len(data)} replications: timers late by "
            f"{mean} on average (limit {limit:.3g} s), at worst {worst}; figures unreliable")  # fmt: skip


def _seconds(value: float | None) -> str:
    """A lag in seconds, ``unknown`` when it was not recorded."""
    return "unknown" if value is None or pd.isna(value) else f"{float(value):.3g} s"


def _time_to(slope: Estimate) -> Estimate:
    """Time to reach :data:`DEPTH_TARGET` from empty at the measured rate, with bounds (NaN without an interval)."""
    inverse = lambda v: math.nan if math.isnan(v) else (DEPTH_TARGET / v if v > 0 else math.inf)  # noqa: E731
    return Estimate(inverse(slope.mean), inverse(slope.high), inverse(slope.low), slope.n, slope.level)
