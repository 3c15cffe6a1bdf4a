"""qbench plan: the search and its stopping rule on a model with a known answer, exactness against
M/M/c, the seed scenario, max load, the evidence folder, and the command line end to end."""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path

import matplotlib.image
import numpy as np
import pytest

from analysis.plan import Budget, Model, plan_json, plan_workers
from analysis.quantiles import Sample
from analysis.theory import mmc_wait_quantile, stable_workers
from bench.cli import main
from bench.results_format import parse_targets

ROOT = Path(__file__).resolve().parents[1]
P99_5 = parse_targets(["wait_p99<=5"])
#: A queue whose offered load is 2.5 Erlangs (so 3 workers are the fewest stable); the search tests
#: give theory nothing (no CVs) and start at 3.
MODEL = Model("exp:1", "exp:2.5", 0, 1.0, 2.5, None, None)


def _fake(p99, noise: float = 0.0, bump: tuple[int, int] | None = None, items: int = 1000):
    """A simulate callback whose waits are exponential with p99 ``p99(workers)``: replication r draws
    the same numbers for every count (common random numbers), so waits fall with workers item by
    item; ``noise`` scales each replication by a random factor; ``bump`` = (workers, replication)
    multiplies that replication's waits by 10 (breaking monotonicity)."""

    def simulate(workers: int, scale: float, replications: range) -> list[Sample]:
        out = []
        for r in replications:
            rng = np.random.default_rng(r)
            waits = rng.exponential(p99(workers) / math.log(100), items) * (1 + noise * rng.standard_normal())
            if bump == (workers, r):
                waits = waits * 10
            out.append(Sample(r, workers, {"wait": waits}))
        return out

    return simulate


def _plan(simulate, **options):
    return plan_workers(MODEL, P99_5, simulate, items=1000, progress=False, **options)


def test_the_answer_meets_and_one_worker_fewer_fails():
    plan = _plan(_fake(lambda c: 40 / (c - 2) ** 2))  # p99: 40, 10, 4.4, 2.5 s for 3..6 workers
    assert plan.decided and plan.answer == 5 and plan.exit_status == 0
    by_count = {c.workers: c.verdict for c in plan.candidates}
    assert by_count[4] == "fails" and by_count[5] == "meets" and by_count[2] == "unstable"


def test_a_far_answer_is_reached_in_logarithmically_many_candidates():
    plan = _plan(_fake(lambda c: 5 * 1.25 ** (40.5 - c)))  # 41 workers: p99 4.47 s; 40: 5.59 s
    assert plan.decided and plan.answer == 41
    assert len(plan.candidates) <= 2 * math.log2(41) + 4  # a gallop up from 3, then bisection


def test_an_undecided_count_leaves_the_conservative_answer_when_the_budget_ends():
    """p99 exactly 5 s at 5 workers: its interval keeps straddling the threshold until the budget ends."""
    plan = _plan(_fake(lambda c: 5.0 if c == 5 else 40 / (c - 2) ** 2), budget=Budget(items=100_000))
    assert not plan.decided and plan.answer == plan.conservative == 6 and plan.undecided == 5
    assert plan.spent_items <= 100_000 and plan.exit_status == 0
    out = plan_json(plan)
    assert out["workers"] == 6 and out["decided"] is False and out["undecided"] == 5
    assert "undecided" in out["answer"] and "raise --budget" in out["answer"]


def test_a_count_doing_better_with_fewer_workers_is_reported():
    plan = _plan(_fake(lambda c: 40 / (c - 2) ** 2, bump=(5, 3)))
    assert not plan.monotone
    assert any("monotonicity does not hold: replication 3" in note for note in plan.notes)


def test_no_count_up_to_the_limit_meets():
    plan = _plan(_fake(lambda c: 300 / (c - 2)), max_workers=20)
    assert plan.decided and plan.answer is None and plan.exit_status == 1
    assert "no count up to 20 workers" in plan.reason


def _json(capsys, *argv: str) -> tuple[int, dict]:
    code = main(["plan", *argv, "--format", "json", "--no-progress"])
    return code, json.loads(capsys.readouterr().out)


def _exact_fewest(lam: float, mean_s: float, level: float, threshold: float) -> int:
    c = stable_workers(lam, mean_s)
    while mmc_wait_quantile(lam, mean_s, c, level) > threshold:
        c += 1
    return c


MMC_CASES = [  # (arrival mean, service mean, percentile, threshold): exact answers 4, 5, 7, 9, 6, 3
    (1.0, 2.5, 99, 10.0),
    (1.0, 2.5, 95, 2.0),
    (0.1, 0.45, 99, 0.8),
    (0.5, 3.3, 95, 3.5),
    (2.0, 7.0, 99, 11.0),
    (1.0, 0.8, 95, 0.1),
]


