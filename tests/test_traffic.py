"""Traffic over time and elastic workers: each arrival process against its law, trace replay to the
nanosecond, a backlog's drain and a daily cycle's backlog against the fluid model, an elastic pool
against a fixed one of its mean size, the report's figures over time and qbench plan's costs."""

from __future__ import annotations

import json
import math
import tomllib
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from analysis.cell_stats import summarize
from analysis.load import open_run, read_events, read_items
from analysis.plots import backlog_band
from analysis.quantiles import sectioning
from analysis.report import write_report
from analysis.summary_table import summary_table
from analysis.windows import cell_windows, piece_theory, window_width
from bench import make_grid, run_grid
from bench.cli import main
from bench.distributions import Stream, parse
from bench.grid import Cell, streams
from bench.recurrence import run_recurrence
from bench.scenario import Scenario

ROOT = Path(__file__).resolve().parents[1]


def _times(spec: str, n: int, seed: int = 1) -> np.ndarray:
    """The first ``n`` arrival times of a process (its lead, then the sums of its gaps)."""
    stream = Stream(parse(spec), np.random.default_rng(seed))
    gaps = stream.take(n - 1)
    return stream.lead + np.concatenate(([0.0], np.cumsum(gaps)))


def _largest_z(observed: np.ndarray, expected: np.ndarray) -> float:
    """The largest |z| of Poisson counts against their expectations."""
    return float(np.max(np.abs(observed - expected) / np.sqrt(expected)))


# -- the arrival processes against their laws -----------------------------------------------------------------


