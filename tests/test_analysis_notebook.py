"""The backlog notebook runs top to bottom against a small run, and stays paired with its .py."""

from __future__ import annotations

from pathlib import Path

import jupytext
import nbformat
from nbclient import NotebookClient

NOTEBOOKS = Path(__file__).resolve().parents[1] / "analysis" / "notebooks"


def test_notebook_is_in_sync_with_its_percent_script():
    notebook = nbformat.read(NOTEBOOKS / "backlog.ipynb", as_version=4)
    script = jupytext.read(NOTEBOOKS / "backlog.py")
    assert [c.source for c in notebook.cells] == [c.source for c in script.cells]


def test_notebook_executes_top_to_bottom(tmp_path, monkeypatch, write_run, seed_grid):
    run = write_run(tmp_path / "nb", seed_grid, duration=800.0, replications=3)
    monkeypatch.setenv("QBENCH_RUN", str(run))
    monkeypatch.setenv("QBENCH_CHARTS", str(tmp_path / "charts"))
    notebook = nbformat.read(NOTEBOOKS / "backlog.ipynb", as_version=4)
    # "python3" resolves to the running interpreter (jupyter_client maps it to sys.executable)
    NotebookClient(
        notebook, timeout=120, kernel_name="python3", resources={"metadata": {"path": str(tmp_path)}}
    ).execute()
    outputs = "".join(o.get("text", "") for c in notebook.cells if c.cell_type == "code" for o in c.outputs)
    assert "overloaded" in outputs and "wait_p99" in outputs
    assert "const:1 / uniform:0:5: stable from 3; wait_p99<=5 from 3" in outputs
    assert (tmp_path / "charts" / "backlog.png").exists() and (tmp_path / "charts" / "targets.png").exists()
    images = [o for c in notebook.cells if c.cell_type == "code" for o in c.outputs if "image/png" in o.get("data", {})]
    assert images, "the backlog chart was not displayed"
