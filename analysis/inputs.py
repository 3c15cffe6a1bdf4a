"""Did a cell's draws look like its specs? A check of the measured mean inter-arrival and service time.

A spec names a distribution and so a mean; a run draws a finite sample from it. For light tails
the sample mean is close to the spec's mean, within its sampling error. For heavy tails it need
not be: ``pareto:2.5:1.0001`` has mean 2.5 s, but almost all of that mean sits in draws so rare
that no feasible sample holds one, and sample means come out near 0.002 s. Every figure of such
a cell (load, waits, verdict) then describes the sample, not the spec, and theory computed from
the spec's mean does not apply. Version 2 of ``cells.parquet`` records, per replication, the mean
and SD of the inter-arrival times the pusher actually slept (``arrival_obs_mean``,
``arrival_obs_sd``: ``n_put - 1`` draws) and of the service times of finished items
(``service_obs_mean``, ``service_obs_sd``: ``n_done`` draws).

**Rule.** For each quantity, the sampling interval of the measured mean is

* with two or more replications with data: the 99% Student t interval of the per-replication
  ``*_obs_mean`` (replications are independent);
* with one: ``obs_mean ± z(0.995) · obs_sd / sqrt(n)`` (the normal approximation for one sample);

widened by :data:`ROUNDING` = 1e-9 s on each side, because the clock rounds every delay to whole
nanoseconds (so ``const:0.3333333333``, whose draws are all 0.333333333 s, is no false alarm).
A warning is raised when the spec's mean lies outside. At 99%, a light-tailed input raises a false
warning in about 1% of checks (cells that share arrival and service specs share their draws, so
their checks are not independent); a heavy tail like the one above raises one in nearly every run.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from analysis.estimate import Estimate, mean_ci
from analysis.student_t import normal_quantile

__all__ = ["CHECK_LEVEL", "InputCheck", "ROUNDING", "input_checks"]

#: Confidence level of the sampling interval of a measured mean.
CHECK_LEVEL = 0.99

#: Widening of every interval, s: the clock rounds each delay to whole nanoseconds.
ROUNDING = 1e-9

#: (quantity, spec column, spec mean column, measured prefix, column counting the draws)
_QUANTITIES = (
    ("inter-arrival time", "arrival", "arrival_mean", "arrival_obs", "n_put"),
    ("service time", "service", "service_mean", "service_obs", "n_done"),
)


@dataclass(frozen=True)
class InputCheck:
    """The measured mean of one input of one cell against its spec's mean.

    Attributes:
        cell: the cell id.
        label: the cell's parameters in words, e.g. ``workers=2 arrival=exp:1 service=exp:1.5 maxsize=0``.
        quantity: ``inter-arrival time`` or ``service time``.
        spec: the spec string.
        expected: the spec's mean, s.
        measured: the measured mean with its sampling interval (already widened by :data:`ROUNDING`).
        basis: what the interval rests on, e.g. ``99% t interval over 5 replications``.
    """

    cell: int
    label: str
    quantity: str
    spec: str
    expected: float
    measured: Estimate
    basis: str

    @property
    def ok(self) -> bool:
        """Whether the spec's mean lies inside the measured mean's interval (True when there is none)."""
        m = self.measured
        return math.isnan(m.low) or m.low <= self.expected <= m.high

    def warning(self) -> str:
        """One line naming the cell, the quantity, the spec, the measured mean with its interval and the spec's mean."""
        m = self.measured
        why = ("the draws fall short of the spec's mean (a heavy tail?)" if m.high < self.expected
               else "the draws exceed the spec's mean (a heavy tail's rare large value?)")  # fmt: skip
        return (f"cell {self.cell} ({self.label}): {self.quantity} {self.spec}: measured mean {m.mean:.4g} s "
                f"({self.basis}: {m.low:.4g} to {m.high:.4g} s) but the spec's mean is {self.expected:.4g} s; "
                f"{why}, so this cell's figures describe the sample, not the spec")  # fmt: skip


def _label(params: Mapping[str, Any]) -> str:
    """The cell's axes as ``key=value`` words."""
    return " ".join(f"{k}={params[k]}" for k in ("workers", "arrival", "service", "maxsize") if k in params)


def _interval(means: np.ndarray, sds: np.ndarray, draws: np.ndarray) -> tuple[Estimate, str]:
    """The sampling interval of the measured mean (module docstring) and what it rests on."""
    keep = ~np.isnan(means)
    means, sds, draws = means[keep], sds[keep], draws[keep]
    if len(means) >= 2:
        est = mean_ci(means, CHECK_LEVEL)
        basis = f"{CHECK_LEVEL:.0%} t interval over {len(means)} replications"
    elif len(means) == 1 and not math.isnan(sds[0]) and draws[0] >= 2:
        half = normal_quantile(0.5 + CHECK_LEVEL / 2) * float(sds[0]) / math.sqrt(float(draws[0]))
        est = Estimate(float(means[0]), float(means[0]) - half, float(means[0]) + half, 1, CHECK_LEVEL)
        basis = f"{CHECK_LEVEL:.0%} normal interval over {int(draws[0])} draws of 1 replication"
    else:
        return Estimate(float(means[0]) if len(means) else math.nan, math.nan, math.nan, len(means), CHECK_LEVEL), ""
    return Estimate(est.mean, est.low - ROUNDING, est.high + ROUNDING, est.n, CHECK_LEVEL), basis


def input_checks(cell: int, rows: pd.DataFrame, params: Mapping[str, Any]) -> list[InputCheck]:
    """The checks of one cell's inter-arrival and service means (rule in the module docstring).

    Args:
        cell: the cell id.
        rows: the cell's rows of ``cells.parquet`` that hold data; ``lagged`` ones are left out (a
            clock that fell behind stretches every measured delay: its own verdict says so).
        params: the cell's parameters.
    """
    if "status" in rows:
        rows = rows[rows["status"] != "lagged"]
    checks = []
    for quantity, spec, mean, prefix, count in _QUANTITIES:
        draws = rows[count].to_numpy(dtype=float) - (1 if count == "n_put" else 0)
        means, sds = rows[f"{prefix}_mean"].to_numpy(dtype=float), rows[f"{prefix}_sd"].to_numpy(dtype=float)
        measured, basis = _interval(means, sds, draws)
        checks.append(InputCheck(int(cell), _label(params), quantity, str(params[spec]),
                                 float(params[mean]), measured, basis))  # fmt: skip
    return checks
