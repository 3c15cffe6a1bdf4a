"""The steady-state estimator (analysis/quantiles.py): its definition, and its answers against exact
queueing results; report, compare and plan all take their latency figures from it."""

from __future__ import annotations

import math

import numpy as np
import pytest

from analysis.cell_stats import cell_stats
from analysis.compare import compare_runs
from analysis.load import open_run
from analysis.quantiles import (
    Sample,
    estimate,
    estimates,
    first_kept_item,
    run_samples,
    section_difference,
    sectioning,
    warmup,
)
from analysis.student_t import t_quantile
from analysis.theory import erlang_c, mmc_wait_quantile
from bench.grid import make_grid, streams
from bench.replication import engine
from bench.replication_stats import log_slots, slot_value

COLUMNS = ("wait", "sojourn", "service", "t_put", "t_get", "t_done")


class _Keep:
    """A sink keeping the item columns the estimator reads."""

    def __init__(self) -> None:
        self.batches: list[dict[str, np.ndarray]] = []

    def items(self, columns) -> None:
        self.batches.append({k: np.array(columns[k], dtype=float) for k in COLUMNS})

    def depth(self, columns) -> None:
        return None

    def columns(self) -> dict[str, np.ndarray]:
        return {k: np.concatenate([b[k] for b in self.batches]) for k in COLUMNS}


def _replications(arrival: str, service: str, workers: int, items: int, count: int, seed: int) -> list[Sample]:
    """``count`` replications of ``items`` items on the recurrence engine."""
    grid = make_grid(dict(workers=[workers], arrival=arrival, service=service, items=items, seed=seed,
                          engine="recurrence"))  # fmt: skip
    cell, run = grid.cells()[0], engine("recurrence")
    samples = []
    for r in range(count):
        keep = _Keep()
        run(grid.scenario(cell), *streams(seed, cell, r), keep)
        samples.append(Sample(r, workers, keep.columns()))
    return samples


def _within(est, exact: float, level: float = 0.999) -> bool:
    """``exact`` lies in the estimate's interval widened from its level to ``level``."""
    scale = t_quantile(0.5 + level / 2, est.n - 1) / t_quantile(0.5 + est.level / 2, est.n - 1)
    return abs(est.mean - exact) <= scale * est.half_width


def _bin_centre(value: float) -> float:
    """Where the digests' log-histogram reports a quantile that is ``value``: its bin's geometric centre."""
    return slot_value(int(log_slots(np.array([value]))[0]))


def test_pooled_point_and_sectioning_interval_by_their_definitions():
    rng = np.random.default_rng(1)
    samples = [Sample(r, 2, {"wait": rng.exponential(1.0 + r / 10, 400)}) for r in range(6)]
    cut = warmup(samples)
    found = estimate(samples, "wait_p95", cut)
    kept = [s.columns["wait"][first_kept_item(s, cut) :] for s in samples]
    pooled = np.concatenate(kept)
    exact = float(np.quantile(pooled, 0.95, method="inverted_cdf"))  # the smallest value with >= 95% at or below
    point = _bin_centre(exact)
    sections = [_bin_centre(float(np.quantile(k, 0.95, method="inverted_cdf"))) for k in kept]
    half = t_quantile(0.975, 5) * math.sqrt(sum((x - point) ** 2 for x in sections) / 5) / math.sqrt(6)
    assert found.estimate.mean == point and list(found.sections) == sections
    assert point == pytest.approx(exact, rel=0.00116)  # half a bin: the histogram's stated resolution
    assert found.estimate.low == pytest.approx(point - half) and found.estimate.high == pytest.approx(point + half)
    assert found.estimate.n == 6 and found.count == len(pooled)


def test_one_replication_has_no_interval():
    est = sectioning(3.0, np.array([3.0]))
    assert est.mean == 3.0 and math.isnan(est.low) and math.isnan(est.high)


def test_the_warm_up_is_cut_from_every_replication():
    """Waits that start low and settle: MSER-5 on the ensemble finds the transient, every replication loses it."""
    rng = np.random.default_rng(2)
    level = 10 * (1 - np.exp(-np.arange(5000) / 200))
    samples = [Sample(r, 1, {"wait": level + rng.normal(0, 1, 5000)}) for r in range(8)]
    cut = warmup(samples)
    found = estimate(samples, "wait_mean", cut)
    assert 300 <= found.cut <= 2000 and found.settled
    start = first_kept_item(samples[0], cut)
    assert found.cut <= start < found.cut + 5000 / 16  # rounded up to a segment (at least 16 per run)
    assert found.estimate.mean == pytest.approx(np.mean([s.columns["wait"][start:] for s in samples]))
    assert _within(found.estimate, float(level[start:].mean()))  # the kept part's true mean


