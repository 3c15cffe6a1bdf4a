"""The results format, defined once: what a run folder holds, for the writer and for every reader.

:mod:`bench.store` writes run folders with these names and schemas; :mod:`analysis.load` (and any
other reader) reads them through the same definitions. ``results/README.md`` documents them for
users. A reader refuses a folder whose :data:`SCHEMA_VERSION` differs from its own.

Layout of a run folder::

    manifest.json            MANIFEST: the grid, cells, seeds, inputs, versions, status (MANIFEST_KEYS)
    cells.parquet            CELLS: one row per (cell, replication), CELLS_SCHEMA
    items/cell-NNNNN.parquet ITEMS: every item of a cell, ITEMS_SCHEMA
    depth/cell-NNNNN.parquet DEPTH: every change of queue size, DEPTH_SCHEMA
    events/cell-NNNNN.parquet EVENTS: the arrival rate in force and the worker count over time, EVENTS_SCHEMA
    digests/cell-NNNNN.parquet DIGESTS: each replication's digest (bench.digest), what the
                             steady-state estimator, the report and compare read
    parts/cell-NNNNN.parquet PARTS: a finished cell's rows of cells.parquet (its presence marks it finished)
    report/                  REPORT: REPORT_DOCUMENTS and each chart of REPORT_CHARTS as PNG and SVG
                             (``targets`` only in a run with targets)
    .lock                    LOCK: held (flock) by the process writing the folder, so no second run writes it

Files are written under a temporary name (:func:`tmp_name`) and renamed when whole.

The manifest's grid may hold **targets** (``slo``: ``qbench run --slo``, or a plan's evidence
folder), each a string such as ``wait_p99<=5``; their grammar is defined here once
(:func:`parse_target`), for the grid that validates and stores them and for the analysis that reads
them back. A plan's evidence folder also holds its answer under the manifest key :data:`PLAN_KEY`.
"""

from __future__ import annotations

import json
import math
import os
import re
from dataclasses import dataclass
from pathlib import Path

import pyarrow as pa

from bench.errors import InputError
from bench.item_status import ITEM_STATUSES, TERMINAL

__all__ = [
    "CELLS", "CELLS_SCHEMA", "CELL_DIRS", "DATA_STATUSES", "DEPTH", "DEPTH_SCHEMA", "DIGESTS", "EVENTS",
    "EVENTS_SCHEMA", "EVENT_KINDS", "FILES_KEY", "FORMAT", "ITEMS", "ITEMS_SCHEMA", "ITEM_STATUSES", "LOCK",
    "MANIFEST", "MANIFEST_KEYS", "METADATA", "PARAMETERS", "PARTS", "PLAN_KEY", "RECORD_LEVELS", "REPORT",
    "REPORT_CHARTS", "REPORT_DOCUMENTS", "SCHEMA_KEY", "SCHEMA_VERSION",
    "STATUSES", "TARGET_METRICS", "TERMINAL", "Target", "TargetError", "cell_id", "cell_name", "foreign_entries",
    "is_run", "is_tmp", "parse_record", "parse_target", "parse_targets", "sample_fraction", "tmp_name",
]  # fmt: skip

#: The manifest's ``format`` marker: a folder is a qbench run when its manifest says this.
FORMAT = "qbench-results"
#: The version of this format; bumped whenever a reader of the old one could misread the new one.
#: Version 3 adds the item columns status, class, pusher, attempts and t_leave, the scenario and
#: behaviour parameters of a cell and its served / abandoned / given-up counts (``results/README.md``).
#: Version 4 adds ``events/`` (the arrival rate in force, the worker count, when the arrivals ran
#: out), the parameters ``backlog0``, ``elastic`` and ``stationary`` and the statistics
#: ``worker_seconds``, ``workers_peak`` and ``arrivals_end``; a reader of version 3 would take a
#: non-stationary or elastic cell for a steady one, so version 3 folders are refused.
#: Version 5 stores items and depth changes compactly (integer nanoseconds, derived columns left to
#: the reader: :mod:`bench.encoding`), adds ``digests/`` and the record level; what a reader of
#: items gets is unchanged, but a version-4 folder has no digests, so it is refused.
SCHEMA_VERSION = 5
#: The parquet schema-metadata key holding the version, and the metadata every file carries.
SCHEMA_KEY = b"qbench.schema_version"
METADATA = {SCHEMA_KEY: str(SCHEMA_VERSION).encode()}
#: The parquet schema-metadata key of a part file listing its cell's item and depth files as JSON,
#: ``{"items": {"bytes": N, "sha256": H}, "depth": {...}}``: resume reruns a cell whose files differ.
FILES_KEY = b"qbench.files"

