"""Theory beside measurement for the pool's behaviours: rows for the report's theory table.

:func:`behaviour_theory` gives, where a formula of :mod:`analysis.behaviour_theory` applies (the
built-in pool, an unbounded queue, Poisson arrivals, a steady state):

* **priority** (``discipline = priority``, no patience, batches or failures): each class's mean wait
  against Cobham's formula, M/M/c for exponential service or M/G/1 for one worker;
* **LIFO and FIFO, M/M/1**: the variance of the wait (the mean is the FIFO theory row, which holds
  for both): LIFO's is larger, its second moment ``1 / (1 - rho)`` times FIFO's;
* **abandonment** (exponential patience, exponential service, fifo): Erlang-A's probability of
  abandoning, mean time in queue (of every item: until taken or abandoned) and probability of waiting;
* **retries** (``failure > 0``, no patience): attempts per item ``(1 - p^k) / (1 - p)`` and the
  share served ``1 - p^k`` (exact for independent failures), and the attempt rate ``lam (1 - p^k) /
  (1 - p)`` seen by the queue (a limit);
* **batches** whose arrivals exceed what full batches can serve: the saturated throughput
  ``c B / (E[setup] + B E[S])`` (a limit).

Steady-state measurements (class waits, the variance of the wait, Erlang-A) drop the warm-up that
MSER-5 finds on the replications' series, as :func:`analysis.cell_stats.steady_state` does; the
cut is in the note. Rows are :class:`analysis.agreement.Agreement`, judged the same way.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from analysis.agreement import Agreement
from analysis.behaviour_theory import (
    cobham_mg1,
    cobham_mmc,
    erlang_a,
    fifo_wait_second_moment_mm1,
    lifo_wait_second_moment_mm1,
    retry_attempts,
    retry_served,
)
from analysis.behaviours import builtin
from analysis.cell_stats import CellStats
from analysis.estimate import Estimate, mean_ci
from analysis.load import Run, data_rows, read_items, record_level
from analysis.theory import kendall
from analysis.warmup import truncate_ensemble

__all__ = ["behaviour_theory"]


def behaviour_theory(run: Run, stats: CellStats) -> list[Agreement]:
    """The behaviour theory rows of one cell (none where no formula applies; see the module docstring).

    Args:
        run: the opened run.
        stats: the cell's statistics.
    """
    p = stats.params
    if stats.replications == 0 or not builtin(p) or int(p.get("maxsize") or 0) > 0:
        return []
    rows = _retries(run, stats) + _batches(stats)
    stable = float(p["rho"]) < 1 or str(p.get("patience")) != "none"  # abandonment keeps any load stable
    if kendall(str(p["arrival"])) != "M" or not stable:
        return rows
    plain_service = int(p.get("batch") or 1) == 1 and str(p.get("setup")) == "none" and not float(p.get("failure") or 0)
    if not plain_service or record_level(run) != "items":  # the rows below read every item
        return rows
    discipline, patience = str(p.get("discipline")), str(p.get("patience"))
    if discipline == "priority" and patience == "none":
        rows += _priority(run, stats)
    if discipline in ("fifo", "lifo") and patience == "none" and int(p["workers"]) == 1:
        rows += _variance(run, stats)
    if discipline == "fifo" and patience.split(":")[0] == "exp" and kendall(str(p["service"])) == "M":
        rows += _erlang_a(run, stats)
    return rows


def _frames(run: Run, stats: CellStats, columns: list[str]) -> list[pd.DataFrame]:
    """The cell's items (only ``columns``) of each replication with data, in item order."""
    rows = data_rows(run.cells)
    reps = sorted(int(r) for r in rows.loc[rows["cell"] == stats.cell, "replication"])
    items = read_items(run, cells=[stats.cell], replications=reps, columns=["item", *columns], join=False)
    return [rep.sort_values("item", kind="stable").reset_index(drop=True) for _, rep in items.groupby("replication")]


def _cut(series: list[np.ndarray]) -> tuple[int, str]:
    """The MSER-5 warm-up cut of the replications' series, and the note that says it."""
    cut = truncate_ensemble(series)
    note = f"MSER-5 warm-up cut: first {cut.index} items of each replication"
    return cut.index, note + ("" if cut.settled else " (did not settle)")


def _priority(run: Run, stats: CellStats) -> list[Agreement]:
    p = stats.params
    names, shares = _mix(str(p.get("classes")))
    lam, mean_s, c = 1 / float(p["arrival_mean"]), float(p["service_mean"]), int(p["workers"])
    if kendall(str(p["service"])) == "M":
        waits, model = cobham_mmc(lam, mean_s, c, shares), f"M/M/{c} non-preemptive priority (Cobham)"
    elif c == 1 and p.get("service_cv") is not None and not pd.isna(p.get("service_cv")):
        waits = cobham_mg1(lam, mean_s, float(p["service_cv"]) ** 2, shares)
        model = "M/G/1 non-preemptive priority (Cobham)"
    else:
        return []
    frames = _frames(run, stats, ["class", "wait", "status"])
    taken = [f[f["wait"].notna() & (f["status"] != "gave_up")] for f in frames]
    cut, note = _cut([f["wait"].to_numpy(dtype=float) for f in taken])
    kept = [f.iloc[cut:] for f in taken]
    found = []
    for name, theory in zip(names, waits):
        measured = mean_ci([_mean(f.loc[f["class"] == name, "wait"]) for f in kept])
        found.append(Agreement(stats.cell, f"Wq[{name}]", model, True, theory, measured, note))
    return found


