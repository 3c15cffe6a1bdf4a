"""The pusher/puller scenario against queueing theory, the seed story and the output contract."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from analysis.load import open_run, read_depth, read_items
from bench.grid import make_grid
from bench.runner import run_grid


def _run(tmp_path, name="run", **raw):
    grid = make_grid(raw)
    run = tmp_path / name
    result = run_grid(run, grid, jobs=1, progress=False)
    assert not result.failed and not result.interrupted
    return run


def _items(run):
    return read_items(open_run(run), join=False).sort_values(["cell", "replication", "item"], kind="stable")


def test_seed_scenario_backlog_grows_at_the_fluid_rate_with_two_workers(tmp_path):
    run = _run(
        tmp_path, workers=[2, 3], arrival="const:1", service="uniform:0:5", duration=3000, replications=5, seed=1
    )
    cells = pd.read_parquet(run / "cells.parquet")
    two = cells[cells.workers == 2]
    three = cells[cells.workers == 3]
    # Fluid theory: lambda - c / E[S] = 1 - 2 / 2.5 = 0.2 items/s.
    assert abs(two.backlog_slope.mean() - 0.2) <= 0.03
    # rho = 0.833 < 1: no trend, and a queue that stays small.
    assert abs(three.backlog_slope.mean()) <= 0.005
    assert three.depth_max.max() < 40


def test_seed_scenario_queue_holds_15_to_25_items_around_item_100(tmp_path):
    run = _run(tmp_path, workers=[2], arrival="const:1", service="uniform:0:5", items=200, replications=20, seed=3)
    items = _items(run)
    around = items[items.item.between(90, 110)].groupby("replication").depth_at_put.mean()
    assert 15 <= around.mean() <= 25


def test_mm1_mean_wait_matches_theory_over_a_million_items(tmp_path):
    # M/M/1, lambda = 0.8, mu = 1: Wq = rho / (mu - lambda) = 4.0.
    run = _run(tmp_path, workers=[1], arrival="exp:1.25", service="exp:1", items=1_000_000, replications=1, seed=11)
    cells = pd.read_parquet(run / "cells.parquet")
    wait = read_items(open_run(run), columns=["wait"], join=False)["wait"].to_numpy()
    assert wait.size == 1_000_000
    # Batch means give the estimate's own standard error; 4% must be several of them.
    batches = wait.reshape(100, -1).mean(axis=1)
    se = batches.std(ddof=1) / math.sqrt(batches.size)
    assert se < 0.04 * 4.0 / 2.5
    assert abs(wait.mean() - 4.0) <= 0.04 * 4.0
    assert cells.wait_mean.iloc[0] == pytest.approx(wait.mean(), rel=1e-9)
    assert cells.utilisation.iloc[0] == pytest.approx(0.8, abs=0.01)


def test_mm2_probability_of_waiting_matches_erlang_c(tmp_path):
    # M/M/2 with lambda = 1.5, mu = 1: a = 1.5, rho = 0.75, Erlang C P(wait) = 0.642857.
    run = _run(tmp_path, workers=[2], arrival="exp:0.6666666666666666", service="exp:1", items=200_000, seed=5)
    wait = read_items(open_run(run), columns=["wait"], join=False)["wait"].to_numpy()
    p_wait = np.mean(wait > 0)
    batches = (wait > 0).reshape(50, -1).mean(axis=1)
    se = batches.std(ddof=1) / math.sqrt(batches.size)
    assert abs(p_wait - 0.642857) <= 5 * se


def test_every_item_put_has_exactly_one_row(tmp_path):
    run = _run(tmp_path, workers=[1, 3], arrival="exp:1", service="exp:2", duration=500, replications=3, seed=2)
    items = _items(run)
    cells = pd.read_parquet(run / "cells.parquet")
    for (cell, rep), group in items.groupby(["cell", "replication"]):
        row = cells[(cells.cell == cell) & (cells.replication == rep)].iloc[0]
        assert list(group.item) == list(range(row.n_put))
        assert group.t_get.notna().sum() == row.n_got
        assert group.t_done.notna().sum() == row.n_done


def test_depth_series_equals_puts_minus_gets_at_every_event(tmp_path):
    run = _run(tmp_path, workers=[1, 2], arrival="exp:1", service="uniform:0:4", maxsize=[0, 3], duration=400, seed=4)
    depth = read_depth(open_run(run))
    for _, group in depth.groupby(["cell", "replication"], sort=False):
        assert np.array_equal(group.depth.to_numpy(), np.cumsum(group.event.to_numpy(dtype=np.int64)))
        assert np.all(np.diff(group.t.to_numpy()) >= 0)


def test_censored_items_are_the_backlog_at_the_end(tmp_path):
    run = _run(tmp_path, workers=[1], arrival="const:1", service="const:3", duration=100, seed=1)
    items = _items(run)
    cells = pd.read_parquet(run / "cells.parquet").iloc[0]
    queued = items.t_get.isna().sum()
    in_service = (items.t_get.notna() & items.t_done.isna()).sum()
    assert queued == cells.depth_final
    assert in_service == 1
    assert items.wait.isna().sum() == queued
    # Puts at 0, 1, ..., 99 (t = 100 is the end); services end at 3, 6, ..., 99.
    assert cells.n_put == 100 and cells.n_done == 33
    assert cells.utilisation == pytest.approx(1.0)


def test_items_run_finishes_every_item(tmp_path):
    run = _run(tmp_path, workers=[2], arrival="exp:1", service="exp:1.5", items=500, replications=2, seed=9)
    items = _items(run)
    assert items.t_done.notna().all()
    assert np.allclose(items.sojourn, items.wait + items.service)
    assert (items.wait >= 0).all() and (items.service >= 0).all()


def test_bounded_queue_blocks_the_pusher(tmp_path):
    run = _run(tmp_path, workers=[1], arrival="const:1", service="const:2", maxsize=[3], items=50, seed=1)
    items = _items(run)
    depth = read_depth(open_run(run))
    assert depth.depth.max() <= 3
    assert (items.t_put >= items.t_arrive).all()
    assert (items.t_put > items.t_arrive).any()  # backpressure happened
    assert items.t_put.iloc[-1] > 49  # arrivals were delayed


def test_cells_differing_only_in_workers_see_the_same_work(tmp_path):
    run = _run(
        tmp_path, workers=[1, 2, 4], arrival="exp:1", service="lognormal:2.5:1.5", items=2000, replications=2, seed=8
    )
    items = _items(run)
    by_cell = {cell: group.reset_index(drop=True) for cell, group in items.groupby("cell")}
    base = by_cell[0]
    for cell in (1, 2):
        assert np.array_equal(by_cell[cell].t_put, base.t_put)
        assert np.allclose(by_cell[cell].service, base.service, rtol=0, atol=1e-6)


def test_same_seed_gives_identical_parquet_contents(tmp_path):
    raw = dict(
        workers=[1, 2], arrival=["exp:1", "const:1"], service="gamma:1.5:2", duration=300, replications=2, seed=42
    )
    first, second = _run(tmp_path, "a", **raw), _run(tmp_path, "b", **raw)
    for part in ("items", "depth"):
        assert pd.read_parquet(first / part).equals(pd.read_parquet(second / part))  # the stored form
    volatile = ["wall_seconds"]
    a = pd.read_parquet(first / "cells.parquet").drop(columns=volatile)
    b = pd.read_parquet(second / "cells.parquet").drop(columns=volatile)
    assert a.equals(b)


def test_different_seeds_give_different_data(tmp_path):
    raw = dict(workers=[1], arrival="exp:1", service="exp:0.5", items=100)
    a = _items(_run(tmp_path, "a", seed=1, **raw))
    b = _items(_run(tmp_path, "b", seed=2, **raw))
    assert not np.array_equal(a.t_put, b.t_put)


def test_scaled_clock_records_model_seconds(tmp_path):
    run = _run(tmp_path, workers=[2], arrival="const:1", service="const:0.5", items=20, clock="scaled:0.005", seed=1)
    items = _items(run)
    gaps = np.diff(items.t_put.to_numpy())
    # Real sleeps never end early and rarely late by much; model gaps stay near 1 s.
    assert np.all(gaps > 0.99) and np.median(gaps) < 1.2
    assert np.all(items.service.to_numpy() > 0.49)
    cells = pd.read_parquet(run / "cells.parquet").iloc[0]
    assert cells.clock == "scaled:0.005"


def test_summary_statistics_agree_with_the_items(tmp_path):
    run = _run(tmp_path, workers=[2], arrival="exp:1", service="exp:1.8", items=20_000, seed=6)
    items = _items(run)
    row = pd.read_parquet(run / "cells.parquet").iloc[0]
    for name in ("wait", "sojourn"):
        values = items[name].to_numpy()
        assert row[f"{name}_mean"] == pytest.approx(values.mean(), rel=1e-9)
        for q in (50, 95, 99):
            exact = np.quantile(values, q / 100, method="inverted_cdf")
            assert row[f"{name}_p{q}"] == pytest.approx(exact, rel=1.16e-3, abs=1e-9)  # half a log bin
    assert row.n_done == 20_000
    assert row.depth_max == read_depth(open_run(run)).depth.max()


def test_arrival_service_and_blocking_columns_agree_with_the_items(tmp_path):
    """The columns a verdict reads beside the slope: what the pusher slept, how long it was blocked,
    the achieved arrival rate and the services, each computed again from the item records."""
    run = _run(tmp_path, workers=[1], arrival="exp:1", service="exp:2.5", maxsize=[0, 2], items=5000, seed=4)
    items, cells = _items(run), pd.read_parquet(run / "cells.parquet").set_index("maxsize")
    for maxsize, group in items.groupby("cell"):
        row = cells.iloc[maxsize]
        slept = group.t_arrive.to_numpy()[1:] - group.t_put.to_numpy()[:-1]
        period = group.t_put.iloc[-1]
        assert row.arrival_obs_mean == pytest.approx(slept.mean(), rel=1e-9)
        assert row.arrival_obs_sd == pytest.approx(slept.std(ddof=1), rel=1e-9)
        assert row.service_obs_mean == pytest.approx(group.service.mean(), rel=1e-9)
        assert row.service_obs_sd == pytest.approx(group.service.std(ddof=1), rel=1e-9)
        assert row.arrival_rate == pytest.approx((len(group) - 1) / period, rel=1e-12)
        assert row.blocked_fraction == pytest.approx((group.t_put - group.t_arrive).sum() / period, rel=1e-9)
    unbounded, bounded = cells.loc[0], cells.loc[2]
    assert unbounded.blocked_fraction == 0.0
    # rho = 2.5 on a queue of 2: the pusher waits most of the time and arrivals slow to the service rate.
    assert bounded.blocked_fraction > 0.5
    assert bounded.arrival_rate == pytest.approx(1 / 2.5, rel=0.1)


def test_the_plain_program_writes_the_version_3_item_columns_from_what_it_recorded(tmp_path):
    run = _run(tmp_path, workers=[1], arrival="exp:1", service="exp:1.5", duration=300, seed=3)
    items = _items(run)
    expected = np.where(items.t_done.notna(), "served", np.where(items.t_get.notna(), "in_service", "queued"))
    assert (items.status.to_numpy() == expected).all() and {"queued", "in_service", "served"} <= set(items.status)
    assert items["class"].isna().all() and (items.pusher == 0).all()
    assert (items.attempts == items.t_get.notna().astype(int)).all()
    assert items.t_leave.equals(items.t_done)
    cells = pd.read_parquet(run / "cells.parquet").iloc[0]
    assert (cells.n_served, cells.n_abandoned, cells.n_gave_up, cells.n_attempts) == (cells.n_done, 0, 0, cells.n_got)
    assert cells.goodput == cells.throughput and cells.abandon_rate == 0
