"""compare says what differs between its two sides and claims pairing only where the random
numbers really are shared; a selector that matches nothing is an error."""

from __future__ import annotations

import shutil

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from analysis.compare import compare_runs, format_comparison
from analysis.load import ResultsError

GRID = [(w, "exp:1", "exp:1.5") for w in (1, 2, 3, 4)] + [(2, "exp:1", "exp:1.5", 5)]


def _run(write_run, base, name, **settings):
    return write_run(base / name, GRID, **{"duration": 300.0, "replications": 3, "seed": 1, **settings})


@pytest.fixture(scope="module")
def base(tmp_path_factory):
    return tmp_path_factory.mktemp("compare")


@pytest.fixture(scope="module")
def reference(write_run, base):
    return _run(write_run, base, "ref")


def _header(result, fmt: str) -> list[str]:
    return format_comparison(result, fmt).split("\n\n", 1)[0].splitlines()


def test_the_same_settings_claim_no_difference_and_pair(write_run, reference, base):
    twin = _run(write_run, base, "twin")
    result = compare_runs(f"{reference}:workers=2", f"{twin}:workers=2", metrics=["wait_mean"])
    assert result.differences == [] and all(r.paired for r in result.rows)
    assert not any(line.startswith("settings differ") for line in _header(result, "table"))
    assert "test: paired t: same seed, specs and replications; first 20 items identical (all 2 pairs)" in _header(
        result, "table"
    )


def test_duration_against_items_is_named_and_still_paired(write_run, reference, base):
    items = _run(write_run, base, "items", items=250)
    result = compare_runs(str(reference), str(items), metrics=["wait_mean"])
    assert result.differences == ["items: A -, B 250", "duration: A 300, B -"]
    assert "settings differ: items: A -, B 250" in _header(result, "table")
    assert "- settings differ: duration: A 300, B -" in _header(result, "md")
    assert all(r.paired for r in result.rows)  # same seed and specs: the first items are the same draws


def test_different_seeds_are_named_and_never_paired(write_run, reference, base):
    other = _run(write_run, base, "seed2", seed=2)
    result = compare_runs(str(reference), str(other), metrics=["wait_mean", "throughput"])
    assert result.differences == ["seed: A 1, B 2"]
    assert not any(r.paired for r in result.rows)
    assert "test: Welch t: seeds differ (A 1, B 2) (all 5 pairs)" in _header(result, "table")
    assert {row.split(" | ")[-2] for row in format_comparison(result, "md").splitlines()[-10:]} == {"Welch t"}


def test_a_scaled_clock_is_named_and_never_paired(write_run, reference, base):
    scaled = _run(write_run, base, "scaled", clock="scaled:0.01")
    result = compare_runs(str(reference), str(scaled), metrics=["wait_mean"])
    assert "clock: A virtual, B scaled:0.01" in result.differences
    assert not any(r.paired for r in result.rows)  # same seed and the same items, but not reproducible
    assert set(result.tests.values()) == {"Welch t: B ran on a scaled:0.01 clock (real scheduling: not reproducible)"}


def test_engine_replications_and_max_backlog_are_named(write_run, reference, base):
    other = _run(write_run, base, "other", engine="recurrence", replications=4, max_backlog=5000)
    result = compare_runs(str(reference), str(other), metrics=["wait_mean"])
    assert result.differences == ["engine: A asyncio, B recurrence", "replications: A 3, B 4",
                                  "max_backlog: A 1000000, B 5000"]  # fmt: skip
    assert not any(r.paired for r in result.rows)  # replication ids differ (0..2 against 0..3)


def test_a_different_maxsize_is_not_paired(reference):
    result = compare_runs(f"{reference}:workers=2,maxsize=0", f"{reference}:workers=2,maxsize=5", metrics=["wait_mean"])
    assert len(result.pairs) == 1 and not result.rows[0].paired
    assert result.tests[result.pairs[0][2]] == "Welch t: maxsize differs (A 0, B 5), so do the random streams"


@pytest.mark.parametrize("column", ["t_put", "service"])
def test_first_items_that_differ_are_not_paired(reference, base, column):
    """Same seed and specs on paper, but one item's put or service time differs: no shared numbers."""
    changed = shutil.copytree(reference, base / f"changed-{column}")
    file = changed / "digests" / "cell-00001.parquet"  # every record level keeps the first items' times there
    stored = pq.read_table(file)
    rows = stored.to_pylist()
    name = "head_put" if column == "t_put" else "head_service"
    row = next(r for r in rows if r["replication"] == 1)
    row[name][5] += 0.25
    pq.write_table(pa.Table.from_pylist(rows, schema=stored.schema), file)
    result = compare_runs(f"{reference}:workers=2,maxsize=0", f"{changed}:workers=2,maxsize=0", metrics=["wait_mean"])
    assert not result.rows[0].paired
    assert list(result.tests.values()) == ["Welch t: the first 20 items' put or service times differ"]


@pytest.mark.parametrize(("selector", "message"), [
    ("workers=7", r"workers=7 is not in the run \(workers has: 1, 2, 3, 4\)"),
    ("workers=two", r"workers=two is not in the run \(workers has: 1, 2, 3, 4\)"),
    ("arrival=exp:2", r"arrival=exp:2 is not in the run \(arrival has: exp:1\)"),
    ("workers=1,maxsize=5", r"no cell has workers=1 and maxsize=5"),
])  # fmt: skip
def test_a_selector_that_matches_no_cell_is_an_error(reference, selector, message):
    with pytest.raises(ResultsError, match=f"matches no cell: {message}") as err:
        compare_runs(f"{reference}:{selector}", str(reference))
    assert "\n" not in str(err.value)


def test_seeds_beyond_64_bits_select_exactly(write_run, base):
    big = 2**70 + 1
    run = write_run(base / "big", GRID[:1], duration=50.0, replications=2, seed=big)
    assert len(compare_runs(f"{run}:seed={big}", str(run)).pairs) == 1
    with pytest.raises(ResultsError, match="matches no cell"):
        compare_runs(f"{run}:seed={big + 1}", str(run))  # as floats the two seeds are equal


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (dict(metrics=["status"]), "unknown metric 'status'"),  # not a number
        (dict(metrics=["seed"]), "unknown metric 'seed'"),  # a parameter, not a statistic
        (dict(b_filter=":workers=1,workers=2"), "'workers' is given twice"),
        (dict(b_filter=":workers=٢"), "matches no cell"),  # digits of another script are not numbers
    ],
)
def test_metrics_and_selectors_that_cannot_be_compared_are_errors(reference, args, message):
    with pytest.raises(ResultsError, match=message):
        compare_runs(str(reference), f"{reference}{args.get('b_filter', '')}", metrics=args.get("metrics"))
