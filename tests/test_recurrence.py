"""The recurrence engine against the asyncio engine: same streams, same records, item by item."""

from __future__ import annotations

import functools

import numpy as np
import pytest

from analysis.load import open_run, read_depth, read_items
from bench.distributions import parse
from bench.grid import Cell, streams
from bench.recurrence import run_recurrence
from bench.replication_stats import ReplicationStats
from bench.runner import _Tee
from bench.scenario import Scenario


def _asyncio(collect, run_asyncio, scenario, cell, seed):
    keep, summary = collect(), ReplicationStats(scenario.items)
    recorder, t_end = run_asyncio(scenario, cell, seed, _Tee(keep, summary), batch=997)
    stats = {
        "n_put": recorder.n_put,
        "n_got": recorder.n_got,
        "n_done": recorder.n_done,
        "t_end": t_end,
        "t_last_put": recorder.t_last_put,
        "busy": recorder.busy,
        "capped": recorder.capped,
        **summary.finish(t_end),
    }
    return keep, stats


def _recurrence(collect, scenario, cell, seed, replication=0, batch=1009):
    keep, summary = collect(), ReplicationStats(scenario.items)
    arrivals, services = streams(seed, cell, replication)
    r = run_recurrence(scenario, arrivals, services, _Tee(keep, summary), batch=batch)
    stats = {
        "n_put": r.n_put,
        "n_got": r.n_got,
        "n_done": r.n_done,
        "t_end": r.t_end,
        "t_last_put": r.t_last_put,
        "busy": r.busy,
        "capped": r.capped,
        **summary.finish(r.t_end),
    }
    return keep, stats


def _step(depth):
    """The depth step function at distinct times: the size after the last event of each instant."""
    t, d = depth["t"], depth["depth"]
    if t.size == 0:
        return t, d
    last = np.r_[t[1:] != t[:-1], True]
    return t[last], d[last]


def _compare(collect, run_asyncio, workers, arrival, service, maxsize=0, items=None, duration=None, seed=0, batch=1009,
             max_backlog=None, backlog0=0):  # fmt: skip
    cell = Cell(0, workers, parse(arrival), parse(service), maxsize)
    scenario = Scenario(workers, cell.arrival, cell.service, maxsize, items, duration, max_backlog, backlog0=backlog0)
    a, a_stats = _asyncio(collect, run_asyncio, scenario, cell, seed)
    r, r_stats = _recurrence(collect, scenario, cell, seed, batch=batch)
    ai, ri = a.table("items"), r.table("items")
    assert ai["item"].size == ri["item"].size, (a_stats, r_stats)
    np.testing.assert_array_equal(ai["item"], ri["item"])
    for name in ("t_arrive", "t_put", "t_get", "t_done", "wait", "service", "sojourn"):
        np.testing.assert_allclose(ri[name], ai[name], rtol=1e-12, atol=1e-9, equal_nan=True, err_msg=name)
    np.testing.assert_array_equal(ri["worker"] < 0, ai["worker"] < 0)
    # depth_at_put is well defined where no other item's get happens at the instant of the put.
    ad, rd = a.table("depth"), r.table("depth")
    gets = np.sort(ai["t_get"][np.isfinite(ai["t_get"])])
    own = ai["t_get"] == ai["t_put"]
    lo = np.searchsorted(gets, ai["t_put"], "left")
    hi = np.searchsorted(gets, ai["t_put"], "right")
    clear = (hi - lo) == own.astype(int)
    if maxsize:
        clear &= ai["t_put"] == ai["t_arrive"]  # a blocked put follows a get at the same instant
    np.testing.assert_array_equal(ri["depth_at_put"][clear], ai["depth_at_put"][clear])
    assert ad["t"].size == rd["t"].size
    np.testing.assert_array_equal(np.sort(rd["t"]), np.sort(ad["t"]))
    for got, want in zip(_step(rd), _step(ad)):
        np.testing.assert_array_equal(got, want)
    if np.unique(ad["t"]).size == ad["t"].size:  # no ties: the same event order exactly
        np.testing.assert_array_equal(rd["depth"], ad["depth"])
        np.testing.assert_array_equal(rd["event"], ad["event"])
    capped = a_stats.pop("capped")
    assert r_stats.pop("capped") == capped
    for key, want in a_stats.items():
        assert r_stats[key] == pytest.approx(want, rel=1e-9, abs=1e-9, nan_ok=True), key
    return ai["item"].size, capped


