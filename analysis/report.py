"""The report of a run: ``report/index.html`` (self-contained, opens from disk) and ``report/report.md``.

Both open with what a reader came for, **How many workers?**: per (arrival, service, maxsize), the
fewest workers whose backlog is stable and, when the run has targets (``qbench run --slo``, or a
plan's evidence folder), the fewest that meet them, with the figures at that count
(:func:`analysis.plan.run_answers`); a plan's own answer line; then the headline backlog chart and,
with targets, each target against worker count. Below come a *Warnings* section (input means that
missed their specs, :mod:`analysis.inputs`; "none" when there is nothing to warn of), the cells
whose replications failed with their parameters and error, the summary table per cell with data
with 95% intervals and verdicts, the other charts (PNG shown, SVG linked; files alongside, relative
links; cells without data are left out), the theory table, the run's parameters and versions, and
a short statement of method so a reader can judge every number.
"""

from __future__ import annotations

import html
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypeVar

from tqdm import tqdm

from analysis.agreement import Agreement, compare_theory
from analysis.backlog import DEPTH_TARGET, LAG_FRACTION, PRACTICAL
from analysis.behaviour_agreement import behaviour_theory
from analysis.behaviour_plots import plot_classes, plot_outcomes
from analysis.cell_stats import LITTLE_TOLERANCE, CellStats, summarize
from analysis.inputs import CHECK_LEVEL, ROUNDING
from analysis.load import ResultsError, Run, open_run, record_level
from analysis.outcomes import class_rows, outcome_rows
from analysis.plan import RunAnswer, run_answers, run_targets
from analysis.plots import (
    CHARTS,
    TARGETS_CHART,
    plot_backlog,
    plot_cdf,
    plot_heatmap,
    plot_latency,
    plot_targets,
    plot_theory,
)
from analysis.summary_table import (
    failed_rows,
    over_time_lines,
    stationarity_line,
    summary_rows,
    theory_rows,
    warning_lines,
)
from analysis.tables import Rows, to_html, to_markdown
from analysis.time_plots import plot_over_time, plot_window_p99, plot_workers
from analysis.windows import CellWindows, cell_windows, piece_theory, time_varying
from bench.results_format import PLAN_KEY

__all__ = ["BEHAVIOUR_METHOD", "METHOD", "target_panels", "write_report"]

_T = TypeVar("_T")

#: The statement of method for behaviours (classes, abandonment, batches, retries, a user's scenario).
BEHAVIOUR_METHOD = (
    "Behaviours: the FIFO formulas apply to the built-in pool under any discipline (the mean wait and P(wait) of a "
    "work-conserving queue do not depend on the order served), but not with patience, batches, a setup time, "
    "failures or a user's scenario; those cells get the behaviour rows instead: Cobham's class waits for priority "
    "(M/M/c, or M/G/1), the variance of the wait for M/M/1 FIFO and LIFO, Erlang-A for exponential patience "
    "(abandonment, time in queue of every item, P(wait)), attempts per item and the served share for retries, the "
    "saturated throughput of full batches. Wait and sojourn figures cover items served (or still in the system); "
    "abandoned items and items that gave up after their last attempt are counted in 'What became of the items', "
    "and per class under 'Classes'. Little's law is not checked with abandonment or retries."
)


