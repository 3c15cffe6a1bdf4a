"""The pool's behaviours against queueing theory and against independent implementations.

Statistical checks use 12 to 16 seeded replications: theory lies within the 99% Student t interval
of the replications' mean (``_within``: a tolerance taken from the measured variance), and that
interval is narrow enough (a few % of the theory) for the check to mean something. Item-by-item checks compare the engine's records
with ``tests/support/reference_queues.py`` to a microsecond (delays are rounded to whole
nanoseconds by the virtual clock, the reference adds floats).
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from analysis.behaviour_theory import cobham_mg1, cobham_mmc, erlang_a, retry_attempts
from analysis.load import open_run, read_items
from analysis.student_t import t_quantile
from bench.asyncio_engine import run_asyncio
from bench.behaviour import Behaviour, parse_backoff, parse_classes
from bench.cli import main
from bench.distributions import parse
from bench.grid import Cell, make_grid, streams
from bench.runner import run_grid
from bench.scenario import Scenario


def _run(collect, workers, arrival, service, behaviour, *, items=None, duration=None, seed=1, replication=0):
    """One replication through the asyncio engine's entry point: (replication, items, depth)."""
    cell = Cell(0, workers, parse(arrival), parse(service), 0)
    scenario = Scenario(workers, cell.arrival, cell.service, 0, items, duration, 10**7, behaviour=behaviour)
    arrivals, services = streams(seed, cell, replication)
    sink = collect()
    done = run_asyncio(scenario, arrivals, services, sink)
    return done, sink.table("items"), sink.table("depth")


def _within(values, theory, *, width):
    """``theory`` lies in the 99% t interval of the mean of per-replication ``values``, and that
    interval's half-width is under ``width`` (relative to theory): tight enough to test."""
    x = np.asarray(values, dtype=float)
    half = t_quantile(0.995, len(x) - 1) * x.std(ddof=1) / math.sqrt(len(x))
    assert half <= width * abs(theory), f"interval too wide to test: +-{half:.4g} around {theory:.4g}"
    assert abs(x.mean() - theory) <= half, f"measured {x.mean():.5g} +- {half:.3g}, theory {theory:.5g}"


# -- priority: Cobham's formula ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("workers", "arrival", "service", "mix"),
    [(2, "exp:0.625", "exp:1", "high:0.3,low:0.7"), (1, "exp:1.4285714285714286", "uniform:0:2", "a:0.2,b:0.3,c:0.5")],
    ids=["M/M/2", "M/G/1"],
)
def test_priority_class_waits_match_cobham(collect, workers, arrival, service, mix):
    classes = parse_classes(mix)
    behaviour = Behaviour(discipline="priority", classes=classes)
    lam, dist = 1 / parse(arrival).mean, parse(service)
    if workers == 1:
        theory = cobham_mg1(lam, dist.mean, dist.cv**2, classes.weights)
    else:
        theory = cobham_mmc(lam, dist.mean, workers, classes.weights)
    per_class = {name: [] for name in classes.names}
    for rep in range(16):
        _, items, _ = _run(collect, workers, arrival, service, behaviour, items=12_500, seed=3, replication=rep)
        for name in classes.names:
            per_class[name].append(items["wait"][items["class"] == name].mean())
    for name, wait in zip(classes.names, theory):
        _within(per_class[name], wait, width=0.1)
    assert theory == sorted(theory)  # the first class waits least


def test_priority_serves_the_first_class_first_and_fifo_within_a_class(collect):
    behaviour = Behaviour(discipline="priority", classes=parse_classes("high:0.5,low:0.5"))
    _, items, _ = _run(collect, 1, "exp:0.9", "exp:1", behaviour, items=3000, seed=2)
    order = np.argsort(items["t_get"], kind="stable")
    for name in ("high", "low"):  # within a class, items are taken in put order
        mine = order[items["class"][order] == name]
        assert np.all(np.diff(items["t_put"][mine]) > 0)
    # whenever a low item was taken, no high item was waiting
    high = items["class"] == "high"
    for i in np.flatnonzero(~high):
        waiting = high & (items["t_put"] < items["t_get"][i]) & (items["t_get"] > items["t_get"][i])
        assert not waiting.any()


# -- LIFO: same mean wait as FIFO in M/M/1, larger variance -------------------------------------------