@pytest.fixture(scope="module")
def compare(collect, run_asyncio):
    """``compare(workers, arrival, service, maxsize=0, items=None, duration=None, seed=0, batch=1009,
    max_backlog=None, backlog0=0)`` runs one cell on both engines, checks that they agree item by item and
    returns (items put, capped)."""
    return functools.partial(_compare, collect, run_asyncio)


DISTS = ["exp:1", "uniform:0:2", "const:1", "const:0.5", "erlang:3:1", "lognormal:1:1.5", "hyperexp:1:2", "gamma:1:0.5"]


def _configs(n=60, seed=12345):
    rng = np.random.default_rng(seed)
    out = []
    for k in range(n):
        workers = int(rng.integers(1, 6))
        arrival = DISTS[rng.integers(len(DISTS))]
        service = DISTS[rng.integers(len(DISTS))]
        # scale service so that rho spans light to overloaded
        rho = float(rng.choice([0.5, 0.9, 1.0, 1.3]))
        mean = rho * workers
        family, _, rest = service.partition(":")
        service = {
            "exp": f"exp:{mean:g}",
            "uniform": f"uniform:0:{2 * mean:g}",
            "const": f"const:{mean:g}",
            "erlang": f"erlang:3:{mean:g}",
            "lognormal": f"lognormal:{mean:g}:1.5",
            "hyperexp": f"hyperexp:{mean:g}:2",
            "gamma": f"gamma:{mean:g}:0.5",
        }[family]
        maxsize = int(rng.choice([0, 0, 1, 2, 5]))
        if k % 2:
            length = {"items": int(rng.integers(1, 1500))}
        else:
            length = {"duration": float(rng.choice([7.0, 50.5, 400.0, 1000.0]))}
        if k % 5 == 4:  # a backlog cap that overloaded cells reach
            length["max_backlog"] = int(rng.choice([3, 10, 40]))
        out.append(dict(workers=workers, arrival=arrival, service=service, maxsize=maxsize, seed=k, **length))
    return out


@pytest.mark.parametrize("config", _configs(), ids=lambda c: ",".join(f"{k}={v}" for k, v in c.items()))
def test_engines_agree_item_by_item(config, compare):
    compare(**config)


def test_seed_scenario_agrees_with_ties_and_small_batches(compare):
    compare(2, "const:1", "uniform:0:5", items=3000, seed=1, batch=64)
    compare(2, "const:1", "const:2", duration=100, seed=1, batch=7)
    compare(3, "const:1", "const:3", maxsize=2, items=500, seed=1, batch=7)
    compare(1, "const:0.1", "const:0.1", duration=10, seed=1)


@pytest.mark.parametrize(
    "config",
    [
        (1, "exp:1", "exp:2", None, 1000, None, 20),
        (2, "const:1", "const:3", None, None, 500.0, 10),  # ties at the capping instant
        (3, "exp:1", "uniform:0:8", None, 5000, None, 50),
        (2, "exp:1", "exp:3", None, None, 2000.0, 7),
    ],
)
def test_backlog_cap_stops_both_engines_at_the_same_put(config, compare):
    workers, arrival, service, _, items, duration, cap = config
    _, capped = compare(workers, arrival, service, items=items, duration=duration, max_backlog=cap, batch=16)
    assert capped is not None and capped[1] == cap  # the cap fired, at max_backlog items


