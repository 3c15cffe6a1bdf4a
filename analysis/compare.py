"""Compare two runs, or two cell selections of one run, metric by metric, in the style of pyperf.

**Selection syntax.** ``PATH[:key=value[,key=value...]]``: a results folder, optionally followed by
a colon and filters on cell parameters (``workers``, ``arrival``, ``service``, ``maxsize``, ``cell``,
...), e.g. ``results/default:workers=3`` or ``results/x:arrival=exp:1,service=uniform:0:5``
(values may contain colons; a comma starts the next filter). A PATH that exists as a folder is
taken whole, so folder names with colons still work. A filter that matches no cell is an error
that names the values the run has (``workers=7`` when the run has 1..4).

**Matching.** Cells of A and B are paired when they agree on the grid axes ``workers``, ``arrival``,
``service`` and ``maxsize``, except the keys named in either selection (comparing ``workers=3``
with ``workers=4`` pairs cells that differ only in workers), and except an axis on which the two
sides each hold one value and not the same one (a 3-worker run against a 4-worker run pairs its
cells across ``workers``; the header says so). When nothing can be paired, that is an error. Run
settings may differ; the
header says which do (:data:`SETTINGS`: items or duration, seed, clock, engine, loop, replications,
max_backlog, read from the cells' parameters and each run's manifest). Cells found on one side
only are listed, not fatal.

**Statistics.** Per pair and metric: the mean of each side over its replications with data
(status ``ok``, ``capped`` or ``lagged``), the ratio B/A with a percentile-bootstrap interval, and
the difference B - A with a 95% interval: *paired* t only when the two cells really saw the same
random numbers, Welch's t otherwise. Latency metrics (mean and percentiles of wait and sojourn,
:data:`analysis.quantiles.LATENCY_METRICS`) are steady-state figures read from ``items/`` by the
estimator the report and ``qbench plan`` use (:mod:`analysis.quantiles`): each side is its pooled
estimate, and the intervals of B - A and B/A come from the per-replication sections (paired by
replication id, or Welch) centred on the pooled figures. Paired needs all of: neither side on a scaled or real clock
(not reproducible); the same seed; the same arrival, service and maxsize specs (the random streams
are keyed by them); the same replication ids; and, in every replication, identical put times and
service times of the first :data:`CRN_ITEMS` items (kept in every replication's digest). The header says which
test each pair got and why. A metric may be a class's (or a pusher's): ``wait_p99[high]`` compares
the p99 wait of the class ``high`` (:mod:`analysis.classes`), replication by replication, paired or
not as the cells are; so a FIFO run and a priority run of one seed show each class's change with
its interval. The verdict says *faster* / *slower* (times), *better* / *worse*
(other metrics with a direction) or *higher* / *lower* when the difference interval excludes 0,
"no significant difference" otherwise, and "no data" when a side has no replication with data.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from analysis.classes import GROUP_METRICS, group_values, metric_values, split_metric
from analysis.estimate import Estimate, bootstrap_ratio, difference, mean_ci
from analysis.load import ResultsError, Run, open_run, read_digests
from analysis.plots import (
    POINTS,
    backlog_band,
    label_panel,
    panel_grid,
    save,
    worker_colour,
)
from analysis.quantiles import LATENCY_METRICS, Steady, estimates, ratio, run_samples, section_difference
from analysis.tables import Rows, to_csv, to_markdown, to_text
from bench.digest import HEAD

__all__ = [
    "AXES", "COMPARABLE", "CRN_ITEMS", "CompareResult", "DEFAULT_METRICS", "MetricComparison", "SETTINGS", "Selection",
    "compare_runs", "format_comparison", "parse_selection", "plot_comparison", "settings",
]  # fmt: skip

#: Grid axes on which cells are matched.
AXES = ("workers", "arrival", "service", "maxsize", "scenario", "discipline", "patience", "batch", "failure",
        "backlog0", "elastic")  # fmt: skip

#: Metrics compared when none are named.
DEFAULT_METRICS = (
    "wait_mean", "wait_p95", "wait_p99", "sojourn_mean", "sojourn_p99", "throughput", "utilisation",
    "depth_mean", "backlog_slope",
)  # fmt: skip

#: Every metric compare can compare: the statistics of a replication (not its parameters or ids).
COMPARABLE = (
    "wait_mean", "wait_p50", "wait_p95", "wait_p99", "sojourn_mean", "sojourn_p50", "sojourn_p95", "sojourn_p99",
    "throughput", "utilisation", "depth_mean", "depth_max", "depth_final", "backlog_slope", "arrival_rate",
    "blocked_fraction", "n_put", "n_got", "n_done", "t_end", "goodput", "abandon_rate", "n_served", "n_abandoned",
    "n_gave_up", "n_attempts",
)  # fmt: skip

_TIMES = {"wait_mean", "wait_p50", "wait_p95", "wait_p99", "sojourn_mean", "sojourn_p50", "sojourn_p95", "sojourn_p99"}
_LOWER_BETTER = {"depth_mean", "depth_max", "depth_final", "backlog_slope", "abandon_rate"}
_HIGHER_BETTER = {"throughput", "goodput"}

#: Leading items of every replication whose put and service times must agree for a paired test.
CRN_ITEMS = HEAD

#: Run settings the header compares between the two sides.
SETTINGS = ("items", "duration", "seed", "clock", "engine", "loop", "replications", "max_backlog")

#: Where a setting lives among a cell's parameters (the others are in the manifest).
_PARAMETER_OF = {"items": "items_target", "duration": "duration", "seed": "seed", "clock": "clock", "engine": "engine"}


@dataclass(frozen=True)
class Selection:
    """A results folder and filters on cell parameters.

    Attributes:
        path: the folder.
        filters: parameter name -> required value (as text).
    """

    path: Path
    filters: dict[str, str] = field(default_factory=dict)

    def __str__(self) -> str:
        tail = ",".join(f"{k}={v}" for k, v in self.filters.items())
        return f"{self.path}:{tail}" if tail else str(self.path)


@dataclass(frozen=True)
class MetricComparison:
    """One metric of one pair of cells.

    Attributes:
        key: the matched axes, e.g. ``"arrival=const:1 service=uniform:0:5"``.
        cell_a: cell id in A.
        cell_b: cell id in B.
        metric: the ``cells.parquet`` column.
        a: mean of A over replications, with CI.
        b: mean of B, with CI.
        ratio: ``b / a`` with a bootstrap interval.
        diff: ``b - a`` with a t interval (paired or Welch).
        paired: whether the difference was paired (common random numbers).
        verdict: the pyperf-style verdict.
    """

    key: str
    cell_a: int
    cell_b: int
    metric: str
    a: Estimate
    b: Estimate
    ratio: Estimate
    diff: Estimate
    paired: bool
    verdict: str


@dataclass(frozen=True)
class CompareResult:
    """The comparison of two selections.

    Attributes:
        a: selection A.
        b: selection B.
        rows: one entry per (matched pair, metric).
        pairs: matched (cell in A, cell in B, key) triples.
        only_a: keys of cells found only in A.
        only_b: keys of cells found only in B.
        run_a: the opened run of A.
        run_b: the opened run of B.
        differences: the settings that differ, one line each, e.g. ``seed: A 1, B 2``.
        tests: per matched key, the test used and why, e.g. ``Welch t: seeds differ (A 1, B 2)``.
        across: the axes paired across because each side holds one value of them, one line each,
            e.g. ``workers: A 3, B 4``.
    """

    a: Selection
    b: Selection
    rows: list[MetricComparison]
    pairs: list[tuple[int, int, str]]
    only_a: list[str]
    only_b: list[str]
    run_a: Run = field(repr=False)
    run_b: Run = field(repr=False)
    differences: list[str] = field(default_factory=list)
    tests: dict[str, str] = field(default_factory=dict)
    across: list[str] = field(default_factory=list)


def parse_selection(text: str) -> Selection:
    """Parse ``PATH[:key=value,...]`` (see the module docstring).

    Args:
        text: the selection.

    Raises:
        ResultsError: a filter is not of the form ``key=value``.
    """
    if Path(text).is_dir() or ":" not in text:
        return Selection(Path(text))
    path, _, rest = text.partition(":")
    while not Path(path).is_dir() and ":" in rest and "=" not in rest.split(":", 1)[0]:
        head, _, rest = rest.partition(":")
        path = f"{path}:{head}"
    filters = {}
    for part in filter(None, rest.split(",")):
        key, sep, value = part.partition("=")
        if not sep or not key.strip():
            raise ResultsError(f"bad selection {text!r}: expected PATH:key=value[,key=value...], got {part!r}")
        if key.strip() in filters:
            raise ResultsError(f"bad selection {text!r}: {key.strip()!r} is given twice (a selection takes one value "
                               "per key)")  # fmt: skip
        filters[key.strip()] = value.strip()
    return Selection(Path(path), filters)


def _select(run: Run, selection: Selection) -> list[int]:
    """Cell ids of ``run`` matching the selection's filters (an error when none does)."""
    params = run.params.reset_index()
    keep = np.ones(len(params), dtype=bool)
    for key, value in selection.filters.items():
        if key not in params.columns:
            known = ", ".join(params.columns)
            raise ResultsError(f"bad selection {str(selection)!r}: unknown key {key!r} (known: {known})")
        match = params[key].map(lambda v, wanted=value: _same(v, wanted)).to_numpy(dtype=bool)
        if not match.any():
            values = ", ".join(sorted(dict.fromkeys(str(v) for v in params[key]), key=_order))
            raise ResultsError(f"selection {str(selection)!r} matches no cell: {key}={value} is not in the run "
                               f"({key} has: {values})")  # fmt: skip
        keep &= match
    if not keep.any():
        together = " and ".join(f"{k}={v}" for k, v in selection.filters.items())
        raise ResultsError(f"selection {str(selection)!r} matches no cell: no cell has {together}")
    return [int(c) for c in params.loc[keep, "cell"]]


