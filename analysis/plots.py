"""Charts of a run, written as PNG and SVG (no display needed, and no backend chosen for anyone).

Every chart has a title, axis labels with units and a legend. A worker count has one colour in
every chart (and in compare's overlay): :func:`worker_colour`. Panels are one per
arrival x service x maxsize combination, in the order the run lists its cells. Only cells with
data are drawn (a cell whose replications all failed has nothing to show; the report lists it),
and only replications with data feed a band. Figures are built with
``matplotlib.figure.Figure`` directly: importing this module neither picks a backend nor touches
pyplot's global state (a notebook user's backend stays theirs).

**Large runs** stay readable: a chart of panels shows at most :data:`MAX_PANELS` of them (evenly
spaced over the run's configurations, the first and the last included) and a panel at most
:data:`MAX_LINES` worker counts (evenly spaced, and the fewest the run found stable); titles say
how many of how many are shown. The heatmap drops its per-cell labels and thins its ticks beyond
:data:`MAX_LABELLED` rows or columns, and the theory chart becomes one scatter of measured against
predicted when it has more than :data:`MAX_LABELLED` rows. Every cell is in the report's tables.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import cast

import matplotlib
import numpy as np
from matplotlib.colors import ListedColormap
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

from analysis.agreement import Agreement
from analysis.backlog import sample_depth
from analysis.behaviours import behaviour_label
from analysis.cell_stats import CellStats
from analysis.estimate import LEVEL
from analysis.load import ResultsError, Run, data_rows, has_depth, has_items, read_depth, read_digests, read_items
from analysis.student_t import t_quantile
from bench.digest import Digest
from bench.replication_stats import SLOTS, slot_value

__all__ = [
    "CHARTS", "MAX_LABELLED", "MAX_LINES", "MAX_PANELS", "TARGETS_CHART", "backlog_band", "panel_grid", "plot_backlog", "plot_cdf", "plot_heatmap", "plot_latency",
    "plot_targets", "plot_theory", "save", "worker_colour",
]  # fmt: skip

#: Chart file stems written by the report, in display order, with their captions.
CHARTS = {
    "backlog": "Backlog growth: queue depth over model time (replication mean, 95% band)",
    "latency": "Wait and sojourn percentiles against worker count",
    "sojourn_cdf": "Sojourn-time distribution per cell",
    "heatmap": "p99 wait and stability verdict over workers x distributions",
    "theory": "Theory against measurement (relative error with 95% CI)",
    # drawn only for runs with classes (or several pushers) and with behaviours (analysis/behaviour_plots.py)
    "classes": "Mean and p99 wait per class (or pusher), 95% CI",
    "outcomes": "What became of the items: served, abandoned, gave up; goodput and throughput",
    # drawn only for runs with cells that vary over time (analysis/time_plots.py)
    "over_time": "Backlog over time (replication mean, 95% band), fluid backlog dashed, arrival rate on the right axis",
    "workers": "Elastic workers over time (replication mean, 95% band) and the arrival rate",
    "window_p99": "p99 wait per window of model time (pooled over replications, 95% sectioning band)",
}

#: The chart of targets against worker count: drawn by ``qbench plan --out`` and by the report of a
#: run with targets (only then), as ``targets.png`` and ``targets.svg``.
TARGETS_CHART = {"targets": "Each target against worker count: steady-state estimate, 95% band, threshold dashed"}

POINTS = 300
#: The most panels, lines per panel, and labelled heatmap rows/columns or theory rows of a chart.
MAX_PANELS, MAX_LINES, MAX_LABELLED = 12, 8, 40
_TAB10 = matplotlib.colormaps["tab10"]
assert isinstance(_TAB10, ListedColormap)  # a qualitative map: a list of colours
# matplotlib types a ListedColormap's colours as any array-like; tab10's are a tuple of RGB triples.
_PALETTE = cast(tuple[tuple[float, float, float], ...], _TAB10.colors)
_VERDICT_MARK = {"stable": "", "overloaded": "OVERLOADED", "inconclusive": "?", "throttled": "THROTTLED",
                 "unreliable": "UNRELIABLE", "failed": "FAILED", "non-stationary": "VARYING"}  # fmt: skip


def worker_colour(workers: int) -> tuple[float, float, float]:
    """The colour of a worker count, the same in every chart.

    Args:
        workers: the worker count (>= 1).
    """
    return _PALETTE[(int(workers) - 1) % len(_PALETTE)]


def _workers(count: int) -> str:
    """``1 worker``, ``3 workers``."""
    return f"{int(count)} worker" + ("" if int(count) == 1 else "s")


def save(fig: Figure, folder: Path, stem: str) -> list[Path]:
    """Write ``fig`` as ``folder/stem.png`` and ``folder/stem.svg``; return both paths.

    Args:
        fig: the figure.
        folder: output folder (created if needed).
        stem: file name without extension.

    Raises:
        analysis.load.ResultsError: the folder or a file cannot be written (one line).
    """
    paths = [folder / f"{stem}.png", folder / f"{stem}.svg"]
    try:
        folder.mkdir(parents=True, exist_ok=True)
        for path in paths:
            fig.savefig(path, dpi=110, bbox_inches="tight")
    except OSError as exc:
        raise ResultsError(f"cannot write the chart {str(exc.filename or folder)!r}: {exc.strerror or exc}") from None
    return paths


def _panel(s: CellStats) -> tuple[str, str, int, str]:
    """The panel of a cell: its (arrival, service, maxsize, behaviours)."""
    return s.params["arrival"], s.params["service"], int(s.params.get("maxsize") or 0), behaviour_label(s.params)


def _pairs(stats: list[CellStats]) -> list[tuple[str, str, int, str]]:
    """The arrival x service x maxsize combinations of the cells with data, in first-appearance order."""
    return list(dict.fromkeys(_panel(s) for s in stats if s.replications))


def _group(stats: list[CellStats], pair: tuple[str, str, int, str]) -> list[CellStats]:
    """The cells with data of one panel, by worker count."""
    cells = [s for s in stats if s.replications and _panel(s) == pair]
    return sorted(cells, key=lambda s: (int(s.params["workers"]), s.cell))


def _evenly(count: int, most: int) -> list[int]:
    """At most ``most`` indices of ``range(count)``, evenly spaced, the first and the last included."""
    if count <= most:
        return list(range(count))
    return sorted({round(k * (count - 1) / (most - 1)) for k in range(most)})


def _shown_pairs(stats: list[CellStats]) -> tuple[list[tuple[str, str, int, str]], int]:
    """The panels a chart draws (at most :data:`MAX_PANELS`, evenly spaced) and how many there are."""
    pairs = _pairs(stats)
    return [pairs[k] for k in _evenly(len(pairs), MAX_PANELS)], len(pairs)


def _shown_cells(group: list[CellStats]) -> list[CellStats]:
    """The cells a panel draws: at most :data:`MAX_LINES` worker counts, evenly spaced, and the fewest
    workers found stable (the answer a reader looks for)."""
    if len(group) <= MAX_LINES:
        return group
    keep = set(_evenly(len(group), MAX_LINES - 1))
    stable = next((k for k, s in enumerate(group) if s.growth.verdict == "stable"), None)
    if stable is not None:
        keep.add(stable)
    return [group[k] for k in sorted(keep)]


def _shown_note(shown: int, total: int, group_sizes: list[int]) -> str:
    """What a chart of a large run leaves out, for its title ('' when it draws everything)."""
    parts = []
    if shown < total:
        parts.append(f"{shown} of {total} configurations (evenly spaced)")
    if any(n > MAX_LINES for n in group_sizes):
        parts.append(f"at most {MAX_LINES} worker counts per panel (evenly spaced, and the fewest stable)")
    return ("\nshown: " + "; ".join(parts) + "; every cell is in the tables and the heatmap") if parts else ""


def _title(pair: tuple[str, str, int, str]) -> str:
    """A panel's title: ``arrival A, service S``, the bound of a bounded queue and the behaviours."""
    arrival, service, bound, behaviours = pair
    title = f"arrival {arrival}, service {service}" + (f", maxsize {bound}" if bound else "")
    return title + (f"\n{behaviours}" if behaviours else "")


