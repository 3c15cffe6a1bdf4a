"""Queueing theory against textbook values, and against simulation where a formula is exact."""

from __future__ import annotations

import pytest

from analysis.agreement import agreement_frame, compare_theory
from analysis.cell_stats import summarize
from analysis.load import open_run
from analysis.student_t import t_quantile
from analysis.theory import (
    allen_cunneen,
    erlang_c,
    fluid_slope,
    kendall,
    kingman,
    md1,
    mg1,
    mm1,
    mmc,
    mmc_wait_quantile,
    mmc_wait_tail,
    predict,
    stable_workers,
    wait_quantile,
)  # fmt: skip


def test_mm2_textbook_values():
    """GSTH: M/M/2 with lam = 1.8, mu = 1."""
    p = mmc(1.8, 1.0, 2)
    assert p.p_wait == pytest.approx(0.8526, abs=1e-4)
    assert p.wq == pytest.approx(4.263, abs=1e-3)
    assert p.lq == pytest.approx(1.8 * 4.263, abs=2e-3)
    assert p.w == pytest.approx(5.263, abs=1e-3)
    assert p.exact and p.rho == pytest.approx(0.9)


def test_mm1_and_erlang_c_special_cases():
    p = mm1(0.5, 1.0)  # rho = 0.5, Wq = rho / (mu - lam) = 1
    assert p.wq == pytest.approx(1.0) and p.p_wait == pytest.approx(0.5) and p.lq == pytest.approx(0.5)
    assert erlang_c(1, 0.7) == pytest.approx(0.7)
    assert erlang_c(3, 2.0) == pytest.approx(0.4444, abs=1e-4)  # GSTH table: c=3, a=2
    with pytest.raises(ValueError):
        erlang_c(2, 2.0)


def test_pollaczek_khinchine():
    assert md1(0.5, 1.0).wq == pytest.approx(0.5)  # rho d / (2 (1 - rho))
    assert mg1(0.5, 1.0, 1.0).wq == pytest.approx(mm1(0.5, 1.0).wq)
    assert mg1(0.8, 1.0, 1 / 3).wq == pytest.approx(0.8 * (4 / 3) / (2 * 0.2))  # M/U/1
    assert md1(0.5, 1.0).model == "M/D/1"


def test_approximations_reduce_to_exact_cases_and_are_labelled():
    assert allen_cunneen(1.8, 1.0, 2, 1.0, 1.0).wq == pytest.approx(mmc(1.8, 1.0, 2).wq)
    assert kingman(0.5, 1.0, 1.0, 0.0).wq == pytest.approx(md1(0.5, 1.0).wq)
    assert not kingman(0.5, 1.0, 0.0, 0.3).exact and "approx" in kingman(0.5, 1.0, 0.0, 0.3).model
    assert not allen_cunneen(1.0, 2.5, 3, 0.0, 1 / 3).exact


def test_mmc_wait_quantile_inverts_the_exact_tail():
    """M/M/3, lam = 1, E[S] = 2.5: C(3, 2.5) = 0.7022, so p99 = ln(70.22) / 0.2 = 21.26 s."""
    p99 = mmc_wait_quantile(1.0, 2.5, 3, 0.99)
    assert p99 == pytest.approx(21.2585, abs=1e-4)
    assert mmc_wait_tail(1.0, 2.5, 3, p99) == pytest.approx(0.01)
    assert mmc_wait_quantile(1.0, 2.5, 6, 0.95) == 0.0  # C(6, 2.5) = 0.047 < 5%: 95% of items never wait
    with pytest.raises(ValueError):
        mmc_wait_quantile(1.0, 2.5, 2, 0.99)  # no steady state


def test_two_moment_quantile_is_exact_for_mmc_and_zero_for_deterministic_queues():
    assert wait_quantile(1.0, 2.5, 4, 0.95, 1.0, 1.0) == pytest.approx(mmc_wait_quantile(1.0, 2.5, 4, 0.95))
    assert wait_quantile(1.0, 2.5, 3, 0.99, 0.0, 0.0) == 0.0
    assert wait_quantile(1.0, 2.5, 3, 0.99, 0.0, 1 / 3) < wait_quantile(1.0, 2.5, 3, 0.99, 1.0, 1.0)