def _same(value: Any, text: str) -> bool:
    """Whether a parameter value equals a filter's text: exactly as integers (seeds may exceed 64
    bits), else numerically, else as text."""
    if _WHOLE.fullmatch(text) and _WHOLE.fullmatch(str(value).strip()):
        return int(str(value).strip()) == int(text)
    if _DECIMAL.fullmatch(text):
        try:
            return math.isclose(float(value), float(text))
        except (TypeError, ValueError):
            return False
    return str(value) == text


#: Numbers in selections, written plainly in ASCII digits (no '1_0', no other scripts' digits).
_WHOLE = re.compile(r"[+-]?[0-9]+")
_DECIMAL = re.compile(r"[+-]?([0-9]+\.?[0-9]*|\.[0-9]+)([eE][+-]?[0-9]+)?")


def _order(text: str) -> tuple:
    """Sort key: numbers by value, before any text."""
    try:
        return (0, float(text), text)
    except ValueError:
        return (1, 0.0, text)


def _key(run: Run, cell: int, axes: list[str]) -> str:
    """The matching key of a cell: its values on ``axes``."""
    return " ".join(f"{a}={run.params.loc[cell, a]}" for a in axes)


def _shown(value: object) -> str:
    """A setting as text: ``-`` when unset, whole numbers without a decimal point."""
    if value is None or (not isinstance(value, str) and pd.isna(value)):
        return "-"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def settings(run: Run, cells: list[int]) -> dict[str, str]:
    """The run settings of some cells of a run (:data:`SETTINGS`), as text.

    ``items``, ``duration``, ``seed``, ``clock`` and ``engine`` come from the cells' parameters
    (several values are joined with ``/``); ``loop``, ``replications`` and ``max_backlog`` from the
    manifest (``replications`` from the rows when the manifest lacks it; ``unknown`` otherwise).

    Args:
        run: an opened run.
        cells: cell ids.
    """
    grid = run.manifest.get("grid", {}) if isinstance(run.manifest.get("grid"), dict) else {}
    found = {}
    for name in SETTINGS:
        column = _PARAMETER_OF.get(name)
        if column is not None and column in run.params:
            found[name] = "/".join(dict.fromkeys(_shown(v) for v in run.params.loc[cells, column]))
        elif name == "loop":
            found[name] = _shown(run.manifest.get("loop", "unknown"))
        elif name == "replications" and grid.get("replications") is None:
            counts = run.cells[run.cells["cell"].isin(cells)].groupby("cell").size()
            found[name] = "/".join(dict.fromkeys(str(int(n)) for n in counts))
        else:
            found[name] = _shown(grid.get(name, "unknown"))
    return found


