"""Queueing theory to set beside the measurements: exact formulas and labelled approximations.

Notation: arrival rate ``lam`` (items/s), mean service time ``mean_s`` (s), ``c`` workers, offered
load ``a = lam * mean_s`` (Erlangs), utilisation ``rho = a / c``, squared coefficients of
variation ``scv_a`` (inter-arrival) and ``scv_s`` (service). Every steady-state formula needs
``rho < 1`` and describes a FIFO queue with unlimited room; ``Wq`` is the mean wait in the queue,
``W = Wq + mean_s`` the mean sojourn, and ``Lq = lam * Wq`` and ``L = lam * W`` follow by Little's law.

Sources: Gross, Shortle, Thompson & Harris, *Fundamentals of Queueing Theory*, 4th ed. (GSTH);
Allen, *Probability, Statistics and Queueing Theory*, 2nd ed. (1990); Kingman (1961),
"The single server queue in heavy traffic", Proc. Camb. Phil. Soc. 57.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

__all__ = [
    "Prediction", "allen_cunneen", "erlang_c", "fluid_slope", "kendall", "kingman", "md1", "mg1",
    "mm1", "mmc", "mmc_wait_quantile", "mmc_wait_tail", "predict", "stable_workers", "wait_quantile",
]  # fmt: skip


@dataclass(frozen=True)
class Prediction:
    """What a queueing model predicts for one configuration.

    Attributes:
        model: the model's name, e.g. ``"M/M/2 (Erlang C)"``.
        exact: True for an exact steady-state result, False for an approximation.
        rho: utilisation ``lam * mean_s / c``.
        wq: mean wait in queue, s.
        w: mean sojourn, s.
        lq: mean number waiting.
        p_wait: probability that an arriving item waits (``nan`` where the model does not give it).
    """

    model: str
    exact: bool
    rho: float
    wq: float
    w: float
    lq: float
    p_wait: float = math.nan


def _positive(lam: float, mean_s: float, c: int) -> None:
    """Raise ValueError unless ``lam > 0``, ``mean_s > 0`` and ``c >= 1``."""
    if lam <= 0 or mean_s <= 0 or c < 1:
        raise ValueError(f"need lam > 0, mean_s > 0, c >= 1; got lam={lam}, mean_s={mean_s}, c={c}")


def _check(lam: float, mean_s: float, c: int) -> float:
    """Validate the inputs of a steady-state formula and return ``rho``."""
    _positive(lam, mean_s, c)
    rho = lam * mean_s / c
    if rho >= 1:
        raise ValueError(f"no steady state: rho = {rho:.4g} >= 1 (use fluid_slope)")
    return rho


def _prediction(model: str, exact: bool, lam: float, mean_s: float, rho: float, wq: float, p_wait: float):
    """Fill in ``W`` and ``Lq`` from ``Wq`` by ``W = Wq + E[S]`` and Little's law."""
    return Prediction(model, exact, rho, wq, wq + mean_s, lam * wq, p_wait)


def erlang_c(c: int, a: float) -> float:
    """Erlang C: probability that an arrival waits in an M/M/c queue with offered load ``a``.

    ``C(c, a) = c B / (c - a (1 - B))`` with Erlang B from the stable recurrence
    ``B_0 = 1``, ``B_k = a B_{k-1} / (k + a B_{k-1})`` (GSTH section 2.3; e.g. ``C(2, 1.8) = 0.8526``).

    Args:
        c: number of servers, >= 1.
        a: offered load ``lam / mu`` in Erlangs, ``0 < a < c``.

    Raises:
        ValueError: ``a`` not in (0, c) or ``c < 1``.
    """
    if c < 1 or not 0 < a < c:
        raise ValueError(f"erlang_c needs c >= 1 and 0 < a < c; got c={c}, a={a}")
    b = 1.0
    for k in range(1, c + 1):
        b = a * b / (k + a * b)
    return c * b / (c - a * (1.0 - b))


