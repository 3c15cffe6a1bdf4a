"""The ``qbench`` command line: the only place that parses argv or prints.

Bad input ends with one line on stderr and exit status 2, never a traceback.
"""

from __future__ import annotations

import argparse
import math
import os
import re
import signal
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, NoReturn

from bench.errors import InputError

__all__ = ["main"]

_RUN_EXAMPLES = """\
examples:
  qbench run bench/grids/default.toml --out results/default
  qbench run --out results/seed --workers 2,3 --arrival const:1 --service uniform:0:5 \\
             --duration 3000 --replications 5
  qbench run --out results/mm1 --arrival exp:1.25 --service exp:1 --workers 1 --items 1000000
  qbench run grid.toml --out results/fast --clock scaled:0.001 --jobs 2
  qbench run --resume results/default                  # finish an interrupted run
  qbench run grid.toml --out results/big --executor dask --scheduler tcp://scheduler:8786
  qbench run grid.toml --out results/sweep --record summary    # digests only: same report, ~no disk
  qbench run grid.toml --out results/some --record sample:0.01  # 1% of the items, seeded

distributions: const:V uniform:LOW:HIGH exp:MEAN erlang:K:MEAN gamma:MEAN:CV lognormal:MEAN:CV
               weibull:MEAN:CV pareto:MEAN:ALPHA hyperexp:MEAN:CV empirical:PATH[#COLUMN]
               A+B (arrival only): one pusher per part, e.g. exp:2+exp:3
arrival processes (rates in items/s): schedule:RATE@T,RATE@T,...[:PERIOD]  sine:RATE:AMPLITUDE:PERIOD[:PEAK]
               bursts:RATE_ON:RATE_OFF:MEAN_ON:MEAN_OFF  trace:PATH[#COLUMN][:xSCALE]

traffic over time and elastic workers:
  qbench run bench/grids/daily.toml --out results/daily --report
  qbench run --out results/outage --workers 3 --arrival exp:1 --service exp:2.5 --backlog0 500 --duration 20000
  qbench run --out results/step --workers 4,auto:min=2,max=10,up=wait>3,down=busy<0.35,start=20,step=2 \
             --arrival schedule:1@0,4@2000 --service exp:1 --duration 5000 --replications 10

behaviours (each flag a list where it is an axis):
  qbench run --out results/prio --workers 1,2 --arrival exp:1.25 --service exp:1 --items 50000 \
             --discipline fifo,priority --classes high:0.2,low:0.8
  qbench run --out results/patience --workers 2 --arrival exp:0.5 --service exp:1 --patience exp:5 --duration 5000
  qbench run --out results/batch --workers 1 --arrival exp:0.3 --service exp:0.2 --batch 1,4 --setup const:0.5
  qbench run --out results/retry --workers 2 --arrival exp:1 --service exp:1.5 --failure 0,0.2 --attempts 4 \
             --backoff expo:0.5:10:jitter
  qbench run --out results/mine --scenario bench/scenarios/examples/rate_limited.py:rate_limited ...
"""

_MAIN_EXAMPLES = """\
examples:
  qbench plan --arrival exp:1 --service lognormal:2.5:1.5 --slo 'wait_p99<=15'    how many workers?
  qbench run bench/grids/default.toml --out results/default     run a grid
  qbench report results/default                                  charts and report of a run
  qbench compare results/default:workers=3 results/default:workers=4
  qbench demo                                                    watch Fred and George fall behind
"""

_PLAN_EXAMPLES = """\
examples:
  qbench plan --arrival exp:1 --service lognormal:2.5:1.5 --slo 'wait_p99<=15' --slo 'utilisation<=0.85'
  qbench plan --arrival const:1 --service uniform:0:5 --slo 'wait_p99<=5' --engine asyncio
  qbench plan --arrival exp:1 --service exp:2.5 --slo 'sojourn_p99.9<=40' --format json
  qbench plan --arrival exp:1 --service lognormal:2.5:1.5 --slo 'wait_p99<=15' --workers 4 --find max-load
  qbench plan grid.toml --slo 'wait_p95<=10' --out results/plan --report   # one answer per row of a grid
  qbench plan --arrival exp:1 --service empirical:durations.csv --slo 'wait_p99<=2' --budget 60s
  qbench plan --arrival sine:0.5:0.6:86400 --service exp:10 --slo 'wait_p99<=300' \
              --workers auto:min=3,max=10,up=wait>60,down=busy<0.6,start=120,every=10

targets (--slo, repeatable; all must hold): METRIC<=VALUE, or METRIC>=VALUE for utilisation:
  wait_pP, sojourn_pP   a percentile (0 < P < 100) of the steady-state wait or sojourn, seconds:
                        wait_p50, wait_p99, sojourn_p99.9
  wait_mean, sojourn_mean   steady-state means, seconds
  utilisation           the share of worker time busy, 0..1 (utilisation>=0.5: keep workers busy)
  depth_mean            the time-average number of items waiting
A target meets when its 95% interval (--confidence) lies on its side of the threshold.
A grid file gives the arrival, service and maxsize axes, seed, engine and slo; its workers,
items, duration and replications are the plan's to choose. An arrival whose rate changes over time
is planned over its horizon (a period, a trace; --duration S otherwise): the targets are over every
item of it, not a steady state. --workers auto:... candidates are judged beside the answer, with
their cost in worker-seconds.
exit status: 0 with an answer, 1 when no count up to --max-workers meets the targets, 2 bad input.
"""


class UsageError(InputError):
    """Bad input from the user found by the command line itself: printed as one line, exit status 2."""


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        raise UsageError(message)


_INT = re.compile(r"[+-]?[0-9]+")
#: A decimal number, or a word for a non-finite one (refused later with a clear message).
_FLOAT = re.compile(r"[+-]?(([0-9]+\.?[0-9]*|\.[0-9]+)([eE][+-]?[0-9]+)?|inf|infinity|nan)", re.IGNORECASE)


def _int(text: str) -> int:
    """A whole number written plainly (no ``1_0``, no ``0x10``)."""
    if not _INT.fullmatch(text.strip()):
        raise ValueError(f"{text!r} is not a whole number")
    return int(text)


