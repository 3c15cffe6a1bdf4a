"""Queueing theory of the pool's behaviours: priority classes, LIFO, abandonment (Erlang-A), retries.

Notation as in :mod:`analysis.theory`: arrival rate ``lam``, mean service ``mean_s``, ``c`` workers,
``mu = 1 / mean_s``. Every formula needs a steady state and an unbounded queue.

* **Non-preemptive priority** (Cobham 1954; Gross, Shortle, Thompson & Harris, *Fundamentals of
  Queueing Theory*, 4th ed., sections 3.4.1-3.4.2): classes ``1..K`` (1 served first), arrival rates
  ``lam_k``, one service distribution for all, ``sigma_k = sum_{i<=k} lam_i / (c mu)``. The mean wait of
  class k is ``W0 / ((1 - sigma_{k-1}) (1 - sigma_k))`` with ``W0 = lam E[S^2] / 2`` for M/G/1 and
  ``W0 = C(c, a) / (c mu)`` (Erlang C) for M/M/c.
* **LIFO, M/M/1** (non-preemptive): the mean wait is FIFO's ``rho / (mu - lam)`` (the queue length
  does not depend on the order), but a waiting item's wait is a busy period started by the residual
  service, so ``E[W^2] = 2 rho / (mu^2 (1 - rho)^3)`` against FIFO's ``2 rho / (mu^2 (1 - rho)^2)``:
  the second moment is ``1 / (1 - rho)`` times FIFO's (Kleinrock, *Queueing Systems* vol. 1, 1975,
  section 5.11 on busy periods; GSTH section 2.2 for FIFO).
* **Abandonment, M/M/c+M** (Erlang-A; Garnett, Mandelbaum & Reiman 2002, "Designing a call center
  with impatient customers", M&SOM 4(3)): exponential patience of mean ``1 / theta``. The number in
  the system is a birth-death chain with birth rate ``lam`` and death rate ``min(n, c) mu + max(n -
  c, 0) theta``; from its stationary law: ``P(wait) = P(n >= c)`` (PASTA), ``Lq = sum (n - c)
  pi_n``, ``P(abandon) = theta Lq / lam`` and the mean time in queue of all items ``Lq / lam``
  (Little), computed here to floating-point precision by summing the chain.
* **Retries**: an attempt fails independently with probability ``p``, up to ``k`` attempts: an item
  makes ``(1 - p^k) / (1 - p)`` attempts on average (``1 / (1 - p)`` without a limit), is served with
  probability ``1 - p^k``, and the queue sees attempts at ``lam (1 - p^k) / (1 - p)`` per second.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from analysis.theory import erlang_c

__all__ = [
    "ErlangA", "cobham_mg1", "cobham_mmc", "erlang_a", "fifo_wait_second_moment_mm1", "lifo_wait_second_moment_mm1",
    "retry_attempts", "retry_served",
]  # fmt: skip


def _check(lam: float, mean_s: float, c: int) -> float:
    if lam <= 0 or mean_s <= 0 or c < 1:
        raise ValueError(f"need lam > 0, mean_s > 0, c >= 1; got lam={lam}, mean_s={mean_s}, c={c}")
    rho = lam * mean_s / c
    if rho >= 1:
        raise ValueError(f"no steady state: rho = {rho:.4g} >= 1")
    return rho


def _cobham(w0: float, shares: Sequence[float], rho: float) -> list[float]:
    waits, sigma = [], 0.0
    for share in shares:
        before = sigma
        sigma += share * rho
        waits.append(w0 / ((1 - before) * (1 - sigma)))
    return waits


def cobham_mmc(lam: float, mean_s: float, c: int, shares: Sequence[float]) -> list[float]:
    """Mean wait of each class under non-preemptive priority in M/M/c (Cobham; see the module docstring).

    Args:
        lam: total arrival rate, items/s.
        mean_s: mean service time (the same exponential for every class), s.
        c: workers.
        shares: each class's share of the arrivals, highest priority first (summing to 1).

    Raises:
        ValueError: bad inputs or ``rho >= 1``.
    """
    rho = _check(lam, mean_s, c)
    w0 = erlang_c(c, lam * mean_s) * mean_s / c
    return _cobham(w0, shares, rho)


def cobham_mg1(lam: float, mean_s: float, scv_s: float, shares: Sequence[float]) -> list[float]:
    """Mean wait of each class under non-preemptive priority in M/G/1 (Cobham; see the module docstring).

    Args:
        lam: total arrival rate, items/s.
        mean_s: mean service time (one distribution for every class), s.
        scv_s: its squared coefficient of variation.
        shares: each class's share of the arrivals, highest priority first.

    Raises:
        ValueError: bad inputs or ``rho >= 1``.
    """
    rho = _check(lam, mean_s, 1)
    w0 = lam * mean_s * mean_s * (1 + scv_s) / 2
    return _cobham(w0, shares, rho)


def fifo_wait_second_moment_mm1(lam: float, mean_s: float) -> float:
    """``E[W^2]`` of the wait in FIFO M/M/1: ``2 rho / (mu^2 (1 - rho)^2)``."""
    rho = _check(lam, mean_s, 1)
    return 2 * rho * mean_s * mean_s / (1 - rho) ** 2


def lifo_wait_second_moment_mm1(lam: float, mean_s: float) -> float:
    """``E[W^2]`` of the wait in non-preemptive LIFO M/M/1: ``2 rho / (mu^2 (1 - rho)^3)``."""
    rho = _check(lam, mean_s, 1)
    return 2 * rho * mean_s * mean_s / (1 - rho) ** 3


#: Most states of the Erlang-A chain summed (about a second of arithmetic).
_LONGEST_CHAIN = 2_000_000


@dataclass(frozen=True)
class ErlangA:
    """Steady state of M/M/c+M.

    Attributes:
        p_wait: probability that an arrival finds every worker busy.
        p_abandon: probability that an arrival abandons.
        lq: mean number waiting.
        time_in_queue: mean time in queue of all arrivals (served or abandoned), s.
    """

    p_wait: float
    p_abandon: float
    lq: float
    time_in_queue: float


def erlang_a(lam: float, mean_s: float, c: int, mean_patience: float) -> ErlangA:
    """Erlang-A (M/M/c+M) from its birth-death chain (see the module docstring); any load (the
    abandonments keep it stable).

    Raises:
        ValueError: a rate or count that is not positive, or a chain too long to sum (patience so
            long against an overload that the queue would hold millions).
    """
    if lam <= 0 or mean_s <= 0 or c < 1 or mean_patience <= 0:
        raise ValueError(f"need positive lam, mean_s, c, patience; got {lam}, {mean_s}, {c}, {mean_patience}")
    mu, theta = 1 / mean_s, 1 / mean_patience
    logs = [0.0]  # log pi_n, unnormalised
    n = 0
    while True:
        n += 1
        death = min(n, c) * mu + max(n - c, 0) * theta
        logs.append(logs[-1] + math.log(lam / death))
        if n > c and death > lam and logs[-1] < max(logs) - 50:  # past the mode, e^-50 of its weight
            break
        if n > _LONGEST_CHAIN:
            raise ValueError(f"Erlang-A chain longer than {_LONGEST_CHAIN:,} states (patience {mean_patience:g} s)")
    top = max(logs)
    weights = [math.exp(v - top) for v in logs]
    total = math.fsum(weights)
    p_wait = math.fsum(weights[c:]) / total
    lq = math.fsum((k - c) * w for k, w in enumerate(weights) if k > c) / total
    return ErlangA(p_wait, theta * lq / lam, lq, lq / lam)


def retry_attempts(p: float, attempts: int | None) -> float:
    """Mean attempts per item: ``(1 - p^k) / (1 - p)`` (``1 / (1 - p)`` when ``attempts`` is None)."""
    if not 0 <= p < 1:
        raise ValueError(f"need 0 <= p < 1, got {p}")
    return 1 / (1 - p) if attempts is None else (1 - p**attempts) / (1 - p)


def retry_served(p: float, attempts: int) -> float:
    """Probability that an item is served within ``attempts`` attempts: ``1 - p^k``."""
    return 1 - p**attempts