# -- folder layout ----------------------------------------------------------------------------------

MANIFEST = "manifest.json"
CELLS = "cells.parquet"
ITEMS, DEPTH, PARTS, DIGESTS = "items", "depth", "parts", "digests"
#: Version 4: per cell, every change of the arrival rate in force and of the worker count.
EVENTS = "events"
#: Folders holding one file per cell, named by :func:`cell_name`.
CELL_DIRS = (ITEMS, DEPTH, PARTS, EVENTS, DIGESTS)
#: What a run records of its items (the grid's ``record``): every item (``items``), a seeded
#: fraction F of them (``sample:F``), or none (``summary``); every level writes ``digests/``.
RECORD_LEVELS = ("items", "sample:F", "summary")
REPORT = "report"
#: The documents of a report, and the stems of its charts (each written as ``.png`` and ``.svg``).
REPORT_DOCUMENTS = ("index.html", "report.md")
REPORT_CHARTS = ("backlog", "latency", "sojourn_cdf", "heatmap", "theory", "classes", "outcomes", "over_time",
                 "workers", "window_p99", "targets")  # fmt: skip
#: The lock file of a folder being written (see :mod:`bench.store`).
LOCK = ".lock"
#: Keys every qbench manifest has had since version 1 (version 2 adds ``format`` and ``inputs``).
MANIFEST_KEYS = ("schema_version", "run", "status", "grid", "cells")
#: The manifest key of a plan's evidence folder holding the plan's answer (``qbench plan --out``):
#: the same object ``qbench plan --format json`` prints.
PLAN_KEY = "plan"

_CELL_FILE = re.compile(r"cell-(\d{5,})\.parquet")
_TMP_FILE = re.compile(r"(manifest\.json|cells\.parquet|cell-\d{5,}\.parquet)\.\d+\.tmp")


def parse_record(text: object) -> str:
    """The canonical form of a record level (:data:`RECORD_LEVELS`): ``items``, ``summary`` or
    ``sample:F`` with 0 < F < 1 (e.g. ``sample:0.01``).

    Raises:
        InputError: anything else; the message is one line.
    """
    value = str(text).strip().lower()
    if value in ("items", "summary"):
        return value
    kind, _, fraction = value.partition(":")
    if kind == "sample" and _PLAIN_NUMBER.fullmatch(fraction) and 0 < float(fraction) < 1:
        return f"sample:{float(fraction)!r}"
    raise InputError(f"bad record level {text!r}: use items, summary or sample:F with 0 < F < 1 (e.g. sample:0.01)")


def sample_fraction(record: str) -> float | None:
    """The fraction of items a record level keeps in ``items/``: 1.0, F, or None (no item files)."""
    if record == "items":
        return 1.0
    return float(record.partition(":")[2]) if record.startswith("sample:") else None


def cell_name(cell: int) -> str:
    """The file name of a cell's parquet files, e.g. ``cell-00003.parquet``."""
    return f"cell-{cell:05d}.parquet"


def cell_id(name: str) -> int | None:
    """The cell id of a file named by :func:`cell_name`, or ``None`` for any other name."""
    match = _CELL_FILE.fullmatch(name)
    return int(match.group(1)) if match else None


def tmp_name(final: Path) -> Path:
    """A temporary name beside ``final``, unique to this process (two writers never share one)."""
    return final.with_name(f"{final.name}.{os.getpid()}.tmp")


def is_tmp(name: str) -> bool:
    """Whether ``name`` is a temporary name qbench writes (:func:`tmp_name` of one of its files)."""
    return _TMP_FILE.fullmatch(name) is not None


# -- statuses and columns ---------------------------------------------------------------------------