def mmc(lam: float, mean_s: float, c: int) -> Prediction:
    """M/M/c, exact: ``P(wait) = C(c, a)``, ``Wq = C(c, a) / (c mu - lam)`` (GSTH 2.3).

    Assumes Poisson arrivals, exponential service, ``c`` identical servers, FIFO, ``rho < 1``.
    E.g. ``lam = 1.8, mu = 1, c = 2``: ``P(wait) = 0.8526``, ``Wq = 4.263``.

    Args:
        lam: arrival rate, items/s.
        mean_s: mean service time ``1 / mu``, s.
        c: number of workers.

    Raises:
        ValueError: bad inputs or ``rho >= 1``.
    """
    rho = _check(lam, mean_s, c)
    p_wait = erlang_c(c, lam * mean_s)
    wq = p_wait / (c / mean_s - lam)
    name = "M/M/1" if c == 1 else f"M/M/{c} (Erlang C)"
    return _prediction(name, True, lam, mean_s, rho, wq, p_wait)


def mm1(lam: float, mean_s: float) -> Prediction:
    """M/M/1, exact: ``Wq = rho / (mu - lam)``, ``P(wait) = rho`` (GSTH 2.2).

    Assumes Poisson arrivals, exponential service, one server, FIFO, ``rho < 1``.

    Args:
        lam: arrival rate, items/s.
        mean_s: mean service time, s.

    Raises:
        ValueError: bad inputs or ``rho >= 1``.
    """
    return mmc(lam, mean_s, 1)


def mg1(lam: float, mean_s: float, scv_s: float) -> Prediction:
    """M/G/1, exact (Pollaczek-Khinchine): ``Wq = rho E[S] (1 + cs^2) / (2 (1 - rho))``, ``P(wait) = rho``.

    Assumes Poisson arrivals, i.i.d. general service with finite variance, one server, FIFO,
    ``rho < 1`` (GSTH 5.1.1).

    Args:
        lam: arrival rate, items/s.
        mean_s: mean service time, s.
        scv_s: squared coefficient of variation of the service time.

    Raises:
        ValueError: bad inputs or ``rho >= 1``.
    """
    rho = _check(lam, mean_s, 1)
    wq = rho * mean_s * (1.0 + scv_s) / (2.0 * (1.0 - rho))
    name = "M/D/1" if scv_s == 0 else "M/M/1" if scv_s == 1 else "M/G/1 (Pollaczek-Khinchine)"
    return _prediction(name, True, lam, mean_s, rho, wq, rho)


def md1(lam: float, d: float) -> Prediction:
    """M/D/1, exact: ``Wq = rho d / (2 (1 - rho))`` (Pollaczek-Khinchine with ``cs^2 = 0``; GSTH 5.1.1).

    Assumes Poisson arrivals, constant service time ``d``, one server, FIFO, ``rho < 1``.

    Args:
        lam: arrival rate, items/s.
        d: the constant service time, s.

    Raises:
        ValueError: bad inputs or ``rho >= 1``.
    """
    return mg1(lam, d, 0.0)


def kingman(lam: float, mean_s: float, scv_a: float, scv_s: float) -> Prediction:
    """G/G/1, approximate (Kingman): ``Wq ~ rho / (1 - rho) * (ca^2 + cs^2) / 2 * E[S]``.

    Exact for M/G/1, asymptotically exact as ``rho -> 1`` (Kingman 1961); assumes renewal arrivals,
    i.i.d. service, one server, FIFO, ``rho < 1``.

    Args:
        lam: arrival rate, items/s.
        mean_s: mean service time, s.
        scv_a: squared CV of inter-arrival times.
        scv_s: squared CV of service times.

    Raises:
        ValueError: bad inputs or ``rho >= 1``.
    """
    rho = _check(lam, mean_s, 1)
    wq = rho / (1.0 - rho) * (scv_a + scv_s) / 2.0 * mean_s
    return _prediction("G/G/1 (Kingman, approx.)", False, lam, mean_s, rho, wq, math.nan)


