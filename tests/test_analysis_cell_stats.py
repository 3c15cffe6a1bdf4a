"""Statistics against known answers: t quantiles, CI coverage on repeated seeds, slopes, warm-up."""

from __future__ import annotations

import math

import numpy as np
import pytest

from analysis.backlog import growth, sample_depth, step_slope
from analysis.cell_stats import steady_state, summarize
from analysis.estimate import bootstrap_ratio, difference, mean_ci
from analysis.load import open_run, read_depth
from analysis.student_t import incomplete_beta, normal_quantile, t_cdf, t_quantile
from analysis.warmup import mser, truncate, truncate_ensemble


def _coverage_bound(trials: int, level: float = 0.95) -> float:
    """Four binomial standard deviations: a false alarm rate of about 6e-5 per check."""
    return 4 * math.sqrt(level * (1 - level) / trials)


@pytest.mark.parametrize(
    "p, df, expected",
    [(0.975, 1, 12.7062), (0.975, 4, 2.7764), (0.975, 9, 2.2622), (0.975, 29, 2.0452), (0.995, 4, 4.6041),
     (0.95, 10, 1.8125), (0.975, math.inf, 1.95996)],
)  # fmt: skip
def test_t_quantile_matches_tables(p, df, expected):
    assert t_quantile(p, df) == pytest.approx(expected, abs=1e-4)
    assert t_quantile(1 - p, df) == pytest.approx(-expected, abs=1e-4)


def test_t_cdf_and_incomplete_beta_known_values():
    assert incomplete_beta(0.3, 2, 3) == pytest.approx(0.3483, abs=1e-12)
    assert incomplete_beta(0.5, 0.5, 0.5) == pytest.approx(0.5, abs=1e-12)
    assert t_cdf(0.0, 3.3) == pytest.approx(0.5)
    assert t_cdf(t_quantile(0.9, 3.7), 3.7) == pytest.approx(0.9, abs=1e-12)
    assert normal_quantile(0.975) == pytest.approx(1.959964, abs=1e-6)
    with pytest.raises(ValueError):
        t_quantile(1.0, 3)


def test_mean_ci_covers_the_mean_95_percent_of_the_time():
    rng = np.random.default_rng(11)
    trials = 4000
    samples = rng.normal(3.0, 2.0, size=(trials, 5))
    hits = sum(mean_ci(s).contains(3.0) for s in samples)
    assert abs(hits / trials - 0.95) < _coverage_bound(trials)


def test_welch_and_paired_differences_cover_the_true_difference():
    rng = np.random.default_rng(12)
    trials = 2000
    welch = paired = 0
    for _ in range(trials):
        a, b = rng.normal(1.0, 1.0, 6), rng.normal(1.5, 3.0, 9)
        welch += difference(a, b, paired=False).contains(0.5)
        common = rng.normal(0, 5, 6)
        paired += difference(common + rng.normal(1.0, 0.3, 6), common + rng.normal(1.5, 0.3, 6), paired=True).contains(
            0.5
        )
    assert abs(welch / trials - 0.95) < _coverage_bound(trials)
    assert abs(paired / trials - 0.95) < _coverage_bound(trials)


def test_mean_ci_degenerate_inputs():
    assert math.isnan(mean_ci([]).mean)
    one = mean_ci([2.0])
    assert one.mean == 2.0 and math.isnan(one.low) and one.format() == "2"
    assert mean_ci([1.0, np.nan, 3.0]).n == 2


def test_bootstrap_ratio_brackets_the_ratio_of_means():
    rng = np.random.default_rng(13)
    a, b = rng.normal(10, 1, 20), rng.normal(15, 1, 20)
    est = bootstrap_ratio(a, b, paired=False)
    assert est.low < b.mean() / a.mean() < est.high
    assert est.contains(1.5)
    assert bootstrap_ratio(a, b, paired=False) == est  # seeded: reproducible


def test_step_slope_of_a_linear_staircase():
    t = np.arange(1, 5001) / 0.2  # one more item every 5 s: slope 0.2 items/s
    depth = np.arange(1, 5001)
    assert step_slope(t, depth, t[-1]) == pytest.approx(0.2, rel=1e-3)
    assert step_slope(t, np.full(5000, 7), t[-1]) == pytest.approx(0.0, abs=1e-5)


def test_step_slope_matches_an_independent_implementation_on_simulated_data(simulate, fixture_slope):
    items, depth = simulate("const:1", "uniform:0:5", 2, 1000.0, 5, 0)
    end = float(items["t_put"].max())
    ours = step_slope(depth["t"].to_numpy(), depth["depth"].to_numpy(), end)
    assert ours == pytest.approx(fixture_slope(depth["t"].to_numpy(), depth["depth"].to_numpy(), end), rel=1e-12)


def test_sample_depth_is_the_step_function():
    values = sample_depth(np.array([1.0, 2.0, 3.0]), np.array([1, 2, 1]), np.array([0.0, 1.0, 1.5, 2.5, 9.0]))
    assert values.tolist() == [0.0, 1.0, 1.0, 2.0, 1.0]


