"""Scaled time on asyncio's loop and on uvloop (--loop), and the fidelity study, kept tiny."""

from __future__ import annotations

import json

import pandas as pd
import pytest

from analysis.load import open_run, read_items
from bench.cli import main


@pytest.mark.parametrize("loop", ["asyncio", "uvloop"])
def test_scaled_run_on_either_loop(tmp_path, loop):
    if loop == "uvloop":
        pytest.importorskip("uvloop")
    out = tmp_path / loop
    code = main(
        [
            "run",
            "--out",
            str(out),
            "--workers",
            "2",
            "--arrival",
            "const:1",
            "--service",
            "uniform:0:2",
            "--items",
            "30",
            "--clock",
            "scaled:0.0005",
            "--loop",
            loop,
            "--no-progress",
            "--no-summary",
            "--jobs",
            "1",
        ]
    )
    assert code == 0
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["loop"] == loop and manifest["clock"] == "scaled:0.0005"
    items = read_items(open_run(out), join=False)
    assert len(items) == 30 and items.t_done.notna().all()


def test_fidelity_study_writes_table_and_chart(tmp_path):
    from bench.studies.fidelity import fidelity_study

    paths = fidelity_study(tmp_path, items=20, scales=[1e-4], loops=["asyncio"], budget=0.05)
    assert {p.name for p in paths} == {"fidelity.csv", "fidelity.png", "fidelity.svg"}
    table = pd.read_csv(tmp_path / "fidelity.csv")
    assert len(table) == 2 and (table.drift_mean >= 0).all()
