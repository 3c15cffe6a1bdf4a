"""Verdicts that do not mislead: capped, lagged, throttled, failed, one replication, zero spread.

Each test states one rule of ``analysis/backlog.py``'s docstring. Cells come from the synthetic
fixture (a FIFO G/G/c simulation written as schema version 3) or, for a rule that needs a
particular set of numbers, from rows built here.
"""

from __future__ import annotations

import re
import shutil

import numpy as np
import pandas as pd
import pytest

from analysis.backlog import PRACTICAL, growth, identical, throttling, verdict
from analysis.cell_stats import summarize
from analysis.estimate import Estimate
from analysis.load import open_run
from analysis.student_t import t_quantile
from analysis.summary_table import summary_table

THROTTLED = (1, "exp:1", "exp:2.5", 1)  # maxsize 1 at rho 2.5: depth pinned at 0..1, pusher blocked
UNBOUNDED = (1, "exp:1", "exp:2.5")  # the same cell without the bound: the backlog grows at 0.6 items/s


def _by_cell(path):
    return {s.cell: s for s in summarize(open_run(path))}


def _near(est: Estimate, truth: float) -> bool:
    """Truth inside the 99.9% t interval (the 95% one widened): a false failure rate of 0.1%."""
    return abs(est.mean - truth) <= t_quantile(0.9995, est.n - 1) / t_quantile(0.975, est.n - 1) * est.half_width


def _blocking_chain(lam: float, mu: float) -> tuple[float, float]:
    """Exact blocked fraction and throughput of one worker, maxsize 1, exponential times.

    States: idle; busy with nothing waiting; busy with one waiting; busy, one waiting and the pusher
    blocked. Balance: p1 = p0 lam/mu, p2 = (p1 (lam + mu) - p0 lam)/mu, p3 = p2 lam/mu.
    """
    p = [1.0, lam / mu]
    p.append((p[1] * (lam + mu) - lam) / mu)
    p.append(p[2] * lam / mu)
    total = sum(p)
    return p[3] / total, mu * (1 - p[0] / total)


@pytest.fixture(scope="module")
def mixed(tmp_path_factory, write_run):
    """Bounded and unbounded cells, deterministic and random ones, four replications each."""
    grid = [THROTTLED, UNBOUNDED, (1, "exp:1", "exp:0.5", 50), (2, "const:1", "const:2.5"), (3, "const:1", "const:2.5"),
            (1, "uniform:1:2", "uniform:0:0.5")]  # fmt: skip
    return write_run(tmp_path_factory.mktemp("verdicts") / "mixed", grid, duration=1000.0, replications=4, seed=5)


# -- throttled ----------------------------------------------------------------------------------


def test_a_pinned_bounded_queue_is_throttled_not_stable(mixed):
    cells = open_run(mixed).cells
    pinned = cells[cells["cell"] == 0]
    assert (pinned["depth_max"] <= 1).all()  # the fixture cell really is pinned
    slopes = pinned["backlog_slope"].to_numpy()
    assert growth(slopes, 1.0).verdict == "stable"  # what the slope alone says: the old, misleading verdict
    s = _by_cell(mixed)[0]
    assert s.growth.verdict == "throttled"
    held = s.growth.throttling
    assert held.blocked.low > 0 and held.blocked.mean >= PRACTICAL
    blocked, rate = _blocking_chain(1.0, 1 / 2.5)  # 0.616 and 0.384 items/s, against 1 offered
    assert held.offered == 1.0 and _near(held.blocked, blocked) and _near(held.achieved, rate)


def test_the_unbounded_twin_of_a_throttled_cell_is_overloaded(mixed):
    s = _by_cell(mixed)[1]
    assert s.growth.verdict == "overloaded" and _near(s.growth.slope, 0.6)  # fluid slope 1 - 1/2.5
    assert s.growth.throttling is None