def _float(text: str) -> float:
    """A number written plainly (no ``1_0``); ``inf`` and ``nan`` pass, for the checks to refuse."""
    if not _FLOAT.fullmatch(text.strip()):
        raise ValueError(f"{text!r} is not a number")
    return float(text)


def _number(kind: Callable[[str], Any]) -> Callable[[str], Any]:
    """An argparse type from a strict parser: a bad value is one line naming it."""

    def parse(text: str) -> Any:
        try:
            return kind(text)
        except ValueError as err:
            raise argparse.ArgumentTypeError(str(err)) from None

    parse.__name__ = kind.__name__.strip("_")
    return parse


def _csv(kind: Callable[[str], Any]) -> Callable[[str], list]:
    """A comma-separated list of values (each checked by ``kind``)."""
    return _split(_COMMA, kind)


_COMMA = re.compile(",")


#: Where a list of specs splits: at a comma followed by the next spec's family and a colon (so the
#: commas inside a schedule, ``schedule:1@0,3@3600``, stay in it), or by the end.
_SPEC_COMMA = re.compile(r",(?=\s*[A-Za-z][A-Za-z0-9_]*\s*:|\s*$)")
#: Where a list of worker counts splits: before a count or an ``auto:`` spec (whose own commas stay).
_WORKERS_COMMA = re.compile(r",(?=\s*(?:auto\s*:|[^=,]*(?:,|$)))")


def _split(pattern: re.Pattern[str], kind: Callable[[str], Any]) -> Callable[[str], list]:
    """A list of values separated by the commas ``pattern`` finds (each checked by ``kind``)."""

    def split(text: str) -> list:
        parts = [p.strip() for p in pattern.split(text)]
        if not parts or not all(parts):
            raise argparse.ArgumentTypeError(f"empty value in list {text!r}")
        try:
            return [kind(p) for p in parts]
        except ValueError as err:
            raise argparse.ArgumentTypeError(f"bad list {text!r}: {err}") from None

    return split


def _worker_value(text: str) -> int | str:
    """A worker count, or elastic workers ``auto:...`` (checked by the grid)."""
    return text if text.strip().lower().startswith("auto:") else _int(text)


#: ``--arrival`` and ``--service``: specs separated by commas (a schedule's own commas stay in it).
_SPECS = _split(_SPEC_COMMA, str)
#: ``--workers``: counts and ``auto:...`` specs, separated by commas.
_WORKER_LIST = _split(_WORKERS_COMMA, _worker_value)


def _positive_int(text: str) -> int:
    try:
        value = _int(text)
    except ValueError as err:
        raise argparse.ArgumentTypeError(str(err)) from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be >= 1, got {value}")
    return value


def _behaviour_flags(parser: argparse.ArgumentParser) -> None:
    """The scenario and queue-behaviour flags, the same for run and plan (the grid validates them)."""
    parser.add_argument("--scenario", type=_csv(str), help="scenarios: pool (default), FILE.py:NAME or module:NAME")
    parser.add_argument("--discipline", type=_csv(str), help="queue disciplines: fifo (default), lifo, priority")
    parser.add_argument("--classes", help="item classes and their mix, highest priority first, e.g. high:0.2,low:0.8")
    parser.add_argument("--patience", type=_SPECS, help="patience distributions (none = for ever), e.g. exp:10")
    parser.add_argument("--batch", type=_csv(_int), help="most items a worker takes at once, e.g. 1,4")
    parser.add_argument("--linger", type=_number(_float), help="seconds a worker waits for a batch to fill (default 0)")
    parser.add_argument("--setup", help="per-batch setup time distribution (default none)")
    parser.add_argument("--failure", type=_csv(_float), help="probabilities that an attempt fails, e.g. 0,0.1")
    parser.add_argument("--attempts", type=_number(_int), help="most attempts per item, the first included (default 3)")
    parser.add_argument("--backoff", help="wait before a retry: none, const:D or expo:BASE:CAP, optionally :jitter")


#: The behaviour settings a plan takes from its grid file or flags (one value per axis).
_BEHAVIOURS = ("scenario", "discipline", "patience", "batch", "failure", "classes", "linger", "setup", "attempts",
               "backoff")  # fmt: skip