#: Replication statuses whose row holds statistics: ``capped`` covers [0, t_end] of a replication
#: stopped at ``max_backlog``; ``lagged`` ones are measured but unreliable (the clock fell behind).
DATA_STATUSES = ("ok", "capped", "lagged")
#: Every status a row may have; ``failed`` rows hold no statistics.
STATUSES = (*DATA_STATUSES, "failed")
#: Columns of ``cells.parquet`` that describe a cell rather than one replication's outcome.
PARAMETERS = (
    "workers", "arrival", "service", "maxsize", "arrival_mean", "arrival_cv", "service_mean",
    "service_cv", "offered_load", "rho", "items_target", "duration", "clock", "engine", "seed",
    "scenario", "discipline", "patience", "batch", "failure", "classes", "linger", "setup", "attempts", "backoff",
    "pushers", "patience_mean", "setup_mean", "backlog0", "elastic", "stationary",
)  # fmt: skip
#: The item columns a reader gets (``analysis.load.read_items``); the files store them in a compact
#: form (integer nanoseconds, derived columns left out) that :mod:`bench.encoding` defines.
ITEMS_SCHEMA = pa.schema(
    [
        ("cell", pa.int64()),
        ("replication", pa.int64()),
        ("item", pa.int64()),
        ("worker", pa.int64()),
        ("t_arrive", pa.float64()),
        ("t_put", pa.float64()),
        ("t_get", pa.float64()),
        ("t_done", pa.float64()),
        ("wait", pa.float64()),
        ("service", pa.float64()),
        ("sojourn", pa.float64()),
        ("depth_at_put", pa.int64()),
        ("status", pa.string()),
        ("class", pa.string()),
        ("pusher", pa.int64()),
        ("attempts", pa.int64()),
        ("t_leave", pa.float64()),
    ],
    metadata=METADATA,
)


#: The depth columns a reader gets; stored as :data:`bench.encoding.DEPTH_FILE_SCHEMA`.
DEPTH_SCHEMA = pa.schema(
    [
        ("cell", pa.int64()),
        ("replication", pa.int64()),
        ("t", pa.float64()),
        ("depth", pa.int64()),
        ("event", pa.int8()),
    ],
    metadata=METADATA,
)


#: The kinds of row in ``events/`` (version 4): ``rate`` (the arrival rate in force from ``t`` on,
#: items/s), ``workers`` (workers taking items from ``t`` on), ``provisioned`` (workers paid for from
#: ``t`` on: those taking items and those still starting) and ``arrivals_end`` (the arrival process
#: ran out at ``t``, its last put; ``value`` is the items put).
EVENT_KINDS = ("rate", "workers", "provisioned", "arrivals_end")

EVENTS_SCHEMA = pa.schema(
    [
        ("cell", pa.int64()),
        ("replication", pa.int64()),
        ("t", pa.float64()),
        ("kind", pa.string()),
        ("value", pa.float64()),
    ],
    metadata=METADATA,
)


def _fields(kind, names: str) -> list[tuple[str, pa.DataType]]:
    return [(name, kind) for name in names.split()]


CELLS_SCHEMA = pa.schema(
    _fields(pa.int64(), "cell replication workers")
    + _fields(pa.string(), "arrival service")
    + _fields(pa.int64(), "maxsize")
    + _fields(pa.float64(), "arrival_mean arrival_cv service_mean service_cv offered_load rho")
    + [("items_target", pa.int64()), ("duration", pa.float64())]
    + _fields(pa.string(), "clock engine seed")
    + _fields(pa.int64(), "n_put n_got n_done")
    + _fields(pa.float64(), "t_end t_last_put throughput utilisation arrival_rate blocked_fraction")
    + _fields(pa.float64(), "wait_mean wait_p50 wait_p95 wait_p99 sojourn_mean sojourn_p50 sojourn_p95 sojourn_p99")
    + [("depth_mean", pa.float64()), ("depth_max", pa.int64()), ("depth_final", pa.int64())]
    + [("backlog_slope", pa.float64())]
    + _fields(pa.float64(), "arrival_obs_mean arrival_obs_sd service_obs_mean service_obs_sd")
    + _fields(pa.float64(), "clock_lag_mean clock_lag_max")
    + _fields(pa.string(), "status error")
    + [("wall_seconds", pa.float64())]
    # version 3: the scenario and its behaviours (parameters), what became of the items (statistics)
    + _fields(pa.string(), "scenario discipline patience")
    + [("batch", pa.int64()), ("failure", pa.float64()), ("classes", pa.string()), ("linger", pa.float64())]
    + [("setup", pa.string()), ("attempts", pa.int64()), ("backoff", pa.string()), ("pushers", pa.int64())]
    + _fields(pa.float64(), "patience_mean setup_mean")
    + _fields(pa.int64(), "n_served n_abandoned n_gave_up n_attempts")
    + _fields(pa.float64(), "goodput abandon_rate")
    # version 4: a backlog at t = 0, elastic workers, non-stationary arrivals (parameters); the cost
    # in worker-seconds, the peak worker count, when the arrivals ran out (statistics)
    + [("backlog0", pa.int64()), ("elastic", pa.string()), ("stationary", pa.bool_())]
    + [("worker_seconds", pa.float64()), ("workers_peak", pa.int64()), ("arrivals_end", pa.float64())],
    metadata=METADATA,
)