def test_a_bounded_queue_that_rarely_fills_is_stable(mixed):
    s = _by_cell(mixed)[2]  # maxsize 50 at rho 0.5: the pusher never blocks
    assert s.growth.verdict == "stable" and s.growth.throttling.state == "free"
    assert s.growth.throttling.blocked.mean == 0.0


def test_summary_shows_maxsize_and_achieved_against_offered_arrivals(mixed):
    lines = summary_table(mixed).splitlines()
    header = lines[1]
    assert "maxsize" in header and "arrivals/s achieved of offered" in header
    throttled = next(line for line in lines if line.startswith("0 "))
    unbounded = next(line for line in lines if line.startswith("1 "))
    assert " 1 " in throttled.split("exp:2.5", 1)[1][:12]  # the maxsize column
    assert re.search(r"  0\.3\d* ± [\d.]+ of 1  ", throttled)  # achieved of offered, items/s
    assert re.search(r"throttled \(pusher blocked 6\d\.\d% ± [\d.]+% of the arrival period; achieved 0\.3\d* ± "
                     r"[\d.]+ of 1 items/s offered\)", throttled)  # fmt: skip
    assert " 0 " in unbounded.split("exp:2.5", 1)[1][:12] and "overloaded" in unbounded


def test_one_replication_of_a_throttled_bounded_queue_is_a_fact(tmp_path, write_run):
    s = _by_cell(write_run(tmp_path / "one", [THROTTLED], duration=1000.0, replications=1, seed=5))[0]
    assert s.growth.verdict == "throttled" and s.growth.throttling.blocked.n == 1


def test_a_bounded_queue_whose_blocking_is_uncertain_is_not_called_stable():
    rows = pd.DataFrame({"status": ["ok"] * 4, "backlog_slope": [1e-4, -1e-4, 2e-4, 0.0],
                         "blocked_fraction": [0.0, 0.03, 0.0, 0.001],
                         "arrival_rate": [1.0, 0.97, 1.0, 1.0]})  # fmt: skip
    params = {"arrival_mean": 1.0, "service_mean": 0.9, "arrival_cv": 1.0, "service_cv": 1.0, "maxsize": 3}
    result = verdict(rows, params)
    assert result.verdict == "inconclusive" and "bounded queue" in result.reason
    assert throttling(rows["blocked_fraction"], rows["arrival_rate"], 1.0).state == "undecided"


# -- capped, lagged, failed ---------------------------------------------------------------------


def test_a_capped_cell_is_overloaded_with_its_slope_and_a_note(tmp_path, write_run):
    path = write_run(tmp_path / "cap", [UNBOUNDED], duration=2000.0, replications=3, seed=5, max_backlog=150)
    run = open_run(path)
    assert set(run.cells["status"]) == {"capped"}  # the fixture stopped every replication at the cap
    s = summarize(run)[0]
    assert s.replications == 3 and s.growth.verdict == "overloaded"
    assert s.growth.slope.mean > 0.3 and "hit the backlog cap (max_backlog) in 3 of 3 replications" in s.growth.reason
    assert "overloaded (1000 deep at" in summary_table(path) and "n/a" not in summary_table(path).splitlines()[3]


def test_one_capped_replication_makes_the_cell_overloaded_even_without_an_interval(tmp_path, write_run):
    path = write_run(tmp_path / "cap1", [UNBOUNDED], duration=2000.0, replications=1, seed=5, max_backlog=150)
    assert summarize(open_run(path))[0].growth.verdict == "overloaded"


@pytest.mark.parametrize("cell", [1, 3, 4])  # overloaded, deterministic overloaded, deterministic stable
def test_a_lagged_replication_makes_the_verdict_unreliable(mixed, tmp_path, cell, restatus):
    path = shutil.copytree(mixed, tmp_path / "lag")
    restatus(path, cell, [2], "lagged", clock_lag_mean=0.05, clock_lag_max=0.4)
    g = _by_cell(path)[cell].growth
    assert g.verdict == "unreliable" and g.time_to_target is None
    assert "clock fell behind real time in 1 of 4 replications" in g.reason
    assert "0.05 s on average" in g.reason and "0.4 s" in g.reason
    line = next(line for line in summary_table(path).splitlines() if line.startswith(f"{cell} "))
    assert "unreliable (clock fell behind real time" in line
    assert "stable" not in line and "overloaded" not in line


