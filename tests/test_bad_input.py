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

# (id, argv after "run --out OUT", or "empirical" for an empty empirical file, fragment of the message)
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
    ("empirical-empty", "empirical", "holds no valid durations"),
    ("empirical-missing", ["--service", "empirical:/nonexistent/d.csv"], "not found"),
]

GRID_TABLE = [
    ("unknown-key", _GOOD_GRID + "items = 5\ncolour = 'red'\n", "unknown grid key(s): colour"),
    ("empty-axis", 'workers = []\narrival = ["exp:1"]\nservice = ["exp:0.5"]\nitems = 5\n', "axis 'workers' is empty"),
    ("both", _GOOD_GRID + "items = 5\nduration = 10\n", "exactly one of 'items'"),
    ("neither", _GOOD_GRID, "exactly one of 'items'"),
    ("workers-negative", 'workers = [-2]\narrival = ["exp:1"]\nservice = ["exp:0.5"]\nitems = 5\n', "'workers' must be >= 1"),
    ("workers-text", 'workers = ["a"]\narrival = ["exp:1"]\nservice = ["exp:0.5"]\nitems = 5\n', "'workers' must be a whole number"),
    ("spec-not-string", 'workers = [1]\narrival = [1]\nservice = ["exp:0.5"]\nitems = 5\n', "specs are strings"),
    ("missing-axis", 'workers = [1]\nservice = ["exp:0.5"]\nitems = 5\n', "needs a 'arrival' axis"),
    ("malformed", "workers = [1,\n", "is not valid TOML"),
    ("float-items", _GOOD_GRID + "items = 2.5\n", "'items' must be a whole number"),
    ("bad-clock", _GOOD_GRID + "items = 5\nclock = 'scaled:0'\n", "bad clock"),
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
    if extra == "empirical":
        data = tmp_path / "d.csv"
        data.write_text("seconds\nn/a\n-3\n")
        extra = ["--service", f"empirical:{data}"]
    out = tmp_path / "out"
    _check(capsys, ["run", "--out", str(out), *_flags_with(extra)], fragment)
    assert not out.exists()


@pytest.mark.parametrize(("case", "body", "fragment"), GRID_TABLE, ids=[row[0] for row in GRID_TABLE])
def test_bad_grid_files(tmp_path, capsys, case, body, fragment):
    out = tmp_path / "out"
    _check(capsys, ["run", _grid_file(tmp_path, body), "--out", str(out), "--no-progress"], fragment)
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
    _check(capsys, ["run", "--out", str(out), *BASE, "--force"], "is not a results folder")
    assert (out / "keep.txt").read_text() == "mine"


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
