"""Charts, report, summary and compare: rendered, not blank, well formed, end to end through the CLI."""

from __future__ import annotations

import csv
import io
import json
import re
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import matplotlib.image
import numpy as np
import pytest

from analysis.behaviour_plots import BEHAVIOUR_CHARTS
from analysis.compare import compare_runs, format_comparison, parse_selection, plot_comparison
from analysis.load import ResultsError
from analysis.plots import CHARTS
from analysis.report import write_report
from analysis.summary_table import summary_table
from analysis.time_plots import TIME_CHARTS

ROOT = Path(__file__).resolve().parents[1]
#: The charts every report has (those of behaviours, and over time, are drawn only for runs that have some).
ALWAYS = [name for name in CHARTS if name not in (*BEHAVIOUR_CHARTS, *TIME_CHARTS)]


@pytest.fixture(scope="module")
def synthetic(tmp_path_factory, write_run):
    grid = [(c, "const:1", "uniform:0:5") for c in (2, 3)] + [(c, "exp:1", "exp:1.5") for c in (1, 2)]
    return write_run(tmp_path_factory.mktemp("report") / "syn", grid, duration=600.0, replications=3)


def _not_blank(path: Path) -> None:
    pixels = matplotlib.image.imread(path)
    assert pixels.shape[0] > 200 and pixels.shape[1] > 300
    assert float(np.var(pixels[..., :3])) > 1e-3, f"{path.name} looks blank"


@pytest.fixture(scope="module")
def synthetic_report(synthetic):
    return write_report(synthetic, progress=False)


def test_report_writes_every_chart_and_a_well_formed_page(synthetic, synthetic_report):
    index = synthetic_report
    assert index == synthetic / "report" / "index.html"
    for name in ALWAYS:
        _not_blank(index.parent / f"{name}.png")
        assert (index.parent / f"{name}.svg").stat().st_size > 1000
    text = index.read_text(encoding="utf-8")
    root = ET.fromstring(text.split("\n", 1)[1])  # XML-well-formed after the doctype line
    links = [e.get("src") or e.get("href") for e in root.iter() if e.tag in ("img", "a")]
    assert len(links) == 2 * len(ALWAYS)
    assert all((index.parent / link).is_file() and not Path(link).is_absolute() for link in links)
    assert "overloaded" in text and "stable" in text and "M/M/2 (Erlang C)" in text
    markdown = (index.parent / "report.md").read_text(encoding="utf-8")
    assert markdown.count("![") == len(ALWAYS) and "| cell |" in markdown


def test_summary_table_has_one_line_per_cell(synthetic):
    table = summary_table(synthetic)
    lines = table.splitlines()
    assert len(lines) == 3 + 4 and "verdict" in lines[1] and "±" in table
    assert re.search(r"^0\s+2\s+const:1\s+uniform:0:5\s+0\s+1\.25\s+-\s.*overloaded", lines[3])


def test_selection_syntax(tmp_path):
    assert parse_selection("results/x:workers=3").filters == {"workers": "3"}
    sel = parse_selection("results/x:arrival=exp:1,service=uniform:0:5")
    assert sel.path == Path("results/x") and sel.filters == {"arrival": "exp:1", "service": "uniform:0:5"}
    odd = tmp_path / "a:b"
    odd.mkdir()
    assert parse_selection(str(odd)).path == odd
    assert parse_selection(f"{odd}:workers=2").filters == {"workers": "2"}
    with pytest.raises(ResultsError):
        parse_selection("results/x:workers")


def test_compare_pairs_common_random_numbers_and_reports_mismatches(synthetic, tmp_path):
    result = compare_runs(f"{synthetic}:workers=2", f"{synthetic}:workers=3", metrics=["wait_p99", "throughput"])
    # only const:1/uniform has both 2 and 3 workers; exp:1/exp:1.5 has 2 only on side A
    assert [k for _, _, k in result.pairs] == ["arrival=const:1 service=uniform:0:5 maxsize=0"]
    assert result.only_a == ["arrival=exp:1 service=exp:1.5 maxsize=0"]
    p99 = next(r for r in result.rows if r.metric == "wait_p99")
    assert p99.paired and p99.diff.high < 0 and p99.verdict.endswith("faster")
    assert result.differences == [] and list(result.tests.values())[0].startswith("paired t")
    for fmt in ("md", "csv", "table"):
        assert "wait_p99" in format_comparison(result, fmt)
    assert format_comparison(result, "csv").splitlines()[0].startswith("cells,metric,A,B")
    for path in plot_comparison(result, tmp_path):
        assert path.exists()
    _not_blank(tmp_path / "compare_backlog.png")
    with pytest.raises(ResultsError, match="unknown key"):
        compare_runs(f"{synthetic}:colour=red", str(synthetic))


def _cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "bench", *args], cwd=ROOT, capture_output=True, text=True, timeout=300)


@pytest.fixture(scope="module")
def real_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("e2e") / "seed"
    done = _cli("run", "--out", str(out), "--workers", "2,3,4", "--arrival", "const:1", "--service", "uniform:0:5",
                "--duration", "1500", "--replications", "4", "--seed", "1", "--jobs", "1", "--no-progress",
                "--no-summary")  # fmt: skip
    assert done.returncode == 0, done.stderr
    return out


def test_cli_report_end_to_end(real_run):
    done = _cli("report", str(real_run), "--no-progress")
    assert done.returncode == 0, done.stderr
    index = real_run / "report" / "index.html"
    ET.fromstring(index.read_text(encoding="utf-8").split("\n", 1)[1])
    for name in ALWAYS:
        _not_blank(index.parent / f"{name}.png")