def allen_cunneen(lam: float, mean_s: float, c: int, scv_a: float, scv_s: float) -> Prediction:
    """G/G/c, approximate (Allen-Cunneen): ``Wq ~ Wq(M/M/c) * (ca^2 + cs^2) / 2``; no ``P(wait)``.

    Exact for M/M/c; good for moderate variability and ``rho`` not small (Allen 1990, eq. 6.102).
    Assumes renewal arrivals, i.i.d. service, ``c`` identical servers, FIFO, ``rho < 1``.

    Args:
        lam: arrival rate, items/s.
        mean_s: mean service time, s.
        c: number of workers.
        scv_a: squared CV of inter-arrival times.
        scv_s: squared CV of service times.

    Raises:
        ValueError: bad inputs or ``rho >= 1``.
    """
    base = mmc(lam, mean_s, c)
    wq = base.wq * (scv_a + scv_s) / 2.0
    return _prediction(f"G/G/{c} (Allen-Cunneen, approx.)", False, lam, mean_s, base.rho, wq, math.nan)


def mmc_wait_tail(lam: float, mean_s: float, c: int, t: float) -> float:
    """M/M/c, exact: ``P(W > t) = C(c, a) exp(-(c mu - lam) t)`` for ``t >= 0`` (GSTH 2.3).

    Args:
        lam: arrival rate, items/s.
        mean_s: mean service time ``1 / mu``, s.
        c: number of workers.
        t: time, s (>= 0).

    Raises:
        ValueError: bad inputs or ``rho >= 1``.
    """
    _check(lam, mean_s, c)
    return erlang_c(c, lam * mean_s) * math.exp(-(c / mean_s - lam) * t)


def mmc_wait_quantile(lam: float, mean_s: float, c: int, q: float) -> float:
    """M/M/c, exact: the ``q``-quantile of the steady-state wait, ``inf {t : P(W <= t) >= q}``:
    0 when ``C(c, a) <= 1 - q`` (at least a share ``q`` of items do not wait), else
    ``ln(C(c, a) / (1 - q)) / (c mu - lam)``. E.g. ``lam = 1, mu = 0.4, c = 3``: p99 = 21.26 s.

    Args:
        lam: arrival rate, items/s.
        mean_s: mean service time ``1 / mu``, s.
        c: number of workers.
        q: level in (0, 1).

    Raises:
        ValueError: bad inputs, ``rho >= 1`` or ``q`` outside (0, 1).
    """
    return wait_quantile(lam, mean_s, c, q, 1.0, 1.0)


def wait_quantile(lam: float, mean_s: float, c: int, q: float, scv_a: float, scv_s: float) -> float:
    """G/G/c, approximate: the ``q``-quantile of the steady-state wait from an exponential tail,
    ``P(W > t) ~ C(c, a) exp(-t / E[W | W > 0])`` with Allen-Cunneen's conditional mean wait
    ``E[W | W > 0] ~ (ca^2 + cs^2) / 2 / (c mu - lam)`` (the usual two-moment form, e.g. Whitt 1993,
    "Approximations for the GI/G/m queue", Prod. Oper. Mgmt. 2). Exact for M/M/c
    (:func:`mmc_wait_quantile`); 0 when ``ca^2 + cs^2 = 0`` (a stable D/D/c queue never waits).

    Args:
        lam: arrival rate, items/s.
        mean_s: mean service time, s.
        c: number of workers.
        q: level in (0, 1).
        scv_a: squared CV of inter-arrival times.
        scv_s: squared CV of service times.

    Raises:
        ValueError: bad inputs, ``rho >= 1`` or ``q`` outside (0, 1).
    """
    if not 0 < q < 1:
        raise ValueError(f"need 0 < q < 1, got {q}")
    _check(lam, mean_s, c)
    p_wait = erlang_c(c, lam * mean_s)
    spread = (scv_a + scv_s) / 2.0
    if p_wait <= 1.0 - q or spread <= 0:
        return 0.0
    return math.log(p_wait / (1.0 - q)) * spread / (c / mean_s - lam)


