"""The report in a real browser: headless Chromium renders report/index.html with the answer first.

Skipped where no Chromium is installed (Debian: ``apt-get install chromium``); the README's
"Reading the results" section describes the same check by hand.
"""

from __future__ import annotations

import shutil
import subprocess

import matplotlib.image
import numpy as np
import pytest

from analysis.report import write_report

CHROMIUM = next((shutil.which(name) for name in ("chromium", "chromium-browser", "google-chrome") if shutil.which(name)),
                None)  # fmt: skip
pytestmark = pytest.mark.skipif(CHROMIUM is None, reason="no Chromium installed (apt-get install chromium)")


def _chromium(*args: str) -> subprocess.CompletedProcess:
    assert CHROMIUM is not None
    return subprocess.run([CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars", *args],
                          capture_output=True, text=True, timeout=120)  # fmt: skip


@pytest.fixture(scope="module")
def page(tmp_path_factory, write_run, seed_grid):
    run = write_run(tmp_path_factory.mktemp("browser") / "seed", seed_grid, duration=1000.0, replications=3)
    return write_report(run, progress=False)


def test_the_browser_renders_the_answer_first(page):
    dom = _chromium("--dump-dom", page.as_uri())
    assert dom.returncode == 0, dom.stderr
    assert dom.stdout.index("How many workers?") < dom.stdout.index("Warnings") < dom.stdout.index("Method")


def test_the_top_of_the_screenshot_is_the_answer_section(page, tmp_path):
    shot = tmp_path / "report.png"
    done = _chromium("--window-size=1280,1000", f"--screenshot={shot}", page.as_uri())
    assert done.returncode == 0 and shot.exists(), done.stderr
    pixels = matplotlib.image.imread(shot)[..., :3]
    assert float(np.var(pixels)) > 1e-3  # not blank
    green = np.all(np.abs(pixels - np.array([44, 160, 44]) / 255) < 0.05, axis=-1)  # the answer's left border
    rows = np.flatnonzero(green.any(axis=1))
    assert len(rows) and rows[0] < 150 and rows[-1] - rows[0] > 300  # it starts at the top and spans the answer