def test_duration_boundary_events_at_exactly_T_are_excluded(compare):
    # arrivals at 0, 1, ..., 9, 10: the one at T = 10 does not count, as on the asyncio engine
    n, _ = compare(1, "const:1", "const:0.5", duration=10.0)
    assert n == 10


def test_cli_engine_recurrence_writes_the_same_files_as_asyncio(tmp_path):
    import json

    import pandas as pd

    from bench.cli import main

    args = [
        "--workers",
        "1,3",
        "--arrival",
        "exp:1",
        "--service",
        "exp:2",
        "--maxsize",
        "0,3",
        "--items",
        "2000",
        "--no-progress",
        "--no-summary",
        "--jobs",
        "1",
    ]
    assert main(["run", "--out", str(tmp_path / "a"), *args]) == 0
    assert main(["run", "--out", str(tmp_path / "r"), *args, "--engine", "recurrence"]) == 0
    assert json.loads((tmp_path / "r" / "manifest.json").read_text())["engine"] == "recurrence"
    a, r = (pd.read_parquet(tmp_path / k / "cells.parquet") for k in ("a", "r"))
    assert set(r.engine) == {"recurrence"} and set(a.engine) == {"asyncio"}
    for col in ("n_done", "wait_mean", "sojourn_p99", "depth_mean", "utilisation", "backlog_slope"):
        np.testing.assert_allclose(r[col], a[col], rtol=1e-9)
    ia, ir = (read_items(open_run(tmp_path / k), join=False) for k in ("a", "r"))
    assert list(ia.columns) == list(ir.columns) and (ia.dtypes == ir.dtypes).all()
    np.testing.assert_allclose(ir.sojourn, ia.sojourn, rtol=1e-12)
    da, dr = (read_depth(open_run(tmp_path / k)) for k in ("a", "r"))
    assert list(da.columns) == list(dr.columns) and len(da) == len(dr)


@pytest.mark.parametrize(
    "workers, maxsize, length",
    [(2, 0, {"items": 5000}), (3, 0, {"items": 5000}), (7, 0, {"duration": 3000.0}),
     (1, 3, {"items": 5000}), (2, 1, {"duration": 3000.0}), (3, 4, {"items": 5000}), (5, 2, {"duration": 800.5})],
)  # fmt: skip
def test_the_c_server_loops_and_the_python_ones_give_the_same_items(workers, maxsize, length, monkeypatch, collect):
    from bench import recurrence

    if not recurrence.ACCELERATED:
        pytest.skip("bench._recurrence is not built")
    # const arrivals and a service of mean ~workers: ties at every arrival, blocked puts when bounded
    cell = Cell(0, workers, parse("const:1"), parse(f"uniform:0:{2 * workers + 0.2}"), maxsize)
    scenario = Scenario(workers, cell.arrival, cell.service, maxsize, length.get("items"), length.get("duration"))
    c, c_stats = _recurrence(collect, scenario, cell, 4, batch=333)
    monkeypatch.setattr(recurrence, "ACCELERATED", False)  # the engine's Python loops
    py, py_stats = _recurrence(collect, scenario, cell, 4, batch=333)
    assert c.table("items")["item"].size > 500
    for kind in ("items", "depth"):
        for name, column in c.table(kind).items():
            np.testing.assert_array_equal(py.table(kind)[name], column, err_msg=f"{kind}.{name}")
    assert py_stats == c_stats