#: The statement of method printed at the end of every report.
METHOD = [
    "How many workers: the fewest worker count in the run whose backlog verdict is stable, and, with targets, the "
    "fewest whose every target meets: the target's interval (95%, or the plan's confidence) lies on its side of the "
    "threshold (for wait_p99<=5: the interval's upper end is at most 5 s). Only the counts the run holds are judged; "
    "a count below the answer that was not run is named. Counts at or below the offered load (lam E[S]) have no "
    "steady state and fail every target.",
    "Latency figures (mean, p50, p95, p99 of wait and sojourn) are steady-state estimates from every item, read "
    "from each replication's digest (kept whatever the run's record level, so a summary run and an items run of "
    "the same seed show the same figures): the warm-up found by MSER on the replications' batch means of the wait "
    "(batches of 5 waits, doubled as a run passes 5,120 of them) is dropped from each replication, rounded up to "
    "the start of one of its 16 to 32 segments; the kept items of all replications are pooled for the point "
    "estimate (a percentile is the smallest value with at least that share of items at or below it, reported as "
    "the centre of the log-histogram bin that holds it: within 0.115%; means, P(wait) and shares are exact sums), "
    "and the 95% interval comes from sectioning: the same statistic on each replication alone, Student t with "
    "R - 1 degrees of freedom, the spread taken around the pooled figure. Utilisation and the mean queue length "
    "come from integrals kept at 512 time-bin boundaries per replication, linear between them. "
    "(The mean of per-replication percentiles of runs started empty, which cells.parquet also holds, is biased "
    "low.) '(unsettled)' marks a cell whose warm-up never ended (no steady state: an overloaded cell); its latency "
    "figures cover the second half of each run. Residual bias shrinks as runs get longer.",
    "Other figures are means over independent replications with a 95% Student t interval (shown as ± half-width). "
    "Replications with data are those with status ok, capped (stopped at max_backlog; figures cover [0, t_end]) "
    "or lagged; failed ones have none and their cells are listed under Failed cells.",
    f"Verdict, first rule that applies (delta = {PRACTICAL:.0%} of the offered arrival rate 1/arrival_mean): "
    "*failed* when no replication has data; *unreliable* when a replication is lagged (a scaled or real clock fell "
    f"behind real time: mean timer lag above {LAG_FRACTION:.0%} of min(arrival_mean, service_mean)), never stable or "
    "overloaded; *overloaded* when a replication was capped (its queue reached max_backlog), with the slope of the "
    "data rows; *throttled* for a bounded queue (maxsize > 0) whose pusher was blocked in put for a material part of "
    f"the arrival period: blocked_fraction's interval above 0 and its mean >= {PRACTICAL:.0%} (with one replication "
    "or deterministic inputs, the measured fraction >= 1%), shown with the achieved against the offered arrival "
    "rate; then the slope: with interval [low, high], *overloaded* iff low > 0 and the mean slope >= delta, "
    "*stable* iff high < delta, otherwise *inconclusive*.",
    "Inconclusive says why: one replication gives no interval (use --replications 2 or more); a zero-width "
    "interval (every replication gave the same slope) decides nothing unless the inputs are deterministic "
    "(arrival_cv = service_cv = 0: every replication is the same run, so the point value decides); a bounded "
    f"queue that looks stable while its blocked fraction is not confidently below {PRACTICAL:.0%} may be stable only "
    f"because the pusher was held back. Overloaded cells show the time to reach a depth of {DEPTH_TARGET:,} from "
    "empty at the measured rate.",
    "Backlog slope: time-weighted least-squares slope of the queue-size step function over the arrival period. "
    "Items still queued at the end are in the depth, so they count in the verdict; wait and sojourn figures "
    "cover items that were taken or finished, so for overloaded cells they are lower bounds.",
    f"Warnings: a cell's measured mean inter-arrival or service time is checked against its spec's mean; the "
    f"interval is the {CHECK_LEVEL:.0%} Student t interval of the per-replication means (two or more replications) "
    f"or mean ± z({0.5 + CHECK_LEVEL / 2:g}) sd / sqrt(n) of the draws of one replication, widened by {ROUNDING:g} s "
    "(the clock rounds delays to whole nanoseconds). A spec's mean outside it (typically a heavy tail that no "
    "feasible sample reaches) is a warning: that cell's figures describe the sample, not the spec.",
    "Steady-state figures in the theory table use the same estimator and warm-up cut (the cut is in the note "
    "column); the raw data is never changed.",
    f"Little's law: L (time-average number waiting) against lam W per replication; holds when the interval of "
    f"the gap contains 0 or the gap is under {LITTLE_TOLERANCE:.0%}; not checked for overloaded cells.",
    "Theory: exact formulas (M/M/c, M/G/1) are judged by the 99% interval (a table has many rows); approximations "
    "(Allen-Cunneen, Kingman) and limits (fluid slope, utilisation) are shown for information. Every formula "
    "assumes an unbounded queue, so bounded cells (maxsize > 0) get no theory row.",
    BEHAVIOUR_METHOD,
    "Over time: cells with a non-stationary arrival process (a schedule, a daily cycle, a trace), elastic workers or "
    "a backlog at t = 0 get figures per window of model time (a round width giving at least 24 windows): the "
    "latency of the items put in the window (pooled over replications, sectioning interval), the time-average depth "
    "and workers, the arrival rate in force and as measured (Student t intervals across replications). A "
    "non-stationary cell has no steady state: its latency figures cover the whole run (no warm-up cut), its verdict "
    "is 'non-stationary' and it gets no steady-state theory; a schedule's long pieces get their own M/M/c (or fluid) "
    "row, and the fluid backlog Q' = lam(t) - c/E[S] (clipped at 0, from backlog0) is dashed on the chart. Elastic "
    "cells' utilisation and cost use the worker-seconds provisioned (starting workers included); the time to drain "
    "a backlog at 0 is the first time the depth reaches the cell's steady-state mean depth (0 for a "
    "non-stationary cell), per replication.",
]