def test_growth_verdicts_follow_the_documented_rule():
    assert growth(np.array([0.19, 0.2, 0.21, 0.2]), 1.0).verdict == "overloaded"
    assert growth(np.array([1e-4, -1e-4, 2e-4, 0.0]), 1.0).verdict == "stable"
    assert growth(np.array([0.05, -0.04, 0.06, -0.05]), 1.0).verdict == "inconclusive"
    assert growth(np.array([0.2]), 1.0).verdict == "inconclusive"  # one replication: no interval
    # positive with confidence but below 1% of the arrival rate: not a capacity problem
    assert growth(np.array([0.001, 0.0011, 0.0009]), 1.0).verdict == "stable"
    over = growth(np.array([0.19, 0.2, 0.21, 0.2]), 1.0)
    assert over.time_to_target.mean == pytest.approx(1000 / 0.2)
    assert over.time_to_target.low < 5000 < over.time_to_target.high


def test_slope_ci_covers_the_fluid_rate_on_repeated_seeds(simulate):
    """The seed scenario (2 workers): 30 independent groups of 5 replications, 95% intervals."""
    hits = 0
    for group in range(30):
        slopes = []
        for rep in range(5):
            items, depth = simulate("const:1", "uniform:0:5", 2, 1500.0, 1000 + group, rep)
            slopes.append(step_slope(depth["t"].to_numpy(), depth["depth"].to_numpy(), float(items["t_put"].max())))
        hits += mean_ci(slopes).contains(0.2)
    assert hits >= 25  # P(Binomial(30, 0.95) < 25) = 0.008


@pytest.fixture(scope="module")
def seed_run(tmp_path_factory, write_run, seed_grid):
    return open_run(write_run(tmp_path_factory.mktemp("seed") / "seed", seed_grid, duration=3000.0))


def test_seed_scenario_verdicts(seed_run):
    by_workers = {s.params["workers"]: s for s in summarize(seed_run)}
    two = by_workers[2].growth
    assert two.verdict == "overloaded" and two.slope.contains(0.2)
    assert by_workers[3].growth.verdict == "stable"
    assert by_workers[4].growth.verdict == "stable"
    assert by_workers[2].censored.mean > 400  # the backlog left at the end is counted, not dropped


def test_slope_from_depth_equals_cells_column(seed_run):
    depth = read_depth(seed_run, cells=[0], replications=[3])
    end = float(seed_run.cells.query("cell == 0 and replication == 3")["t_last_put"].iloc[0])
    expected = float(seed_run.cells.query("cell == 0 and replication == 3")["backlog_slope"].iloc[0])
    assert step_slope(depth["t"].to_numpy(), depth["depth"].to_numpy(), end) == pytest.approx(expected, rel=1e-9)


def test_little_law_holds_on_stable_cells_and_is_skipped_when_overloaded(seed_run):
    verdicts = {s.params["workers"]: s.little.verdict for s in summarize(seed_run)}
    assert verdicts == {2: "n/a", 3: "holds", 4: "holds"}


def test_mser_cuts_a_known_transient():
    rng = np.random.default_rng(3)
    t = np.arange(4000)
    series = 20 * np.exp(-t / 100) + rng.normal(0, 1, 4000)
    cut = truncate(series)
    assert 200 <= cut.index <= 1000 and cut.settled
    assert cut.mean == pytest.approx(0.0, abs=0.1)
    assert len(mser(series)) == 4000 // 5 // 2 + 1


def test_mser_flags_a_series_that_never_settles():
    assert not truncate(np.arange(5000.0)).settled
    assert truncate_ensemble([np.arange(5000.0), np.arange(6000.0)]).settled is False


def test_steady_state_wait_is_unbiased_for_mm1(tmp_path, write_run):
    """20 replications of M/M/1 at rho = 0.5: theory Wq = 0.5 s within the 99.9% t interval."""
    run = open_run(write_run(tmp_path / "mm1", [(1, "exp:1", "exp:0.5")], duration=2000.0, replications=20, seed=4))
    steady = steady_state(run, 0)
    half = t_quantile(0.9995, 19) / t_quantile(0.975, 19) * steady.wait.half_width
    assert abs(steady.wait.mean - 0.5) < half
    assert steady.settled and steady.truncation.mean < 500


def test_summarize_in_worker_processes_gives_what_one_process_gives(seed_run, monkeypatch):
    """A large run's statistics are spread over processes; the figures do not depend on it."""
    import sys

    module = sys.modules[summarize.__module__]  # the package's ``cell_stats`` is the function
    run = seed_run
    alone = summarize(run, jobs=1)
    monkeypatch.setattr(module, "PARALLEL_FROM", 1)
    spread = summarize(run, jobs=2)
    assert [s.cell for s in spread] == [s.cell for s in alone] and len(alone) > 1
    for a, b in zip(alone, spread):
        assert a.metrics.keys() == b.metrics.keys() and a.growth.verdict == b.growth.verdict
        for name, value in a.metrics.items():
            other = b.metrics[name]
            assert (value.mean, value.low, value.high) == (other.mean, other.low, other.high) or (
                math.isnan(value.mean) and math.isnan(other.mean)), name  # fmt: skip