@pytest.mark.parametrize(("arrival", "service", "percentile", "threshold"), MMC_CASES)
def test_mmc_answer_is_the_exact_fewest_count(capsys, arrival, service, percentile, threshold):
    lam, level = 1 / arrival, percentile / 100
    fewest = _exact_fewest(lam, service, level, threshold)
    # away from the boundary: the threshold is at least 1.3x from the exact quantile on either side
    assert mmc_wait_quantile(lam, service, fewest, level) * 1.3 <= threshold
    if fewest - 1 >= stable_workers(lam, service):
        assert mmc_wait_quantile(lam, service, fewest - 1, level) >= 1.3 * threshold
    code, out = _json(capsys, "--arrival", f"exp:{arrival:g}", "--service", f"exp:{service:g}", "--slo",
                      f"wait_p{percentile}<={threshold:g}", "--engine", "recurrence", "--seed", "1")  # fmt: skip
    assert code == 0 and out["decided"] and out["workers"] == fewest, out["answer"]


def test_seed_scenario_needs_three_workers_for_p99_of_5_seconds(capsys):
    code, out = _json(capsys, "--arrival", "const:1", "--service", "uniform:0:5", "--slo", "wait_p99<=5")
    assert code == 0 and out["workers"] == 3 and out["decided"]
    two = next(c for c in out["candidates"] if c["workers"] == 2)
    assert two["verdict"] == "unstable" and two["source"] == "theory"  # 2 workers: the backlog grows (0.2 items/s)
    three = next(c for c in out["candidates"] if c["workers"] == 3)["targets"]["wait_p99"]
    assert three["high"] <= 5 and three["verdict"] == "meets"


def test_seed_scenario_with_no_wait_at_all_and_two_workers_has_no_answer(capsys):
    code = main(["plan", "--arrival", "const:1", "--service", "uniform:0:5", "--slo", "wait_p99<=0",
                 "--max-workers", "2", "--no-progress"])  # fmt: skip
    text = capsys.readouterr().out
    assert code == 1
    assert "answer: none: no count up to 2 workers meets the targets" in text and "unstable" in text


def test_the_asyncio_engine_gives_the_recurrence_engines_answer_item_for_item(capsys):
    """One plan on the real asyncio program: the same answer and the same estimates, to the bit."""
    common = ["--arrival", "exp:1", "--service", "uniform:0:5", "--slo", "wait_p95<=6", "--items", "20000"]
    code_a, on_asyncio = _json(capsys, *common, "--engine", "asyncio")
    code_r, on_recurrence = _json(capsys, *common, "--engine", "recurrence")
    assert code_a == code_r == 0 and on_asyncio["workers"] == on_recurrence["workers"] == 4
    assert on_asyncio["candidates"] == on_recurrence["candidates"]


def test_a_lower_bound_on_utilisation_failing_at_the_fewest_count_leaves_none(capsys):
    code, out = _json(capsys, "--arrival", "exp:1", "--service", "exp:2.5", "--slo", "wait_p99<=10", "--slo",
                      "utilisation>=0.7")  # fmt: skip
    assert code == 1 and out["workers"] is None and out["decided"]
    assert "fails utilisation>=0.7" in out["reason"]  # 4 workers meet the p99 at utilisation 0.625


def test_a_sojourn_below_the_service_time_is_out_of_reach(capsys):
    code, out = _json(capsys, "--arrival", "exp:1", "--service", "exp:2.5", "--slo", "sojourn_p99<=5")
    assert code == 1 and out["workers"] is None and "service time alone" in out["reason"]
    assert len([c for c in out["candidates"] if c["source"] == "simulation"]) <= 2


def test_max_load_brackets_the_exact_mmc_limit(capsys):
    """4 workers, exp(2.5 s) work, p99 wait <= 10 s: the exact largest arrival rate solves the M/M/4 quantile."""
    low, high = 1.0, 4 / 2.5
    for _ in range(100):
        mid = (low + high) / 2
        low, high = (mid, high) if mmc_wait_quantile(mid, 2.5, 4, 0.99) <= 10 else (low, mid)
    code, out = _json(capsys, "--arrival", "exp:1", "--service", "exp:2.5", "--slo", "wait_p99<=10", "--workers",
                      "4", "--find", "max-load", "--seed", "2")  # fmt: skip
    lo, hi = out["load_interval"]
    assert code == 0 and out["load"] == lo and lo <= low <= hi, (lo, low, hi)
    assert hi / lo - 1 < 0.1
    loads = [c["load"] for c in out["candidates"] if c["source"] == "simulation"]
    assert all(c["verdict"] == "meets" for c in out["candidates"] if c["source"] == "simulation" and c["load"] <= lo)
    assert len(loads) <= 12


def _qbench(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "bench", *args], cwd=ROOT, capture_output=True, text=True,
                          timeout=300)  # fmt: skip


@pytest.fixture(scope="module")
def evidence(tmp_path_factory):
    out = tmp_path_factory.mktemp("plan") / "evidence"
    done = _qbench("plan", "--arrival", "exp:1", "--service", "lognormal:2.5:1.5", "--slo", "wait_p99<=15", "--slo",
                   "utilisation<=0.85", "--out", str(out), "--items", "20000", "--no-progress")  # fmt: skip
    return out, done