def test_a_sine_cycle_puts_the_integrated_rate_in_every_phase():
    """Thinning is exact: over 300 periods, the arrivals in each of 24 phase bins are Poisson with mean
    the rate's integral over the bin (max |z| below 4.5 of 24 bins: a false alarm about 1 in 6,000)."""
    rate, amplitude, period, bins = 2.0, 0.8, 100.0, 24
    times = _times(f"sine:{rate}:{amplitude}:{period}", 60_000)
    cycles = int(times[-1] // period)
    inside = times[times < cycles * period]
    observed = np.bincount(((inside % period) / period * bins).astype(int), minlength=bins)
    edges = np.linspace(0, period, bins + 1)
    # integral of rate * (1 + a cos(2 pi (t - P/2) / P)) over each bin
    phase = lambda t: np.sin(2 * math.pi * (t - period / 2) / period) * period / (2 * math.pi)  # noqa: E731
    expected = cycles * rate * (np.diff(edges) + amplitude * np.diff(phase(edges)))
    assert _largest_z(observed, expected) < 4.5
    assert observed.argmax() in (bins // 2 - 1, bins // 2)  # the peak at PERIOD / 2


def test_a_periodic_schedule_has_each_pieces_rate_in_every_cycle():
    times = _times("schedule:1@0,3@100,0.5@200:300", 50_000)
    cycles = int(times[-1] // 300)
    phase = times[times < cycles * 300] % 300
    observed = np.histogram(phase, bins=[0, 100, 200, 300])[0]
    assert _largest_z(observed, cycles * np.array([100.0, 300.0, 50.0])) < 4.5


def test_a_schedule_ending_at_rate_0_runs_out_and_one_ending_above_0_goes_on_at_that_rate():
    stream = Stream(parse("schedule:2@0,0@500"), np.random.default_rng(3))
    times = stream.lead + np.concatenate(([0.0], np.cumsum(stream.take(10_000))))
    assert stream.exhausted and times[-1] < 500 and _largest_z(np.array([len(times)]), np.array([1000.0])) < 4.5
    later = _times("schedule:2@0,0.5@500", 20_000)
    after = later[later >= 500]
    span = after[-1] - 500
    assert len(after) / span == pytest.approx(0.5, rel=5 / math.sqrt(len(after)))


def test_bursts_keep_their_mean_rate_and_spend_their_share_of_time_on():
    spec = "bursts:5:0.5:10:30"
    dist = parse(spec)
    stream = Stream(dist, np.random.default_rng(4))
    times = stream.lead + np.concatenate(([0.0], np.cumsum(stream.take(200_000))))
    t, rate = stream.rates(times[-1])
    on = np.sum(np.diff(np.append(t, times[-1]))[rate == 5.0]) / times[-1]
    phases = len(t)  # about 2 phases per 40 s: the share on and the rate have errors of order 1/sqrt(phases)
    assert on == pytest.approx(10 / 40, abs=4 * 0.25 * math.sqrt(2 / phases) + 0.01)
    assert len(times) / times[-1] == pytest.approx(1 / dist.mean, rel=4 * math.sqrt(2 / phases) + 0.01)
    assert dist.stationary and dist.cv is None  # stationary, not a renewal process


@pytest.mark.parametrize("spec", ["schedule:1@0,3@100,0.5@200:300", "sine:2:0.8:100", "bursts:5:0.5:10:30"])
def test_a_process_stream_reads_the_same_one_by_one_and_in_blocks(spec):
    one, block = (Stream(parse(spec), np.random.default_rng(9)) for _ in range(2))
    by_one = np.array([one.next() for _ in range(10_000)])
    mixed = np.concatenate((block.take(3), [block.next() for _ in range(4_997)], block.take(5_000)))
    np.testing.assert_array_equal(mixed, by_one)
    assert one.lead == block.lead > 0


def test_a_single_rate_schedule_and_a_flat_cycle_are_stationary_poisson_processes():
    for spec in ("schedule:2@0", "sine:2:0:100"):
        dist = parse(spec)
        assert dist.stationary and dist.cv == 1.0 and dist.mean == 0.5
    assert not parse("sine:2:0.5:100").stationary and not parse("schedule:1@0,2@5").stationary


# -- trace replay ------------------------------------------------------------------------------------------


def _trace(tmp_path: Path, n: int = 1000) -> tuple[Path, np.ndarray]:
    rng = np.random.default_rng(11)
    stamps = np.round(np.sort(rng.uniform(0, 500, n)), 6)
    stamps[5] = stamps[4]  # a tie: two arrivals at one instant
    stamps[0] = 0.25
    path = tmp_path / "arrivals.csv"
    path.write_text("ts\n" + "\n".join(f"{v:.6f}" for v in stamps))
    return path, stamps


@pytest.mark.parametrize("scale", [1, 2, 0.5])
def test_a_trace_of_n_timestamps_yields_exactly_those_put_times_on_both_engines(tmp_path, scale, collect,
                                                                                run_asyncio):  # fmt: skip
    path, stamps = _trace(tmp_path)
    spec = f"trace:{path}#ts" + (f":x{scale}" if scale != 1 else "")
    cell = Cell(0, 3, parse(spec), parse("exp:0.4"), 0)
    scenario = Scenario(3, cell.arrival, cell.service, 0, 5000, None, None)
    want = np.round(stamps * 1e9 / scale) / 1e9  # the clock counts whole nanoseconds
    if scale == 1:
        np.testing.assert_array_equal(want, stamps)  # 6 decimals: exactly the file's timestamps
    sink = collect()
    done, _ = run_asyncio(scenario, cell, 0, sink)
    np.testing.assert_array_equal(sink.table("items")["t_put"], want)
    other = collect()
    arrivals, services = streams(0, cell, 0)
    again = run_recurrence(scenario, arrivals, services, other)
    np.testing.assert_array_equal(other.table("items")["t_put"], want)
    assert done.n_put == again.n_put == len(stamps) and done.arrivals_end == again.arrivals_end == want[-1]


def test_a_trace_shorter_than_the_run_ends_the_arrivals_and_the_run_says_so(tmp_path, capsys):
    path, stamps = _trace(tmp_path, 300)
    out = tmp_path / "run"
    argv = ["run", "--out", str(out), "--workers", "2", "--arrival", f"trace:{path}", "--service", "exp:1",
            "--items", "5000", "--replications", "2", "--jobs", "1", "--no-progress"]  # fmt: skip
    assert main(argv) == 0
    said = capsys.readouterr().out
    assert (
        f"note: cell 0: its arrival process ran out before the run's end in 2 of 2 replication(s), at t={stamps[-1]:g} s"
        in said
    )
    cells = pd.read_parquet(out / "cells.parquet")
    assert (cells["arrivals_end"] == stamps[-1]).all() and (cells["n_put"] == 300).all()
    events = read_events(open_run(out), kinds=["arrivals_end"])
    assert list(events["value"]) == [300.0, 300.0] and (events["t"] == stamps[-1]).all()
    assert not parse(f"trace:{path}").stationary


# -- the general pool against the plain program --------------------------------------------------------------


@pytest.mark.parametrize(("arrival", "length", "backlog0"), [("schedule:1@0,3@100,0.5@200:300", {"items": 2000}, 0),
                                                             ("schedule:1@0,0@50", {"items": 2000}, 5),
                                                             ("sine:1:0.9:500", {"duration": 3000.0}, 20)])  # fmt: skip
def test_the_general_pool_records_what_the_plain_program_records_for_processes_and_a_backlog(
    plain_and_pool, arrival, length, backlog0
):
    cell = Cell(0, 2, parse(arrival), parse("exp:1.4"), 0)
    scenario = Scenario(2, cell.arrival, cell.service, 0, length.get("items"), length.get("duration"), 10**6,
                        backlog0=backlog0)  # fmt: skip
    a, b = plain_and_pool(scenario, cell)
    assert (a.t_end, a.n_put, a.n_done, a.arrivals_end) == (b.t_end, b.n_put, b.n_done, b.arrivals_end)


# -- elastic workers -----------------------------------------------------------------------------------------

STEP = "schedule:1@0,4@2000"  # 1 item/s, then 4 from t = 2000 s on; a service of 1 s: 1 Erlang, then 4
ELASTIC = "auto:min=2,max=10,up=wait>3,down=busy<0.35,start=20,every=5,step=2"
TARGET = 15.0  # wait_p99 of the items put once the step's workers can have started


@pytest.fixture(scope="module")
def step_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("step") / "run"
    grid = make_grid({"workers": [4, ELASTIC], "arrival": STEP, "service": "exp:1", "duration": 5000,
                      "replications": 10, "seed": 7})  # fmt: skip
    run_grid(out, grid, jobs=1, progress=False)
    return out


def _late_p99(out: Path, cell: int, after: float):
    items = read_items(open_run(out), cells=[cell], columns=["t_put", "wait"], join=False)
    late = items[items["t_put"] >= after]
    parts = [g["wait"].dropna().to_numpy() for _, g in late.groupby("replication")]
    pooled = np.concatenate(parts)
    point = float(np.quantile(pooled, 0.99, method="inverted_cdf"))
    return sectioning(point, np.array([np.quantile(p, 0.99, method="inverted_cdf") for p in parts]))


def test_an_elastic_pool_meets_its_target_after_a_step_where_a_fixed_pool_of_its_mean_size_fails(step_run):
    """Measured (seed 7, 10 replications): the elastic pool averages 4.25 workers (worker-seconds / run)
    and the p99 wait of the items put after the step's start-up delay is 10.7 s [9.1, 12.3]; 4 fixed
    workers (its mean size, rounded; the mean rate's 2.8 Erlangs rounded up, plus one) reach 58 s
    [41, 75]: at 4 Erlangs they have no headroom."""
    cells = pd.read_parquet(step_run / "cells.parquet")
    mean_size = float((cells.loc[cells["cell"] == 1, "worker_seconds"] / cells.loc[cells["cell"] == 1, "t_end"]).mean())
    assert round(mean_size) == 4
    after = 2000 + 20  # the step, plus the start-up delay of the workers it calls for
    elastic, fixed = _late_p99(step_run, 1, after), _late_p99(step_run, 0, after)
    assert elastic.high <= TARGET < fixed.low, (elastic, fixed)


def test_elastic_workers_stay_within_bounds_record_every_change_and_cost_what_they_provision(step_run):
    run = open_run(step_run)
    events = read_events(run, cells=[1])
    cells = run.cells[run.cells["cell"] == 1].set_index("replication")
    for rep, mine in events.groupby("replication"):
        workers = mine[mine["kind"] == "workers"]
        provisioned = mine[mine["kind"] == "provisioned"]
        assert workers["value"].between(2, 10).all() and provisioned["value"].between(2, 10).all()
        assert (provisioned["value"].to_numpy() >= workers["value"].to_numpy()).all()
        assert workers["value"].nunique() > 3  # it scaled up after the step and back down
        t, count = provisioned["t"].to_numpy(), provisioned["value"].to_numpy()
        end = float(cells.loc[rep, "t_end"])
        assert float(np.sum(np.diff(np.append(t, end)) * count)) == pytest.approx(cells.loc[rep, "worker_seconds"])
        assert cells.loc[rep, "workers_peak"] == count.max()
    # utilisation is busy time over the worker-seconds provisioned
    assert (run.cells.loc[run.cells["cell"] == 1, "utilisation"] < 1).all()


def test_an_elastic_items_run_serves_every_item_and_retires_no_worker_holding_one(tmp_path):
    grid = make_grid({"workers": ["auto:min=1,max=6,up=depth>2,down=idle>5|busy<0.5,start=3,every=1"],
                      "arrival": "schedule:0.5@0,3@200,0.2@500", "service": "exp:1", "items": 3000,
                      "replications": 2, "seed": 2})  # fmt: skip
    run_grid(tmp_path / "run", grid, jobs=1, progress=False)
    cells = pd.read_parquet(tmp_path / "run" / "cells.parquet")
    assert (cells["n_done"] == 3000).all() and (cells["n_put"] == 3000).all()
    items = read_items(open_run(tmp_path / "run"), join=False)
    # a retired worker never takes an item again: each worker's items are served back to back
    for _, mine in items.groupby(["replication", "worker"]):
        mine = mine.sort_values("t_get")
        assert (mine["t_get"].to_numpy()[1:] >= mine["t_done"].to_numpy()[:-1]).all()


# -- a backlog at t = 0 -------------------------------------------------------------------------------------


def test_a_backlog_drains_in_about_the_fluid_time(tmp_path):
    """M/M/2 at rho = 0.75 with 300 items queued at 0: the fluid drains them in 300 / (2/1.5 - 1) = 900 s;
    measured (seed 3, 10 replications) 931 s [810, 1052] to reach the steady mean depth (2)."""
    grid = make_grid({"workers": [2], "arrival": "exp:1", "service": "exp:1.5", "backlog0": [300], "duration": 6000,
                      "replications": 10, "seed": 3, "engine": "recurrence"})  # fmt: skip
    run_grid(tmp_path / "run", grid, jobs=1, progress=False)
    run = open_run(tmp_path / "run")
    stats = summarize(run)[0]
    found = cell_windows(run, stats)
    assert found.drain_target == 2 and found.drain.contains(900.0)
    assert found.drain.mean == pytest.approx(900, rel=0.1)
    row = next(r for r in piece_theory(run, stats, found) if r.quantity == "time to drain")
    assert row.theory == pytest.approx(900.0) and row.inside_ci
    assert stats.stationary and stats.settled  # MSER cuts the drain: the rest is the steady state


# -- the daily cycle: the example grid, its fluid curve, its report -----------------------------------------------


@pytest.fixture(scope="module")
def daily(tmp_path_factory):
    """The example grid's fixed pools of 6 and 7 workers, on the recurrence engine (the same model the
    asyncio engine runs, item by item)."""
    raw = tomllib.loads((ROOT / "bench" / "grids" / "daily.toml").read_text())
    out = tmp_path_factory.mktemp("daily") / "run"
    run_grid(out, make_grid({**raw, "workers": [6, 7], "engine": "recurrence"}), jobs=1, progress=False)
    return out


def test_the_daily_cycles_peak_backlog_matches_the_fluid_curve_within_the_replication_interval(daily):
    """Measured (seed 1, 20 replications): 6 workers peak at 4,377 items [4,290, 4,464] where the
    fluid curve peaks at 4,393 (t = 60,134 s); 7 workers at 1,567 [1,495, 1,639] against 1,523 (54,778 s)."""
    run = open_run(daily)
    for stats in summarize(run):
        found = cell_windows(run, stats)
        t, q = found.fluid
        peak = int(np.argmax(q))
        mean, low, high = backlog_band(run, stats.cell, np.array([t[peak]]))
        assert q[peak] > 1000 and low[0] <= q[peak] <= high[0], (stats.cell, q[peak], low[0], high[0])
        assert 43_200 < t[peak] < 64_800  # after the midday peak of the rate: the queue builds, then drains
        assert q[-1] == 0 and mean[0] > 20 * backlog_band(run, stats.cell, np.array([86_000.0]))[0][0]


def test_figures_over_time_have_their_windows_intervals_and_rates(daily):
    run = open_run(daily)
    stats = summarize(run)[0]
    found = cell_windows(run, stats)
    assert found.width == window_width(86_400) == 3600 and len(found.windows) == 24
    assert sum(w.items for w in found.windows) == int(run.cells.loc[run.cells["cell"] == stats.cell, "n_put"].sum())
    noon = found.windows[12]  # [43200, 46800): the rate's mean over it is 0.5 (1 + 0.6 sin(x) / x), x = 2 pi / 24
    x = 2 * np.pi / 24
    assert noon.rate.mean == pytest.approx(0.5 * (1 + 0.6 * np.sin(x) / x), rel=1e-4)  # averaged over the window
    assert noon.arrivals.contains(noon.rate.mean)  # and the measured one around it
    assert all(w.latency["wait_p99"].low <= w.latency["wait_p99"].mean <= w.latency["wait_p99"].high
               for w in found.windows if w.items)  # fmt: skip
    assert stats.growth.verdict == "non-stationary" and not stats.stationary and stats.settled
    assert not piece_theory(run, stats, found)  # a cycle has no long pieces of constant rate


def test_the_report_of_a_daily_cycle_draws_the_backlog_with_the_rate_and_says_which_cells_are_steady(daily):
    index = write_report(daily, progress=False)
    page = index.read_text()
    for chart in ("over_time", "window_p99"):
        assert (daily / "report" / f"{chart}.png").exists() and f"{chart}.png" in page
    assert not (daily / "report" / "workers.png").exists()  # no elastic cell here
    markdown = (daily / "report" / "report.md").read_text()
    assert "## Over time" in markdown and "## Cell 0 over time" in markdown
    summary = summary_table(daily)
    assert "whole run (non-stationary arrivals" in summary and "(whole run)" in summary
    assert "backlog peaks at" in summary and "non-stationary" in summary


def test_a_schedules_long_pieces_get_their_mm_c_and_fluid_rows(tmp_path):
    """Pieces of 4,000 s at 1 and 2.4 items/s on 2 workers of exp:1: M/M/2 Wq = 1/3 s in the first
    (relaxation ~12 s); the second is overloaded, 0.4 items/s by the fluid limit."""
    grid = make_grid({"workers": [2], "arrival": "schedule:1@0,2.4@4000", "service": "exp:1", "duration": 8000,
                      "replications": 8, "seed": 5, "engine": "recurrence"})  # fmt: skip
    run_grid(tmp_path / "run", grid, jobs=1, progress=False)
    run = open_run(tmp_path / "run")
    stats = summarize(run)[0]
    rows = {r.quantity: r for r in piece_theory(run, stats, cell_windows(run, stats))}
    wq, slope = rows["Wq, piece lam=1/s"], rows["backlog slope, piece lam=2.4/s"]
    assert wq.exact and wq.theory == pytest.approx(1 / 3) and wq.agrees
    assert slope.theory == pytest.approx(0.4) and slope.measured.contains(0.4)


# -- qbench plan: sized for the day, elastic candidates with their cost ---------------------------------------


def test_plan_sizes_for_the_whole_cycle_and_reports_the_cost_of_elastic_candidates(capsys):
    argv = ["plan", "--arrival", "sine:1:0.8:3600", "--service", "exp:2.5", "--slo", "wait_p99<=30", "--workers",
            "auto:min=1,max=8,up=depth>5,down=busy<0.4,start=10", "--format", "json", "--no-progress"]  # fmt: skip
    assert main(argv) == 0
    plan = json.loads(capsys.readouterr().out)
    assert plan["stationary"] is False and plan["workers"] is not None and plan["decided"]
    # the mean load (2.5 Erlangs) would say 3; the peak (4.5 Erlangs) needs more
    assert plan["workers"] >= 5
    fixed = next(c for c in plan["candidates"] if c["workers"] == plan["workers"])
    (elastic,) = plan["elastic"]
    assert elastic["spec"].startswith("auto:min=1,max=8") and elastic["verdict"] in ("meets", "fails", "undecided")
    for entry in (fixed, elastic):
        cost = entry["worker_seconds"]
        assert cost["low"] <= cost["estimate"] <= cost["high"] and cost["estimate"] > 3600
    assert plan["elastic_lines"][0].startswith("elastic auto:min=1,max=8") and "worker-s" in plan["elastic_lines"][0]