def _differences(run_a: Run, cells_a: list[int], run_b: Run, cells_b: list[int]) -> list[str]:
    """One line per setting that differs between the two sides."""
    a, b = settings(run_a, cells_a), settings(run_b, cells_b)
    return [f"{name}: A {a[name]}, B {b[name]}" for name in SETTINGS if a[name] != b[name]]


def _pairing(run_a: Run, cell_a: int, ra: pd.DataFrame, run_b: Run, cell_b: int, rb: pd.DataFrame) -> tuple[bool, str]:
    """Whether the data replications ``ra``, ``rb`` of two cells share their random numbers, and why (not)."""
    pa_, pb_ = run_a.params.loc[cell_a], run_b.params.loc[cell_b]
    for side, p in (("A", pa_), ("B", pb_)):
        if str(p["clock"]) != "virtual":
            return False, f"Welch t: {side} ran on a {p['clock']} clock (real scheduling: not reproducible)"
    if str(pa_["seed"]) != str(pb_["seed"]):
        return False, f"Welch t: seeds differ (A {pa_['seed']}, B {pb_['seed']})"
    for spec in ("arrival", "service", "maxsize"):
        if str(pa_[spec]) != str(pb_[spec]):
            return False, f"Welch t: {spec} differs (A {pa_[spec]}, B {pb_[spec]}), so do the random streams"
    if ra.empty or list(ra["replication"]) != list(rb["replication"]):
        return False, "Welch t: the replications with data differ"
    if not _same_items(run_a, cell_a, run_b, cell_b):
        return False, f"Welch t: the first {CRN_ITEMS} items' put or service times differ"
    return True, f"paired t: same seed, specs and replications; first {CRN_ITEMS} items identical"