def test_censored_waits_are_left_out():
    samples = [Sample(0, 1, {"wait": np.array([1.0, 2.0, 3.0, np.nan])}), Sample(1, 1, {"wait": np.array([4.0])})]
    assert estimate(samples, "wait_mean").estimate.mean == pytest.approx(2.5)


@pytest.fixture(scope="module")
def mm3():
    """M/M/3 at rho = 0.83: 20 replications of 40,000 items (exact answers known)."""
    return _replications("exp:1", "exp:2.5", 3, 40_000, 20, seed=7)


@pytest.mark.parametrize("level", [0.5, 0.95, 0.99])
def test_wait_percentiles_of_mmc_match_the_exact_quantile(mm3, level):
    found = estimate(mm3, f"wait_p{level * 100:g}")
    assert _within(found.estimate, mmc_wait_quantile(1.0, 2.5, 3, level)), found.estimate


def test_means_utilisation_and_queue_length_of_mmc_match_theory(mm3):
    p_wait = erlang_c(3, 2.5)
    wq = p_wait / (3 / 2.5 - 1.0)
    found, _ = estimates(mm3, ["wait_mean", "sojourn_mean", "utilisation", "depth_mean"])
    assert _within(found["wait_mean"].estimate, wq)
    assert _within(found["sojourn_mean"].estimate, wq + 2.5)
    assert _within(found["utilisation"].estimate, 2.5 / 3)
    assert _within(found["depth_mean"].estimate, 1.0 * wq)  # Little: Lq = lam Wq


def test_pooling_removes_the_bias_of_averaging_short_runs_percentiles():
    """M/M/1 at rho = 0.9, runs of 5,000 items from an empty queue: the mean of per-replication p99s
    (what cells.parquet summarises) is far below the exact 40.5 s; the pooled estimate's interval holds it."""
    samples = _replications("exp:1", "exp:0.9", 1, 5_000, 80, seed=5)
    exact = math.log(0.9 / 0.01) / (1 / 0.9 - 1)
    averaged = np.mean([np.quantile(s.columns["wait"], 0.99, method="inverted_cdf") for s in samples])
    found = estimate(samples, "wait_p99").estimate
    assert averaged < 0.9 * exact
    assert found.low <= exact <= found.high, found


def test_paired_difference_uses_the_replications_common_to_both_sides(mm3):
    four = _replications("exp:1", "exp:2.5", 4, 40_000, 20, seed=7)  # the same arrivals and work: CRN
    a, b = estimate(mm3, "wait_p99"), estimate(four, "wait_p99")
    paired, welch = section_difference(a, b, paired=True), section_difference(a, b, paired=False)
    exact = mmc_wait_quantile(1.0, 2.5, 4, 0.99) - mmc_wait_quantile(1.0, 2.5, 3, 0.99)
    assert paired.mean == welch.mean == pytest.approx(b.estimate.mean - a.estimate.mean)
    assert paired.half_width < welch.half_width  # common random numbers pay
    assert _within(paired, exact)


def test_report_and_compare_show_the_estimators_figures(tmp_path, write_run):
    """One estimator: the report's cell statistics and compare's A and B are the pooled steady-state figures."""
    run = open_run(write_run(tmp_path / "r", [(2, "exp:1", "exp:1.5"), (3, "exp:1", "exp:1.5")], duration=800.0,
                             replications=4))  # fmt: skip
    for cell in (0, 1):
        ours = estimates(run_samples(run, cell), ["wait_p99", "sojourn_p95", "wait_mean"])[0]
        stats = cell_stats(run, cell)
        for metric, steady in ours.items():
            assert stats.metrics[metric] == steady.estimate
    result = compare_runs(f"{run.path}:workers=2", f"{run.path}:workers=3", metrics=["wait_p99"])
    assert result.rows[0].a == cell_stats(run, 0).metrics["wait_p99"]
    assert result.rows[0].b == cell_stats(run, 1).metrics["wait_p99"]