def test_lifo_has_fifos_mean_wait_and_a_larger_variance_in_mm1(collect):
    # M/M/1, lam = 0.5, mu = 1: Wq = 1 for both; Var = E[W^2] - 1 = 3 (FIFO) and 7 (LIFO).
    means, variances = {"fifo": [], "lifo": []}, {"fifo": [], "lifo": []}
    for discipline in ("fifo", "lifo"):
        for rep in range(16):
            _, items, _ = _run(collect, 1, "exp:2", "exp:1", Behaviour(discipline=discipline), items=12_500, seed=4,
                               replication=rep)  # fmt: skip
            means[discipline].append(items["wait"].mean())
            variances[discipline].append(items["wait"].var(ddof=1))
    _within(means["fifo"], 1.0, width=0.08)
    _within(means["lifo"], 1.0, width=0.08)
    _within(variances["fifo"], 3.0, width=0.15)
    _within(variances["lifo"], 7.0, width=0.2)
    assert np.mean(variances["lifo"]) > 1.8 * np.mean(variances["fifo"])  # theory: 7/3 = 2.3 times


# -- abandonment: Erlang-A and an independent implementation ------------------------------------------


def test_abandonment_matches_erlang_a(collect):
    # M/M/2+M, lam = 2, mu = 1, patience exp mean 5: P(abandon) = 0.1714, mean time in queue 0.8572.
    theory = erlang_a(2.0, 1.0, 2, 5.0)
    behaviour = Behaviour(patience=parse("exp:5"))
    abandoned, queue_time, p_wait = [], [], []
    for rep in range(12):
        _, items, _ = _run(collect, 2, "exp:0.5", "exp:1", behaviour, items=15_000, seed=5, replication=rep)
        gone = items["status"] == "abandoned"
        time = np.where(gone, items["t_leave"] - items["t_put"], items["wait"])
        abandoned.append(gone.mean())
        queue_time.append(time.mean())
        p_wait.append((time > 0).mean())
    _within(abandoned, theory.p_abandon, width=0.05)
    _within(queue_time, theory.time_in_queue, width=0.05)
    _within(p_wait, theory.p_wait, width=0.03)


@pytest.mark.parametrize(
    ("workers", "service", "patience"), [(1, "exp:1.2", "exp:3"), (3, "uniform:0:5", "lognormal:4:1")]
)
def test_abandonment_agrees_item_by_item_with_an_independent_fifo_queue(collect, reference_queues, workers, service,
                                                                        patience):  # fmt: skip
    behaviour = Behaviour(patience=parse(patience))
    cell = Cell(0, workers, parse("exp:1"), parse(service), 0)
    done, items, depth = _run(collect, workers, "exp:1", service, behaviour, items=10_000, seed=6)
    arrivals, services = streams(6, cell, 0)
    drawn = services.take(10_000)
    waits = arrivals.sibling("patience/0", parse(patience)).take(10_000)
    expected = reference_queues.fifo_with_patience(items["t_put"], drawn, waits, workers)
    np.testing.assert_array_equal(items["status"] == "abandoned", expected["abandoned"])
    for column in ("t_get", "t_done", "t_leave"):
        np.testing.assert_allclose(items[column], expected[column], rtol=0, atol=1e-6, err_msg=column)
    assert done.n_abandoned == expected["abandoned"].sum() > 100
    # an abandoned item leaves the queue at its deadline: a -1 depth change, and the depth is puts minus leaves
    assert np.array_equal(depth["depth"], np.cumsum(depth["event"].astype(np.int64)))
    assert (depth["event"] == -1).sum() == done.n_got + done.n_abandoned


# -- batches: an independent implementation and the saturated throughput ------------------------------


@pytest.mark.parametrize(("workers", "batch", "linger"), [(1, 4, 0.0), (3, 4, 0.0), (1, 5, 1.5)])
def test_batches_agree_item_by_item_with_an_independent_implementation(
    collect, reference_queues, workers, batch, linger
):
    behaviour = Behaviour(batch=batch, linger=linger, setup=parse("const:0.3"))
    cell = Cell(0, workers, parse("exp:0.25"), parse("exp:0.2"), 0)
    _, items, _ = _run(collect, workers, "exp:0.25", "exp:0.2", behaviour, items=10_000, seed=7)
    drawn = streams(7, cell, 0)[1].take(10_000)
    expected = reference_queues.batches(items["t_put"], drawn, batch, 0.3, workers, linger)
    for column in ("t_get", "t_done"):
        np.testing.assert_allclose(items[column], expected[column], rtol=0, atol=1e-6, err_msg=column)
    sizes = pd.Series(items["t_done"]).value_counts()
    assert sizes.max() == batch and sizes.min() >= 1


