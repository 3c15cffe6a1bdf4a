"""Record levels: an items run, a sample run and a summary run of the same seed report and compare
the same figures; what each keeps on disk; the digests they all keep."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from analysis.load import open_run, read_digests, read_items
from bench.digest import Digest, Digester
from bench.grid import make_grid, streams
from bench.recurrence import run_recurrence

ROOT = Path(__file__).resolve().parents[1]
QBENCH = [sys.executable, "-m", "bench"]
GRID = ["--workers", "2,3", "--arrival", "exp:1", "--service", "exp:1.7", "--items", "6000", "--replications", "4",
        "--seed", "31", "--no-progress", "--no-summary"]  # fmt: skip


def _qbench(*args) -> subprocess.CompletedProcess:
    return subprocess.run([*QBENCH, *map(str, args)], capture_output=True, text=True, cwd=ROOT)


@pytest.fixture(scope="module")
def runs(tmp_path_factory) -> dict[str, Path]:
    """The same grid and seed recorded at each level, each with its report."""
    base = tmp_path_factory.mktemp("levels")
    out = {}
    for level in ("items", "sample:0.1", "summary"):
        folder = base / level.replace(":", "-")
        done = _qbench("run", "--out", folder, *GRID, "--record", level, "--report")
        assert done.returncode == 0, done.stderr
        out[level] = folder
    return out


def _figures(report: Path) -> str:
    """The report without what differs by construction: the run's name, its metadata and the files."""
    text = report.read_text(encoding="utf-8")
    text = text.split("## Run\n")[0]
    return re.sub(r"qbench report: \S+", "", text)


def test_every_level_reports_the_same_figures(runs):
    items = _figures(runs["items"] / "report" / "report.md")
    assert "exp:1.7" in items and "M/M/2" in items  # the cells, and theory beside them
    for level in ("sample:0.1", "summary"):
        assert _figures(runs[level] / "report" / "report.md") == items, level


def test_every_level_compares_the_same(runs):
    outputs = []
    for folder in runs.values():
        done = _qbench("compare", f"{folder}:workers=2", f"{folder}:workers=3", "--metric", "wait_p99",
                       "--metric", "sojourn_mean", "--metric", "utilisation")  # fmt: skip
        assert done.returncode == 0, done.stderr
        outputs.append(done.stdout.replace(str(folder), "RUN"))
    assert outputs[0] == outputs[1] == outputs[2]
    assert "paired t" in outputs[0]  # the digests' first items show the common random numbers


def test_a_summary_run_keeps_no_items_and_says_so(runs):
    folder = runs["summary"]
    assert not list((folder / "items").glob("*.parquet")) and not list((folder / "depth").glob("*.parquet"))
    assert len(list((folder / "digests").glob("*.parquet"))) == 2
    report = (folder / "report" / "report.md").read_text(encoding="utf-8")
    assert "| record | summary: no item or depth files;" in report
    assert (folder / "report" / "backlog.png").exists() and (folder / "report" / "sojourn_cdf.png").exists()


def test_a_sample_keeps_a_seeded_fraction_of_the_items_unchanged(runs, tmp_path):
    full = read_items(open_run(runs["items"]), join=False)
    sample = read_items(open_run(runs["sample:0.1"]), join=False)
    n = len(full)  # 2 cells x 4 replications x 6,000 items
    assert n == 48_000 and abs(len(sample) - 0.1 * n) <= 5 * np.sqrt(n * 0.1 * 0.9)
    joined = sample.merge(full, on=["cell", "replication", "item"], suffixes=("", "_all"))
    assert len(joined) == len(sample)
    for column in ("t_put", "wait", "sojourn", "worker", "status"):
        assert joined[column].equals(joined[f"{column}_all"].rename(column)), column
    again = tmp_path / "again"
    assert _qbench("run", "--out", again, *GRID, "--record", "sample:0.1").returncode == 0
    assert read_items(open_run(again), join=False).equals(sample)  # seeded: the same rows every time


@pytest.mark.parametrize("level", ["sample:0", "sample:1.5", "sample:x", "everything"])
def test_a_bad_record_level_is_one_line(tmp_path, level):
    done = _qbench("run", "--out", tmp_path / "r", *GRID, "--record", level)
    assert done.returncode == 2 and len(done.stderr.strip().splitlines()) == 1, done.stderr
    assert "bad record level" in done.stderr and "Traceback" not in done.stderr


