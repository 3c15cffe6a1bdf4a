"""Input checks (heavy tails) and the report of a run with failed cells: nothing silently wrong."""

from __future__ import annotations

import json
import math
import shutil
import xml.etree.ElementTree as ET
from pathlib import Path

import matplotlib.image
import numpy as np
import pandas as pd
import pytest

from analysis.behaviour_plots import BEHAVIOUR_CHARTS
from analysis.cell_stats import summarize
from analysis.inputs import ROUNDING, input_checks
from analysis.load import ResultsError, open_run
from analysis.plots import CHARTS
from analysis.report import write_report
from analysis.summary_table import summary_table
from analysis.time_plots import TIME_CHARTS

HEAVY = (1, "exp:1", "pareto:2.5:1.0001")  # mean 2.5 s, but sample means near 0.002 s
LIGHT = [(1, "exp:1", "exp:0.5"), (2, "uniform:0:2", "uniform:0:3")]


def _not_blank(path: Path) -> None:
    pixels = matplotlib.image.imread(path)
    assert float(np.var(pixels[..., :3])) > 1e-3, f"{path.name} looks blank"


def _warnings(path: Path) -> list[str]:
    return [check.warning() for s in summarize(open_run(path)) for check in s.warnings]


# -- heavy tails --------------------------------------------------------------------------------


@pytest.mark.parametrize("replications", [1, 3])
def test_a_heavy_tail_that_misses_its_mean_is_warned_of(tmp_path, replications, write_run):
    path = write_run(tmp_path / "heavy", [HEAVY, *LIGHT], duration=1000.0, replications=replications, seed=3)
    lines = _warnings(path)
    assert len(lines) == 1, lines
    line = lines[0]
    assert line.startswith("cell 0 (workers=1 arrival=exp:1 service=pareto:2.5:1.0001 maxsize=0): service time ")
    assert "pareto:2.5:1.0001: measured mean 0.00" in line and "the spec's mean is 2.5 s" in line
    basis = "99% t interval over 3 replications" if replications == 3 else "99% normal interval over"
    assert basis in line and "\n" not in line


def test_warnings_follow_the_summary_table(tmp_path, write_run):
    path = write_run(tmp_path / "heavy", [HEAVY, *LIGHT], duration=1000.0, replications=3, seed=3)
    text = summary_table(path)
    table, _, rest = text.partition("\n\nwarnings:\n")
    assert len(table.splitlines()) == 2 + 1 + 3  # title, header, rule, one row per cell
    assert rest.splitlines() == [f"  warning: {line}" for line in _warnings(path)]


@pytest.mark.parametrize("replications", [1, 4])
def test_light_tailed_seeded_inputs_raise_no_warning(tmp_path, replications, write_run):
    path = write_run(tmp_path / "light", LIGHT, duration=2000.0, replications=replications, seed=8)
    assert _warnings(path) == []
    assert "warnings:" not in summary_table(path)


@pytest.mark.parametrize("replications", [1, 3])
def test_nanosecond_rounding_is_no_false_alarm(tmp_path, replications, write_run):
    """Every draw of const:0.3333333333 sleeps 0.333333333 s; the 1 ns widening covers that."""
    path = write_run(tmp_path / "third", [(1, "const:0.3333333333", "exp:0.2")], duration=300.0,
                     replications=replications, seed=2)  # fmt: skip
    arrival = summarize(open_run(path))[0].inputs[0]
    assert arrival.measured.mean == pytest.approx(0.333333333, abs=1e-12)  # float sums of whole ns
    assert arrival.measured.high - ROUNDING < arrival.expected  # without the widening it would warn
    assert arrival.ok and _warnings(path) == []


def _light_rows(rng: np.random.Generator, replications: int, draws: int) -> pd.DataFrame:
    """Rows of a cell whose inter-arrival and service draws are exponential with the specs' means."""
    gaps = rng.exponential(1.0, (replications, draws - 1))
    work = rng.exponential(0.5, (replications, draws))
    return pd.DataFrame({"n_put": draws, "n_done": draws, "arrival_obs_mean": gaps.mean(1),
                         "arrival_obs_sd": gaps.std(1, ddof=1), "service_obs_mean": work.mean(1),
                         "service_obs_sd": work.std(1, ddof=1)})  # fmt: skip


@pytest.mark.parametrize("replications", [1, 5])
def test_false_alarms_on_light_tails_are_about_one_percent(replications):
    """2000 cells of exponential draws: the 99% interval misses the mean about 1% of the time per
    check; four binomial standard deviations bound the count (a false failure rate of ~6e-5)."""
    rng = np.random.default_rng(17)
    params = {"workers": 1, "arrival": "exp:1", "service": "exp:0.5", "maxsize": 0, "arrival_mean": 1.0,
              "service_mean": 0.5}  # fmt: skip
    trials = 2000
    misses = sum(not c.ok for _ in range(trials) for c in input_checks(0, _light_rows(rng, replications, 400), params))
    checks = 2 * trials
    assert abs(misses / checks - 0.01) < 4 * math.sqrt(0.01 * 0.99 / checks)