def test_saturated_batches_serve_c_b_over_setup_plus_b_services(collect):
    # lam = 10 against 2 workers whose full batches of 4 serve c B / (E[setup] + B E[S]) = 8 / 1.3 = 6.15 items/s
    behaviour = Behaviour(batch=4, setup=parse("exp:0.5"))
    throughput = []
    for rep in range(12):
        done, _, _ = _run(collect, 2, "exp:0.1", "exp:0.2", behaviour, duration=800.0, seed=8, replication=rep)
        throughput.append(done.n_done / done.t_end)
    _within(throughput, 2 * 4 / (0.5 + 4 * 0.2), width=0.03)


# -- failures and retries -----------------------------------------------------------------------------


def test_retries_make_1_minus_p_to_the_k_over_1_minus_p_attempts_and_serve_1_minus_p_to_the_k(collect):
    p, k = 0.3, 3
    behaviour = Behaviour(failure=p, attempts=k, backoff=parse_backoff("expo:0.5:4:jitter"))
    done, items, depth = _run(collect, 4, "exp:1", "exp:1", behaviour, items=40_000, seed=9)
    n = len(items["item"])
    # attempts per item: P(a) = p^(a-1) (1-p) for a < k, p^(k-1) for a = k (binomial bounds at 4.5 SE)
    for a, share in ((1, 1 - p), (2, p * (1 - p)), (3, p * p)):
        got = np.mean(items["attempts"] == a)
        assert abs(got - share) <= 4.5 * math.sqrt(share * (1 - share) / n), (a, got, share)
    gave_up = np.mean(items["status"] == "gave_up")
    assert abs(gave_up - p**k) <= 4.5 * math.sqrt(p**k * (1 - p**k) / n)
    assert np.all((items["status"] == "gave_up") == ((items["attempts"] == k) & (items["status"] != "served")))
    mean = items["attempts"].mean()
    assert abs(mean - retry_attempts(p, k)) <= 4.5 * items["attempts"].std() / math.sqrt(n)
    # every attempt entered the queue once: puts plus requeues are the +1 depth changes
    assert (depth["event"] == 1).sum() == done.n_attempts == items["attempts"].sum()
    assert done.n_served + done.n_gave_up == n


def test_the_queue_sees_lam_over_1_minus_p_with_retries_unlimited(collect):
    p = 0.25
    behaviour = Behaviour(failure=p, attempts=1000)
    _, items, depth = _run(collect, 4, "exp:1", "exp:1", behaviour, items=30_000, seed=10)
    end = items["t_put"][-1]
    puts = np.sum((depth["event"] == 1) & (depth["t"] <= end)) / end
    # Poisson arrivals (0.58% relative SE over 30,000) and geometric attempts (0.29%): 3% is over 4 SE
    assert puts == pytest.approx(1 / (1 - p), rel=0.03)


def test_a_failed_item_goes_back_on_the_queue_after_its_backoff(collect):
    behaviour = Behaviour(failure=0.5, attempts=2, backoff=parse_backoff("const:2"))
    cell = Cell(0, 50, parse("exp:1"), parse("exp:1"), 0)
    _, items, _ = _run(collect, 50, "exp:1", "exp:1", behaviour, items=2000, seed=11)
    first = streams(11, cell, 0)[1].take(2000)  # the first attempt's service is the item's own draw
    retried = items["attempts"] == 2
    assert retried.sum() > 800
    # 50 workers: nobody waits, so the second take is first service + backoff after the put
    np.testing.assert_allclose(items["wait"][retried], first[retried] + 2.0, rtol=0, atol=1e-6)
    np.testing.assert_array_equal(items["wait"][~retried], 0.0)


# -- several pushers ------------------------------------------------------------------------------------