def _first_items(run: Run, cell: int) -> dict[int, np.ndarray]:
    """Put and service times of the first :data:`CRN_ITEMS` items of every replication, from the
    digests (every record level keeps them), by replication."""
    return {d.replication: np.concatenate((d.head_put, d.head_service)) for d in read_digests(run, cell)}


def _same_items(run_a: Run, cell_a: int, run_b: Run, cell_b: int) -> bool:
    """Whether two cells' first items agree on replication, item, put time and service time (to 1 ns)."""
    ia, ib = _first_items(run_a, cell_a), _first_items(run_b, cell_b)
    if not ia or sorted(ia) != sorted(ib):
        return False
    return all(_close(ia[r], ib[r]) for r in ia)


def _close(a: np.ndarray, b: np.ndarray) -> bool:
    """Equal to 1 ns, with missing values (items not finished) in the same places."""
    return bool(np.allclose(a, b, rtol=0, atol=1e-9, equal_nan=True))


def compare_runs(a: str, b: str, *, metrics: list[str] | None = None) -> CompareResult:
    """Compare selection ``a`` with selection ``b`` (see the module docstring).

    Args:
        a: ``PATH[:key=value,...]`` of the baseline.
        b: the same for the contender.
        metrics: ``cells.parquet`` columns to compare (default :data:`DEFAULT_METRICS`).

    Raises:
        ResultsError: a folder is not a readable results folder, a selection is malformed or names
            an unknown key or metric.
    """
    sel_a, sel_b = parse_selection(a), parse_selection(b)
    run_a = open_run(sel_a.path)
    run_b = run_a if sel_b.path.resolve() == sel_a.path.resolve() else open_run(sel_b.path)
    wanted = list(metrics or DEFAULT_METRICS)
    for metric in wanted:
        if split_metric(metric) is not None:
            continue
        if metric not in COMPARABLE or metric not in run_a.cells.columns or metric not in run_b.cells.columns:
            raise ResultsError(f"unknown metric {metric!r} (choose from: {', '.join(COMPARABLE)}; or a class's, "
                               f"METRIC[CLASS] with METRIC one of {', '.join(GROUP_METRICS)})")  # fmt: skip
    cells_a, cells_b = _select(run_a, sel_a), _select(run_b, sel_b)
    axes = [x for x in AXES if x in run_a.params and x in run_b.params and x not in {*sel_a.filters, *sel_b.filters}]
    axes = [x for x in axes if x not in _BEHAVIOUR_AXES or _varies(run_a, cells_a, run_b, cells_b, x)]
    across = _across(run_a, cells_a, run_b, cells_b, axes)
    axes = [x for x in axes if x not in across]
    keys_a = {_key(run_a, c, axes): c for c in cells_a}
    keys_b = {_key(run_b, c, axes): c for c in cells_b}
    pairs = [(keys_a[k], keys_b[k], k) for k in keys_a if k in keys_b]
    if not pairs:
        raise ResultsError(f"nothing to compare: no cell of {sel_a} matches one of {sel_b} on "
                           f"{', '.join(axes) or 'any axis'} (select the cells to pair, e.g. PATH:workers=3)")  # fmt: skip
    rows, tests = [], {}
    for ca, cb, k in pairs:
        compared, tests[k] = _compare_pair(run_a, ca, run_b, cb, k, wanted)
        rows += compared
    only_a, only_b = [k for k in keys_a if k not in keys_b], [k for k in keys_b if k not in keys_a]
    differences = _differences(run_a, list(keys_a.values()), run_b, list(keys_b.values()))
    lines = [f"{x}: A {across[x][0]}, B {across[x][1]}" for x in across]
    return CompareResult(sel_a, sel_b, rows, pairs, only_a, only_b, run_a, run_b, differences, tests, lines)