def _parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="qbench",
        description="Benchmark asyncio producer/consumer queues in virtual or scaled time.",
        epilog=_MAIN_EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    sub.required = True

    run = sub.add_parser(
        "run",
        help="run a grid of configurations and write a results folder",
        description="Run every cell of a grid (file and/or flags) and write parquet results.",
        epilog=_RUN_EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    run.add_argument("grid", nargs="?", type=Path, help="grid file (TOML); flags override its axes and settings")
    target = run.add_mutually_exclusive_group(required=True)
    target.add_argument("--out", type=Path, help="results folder to write, e.g. results/NAME")
    target.add_argument(
        "--resume", type=Path, metavar="RUN", help="finish an interrupted run: only missing or failed cells run"
    )
    run.add_argument("--workers", type=_WORKER_LIST,
                     help="worker counts, e.g. 1,2,4, or elastic workers auto:min=2,max=16,up=depth>20,...")  # fmt: skip
    run.add_argument("--arrival", type=_SPECS,
                     help="inter-arrival distributions or arrival processes, e.g. const:1,exp:1,sine:1:0.8:86400")  # fmt: skip
    run.add_argument("--service", type=_SPECS, help="service-time distributions, e.g. uniform:0:5")
    run.add_argument("--backlog0", type=_csv(_int), help="items already queued at t = 0, e.g. 0,500")
    run.add_argument("--maxsize", type=_csv(_int), help="queue capacities (0 = unbounded), e.g. 0,5")
    length = run.add_mutually_exclusive_group()
    length.add_argument("--items", type=_number(_int), help="put N items per replication, then drain")
    length.add_argument("--duration", type=_number(_float), help="run S model seconds per replication")
    run.add_argument("--replications", type=_number(_int), help="seeded runs per cell")
    run.add_argument("--seed", type=_number(_int), help="root seed, 0 to 2**128-1 (default 0)")
    run.add_argument("--clock", help="virtual (default), scaled:F or real")
    run.add_argument(
        "--engine",
        choices=("asyncio", "recurrence", "auto"),
        help="asyncio (default: the real program on the clock), recurrence (exact FIFO G/G/c "
        "recurrences, virtual clock only, much faster) or auto (recurrence where it is exact)",
    )
    run.add_argument(
        "--slo",
        action="append",
        metavar="TARGET",
        help="a target the report checks, e.g. 'wait_p99<=5' (repeatable; see qbench plan --help)",
    )
    run.add_argument(
        "--loop",
        choices=("asyncio", "uvloop"),
        help="event loop for scaled and real clocks (default asyncio; uvloop needs the uvloop extra)",
    )
    run.add_argument(
        "--max-backlog", type=_number(_int), help="stop a cell whose queue reaches N items (default 1000000)"
    )
    run.add_argument(
        "--record",
        metavar="LEVEL",
        help="what to keep of the items: 'items' (every one, the default), 'sample:F' (a seeded fraction F, "
        "e.g. sample:0.01) or 'summary' (none: only each replication's digest, enough for report and compare)",
    )
    _behaviour_flags(run)
    run.add_argument("--jobs", type=_positive_int, help="worker processes (default: all cores)")
    run.add_argument("--executor", choices=("local", "dask"), default="local", help="local processes (default) or Dask")
    run.add_argument(
        "--scheduler", metavar="ADDRESS", help="Dask scheduler, e.g. tcp://10.0.0.5:8786 (default: a new LocalCluster)"
    )
    run.add_argument("--force", action="store_true", help="replace an existing results folder")
    run.add_argument("--no-progress", action="store_true", help="no progress bars")
    run.add_argument("--no-summary", action="store_true", help="do not print the summary table at the end")
    run.add_argument("--report", action="store_true", help="build the report when the run completes")

    _plan_parser(sub)

    demo = sub.add_parser(
        "demo",
        help="the blog program: Fred and George pull from a queue that grows",
        description="Run the seed scenario on a real loop in scaled time and print every take.",
        epilog="example:\n  qbench demo --scale 0.02 --items 150",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    demo.add_argument(
        "--scale", type=_number(_float), default=0.05, help="real seconds per model second (default 0.05)"
    )
    demo.add_argument(
        "--items", type=_number(_int), default=120, help="stop after this many takes (default 120; 0 = never)"
    )
    demo.add_argument("--workers", type=_positive_int, default=2, help="number of pullers (default 2)")
    demo.add_argument("--seed", type=_number(_int), help="seed of the service times (>= 0)")

    report = sub.add_parser(
        "report",
        help="write charts and report/index.html for a results folder",
        epilog="example:\n  qbench report results/default",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    report.add_argument("run", type=Path, help="results folder")
    report.add_argument("--no-progress", action="store_true", help="no progress bars")

    compare = sub.add_parser(
        "compare",
        help="compare two results folders or two cell selections",
        epilog="examples:\n  qbench compare results/a results/b\n"
        "  qbench compare results/default:workers=3 results/default:workers=4 --format md\n"
        "  qbench compare results/base results/new --fail-if 'wait_p99 > +5%' --fail-if 'backlog_slope > 0'\n"
        "\n--fail-if METRIC OP THRESHOLD (OP: > >= < <=) exits 1 when the condition holds for the whole 95%\n"
        "interval of a pair: '+5%' is a change relative to A, '+0.5' a difference B - A, '0' a bound on B.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    compare.add_argument("a", help="results folder, optionally with a selection: PATH:key=value,...")
    compare.add_argument("b", help="the other folder or selection")
    compare.add_argument("--format", choices=("table", "md", "csv"), default="table", help="output format")
    compare.add_argument("--metrics", type=_csv(str), help="metrics to compare (default: all)")
    compare.add_argument("--chart", type=Path, help="write the backlog overlay chart into this folder")
    compare.add_argument("--fail-if", action="append", metavar="CONDITION", default=[],
                         help="fail (exit 1) when this holds, e.g. 'wait_p99 > +5%%' (repeatable)")  # fmt: skip

    perf = sub.add_parser(
        "perf",
        help="pyperf suite: the engines against SimPy and Ciw, items/s and ratios",
        add_help=False,  # its options, --help included, are pyperf's parser's (bench/studies/perf.py)
        description="Run the pyperf suite: JSON under results/perf/, a table of items/s and ratios.",
    )
    perf.add_argument("options", nargs=argparse.REMAINDER, help="pyperf's options and --quick, --rss (see --help)")

    fidelity = sub.add_parser(
        "fidelity",
        help="how far scaled time drifts from virtual time, on asyncio and uvloop",
        epilog="example:\n  qbench fidelity --out results/fidelity",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    fidelity.add_argument("--out", type=Path, default=Path("results/fidelity"), help="folder for the chart and table")
    fidelity.add_argument("--items", type=_positive_int, default=300, help="items per run (default 300)")
    fidelity.add_argument("--scales", type=_csv(_float), help="scale factors (default 0.1,0.01,0.001,0.0001)")
    fidelity.add_argument("--loops", type=_csv(str), help="loops to try (default asyncio,uvloop)")
    return parser


def _plan_parser(sub: Any) -> None:
    plan = sub.add_parser(
        "plan",
        help="the fewest workers that meet latency targets, with stated confidence",
        description="Find the fewest workers whose steady-state latency, utilisation or queue length meet "
        "every target (--slo), by theory then simulation with confidence intervals; or, with --workers N "
        "--find max-load, the largest arrival rate N workers carry.",
        epilog=_PLAN_EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    plan.add_argument("grid", nargs="?", type=Path, help="grid file (TOML): plan every arrival x service x maxsize")
    plan.add_argument("--arrival", type=_SPECS, help="inter-arrival distribution(s) or arrival process(es), e.g. exp:1")
    plan.add_argument("--service", type=_SPECS, help="service-time distribution(s), e.g. lognormal:2.5:1.5")
    plan.add_argument("--maxsize", type=_csv(_int), help="queue capacity (0 = unbounded, the default)")
    plan.add_argument("--slo", action="append", metavar="TARGET", help="a target, e.g. 'wait_p99<=15' (repeatable)")
    plan.add_argument("--confidence", type=_number(_float), default=0.95, help="interval level (default 0.95)")
    plan.add_argument("--max-workers", type=_number(_int), default=1000, help="largest count to try (default 1000)")
    plan.add_argument(
        "--engine",
        choices=("auto", "asyncio", "recurrence"),
        help="auto (default: the recurrence engine where it is exact, else asyncio), asyncio or recurrence",
    )
    plan.add_argument("--seed", type=_number(_int), help="root seed, 0 to 2**128-1 (default 0)")
    plan.add_argument(
        "--budget",
        metavar="N|Ns",
        help="simulation to spend per row: N items (default 20000000; reproducible) or Ns seconds (e.g. 60s)",
    )
    plan.add_argument("--items", type=_number(_int), help="items per replication (default: from theory)")
    plan.add_argument("--duration", type=_number(_float),
                      help="for an arrival process that changes over time: the seconds of arrivals each replication "
                      "puts (default: a period, the trace, or the schedule's span)")  # fmt: skip
    plan.add_argument("--find", choices=("workers", "max-load"), default="workers",
                      help="workers (default): the fewest that meet the targets; max-load: the largest arrival-rate "
                      "factor --workers N carry")  # fmt: skip
    plan.add_argument("--workers", type=_WORKER_LIST,
                      help="the worker count of --find max-load; or elastic candidates auto:... to judge beside the "
                      "fewest fixed count, with their cost in worker-seconds")  # fmt: skip
    plan.add_argument("--format", choices=("table", "json"), default="table", help="output format")
    plan.add_argument("--out", type=Path, help="keep the evidence as a results folder, with the targets chart")
    plan.add_argument("--force", action="store_true", help="replace an existing --out folder")
    plan.add_argument("--report", action="store_true", help="build the evidence folder's report")
    plan.add_argument("--no-progress", action="store_true", help="no progress bar")
    _behaviour_flags(plan)


def _grid_from_args(args: argparse.Namespace):
    from bench.grid import load_grid, make_grid, override

    raw = load_grid(args.grid) if args.grid is not None else {}
    merged = override(
        raw,
        workers=args.workers,
        arrival=args.arrival,
        service=args.service,
        maxsize=args.maxsize,
        items=args.items,
        duration=args.duration,
        replications=args.replications,
        seed=args.seed,
        clock=args.clock,
        max_backlog=args.max_backlog,
        engine=args.engine,
        loop=args.loop,
        slo=args.slo,
        scenario=args.scenario,
        discipline=args.discipline,
        classes=args.classes,
        patience=args.patience,
        batch=args.batch,
        linger=args.linger,
        setup=args.setup,
        failure=args.failure,
        attempts=args.attempts,
        backoff=args.backoff,
        record=getattr(args, "record", None),
        backlog0=args.backlog0,
    )
    return make_grid(merged)


#: Longest results-folder name: the folder is first built as ``.NAME.creating-PID`` beside it,
#: and a name may hold 255 bytes on common file systems.
_MAX_NAME = 255 - len(".creating-4194304") - 1


def _check_out(out: Path) -> None:
    """Refuse an ``--out`` that cannot be a results folder: too long a name, a symlink or a file."""
    name = out.resolve().name if out.name in ("", ".", "..") else out.name
    if len(os.fsencode(name)) > _MAX_NAME:
        raise UsageError(f"results folder name {name[:40]!r}... is {len(os.fsencode(name))} bytes; at most {_MAX_NAME}")
    try:
        if out.is_symlink():
            raise UsageError(f"{str(out)!r} is a symbolic link; give the folder it points to, or another name")
        if out.exists() and not out.is_dir():
            raise UsageError(f"{str(out)!r} exists and is not a folder")
    except OSError as err:
        raise UsageError(f"cannot use {str(out)!r} as a results folder: {err.strerror or err}") from None


def _prepare_out(out: Path, force: bool, grid, command: list[str]) -> None:
    """Create the results folder with its manifest in one step (so any folder that exists can resume).

    ``--force`` replaces only a folder the results format recognises as a qbench run that holds
    nothing qbench did not write (or an empty folder); never the working directory, its parents,
    a home directory or a folder with a ``.git`` (:func:`bench.store.remove_run`).
    """
    from bench import store
    from bench.runner import create_run

    _check_out(out)
    if out.exists():
        if not force:
            raise UsageError(f"results folder {str(out)!r} exists; use --force to replace it")
        try:
            store.remove_run(out)
        except ValueError as err:
            raise UsageError(str(err)) from None
        except OSError as err:
            raise UsageError(f"cannot replace {str(out)!r}: {err.strerror or err}") from None
    try:
        create_run(out, grid, command)
    except OSError as err:
        raise UsageError(f"cannot write results folder {str(out)!r}: {err.strerror or err}") from None


_GRID_FLAGS = (
    "grid",
    "workers",
    "arrival",
    "service",
    "maxsize",
    "items",
    "duration",
    "replications",
    "seed",
    "clock",
    "max_backlog",
    "engine",
    "loop",
    "slo",
    "scenario",
    "discipline",
    "classes",
    "patience",
    "batch",
    "linger",
    "setup",
    "failure",
    "attempts",
    "backoff",
    "record",
    "backlog0",
    "force",
)


def _resume_target(args: argparse.Namespace):
    """The folder and grid of ``--resume RUN``, as the manifest recorded them.

    Refuses a folder the results format does not recognise, another schema version, a manifest
    without a grid, and input files (``empirical:``) whose content changed since the run began:
    resuming would mix two datasets in one run.
    """
    from bench import results_format, store
    from bench.grid import make_grid

    given = [name for name in _GRID_FLAGS if getattr(args, name) not in (None, False)]
    if given:
        flag = given[0] if given[0] == "grid" else "--" + given[0].replace("_", "-")
        raise UsageError(f"--resume takes the grid from the run's manifest; drop {flag}")
    run = args.resume
    if not results_format.is_run(run):
        raise UsageError(f"{str(run)!r} is not a results folder (no qbench manifest.json)")
    manifest = store.read_manifest(run)
    version = manifest.get("schema_version")
    if version != results_format.SCHEMA_VERSION:
        raise UsageError(
            f"{str(run)!r} has schema version {version}; this qbench reads version {results_format.SCHEMA_VERSION}"
        )
    if not isinstance(manifest.get("grid"), dict):
        raise UsageError(f"{str(run)!r}: manifest.json holds no grid; cannot resume (start a new run)")
    if results_format.PLAN_KEY in manifest:
        raise UsageError(f"{str(run)!r} is a plan's evidence: its cells are the counts the plan chose, not a grid to "
                         "finish; run qbench plan again")  # fmt: skip
    inputs = manifest.get("inputs") or []
    if not (isinstance(inputs, list) and all(isinstance(entry, dict) for entry in inputs)):
        raise UsageError(f"{str(run)!r}: manifest.json's 'inputs' is malformed; cannot resume (start a new run)")
    linked = [name for name in (*results_format.CELL_DIRS, results_format.REPORT) if (run / name).is_symlink()]
    if linked:
        raise UsageError(f"{str(run)!r}: {linked[0]}/ is a symbolic link; a run writes only inside its own folder")
    grid = make_grid(manifest["grid"])  # it drops the None of the unused items/duration itself
    _check_inputs(inputs, grid, run)
    return run, grid


def _check_inputs(recorded: list, grid, run: Path) -> None:
    """Refuse to resume when an input file's content differs from what the run first read."""
    now = {entry["path"]: entry["sha256"] for entry in grid.inputs()}
    for entry in recorded:
        path, digest = entry.get("path"), entry.get("sha256")
        if now.get(path) != digest:
            raise UsageError(f"input file {path!r} of {entry.get('spec')!r} changed since {str(run)!r} began "
                             "(its sha256 differs); resuming would mix two datasets: start a new run")  # fmt: skip


#: Memory a worker process may need: ~120 MB of imports plus a cell's batches and backlog.
_JOB_MEMORY = 256 << 20


def _max_jobs() -> int:
    """Most worker processes: physical memory / :data:`_JOB_MEMORY` (at least 1, 64 if unknown)."""
    try:
        memory = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):
        return 64
    return max(1, memory // _JOB_MEMORY)


def _cmd_run(args: argparse.Namespace) -> int:
    from bench.executor import make_executor
    from bench.runner import run_grid

    for name in ("out", "resume"):  # lexically whole: 'run/items/..' is 'run', a symlink stays a symlink
        if getattr(args, name) is not None:
            setattr(args, name, Path(os.path.abspath(getattr(args, name))))
    if args.resume is not None:
        out, grid = _resume_target(args)
    else:
        out, grid = args.out, _grid_from_args(args)
    if args.scheduler is not None and args.executor != "dask":
        raise UsageError("--scheduler needs --executor dask")
    jobs = args.jobs or os.cpu_count() or 1
    if jobs > _max_jobs():
        raise UsageError(
            f"--jobs {jobs} is more than this machine can run: at most {_max_jobs()} (one worker "
            f"process per {_JOB_MEMORY >> 20} MB of memory)"
        )
    command = ["qbench", *args.argv]
    if args.executor == "local":  # no more processes than cells: a one-cell run starts none
        jobs = min(jobs, max(1, len(grid.cells())))
    with _stopped_by_signals(), make_executor(args.executor, jobs, args.scheduler) as executor:
        if args.resume is None:
            _prepare_out(out, args.force, grid, command)
        result = run_grid(out, grid, jobs=jobs, progress=not args.no_progress, command=command, executor=executor)
    done = result.skipped + result.finished
    if result.disk_full:
        print(f"qbench: stopped: {result.disk_full}; {done} of {result.total} cells finished and kept; free some "
              f"space and continue with: qbench run --resume {out}", file=sys.stderr)  # fmt: skip
        return 1
    if result.interrupted:
        print(
            f"qbench: interrupted: {done} of {result.total} cells finished and kept in {out}; "
            f"continue with: qbench run --resume {out}",
            file=sys.stderr,
        )
        return 128 + (_Signalled.last or signal.SIGINT)
    resumed = f", {result.skipped} already done" if result.skipped else ""
    print(
        f"wrote {out} ({result.total} cells{resumed}, {grid.replications} replication(s) each) "
        f"in {result.wall_seconds:.1f}s"
    )
    if not args.no_summary:
        _print_summary(out)
    for cell, reason in result.warned:
        print(f"qbench: warning: cell {cell} {reason}", file=sys.stderr)
    for cell, note in result.notes:
        print(f"note: cell {cell}: {note}")
    if args.report:
        _cmd_report(argparse.Namespace(run=out, no_progress=args.no_progress))
    if result.failed:
        print(
            f"qbench: {len(result.failed)} cell(s) failed (retry them with: qbench run --resume {out}):",
            file=sys.stderr,
        )
        for cell, error in result.failed:
            print(f"  cell {cell}: {error}", file=sys.stderr)
        return 1
    return 0


class _Signalled(KeyboardInterrupt):
    """SIGTERM or SIGHUP arrived: stop the run as Ctrl-C does (finished cells kept, manifest
    ``interrupted``). ``last`` holds the signal number for the exit status (128 + signal)."""

    last: int | None = None


class _stopped_by_signals:
    """While a run runs, SIGTERM and SIGHUP (a killed terminal) interrupt it like Ctrl-C."""

    _SIGNALS = tuple(getattr(signal, name) for name in ("SIGTERM", "SIGHUP") if hasattr(signal, name))

    def __enter__(self) -> None:
        self._saved = {sig: signal.signal(sig, self._raise) for sig in self._SIGNALS}

    def __exit__(self, *exc: Any) -> None:
        for sig, handler in self._saved.items():
            signal.signal(sig, handler)

    @staticmethod
    def _raise(signum: int, frame: Any) -> None:
        _Signalled.last = signum
        raise _Signalled()


def _print_summary(run: Path) -> None:
    from analysis.summary_table import summary_table

    print(summary_table(run))


def _check_scale(flag: str, scale: float, shortest: float) -> None:
    """Refuse a scale no event loop can keep: not finite, not > 0, above the grid's MAX_SCALE, or
    making the shortest mean delay last less than the grid's MIN_REAL_DELAY of real time."""
    from bench.grid import MAX_SCALE, MIN_REAL_DELAY

    if not (math.isfinite(scale) and scale > 0):
        raise UsageError(f"{flag} must be a finite number > 0, got {scale}")
    if scale > MAX_SCALE:
        raise UsageError(f"{flag} must be at most {MAX_SCALE:g}, got {scale:g}")
    if scale * shortest < MIN_REAL_DELAY:
        raise UsageError(f"{flag} {scale:g} makes a mean delay of {shortest:g} model s last {scale * shortest:.3g} real s, "
                         f"below the ~{MIN_REAL_DELAY:g} s an event loop needs per event; use at least "
                         f"{MIN_REAL_DELAY / shortest:.3g}")  # fmt: skip


def _cmd_demo(args: argparse.Namespace) -> int:
    from bench.grid import MAX_SEED, MAX_WORKERS
    from bench.studies.demo import demo

    _check_scale("--scale", args.scale, 1.0)  # the pusher sleeps 1 model second between items
    items = None if args.items == 0 else args.items
    if items is not None and items < 0:
        raise UsageError(f"--items must be >= 0, got {args.items}")
    if args.workers > MAX_WORKERS:
        raise UsageError(f"--workers must be at most {MAX_WORKERS:,} (each is an asyncio task), got {args.workers:,}")
    if args.seed is not None and not 0 <= args.seed <= MAX_SEED:
        raise UsageError(f"--seed must be in 0..2**128-1, got {args.seed}")
    import asyncio

    asyncio.run(
        demo(lambda line: print(line, flush=True), scale=args.scale, items=items, workers=args.workers, seed=args.seed)
    )
    return 0


class _writing:
    """A failure to write a report or chart (read-only folder, full disk, a file in the way) is
    bad input of the one-line kind, not a traceback."""

    def __init__(self, where: Path) -> None:
        self._where = where

    def __enter__(self) -> None:
        return None

    def __exit__(self, kind: Any, err: Any, tb: Any) -> None:
        if isinstance(err, OSError) and not isinstance(err, BrokenPipeError):
            raise UsageError(f"cannot write into {str(self._where)!r}: {err.strerror or err}") from None


def _cmd_report(args: argparse.Namespace) -> int:
    from analysis.report import write_report

    with _writing(args.run / "report"):
        index = write_report(args.run, progress=not args.no_progress, jobs=os.cpu_count() or 1)
    print(f"report: {index}")
    return 0


def _cmd_compare(args: argparse.Namespace) -> int:
    from analysis.compare import DEFAULT_METRICS, compare_runs, format_comparison, plot_comparison
    from analysis.gate import failures, parse_condition

    conditions = [parse_condition(text) for text in args.fail_if]
    metrics = list(args.metrics or DEFAULT_METRICS)
    metrics += [c.metric for c in conditions if c.metric not in metrics]
    result = compare_runs(args.a, args.b, metrics=metrics)
    print(format_comparison(result, args.format))
    if args.chart is not None:
        with _writing(args.chart):
            args.chart.mkdir(parents=True, exist_ok=True)
            for path in plot_comparison(result, args.chart):
                print(f"chart: {path}")
    failed = failures(result, conditions)
    if failed:
        print(f"qbench: compare: {len(failed)} --fail-if condition(s) hold:", file=sys.stderr)
        for failure in failed:
            print(f"  {failure.line()}", file=sys.stderr)
        return 1
    if conditions:
        print(f"qbench: compare: no --fail-if condition holds ({len(conditions)} checked)", file=sys.stderr)
    return 0


def _cmd_perf(args: argparse.Namespace) -> int:
    from bench.studies.perf import main as perf_main

    return perf_main(args.options)


#: Fewest and most items per fidelity run (its statistics need at least 20 items per scale).
_FIDELITY_ITEMS = (20, 1_000_000)


def _cmd_fidelity(args: argparse.Namespace) -> int:
    from bench.distributions import parse
    from bench.grid import LOOPS
    from bench.studies.fidelity import CELLS, fidelity_study

    low, high = _FIDELITY_ITEMS
    if not low <= args.items <= high:
        raise UsageError(f"--items must be in {low}..{high:,}, got {args.items:,}")
    shortest = min(parse(spec).mean for cell in CELLS for spec in cell[2:])  # the study's mean delays
    for scale in args.scales or ():
        _check_scale("--scales", scale, shortest)
    for flag, values in (("--scales", args.scales), ("--loops", args.loops)):
        if values and len(set(values)) < len(values):
            raise UsageError(f"{flag} repeats a value: {','.join(map(str, values))}")
    unknown = [name for name in args.loops or () if name not in LOOPS]
    if unknown:
        raise UsageError(f"--loops: unknown loop {unknown[0]!r} (known: {', '.join(LOOPS)})")
    with _writing(args.out):
        for path in fidelity_study(args.out, items=args.items, scales=args.scales, loops=args.loops, log=print):
            print(f"wrote {path}")
    return 0


class PlanError(InputError):
    """A ``qbench plan`` request that cannot be answered as given (one line, exit status 2)."""


#: A budget: a plain number of items, or of seconds with an ``s``.
_BUDGET = re.compile(r"\s*(?P<number>[0-9]+(\.[0-9]*)?([eE][+-]?[0-9]+)?)\s*(?P<unit>s|items?)?\s*")


def _budget(text: str | None):
    """``N`` (items) or ``Ns`` (seconds) as a :class:`analysis.plan.Budget`."""
    from analysis.plan import DEFAULT_BUDGET, Budget

    if text is None:
        return DEFAULT_BUDGET
    match = _BUDGET.fullmatch(text)
    if match is None:
        raise PlanError(f"--budget must be a number of items (e.g. 20000000) or of seconds (e.g. 60s), got {text!r}")
    value = float(match.group("number"))
    if match.group("unit") == "s":
        if not 0 < value < 1e7:
            raise PlanError(f"--budget must be more than 0 and less than 10,000,000 seconds, got {text!r}")
        return Budget(seconds=value)
    if not value.is_integer() or not 1 <= value <= 1e15:
        raise PlanError(f"--budget in items must be a whole number from 1 to 1e15, got {text!r}")
    return Budget(items=int(value))


def _plan_grid(args: argparse.Namespace):
    """The plan's settings as a grid (validated by the grid), its targets and the rows to plan."""
    from bench.behaviour import parse_elastic
    from bench.grid import MAX_WORKERS, load_grid, make_grid
    from bench.results_format import parse_targets

    raw = load_grid(args.grid) if args.grid is not None else {}
    used = ("arrival", "service", "maxsize", "seed", "engine", "max_backlog", "slo", "backlog0", *_BEHAVIOURS)
    settings: dict[str, Any] = {k: raw[k] for k in used if k in raw}
    given = {"arrival": args.arrival, "service": args.service, "maxsize": args.maxsize, "seed": args.seed,
             "engine": args.engine or settings.get("engine", "auto"), "slo": args.slo,
             **{name: getattr(args, name) for name in _BEHAVIOURS}}  # fmt: skip
    settings.update({k: v for k, v in given.items() if v is not None})
    for name in ("arrival", "service"):
        if name not in settings:
            raise PlanError(f"give --{name} (or a grid file with a '{name}' axis)")
    if not settings.get("slo"):
        raise PlanError("give at least one target, e.g. --slo 'wait_p99<=5' (see qbench plan --help)")
    if not 0.5 <= args.confidence < 1:
        raise PlanError(f"--confidence must be at least 0.5 and below 1, got {args.confidence:g}")
    if not 1 <= args.max_workers <= MAX_WORKERS:
        raise PlanError(f"--max-workers must be in 1..{MAX_WORKERS:,}, got {args.max_workers:,}")
    given_workers = args.workers or []
    counts = [w for w in given_workers if isinstance(w, int)]
    autos = [w for w in given_workers if isinstance(w, str)]
    args.count, args.elastic = None, [parse_elastic(w, MAX_WORKERS) for w in autos]
    if args.find == "max-load":
        if len(counts) != 1 or autos:
            raise PlanError("--find max-load needs --workers N: the worker count whose headroom to find")
        if not 1 <= counts[0] <= MAX_WORKERS:
            raise PlanError(f"--workers must be in 1..{MAX_WORKERS:,}, got {counts[0]:,}")
        args.count = counts[0]
    elif counts:
        raise PlanError("--workers N goes with --find max-load (the workers question chooses the count; elastic "
                        "candidates to judge beside it are written auto:...)")  # fmt: skip
    if args.duration is not None and not (math.isfinite(args.duration) and args.duration > 0):
        raise PlanError(f"--duration must be a number of seconds > 0, got {args.duration}")
    if args.items is not None and not 1000 <= args.items <= 10_000_000:
        raise PlanError(f"--items must be in 1000..10,000,000 (items per replication), got {args.items:,}")
    grid = make_grid({**settings, "workers": [1], "items": args.items or 1000, "replications": 1})
    if grid.scale is not None:
        raise PlanError("a plan runs in virtual time")
    many = [name for name, axis in (("scenario", grid.programs), ("discipline", grid.discipline),
                                    ("patience", grid.patience), ("batch", grid.batch), ("failure", grid.failure))
            if len(axis) > 1]  # fmt: skip
    if many:
        raise PlanError(f"a plan takes one {many[0]} at a time (plan each, or run them as a grid)")
    if args.find == "max-load" and grid.patience[0] is not None:
        raise PlanError("--find max-load: with patience the queue is stable at any load; ask for --find workers")
    if len(grid.backlog0) > 1:
        raise PlanError("a plan takes one backlog0 at a time (plan each, or run them as a grid)")
    moving = [a for a in grid.arrival if not a.stationary]
    if moving and len(grid.arrival) > 1:
        raise PlanError(f"a plan takes one arrival at a time when one changes over time ({moving[0].spec!r}); plan "
                        "each")  # fmt: skip
    if moving and args.find == "max-load":
        raise PlanError(f"--find max-load scales a distribution's draws; {moving[0].spec!r} is an arrival process "
                        "(scale a trace with :xK, or write the schedule's rates higher)")  # fmt: skip
    if args.elastic and grid.engine == "recurrence" and (args.engine or raw.get("engine")) == "recurrence":
        raise PlanError("elastic workers run on the asyncio engine only (the recurrences have no controller); use "
                        "--engine auto or asyncio")  # fmt: skip
    return grid, parse_targets(list(grid.slo))


def _span(arrival, duration: float | None) -> float:
    """The span of arrivals one replication of a plan puts for a process that changes over time: the
    ``--duration`` given, else a period (a periodic schedule, a cycle), a trace's last timestamp, or
    a schedule's last change when its last rate is 0."""
    if duration is not None:
        return duration
    family, _, rest = arrival.spec.partition(":")
    if family == "schedule":
        pieces, _, period = rest.partition(":")
        if period:
            return float(period)
        if float(pieces.rsplit(",", 1)[-1].partition("@")[0]) == 0:
            return arrival.horizon
    elif family in ("sine", "trace"):
        return arrival.horizon
    raise PlanError(f"{arrival.spec!r} has no natural end (its last rate goes on for ever): give --duration S, the "
                    "seconds of arrivals each replication puts")  # fmt: skip


def _cmd_plan(args: argparse.Namespace) -> int:
    import itertools
    import json
    import time

    import numpy as np

    from analysis.plan import Model, judge_elastic, plan_json, plan_max_load, plan_workers, run_length
    from analysis.quantiles import Sample, columns_for
    from bench.distributions import TIME_PARAMETERS
    from bench.grid import make_grid
    from bench.sampling import Sampler

    started = time.perf_counter()
    grid, targets = _plan_grid(args)
    budget = _budget(args.budget)
    rows = list(itertools.product(grid.arrival, grid.service, grid.maxsize))
    bound = grid.patience[0] is None  # with patience, c <= lam E[S] is stable too: no theory shortcut
    moving = next((a for a in grid.arrival if not a.stationary), None)  # a plan's only arrival, then
    span = _span(moving, args.duration) if moving is not None else None
    models = [Model(a.spec, s.spec, m, 1.0 / a.mean, s.mean, a.scv, s.scv, s.sample(np.random.default_rng(0), 20_000),
                    bound and a.stationary, a.stationary, a.peak if a.process is not None else None, span)
              for a, s, m in rows]  # fmt: skip
    workers = args.count
    if args.out is not None and workers is not None:
        fixed = [a.spec for a in grid.arrival if a.family not in TIME_PARAMETERS]
        if fixed:
            raise PlanError(f"--find max-load --out: the arrival {fixed[0]!r} cannot be rescaled into a spec for the "
                            "evidence folder; drop --out")  # fmt: skip
    lengths = [run_length(m, targets, max_workers=args.max_workers, workers=workers) for m in models]
    items = args.items or max(lengths)
    bound_items = items
    if moving is not None and span is not None:  # the arrivals of [0, span), then drained: items only bound them
        expected = span / moving.mean + grid.backlog0[0]
        items = max(int(expected), 1)
        bound_items = int(expected * 1.5 + 10 * math.sqrt(expected) + 1000)
    if budget.items is not None and budget.items < 2 * items:
        raise PlanError(f"--budget {budget.items:,} items pays for fewer than 2 replications of {items:,} items; "
                        "raise it (or lower --items)")  # fmt: skip
    grid = make_grid({**grid.to_dict(), "items": bound_items, "duration": None})  # the range checks at the run length
    columns = columns_for([t.metric for t in targets]) + (("service",) if any(t.quantity == "sojourn" for t in targets)
                                                          else ())  # fmt: skip
    command = ["qbench", *args.argv]
    if args.out is not None:
        args.out = Path(os.path.abspath(args.out))
        _prepare_out(args.out, args.force, grid, command)
    plans = []
    with _stopped_by_signals(), Sampler(grid, columns, args.out, command, span) as sampler:
        for (arrival, service, maxsize), model in zip(rows, models):

            def simulate(count: int, scale: float, replications: range, a=arrival, s=service, m=maxsize):
                return [Sample(r, count, cols, a.stationary, cost, digest=d)
                        for r, cols, cost, _, d in sampler.sample(a, s, m, count, scale, replications)]  # fmt: skip

            def elastic_run(e, a=arrival, s=service, m=maxsize):
                def run(replications: range) -> list[Sample]:
                    return [Sample(r, e.high, cols, a.stationary, cost, cost / end if end else None, digest=d)
                            for r, cols, cost, end, d in sampler.sample(a, s, m, e.high, 1.0, replications, e)]  # fmt: skip

                return run

            if workers is None:
                plan = plan_workers(model, targets, simulate, confidence=args.confidence, max_workers=args.max_workers,
                                    budget=budget, items=items, progress=not args.no_progress)  # fmt: skip
                if args.elastic:
                    judge_elastic(plan, [(e.spec, e.high, elastic_run(e)) for e in args.elastic],
                                  progress=not args.no_progress)  # fmt: skip
            else:
                plan = plan_max_load(model, targets, workers, simulate, confidence=args.confidence, budget=budget,
                                     items=items, progress=not args.no_progress)  # fmt: skip
            plans.append(plan)
        answers = [plan_json(p) for p in plans]
        sampler.finish(answers[0] if len(answers) == 1 else answers, started)
    if args.format == "json":
        one = answers[0] if len(answers) == 1 else {"rows": answers, "workers": [a["workers"] for a in answers],
                                                    "decided": all(a["decided"] for a in answers)}  # fmt: skip
        print(json.dumps(one, indent=2))
    else:
        print(_plan_text(plans))
    if args.out is not None:
        _plan_evidence(args, plans)
    return max(p.exit_status for p in plans)


def _plan_text(plans: list) -> str:
    from analysis.plan import plan_table
    from analysis.tables import to_text

    if len(plans) == 1:
        return plan_table(plans[0])
    blocks = [f"== {p.model.label}\n{plan_table(p)}" for p in plans]
    summary = [{"arrival": p.model.arrival, "service": p.model.service, "maxsize": str(p.model.maxsize),
                "workers" if p.question == "workers" else "max load":
                    (str(p.answer) if p.answer is not None else "none") if p.question == "workers"
                    else (f"x{p.load:.3g}" if p.load is not None else "none"),
                "decided": "yes" if p.decided else "no"} for p in plans]  # fmt: skip
    return "\n\n".join(blocks) + "\n\nanswers, one per row:\n" + to_text(summary)


def _plan_evidence(args: argparse.Namespace, plans: list) -> None:
    """The targets chart of a plan's evidence folder (and its report with --report)."""
    from analysis.plan import target_series
    from analysis.plots import plot_targets

    panels = []
    for plan in plans:
        answer = plan.load if plan.question == "max-load" else plan.answer
        for series in target_series(plan):
            title = f"{plan.model.arrival} / {plan.model.service}" + (f" / maxsize {plan.model.maxsize}"
                                                                      if plan.model.maxsize else "")  # fmt: skip
            unstable = plan.model.load if plan.question == "workers" else plan.max_workers / plan.model.load
            panels.append({**series, "title": f"{title}: {series['target']}", "answer": answer,
                           "level": plan.confidence, "unstable": unstable})  # fmt: skip
    if not any(panel["x"] for panel in panels):
        print(f"evidence: {args.out} holds no cells: the answer was decided by theory alone (see its manifest)",
              file=sys.stderr)  # fmt: skip
        return
    xlabel = "arrival-rate factor" if plans[0].question == "max-load" else "workers"
    with _writing(args.out / "report"):
        paths = plot_targets(panels, args.out / "report", xlabel=xlabel)
    print(f"evidence: {args.out} (chart: {paths[0]})", file=sys.stderr)
    if args.report:
        _cmd_report(argparse.Namespace(run=args.out, no_progress=args.no_progress))


_COMMANDS = {
    "plan": _cmd_plan,
    "run": _cmd_run,
    "demo": _cmd_demo,
    "report": _cmd_report,
    "compare": _cmd_compare,
    "perf": _cmd_perf,
    "fidelity": _cmd_fidelity,
}


def _is_usage_error(err: Exception) -> bool:
    """Bad input (:class:`bench.errors.InputError`, which every input check raises), printed as one line."""
    from bench.errors import InputError

    return isinstance(err, InputError)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; return the exit status."""
    try:
        argv = list(sys.argv[1:] if argv is None else argv)
        if argv[:1] == ["perf"]:  # its options are pyperf's parser's: parsed there, once
            args = argparse.Namespace(command="perf", options=argv[1:])
        else:
            args = _parser().parse_args(argv)
        args.argv = argv
        return _COMMANDS[args.command](args)
    except BrokenPipeError:
        # The reader went away (``qbench compare A B | head``): stop quietly, as a pipeline expects.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 128 + 13  # SIGPIPE
    except Exception as err:
        if not _is_usage_error(err):
            raise
        print(f"qbench: error: {str(err).splitlines()[0] if str(err) else type(err).__name__}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("qbench: interrupted", file=sys.stderr)
        return 128 + (_Signalled.last or signal.SIGINT)
