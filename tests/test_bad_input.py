"""Every kind of bad input ends with exit 2, one line naming the problem, no traceback, nothing written."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bench.cli import main
from bench.distributions import FAMILIES, SpecError, parse

BASE = ["--workers", "1", "--arrival", "exp:1", "--service", "exp:0.5", "--items", "10", "--no-progress"]


def _grid_file(tmp_path: Path, body: str) -> str:
    path = tmp_path / "grid.toml"
    path.write_text(body)
    return str(path)


_GOOD_GRID = 'workers = [1]\narrival = ["exp:1"]\nservice = ["exp:0.5"]\n'

# Empirical files for the table below: name -> content (written into tmp_path, passed as --service).
EMPIRICAL = {
    "empty": "seconds\n",
    "bad-rows": "seconds\nn/a\n-3\n",
    "nan-row": "1.5\nnan\n2.5\n",
    "inf-row": "seconds\n1.5\ninf\n",
    "beyond-range": "seconds\n1.5\n1e12\n",
}

# Trace files for the table below: name -> (file name, content), given as --arrival trace:FILE.
TRACES = {
    "unsorted": ("t.csv", "ts\n1\n3\n2\n"),
    "negative": ("t.csv", "ts\n-1\n2\n"),
    "one-timestamp": ("t.csv", "ts\n5\n"),
    "unreadable": ("t.parquet", "this is not a parquet file"),
    "no-such-column": ("t.csv", "ts\n1\n2\n"),
}

# (id, argv after "run --out OUT", or "empirical:NAME" / "trace:NAME" for a file above, fragment of the message)
RUN_TABLE = [
    ("unknown-family", ["--service", "normal:1:2"], "unknown family 'normal'"),
    ("wrong-arity", ["--service", "uniform:1"], "takes 2 parameter(s), got 1"),
    ("non-numeric", ["--service", "exp:abc"], "'abc' is not a number"),
    ("negative", ["--arrival", "exp:-1"], "MEAN must be > 0"),
    ("zero", ["--service", "const:0"], "must be > 0"),
    ("nan", ["--service", "exp:nan"], "not finite"),
    ("inf", ["--arrival", "exp:inf"], "not finite"),
    ("cv-range-gamma", ["--service", "gamma:1:0"], "CV must be"),
    ("cv-range-hyperexp", ["--service", "hyperexp:1:0.5"], "CV must be in (1, 100]"),
    ("uniform-reversed", ["--service", "uniform:5:0"], "uniform:5:0"),
    ("workers-text-flag", ["--workers", "two"], "bad list"),
    ("empty-axis-flag", ["--workers", ""], "empty value"),
    ("duplicate-workers", ["--workers", "1,2,1"], "axis 'workers' repeats 1"),
    ("duplicate-specs", ["--service", "exp:1,exp:1.0"], "axis 'service' repeats exp:1"),
    ("workers-zero", ["--workers", "0"], "'workers' must be >= 1"),
    ("maxsize-negative", ["--maxsize", "-1"], "'maxsize' must be >= 0"),
    ("jobs-zero", ["--jobs", "0"], "--jobs: must be >= 1"),
    ("replications-zero", ["--replications", "0"], "'replications' must be >= 1"),
    ("items-zero", ["--items", "0"], "'items' must be >= 1"),
    ("duration-negative", ["--duration", "-5"], "'duration' must be a finite number > 0"),
    ("duration-nan", ["--duration", "nan"], "'duration' must be a finite number > 0"),
    ("seed-negative", ["--seed", "-1"], "'seed' must be >= 0"),
    ("bad-clock", ["--clock", "sideways"], "bad clock 'sideways'"),
    ("both-flags", ["--items", "5", "--duration", "5"], "not allowed with"),
    ("empirical-empty", "empirical:empty", "holds no valid durations"),
    ("empirical-bad-rows", "empirical:bad-rows", "2 bad value(s)"),
    ("empirical-nan-row", "empirical:nan-row", "1 bad value(s)"),
    ("empirical-inf-row", "empirical:inf-row", "(row 3: 'inf')"),
    ("empirical-beyond-range", "empirical:beyond-range", "can draw 1e+12 s, beyond the"),
    ("empirical-missing", ["--service", "empirical:/nonexistent/d.csv"], "not found"),
    # sizes beyond what can run
    ("workers-int64", ["--workers", "9223372036854775807"], "'workers' must be <= 100,000"),
    ("workers-above-bound", ["--workers", "100001"], "'workers' must be <= 100,000"),
    ("max-backlog-huge", ["--max-backlog", str(10**12)], "'max_backlog' must be <= 10,000,000"),
    ("maxsize-above-cap", ["--maxsize", str(10**12)], "above max_backlog"),
    ("maxsize-above-given-cap", ["--maxsize", "50", "--max-backlog", "40"], "'maxsize' 50 is above max_backlog 40"),
    ("too-many-rows", ["--workers", "1,2", "--replications", "600000"], "at most 1,000,000"),
    ("jobs-huge", ["--jobs", "100000"], "more than this machine can run"),
    ("items-beyond-ids", ["--items", str(2**53 + 1)], "'items' must be <="),
    ("seed-beyond-128-bits", ["--seed", str(2**128)], "'seed' must be <="),
    # values outside the clock's range or below its resolution
    ("const-beyond-range", ["--service", "const:1e12"], "beyond the"),
    ("uniform-beyond-range", ["--arrival", "uniform:0:1e10"], "can draw 1e+10 s"),
    ("unbounded-mean-huge", ["--service", "exp:1e9"], "an unbounded distribution may have a mean"),
    ("arrival-below-resolution", ["--arrival", "const:1e-12"], "below the clock's resolution"),
    ("service-below-resolution", ["--service", "uniform:0:1e-10"], "below the clock's resolution"),
    ("duration-beyond-range", ["--duration", "1e11"], "'duration' must lie in"),
    ("duration-tiny", ["--duration", "1e-300"], "'duration' must lie in"),
    ("duration-huge", ["--duration", "1e300"], "'duration' must lie in"),
    ("items-horizon", ["--arrival", "const:1e8", "--items", "1000"], "beyond the"),
    ("duration-holds-too-many", ["--arrival", "const:1e-9", "--duration", "1e8"], "at most"),
    # engines and loops on clocks they cannot run on
    ("recurrence-on-scaled", ["--clock", "scaled:0.001", "--engine", "recurrence"], "computes in virtual time"),
    ("loop-on-virtual", ["--loop", "uvloop"], "is for scaled and real clocks"),
    # clocks no event loop can keep
    ("scale-1e-6", ["--clock", "scaled:1e-6"], "an event loop needs"),
    ("scale-1e-300", ["--clock", "scaled:1e-300"], "an event loop needs"),
    ("scale-huge", ["--clock", "scaled:1e300"], "cannot run"),
    ("scale-inf", ["--clock", "scaled:inf"], "bad clock"),
    ("real-tiny-duration", ["--clock", "real", "--duration", "1e-6"], "cannot keep time that short"),
    # numbers in forms Python reads but people do not write
    ("spec-underscore", ["--service", "exp:1_0"], "'1_0' is not a number"),
    ("workers-underscore", ["--workers", "1_0"], "not a whole number"),
    ("items-underscore", ["--items", "1_0"], "not a whole number"),
    ("duration-underscore", ["--duration", "1_0"], "not a number"),
    ("seed-hex", ["--seed", "0x10"], "not a whole number"),
    ("workers-arabic-indic", ["--workers", "٣"], "not a whole number"),
    ("items-arabic-indic", ["--items", "١٠"], "not a whole number"),
    ("spec-arabic-indic", ["--service", "exp:٣"], "is not a number"),
    # a message whose bound and value read alike
    ("cv-bound-message", ["--service", "weibull:1:371277"], "CV must be in (0.001, 100], got 371277"),
    # targets (--slo) the report would check
    ("slo-unknown-metric", ["--slo", "latency<=3"], "unknown metric 'latency'"),
    ("slo-threshold-text", ["--slo", "wait_p99<=soon"], "the threshold 'soon' is not a number"),
    ("slo-at-least-a-latency", ["--slo", "wait_p99>=3"], "'>=' on a latency"),
    ("slo-at-least-abandonment", ["--slo", "abandon_rate>=0.1"], "'>=' on the abandonment rate"),
    ("slo-abandonment-above-1", ["--slo", "abandon_rate<=1.5"], "abandon_rate is the share of items abandoned"),
    # scenarios and behaviours
    (
        "unknown-discipline",
        ["--discipline", "random"],
        "'discipline' must be one of fifo, lifo, priority, got 'random'",
    ),
    ("classes-not-summing-to-1", ["--classes", "high:0.2,low:0.7"], "sum to 0.9; they must sum to 1"),
    ("classes-bad-entry", ["--classes", "high=0.2,low=0.8"], "classes: bad entry 'high=0.2'"),
    ("classes-repeated", ["--classes", "a:0.5,a:0.5"], "classes: 'a' is given twice"),
    ("classes-zero-weight", ["--classes", "a:0,b:1"], "the weight of 'a' must be in (0, 1]"),
    ("priority-without-classes", ["--discipline", "priority"], "discipline 'priority' needs item classes"),
    ("failure-one", ["--failure", "1"], "'failure' must be a probability in [0, 1)"),
    ("failure-negative", ["--failure", "-0.1"], "'failure' must be a probability in [0, 1)"),
    ("failure-nan", ["--failure", "nan"], "'failure' must be a probability in [0, 1)"),
    ("scenario-missing-file", ["--scenario", "/nonexistent/mine.py:run"], "no file '/nonexistent/mine.py'"),
    ("scenario-unknown-name", ["--scenario", "pooll"], "use a built-in name (pool), FILE.py:NAME or module:NAME"),
    (
        "scenario-missing-module",
        ["--scenario", "no_such_module_here:run"],
        "cannot import module 'no_such_module_here'",
    ),
    ("scenario-not-a-coroutine", ["--scenario", "json:loads"], "'loads' is not an async function"),
    ("patience-bad-spec", ["--patience", "exp:-1"], "patience: bad distribution spec 'exp:-1'"),
    ("setup-bad-spec", ["--setup", "const:x"], "setup: bad distribution spec 'const:x'"),
    ("batch-zero", ["--batch", "0"], "'batch' must be >= 1"),
    ("linger-negative", ["--linger", "-1"], "'linger' must be a number of seconds in [0,"),
    ("attempts-zero", ["--attempts", "0"], "'attempts' must be >= 1"),
    ("backoff-unknown", ["--backoff", "sometimes"], "backoff: bad spec 'sometimes'"),
    ("backoff-expo-cap-below-base", ["--backoff", "expo:2:1"], "expo needs BASE > 0 and CAP >= BASE"),
    ("merged-service", ["--service", "exp:1+exp:2"], "only an arrival spec may"),
    ("merged-empty-part", ["--arrival", "exp:1+"], "an empty part in a merged spec"),
    (
        "recurrence-with-lifo",
        ["--engine", "recurrence", "--discipline", "lifo"],
        "the recurrence engine computes the plain FIFO pool only",
    ),
    ("recurrence-with-pushers", ["--engine", "recurrence", "--arrival", "exp:2+exp:2"], "cell 0 has 2 pushers"),
    # arrival processes, a backlog at t = 0 and elastic workers
    ("schedule-negative-rate", ["--arrival", "schedule:1@0,-2@100"], "RATE must be >= 0 items/s, got -2"),
    ("schedule-times-not-increasing", ["--arrival", "schedule:1@0,2@50,3@50"], "piece times must increase"),
    ("schedule-not-from-0", ["--arrival", "schedule:1@10,2@50"], "the first piece must start at time 0"),
    ("schedule-period-too-short", ["--arrival", "schedule:1@0,2@50:40"], "the PERIOD must be above"),
    ("schedule-all-zero", ["--arrival", "schedule:0@0"], "every rate is 0"),
    ("schedule-beyond-range", ["--arrival", "schedule:1@0,2@1e10"], "beyond the"),
    ("sine-amplitude-above-1", ["--arrival", "sine:1:1.5:86400"], "AMPLITUDE must be in [0, 1]"),
    ("sine-negative-rate", ["--arrival", "sine:-1:0.5:86400"], "RATE must be >= 0 items/s, got -1"),
    ("sine-rate-beyond-resolution", ["--arrival", "sine:1e10:0.5:100"], "below the clock's resolution"),
    ("bursts-negative-rate", ["--arrival", "bursts:-3:1:10:10"], "RATE_ON must be >= 0"),
    ("bursts-zero-duration", ["--arrival", "bursts:3:1:0:10"], "MEAN_ON must be > 0"),
    ("trace-missing", ["--arrival", "trace:/nonexistent/t.csv"], "not found"),
    ("trace-unsorted", "trace:unsorted", "is not sorted: timestamp 3 (2) comes before timestamp 2 (3)"),
    ("trace-negative", "trace:negative", "1 bad timestamp(s)"),
    ("trace-one-timestamp", "trace:one-timestamp", "a trace needs at least 2"),
    ("trace-unreadable", "trace:unreadable", "cannot read"),
    ("trace-no-such-column", "trace:no-such-column", "column 'when' not in"),
    ("trace-bad-scale", ["--arrival", "trace:/nonexistent/t.csv:x0"], "the rate scale must be > 0"),
    ("process-as-service", ["--service", "sine:1:0.5:100"], "is an arrival process"),
    ("process-as-patience", ["--patience", "schedule:1@0"], "patience: 'schedule:1@0' is an arrival process"),
    ("backlog0-negative", ["--backlog0", "-1"], "'backlog0' must be >= 0"),
    ("backlog0-beyond-maxsize", ["--backlog0", "10", "--maxsize", "5"], "does not fit in a queue of maxsize 5"),
    ("backlog0-beyond-items", ["--backlog0", "20"], "is more than the run's items = 10"),
    ("elastic-min-above-max", ["--workers", "auto:min=5,max=2,up=depth>3"], "min 5 is above max 2"),
    ("elastic-unknown-rule", ["--workers", "auto:min=1,max=4,up=queue>3"], "unknown rule 'queue>3'"),
    ("elastic-unknown-down-rule", ["--workers", "auto:min=1,max=4,up=depth>3,down=depth<1"], "unknown rule 'depth<1'"),
    ("elastic-unknown-key", ["--workers", "auto:min=1,max=4,up=depth>3,speed=2"], "unknown key 'speed'"),
    ("elastic-no-up-rule", ["--workers", "auto:min=1,max=4"], "'up' is required"),
    ("elastic-init-outside", ["--workers", "auto:min=2,max=4,init=9,up=depth>3"], "init 9 must lie in [min, max]"),
    ("elastic-busy-share", ["--workers", "auto:min=1,max=4,up=depth>3,down=busy<2"], "busy<F needs a share"),
    ("elastic-max-huge", ["--workers", "auto:min=1,max=1000000,up=depth>3"], "max must be in 1..100,000"),
    (
        "recurrence-with-elastic",
        ["--engine", "recurrence", "--workers", "auto:min=1,max=2,up=depth>1"],
        "cell 0 has elastic workers 'auto:min=1,max=2,up=depth>1' (asyncio only)",
    ),
    (
        "max-backlog-behaviours",
        ["--max-backlog", "5000000", "--discipline", "lifo"],
        "'max_backlog' must be <= 3,000,000 for cells with a scenario or behaviours",
    ),
]

GRID_TABLE = [
    ("unknown-key", _GOOD_GRID + "items = 5\ncolour = 'red'\n", "unknown grid key(s): colour"),
    ("empty-axis", 'workers = []\narrival = ["exp:1"]\nservice = ["exp:0.5"]\nitems = 5\n', "axis 'workers' is empty"),
    ("both", _GOOD_GRID + "items = 5\nduration = 10\n", "exactly one of 'items'"),
    ("neither", _GOOD_GRID, "exactly one of 'items'"),
    (
        "workers-negative",
        'workers = [-2]\narrival = ["exp:1"]\nservice = ["exp:0.5"]\nitems = 5\n',
        "'workers' must be >= 1",
    ),
    (
        "workers-text",
        'workers = ["a"]\narrival = ["exp:1"]\nservice = ["exp:0.5"]\nitems = 5\n',
        "'workers' must be a whole number",
    ),
    ("spec-not-string", 'workers = [1]\narrival = [1]\nservice = ["exp:0.5"]\nitems = 5\n', "specs are strings"),
    ("missing-axis", 'workers = [1]\nservice = ["exp:0.5"]\nitems = 5\n', "needs a 'arrival' axis"),
    ("malformed", "workers = [1,\n", "is not valid TOML"),
    ("float-items", _GOOD_GRID + "items = 2.5\n", "'items' must be a whole number"),
    ("bad-clock", _GOOD_GRID + "items = 5\nclock = 'scaled:0'\n", "bad clock"),
    (
        "workers-int64",
        'workers = [9223372036854775807]\narrival = ["exp:1"]\nservice = ["exp:0.5"]\nitems = 5\n',
        "'workers' must be <= 100,000",
    ),
    (
        "too-many-cells",
        "workers = ["
        + ",".join(map(str, range(1, 1001)))
        + "]\narrival = ["
        + ",".join(f'"exp:{1 + i / 1000}"' for i in range(101))
        + ']\nservice = ["exp:0.5"]\nitems = 5\n',
        "the grid has 101,000 cells",
    ),
    ("max-backlog-huge", _GOOD_GRID + "items = 5\nmax_backlog = 100000000000\n", "'max_backlog' must be <="),
    ("duration-beyond-range", _GOOD_GRID + "duration = 1e11\n", "'duration' must lie in"),
    ("seed-string-huge", _GOOD_GRID + f"items = 5\nseed = '{2**130}'\n", "'seed' must be <="),
    ("workers-superscript", 'workers = ["²"]\narrival = ["exp:1"]\nservice = ["exp:0.5"]\nitems = 5\n', "whole number"),
    (
        "workers-double-minus",
        'workers = ["--1"]\narrival = ["exp:1"]\nservice = ["exp:0.5"]\nitems = 5\n',
        "whole number",
    ),
    ("duration-underscore", _GOOD_GRID + "duration = '1_000'\n", "'duration' must be a number"),
    ("replications-huge", _GOOD_GRID + "items = 5\nreplications = 1e300\n", "got 1e+300"),
    ("slo-not-a-list", _GOOD_GRID + "items = 5\nslo = 5\n", "'slo' must be a list of targets"),
    ("slo-twice", _GOOD_GRID + "items = 5\nslo = ['wait_p99<=5', 'wait_p99 <= 6']\n", "bound wait_p99 twice"),
    ("slo-percentile-100", _GOOD_GRID + "items = 5\nslo = ['sojourn_p100<=5']\n", "strictly between 0 and 100"),
    ("discipline-not-text", _GOOD_GRID + "items = 5\ndiscipline = [1]\n", "'discipline' must be one of"),
    ("classes-not-text", _GOOD_GRID + "items = 5\nclasses = 0.5\n", "classes: expected text"),
    ("failure-text", _GOOD_GRID + "items = 5\nfailure = ['often']\n", "'failure' must be a probability in [0, 1)"),
    ("scenario-duplicated", _GOOD_GRID + "items = 5\nscenario = ['pool', 'pool']\n", "axis 'scenario' repeats"),
]

# (id, the scenario file's content, NAME, fragment): written into tmp_path and given as --scenario FILE:NAME
SCENARIO_TABLE = [
    ("names-nothing", "async def run(ctx):\n    pass\n", "other", "defines no 'other'"),
    ("not-async", "def run(ctx):\n    pass\n", "run", "'run' is not an async function"),
    ("not-a-function", "run = 3\n", "run", "'run' is not an async function"),
    ("raises-on-import", "raise RuntimeError('no import for you')\n", "run", "raised RuntimeError: no import for you"),
    ("syntax-error", "async def run(ctx)\n    pass\n", "run", "raised SyntaxError"),
    ("bad-name", "async def run(ctx):\n    pass\n", "not a name", "use a built-in name"),
]


def _check(capsys, argv: list[str], fragment: str) -> None:
    code = main(argv)
    captured = capsys.readouterr()
    assert code == 2, captured.err
    lines = captured.err.strip().splitlines()
    assert len(lines) == 1, captured.err
    assert lines[0].startswith("qbench: error: ")
    assert fragment in lines[0], lines[0]
    assert "Traceback" not in captured.err


def _flags_with(extra: list[str]) -> list[str]:
    """BASE with each flag in ``extra`` replacing its value there."""
    argv = list(BASE)
    for flag, value in zip(extra[::2], extra[1::2]):
        if flag in argv:
            argv[argv.index(flag) + 1] = value
        elif flag == "--duration":
            index = argv.index("--items")
            argv[index : index + 2] = [flag, value]
            if "--items" in extra:
                argv += ["--items", extra[extra.index("--items") + 1]]
        else:
            argv += [flag, value]
    return argv


@pytest.mark.parametrize(("case", "extra", "fragment"), RUN_TABLE, ids=[row[0] for row in RUN_TABLE])
def test_bad_run_flags(tmp_path, capsys, case, extra, fragment):
    if isinstance(extra, str) and extra.startswith("trace:"):
        name, content = TRACES[extra.partition(":")[2]]
        data = tmp_path / name
        data.write_text(content)
        extra = ["--arrival", f"trace:{data}" + ("#when" if extra.endswith("no-such-column") else "")]
    elif isinstance(extra, str):
        data = tmp_path / "d.csv"
        data.write_text(EMPIRICAL[extra.partition(":")[2]])
        extra = ["--service", f"empirical:{data}"]
    out = tmp_path / "out"
    _check(capsys, ["run", "--out", str(out), *_flags_with(extra)], fragment)
    assert not out.exists()


@pytest.mark.parametrize(("case", "body", "fragment"), GRID_TABLE, ids=[row[0] for row in GRID_TABLE])
def test_bad_grid_files(tmp_path, capsys, case, body, fragment):
    out = tmp_path / "out"
    _check(capsys, ["run", _grid_file(tmp_path, body), "--out", str(out), "--no-progress"], fragment)
    assert not out.exists()


@pytest.mark.parametrize(("case", "source", "name", "fragment"), SCENARIO_TABLE, ids=[row[0] for row in SCENARIO_TABLE])
def test_bad_scenario_files(tmp_path, capsys, case, source, name, fragment):
    (tmp_path / "mine.py").write_text(source)
    out = tmp_path / "out"
    _check(capsys, ["run", "--out", str(out), *BASE, "--scenario", f"{tmp_path / 'mine.py'}:{name}"], fragment)
    assert not out.exists()


def test_unreadable_grid_file(tmp_path, capsys):
    out = tmp_path / "out"
    _check(capsys, ["run", str(tmp_path), "--out", str(out)], "cannot read grid file")
    _check(capsys, ["run", str(tmp_path / "absent.toml"), "--out", str(out)], "cannot read grid file")
    assert not out.exists()


def test_existing_output_folder(tmp_path, capsys):
    out = tmp_path / "out"
    out.mkdir()
    (out / "keep.txt").write_text("mine")
    _check(capsys, ["run", "--out", str(out), *BASE], "exists; use --force")
    _check(capsys, ["run", "--out", str(out), *BASE, "--force"], "is not a qbench results folder")
    assert (out / "keep.txt").read_text() == "mine"


# (id, argv of another command, fragment): each ends with exit 2 and one line, before anything runs.
OTHER_TABLE = [
    ("demo-scale-inf", ["demo", "--scale", "inf"], "--scale must be a finite number > 0"),
    ("demo-scale-nan", ["demo", "--scale", "nan"], "--scale must be a finite number > 0"),
    ("demo-scale-zero", ["demo", "--scale", "0"], "--scale must be a finite number > 0"),
    ("demo-scale-tiny", ["demo", "--scale", "1e-300"], "an event loop needs"),
    ("demo-scale-huge", ["demo", "--scale", "1e300"], "--scale must be at most"),
    ("demo-workers-huge", ["demo", "--workers", "1000000000"], "--workers must be at most 100,000"),
    ("demo-seed-negative", ["demo", "--seed", "-1"], "--seed must be in 0..2**128-1"),
    ("demo-items-negative", ["demo", "--items", "-3"], "--items must be >= 0"),
    ("fidelity-few-items", ["fidelity", "--items", "19"], "--items must be in 20.."),
    ("fidelity-scale-zero", ["fidelity", "--scales", "0"], "--scales must be a finite number > 0"),
    ("fidelity-scale-nan", ["fidelity", "--scales", "nan"], "--scales must be a finite number > 0"),
    ("fidelity-scale-negative", ["fidelity", "--scales", "-1"], "--scales must be a finite number > 0"),
    ("fidelity-scale-repeated", ["fidelity", "--scales", "0.01,0.01"], "--scales repeats a value"),
    ("fidelity-scale-tiny", ["fidelity", "--scales", "1e-7"], "an event loop needs"),
    ("fidelity-loop-unknown", ["fidelity", "--loops", "foo"], "unknown loop 'foo'"),
    ("fidelity-loop-repeated", ["fidelity", "--loops", "asyncio,asyncio"], "--loops repeats a value"),
    ("perf-processes-huge", ["perf", "-p", "100000"], "--processes must be in 1..100"),
    ("perf-values-huge", ["perf", "-n", "100000"], "--values must be in 1..1000"),
    ("perf-warmups-negative", ["perf", "-w", "-1"], "-w/--warmups"),
    ("perf-warmups-huge", ["perf", "-w", "1000"], "--warmups must be in 0..100"),
    ("perf-unknown-option", ["perf", "--colour"], "unrecognized arguments: --colour"),
    ("perf-output-nowhere", ["perf", "-o", "/nonexistent/folder/x.json"], "its folder does not exist"),
]


_PLAN = ["plan", "--arrival", "exp:1", "--service", "exp:2.5", "--no-progress"]
_P99 = ["--slo", "wait_p99<=10"]
OTHER_TABLE += [
    ("plan-unknown-metric", [*_PLAN, "--slo", "wait_p99<=10", "--slo", "throughput>=1"], "unknown metric 'throughput'"),
    ("plan-threshold-text", [*_PLAN, "--slo", "wait_p99<=ten"], "the threshold 'ten' is not a number"),
    ("plan-at-least-a-latency", [*_PLAN, "--slo", "sojourn_mean>=2"], "'>=' on a latency"),
    ("plan-at-least-a-queue", [*_PLAN, "--slo", "depth_mean>=2"], "'>=' on the mean queue length"),
    ("plan-utilisation-above-1", [*_PLAN, "--slo", "utilisation<=1.5"], "in [0, 1]"),
    ("plan-no-target", _PLAN, "give at least one target"),
    ("plan-no-arrival", ["plan", "--service", "exp:2.5", *_P99], "give --arrival"),
    ("plan-bad-spec", [*_PLAN, *_P99, "--service", "normal:1"], "unknown family 'normal'"),
    ("plan-confidence", [*_PLAN, *_P99, "--confidence", "1.5"], "--confidence must be at least 0.5 and below 1"),
    ("plan-max-workers-zero", [*_PLAN, *_P99, "--max-workers", "0"], "--max-workers must be in 1..100,000"),
    ("plan-max-load-needs-workers", [*_PLAN, *_P99, "--find", "max-load"], "--find max-load needs --workers N"),
    ("plan-workers-without-max-load", [*_PLAN, *_P99, "--workers", "4"], "goes with --find max-load"),
    ("plan-budget-text", [*_PLAN, *_P99, "--budget", "lots"], "--budget must be a number of items"),
    ("plan-budget-zero-seconds", [*_PLAN, *_P99, "--budget", "0s"], "more than 0"),
    ("plan-budget-too-small", [*_PLAN, *_P99, "--budget", "1000"], "fewer than 2 replications"),
    ("plan-items-tiny", [*_PLAN, *_P99, "--items", "10"], "--items must be in 1000.."),
    ("plan-seed-negative", [*_PLAN, *_P99, "--seed", "-1"], "'seed' must be >= 0"),
    (
        "plan-elastic-on-recurrence",
        [*_PLAN, *_P99, "--workers", "auto:min=1,max=4,up=depth>2", "--engine", "recurrence"],
        "elastic workers run on the asyncio engine only",
    ),
    ("plan-elastic-min-above-max", [*_PLAN, *_P99, "--workers", "auto:min=3,max=1,up=depth>2"], "min 3 is above max 1"),
    (
        "plan-schedule-without-an-end",
        ["plan", "--arrival", "schedule:1@0,2@100", "--service", "exp:0.5", *_P99, "--no-progress"],
        "give --duration S",
    ),
    (
        "plan-max-load-of-a-process",
        [
            "plan",
            "--arrival",
            "sine:1:0.5:100",
            "--service",
            "exp:0.5",
            *_P99,
            "--workers",
            "4",
            "--find",
            "max-load",
            "--no-progress",
        ],
        "is an arrival process",
    ),  # fmt: skip
]


@pytest.mark.parametrize(("case", "argv", "fragment"), OTHER_TABLE, ids=[row[0] for row in OTHER_TABLE])
def test_bad_input_to_other_commands(tmp_path, capsys, monkeypatch, case, argv, fragment):
    monkeypatch.chdir(tmp_path)  # fidelity and perf would write under results/
    _check(capsys, argv, fragment)
    assert not any(tmp_path.iterdir())


def test_output_folder_name_too_long(tmp_path, capsys):
    _check(capsys, ["run", "--out", str(tmp_path / ("x" * 300)), *BASE], "is 300 bytes; at most")


def test_output_folder_that_is_a_file_or_a_symlink(tmp_path, capsys):
    (tmp_path / "a-file").write_text("mine")
    _check(capsys, ["run", "--out", str(tmp_path / "a-file"), *BASE, "--force"], "exists and is not a folder")
    assert (tmp_path / "a-file").read_text() == "mine"
    (tmp_path / "target").mkdir()
    (tmp_path / "link").symlink_to(tmp_path / "target")
    _check(capsys, ["run", "--out", str(tmp_path / "link"), *BASE, "--force"], "is a symbolic link")
    assert (tmp_path / "link").is_symlink() and (tmp_path / "target").is_dir()


def test_non_writable_output_folder(tmp_path, capsys):
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    _check(capsys, ["run", "--out", str(blocker / "run"), *BASE], "cannot write results folder")


def test_unreachable_dask_scheduler(tmp_path, capsys, monkeypatch):
    monkeypatch.setattr("bench.executor.CONNECT_TIMEOUT", 0.5)  # nothing listens: no need to wait 5 s
    pytest.importorskip("distributed")
    out = tmp_path / "out"
    argv = ["run", "--out", str(out), *BASE, "--executor", "dask", "--scheduler", "tcp://127.0.0.1:9"]
    _check(capsys, argv, "cannot reach the Dask scheduler")
    assert not out.exists()


def _fake_run(tmp_path: Path, version: int) -> Path:
    run = tmp_path / f"v{version}"
    code = main(["run", "--out", str(run), *BASE, "--jobs", "1", "--no-summary"])
    assert code == 0
    manifest = json.loads((run / "manifest.json").read_text())
    manifest["schema_version"] = version
    (run / "manifest.json").write_text(json.dumps(manifest))
    return run


@pytest.mark.parametrize("command", ["report", "compare", "resume"])
def test_incompatible_schema_version(tmp_path, capsys, command):
    old = _fake_run(tmp_path, 99)
    capsys.readouterr()
    argv = {
        "report": ["report", str(old)],
        "compare": ["compare", str(old), str(old)],
        "resume": ["run", "--resume", str(old)],
    }[command]
    _check(capsys, argv, "version 99")


@pytest.mark.parametrize(("command", "folders"), [("report", 1), ("compare", 2)])
def test_report_or_compare_of_a_folder_that_is_not_a_run(tmp_path, capsys, command, folders):
    _check(capsys, [command, *[str(tmp_path / "nothing")] * folders], "does not exist")


def test_resume_needs_a_results_folder(tmp_path, capsys):
    _check(capsys, ["run", "--resume", str(tmp_path)], "not a results folder")


def test_resume_refuses_grid_flags(tmp_path, capsys):
    run = _fake_run(tmp_path, 1)
    capsys.readouterr()
    _check(capsys, ["run", "--resume", str(run), "--workers", "3"], "--resume takes the grid from")


# -- fuzzing the spec parser ---------------------------------------------------------------------

_pieces = st.one_of(
    st.sampled_from(sorted(FAMILIES)),
    st.text(alphabet="0123456789.-+eEinfa:#/ ", max_size=8),
    st.floats(allow_nan=True, allow_infinity=True).map(repr),
    st.integers(-10, 10).map(str),
)


@settings(max_examples=600, deadline=None)
@given(st.lists(_pieces, min_size=0, max_size=4).map(":".join))
def test_spec_parser_never_crashes_with_anything_but_spec_error(spec):
    try:
        dist = parse(spec)
    except SpecError as err:
        assert "\n" not in str(err)
    else:
        assert dist.mean > 0 and os.path.sep not in dist.family


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=30))
def test_spec_parser_survives_arbitrary_text(spec):
    try:
        parse(spec)
    except SpecError as err:
        assert "\n" not in str(err)


def test_plan_max_load_evidence_of_an_empirical_arrival_is_refused_before_anything_is_written(tmp_path, capsys):
    data = tmp_path / "gaps.csv"
    data.write_text("seconds\n0.5\n1.5\n1.0\n")
    out = tmp_path / "out"
    argv = ["plan", "--arrival", f"empirical:{data}", "--service", "exp:2.5", "--slo", "wait_p99<=10", "--workers", "4",
            "--find", "max-load", "--out", str(out), "--no-progress"]  # fmt: skip
    _check(capsys, argv, "cannot be rescaled")
    assert not out.exists()
