"""The report's charts of behaviours: waits per class, and what became of the items.

Each is drawn only when the run has cells it applies to (classes or several pushers; patience,
batches, failures or a user's scenario), and returns no path otherwise; the report then leaves it
out. Like :mod:`analysis.plots`, figures are built on ``matplotlib.figure.Figure`` (no pyplot state).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from matplotlib.figure import Figure

from analysis.behaviours import behaviour_label, fifo_theory_applies
from analysis.cell_stats import CellStats
from analysis.classes import group_key, group_stats, group_values
from analysis.estimate import Estimate, mean_ci
from analysis.load import Run, data_rows
from analysis.plots import label_panel, save

__all__ = ["BEHAVIOUR_CHARTS", "plot_classes", "plot_outcomes"]

#: The charts of :data:`analysis.plots.CHARTS` drawn only for runs that have behaviours to show.
BEHAVIOUR_CHARTS = ("classes", "outcomes")

_OUTCOMES = (("n_served", "served", "#2ca02c"), ("n_abandoned", "abandoned", "#d62728"),
             ("n_gave_up", "gave up", "#7f7f7f"))  # fmt: skip


def plot_classes(run: Run, stats: list[CellStats], folder: Path) -> list[Path]:
    """Mean and p99 wait of each class (or pusher) of each cell that has them, 95% CI bars.

    Args:
        run: the opened run.
        stats: its cells' statistics.
        folder: output folder.
    """
    bars: list[tuple[str, Estimate, Estimate]] = []
    for s in (s for s in stats if s.replications and group_key(s.params) is not None):
        for group, metrics in group_stats(group_values(run, s.cell)).items():
            bars.append((f"{s.label}; {behaviour_label(s.params)}: {group}", metrics["wait_mean"], metrics["wait_p99"]))
    if not bars:
        return []
    fig = Figure(figsize=(10, 0.32 * len(bars) + 1.6), layout="constrained")
    ax = fig.subplots()
    y = np.arange(len(bars))
    columns = (("mean wait", [bar[1] for bar in bars], -0.18, "#1f77b4"),
               ("p99 wait", [bar[2] for bar in bars], 0.18, "#ff7f0e"))  # fmt: skip
    for name, estimates, offset, colour in columns:
        means = np.array([e.mean for e in estimates])
        halves = np.array([e.half_width for e in estimates])
        ax.barh(y + offset, means, height=0.34, color=colour, label=name,
                xerr=np.where(np.isnan(halves), 0, halves), capsize=2)  # fmt: skip
    ax.set_yticks(y, [bar[0] for bar in bars], fontsize=7)
    ax.invert_yaxis()
    label_panel(ax, f"Waits per class - {run.name} (95% CI)", "wait (model s)", "")
    return save(fig, folder, "classes")


def plot_outcomes(run: Run, stats: list[CellStats], folder: Path) -> list[Path]:
    """What became of the items, per cell whose items can fare otherwise than be served once: on
    the left the shares of the items that left served, abandoned and given up; on the right the
    rates, goodput (served/s) against throughput (finished/s) and attempts/s, with 95% CI bars.

    Args:
        run: the opened run.
        stats: its cells' statistics.
        folder: output folder.
    """
    cells = [s for s in stats if s.replications and not fifo_theory_applies(s.params)]
    if not cells:
        return []
    rows = data_rows(run.cells)
    fig = Figure(figsize=(12, 0.45 * len(cells) + 1.8), layout="constrained")
    shares_ax, rates_ax = fig.subplots(1, 2, sharey=True, width_ratios=(1, 1.3))
    y = np.arange(len(cells))
    for k, s in enumerate(cells):
        mine = rows[rows["cell"] == s.cell]
        counts = np.array([mine[column].to_numpy(dtype=float).sum() for column, _, _ in _OUTCOMES])
        shares = counts / counts.sum() if counts.sum() else counts
        left = 0.0
        for share, (_, name, colour) in zip(shares, _OUTCOMES):
            shares_ax.barh(k, share, left=left, color=colour, label=name if k == 0 else None)
            left += share
    t_end = {s.cell: rows.loc[rows["cell"] == s.cell, "t_end"].to_numpy(dtype=float) for s in cells}
    rates = (("goodput (served/s)", lambda s: rows.loc[rows["cell"] == s.cell, "n_served"].to_numpy(float) / t_end[s.cell]),
             ("throughput (finished/s)", lambda s: rows.loc[rows["cell"] == s.cell, "throughput"].to_numpy(float)),
             ("attempts/s", lambda s: rows.loc[rows["cell"] == s.cell, "n_attempts"].to_numpy(float) / t_end[s.cell]))  # fmt: skip
    for offset, (name, values), colour in zip((-0.27, 0.0, 0.27), rates, ("#2ca02c", "#1f77b4", "#9467bd")):
        estimates = [mean_ci(values(s)) for s in cells]
        means = np.array([e.mean for e in estimates])
        halves = np.nan_to_num(np.array([e.half_width for e in estimates]))
        rates_ax.barh(y + offset, means, height=0.26, color=colour, label=name, xerr=halves, capsize=2)
    shares_ax.set_yticks(y, [f"{s.label}; {behaviour_label(s.params)}" for s in cells], fontsize=7)
    shares_ax.invert_yaxis()
    shares_ax.set_xlim(0, 1)
    label_panel(shares_ax, "Items that left: shares", "share", "")
    label_panel(rates_ax, "Goodput, throughput and attempts (95% CI)", "items/s", "")
    fig.suptitle(f"What became of the items - {run.name}")
    return save(fig, folder, "outcomes")
