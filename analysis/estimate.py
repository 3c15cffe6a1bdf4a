"""Point estimates with confidence intervals across independent replications.

Replications of a cell are independent (separately seeded) runs, so one number per replication is
an i.i.d. sample and the Student t interval ``mean +/- t_{1-a/2, n-1} * s / sqrt(n)`` is the
textbook interval for its expectation (Law, *Simulation Modeling and Analysis*, 5th ed., 9.4.1).
Differences between two configurations use the paired t interval when the replications share
random numbers and Welch's interval otherwise. A ratio of means is not t-distributed, so its
interval comes from a percentile bootstrap over replications.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from analysis.student_t import t_quantile

__all__ = ["Estimate", "bootstrap_ratio", "difference", "mean_ci"]

#: Confidence level used throughout the analysis.
LEVEL = 0.95


@dataclass(frozen=True)
class Estimate:
    """A mean with its two-sided confidence interval.

    Attributes:
        mean: point estimate (``nan`` when there is no data).
        low: lower bound of the interval (``nan`` with fewer than two observations).
        high: upper bound.
        n: number of replications behind it.
        level: confidence level, e.g. 0.95.
    """

    mean: float
    low: float
    high: float
    n: int
    level: float = LEVEL

    @property
    def half_width(self) -> float:
        """Half the interval's width (``nan`` when there is no interval)."""
        return (self.high - self.low) / 2.0

    def contains(self, value: float) -> bool:
        """Whether ``value`` lies inside the interval (False when there is none)."""
        return bool(self.low <= value <= self.high)

    def format(self, digits: int = 3) -> str:
        """Render as ``mean ± half`` with ``digits`` significant digits."""
        if math.isnan(self.mean):
            return "n/a"
        if math.isnan(self.half_width):
            return f"{self.mean:.{digits}g}"
        half = 0.0 if self.half_width <= 1e-9 * abs(self.mean) else self.half_width
        return f"{self.mean:.{digits}g} ± {half:.2g}"


def mean_ci(values: np.ndarray | list[float], level: float = LEVEL) -> Estimate:
    """Student t confidence interval for the mean of i.i.d. replication values; NaNs are ignored.

    Args:
        values: one number per replication.
        level: confidence level in (0, 1).
    """
    x = np.asarray(values, dtype=np.float64)
    x = x[~np.isnan(x)]
    n = len(x)
    if n == 0:
        return Estimate(math.nan, math.nan, math.nan, 0, level)
    mean = float(x.mean())
    if n == 1:
        return Estimate(mean, math.nan, math.nan, 1, level)
    half = t_quantile(0.5 + level / 2.0, n - 1) * float(x.std(ddof=1)) / math.sqrt(n)
    return Estimate(mean, mean - half, mean + half, n, level)


def difference(a: np.ndarray, b: np.ndarray, *, paired: bool, level: float = LEVEL) -> Estimate:
    """Confidence interval for ``E[b] - E[a]``: paired t when ``paired``, else Welch's t.

    Args:
        a: replication values of the first configuration.
        b: replication values of the second; same length and order as ``a`` when ``paired``.
        paired: the replications share random numbers, so ``b[i] - a[i]`` are i.i.d.
        level: confidence level.

    Raises:
        ValueError: ``paired`` with arrays of different lengths.
    """
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    if paired:
        if len(a) != len(b):
            raise ValueError(f"paired difference needs equal lengths, got {len(a)} and {len(b)}")
        return mean_ci(b - a, level)
    return _welch(a[~np.isnan(a)], b[~np.isnan(b)], level)


def _welch(a: np.ndarray, b: np.ndarray, level: float) -> Estimate:
    """Welch's interval for ``E[b] - E[a]`` with Satterthwaite's degrees of freedom."""
    n = min(len(a), len(b))
    if n == 0:
        return Estimate(math.nan, math.nan, math.nan, 0, level)
    diff = float(b.mean() - a.mean())
    if n < 2:
        return Estimate(diff, math.nan, math.nan, n, level)
    va, vb = a.var(ddof=1) / len(a), b.var(ddof=1) / len(b)
    if va + vb == 0:
        return Estimate(diff, diff, diff, n, level)
    df = (va + vb) ** 2 / (va**2 / (len(a) - 1) + vb**2 / (len(b) - 1))
    half = t_quantile(0.5 + level / 2.0, df) * math.sqrt(va + vb)
    return Estimate(diff, diff - half, diff + half, n, level)


def bootstrap_ratio(
    a: np.ndarray, b: np.ndarray, *, paired: bool, level: float = LEVEL, resamples: int = 2000, seed: int = 0
) -> Estimate:
    """Percentile-bootstrap interval for ``mean(b) / mean(a)`` (ratios are not t-distributed).

    Replications are resampled jointly when ``paired`` (keeping each pair together), independently
    otherwise. The bootstrap is seeded, so a report is reproducible.

    Args:
        a: replication values of the first configuration (the denominator).
        b: replication values of the second (the numerator).
        paired: resample pairs jointly.
        level: confidence level.
        resamples: number of bootstrap resamples.
        seed: seed of the resampling generator.
    """
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    n = min(len(a), len(b))
    point = _ratio(b.mean(), a.mean()) if n else math.nan
    if n < 2:
        return Estimate(point, math.nan, math.nan, n, level)
    rng = np.random.default_rng(seed)
    ia = rng.integers(0, len(a), size=(resamples, len(a)))
    ib = ia if paired else rng.integers(0, len(b), size=(resamples, len(b)))
    with np.errstate(divide="ignore", invalid="ignore"):
        ratios = b[ib].mean(axis=1) / a[ia].mean(axis=1)
    ratios = ratios[np.isfinite(ratios)]
    if len(ratios) < resamples // 2:
        return Estimate(point, math.nan, math.nan, n, level)
    low, high = np.quantile(ratios, [0.5 - level / 2.0, 0.5 + level / 2.0])
    return Estimate(point, float(low), float(high), n, level)


def _ratio(num: float, den: float) -> float:
    """``num / den``, or ``nan`` when the denominator is zero."""
    return float(num / den) if den != 0 else math.nan
