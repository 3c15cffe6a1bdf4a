"""The ``qbench`` command line: the only place that parses argv or prints.

Bad input ends with one line on stderr and exit status 2, never a traceback.
"""

from __future__ import annotations

import argparse
import asyncio
import shutil
import sys
from pathlib import Path
from typing import Any, Callable, NoReturn, Sequence

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

distributions: const:V uniform:LOW:HIGH exp:MEAN erlang:K:MEAN gamma:MEAN:CV lognormal:MEAN:CV
               weibull:MEAN:CV pareto:MEAN:ALPHA hyperexp:MEAN:CV empirical:PATH[#COLUMN]
"""

_MAIN_EXAMPLES = """\
examples:
  qbench run bench/grids/default.toml --out results/default     run a grid
  qbench report results/default                                  charts and report of a run
  qbench compare results/default:workers=3 results/default:workers=4
  qbench demo                                                    watch Fred and George fall behind
"""


class UsageError(Exception):
    """Bad input from the user: printed as one line, exit status 2."""


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        raise UsageError(message)


def _csv(kind: Callable[[str], Any]) -> Callable[[str], list]:
    def split(text: str) -> list:
        parts = [p.strip() for p in text.split(",")]
        if not all(parts):
            raise argparse.ArgumentTypeError(f"empty value in list {text!r}")
        try:
            return [kind(p) for p in parts]
        except ValueError:
            raise argparse.ArgumentTypeError(f"bad list {text!r}") from None

    return split


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be >= 1, got {value}")
    return value


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
    target.add_argument("--resume", type=Path, metavar="RUN", help="finish an interrupted run: only missing or failed cells run")
    run.add_argument("--workers", type=_csv(int), help="worker counts, e.g. 1,2,4")
    run.add_argument("--arrival", type=_csv(str), help="inter-arrival distributions, e.g. const:1,exp:1")
    run.add_argument("--service", type=_csv(str), help="service-time distributions, e.g. uniform:0:5")
    run.add_argument("--maxsize", type=_csv(int), help="queue capacities (0 = unbounded), e.g. 0,5")
    length = run.add_mutually_exclusive_group()
    length.add_argument("--items", type=int, help="put N items per replication, then drain")
    length.add_argument("--duration", type=float, help="run S model seconds per replication")
    run.add_argument("--replications", type=int, help="seeded runs per cell")
    run.add_argument("--seed", type=int, help="root seed (default 0)")
    run.add_argument("--clock", help="virtual (default), scaled:F or real")
    run.add_argument("--engine", choices=("asyncio", "recurrence"), default="asyncio",
                     help="asyncio (default: the real program on the clock) or recurrence (exact FIFO G/G/c "
                     "recurrences, virtual clock only, much faster)")
    run.add_argument("--loop", choices=("asyncio", "uvloop"), default="asyncio",
                     help="event loop for scaled and real clocks (default asyncio; uvloop needs the uvloop extra)")
    run.add_argument("--max-backlog", type=int, help="stop a cell whose queue reaches N items (default 1000000)")
    run.add_argument("--jobs", type=_positive_int, help="worker processes (default: all cores)")
    run.add_argument("--executor", choices=("local", "dask"), default="local", help="local processes (default) or Dask")
    run.add_argument("--scheduler", metavar="ADDRESS", help="Dask scheduler, e.g. tcp://10.0.0.5:8786 (default: a new LocalCluster)")
    run.add_argument("--force", action="store_true", help="replace an existing results folder")
    run.add_argument("--no-progress", action="store_true", help="no progress bars")
    run.add_argument("--no-summary", action="store_true", help="do not print the summary table at the end")
    run.add_argument("--report", action="store_true", help="build the report when the run completes")

    demo = sub.add_parser(
        "demo",
        help="the blog program: Fred and George pull from a queue that grows",
        description="Run the seed scenario on a real loop in scaled time and print every take.",
        epilog="example:\n  qbench demo --scale 0.02 --items 150",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    demo.add_argument("--scale", type=float, default=0.05, help="real seconds per model second (default 0.05)")
    demo.add_argument("--items", type=int, default=120, help="stop after this many takes (default 120; 0 = never)")
    demo.add_argument("--workers", type=_positive_int, default=2, help="number of pullers (default 2)")
    demo.add_argument("--seed", type=int, help="seed of the service times")

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
        "  qbench compare results/default:workers=3 results/default:workers=4 --format md",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    compare.add_argument("a", help="results folder, optionally with a selection: PATH:key=value,...")
    compare.add_argument("b", help="the other folder or selection")
    compare.add_argument("--format", choices=("table", "md", "csv"), default="table", help="output format")
    compare.add_argument("--metrics", type=_csv(str), help="metrics to compare (default: all)")
    compare.add_argument("--chart", type=Path, help="write the backlog overlay chart into this folder")

    perf = sub.add_parser(
        "perf",
        help="pyperf suite: the engines against SimPy and Ciw, items/s and ratios",
        description="Run the pyperf suite (bench/perf.py): JSON under results/perf/, a table of items/s and ratios.",
        epilog="examples:\n  qbench perf                 JSON under results/perf/, ratio table printed\n"
        "  qbench perf --quick         a smoke run with a tenth of the items\n"
        "  qbench perf --rss           peak RSS of a 500k-item and a 5M-item cell\n"
        "  python -m pyperf compare_to results/perf/A.json results/perf/B.json",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    perf.add_argument("--quick", action="store_true", help="a tenth of the items (smoke run)")
    perf.add_argument("--rss", action="store_true", help="measure peak RSS of a 500k- and a 5M-item cell instead")
    perf.add_argument("--fast", action="store_true", help="pyperf --fast")
    perf.add_argument("--rigorous", action="store_true", help="pyperf --rigorous")
    perf.add_argument("-o", "--output", help="pyperf JSON file (default results/perf/perf-DATE.json)")
    perf.add_argument("-p", "--processes", type=_positive_int, help="pyperf worker processes (default 2)")
    perf.add_argument("-n", "--values", type=_positive_int, help="values per process (default 3)")
    perf.add_argument("-w", "--warmups", type=int, help="warm-up values per process (default 1)")

    fidelity = sub.add_parser(
        "fidelity",
        help="how far scaled time drifts from virtual time, on asyncio and uvloop",
        epilog="example:\n  qbench fidelity --out results/fidelity",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    fidelity.add_argument("--out", type=Path, default=Path("results/fidelity"), help="folder for the chart and table")
    fidelity.add_argument("--items", type=_positive_int, default=300, help="items per run (default 300)")
    fidelity.add_argument("--scales", type=_csv(float), help="scale factors (default 0.1,0.01,0.001,0.0001)")
    fidelity.add_argument("--loops", type=_csv(str), help="loops to try (default asyncio,uvloop)")
    return parser


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
    )
    return make_grid(merged)


def _with_engine(grid, args: argparse.Namespace):
    import dataclasses

    from bench.clock import loop_factory

    engine, loop = args.engine, args.loop
    if engine == "recurrence" and grid.scale is not None:
        raise UsageError(f"--engine recurrence computes in virtual time; it cannot run on clock {grid.clock!r}")
    if loop != "asyncio":
        if grid.scale is None:
            raise UsageError(f"--loop {loop} is for scaled and real clocks; the virtual clock has its own loop")
        try:
            loop_factory(loop)
        except ValueError as err:
            raise UsageError(str(err)) from None
    return dataclasses.replace(grid, engine=engine, loop=loop)


def _prepare_out(out: Path, force: bool, grid, command: list[str]) -> None:
    """Create the results folder with its manifest in one step (so any folder that exists can resume)."""
    from bench.runner import create_run

    if out.exists():
        if not force:
            raise UsageError(f"results folder {str(out)!r} exists; use --force to replace it")
        if not (out / "manifest.json").exists() and any(out.iterdir()):
            raise UsageError(f"{str(out)!r} is not a results folder; refusing to replace it")
        shutil.rmtree(out)
    try:
        create_run(out, grid, command)
    except OSError as err:
        raise UsageError(f"cannot write results folder {str(out)!r}: {err.strerror or err}") from None


_GRID_FLAGS = ("grid", "workers", "arrival", "service", "maxsize", "items", "duration", "replications", "seed", "clock",
               "max_backlog", "force")


def _resume_target(args: argparse.Namespace):
    """The folder and grid of ``--resume RUN``, as the manifest recorded them."""
    import dataclasses

    from bench import store
    from bench.grid import make_grid

    given = [name for name in _GRID_FLAGS if getattr(args, name) not in (None, False)]
    given += [name for name in ("engine", "loop") if getattr(args, name) != "asyncio"]
    if given:
        flag = given[0] if given[0] == "grid" else "--" + given[0].replace("_", "-")
        raise UsageError(f"--resume takes the grid from the run's manifest; drop {flag}")
    run = args.resume
    try:
        manifest = store.read_manifest(run)
    except (OSError, ValueError):
        raise UsageError(f"{str(run)!r} is not a results folder (no readable manifest.json)") from None
    version = manifest.get("schema_version")
    if version != store.SCHEMA_VERSION:
        raise UsageError(
            f"{str(run)!r} has schema version {version}; this qbench reads version {store.SCHEMA_VERSION}"
        )
    grid = make_grid(manifest["grid"])  # it drops the None of the unused items/duration itself
    return run, dataclasses.replace(grid, engine=manifest.get("engine", "asyncio"), loop=manifest.get("loop", "asyncio")
                                    if grid.scale is not None else "asyncio")


def _cmd_run(args: argparse.Namespace) -> int:
    import os

    from bench.executor import make_executor
    from bench.runner import run_grid

    if args.resume is not None:
        out, grid = _resume_target(args)
    else:
        out, grid = args.out, _with_engine(_grid_from_args(args), args)
    if args.scheduler is not None and args.executor != "dask":
        raise UsageError("--scheduler needs --executor dask")
    jobs = args.jobs or os.cpu_count() or 1
    command = ["qbench", *args.argv]
    with make_executor(args.executor, jobs, args.scheduler) as executor:
        if args.resume is None:
            _prepare_out(out, args.force, grid, command)
        result = run_grid(out, grid, jobs=jobs, progress=not args.no_progress, command=command, executor=executor)
    done = result.skipped + result.finished
    if result.interrupted:
        print(f"qbench: interrupted: {done} of {result.total} cells finished and kept in {out}; "
              f"continue with: qbench run --resume {out}", file=sys.stderr)
        return 130
    resumed = f", {result.skipped} already done" if result.skipped else ""
    print(f"wrote {out} ({result.total} cells{resumed}, {grid.replications} replication(s) each) "
          f"in {result.wall_seconds:.1f}s")
    if not args.no_summary:
        _print_summary(out)
    for cell, reason in result.capped:
        print(f"qbench: warning: cell {cell} {reason}", file=sys.stderr)
    if args.report:
        _cmd_report(argparse.Namespace(run=out, no_progress=args.no_progress))
    if result.failed:
        print(f"qbench: {len(result.failed)} cell(s) failed (retry them with: qbench run --resume {out}):",
              file=sys.stderr)
        for cell, error in result.failed:
            print(f"  cell {cell}: {error}", file=sys.stderr)
        return 1
    return 0


def _print_summary(run: Path) -> None:
    from analysis.summary import summary_table

    print(summary_table(run))


def _cmd_demo(args: argparse.Namespace) -> int:
    from bench.demo import demo

    if not args.scale > 0:
        raise UsageError(f"--scale must be > 0, got {args.scale}")
    items = None if args.items == 0 else args.items
    if items is not None and items < 0:
        raise UsageError(f"--items must be >= 0, got {args.items}")
    asyncio.run(demo(lambda line: print(line, flush=True), scale=args.scale, items=items, workers=args.workers, seed=args.seed))
    return 0


def _cmd_report(args: argparse.Namespace) -> int:
    from analysis.report import write_report

    index = write_report(args.run, progress=not args.no_progress)
    print(f"report: {index}")
    return 0


def _cmd_compare(args: argparse.Namespace) -> int:
    from analysis.compare import compare_runs, format_comparison, plot_comparison

    result = compare_runs(args.a, args.b, metrics=args.metrics)
    print(format_comparison(result, args.format))
    if args.chart is not None:
        args.chart.mkdir(parents=True, exist_ok=True)
        for path in plot_comparison(result, args.chart):
            print(f"chart: {path}")
    return 0


def _cmd_perf(args: argparse.Namespace) -> int:
    from bench.perf import main as perf_main

    argv = [flag for flag, on in (("--quick", args.quick), ("--rss", args.rss), ("--fast", args.fast),
                                  ("--rigorous", args.rigorous)) if on]
    for flag, value in (("-o", args.output), ("-p", args.processes), ("-n", args.values), ("-w", args.warmups)):
        if value is not None:
            argv += [flag, str(value)]
    return perf_main(argv)


def _cmd_fidelity(args: argparse.Namespace) -> int:
    from bench.fidelity import fidelity_study

    for path in fidelity_study(args.out, items=args.items, scales=args.scales, loops=args.loops, log=print):
        print(f"wrote {path}")
    return 0


_COMMANDS = {"run": _cmd_run, "demo": _cmd_demo, "report": _cmd_report, "compare": _cmd_compare,
             "perf": _cmd_perf, "fidelity": _cmd_fidelity}


#: The other errors that mean bad input, by module: a module never imported raised none of them, so
#: checking needs no import (analysis.load alone would cost every command a second of start-up).
_USAGE_ERRORS = {"bench.distributions": "SpecError", "bench.grid": "GridError", "bench.executor": "ExecutorError",
                 "analysis.load": "ResultsError"}


def _is_usage_error(err: Exception) -> bool:
    if isinstance(err, UsageError):
        return True
    return any(module in sys.modules and isinstance(err, getattr(sys.modules[module], name))
               for module, name in _USAGE_ERRORS.items())  # fmt: skip


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; return the exit status."""
    try:
        argv = list(sys.argv[1:] if argv is None else argv)
        args = _parser().parse_args(argv)
        args.argv = argv
        return _COMMANDS[args.command](args)
    except Exception as err:
        if not _is_usage_error(err):
            raise
        print(f"qbench: error: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("qbench: interrupted", file=sys.stderr)
        return 130
