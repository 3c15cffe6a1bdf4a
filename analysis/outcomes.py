"""The report's tables of behaviours: what became of the items, and per-class (or per-pusher) figures.

Cells of the plain pool get no row (every item is served once and there is no class); see
:mod:`analysis.behaviours` for what the columns mean and :mod:`analysis.classes` for the per-class
figures. Every figure has its 95% Student t interval across replications.
"""

from __future__ import annotations

import math

import numpy as np

from analysis.behaviours import behaviour_label, fifo_theory_applies
from analysis.cell_stats import CellStats
from analysis.classes import group_key, group_stats, group_values
from analysis.estimate import mean_ci
from analysis.load import Run, data_rows
from analysis.tables import Rows

__all__ = ["class_rows", "outcome_rows"]


def outcome_rows(run: Run, stats: list[CellStats]) -> Rows:
    """What became of the items, per cell with data whose items can fare otherwise than be served
    once (patience, batches, a setup time, failures, a user's scenario), each with its 95% interval:
    goodput (served/s) against throughput (finished/s, served or given up) and attempts/s; the
    abandonment rate; the share given up; attempts per item taken.

    Args:
        run: the opened run.
        stats: its cells' statistics.
    """
    found = []
    rows = data_rows(run.cells)
    for s in stats:
        if not s.replications or fifo_theory_applies(s.params):
            continue
        mine = rows[rows["cell"] == s.cell]
        t_end = mine["t_end"].to_numpy(dtype=float)
        served, gave_up = mine["n_served"].to_numpy(dtype=float), mine["n_gave_up"].to_numpy(dtype=float)
        attempts, got = mine["n_attempts"].to_numpy(dtype=float), mine["n_got"].to_numpy(dtype=float)
        with np.errstate(divide="ignore", invalid="ignore"):
            found.append({
                "cell": s.label, "behaviours": behaviour_label(s.params),
                "goodput (served/s)": mean_ci(served / t_end).format(),
                "throughput (finished/s)": mean_ci(mine["throughput"].to_numpy(dtype=float)).format(),
                "attempts/s": mean_ci(attempts / t_end).format(),
                "abandoned": mean_ci(mine["abandon_rate"].to_numpy(dtype=float)).format(),
                "gave up": mean_ci(np.where(served + gave_up > 0, gave_up / (served + gave_up), math.nan)).format(),
                "attempts per item": mean_ci(attempts / got).format(),
            })  # fmt: skip
    return found


def class_rows(run: Run, stats: list[CellStats]) -> Rows:
    """One row per (cell, class) (or pusher) of the cells that have them: share, mean and p99 wait,
    p99 sojourn and abandonment rate, with 95% intervals (:mod:`analysis.classes`).

    Args:
        run: the opened run.
        stats: its cells' statistics.
    """
    found = []
    for s in stats:
        if not s.replications or group_key(s.params) is None:  # no classes nor pushers: no rows (fast)
            continue
        for group, metrics in group_stats(group_values(run, s.cell)).items():
            found.append({"cell": s.label, "behaviours": behaviour_label(s.params), "class": group,
                          "share": metrics["share"].format(), "wait mean (s)": metrics["wait_mean"].format(),
                          "p99 wait (s)": metrics["wait_p99"].format(), "p99 sojourn (s)": metrics["sojourn_p99"].format(),
                          "abandoned": metrics["abandon_rate"].format()})  # fmt: skip
    return found