def write_report(run: Path, *, progress: bool = True, jobs: int = 1) -> Path:
    """Write ``run/report/index.html``, ``report.md`` and the charts (PNG + SVG); return the HTML path.

    Args:
        run: the results folder.
        progress: show a progress bar on stderr.
        jobs: processes for the statistics of a large run (:func:`analysis.cell_stats.summarize`).

    Raises:
        analysis.load.ResultsError: not a readable results folder, or ``run/report`` cannot be a folder.
    """
    opened = open_run(run)
    folder = _report_folder(opened.path / "report")
    targets, confidence = run_targets(opened)
    stats: list[CellStats]  # computed below, before the charts that read them are drawn
    theory: list[Agreement]
    answers: list[RunAnswer]
    charts = {
        "backlog": lambda: plot_backlog(opened, stats, folder),
        "latency": lambda: plot_latency(stats, folder),
        "sojourn_cdf": lambda: plot_cdf(opened, stats, folder),
        "heatmap": lambda: plot_heatmap(stats, folder),
        "theory": lambda: plot_theory(theory, stats, folder),
        "classes": lambda: plot_classes(opened, stats, folder),
        "outcomes": lambda: plot_outcomes(opened, stats, folder),
        "over_time": lambda: plot_over_time(opened, stats, moving, folder),
        "workers": lambda: plot_workers(opened, stats, moving, folder),
        "window_p99": lambda: plot_window_p99(opened, stats, moving, folder),
    }
    if targets:
        charts["targets"] = lambda: plot_targets(target_panels(answers, confidence), folder)
    steps = tqdm(total=5 + len(charts), desc="report", unit="step", disable=not progress, leave=False)
    cells = tqdm(total=len(opened.params), desc="statistics", unit="cell", disable=not progress, leave=False)
    stats = _step(steps, "statistics", lambda: summarize(opened, jobs, cells.update))
    cells.close()
    moving: dict[int, CellWindows] = _step(steps, "windows", lambda: {
        s.cell: cell_windows(opened, s) for s in stats if s.replications and time_varying(s.params)})  # fmt: skip
    answers = _step(steps, "answers", lambda: run_answers(opened, stats))
    theory = _step(steps, "theory", lambda: [row for s in stats for row in (
        *compare_theory(opened, s), *behaviour_theory(opened, s),
        *(piece_theory(opened, s, moving[s.cell]) if s.cell in moving else ()))])  # fmt: skip
    drawn = [name for name, draw in charts.items() if _step(steps, f"chart {name}", draw)]
    _step(steps, "write", lambda: _write(opened, folder, stats, theory, answers, confidence, drawn, moving))
    steps.close()
    return folder / "index.html"


def target_panels(answers: list[RunAnswer], confidence: float) -> list[dict]:
    """The targets chart's panels (:func:`analysis.plots.plot_targets`): one per (group, target), the
    steady-state estimates against worker count (counts without a steady state left out, shaded)."""
    panels = []
    for answer in answers:
        title = f"{answer.arrival} / {answer.service}" + (f" / maxsize {answer.maxsize}" if answer.maxsize else "")
        targets = [v.target for v in answer.candidates[0].targets] if answer.candidates else []
        for target in targets:
            points = [(c.workers, v.steady.estimate) for c in answer.candidates for v in c.targets
                      if v.target == target and v.steady is not None and c.settled and c.workers > answer.load]  # fmt: skip
            panels.append({"title": f"{title}: {target}", "target": target, "x": [w for w, _ in points],
                           "estimate": [e.mean for _, e in points], "low": [e.low for _, e in points],
                           "high": [e.high for _, e in points], "answer": answer.meeting,
                           "unstable": answer.load, "level": confidence})  # fmt: skip
    return panels


def _report_folder(folder: Path) -> Path:
    """Create the report folder (or find it), with a one-line error when that is impossible."""
    if folder.exists() and not folder.is_dir():
        raise ResultsError(f"cannot write the report: {str(folder)!r} exists and is not a folder")
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ResultsError(f"cannot write the report folder {str(folder)!r}: {exc.strerror or exc}") from None
    return folder


