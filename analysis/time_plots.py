"""The report's charts over time: the backlog with the arrival rate, the workers, the p99 per window.

Drawn only for runs with cells that need figures over time (non-stationary arrivals, elastic
workers, a backlog at t = 0: :func:`analysis.windows.time_varying`), each returning no path when it
has nothing to show (the report then leaves it out). Like :mod:`analysis.plots`, figures are built
on ``matplotlib.figure.Figure`` (no pyplot state).

* ``over_time``: per panel (arrival x service x maxsize x behaviours), each cell's mean queue depth
  over model time with its 95% band across replications, the fluid backlog dashed in the cell's
  colour, and the arrival rate in force (grey, right axis; the measured rate per window where the
  process has none, a trace). A daily cycle's chart shows the queue building at the peak and
  draining after it.
* ``workers``: elastic cells' workers taking items over time (mean across replications, 95% band;
  one replication's steps thin), with the arrival rate on the right axis.
* ``window_p99``: the p99 wait of the items put in each window (pooled across replications,
  sectioning interval as a band).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
from matplotlib.figure import Figure

from analysis.backlog import sample_depth
from analysis.behaviours import behaviour_label, elastic, workers_label
from analysis.cell_stats import CellStats
from analysis.estimate import LEVEL
from analysis.load import Run, data_rows
from analysis.plots import POINTS, backlog_band, label_panel, panel_grid, save, worker_colour
from analysis.student_t import t_quantile
from analysis.windows import CellWindows

__all__ = ["TIME_CHARTS", "plot_over_time", "plot_window_p99", "plot_workers"]

#: The charts of :data:`analysis.plots.CHARTS` drawn only for runs with cells that vary over time.
TIME_CHARTS = ("over_time", "workers", "window_p99")
_RATE = "#7f7f7f"
_ELASTIC = ("#000000", "#8c564b", "#e377c2", "#17becf")


def _key(params: Mapping[str, Any]) -> tuple[str, str, int, str]:
    """A panel: arrival, service, maxsize and the behaviours but the elastic workers (so fixed and
    elastic pools of one load share a panel)."""
    words = [w for w in behaviour_label(params).split("; ") if w and not w.startswith("auto:")]
    return str(params["arrival"]), str(params["service"]), int(params.get("maxsize") or 0), "; ".join(words)


def _panels(stats: list[CellStats], windows: Mapping[int, CellWindows]) -> dict[tuple, list[CellStats]]:
    panels: dict[tuple, list[CellStats]] = {}
    for s in stats:
        if s.cell in windows and windows[s.cell].windows:
            panels.setdefault(_key(s.params), []).append(s)
    return panels


def _colour(s: CellStats, order: list[str]) -> Any:
    spec = elastic(s.params)
    if spec is None:
        return worker_colour(int(s.params["workers"]))
    return _ELASTIC[order.index(spec) % len(_ELASTIC)]


def _title(key: tuple[str, str, int, str]) -> str:
    arrival, service, bound, words = key
    return f"arrival {arrival}, service {service}" + (f", maxsize {bound}" if bound else "") + (
        f"\n{words}" if words else "")  # fmt: skip


def _rate_axis(ax, found: CellWindows) -> None:
    """The arrival rate on a right axis: in force (steps), or measured per window."""
    twin = ax.twinx()
    if found.rate_steps is not None and len(found.rate_steps[0]):
        t, rate = found.rate_steps
        end = max(w.end for w in found.windows)
        keep = t <= end
        twin.step(np.append(t[keep], end), np.append(rate[keep], rate[keep][-1]), where="post", color=_RATE, lw=1.0,
                  alpha=0.8, label="arrival rate in force")  # fmt: skip
    else:
        centres = [(w.start + w.end) / 2 for w in found.windows]
        twin.plot(centres, [w.arrivals.mean for w in found.windows], color=_RATE, lw=1.0, ls=":",
                  label="arrivals per s (measured)")  # fmt: skip
    twin.set_ylabel("arrival rate (items/s)", color=_RATE)
    twin.tick_params(axis="y", colors=_RATE)
    twin.set_ylim(bottom=0)
    twin.legend(fontsize=7, loc="upper right")


def _figure(stats: list[CellStats], panels: int, height: float) -> tuple[list[str], Figure, list]:
    """The elastic specs in order (for their colours) and a figure of ``panels`` wide panels."""
    order = list(dict.fromkeys(e for s in stats if (e := elastic(s.params)) is not None))
    fig, axes = panel_grid(panels, width=6.0, height=height)
    return order, fig, axes


def plot_over_time(run: Run, stats: list[CellStats], windows: Mapping[int, CellWindows], folder: Path) -> list[Path]:
    """Queue depth over time with the fluid backlog dashed and the arrival rate on a second axis.

    Args:
        run: the opened run.
        stats: per-cell statistics.
        windows: per-window figures of the cells that vary over time, by cell id.
        folder: output folder.
    """
    panels = _panels(stats, windows)
    if not panels:
        return []
    order, fig, axes = _figure(stats, len(panels), 3.8)
    for ax, (key, cells) in zip(axes, panels.items()):
        end = max(w.end for s in cells for w in windows[s.cell].windows)
        times = np.linspace(0.0, end, POINTS)
        for s in cells:
            colour = _colour(s, order)
            mean, low, high = backlog_band(run, s.cell, times)
            ax.plot(times, mean, color=colour, lw=1.5, label=f"{workers_label(s.params)} workers (mean)")
            ax.fill_between(times, low, high, color=colour, alpha=0.2, lw=0)
            fluid = windows[s.cell].fluid
            if fluid is not None:
                ax.plot(*fluid, color=colour, ls="--", lw=1.0, label=f"fluid, {workers_label(s.params)} workers")
        ax.set_ylim(bottom=0)
        label_panel(ax, _title(key), "model time (s)", "queue depth (items waiting)")
        _rate_axis(ax, windows[cells[0].cell])
    fig.suptitle(f"Backlog over time - {run.name} (mean of replications, 95% band; dashed: fluid backlog; grey: "
                 "arrival rate)")  # fmt: skip
    return save(fig, folder, "over_time")


def _worker_band(steps: list[tuple[np.ndarray, np.ndarray]], times: np.ndarray) -> tuple[np.ndarray, ...]:
    curves = np.array([sample_depth(t, v, times) for t, v in steps])
    mean = curves.mean(axis=0)
    if len(curves) < 2:
        return mean, mean, mean
    half = t_quantile(0.5 + LEVEL / 2, len(curves) - 1) * curves.std(axis=0, ddof=1) / math.sqrt(len(curves))
    return mean, mean - half, mean + half


def plot_workers(run: Run, stats: list[CellStats], windows: Mapping[int, CellWindows], folder: Path) -> list[Path]:
    """Elastic cells' workers over time (mean across replications, band; one replication's steps),
    with the arrival rate on a second axis.

    Args:
        run: the opened run.
        stats: per-cell statistics.
        windows: per-window figures by cell id.
        folder: output folder.
    """
    cells = [s for s in stats if s.cell in windows and windows[s.cell].worker_steps and elastic(s.params)]
    if not cells:
        return []
    order, fig, axes = _figure(cells, len(cells), 3.6)
    ends = data_rows(run.cells).groupby("cell")["t_end"].max()
    for ax, s in zip(axes, cells):
        found = windows[s.cell]
        times = np.linspace(0.0, float(ends.get(s.cell, 1.0)), POINTS * 2)
        colour = _colour(s, order)
        mean, low, high = _worker_band(found.worker_steps, times)
        ax.plot(times, mean, color=colour, lw=1.5, label="workers taking items (mean)")
        ax.fill_between(times, low, high, color=colour, alpha=0.2, lw=0)
        t, v = found.worker_steps[0]
        ax.step(np.append(t, times[-1]), np.append(v, v[-1]), where="post", color=colour, lw=0.6, alpha=0.6,
                label="replication 0")  # fmt: skip
        ax.set_ylim(bottom=0)
        label_panel(ax, f"{s.params['arrival']} / {s.params['service']}\n{elastic(s.params)}", "model time (s)",
                    "workers")  # fmt: skip
        _rate_axis(ax, found)
    fig.suptitle(f"Elastic workers over time - {run.name} (mean of replications, 95% band; grey: arrival rate)")
    return save(fig, folder, "workers")


def plot_window_p99(run: Run, stats: list[CellStats], windows: Mapping[int, CellWindows], folder: Path) -> list[Path]:
    """p99 wait of the items put in each window, per cell, with its sectioning interval as a band.

    Args:
        run: the opened run.
        stats: per-cell statistics.
        windows: per-window figures by cell id.
        folder: output folder.
    """
    panels = _panels(stats, windows)
    known = any(math.isfinite(w.latency["wait_p99"].mean) for found in windows.values() for w in found.windows)
    if not panels or not known:  # a run that kept no items has no latency per window
        return []
    order, fig, axes = _figure(stats, len(panels), 3.6)
    for ax, (key, cells) in zip(axes, panels.items()):
        for s in cells:
            found = windows[s.cell]
            centres = np.array([(w.start + w.end) / 2 for w in found.windows])
            p99 = [w.latency["wait_p99"] for w in found.windows]
            mean = np.array([e.mean for e in p99])
            low = np.array([max(e.low, 0.0) if math.isfinite(e.low) else e.mean for e in p99])
            high = np.array([e.high if math.isfinite(e.high) else e.mean for e in p99])
            colour = _colour(s, order)
            ax.plot(centres, mean, "o-", ms=2.5, color=colour, lw=1.2, label=f"{workers_label(s.params)} workers")
            ax.fill_between(centres, low, high, color=colour, alpha=0.2, lw=0)
        ax.set_yscale("symlog", linthresh=0.1)
        ax.set_ylim(bottom=0)
        width = windows[cells[0].cell].width
        label_panel(ax, _title(key), f"model time (s; windows of {width:g} s)", "p99 wait of items put (model s)")
    fig.suptitle(f"p99 wait per window - {run.name} (pooled over replications; band: 95% sectioning interval)")
    return save(fig, folder, "window_p99")
