"""The per-cell summary table: what ``make bench`` prints at the end of a run and the report shows.

Cells with data get a row; cells whose replications failed are listed with their error
(:func:`failed_rows`), and input checks that failed (:mod:`analysis.inputs`) are listed as
warnings (:func:`warning_lines`) after the table.
"""

from __future__ import annotations

import math
from pathlib import Path

from analysis.agreement import Agreement
from analysis.backlog import DEPTH_TARGET
from analysis.behaviours import behaviour_label, elastic, workers_label
from analysis.cell_stats import CellStats, summarize
from analysis.classes import group_stats, group_values
from analysis.estimate import Estimate
from analysis.load import open_run
from analysis.plan import run_answers, run_targets
from analysis.tables import Rows, to_text

__all__ = [
    "class_lines", "failed_rows", "over_time_lines", "stationarity_line", "summary_rows", "summary_table",
    "theory_rows", "verdict_text", "warning_lines",
]  # fmt: skip


def _num(value: float, digits: int = 3) -> str:
    """A number with ``digits`` significant digits, ``n/a`` for NaN."""
    return "n/a" if value is None or math.isnan(value) else f"{value:.{digits}g}"


def verdict_text(s: CellStats) -> str:
    """The verdict with its reason, and with the time to a depth of 1,000 when overloaded.

    Args:
        s: the cell's statistics.
    """
    g = s.growth
    if g.verdict != "overloaded" or g.time_to_target is None or not math.isfinite(g.time_to_target.mean):
        return g.describe()
    reach = f"{DEPTH_TARGET} deep at ~{g.time_to_target.mean:,.0f} s"
    return f"overloaded ({reach}; {g.reason})" if g.reason else f"overloaded ({reach})"


def _arrivals(s: CellStats) -> str:
    """Achieved against offered arrival rate for a bounded queue, ``-`` for an unbounded one."""
    held = s.growth.throttling
    return "-" if held is None else f"{held.achieved.format()} of {held.offered:.3g}"


def summary_rows(stats: list[CellStats], *, detail: bool = False) -> Rows:
    """One formatted row per cell with data: parameters, wait mean ± CI, p99 wait, slope ± CI, verdict.

    Latency figures are steady-state (:mod:`analysis.quantiles`); where the warm-up never ended
    (an overloaded cell: no steady state) they say ``(unsettled)``. Cells without data (every
    replication failed) are left out: :func:`failed_rows` lists them.

    Args:
        stats: per-cell statistics.
        detail: add sojourn, throughput, utilisation, depth, censored items and Little's law.
    """
    rows = []
    labelled = any(behaviour_label(s.params) for s in stats)
    costly = any(elastic(s.params) is not None for s in stats)
    for s in (s for s in stats if s.replications):
        m = s.metrics
        mark = "" if s.settled else " (unsettled)"  # no steady state: the figure covers the runs' second halves
        mark = mark if s.stationary else " (whole run)"  # non-stationary arrivals: every item, no warm-up cut
        row = {"cell": str(s.cell), "workers": workers_label(s.params), "arrival": str(s.params["arrival"]),
               "service": str(s.params["service"]), "maxsize": str(s.params.get("maxsize", 0)),
               "rho": _num(float(s.params["rho"])), "arrivals/s achieved of offered": _arrivals(s),
               "wait mean (s)": m["wait_mean"].format() + mark, "p99 wait (s)": m["wait_p99"].format() + mark,
               "backlog slope (items/s)": s.growth.slope.format(), "verdict": verdict_text(s)}  # fmt: skip
        if labelled:  # a run with behaviours says each cell's, before its figures
            row = {**dict(list(row.items())[:6]), "behaviours": behaviour_label(s.params) or "-",
                   **dict(list(row.items())[6:])}  # fmt: skip
        if detail:
            row.update({"sojourn mean (s)": m["sojourn_mean"].format() + mark,
                        "p99 sojourn (s)": m["sojourn_p99"].format() + mark,
                        "throughput (items/s)": m["throughput"].format(), "utilisation": m["utilisation"].format(),
                        "mean depth": m["depth_mean"].format(), "still queued at end": s.censored.format(),
                        "Little L = lam W": s.little.verdict, "replications": f"{s.replications}"
                        + (f" ({s.failed} failed)" if s.failed else "")})  # fmt: skip
        if costly:
            row.update({"worker-seconds": m["worker_seconds"].format(), "peak workers": m["workers_peak"].format()})
        rows.append(row)
    return rows