def _no_data(ax) -> None:
    """Mark an empty chart: no cell has data."""
    ax.text(0.5, 0.5, "no cell with data (see the failed cells)", ha="center", va="center", transform=ax.transAxes)


def _horizon(run: Run) -> float:
    """The longest replication with data, model seconds (1 when there is none)."""
    ends = data_rows(run.cells)["t_end"].to_numpy(dtype=float)
    ends = ends[np.isfinite(ends)]
    return float(ends.max()) if len(ends) and ends.max() > 0 else 1.0


def panel_grid(count: int, width: float = 4.6, height: float = 3.4) -> tuple[Figure, list]:
    """A figure with ``count`` panels on a grid of at most 4 columns; returns it and the panels.

    Args:
        count: number of panels.
        width: inches per panel.
        height: inches per panel.
    """
    cols = min(4, max(count, 1))
    rows = math.ceil(max(count, 1) / cols)
    fig = Figure(figsize=(width * cols, height * rows + 0.6), layout="constrained")
    axes = fig.subplots(rows, cols, squeeze=False).ravel().tolist()
    for ax in axes[count:]:
        ax.set_visible(False)
    return fig, axes[:count]


def backlog_band(run: Run, cell: int, times: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Queue depth of one cell at ``times``: replication mean and its 95% t band (low, high).

    Replications with data are read one at a time (only ``t`` and ``depth``), so memory holds one.

    Args:
        run: an opened run.
        cell: the cell id.
        times: model times to evaluate the depth step function at.
    """
    rows = data_rows(run.cells)
    reps = rows.loc[rows["cell"] == cell, "replication"].unique()
    curves = []
    if not has_depth(run, int(cell)):  # a summary or sample run: the digests' mean queue per time bin
        kept = {int(r) for r in reps}
        curves = [_binned_depth(d, times) for d in read_digests(run, int(cell)) if d.replication in kept]
    for rep in reps if not curves else ():
        depth = read_depth(run, cells=[cell], replications=[int(rep)], columns=["t", "depth"])
        curves.append(sample_depth(depth["t"].to_numpy(), depth["depth"].to_numpy(), times))
    values = np.array(curves) if curves else np.zeros((0, len(times)))
    mean = values.mean(axis=0) if len(values) else np.full(len(times), np.nan)
    if len(values) < 2:
        return mean, mean, mean
    half = t_quantile(0.5 + LEVEL / 2.0, len(values) - 1) * values.std(axis=0, ddof=1) / math.sqrt(len(values))
    return mean, mean - half, mean + half


def _binned_depth(digest: Digest, times: np.ndarray) -> np.ndarray:
    """A replication's mean queue size in the time bin holding each of ``times`` (NaN past its end)."""
    means = np.diff(digest.queue) / digest.bin_width
    slot = np.minimum((times / digest.bin_width).astype(np.int64), len(means) - 1)
    return np.where(times <= digest.t_end, means[slot], np.nan)


def _digest_sojourns(run: Run, cell: int) -> tuple[np.ndarray, np.ndarray]:
    """The cell's sojourn distribution from its digests: bin centres and their cumulative shares."""
    found = read_digests(run, cell)
    if not found:
        return np.empty(0), np.empty(0)
    tallies = np.zeros(SLOTS)
    for d in found:
        tallies += np.bincount(d.keys["sojourn"] % SLOTS, weights=d.tallies["sojourn"], minlength=SLOTS)
    slots = np.flatnonzero(tallies)
    if not len(slots):
        return np.empty(0), np.empty(0)
    cumulative = np.cumsum(tallies[slots]) / tallies[slots].sum()
    return np.array([slot_value(int(k)) for k in slots]), cumulative


def plot_backlog(run: Run, stats: list[CellStats], folder: Path) -> list[Path]:
    """The headline chart: depth over time, one line per worker count, one panel per distribution pair.

    The fluid-theory growth ``lam - c/E[S]`` is drawn dashed for cells with ``rho >= 1``.

    Args:
        run: the opened run.
        stats: per-cell statistics of the run.
        folder: output folder.
    """
    times = np.linspace(0.0, _horizon(run), POINTS)
    pairs, total = _shown_pairs(stats)
    fig, axes = panel_grid(len(pairs))
    for ax, pair in zip(axes, pairs):
        for s in _shown_cells(_group(stats, pair)):
            _backlog_line(ax, run, s, times)
        ax.xaxis.set_major_locator(MaxNLocator(nbins=5))  # long runs (a plan's 80,000 s) keep legible ticks
        label_panel(ax, _title(pair), "model time (s)", "queue depth (items waiting)")
    if not pairs:
        _no_data(axes[0] if axes else fig.subplots())
    note = _shown_note(len(pairs), total, [len(_group(stats, p)) for p in pairs])
    fig.suptitle(f"Backlog growth - {run.name} (mean of replications, 95% band; dashed: fluid theory){note}")
    return save(fig, folder, "backlog")


def _backlog_line(ax, run: Run, s: CellStats, times: np.ndarray) -> None:
    """One cell's mean depth, its band and, when overloaded in theory (unbounded queue), the fluid line."""
    colour = worker_colour(s.params["workers"])
    mean, low, high = backlog_band(run, s.cell, times)
    verdict = s.growth.verdict
    ax.plot(times, mean, color=colour, lw=1.6, label=f"{_workers(s.params['workers'])} ({verdict})")
    ax.fill_between(times, low, high, color=colour, alpha=0.2, lw=0)
    if float(s.params["rho"]) >= 1 and not int(s.params.get("maxsize") or 0):
        slope = s.fluid_slope
        ax.plot(times, slope * times, color=colour, ls="--", lw=1.0, label=f"fluid {slope:.3g} items/s")


def label_panel(ax, title: str, xlabel: str, ylabel: str, title_size: int = 10) -> None:
    """Title, axis labels, grid and legend of one panel."""
    ax.set_title(title, fontsize=title_size)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.grid(True, alpha=0.3)
    if ax.get_legend_handles_labels()[0]:
        ax.legend(fontsize=7, loc="best")


_PERCENTILES = {"p50": "#1b9e77", "p95": "#d95f02", "p99": "#7570b3"}


def plot_latency(stats: list[CellStats], folder: Path) -> list[Path]:
    """Wait and sojourn p50/p95/p99 against worker count, with 95% CI bars, one panel per pair.

    The y-axis is symmetric-log so zero waits stay on the chart.

    Args:
        stats: per-cell statistics of the run.
        folder: output folder.
    """
    pairs, total = _shown_pairs(stats)
    fig, axes = panel_grid(len(pairs))
    for ax, pair in zip(axes, pairs):
        group = _group(stats, pair)
        for kind, style in (("wait", "-"), ("sojourn", "--")):
            for pct, colour in _PERCENTILES.items():
                _latency_line(ax, group, f"{kind}_{pct}", colour, style)
        ax.set_yscale("symlog", linthresh=0.1)
        counts = sorted({int(s.params["workers"]) for s in group})
        if len(counts) <= 2 * MAX_LINES:
            ax.set_xticks(counts)
        label_panel(ax, _title(pair), "workers", "time (model s)")
    if not pairs:
        _no_data(axes[0] if axes else fig.subplots())
    note = f"\nshown: {len(pairs)} of {total} configurations (evenly spaced)" if len(pairs) < total else ""
    fig.suptitle(f"Latency percentiles against worker count (solid: wait, dashed: sojourn; 95% CI bars or band){note}")
    return save(fig, folder, "latency")


def _latency_line(ax, group: list[CellStats], metric: str, colour: str, style: str) -> None:
    """One percentile line with CI error bars across worker counts."""
    rows = [(s.params["workers"], s.metrics[metric]) for s in group if metric in s.metrics]
    if not rows:
        return
    x = [w for w, _ in rows]
    y = np.array([e.mean for _, e in rows])
    if len(rows) > 2 * MAX_LINES:  # many worker counts: a band, not a forest of error bars
        low, high = (np.array([getattr(e, side) for _, e in rows]) for side in ("low", "high"))
        ax.plot(x, y, color=colour, ls=style, lw=1.2, label=metric.replace("_", " "))
        ax.fill_between(x, np.where(np.isnan(low), y, low), np.where(np.isnan(high), y, high), color=colour,
                        alpha=0.15, lw=0)  # fmt: skip
        return
    err = np.array([[e.mean - e.low, e.high - e.mean] for _, e in rows]).T
    err = np.nan_to_num(err, nan=0.0)
    ax.errorbar(x, y, yerr=err, color=colour, ls=style, marker="o", ms=3, capsize=3, label=metric.replace("_", " "))


def plot_cdf(run: Run, stats: list[CellStats], folder: Path, sample: int = 20_000) -> list[Path]:
    """Empirical CDF of sojourn times per cell, one panel per pair, log x-axis where tails are heavy.

    A panel's x-axis is logarithmic when some cell's p99 sojourn exceeds 20 times its median.
    At most ``sample`` finished items per cell are drawn (evenly spaced, deterministic).

    Args:
        run: the opened run.
        stats: per-cell statistics.
        folder: output folder.
        sample: most items plotted per cell.
    """
    pairs, total = _shown_pairs(stats)
    fig, axes = panel_grid(len(pairs))
    for ax, pair in zip(axes, pairs):
        heavy = False
        for s in _shown_cells(_group(stats, pair)):
            if has_items(run, s.cell):
                values = read_items(run, cells=[s.cell], columns=["sojourn"], join=False)["sojourn"].dropna().to_numpy()
                values = np.sort(values[np.linspace(0, len(values) - 1, min(sample, len(values))).astype(int)])
                shares = np.arange(1, len(values) + 1) / max(len(values), 1)
            else:  # a summary run: the digests' histogram
                values, shares = _digest_sojourns(run, s.cell)
            if len(values) == 0:
                continue
            ax.plot(values, shares, color=worker_colour(s.params["workers"]), label=_workers(s.params["workers"]))
            median, p99 = np.interp(0.5, shares, values), np.interp(0.99, shares, values)
            heavy |= p99 > 20 * max(median, 1e-9)
        if heavy:
            ax.set_xscale("log")
        label_panel(ax, _title(pair), "sojourn (model s)" + (", log" if heavy else ""), "fraction of finished items")
    if not pairs:
        _no_data(axes[0] if axes else fig.subplots())
    note = _shown_note(len(pairs), total, [len(_group(stats, p)) for p in pairs])
    fig.suptitle(f"Sojourn-time CDF per cell (finished items){note}")
    return save(fig, folder, "sojourn_cdf")


def plot_heatmap(stats: list[CellStats], folder: Path) -> list[Path]:
    """Heatmap of p99 wait (log colour scale) over workers x distribution pair, verdicts written in.

    Args:
        stats: per-cell statistics.
        folder: output folder.
    """
    stats = [s for s in stats if s.replications]
    pairs = _pairs(stats)
    workers = sorted({int(s.params["workers"]) for s in stats})
    grid = np.full((max(len(pairs), 1), max(len(workers), 1)), np.nan)
    labelled = len(pairs) <= MAX_LABELLED and len(workers) <= MAX_LABELLED
    width = 1.6 * len(workers) + 4.5 if labelled else min(0.12 * len(workers) + 6.0, 18.0)
    height = 0.55 * len(pairs) + 2.0 if labelled else min(0.12 * len(pairs) + 3.0, 14.0)
    fig = Figure(figsize=(width, height), layout="constrained")
    ax = fig.subplots()
    if not stats:
        _no_data(ax)
    row_of, column_of = {p: i for i, p in enumerate(pairs)}, {w: j for j, w in enumerate(workers)}
    for s in stats:
        i, j = row_of[_panel(s)], column_of[int(s.params["workers"])]
        p99 = s.metrics.get("wait_p99")
        grid[i, j] = math.log10(max(p99.mean, 1e-3)) if p99 else np.nan
        if labelled:
            text = f"{p99.mean:.3g} s" if p99 else "n/a"
            ink = "white" if grid[i, j] > 2 else "black"
            ax.text(j, i, f"{text}\n{_VERDICT_MARK[s.growth.verdict]}".strip(), ha="center", va="center",
                    fontsize=7, color=ink)  # fmt: skip
    image = ax.imshow(grid, cmap="YlOrRd", aspect="auto", interpolation="nearest")
    fig.colorbar(image, ax=ax, label="log10 p99 wait (model s)")
    names = [f"{a} / {s}" + (f" / maxsize {m}" if m else "") + (f" / {b}" if b else "") for a, s, m, b in pairs]
    columns, rows = _evenly(len(workers), MAX_LABELLED), _evenly(len(pairs), MAX_LABELLED)
    ax.set_xticks(columns, [str(workers[j]) for j in columns])
    ax.set_yticks(rows, [names[i] for i in rows], fontsize=8)
    ax.set_xlabel("workers")
    ax.set_ylabel("arrival / service")
    if labelled:
        ax.set_title("p99 wait by configuration (OVERLOADED: backlog grows; THROTTLED: bounded queue held the pusher "
                     "back; UNRELIABLE: clock lagged; ?: inconclusive)", fontsize=9)  # fmt: skip
    else:
        ax.set_title(f"p99 wait by configuration: {len(stats)} cells (verdicts in the report's table)", fontsize=9)
    return save(fig, folder, "heatmap")


def plot_theory(rows: list[Agreement], stats: list[CellStats], folder: Path) -> list[Path]:
    """Relative error of measurement against theory, with the measurement's 95% CI as bars.

    Exact formulas are drawn in one colour, approximations in another; a bar that crosses 0
    means theory lies inside the CI.

    Args:
        rows: theory-versus-measurement rows.
        stats: per-cell statistics (for labels).
        folder: output folder.
    """
    labels = {s.cell: s.label for s in stats}
    usable = [r for r in rows if r.theory and not math.isnan(r.measured.mean)]
    if len(usable) > MAX_LABELLED:
        return _theory_scatter(usable, folder)
    fig = Figure(figsize=(9, 0.28 * len(usable) + 1.8), layout="constrained")
    ax = fig.subplots()
    for k, row in enumerate(usable):
        rel = 100 * row.relative_error
        low, high = (100 * (v - row.theory) / row.theory for v in (row.measured.low, row.measured.high))
        colour = "#1f77b4" if row.exact else "#ff7f0e"
        xerr = None if math.isnan(low) else [[max(rel - min(low, high), 0.0)], [max(max(low, high) - rel, 0.0)]]
        ax.errorbar([rel], [k], xerr=xerr, fmt="o", color=colour, capsize=3, ms=4)
    ax.axvline(0, color="black", lw=0.8)
    ax.set_yticks(range(len(usable)), [f"{labels.get(r.cell, r.cell)}: {r.quantity}" for r in usable], fontsize=7)
    ax.invert_yaxis()
    ax.set_xscale("symlog", linthresh=10)
    ax.plot([], [], "o", color="#1f77b4", label="exact formula")
    ax.plot([], [], "o", color="#ff7f0e", label="approximation or limit")
    label_panel(ax, "Measured vs theory: (measured - theory) / theory, 95% CI", "relative error (%)", "")
    return save(fig, folder, "theory")


def _theory_scatter(rows: list[Agreement], folder: Path) -> list[Path]:
    """The theory chart of a large run: measured against predicted, one point per row, log-log, with
    the line of agreement; a point whose interval holds the prediction is filled, one without an
    interval (a single replication) is a cross. Figures below :data:`_TINY` (a probability of
    waiting of 1e-190 among 100 idle workers) are left out, and the title says how many."""
    shown = [r for r in rows if r.theory > _TINY and r.measured.mean > _TINY]
    fig = Figure(figsize=(8, 7), layout="constrained")
    ax = fig.subplots()
    for exact, colour, name in ((True, "#1f77b4", "exact formula"), (False, "#ff7f0e", "approximation or limit")):
        mine = [r for r in shown if r.exact == exact]
        bounded = [r for r in mine if not (math.isnan(r.measured.low) or math.isnan(r.measured.high))]
        groups = (([r for r in bounded if r.measured.low <= r.theory <= r.measured.high], "o", colour, "inside the 95% CI"),
                  ([r for r in bounded if not r.measured.low <= r.theory <= r.measured.high], "o", "none", "outside"),
                  ([r for r in mine if r not in bounded], "x", colour, "no interval (one replication)"))  # fmt: skip
        for group, marker, face, what in groups:
            if group:
                x, y, label = (
                    [r.theory for r in group],
                    [r.measured.mean for r in group],
                    f"{name}, {what} ({len(group)})",
                )
                if marker == "o":
                    ax.scatter(x, y, s=9, marker="o", facecolors=face, edgecolors=colour, lw=0.6, label=label)
                else:
                    ax.scatter(x, y, s=9, marker="x", color=colour, lw=0.6, label=label)
    values = [v for r in shown for v in (r.theory, r.measured.mean)]
    low, high = (min(values), max(values)) if values else (1e-3, 1.0)
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.plot([low, high], [low, high], color="black", lw=0.8)
    left = f"; {len(rows) - len(shown)} below {_TINY:g} left out" if len(shown) < len(rows) else ""
    label_panel(ax, f"Measured vs theory, {len(shown)} rows (line: agreement{left})", "theory", "measured")
    return save(fig, folder, "theory")


#: The smallest figure the large-run theory chart draws.
_TINY = 1e-9


def plot_targets(panels: list[dict], folder: Path, *, xlabel: str = "workers", title: str = "") -> list[Path]:
    """Each target against worker count (or load factor): the steady-state estimate with its interval
    as a band, the threshold as a dashed line, the side that fails it shaded, and the answer marked.

    Args:
        panels: one dict per panel: ``title``, ``target`` (a :class:`bench.results_format.Target`),
            ``x``, ``estimate``, ``low``, ``high`` (lists of equal length, steady-state figures only),
            ``answer`` (the x of the answer, or None), and optionally ``unstable`` (where there is no
            steady state, shaded grey: worker counts up to the offered load, or load factors from the
            stability limit up) and ``level``.
        folder: output folder (``targets.png`` and ``targets.svg``).
        xlabel: the x axis: ``workers``, or the load factor.
        title: the figure's title.
    """
    fig, axes = panel_grid(max(len(panels), 1))
    for ax, panel in zip(axes, panels):
        target = panel["target"]
        x = np.asarray(panel["x"], dtype=float)
        order = np.argsort(x)
        x = x[order]
        mean, low, high = (np.asarray(panel[k], dtype=float)[order] for k in ("estimate", "low", "high"))
        ax.fill_between(x, np.where(np.isnan(low), mean, low), np.where(np.isnan(high), mean, high), color="#1f77b4",
                        alpha=0.25, lw=0, label=f"{panel.get('level', LEVEL):.0%} interval")  # fmt: skip
        ax.plot(x, mean, "o-", color="#1f77b4", ms=4, label=f"{target.metric} (steady state)")
        ax.axhline(target.value, color="#d62728", ls="--", lw=1.2, label=f"target {target.op} {target.value:g}")
        top = max(float(np.nanmax(high)) if len(high) and not np.all(np.isnan(high)) else target.value,
                  target.value) * 1.15 or 1.0  # fmt: skip
        if target.op == "<=":
            ax.axhspan(target.value, top, color="#d62728", alpha=0.06, lw=0)
        else:
            ax.axhspan(0, target.value, color="#d62728", alpha=0.06, lw=0)
        if panel.get("answer") is not None:
            ax.axvline(panel["answer"], color="#2ca02c", lw=1.2, label=f"answer: {panel['answer']:.3g}")
        shown = [*x, *([panel["answer"]] if panel.get("answer") is not None else [])]
        left, right = (min(shown), max(shown)) if shown else (0.0, 1.0)
        pad = 0.5 if xlabel == "workers" else 0.05 * max(right - left, right * 0.1, 1e-9)
        left, right = left - pad, right + pad
        limit = panel.get("unstable")
        if limit is not None:
            if xlabel == "workers":  # counts up to the offered load
                left = min(left, limit - pad)
                ax.axvspan(left, limit, color="#7f7f7f", alpha=0.2, lw=0, label="no steady state")
            elif limit < right + 10 * pad:  # load factors from the stability limit up
                right = max(right, limit + pad)
                ax.axvspan(limit, right, color="#7f7f7f", alpha=0.2, lw=0, label="no steady state")
        ax.set_xlim(left, right)
        if xlabel == "workers" and shown:
            ax.set_xticks([t for t in range(math.ceil(left), math.floor(right) + 1)])
        ax.set_ylim(bottom=0, top=top)
        unit = {"s": " (model s)", "items": " (items)"}.get(target.unit, "")
        label_panel(ax, panel["title"], xlabel, f"{target.metric}{unit}", title_size=9)
    if not panels:
        _no_data(axes[0] if axes else fig.subplots())
    fig.suptitle(title or "Targets against worker count (steady-state estimate and interval; dashed: the threshold)")
    return save(fig, folder, "targets")