#: Axes added with scenarios and behaviours: a pair's key names them only where they vary.
_BEHAVIOUR_AXES = ("scenario", "discipline", "patience", "batch", "failure", "backlog0", "elastic")


def _varies(run_a: Run, cells_a: list[int], run_b: Run, cells_b: list[int], axis: str) -> bool:
    """Whether the selected cells of the two sides hold more than one value of ``axis``."""
    values = {str(v) for v in run_a.params.loc[cells_a, axis]} | {str(v) for v in run_b.params.loc[cells_b, axis]}
    return len(values) > 1


def _across(run_a: Run, cells_a: list[int], run_b: Run, cells_b: list[int], axes: list[str]) -> dict[str, tuple]:
    """The axes on which each side holds exactly one value, not the same one: pairs are made across
    them (a 3-worker run against a 4-worker run differs in ``workers`` only)."""
    found = {}
    for axis in axes:
        values_a = {str(v) for v in run_a.params.loc[cells_a, axis]}
        values_b = {str(v) for v in run_b.params.loc[cells_b, axis]}
        if len(values_a) == 1 and len(values_b) == 1 and values_a != values_b:
            found[axis] = (values_a.pop(), values_b.pop())
    return found


def _replications(run: Run, cell: int) -> pd.DataFrame:
    """The replication rows of one cell that hold data, in replication order."""
    rows = run.data_cells()
    return rows.loc[rows["cell"] == cell].sort_values("replication")