def stable_workers(lam: float, mean_s: float) -> int:
    """The fewest workers with a steady state: the smallest ``c > lam E[S]`` (``rho < 1``).

    With ``c <= lam E[S]`` a G/G/c queue has none: the backlog grows without bound (at ``c = a`` it
    is null recurrent and still has no finite steady-state wait). E.g. the seed scenario,
    ``lam = 1``, ``E[S] = 2.5``: 3.

    Args:
        lam: arrival rate, items/s.
        mean_s: mean service time, s.

    Raises:
        ValueError: non-positive inputs.
    """
    _positive(lam, mean_s, 1)
    load = lam * mean_s
    whole = round(load)
    if abs(load - whole) <= 1e-9 * max(1.0, load):  # 1 / 0.1 * 0.3 is 3 Erlangs, not 2.9999999999999996
        load = whole
    return math.floor(load) + 1


def fluid_slope(lam: float, mean_s: float, c: int) -> float:
    """Fluid-limit growth rate of the backlog, items/s: ``lam - c / E[S]`` (positive when ``rho > 1``).

    With every worker always busy the queue gains ``lam`` items/s and loses ``c / E[S]``; by the
    functional law of large numbers the backlog grows like this line for ``rho > 1`` (Chen & Yao,
    *Fundamentals of Queueing Networks*, 2001, ch. 6). For ``rho <= 1`` the backlog is not growing
    and the value returned (<= 0) is only the fluid drift of an always-busy system.

    Args:
        lam: arrival rate, items/s.
        mean_s: mean service time, s.
        c: number of workers.

    Raises:
        ValueError: non-positive inputs.
    """
    _positive(lam, mean_s, c)
    return lam - c / mean_s


def kendall(family: str) -> str:
    """Kendall letter for a distribution family: ``exp`` -> M, ``const`` -> D, anything else -> G.

    A merged arrival spec (``exp:2+exp:3``, several pushers) is M when every part is exponential (a
    superposition of Poisson streams is Poisson) and G otherwise.

    Args:
        family: a distribution family name such as ``exp`` or the spec ``exp:1``.
    """
    if "+" in family:
        parts = [kendall(part) for part in family.split("+")]
        return "M" if all(letter == "M" for letter in parts) else "G"
    name = family.split(":", 1)[0].strip().lower()
    return {"exp": "M", "const": "D"}.get(name, "G")


def predict(
    arrival: str, arrival_mean: float, arrival_cv: float | None,
    service: str, service_mean: float, service_cv: float | None, workers: int,
) -> Prediction | None:  # fmt: skip
    """The best steady-state prediction for a cell, or None when no formula applies.

    Picks M/M/c (exact) for Poisson arrivals and exponential service, M/G/1 (exact, PK) for
    Poisson arrivals and one worker, Kingman (approx.) for other single-worker cells and
    Allen-Cunneen (approx.) for other multi-worker cells. None when ``rho >= 1`` or a needed
    coefficient of variation is undefined.

    Args:
        arrival: arrival spec (its family decides the Kendall letter).
        arrival_mean: mean inter-arrival time, s.
        arrival_cv: CV of inter-arrival times (None if undefined).
        service: service spec.
        service_mean: mean service time, s.
        service_cv: CV of service times (None if undefined).
        workers: number of workers.
    """
    lam, c = 1.0 / arrival_mean, int(workers)
    if lam * service_mean / c >= 1 or _missing(service_cv):
        return None
    assert service_cv is not None  # not _missing
    poisson, scv_s = kendall(arrival) == "M", float(service_cv) ** 2
    if poisson and kendall(service) == "M":
        return mmc(lam, service_mean, c)
    if poisson and c == 1:
        return mg1(lam, service_mean, scv_s)
    if _missing(arrival_cv):
        return None
    assert arrival_cv is not None  # not _missing
    scv_a = float(arrival_cv) ** 2
    return kingman(lam, service_mean, scv_a, scv_s) if c == 1 else allen_cunneen(lam, service_mean, c, scv_a, scv_s)


def _missing(value: float | None) -> bool:
    """True for None or NaN."""
    return value is None or (isinstance(value, float) and math.isnan(value))