def test_a_damaged_digest_is_found_on_resume_and_its_cell_runs_again(runs, tmp_path):
    out = tmp_path / "run"
    subprocess.run(["cp", "-r", str(runs["summary"]), str(out)], check=True)
    victim = out / "digests" / "cell-00001.parquet"
    data = bytearray(victim.read_bytes())
    data[len(data) // 2] ^= 0xFF
    victim.write_bytes(bytes(data))
    done = _qbench("run", "--resume", out, "--no-progress", "--no-summary")
    assert done.returncode == 0, done.stderr
    assert victim.read_bytes() == (runs["summary"] / "digests" / "cell-00001.parquet").read_bytes()


def _digested(batch: int) -> tuple[Digest, Digest, dict[str, np.ndarray]]:
    """One M/M/2 replication digested while it runs in batches of ``batch`` items, and from its
    whole columns at once; and those columns."""
    grid = make_grid({"workers": [2], "arrival": "exp:1", "service": "exp:1.8", "duration": 20000.0, "seed": 5})
    cell = grid.cells()[0]
    kept: list[dict[str, np.ndarray]] = []
    digester = Digester(2)

    class Tee:
        def items(self, columns):
            kept.append({k: np.array(v) for k, v in columns.items()})
            digester.items(columns)

        def depth(self, columns):
            digester.depth(columns)

    done = run_recurrence(grid.scenario(cell), *streams(grid.seed, cell, 0), Tee(), batch=batch)
    columns = {k: np.concatenate([b[k] for b in kept]) for k in kept[0]}
    return digester.finish(done.t_end), Digest.of(columns, 2, t_end=done.t_end), columns


@pytest.mark.parametrize("batch", [777, 65536])
def test_a_digest_does_not_depend_on_how_the_items_arrived(batch):
    streamed, whole, columns = _digested(batch)
    assert streamed.mser_batch == whole.mser_batch and streamed.segment == whole.segment
    np.testing.assert_allclose(streamed.mser_sums, whole.mser_sums, rtol=1e-12)
    for kind in ("wait", "sojourn", "service"):
        assert np.array_equal(streamed.keys[kind], whole.keys[kind])
        assert np.array_equal(streamed.tallies[kind], whole.tallies[kind])
        assert streamed.counts[kind].sum() == np.isfinite(columns[kind]).sum()
    np.testing.assert_allclose(streamed.busy, whole.busy, rtol=1e-9, atol=1e-6)


def test_the_busy_and_queue_integrals_are_exact_at_the_bin_boundaries():
    digest, _, columns = _digested(4096)

    def occupied(start, end, x):
        end = np.where(np.isnan(end), digest.t_end, end)
        return float(np.clip(np.minimum(end, x) - start, 0, None)[~np.isnan(start)].sum())

    for k in (1, 17, 100, len(digest.busy) - 1):
        x = k * digest.bin_width
        taken = ~np.isnan(columns["t_get"])
        busy = occupied(columns["t_get"][taken], columns["t_done"][taken], x)
        queue = occupied(columns["t_put"], columns["t_get"], x)
        assert digest.busy[k] == pytest.approx(busy, rel=1e-9, abs=1e-6)
        assert digest.queue[k] == pytest.approx(queue, rel=1e-9, abs=1e-6)


def test_digests_hold_every_replication_of_each_cell(runs):
    run = open_run(runs["summary"])
    for cell in run.params.index:
        found = read_digests(run, int(cell))
        rows = run.cells[run.cells["cell"] == cell]
        assert [d.replication for d in found] == sorted(rows["replication"])
        assert [d.items for d in found] == list(rows.sort_values("replication")["n_put"])


def test_a_summary_run_of_a_daily_cycle_gives_depth_per_window_from_its_digests(tmp_path):
    """Depth per window comes from the digests' queue integrals: exact at time-bin boundaries, linear
    inside a bin, so within a bin's share of the window of the items run's figure; latency per
    window needs single items and is left out (NaN), not guessed."""
    from analysis.cell_stats import summarize
    from analysis.windows import cell_windows

    cycle = ["--workers", "6", "--arrival", "sine:0.5:0.6:86400", "--service", "exp:10", "--duration", "86400",
             "--replications", "2", "--seed", "4", "--no-progress", "--no-summary"]  # fmt: skip
    found = {}
    for level in ("items", "summary"):
        done = _qbench("run", "--out", tmp_path / level, *cycle, "--record", level)
        assert done.returncode == 0, done.stderr
        run = open_run(tmp_path / level)
        found[level] = cell_windows(run, summarize(run)[0])
    full, summary = found["items"].windows, found["summary"].windows
    assert len(full) == len(summary) >= 24
    digests = read_digests(open_run(tmp_path / "summary"), 0)
    peak = max(full, key=lambda w: w.depth.mean)
    assert peak.depth.mean > 1000  # the afternoon's queue
    for a, b in zip(full, summary):
        # interpolating a cumulative integral inside a bin of width w errs by at most w (M - m) / 4, M and
        # m the depth's extremes in the bin (m >= 0), at each end of the window; averaged over replications
        bound = np.mean([sum(d.bin_width / 4 * d.depth_max[min(int(t // d.bin_width), len(d.depth_max) - 1)]
                             for t in (a.start, a.end) if t % d.bin_width) for d in digests]) / (a.end - a.start)  # fmt: skip
        assert abs(a.depth.mean - b.depth.mean) <= bound + 1e-9, (a.start, a.depth, b.depth, bound)
        assert np.isnan(b.latency["wait_p99"].mean) and not np.isnan(a.latency["wait_p99"].mean)