def _step(bar: tqdm, name: str, work: Callable[[], _T]) -> _T:
    """Run one step of the report under the progress bar."""
    bar.set_postfix_str(name)
    result = work()
    bar.update()
    return result


def _write(run: Run, folder: Path, stats: list[CellStats], theory: list[Agreement], answers: list[RunAnswer],
           confidence: float, drawn: list[str], moving: dict[int, CellWindows] | None = None) -> None:  # fmt: skip
    """Write both documents (showing the charts that were ``drawn``)."""
    for stale in (name for name in CHARTS if name not in drawn):  # a chart this run has none of
        for suffix in (".png", ".svg"):
            (folder / f"{stale}{suffix}").unlink(missing_ok=True)
    sections = _Sections(summary_rows(stats, detail=True), theory_rows(theory, stats), failed_rows(stats),
                         warning_lines(stats), _answer_rows(answers, confidence), _answer_lines(run, answers),
                         outcome_rows(run, stats), class_rows(run, stats),
                         {name: CHARTS[name] for name in drawn if name in CHARTS},
                         _over_time(run, stats, moving or {}))  # fmt: skip
    try:
        (folder / "report.md").write_text(_markdown(run, sections), encoding="utf-8")
        (folder / "index.html").write_text(_html(run, sections), encoding="utf-8")
    except OSError as exc:
        raise ResultsError(f"cannot write the report in {str(folder)!r}: {exc.strerror or exc}") from None


@dataclass(frozen=True)
class _Sections:
    """The tables and lines of a report."""

    summary: Rows
    theory: Rows
    failed: Rows
    warnings: list[str]
    answers: Rows
    lead: list[str]
    outcomes: Rows = field(default_factory=list)  # what became of the items (cells with behaviours)
    classes: Rows = field(default_factory=list)  # per class or pusher (cells that have them)
    charts: dict[str, str] = field(default_factory=lambda: dict(CHARTS))  # the charts drawn, with captions
    over_time: list[tuple[str, Rows]] = field(default_factory=list)  # lines, then a table per cell over time


_NO_WARNINGS = "None: every measured mean inter-arrival and service time lies within its interval of the spec's mean."
_NO_FAILURES = "None: every cell has data."


def _answer_rows(answers: list[RunAnswer], confidence: float) -> Rows:
    """One row per (arrival, service, maxsize): the fewest stable count and, with targets, the fewest
    that meet them with the figures there."""
    rows = []
    for a in answers:
        row = {"arrival": a.arrival, "service": a.service, "maxsize": str(a.maxsize),
               "fewest workers with a stable backlog": str(a.stable) if a.stable is not None else "none of those run",
               "fewer workers": a.stable_note or "-"}  # fmt: skip
        if a.candidates:
            at = next((c for c in a.candidates if c.workers == a.meeting), None)
            figures = "; ".join(f"{v.target.metric} {_figure(v)}" for v in at.targets if v.steady) if at else "-"
            row.update({f"fewest workers meeting every target ({confidence:.0%})":
                        str(a.meeting) if a.meeting is not None else "none of those run",
                        "its figures": figures, "one worker fewer": a.meeting_note or "-"})  # fmt: skip
        if a.elastic:
            at = next((c for c in a.candidates if c.workers == a.meeting), None)
            base = f" (fixed {a.meeting}: {at.cost.mean:.3g})" if at is not None and at.cost is not None else ""
            row["elastic workers: verdict, worker-seconds"] = "; ".join(
                f"{c.label}: {c.verdict if c.targets else 'no targets'}, "
                f"{c.cost.format() if c.cost is not None else '-'}" for c in a.elastic) + base  # fmt: skip
        rows.append(row)
    return rows


def _figure(v) -> str:
    est = v.steady.estimate
    unit = " s" if v.target.unit == "s" else ""
    return f"{est.mean:.3g}{unit} [{est.low:.3g}, {est.high:.3g}]"


def _answer_lines(run: Run, answers: list[RunAnswer]) -> list[str]:
    """The lines above the answer table: the targets, and a plan's own answer."""
    lines = []
    targets = [str(v.target) for v in answers[0].candidates[0].targets] if answers and answers[0].candidates else []
    if targets:
        lines.append(f"Targets (all must hold): {', '.join(targets)}.")
    else:
        lines.append("No targets were given: give them with qbench run --slo 'wait_p99<=5' (or ask qbench plan), "
                     "and this section names the fewest workers that meet them.")  # fmt: skip
    plan = run.manifest.get(PLAN_KEY)
    for entry in plan if isinstance(plan, list) else [plan] if isinstance(plan, dict) else []:
        if isinstance(entry, dict) and entry.get("answer"):
            lines.append(f"qbench plan ({entry.get('arrival')} / {entry.get('service')}): {entry['answer']}")
    return lines