# -- recognising a run folder ----------------------------------------------------------------------


def is_run(folder: Path) -> bool:
    """Whether ``folder`` holds a qbench run: a ``manifest.json`` that the results format recognises
    (a JSON object with qbench's ``format`` marker, or every key a version-1 manifest had)."""
    try:
        manifest = json.loads((folder / MANIFEST).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    if not isinstance(manifest, dict):
        return False
    return manifest.get("format") == FORMAT or set(MANIFEST_KEYS) <= manifest.keys()


def foreign_entries(folder: Path) -> list[Path]:
    """Entries of ``folder`` that qbench does not write in a run folder (empty for a pure run).

    qbench writes ``manifest.json``, ``cells.parquet``, its ``.lock``, ``items/``, ``depth/`` and
    ``parts/`` holding only ``cell-NNNNN.parquet`` files, ``report/`` holding only the report's own
    documents and charts, and their temporary names while writing. Symbolic links are always foreign.
    """
    foreign = []
    for entry in folder.iterdir():
        name = entry.name
        if entry.is_symlink():
            foreign.append(entry)
        elif name in (MANIFEST, CELLS, LOCK) or is_tmp(name):
            if not entry.is_file():
                foreign.append(entry)
        elif name in CELL_DIRS or name == REPORT:
            if not entry.is_dir():
                foreign.append(entry)
                continue
            for inner in entry.iterdir():
                own = (
                    _is_report_file(inner.name)
                    if name == REPORT
                    else (cell_id(inner.name) is not None or is_tmp(inner.name))
                )
                if inner.is_symlink() or not inner.is_file() or not own:
                    foreign.append(inner)
        else:
            foreign.append(entry)
    return foreign


def _is_report_file(name: str) -> bool:
    stem, _, suffix = name.rpartition(".")
    return name in REPORT_DOCUMENTS or (stem in REPORT_CHARTS and suffix in ("png", "svg"))


# -- targets (the grid's ``slo`` setting, stored in the manifest) ------------------------------------


class TargetError(InputError):
    """A target (``--slo``) that cannot be used; the message is one line naming it."""


#: The metrics a target may name: a latency statistic of the steady state (``wait`` or ``sojourn``:
#: ``_mean`` or a percentile ``_pP`` with 0 < P < 100, e.g. ``wait_p99``, ``sojourn_p99.9``), the
#: workers' ``utilisation`` or the time-average number waiting, ``depth_mean``.
TARGET_METRICS = ("wait_mean", "wait_pP", "sojourn_mean", "sojourn_pP", "utilisation", "depth_mean", "abandon_rate")

_TARGET = re.compile(r"\s*(?P<metric>[A-Za-z_][A-Za-z0-9_.]*)\s*(?P<op><=|>=|=<|=>|<|>|==|=)\s*(?P<value>.*?)\s*")
_PERCENTILE = re.compile(r"(?P<kind>wait|sojourn)_p(?P<level>[0-9]+(\.[0-9]+)?)")
_PLAIN_NUMBER = re.compile(r"[+-]?([0-9]+\.?[0-9]*|\.[0-9]+)([eE][+-]?[0-9]+)?")


@dataclass(frozen=True)
class Target:
    """One target: ``metric op value``, e.g. ``wait_p99 <= 5`` (seconds) or ``utilisation <= 0.85``.

    Attributes:
        metric: the canonical metric name (``wait_p99``, ``sojourn_p99.9``, ``wait_mean``,
            ``utilisation``, ``depth_mean``, ``abandon_rate``).
        op: ``<=`` (an upper bound) or ``>=`` (a lower bound: utilisation only).
        value: the threshold: seconds for a latency, a fraction in [0, 1] for utilisation and for
            the share of items abandoned, items for ``depth_mean``.
    """

    metric: str
    op: str
    value: float

    @property
    def quantity(self) -> str:
        """What the metric measures: ``wait``, ``sojourn``, ``utilisation``, ``depth`` or ``abandon``."""
        return self.metric.split("_", 1)[0]

    @property
    def level(self) -> float | None:
        """The percentile as a probability (0.99 for ``_p99``); ``None`` for a mean or a fraction."""
        match = _PERCENTILE.fullmatch(self.metric)
        return float(match.group("level") + "e-2") if match else None  # correctly rounded: p99.9 is 0.999

    @property
    def unit(self) -> str:
        """``s`` for a latency, ``items`` for ``depth_mean``, empty for utilisation."""
        return {"wait": "s", "sojourn": "s", "depth": "items"}.get(self.quantity, "")

    def holds(self, value: float) -> bool:
        """Whether ``value`` satisfies the target."""
        return value <= self.value if self.op == "<=" else value >= self.value

    def __str__(self) -> str:
        return f"{self.metric}{self.op}{_number_text(self.value)}"


def _number_text(value: float) -> str:
    """A threshold as short as ``%g`` when that is exact, else every digit."""
    short = f"{value:g}"
    return short if float(short) == value else repr(value)


def _metric(name: str, text: str) -> str:
    """The canonical metric name, or a one-line error naming the ones known."""
    if name in ("wait_mean", "sojourn_mean", "utilisation", "depth_mean", "abandon_rate"):
        return name
    match = _PERCENTILE.fullmatch(name)
    if match:
        level = float(match.group("level"))
        if not 0 < level < 100:
            raise TargetError(f"bad target {text!r}: the percentile of {name!r} must lie strictly between 0 and 100 "
                              "(e.g. p99, p99.9)")  # fmt: skip
        return f"{match.group('kind')}_p{format(level, '.12g')}"
    known = ("wait_pP and sojourn_pP (e.g. wait_p99, sojourn_p99.9), wait_mean, sojourn_mean, utilisation, "
             "depth_mean, abandon_rate")  # fmt: skip
    raise TargetError(f"bad target {text!r}: unknown metric {name!r} (known: {known})")


def parse_target(text: str) -> Target:
    """Parse one target, ``METRIC<=VALUE`` or ``METRIC>=VALUE`` (spaces allowed).

    Raises:
        TargetError: not of that form; an unknown metric; a threshold that is not a plain finite
            number; ``>=`` on a latency or on ``depth_mean`` (more workers never make them larger:
            a target on them is an upper bound); a negative threshold; a utilisation outside [0, 1].
    """
    if not isinstance(text, str):
        raise TargetError(f"bad target {text!r}: targets are strings like 'wait_p99<=5'")
    match = _TARGET.fullmatch(text)
    if match is None:
        raise TargetError(f"bad target {text!r}: write METRIC<=VALUE or METRIC>=VALUE, e.g. 'wait_p99<=5'")
    op = {"=<": "<=", "=>": ">="}.get(match.group("op"), match.group("op"))
    if op not in ("<=", ">="):
        raise TargetError(f"bad target {text!r}: the comparison must be <= or >=, got {match.group('op')!r}")
    metric = _metric(match.group("metric").strip().lower(), text)
    raw = match.group("value")
    if not _PLAIN_NUMBER.fullmatch(raw):
        raise TargetError(f"bad target {text!r}: the threshold {raw!r} is not a number")
    value = float(raw)
    if not math.isfinite(value):
        raise TargetError(f"bad target {text!r}: the threshold {raw!r} is not finite")
    target = Target(metric, op, value)
    if op == ">=" and target.quantity != "utilisation":
        what = {"s": "a latency", "items": "the mean queue length"}.get(target.unit, "the abandonment rate")
        raise TargetError(f"bad target {text!r}: '>=' on {what}: more workers never make {metric} larger, so a target "
                          "on it is an upper bound (<=)")  # fmt: skip
    if value < 0:
        raise TargetError(f"bad target {text!r}: the threshold must be >= 0, got {_number_text(value)}")
    if target.quantity in ("utilisation", "abandon") and value > 1:
        what = "utilisation is a fraction of worker time" if target.quantity == "utilisation" else (
            "abandon_rate is the share of items abandoned")  # fmt: skip
        raise TargetError(f"bad target {text!r}: {what}, in [0, 1]; got {_number_text(value)}")
    return target


def parse_targets(texts: list[str] | tuple[str, ...]) -> tuple[Target, ...]:
    """Parse a list of targets (all must hold); a metric bounded twice the same way is refused.

    Raises:
        TargetError: a bad target, or two targets with the same metric and comparison.
    """
    targets = tuple(parse_target(t) for t in texts)
    seen: dict[tuple[str, str], Target] = {}
    for target in targets:
        key = (target.metric, target.op)
        if key in seen:
            raise TargetError(f"targets {str(seen[key])!r} and {str(target)!r} bound {target.metric} twice; keep one")
        seen[key] = target
    return targets