def _compare_pair(
    run_a: Run, ca: int, run_b: Run, cb: int, key: str, metrics: list[str]
) -> tuple[list[MetricComparison], str]:
    """All metric comparisons of one matched pair of cells, and the test used with its reason."""
    reps_a, reps_b = _replications(run_a, ca), _replications(run_b, cb)  # once per pair, not per metric
    use_pairs, test = _pairing(run_a, ca, reps_a, run_b, cb, reps_b)
    missing = [side for side, reps in (("A", reps_a), ("B", reps_b)) if reps.empty]
    latency = [m for m in metrics if m in LATENCY_METRICS]
    steady_a, steady_b = _steady(run_a, ca, latency, reps_a), _steady(run_b, cb, latency, reps_b)
    groups: dict[str, pd.DataFrame] = {}  # per side, a class metric's per-replication values (read once)
    rows = []
    for metric in metrics:
        if metric in steady_a and metric in steady_b:
            sa, sb = steady_a[metric], steady_b[metric]
            a_est, b_est = sa.estimate, sb.estimate
            diff = section_difference(sa, sb, paired=use_pairs)
            quotient = ratio(sa, sb, paired=use_pairs)
        else:
            va, vb = _values(run_a, ca, reps_a, metric, groups, "A"), _values(run_b, cb, reps_b, metric, groups, "B")
            diff = difference(va, vb, paired=use_pairs)
            quotient = bootstrap_ratio(va, vb, paired=use_pairs)
            a_est, b_est = mean_ci(va), mean_ci(vb)
        said = f"no data in {' and '.join(missing)}" if missing else _verdict(metric, a_est.mean, b_est.mean, diff)
        rows.append(MetricComparison(key, ca, cb, metric, a_est, b_est, quotient, diff, use_pairs, said))
    return rows, test


def _steady(run: Run, cell: int, metrics: list[str], reps: pd.DataFrame) -> dict[str, Steady]:
    """The steady-state latency figures of one cell (none without data or latency metrics)."""
    if not metrics or reps.empty:
        return {}
    samples = run_samples(run, cell, metrics)
    return estimates(samples, metrics)[0] if samples else {}


def _values(run: Run, cell: int, reps: pd.DataFrame, metric: str, groups: dict[str, pd.DataFrame],
            side: str) -> np.ndarray:  # fmt: skip
    """One value per replication of ``reps``: a column of ``cells.parquet``, or a class metric
    (``wait_p99[high]``) computed from the cell's items (:mod:`analysis.classes`)."""
    if split_metric(metric) is None:
        return reps[metric].to_numpy(dtype=float)
    if side not in groups:
        groups[side] = group_values(run, cell)
    return metric_values(groups[side], metric, [int(r) for r in reps["replication"]])


def _verdict(metric: str, a: float, b: float, diff: Estimate) -> str:
    """pyperf-style verdict: factor and direction when the difference is significant."""
    if diff.n < 2 or math.isnan(diff.low) or diff.contains(0.0):
        return "no significant difference"
    up = diff.mean > 0
    base = (split_metric(metric) or (metric, ""))[0]
    if base in _TIMES:
        word = "slower" if up else "faster"
    elif base in _LOWER_BETTER:
        word = "worse (higher)" if up else "better (lower)"
    elif base in _HIGHER_BETTER:
        word = "better (higher)" if up else "worse (lower)"
    else:
        word = "higher" if up else "lower"
    big, small = (b, a) if up else (a, b)
    factor = f"{abs(big / small):.2f}x " if small and math.isfinite(big / small) and a * b > 0 else ""
    return f"{factor}{word}"