def test_cli_compare_workers_3_and_4_reports_p99_difference_with_ci(real_run, tmp_path):
    done = _cli(
        "compare", f"{real_run}:workers=3", f"{real_run}:workers=4", "--format", "csv", "--chart", str(tmp_path)
    )
    assert done.returncode == 0, done.stderr
    p99 = next(row for row in csv.DictReader(io.StringIO(done.stdout)) if row["metric"] == "wait_p99")
    low, high = (float(v) for v in p99["B-A 95% CI"].strip("[]").split(","))
    assert low < float(p99["B-A"]) < high < 0 and p99["test"] == "paired t", p99  # CRN: paired
    assert (tmp_path / "compare_backlog.png").exists()


def test_cli_seed_verdicts_on_a_real_run(real_run):
    from analysis.cell_stats import summarize
    from analysis.load import open_run

    verdicts = {s.params["workers"]: s.growth for s in summarize(open_run(real_run))}
    assert verdicts[2].verdict == "overloaded" and verdicts[2].slope.contains(0.2)
    assert verdicts[3].verdict == "stable" and verdicts[4].verdict == "stable"


@pytest.fixture(scope="module")
def run_with_targets(tmp_path_factory):
    out = tmp_path_factory.mktemp("slo") / "seed"
    done = _cli("run", "--out", str(out), "--workers", "2,3,4", "--arrival", "const:1", "--service", "uniform:0:5",
                "--duration", "2000", "--replications", "5", "--seed", "1", "--jobs", "1", "--no-progress",
                "--no-summary", "--slo", "wait_p99<=5", "--report")  # fmt: skip
    assert done.returncode == 0, done.stderr
    return out


def test_run_stores_its_targets_in_the_manifest_and_resume_keeps_them(run_with_targets):
    manifest = json.loads((run_with_targets / "manifest.json").read_text())
    assert manifest["grid"]["slo"] == ["wait_p99<=5"]
    done = _cli("run", "--resume", str(run_with_targets), "--no-progress", "--no-summary")
    assert done.returncode == 0, done.stderr
    assert json.loads((run_with_targets / "manifest.json").read_text())["grid"]["slo"] == ["wait_p99<=5"]


def test_the_report_leads_with_how_many_workers(run_with_targets):
    page = (run_with_targets / "report" / "index.html").read_text(encoding="utf-8")
    heads = re.findall(r"<h2[^>]*>([^<]+)</h2>", page)
    assert heads[0] == "How many workers?"
    assert heads.index("Warnings") < heads.index("Cells (95% confidence intervals)") < heads.index("Run")
    root = ET.fromstring(page.split("\n", 1)[1])
    section = next(e for e in root.iter("section") if e.get("id") == "answer")
    table = next(section.iter("table"))
    header = [th.text for th in table.iter("th")]
    row = [td.text for td in table.iter("td")]
    answer = dict(zip(header, row))
    assert answer["fewest workers with a stable backlog"] == "3"
    assert answer["fewest workers meeting every target (95%)"] == "3"
    assert answer["one worker fewer"].startswith("2: unstable")
    assert [img.get("src") for img in section.iter("img")] == ["backlog.png", "targets.png"]
    _not_blank(run_with_targets / "report" / "targets.png")
    markdown = (run_with_targets / "report" / "report.md").read_text(encoding="utf-8")
    assert markdown.split("\n## ")[1].startswith("How many workers?")


def test_a_report_without_targets_names_the_fewest_stable_count_and_says_how_to_add_targets(synthetic_report):
    page = synthetic_report.read_text(encoding="utf-8")
    lead = page[page.index('<section id="answer">') : page.index("</section>")]
    assert "qbench run --slo" in lead and "targets.png" not in lead
    assert "<td>const:1</td><td>uniform:0:5</td><td>0</td><td>3</td><td>2: overloaded</td>" in lead


def test_a_run_with_behaviours_reports_what_became_of_the_items_its_classes_and_their_theory(tmp_path):
    from bench.grid import make_grid
    from bench.runner import run_grid

    grid = make_grid({"workers": [2], "arrival": "exp:0.6", "service": "exp:1", "discipline": ["fifo", "priority"],
                      "classes": "gold:0.3,tin:0.7", "patience": ["none", "exp:4"], "items": 4000,
                      "replications": 3, "seed": 2})  # fmt: skip
    run = tmp_path / "run"
    run_grid(run, grid, jobs=1, progress=False)
    index = write_report(run, progress=False)
    markdown = (run / "report" / "report.md").read_text()
    for section in ("## What became of the items", "## Classes (95% confidence intervals)", "Wq[gold]", "Wq[tin]",
                    "M/M/2 non-preemptive priority (Cobham)", "P(abandon)", "M/M/2+M (Erlang-A)"):  # fmt: skip
        assert section in markdown, section
    for chart in BEHAVIOUR_CHARTS:
        assert (run / "report" / f"{chart}.png").exists() and f"{chart}.png" in index.read_text()
    # the FIFO formulas are not applied to abandonment cells: no Wq row for them
    assert not [line for line in markdown.splitlines() if "| Wq |" in line and "patience" in line]


def test_a_plain_run_has_no_behaviour_tables_or_charts(synthetic, tmp_path):
    import shutil

    copy = shutil.copytree(synthetic, tmp_path / "plain")
    write_report(copy, progress=False)
    markdown = (copy / "report" / "report.md").read_text()
    assert "## What became of the items" not in markdown and "## Classes" not in markdown
    assert not (copy / "report" / "classes.png").exists() and not (copy / "report" / "outcomes.png").exists()