def _behaviour_sections(sec: _Sections) -> list[tuple[str, Rows]]:
    """The behaviour tables a run has (none for a run of the plain pool), then its tables over time."""
    return [(title, rows) for title, rows in (("What became of the items (95% confidence intervals)", sec.outcomes),
                                              ("Classes (95% confidence intervals)", sec.classes),
                                              *sec.over_time) if rows]  # fmt: skip


def _over_time(run: Run, stats: list[CellStats], moving: dict[int, CellWindows]) -> list[tuple[str, Rows]]:
    """The section over time: which cells are steady, one line per cell that varies, then per such cell
    its table of windows (latency, depth, arrival rate, workers, each with its 95% interval)."""
    if not moving:
        return []
    lines = [line for line in (stationarity_line(stats), *over_time_lines(run, stats, moving)) if line]
    out: list[tuple[str, Rows]] = [("Over time", [{"what": line.strip()} for line in lines])]
    for s in stats:
        found = moving.get(s.cell)
        if found is None or not found.windows:
            continue
        rows = [{"window (s)": f"[{w.start:g}, {w.end:g})", "items put": str(w.items),
                 "p50 wait (s)": w.latency["wait_p50"].format(), "p99 wait (s)": w.latency["wait_p99"].format(),
                 "mean wait (s)": w.latency["wait_mean"].format(), "depth": w.depth.format(),
                 "rate in force (/s)": w.rate.format(), "arrivals (/s)": w.arrivals.format(),
                 "workers": w.workers.format()} for w in found.windows]  # fmt: skip
        out.append((f"Cell {s.cell} over time ({s.label}; windows of {found.width:g} s, {found.replications} "
                    "replications, 95% intervals)", rows))  # fmt: skip
    return out


def _parameters(run: Run) -> Rows:
    """Run metadata as (field, value) rows."""
    m = run.manifest
    timings = m.get("timings")
    total = timings.get("total_seconds", "") if isinstance(timings, dict) else ""
    fields = {
        "run": run.name, "status": m.get("status", "unknown"), "created": m.get("created", ""),
        "command": m.get("command", ""), "grid": json.dumps(m.get("grid", {}), default=str),
        "seeds": json.dumps(m.get("seeds", {}), default=str), "engine": m.get("engine", ""),
        "clock": m.get("clock", ""), "versions": json.dumps(m.get("versions", {}), default=str),
        "platform": json.dumps(m.get("platform", ""), default=str).strip('"'), "git commit": m.get("git_commit", ""),
        "wall time (s)": str(total), "cells": str(len(run.params)), "replications": str(len(run.cells)),
        "record": _record_note(record_level(run)),
    }  # fmt: skip
    return [
        {"field": k, "value": str(v if not isinstance(v, list) else " ".join(map(str, v)))} for k, v in fields.items()
    ]


def _record_note(record: str) -> str:
    """What the run kept of its items, and so which figures are exact."""
    if record == "summary":
        return ("summary: no item or depth files; every figure comes from the replications' digests as in any run "
                "(percentiles within 0.115%, the rest exact sums); the backlog chart shows mean queue sizes per time "
                "bin and the sojourn CDF the digests' histogram; depth over time per window from the digests' "
                "queue integrals (exact at time-bin boundaries); per-window latency and arrivals, per-class and "
                "per-pusher tables and the behaviour theory rows that need single items are left out")  # fmt: skip
    if record.startswith("sample:"):
        share = float(record.partition(":")[2])
        return (f"{record}: items/ holds a seeded {share:.4g} of the items (no depth/ files); every figure but the "
                "per-class and per-pusher tables comes from the digests of all items, as in any run; those tables, "
                "the per-window latency (over the sampled items) and the sojourn CDF use the sample, depth over "
                "time the digests' queue integrals")  # fmt: skip
    return "items: every item and queue-size change kept (items/, depth/); figures from the digests"


def _figures_md(charts: dict[str, str]) -> str:
    return "\n\n".join(
        f"### {caption}\n\n![{caption}]({name}.png)\n\n[SVG]({name}.svg)" for name, caption in charts.items()
    )


def _lead_charts(sec: _Sections) -> dict[str, str]:
    """The charts shown with the answer: the backlog, and the targets when the run has them."""
    lead = {"backlog": CHARTS["backlog"]}
    if "its figures" in (sec.answers[0] if sec.answers else {}):
        lead.update(TARGETS_CHART)
    return lead


