"""Loading results folders through the output contract, with filters pushed down."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pyarrow as pa
import pyarrow.dataset as ds
import pyarrow.parquet as pq
import pytest

from analysis.load import ResultsError, open_run, read_depth, read_items
from analysis_fixtures import SEED_GRID, write_run


@pytest.fixture(scope="module")
def run_path(tmp_path_factory):
    return write_run(tmp_path_factory.mktemp("load") / "run", SEED_GRID, duration=500.0, replications=3)


def test_open_run_reads_cells_and_parameters(run_path):
    run = open_run(run_path)
    assert len(run.cells) == 9 and list(run.params.index) == [0, 1, 2]
    assert run.params.loc[1, "workers"] == 3 and run.params.loc[1, "service"] == "uniform:0:5"
    assert run.name == "run" and run.manifest["status"] == "complete"


def test_items_filters_are_pushed_down_and_parameters_joined(run_path):
    run = open_run(run_path)
    items = read_items(run, cells=[1], replications=[2], columns=["item", "wait"], where=ds.field("item") < 50)
    assert set(items["cell"]) == {1} and set(items["replication"]) == {2}
    assert len(items) == 50 and {"workers", "arrival", "service", "rho"} <= set(items.columns)
    assert (items["workers"] == 3).all()
    assert "t_put" not in items.columns


def test_depth_is_in_event_order(run_path):
    depth = read_depth(open_run(run_path), cells=[0, 2])
    for _, group in depth.groupby(["cell", "replication"]):
        assert np.array_equal(np.cumsum(group["event"].to_numpy(dtype=int)), group["depth"].to_numpy())
        assert np.all(np.diff(group["t"].to_numpy()) >= 0)


def test_unknown_cell_reads_empty(run_path):
    assert read_items(open_run(run_path), cells=[99], columns=["wait"]).empty


def test_interrupted_run_reads_parts(tmp_path):
    path = write_run(tmp_path / "parts", SEED_GRID[:2], duration=200.0, replications=2, with_cells_parquet=False)
    assert len(open_run(path).cells) == 4


def test_missing_and_foreign_folders_raise_one_line(tmp_path):
    with pytest.raises(ResultsError, match="does not exist") as missing:
        open_run(tmp_path / "nope")
    (tmp_path / "empty").mkdir()
    with pytest.raises(ResultsError, match="not a results folder") as foreign:
        open_run(tmp_path / "empty")
    assert "\n" not in str(missing.value) and "\n" not in str(foreign.value)


def test_incompatible_schema_version_is_refused(run_path, tmp_path):
    copy = shutil.copytree(run_path, tmp_path / "v2")
    table = pq.read_table(copy / "cells.parquet")
    pq.write_table(table.replace_schema_metadata({b"qbench.schema_version": b"2"}), copy / "cells.parquet")
    with pytest.raises(ResultsError, match="schema_version 2") as err:
        open_run(copy)
    assert "\n" not in str(err.value) and isinstance(err.value, ValueError)
    manifest = json.loads((run_path / "manifest.json").read_text())
    (copy / "manifest.json").write_text(json.dumps({**manifest, "schema_version": 7}))
    with pytest.raises(ResultsError, match="7"):
        open_run(copy)


def test_parquet_without_version_is_refused(run_path, tmp_path):
    copy = shutil.copytree(run_path, tmp_path / "nover")
    pq.write_table(pa.table({"cell": [0]}), copy / "cells.parquet")
    with pytest.raises(ResultsError, match="no qbench.schema_version"):
        open_run(copy)