def _rows(result: CompareResult) -> Rows:
    """The comparison as formatted rows."""
    fmt = lambda v: "n/a" if math.isnan(v) else f"{v:.4g}"  # noqa: E731
    interval = lambda e: "n/a" if math.isnan(e.low) else f"[{e.low:.3g}, {e.high:.3g}]"  # noqa: E731
    return [{"cells": r.key or f"{r.cell_a} vs {r.cell_b}", "metric": r.metric, "A": fmt(r.a.mean), "B": fmt(r.b.mean),
             "B/A": fmt(r.ratio.mean), "B/A 95% CI": interval(r.ratio), "B-A": fmt(r.diff.mean),
             "B-A 95% CI": interval(r.diff), "test": "paired t" if r.paired else "Welch t", "verdict": r.verdict}
            for r in result.rows]  # fmt: skip


def _notes(result: CompareResult) -> list[str]:
    """Header lines: the selections, the settings that differ, the tests used and the mismatches."""
    lines = [f"A = {result.a}", f"B = {result.b}", f"{len(result.pairs)} matched cell pair(s)"]
    lines += [f"paired across {line}" for line in result.across]
    lines += [f"settings differ: {line}" for line in result.differences]
    reasons = list(dict.fromkeys(result.tests.values()))
    if len(reasons) == 1:
        lines.append(f"test: {reasons[0]}" + (f" (all {len(result.tests)} pairs)" if len(result.tests) > 1 else ""))
    else:
        lines += [f"test for {k or '(all cells)'}: {reason}" for k, reason in result.tests.items()]
    lines += [f"only in A: {k or '(all cells)'}" for k in result.only_a]
    lines += [f"only in B: {k or '(all cells)'}" for k in result.only_b]
    return lines


def format_comparison(result: CompareResult, fmt: str) -> str:
    """Render a comparison as ``table`` (plain text), ``md`` (Markdown) or ``csv``.

    CSV holds only the rows; the other formats start with which selections were compared and
    which cells matched on one side only.

    Args:
        result: from :func:`compare_runs`.
        fmt: ``table``, ``md`` or ``csv``.

    Raises:
        ValueError: unknown format.
    """
    rows = _rows(result)
    if fmt == "csv":
        return to_csv(rows)
    if fmt == "md":
        return "\n".join(f"- {line}" for line in _notes(result)) + "\n\n" + to_markdown(rows)
    if fmt == "table":
        return "\n".join(_notes(result)) + "\n\n" + to_text(rows)
    raise ValueError(f"unknown format {fmt!r}: choose md, csv or table")


def plot_comparison(result: CompareResult, out: Path) -> list[Path]:
    """Chart overlaying the backlogs of A (solid) and B (dashed), one panel per matched pair.

    Args:
        result: from :func:`compare_runs`.
        out: folder to write ``compare_backlog.png`` and ``.svg`` into.
    """
    pairs = result.pairs[:16]
    fig, axes = panel_grid(max(len(pairs), 1))
    horizon = max(float(result.run_a.cells["t_end"].max()), float(result.run_b.cells["t_end"].max()))
    times = np.linspace(0.0, horizon, POINTS)
    for ax, (ca, cb, key) in zip(axes, pairs):
        for run, cell, style, side in ((result.run_a, ca, "-", "A"), (result.run_b, cb, "--", "B")):
            mean, low, high = backlog_band(run, cell, times)
            colour = worker_colour(int(run.params.loc[cell, "workers"]))
            ax.plot(times, mean, color=colour, ls=style, label=f"{side}: {run.name} cell {cell} "
                    f"({run.params.loc[cell, 'workers']} workers)")  # fmt: skip
            ax.fill_between(times, low, high, color=colour, alpha=0.15, lw=0)
        label_panel(ax, key or "all cells", "model time (s)", "queue depth (items waiting)", title_size=9)
    fig.suptitle(f"Backlog: A = {result.a} (solid) vs B = {result.b} (dashed); 95% bands")
    return save(fig, out, "compare_backlog")