def failed_rows(stats: list[CellStats]) -> Rows:
    """One row per cell with failed replications: its id, parameters, how many failed and the error.

    Args:
        stats: per-cell statistics.
    """
    return [{"cell": str(s.cell), "parameters": _parameters(s), "failed": f"{s.failed} of {s.failed + s.replications}",
             "error": s.error or "no error recorded"} for s in stats if s.failed]  # fmt: skip


def _parameters(s: CellStats) -> str:
    """The cell's grid axes as ``key=value`` words."""
    return " ".join(f"{k}={s.params[k]}" for k in ("workers", "arrival", "service", "maxsize") if k in s.params)


def warning_lines(stats: list[CellStats]) -> list[str]:
    """One line per input check that failed (a measured mean outside its interval of the spec's mean).

    Args:
        stats: per-cell statistics.
    """
    return [check.warning() for s in stats for check in s.warnings]


def theory_rows(rows: list[Agreement], stats: list[CellStats]) -> Rows:
    """Formatted theory-versus-measurement rows.

    Args:
        rows: rows from :func:`analysis.agreement.compare_theory`.
        stats: per-cell statistics (for labels).
    """
    labels = {s.cell: s.label for s in stats}
    return [{"cell": labels.get(r.cell, str(r.cell)), "quantity": r.quantity, "model": r.model,
             "kind": "exact" if r.exact else "approx./limit", "theory": _num(r.theory, 4),
             "measured (95% CI)": r.measured.format(4), "relative error": _relative(r.relative_error),
             "in 95% CI": _judged(r.inside_ci, r.measured), "within tolerance (99% CI)": _judged(r.agrees, r.measured),
             "note": r.note} for r in rows]  # fmt: skip


def _judged(inside: bool, measured: Estimate) -> str:
    """``yes``/``no``; a ``no`` against an interval of zero width (every replication gave the same
    value, as in deterministic cells) says so: the gap is then no sampling noise."""
    if inside:
        return "yes"
    return "no (zero spread)" if measured.half_width == 0 else "no"


def _relative(value: float) -> str:
    """A relative error as a signed percentage (one significant digit below 0.1%, never -0.0%)."""
    if math.isnan(value):
        return "n/a"
    pct = 100 * value
    return f"{pct:+.1g}%" if 0 < abs(pct) < 0.1 else f"{pct:+.1f}%"


def summary_table(run: Path) -> str:
    """A compact plain-text table, one line per cell with data, of a results folder; then the failed
    cells with their errors and the warnings of the input checks, one line each; and, when the run
    has targets, the fewest workers meeting them per arrival x service x maxsize.

    Args:
        run: the results folder.

    Raises:
        analysis.load.ResultsError: not a readable results folder.
    """
    opened = open_run(run)
    stats = summarize(opened)
    failed = failed_rows(stats)
    head = f"{opened.name}: {len(opened.params)} cells"
    head += f", {len(failed)} with failed replications" if failed else ""
    parts = [head + "\n" + to_text(summary_rows(stats))]
    if failed:
        parts.append("failed cells:\n" + "\n".join(f"  cell {r['cell']} ({r['parameters']}): {r['failed']} "
                                                   f"replications failed: {r['error']}" for r in failed))  # fmt: skip
    classes = class_lines(opened, stats)
    if classes:
        parts.append("classes (mean and p99 wait, 95% CI):\n" + "\n".join(classes))
    steady = stationarity_line(stats)
    if steady:
        parts.append(steady)
    moving = over_time_lines(opened, stats)
    if moving:
        parts.append("over time (per window of model time; 95% intervals across replications):\n" + "\n".join(moving))
    warnings = warning_lines(stats)
    if warnings:
        parts.append("warnings:\n" + "\n".join(f"  warning: {line}" for line in warnings))
    targets, confidence = run_targets(opened)
    if targets:
        lines = []
        for a in run_answers(opened, stats):
            said = [f"{a.meeting} workers ({a.meeting_note})" if a.meeting is not None else a.meeting_note]
            fixed = next((c for c in a.candidates if c.workers == a.meeting), None)
            if fixed is not None and fixed.cost is not None and a.elastic:
                said[0] += f", {fixed.cost.format()} worker-s"
            said += [f"elastic {c.label} {c.verdict} {', '.join(c.failing() or c.undecided())}".rstrip()
                     + (f", {c.cost.format()} worker-s" if c.cost is not None else "") for c in a.elastic]  # fmt: skip
            lines.append(f"  {a.arrival} / {a.service}" + (f" / maxsize {a.maxsize}" if a.maxsize else "") + ": "
                         + "; ".join(w for w in said if w))  # fmt: skip
        kind = (
            "steady state" if all(s.stationary for s in stats) else "steady state, or the whole run where arrivals vary"
        )
        head = f"how many workers meet {', '.join(map(str, targets))} ({kind}, {confidence:.0%} intervals):"
        parts.append(head + "\n" + "\n".join(lines))
    return "\n\n".join(parts)