def test_the_command_prints_the_table_and_the_answer_line(evidence):
    _, done = evidence
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert lines[0].split() == ["workers", "reps", "wait_p99", "(s)", "utilisation", "verdict"]
    three = next(line for line in lines if line.startswith("3 "))
    assert three.split()[-2:] == ["fails", "wait_p99"]
    answer = next(line for line in lines if line.startswith("answer:"))
    assert answer.startswith("answer: 4 workers (wait_p99 ") and "<= 15 s; 3 workers fail) at 95% confidence" in answer
    assert "Traceback" not in done.stderr


def test_the_evidence_folder_is_a_run_that_report_and_compare_read(evidence):
    out, _ = evidence
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["status"] == "complete" and manifest["grid"]["slo"] == ["wait_p99<=15", "utilisation<=0.85"]
    assert [c["workers"] for c in manifest["cells"]] == [3, 4] and manifest["plan"]["workers"] == 4
    chart = matplotlib.image.imread(out / "report" / "targets.png")
    assert float(np.var(chart[..., :3])) > 1e-3
    report = _qbench("report", str(out), "--no-progress")
    assert report.returncode == 0, report.stderr
    page = (out / "report" / "index.html").read_text(encoding="utf-8")
    assert page.index("How many workers?") < page.index("Warnings") < page.index("<h2>Run</h2>")
    assert "answer: 4 workers" in page
    compare = _qbench("compare", f"{out}:workers=3", f"{out}:workers=4", "--metrics", "wait_p99", "--format", "csv")
    assert compare.returncode == 0, compare.stderr
    assert ",paired t," in compare.stdout  # the candidates share their random numbers
    resume = _qbench("run", "--resume", str(out))
    assert resume.returncode == 2 and "is a plan's evidence" in resume.stderr  # not a grid to finish


def test_a_plan_decided_by_theory_alone_keeps_its_answer_and_no_cells(tmp_path, capsys):
    out = tmp_path / "none"
    code = main(["plan", "--arrival", "const:1", "--service", "uniform:0:5", "--slo", "wait_p99<=0", "--max-workers",
                 "2", "--out", str(out), "--no-progress"])  # fmt: skip
    assert code == 1 and "decided by theory alone" in capsys.readouterr().err
    assert json.loads((out / "manifest.json").read_text())["plan"]["workers"] is None
    assert main(["report", str(out), "--no-progress"]) == 2


def test_json_holds_the_answer_and_every_candidates_estimates():
    done = _qbench("plan", "--arrival", "const:1", "--service", "uniform:0:5", "--slo", "wait_p99<=5",
                   "--format", "json", "--items", "20000", "--no-progress")  # fmt: skip
    assert done.returncode == 0, done.stderr
    out = json.loads(done.stdout)
    assert out["workers"] == 3 and out["decided"] is True
    target = next(c for c in out["candidates"] if c["workers"] == 3)["targets"]["wait_p99"]
    assert set(target) >= {"estimate", "low", "high", "threshold", "op", "verdict"}
    assert target["low"] <= target["estimate"] <= target["high"] <= 5


def test_a_grid_file_plans_every_row_and_gives_one_answer_each(tmp_path, capsys):
    grid = tmp_path / "grid.toml"
    grid.write_text(
        'workers = [1, 2]\narrival = ["const:1", "exp:1"]\nservice = ["uniform:0:5"]\nduration = 100\n'
        'slo = ["wait_p99<=5"]\nseed = 3\n'
    )  # fmt: skip  (workers and duration are the plan's to choose)
    code, out = _json(capsys, str(grid), "--items", "20000")
    assert code == 0 and out["workers"] == [3, 4] and out["decided"]
    assert [(row["arrival"], row["workers"]) for row in out["rows"]] == [("const:1", 3), ("exp:1", 4)]
    assert main(["plan", str(grid), "--items", "20000", "--no-progress"]) == 0
    text = capsys.readouterr().out
    assert "== arrival const:1, service uniform:0:5" in text and "answers, one per row:" in text


@pytest.mark.parametrize(("patience", "threshold"), [(3.0, 0.05), (1.0, 0.2), (5.0, 0.01)])
def test_an_abandonment_target_gets_the_fewest_count_erlang_a_gives(capsys, patience, threshold):
    """With exponential patience (M/M/c+M), P(abandon) is Erlang-A's; cases chosen away from the threshold."""
    from analysis.behaviour_theory import erlang_a

    lam, mean_s = 1.0, 2.0
    rates = {c: erlang_a(lam, mean_s, c, patience).p_abandon for c in range(1, 12)}
    fewest = min(c for c, p in rates.items() if p <= threshold)
    assert rates[fewest] * 1.3 <= threshold and (fewest == 1 or rates[fewest - 1] >= 1.3 * threshold)
    code, out = _json(capsys, "--arrival", f"exp:{1 / lam:g}", "--service", f"exp:{mean_s:g}", "--patience",
                      f"exp:{patience:g}", "--slo", f"abandon_rate<={threshold:g}", "--seed", "2")  # fmt: skip
    assert code == 0 and out["decided"] and out["workers"] == fewest, out["answer"]