# -- failed cells, report/ as a file, an interrupted run ----------------------------------------


@pytest.fixture(scope="module")
def with_failure(tmp_path_factory, write_run):
    """A run with a failed cell and a heavy-tailed one, and its report (built once)."""
    grid = [(2, "const:1", "uniform:0:5"), (3, "const:1", "uniform:0:5"), HEAVY, (2, "exp:1", "exp:1.5")]
    path = write_run(tmp_path_factory.mktemp("failed") / "run", grid, duration=600.0, replications=3, seed=3,
                     failed={1: "Deadlock: every task waits: worker-0, worker-1"})  # fmt: skip
    write_report(path, progress=False)
    return path


def _section(markdown: str, title: str) -> str:
    return markdown.split(f"## {title}\n\n", 1)[1].split("\n\n## ", 1)[0]


def test_report_of_a_run_with_a_failed_cell_draws_the_good_cells_and_lists_the_failed_one(with_failure):
    folder = with_failure / "report"
    for name in (n for n in CHARTS if n not in (*BEHAVIOUR_CHARTS, *TIME_CHARTS)):
        _not_blank(folder / f"{name}.png")
    markdown = (folder / "report.md").read_text(encoding="utf-8")
    assert _section(markdown, "Failed cells").splitlines()[2] == (
        "| 1 | workers=3 arrival=const:1 service=uniform:0:5 maxsize=0 | 3 of 3 | "
        "Deadlock: every task waits: worker-0, worker-1 |")  # fmt: skip
    cells = _section(markdown, "Cells (95% confidence intervals)")
    assert [line.split(" | ")[0] for line in cells.splitlines()[2:]] == ["| 0", "| 2", "| 3"]
    page = (folder / "index.html").read_text(encoding="utf-8")
    ET.fromstring(page.split("\n", 1)[1])
    assert "Deadlock: every task waits" in page and "Failed cells" in page


def test_the_report_has_a_visible_warnings_section(with_failure):
    folder = with_failure / "report"
    markdown = (folder / "report.md").read_text(encoding="utf-8")
    assert _section(markdown, "Warnings") == f"- **warning:** {_warnings(with_failure)[0]}"
    page = (folder / "index.html").read_text(encoding="utf-8")
    root = ET.fromstring(page.split("\n", 1)[1])
    assert [e for e in root.iter("h2") if e.text == "Warnings"]
    assert "pareto:2.5:1.0001: measured mean" in page and page.index(">Warnings<") < page.index("Cells (")


def test_summary_table_lists_the_failed_cell_with_its_error(with_failure):
    text = summary_table(with_failure)
    assert text.splitlines()[0] == "run: 4 cells, 1 with failed replications"
    assert len(_warnings(with_failure)) == 1  # the heavy tail, and nothing about the failed cell
    assert ("  cell 1 (workers=3 arrival=const:1 service=uniform:0:5 maxsize=0): 3 of 3 replications failed: "
            "Deadlock: every task waits: worker-0, worker-1") in text.splitlines()  # fmt: skip


def test_report_of_a_run_where_every_cell_failed_still_writes(tmp_path, write_run):
    path = write_run(tmp_path / "none", [(1, "exp:1", "exp:0.5")], duration=100.0, replications=2, failed={0: "boom"})
    index = write_report(path, progress=False)
    assert all(
        (index.parent / f"{name}.png").exists() for name in CHARTS if name not in (*BEHAVIOUR_CHARTS, *TIME_CHARTS)
    )
    assert "| 0 | workers=1 arrival=exp:1 service=exp:0.5 maxsize=0 | 2 of 2 | boom |" in (
        index.parent / "report.md").read_text(encoding="utf-8")  # fmt: skip


def test_report_folder_that_is_a_file_is_one_clear_error(with_failure, tmp_path, capsys):
    from bench.cli import main

    path = shutil.copytree(with_failure, tmp_path / "blocked")
    shutil.rmtree(path / "report", ignore_errors=True)
    (path / "report").write_text("not a folder")
    with pytest.raises(ResultsError, match="exists and is not a folder"):
        write_report(path, progress=False)
    assert main(["report", str(path), "--no-progress"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("qbench: error: cannot write the report:")


def test_report_of_a_run_interrupted_before_any_cell_finished(with_failure, tmp_path):
    path = tmp_path / "early"
    path.mkdir()
    manifest = json.loads((with_failure / "manifest.json").read_text())
    (path / "manifest.json").write_text(json.dumps({**manifest, "status": "interrupted"}))
    with pytest.raises(ResultsError, match=r"no finished cells yet.*finish it with: qbench run --resume"):
        write_report(path, progress=False)


def test_a_chart_that_cannot_be_written_is_one_clear_error(with_failure, tmp_path):
    path = shutil.copytree(with_failure, tmp_path / "chart")
    (path / "report" / "backlog.png").unlink()
    (path / "report" / "backlog.png").mkdir()  # a folder where the chart goes
    with pytest.raises(ResultsError, match=r"cannot write the chart .*backlog\.png") as err:
        write_report(path, progress=False)
    assert "\n" not in str(err.value)