def _cells_text(ids: list[int]) -> str:
    return ", ".join(str(i) for i in ids)


def stationarity_line(stats: list[CellStats]) -> str:
    """Which cells the steady-state figures apply to, when the run has cells whose arrival process is
    not stationary (empty otherwise).

    Args:
        stats: per-cell statistics.
    """
    moving = [s.cell for s in stats if s.replications and not s.stationary]
    if not moving:
        return ""
    steady = [s.cell for s in stats if s.replications and s.stationary]
    head = (f"steady state (stationary arrivals: MSER-5 warm-up cut, verdict by the backlog slope, steady-state "
            f"theory): cells {_cells_text(steady)}\n" if steady else "")  # fmt: skip
    return (head + f"whole run (non-stationary arrivals: no steady state, so no warm-up cut, no verdict by slope and "
            f"no steady-state theory; latency over every item of the run): cells {_cells_text(moving)}")  # fmt: skip


def over_time_lines(run, stats: list[CellStats], windows: dict | None = None) -> list[str]:
    """One line per cell with figures over time (non-stationary arrivals, elastic workers or a backlog
    at 0): its peak mean backlog and p99 wait per window, its workers' cost and peak, the time to drain.

    Args:
        run: the opened run.
        stats: per-cell statistics.
        windows: their figures over time by cell id (computed here when not given).
    """
    from analysis.windows import cell_windows, time_varying

    lines = []
    for s in (s for s in stats if s.replications and time_varying(s.params)):
        found = windows[s.cell] if windows is not None and s.cell in windows else cell_windows(run, s)
        said = []
        depths = [w.depth for w in found.windows if math.isfinite(w.depth.mean)]
        if depths:
            top = max(depths, key=lambda e: e.mean)
            at = next(w for w in found.windows if w.depth is top)
            said.append(f"backlog peaks at {top.format()} items in [{at.start:g}, {at.end:g}) s")
        p99 = [(w, w.latency["wait_p99"]) for w in found.windows if math.isfinite(w.latency["wait_p99"].mean)]
        if p99:
            w, top = max(p99, key=lambda pair: pair[1].mean)
            said.append(f"p99 wait per {found.width:g} s window up to {top.format()} s in [{w.start:g}, {w.end:g})")
        if elastic(s.params) is not None:
            said.append(f"{s.metrics['worker_seconds'].format()} worker-s, peak {s.metrics['workers_peak'].format()} "
                        "workers")  # fmt: skip
        ended = [float(v) for v in run.cells.loc[run.cells["cell"] == s.cell, "arrivals_end"].dropna()]
        if ended:
            said.append(f"its arrivals ran out at t={min(ended):.6g} s in {len(ended)} of {s.replications} "
                        "replications (a trace shorter than the run)")  # fmt: skip
        if found.drain is not None:
            said.append(f"drains its backlog0 of {int(s.params['backlog0'])} to <= {found.drain_target} waiting in "
                        f"{found.drain.format()} s")  # fmt: skip
        lines.append(f"  cell {s.cell} ({s.label}{', ' + behaviour_label(s.params) if behaviour_label(s.params) else ''})"
                     f": {'; '.join(said)}")  # fmt: skip
    return lines


def class_lines(run, stats: list[CellStats]) -> list[str]:
    """One line per cell with classes (or several pushers): each group's share, mean and p99 wait.

    Args:
        run: the opened run.
        stats: per-cell statistics.
    """
    lines = []
    for s in (s for s in stats if s.replications):
        groups = group_stats(group_values(run, s.cell))
        if groups:
            said = "; ".join(f"{g} ({m['share'].mean:.0%}): {m['wait_mean'].format()} s, p99 {m['wait_p99'].format()} s"
                             for g, m in groups.items())  # fmt: skip
            lines.append(f"  cell {s.cell} ({s.label}, {behaviour_label(s.params)}): {said}")
    return lines