def test_two_poisson_pushers_merge_into_a_poisson_stream(collect):
    # exp:3 + exp:6: lam = 1/3 + 1/6 = 0.5 into M/M/1 with mu = 1: Wq = 1; shares 2/3 and 1/3.
    waits, shares = [], []
    for rep in range(16):
        _, items, _ = _run(collect, 1, "exp:3+exp:6", "exp:1", Behaviour(), items=8_000, seed=12, replication=rep)
        waits.append(items["wait"].mean())
        shares.append(np.mean(items["pusher"] == 0))
        for pusher, mean in ((0, 3.0), (1, 6.0)):
            gaps = np.diff(items["t_put"][items["pusher"] == pusher])
            assert gaps.mean() == pytest.approx(mean, rel=5 * 1 / math.sqrt(gaps.size))
    _within(waits, 1.0, width=0.1)
    _within(shares, 2 / 3, width=0.02)


# -- the general pool and the plain program --------------------------------------------------------------


@pytest.mark.parametrize(("maxsize", "items", "duration"), [(0, 3000, None), (3, 3000, None), (0, None, 1500.0),
                                                            (2, None, 1500.0)])  # fmt: skip
def test_the_general_pool_records_what_the_plain_program_records(plain_and_pool, maxsize, items, duration):
    """Without behaviours the engine runs bench/scenario.py; the pool coroutine, made to run the
    same cell, writes the same item and depth records (the plain path is a shortcut, not another model)."""
    cell = Cell(0, 2, parse("exp:1"), parse("uniform:0:2.5"), maxsize)
    scenario = Scenario(2, cell.arrival, cell.service, maxsize, items, duration, 10**6)
    a, b = plain_and_pool(scenario, cell)
    assert (a.t_end, a.n_put, a.n_got, a.n_done, a.busy) == (b.t_end, b.n_put, b.n_got, b.n_done, b.busy)


def test_cells_differing_in_workers_or_discipline_see_the_same_items(tmp_path):
    grid = make_grid({"workers": [1, 2], "arrival": "exp:1", "service": "exp:0.8", "discipline": ["fifo", "priority"],
                      "classes": "high:0.2,low:0.8", "patience": "exp:20", "failure": 0.1, "items": 3000,
                      "replications": 2, "seed": 13})  # fmt: skip
    run_grid(tmp_path / "run", grid, jobs=1, progress=False)
    items = read_items(open_run(tmp_path / "run"), join=False).sort_values(["cell", "replication", "item"])
    by_cell = [group.reset_index(drop=True) for _, group in items.groupby("cell")]
    for other in by_cell[1:]:
        assert other["t_put"].equals(by_cell[0]["t_put"]) and other["class"].equals(by_cell[0]["class"])


# -- the acceptance comparison: FIFO against priority on one seed ------------------------------------------


def test_compare_fifo_with_priority_shows_the_high_class_faster_and_the_low_class_slower(tmp_path, capsys):
    base = ["--workers", "1", "--arrival", "exp:1.25", "--service", "exp:1", "--items", "20000", "--replications",
            "5", "--seed", "21", "--classes", "high:0.2,low:0.8", "--jobs", "1", "--no-progress", "--no-summary"]  # fmt: skip
    assert main(["run", "--out", str(tmp_path / "fifo"), *base]) == 0
    assert main(["run", "--out", str(tmp_path / "prio"), *base, "--discipline", "priority"]) == 0
    capsys.readouterr()
    argv = ["compare", str(tmp_path / "fifo"), str(tmp_path / "prio"), "--metrics", "wait_p99[high],wait_p99[low]",
            "--format", "csv", "--fail-if", "wait_p99[low] > +5%"]  # fmt: skip
    assert main(argv) == 1  # the low class's p99 rose by more than 5%, over its whole interval
    rows = {
        row["metric"]: row for row in pd.read_csv(pd.io.common.StringIO(capsys.readouterr().out)).to_dict("records")
    }
    high, low = rows["wait_p99[high]"], rows["wait_p99[low]"]
    assert high["test"] == low["test"] == "paired t"
    high_ci = [float(v) for v in high["B-A 95% CI"].strip("[]").split(",")]
    low_ci = [float(v) for v in low["B-A 95% CI"].strip("[]").split(",")]
    assert high_ci[1] < 0 < low_ci[0]
    assert "faster" in high["verdict"] and "slower" in low["verdict"]