def test_stable_workers_is_the_fewest_count_above_the_offered_load():
    assert stable_workers(1.0, 2.5) == 3  # the seed scenario: 2.5 Erlangs
    assert stable_workers(1.0, 3.0) == 4  # 3 workers at 3 Erlangs have no steady state
    assert stable_workers(1 / 0.1, 0.3) == 4  # 3 Erlangs in floating point (2.9999999999999996)


def test_fluid_slope_of_the_seed_scenario():
    assert fluid_slope(1.0, 2.5, 2) == pytest.approx(0.2)
    assert fluid_slope(1.0, 2.5, 3) < 0


def test_no_steady_state_when_overloaded():
    with pytest.raises(ValueError, match="rho"):
        mmc(1.0, 2.5, 2)
    assert predict("const:1", 1.0, 0.0, "uniform:0:5", 2.5, 0.577, 2) is None


def test_predict_picks_the_right_model():
    assert predict("exp:1", 1.0, 1.0, "exp:1.5", 1.5, 1.0, 2).model == "M/M/2 (Erlang C)"
    assert predict("exp:1", 1.0, 1.0, "uniform:0:1", 0.5, 0.577, 1).model.startswith("M/G/1")
    assert predict("exp:1", 1.0, 1.0, "const:0.5", 0.5, 0.0, 1).model == "M/D/1"
    assert "Allen-Cunneen" in predict("const:1", 1.0, 0.0, "uniform:0:5", 2.5, 0.577, 3).model
    assert "Kingman" in predict("const:1", 1.0, 0.0, "uniform:0:1", 0.5, 0.577, 1).model
    assert predict("exp:1", 1.0, 1.0, "pareto:0.5:1.5", 0.5, None, 1) is None
    assert kendall("exp:2") == "M" and kendall("const") == "D" and kendall("gamma:1:2") == "G"


def test_exact_theory_inside_simulated_confidence_intervals(tmp_path, write_run):
    """M/M/1, M/M/2 and M/G/1 (uniform service) cells, 20 replications each.

    Tolerance: the 99.9% Student t interval (a false failure rate of 0.1% per row, fixed before
    looking at the data). Utilisation rows are exact for every stable cell.
    """
    grid = [(1, "exp:1", "exp:0.5"), (2, "exp:1", "exp:1.5"), (1, "exp:1", "uniform:0:1.4")]
    run = open_run(write_run(tmp_path / "mmc", grid, duration=2000.0, replications=20, seed=21))
    rows = [row for stats in summarize(run) for row in compare_theory(run, stats)]
    table = agreement_frame(rows)
    assert set(table["quantity"]) == {"utilisation", "Wq", "P(wait)"}
    assert table.loc[table["quantity"] != "utilisation", "exact"].all()
    widen = t_quantile(0.9995, 19) / t_quantile(0.975, 19)
    for row in rows:
        tolerance = widen * row.measured.half_width
        assert abs(row.measured.mean - row.theory) < tolerance, (row.cell, row.quantity, row.measured, row.theory)
    assert table["relative_error"].notna().all()


def test_agreement_tolerance_is_the_99_percent_interval():
    from analysis.agreement import Agreement
    from analysis.estimate import mean_ci

    measured = mean_ci([2.5, 2.9, 3.0, 2.6, 3.0])  # mean 2.8, 95% half-width 0.28
    just_outside_95 = Agreement(0, "Wq", "M/M/3", True, measured.high + 0.05, measured)
    assert not just_outside_95.inside_ci and just_outside_95.agrees
    assert not Agreement(0, "Wq", "M/M/3", True, measured.mean + 1.0, measured).agrees


def test_theory_rows_say_when_a_no_comes_from_zero_spread():
    from analysis.agreement import Agreement
    from analysis.estimate import Estimate, mean_ci
    from analysis.summary_table import theory_rows

    deterministic = Estimate(0.9999, 0.9999, 0.9999, 20)  # every replication alike: a D/D/c cell
    noisy = mean_ci([2.5, 2.9, 3.0, 2.6, 3.0])
    rows = theory_rows([Agreement(0, "utilisation", "min(rho, 1)", False, 1.0, deterministic),
                        Agreement(1, "Wq", "M/M/3", True, noisy.mean + 1.0, noisy)], [])  # fmt: skip
    assert rows[0]["in 95% CI"] == rows[0]["within tolerance (99% CI)"] == "no (zero spread)"
    assert rows[0]["relative error"] == "-0.01%"  # not "-0.0%"
    assert rows[1]["in 95% CI"] == rows[1]["within tolerance (99% CI)"] == "no"