def test_lag_outranks_the_cap(tmp_path, write_run, restatus):
    path = write_run(tmp_path / "both", [UNBOUNDED], duration=2000.0, replications=3, seed=5, max_backlog=150)
    restatus(path, 0, [0], "lagged", clock_lag_mean=0.2, clock_lag_max=1.0)
    assert summarize(open_run(path))[0].growth.verdict == "unreliable"


def test_a_cell_without_data_is_failed_with_its_error(tmp_path, write_run):
    grid = [UNBOUNDED, THROTTLED]
    path = write_run(tmp_path / "f", grid, duration=300.0, replications=2, failed={1: "Deadlock: stuck"})
    g = _by_cell(path)[1].growth
    assert g.verdict == "failed" and "Deadlock: stuck" in g.reason


# -- one replication, zero spread, deterministic inputs -----------------------------------------


def test_one_replication_is_inconclusive_and_says_why(tmp_path, write_run):
    path = write_run(tmp_path / "one", [(2, "const:1", "uniform:0:5")], duration=3000.0, replications=1, seed=5)
    s = summarize(open_run(path))[0]
    assert s.growth.verdict == "inconclusive" and s.growth.slope.mean > 0.1  # the slope is still shown
    assert "inconclusive (1 replication: no interval; use --replications 2 or more)" in summary_table(path)


def test_identical_random_replications_decide_nothing(mixed):
    s = _by_cell(mixed)[5]  # service always shorter than the gap between arrivals: nobody ever waits
    assert identical(open_run(mixed).cells.query("cell == 5")["backlog_slope"])
    assert s.growth.slope.half_width == 0
    assert s.growth.describe() == "inconclusive (replications identical: zero-width interval)"


@pytest.mark.parametrize(("cell", "expected"), [(3, "overloaded"), (4, "stable")])
def test_deterministic_inputs_let_the_point_value_decide(mixed, cell, expected):
    s = _by_cell(mixed)[cell]
    assert s.growth.slope.half_width == 0 and s.growth.verdict == expected
    if expected == "overloaded":
        assert s.growth.slope.mean == pytest.approx(0.2, abs=0.01)  # fluid slope 1 - 2/2.5


def test_one_deterministic_replication_decides_too(tmp_path, write_run):
    path = write_run(tmp_path / "d1", [(2, "const:1", "const:2.5")], duration=1000.0, replications=1)
    assert summarize(open_run(path))[0].growth.verdict == "overloaded"


def test_growth_rule_reasons():
    assert growth(np.array([0.2]), 1.0).reason == "1 replication: no interval; use --replications 2 or more"
    same = growth(np.array([0.3, 0.3, 0.3]), 1.0)
    assert same.describe() == "inconclusive (replications identical: zero-width interval)"
    assert growth(np.array([0.3, 0.3, 0.3]), 1.0, fixed=True).verdict == "overloaded"
    assert growth(np.array([0.001, 0.001]), 1.0, fixed=True).verdict == "stable"  # below 1% of the arrival rate
    assert growth(np.array([0.05, -0.04, 0.06, -0.05]), 1.0).reason == "interval straddles the 1% threshold"


def test_a_lag_that_was_not_recorded_is_unknown_not_nan(mixed, tmp_path, restatus):
    path = shutil.copytree(mixed, tmp_path / "nolag")
    restatus(path, 1, [0], "lagged", clock_lag_mean=float("nan"), clock_lag_max=float("nan"))
    g = _by_cell(path)[1].growth
    assert g.verdict == "unreliable" and "timers late by unknown on average" in g.reason and "nan" not in g.reason