def _mean(values: pd.Series) -> float:
    return float(values.mean()) if len(values) else math.nan


def _mix(text: str) -> tuple[list[str], list[float]]:
    pairs = [entry.split(":") for entry in text.split(",")]
    return [name for name, _ in pairs], [float(weight) for _, weight in pairs]


def _variance(run: Run, stats: CellStats) -> list[Agreement]:
    p = stats.params
    if kendall(str(p["service"])) != "M":
        return []
    lam, mean_s = 1 / float(p["arrival_mean"]), float(p["service_mean"])
    mean = lam * mean_s * mean_s / (1 - lam * mean_s)
    lifo = str(p.get("discipline")) == "lifo"
    second = lifo_wait_second_moment_mm1(lam, mean_s) if lifo else fifo_wait_second_moment_mm1(lam, mean_s)
    frames = _frames(run, stats, ["wait"])
    waits = [f["wait"].dropna().to_numpy(dtype=float) for f in frames]
    cut, note = _cut(waits)
    measured = mean_ci([float(w[cut:].var(ddof=1)) if w.size - cut > 1 else math.nan for w in waits])
    model = "M/M/1 LIFO: E[W^2] = 2 rho / (mu^2 (1-rho)^3)" if lifo else "M/M/1 FIFO: E[W^2] = 2 rho / (mu^2 (1-rho)^2)"
    return [Agreement(stats.cell, "Var(wait)", model, True, second - mean * mean, measured, note)]


def _erlang_a(run: Run, stats: CellStats) -> list[Agreement]:
    p = stats.params
    patience = p.get("patience_mean")
    if patience is None or pd.isna(patience):
        return []
    lam, mean_s, c = 1 / float(p["arrival_mean"]), float(p["service_mean"]), int(p["workers"])
    try:
        theory = erlang_a(lam, mean_s, c, float(patience))
    except ValueError:
        return []
    frames = _frames(run, stats, ["wait", "t_put", "t_leave", "status"])
    queue_times, abandoned, waited = [], [], []
    for f in frames:
        gone = (f["status"] == "abandoned").to_numpy()
        time = np.where(gone, (f["t_leave"] - f["t_put"]).to_numpy(dtype=float), f["wait"].to_numpy(dtype=float))
        known = ~np.isnan(time)
        queue_times.append(time[known])
        abandoned.append(gone[known].astype(float))
        waited.append((gone[known] | (time[known] > 0)).astype(float))
    cut, note = _cut(queue_times)
    model = f"M/M/{c}+M (Erlang-A)"
    at = lambda series: mean_ci([float(s[cut:].mean()) if s.size > cut else math.nan for s in series])  # noqa: E731
    return [
        Agreement(stats.cell, "P(abandon)", model, True, theory.p_abandon, at(abandoned), note),
        Agreement(stats.cell, "time in queue", model, True, theory.time_in_queue, at(queue_times),
                  note + "; every item, until taken or abandoned"),
        Agreement(stats.cell, "P(wait)", model, True, theory.p_wait, at(waited), note),
    ]  # fmt: skip


def _retries(run: Run, stats: CellStats) -> list[Agreement]:
    p = stats.params
    failure = float(p.get("failure") or 0)
    if not failure or str(p.get("patience")) != "none":
        return []
    k = int(p.get("attempts") or 1)
    rows = data_rows(run.cells)
    mine = rows[rows["cell"] == stats.cell]
    attempts, got = mine["n_attempts"].to_numpy(dtype=float), mine["n_got"].to_numpy(dtype=float)
    served, gave_up = mine["n_served"].to_numpy(dtype=float), mine["n_gave_up"].to_numpy(dtype=float)
    per_item = retry_attempts(failure, k)
    lam = 1 / float(p["arrival_mean"])
    note = f"p = {failure:g} per attempt, at most {k} attempts"
    with np.errstate(divide="ignore", invalid="ignore"):
        found = [
            Agreement(stats.cell, "attempts per item", "independent failures: (1 - p^k) / (1 - p)", True, per_item,
                      mean_ci(attempts / got), note),
            Agreement(stats.cell, "served share", "independent failures: 1 - p^k", True, retry_served(failure, k),
                      mean_ci(served / (served + gave_up)), note),
        ]  # fmt: skip
    if float(p["rho"]) * per_item < 1:
        found.append(Agreement(stats.cell, "attempt rate", "lam (1 - p^k) / (1 - p), long run", False, lam * per_item,
                               mean_ci(attempts / mine["t_end"].to_numpy(dtype=float)),
                               note + "; attempts over [0, t_end]"))  # fmt: skip
    return found


def _batches(stats: CellStats) -> list[Agreement]:
    p = stats.params
    batch = int(p.get("batch") or 1)
    setup = p.get("setup_mean")
    setup = 0.0 if setup is None or pd.isna(setup) else float(setup)
    if (batch == 1 and not setup) or float(p.get("failure") or 0) or str(p.get("patience")) != "none":
        return []
    c, mean_s, lam = int(p["workers"]), float(p["service_mean"]), 1 / float(p["arrival_mean"])
    capacity = c * batch / (setup + batch * mean_s)
    if lam <= capacity * 1.05 or "throughput" not in stats.metrics:  # near capacity batches are not always full
        return []
    measured: Estimate = stats.metrics["throughput"]
    return [Agreement(stats.cell, "throughput (saturated)", "full batches: c B / (E[setup] + B E[S])", False,
                      capacity, measured, f"arrivals {lam:.4g}/s exceed it; long-run limit")]  # fmt: skip
