"""Student t and normal quantiles, computed here so the analysis needs no scipy.

The t distribution function is written with the regularized incomplete beta function,
``F(t; v) = 1 - I_{v/(v+t^2)}(v/2, 1/2) / 2`` for ``t >= 0`` (Abramowitz & Stegun 26.7.1), and
``I_x(a, b)`` is evaluated by its continued fraction with the modified Lentz method (Numerical
Recipes, 3rd ed., section 6.4). Quantiles are found by bisection, which is slow but exact to
double precision and needs no starting guess; results are cached.
"""

from __future__ import annotations

import math
from functools import lru_cache

__all__ = ["incomplete_beta", "normal_quantile", "t_cdf", "t_quantile"]

_EPS = 1e-15
_TINY = 1e-300


def incomplete_beta(x: float, a: float, b: float) -> float:
    """Regularized incomplete beta function ``I_x(a, b)``.

    Args:
        x: point in [0, 1].
        a: first shape parameter, > 0.
        b: second shape parameter, > 0.

    Raises:
        ValueError: ``x`` outside [0, 1] or a shape parameter not positive.
    """
    if not 0.0 <= x <= 1.0 or a <= 0 or b <= 0:
        raise ValueError(f"incomplete_beta needs 0<=x<=1, a>0, b>0; got x={x}, a={a}, b={b}")
    if x in (0.0, 1.0):
        return x
    log_front = math.lgamma(a + b) - math.lgamma(a) - math.lgamma(b) + a * math.log(x) + b * math.log1p(-x)
    if x < (a + 1.0) / (a + b + 2.0):
        return math.exp(log_front) * _beta_fraction(x, a, b) / a
    return 1.0 - math.exp(log_front) * _beta_fraction(1.0 - x, b, a) / b


def _beta_fraction(x: float, a: float, b: float) -> float:
    """Continued fraction of the incomplete beta function (modified Lentz)."""
    c, d = 1.0, 1.0 - (a + b) * x / (a + 1.0)
    d = 1.0 / (d if abs(d) > _TINY else _TINY)
    result = d
    for m in range(1, 10_000):
        for num in _beta_terms(x, a, b, m):
            d = 1.0 + num * d
            d = 1.0 / (d if abs(d) > _TINY else _TINY)
            c = 1.0 + num / c
            c = c if abs(c) > _TINY else _TINY
            result *= d * c
        if abs(d * c - 1.0) < _EPS:
            break
    return result


def _beta_terms(x: float, a: float, b: float, m: int) -> tuple[float, float]:
    """The even and odd numerators of step ``m`` of the continued fraction."""
    even = m * (b - m) * x / ((a + 2 * m - 1) * (a + 2 * m))
    odd = -(a + m) * (a + b + m) * x / ((a + 2 * m) * (a + 2 * m + 1))
    return even, odd


def t_cdf(t: float, df: float) -> float:
    """Distribution function of Student's t with ``df`` degrees of freedom (real ``df`` allowed).

    Args:
        t: the point.
        df: degrees of freedom, > 0; ``math.inf`` gives the standard normal.

    Raises:
        ValueError: ``df`` not positive.
    """
    if df <= 0:
        raise ValueError(f"t_cdf needs df > 0, got {df}")
    if math.isinf(df):
        return 0.5 * math.erfc(-t / math.sqrt(2.0))
    tail = 0.5 * incomplete_beta(df / (df + t * t), df / 2.0, 0.5)
    return 1.0 - tail if t >= 0 else tail


@lru_cache(maxsize=1024)
def t_quantile(p: float, df: float) -> float:
    """Quantile of Student's t: the ``t`` with ``t_cdf(t, df) == p``, e.g. ``t_quantile(0.975, 4) = 2.7764``.

    Args:
        p: probability in (0, 1).
        df: degrees of freedom, > 0 (real values allowed, as Welch's test needs); ``math.inf``
            gives the normal quantile.

    Raises:
        ValueError: ``p`` outside (0, 1) or ``df`` not positive.
    """
    if not 0.0 < p < 1.0:
        raise ValueError(f"t_quantile needs 0 < p < 1, got {p}")
    if df <= 0:
        raise ValueError(f"t_quantile needs df > 0, got {df}")
    if p < 0.5:
        return -t_quantile(1.0 - p, df)
    low, high = 0.0, 1.0
    while t_cdf(high, df) < p:
        low, high = high, high * 2.0
    for _ in range(200):
        mid = 0.5 * (low + high)
        if mid in (low, high):
            break
        low, high = (mid, high) if t_cdf(mid, df) < p else (low, mid)
    return 0.5 * (low + high)


def normal_quantile(p: float) -> float:
    """Quantile of the standard normal distribution, e.g. ``normal_quantile(0.975) = 1.95996``.

    Args:
        p: probability in (0, 1).

    Raises:
        ValueError: ``p`` outside (0, 1).
    """
    return t_quantile(p, math.inf)