@pytest.mark.parametrize(
    ("workers", "arrival", "service", "maxsize", "items", "duration", "max_backlog"),
    [
        (1, "exp:1", "exp:4e6", 0, None, 4e9, 5000),  # a chunk's services sum past the int64 range of ns
        (3, "exp:1", "exp:4e6", 0, None, 4e9, 5000),
        (2, "exp:1", "exp:4e6", 5, None, 4e9, None),
        (1, "exp:100", "exp:90", 0, None, 2e7, None),  # model times beyond 2**53 ns (about 104 days)
        (2, "exp:50", "uniform:0:190", 4, None, 2e7, None),
        # a draw past the clock's range, beyond what the run uses: neither engine may fail on it
        (2, "exp:2e6", "pareto:3e6:1.02", 0, None, 4.5e9, None),
        (1, "const:4.6e9", "const:4.6e9", 0, 1, None, None),  # one service as long as a run may span
        (1, "const:2.3e9", "const:2.3e9", 0, 2, None, None),
    ],
)
def test_engines_agree_to_the_bit_near_the_ends_of_the_clock(
    workers, arrival, service, maxsize, items, duration, max_backlog, compare, collect, run_asyncio
):
    """Huge services in a duration run used to wrap the recurrence engine's int64 sums (silently wrong
    times, status ok); beyond 2**53 ns its float seconds were a last bit off the virtual loop's; and
    it failed on draws past the range that the run never reaches."""
    compare(workers, arrival, service, maxsize, items=items, duration=duration, seed=3, max_backlog=max_backlog)
    cell = Cell(0, workers, parse(arrival), parse(service), maxsize)
    scenario = Scenario(workers, cell.arrival, cell.service, maxsize, items, duration, max_backlog)
    a, _ = _asyncio(collect, run_asyncio, scenario, cell, 3)
    r, _ = _recurrence(collect, scenario, cell, 3)
    ai, ri = a.table("items"), r.table("items")
    for name in ("t_arrive", "t_put", "t_get", "t_done"):
        np.testing.assert_array_equal(ri[name], ai[name], err_msg=name)


# -- arrival processes and a backlog at t = 0: they change only the arrival times ----------------------------


@pytest.mark.parametrize(
    ("workers", "arrival", "service", "maxsize", "length", "backlog0"),
    [
        (2, "schedule:1@0,3@100,0.5@200:300", "exp:1", 0, {"items": 3000}, 0),
        (3, "schedule:0.5@0,4@50,0@80", "exp:1", 0, {"duration": 400.0}, 0),  # ends at 80 s: the run goes on
        (3, "schedule:0.5@0,4@50,0@80", "exp:1", 0, {"items": 3000}, 0),  # ends before its items
        (1, "sine:1:0.9:500", "exp:0.8", 0, {"duration": 3000.0}, 25),
        (4, "sine:2:1:200:50", "uniform:0:3", 3, {"items": 4000}, 2),
        (2, "bursts:4:0.2:20:60", "exp:1.2", 0, {"items": 3000}, 40),
        (2, "bursts:4:0:20:60", "const:0.7", 2, {"duration": 2000.0}, 0),
        (2, "exp:1", "exp:1.5", 0, {"items": 2000}, 300),  # a backlog longer than a batch
        (3, "const:1", "const:2.5", 0, {"duration": 500.0}, 7),  # ties at every instant
    ],
)
def test_engines_agree_item_by_item_on_arrival_processes_and_a_backlog(workers, arrival, service, maxsize, length,
                                                                       backlog0, compare):  # fmt: skip
    n, _ = compare(workers, arrival, service, maxsize, seed=5, batch=257, backlog0=backlog0, **length)
    assert n > backlog0


def test_a_trace_that_ends_ends_both_engines_cleanly_and_they_say_when(tmp_path, compare, collect, run_asyncio):
    trace = tmp_path / "t.csv"
    trace.write_text("ts\n" + "\n".join(f"{0.37 * k:.2f}" for k in range(1, 501)))
    for length in ({"items": 2000}, {"duration": 1000.0}):
        n, _ = compare(2, f"trace:{trace}", "exp:0.6", seed=1, batch=64, **length)
        assert n == 500
    cell = Cell(0, 2, parse(f"trace:{trace}"), parse("exp:0.6"), 0)
    scenario = Scenario(2, cell.arrival, cell.service, 0, 2000, None, None)
    done, _ = run_asyncio(scenario, cell, 1, collect())
    arrivals, services = streams(1, cell, 0)
    again = run_recurrence(scenario, arrivals, services, collect())
    assert done.arrivals_end == again.arrivals_end == pytest.approx(0.37 * 500)