def _markdown(run: Run, sec: _Sections) -> str:
    """The Markdown report: the answer first, metadata and the full tables below."""
    others = {n: c for n, c in sec.charts.items() if n != "backlog"}
    method = "\n".join(f"- {line}" for line in METHOD)
    behaviours = "".join(f"## {title}\n\n{to_markdown(rows)}\n\n" for title, rows in _behaviour_sections(sec))
    warnings = "\n".join(f"- **warning:** {line}" for line in sec.warnings) or _NO_WARNINGS
    failed = to_markdown(sec.failed) if sec.failed else _NO_FAILURES
    lead = "\n\n".join(sec.lead)
    return (
        f"# qbench report: {run.name}\n\n## How many workers?\n\n{lead}\n\n{to_markdown(sec.answers)}\n\n"
        f"{_figures_md(_lead_charts(sec))}\n\n"
        f"## Warnings\n\n{warnings}\n\n## Failed cells\n\n{failed}\n\n"
        f"## Cells (95% confidence intervals)\n\n{to_markdown(sec.summary)}\n\n{behaviours}"
        f"## Charts\n\n{_figures_md(others)}\n\n"
        f"## Theory beside measurement\n\n{to_markdown(sec.theory)}\n\n## Run\n\n{to_markdown(_parameters(run))}\n\n"
        f"## Method\n\n{method}\n"
    )


_STYLE = """body{font-family:system-ui,sans-serif;margin:2em;max-width:110em;color:#222}
table{border-collapse:collapse;font-size:12px;margin:1em 0}th,td{border:1px solid #ccc;padding:3px 6px;text-align:left}
th{background:#f0f0f0}li.warning{color:#8a4b00}
section#answer{border-left:4px solid #2ca02c;padding-left:1em}section#answer table{font-size:14px}
p.lead{font-size:15px}
figure{margin:1.5em 0}img{max-width:100%;border:1px solid #ddd}figcaption{font-weight:bold}"""


def _figures_html(charts: dict[str, str]) -> str:
    return "\n".join(
        f'<figure id="{n}"><figcaption>{html.escape(c)}</figcaption>'
        f'<img src="{n}.png" alt="{html.escape(c)}"/><br/><a href="{n}.svg">SVG</a></figure>'
        for n, c in charts.items()
    )


def _html(run: Run, sec: _Sections) -> str:
    """The HTML report: one well-formed document, the answer first, images referenced relatively."""
    name = html.escape(run.name)
    others = {n: c for n, c in sec.charts.items() if n != "backlog"}
    method = "".join(f"<li>{html.escape(line)}</li>" for line in METHOD)
    behaviours = "".join(
        f"<h2>{html.escape(title)}</h2>\n{to_html(rows)}\n" for title, rows in _behaviour_sections(sec)
    )
    items = "".join(f'<li class="warning"><strong>warning:</strong> {html.escape(line)}</li>' for line in sec.warnings)
    warnings = f"<ul>{items}</ul>" if items else f"<p>{html.escape(_NO_WARNINGS)}</p>"
    failed = to_html(sec.failed) if sec.failed else f"<p>{html.escape(_NO_FAILURES)}</p>"
    lead = "\n".join(f'<p class="lead">{html.escape(line)}</p>' for line in sec.lead)
    return (
        f'<!DOCTYPE html>\n<html lang="en">\n<head>\n<meta charset="utf-8"/>\n<title>qbench report: {name}</title>\n'
        f"<style>{_STYLE}</style>\n</head>\n<body>\n<h1>qbench report: {name}</h1>\n"
        f'<section id="answer">\n<h2>How many workers?</h2>\n{lead}\n{to_html(sec.answers)}\n'
        f"{_figures_html(_lead_charts(sec))}\n</section>\n"
        f'<h2 id="warnings">Warnings</h2>\n{warnings}\n'
        f'<h2 id="failed">Failed cells</h2>\n{failed}\n'
        f"<h2>Cells (95% confidence intervals)</h2>\n{to_html(sec.summary)}\n{behaviours}"
        f"<h2>Charts</h2>\n{_figures_html(others)}\n<h2>Theory beside measurement</h2>\n{to_html(sec.theory)}\n"
        f"<h2>Run</h2>\n{to_html(_parameters(run))}\n"
        f"<h2>Method</h2>\n<ul>{method}</ul>\n</body>\n</html>\n"
    )
