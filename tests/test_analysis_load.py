"""Loading results folders through the output contract, with filters pushed down."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pyarrow as pa
import pyarrow.dataset as ds
import pyarrow.parquet as pq
import pytest

from analysis.load import ResultsError, data_rows, open_run, read_depth, read_items


@pytest.fixture(scope="module")
def run_path(tmp_path_factory, write_run, seed_grid):
    return write_run(tmp_path_factory.mktemp("load") / "run", seed_grid, duration=500.0, replications=3)


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


def test_interrupted_run_reads_parts(tmp_path, write_run, seed_grid):
    path = write_run(tmp_path / "parts", seed_grid[:2], duration=200.0, replications=2, with_cells_parquet=False)
    assert len(open_run(path).cells) == 4


def test_missing_and_foreign_folders_raise_one_line(tmp_path):
    with pytest.raises(ResultsError, match="does not exist") as missing:
        open_run(tmp_path / "nope")
    (tmp_path / "empty").mkdir()
    with pytest.raises(ResultsError, match="not a results folder") as foreign:
        open_run(tmp_path / "empty")
    assert "\n" not in str(missing.value) and "\n" not in str(foreign.value)


@pytest.mark.parametrize("version", [b"1", b"3", b"4", b"6"])
def test_other_schema_versions_are_refused_with_one_line(run_path, tmp_path, version):
    copy = shutil.copytree(run_path, tmp_path / "other")
    table = pq.read_table(copy / "cells.parquet")
    pq.write_table(table.replace_schema_metadata({b"qbench.schema_version": version}), copy / "cells.parquet")
    with pytest.raises(ResultsError, match=f"schema_version {version.decode()}, this analysis reads version 5") as err:
        open_run(copy)
    assert "\n" not in str(err.value) and isinstance(err.value, ValueError)
    assert ("re-run it with this qbench" in str(err.value)) == (int(version) < 5)


@pytest.mark.parametrize("version", [1, 2, 7])
def test_manifest_of_another_version_is_refused(run_path, tmp_path, version):
    copy = shutil.copytree(run_path, tmp_path / "other")
    manifest = json.loads((run_path / "manifest.json").read_text())
    (copy / "manifest.json").write_text(json.dumps({**manifest, "schema_version": version}))
    with pytest.raises(ResultsError, match=f"schema_version {version}"):
        open_run(copy)


def test_cells_without_the_new_columns_are_refused(run_path, tmp_path):
    copy = shutil.copytree(run_path, tmp_path / "thin")
    table = pq.read_table(copy / "cells.parquet")
    thin = table.drop(["blocked_fraction", "worker_seconds"])
    pq.write_table(thin.replace_schema_metadata(table.schema.metadata), copy / "cells.parquet")
    with pytest.raises(ResultsError, match="lacks column.* blocked_fraction, worker_seconds of schema version 5"):
        open_run(copy)


def test_an_unknown_status_is_refused(run_path, tmp_path):
    copy = shutil.copytree(run_path, tmp_path / "odd")
    table = pq.read_table(copy / "cells.parquet")
    statuses = pa.array(["ok"] * (len(table) - 1) + ["weird"])
    odd = table.set_column(table.schema.get_field_index("status"), "status", statuses)
    pq.write_table(odd.replace_schema_metadata(table.schema.metadata), copy / "cells.parquet")
    with pytest.raises(ResultsError, match="has status weird; schema version 5 knows ok, capped, lagged, failed"):
        open_run(copy)


def test_seed_is_text_even_beyond_64_bits(tmp_path, write_run, seed_grid):
    big = str(2**80 + 7)
    run = open_run(write_run(tmp_path / "big", seed_grid[:1], duration=100.0, replications=2, seed=big))
    assert run.params.loc[0, "seed"] == big and set(run.cells["seed"]) == {big}


def test_data_rows_are_ok_capped_and_lagged(tmp_path, write_run, restatus, seed_grid):
    path = write_run(tmp_path / "mixed", seed_grid[:1], duration=100.0, replications=4)
    restatus(path, 0, [1], "capped")
    restatus(path, 0, [2], "lagged", clock_lag_mean=0.5)
    restatus(path, 0, [3], "failed")
    run = open_run(path)
    assert list(run.data_cells()["replication"]) == [0, 1, 2]
    assert list(data_rows(run.cells)["status"]) == ["ok", "capped", "lagged"]


def test_a_run_interrupted_before_any_cell_finished_says_how_to_finish_it(run_path, tmp_path):
    copy = tmp_path / "early"
    copy.mkdir()
    manifest = json.loads((run_path / "manifest.json").read_text())
    (copy / "manifest.json").write_text(json.dumps({**manifest, "status": "interrupted"}))
    with pytest.raises(ResultsError, match="has no finished cells yet .*interrupted.*qbench run --resume") as err:
        open_run(copy)
    assert "not a results folder" not in str(err.value) and "\n" not in str(err.value)
    assert str(err.value).endswith(f"qbench run --resume {copy}")


def test_parquet_without_version_is_refused(run_path, tmp_path):
    copy = shutil.copytree(run_path, tmp_path / "nover")
    pq.write_table(pa.table({"cell": [0]}), copy / "cells.parquet")
    with pytest.raises(ResultsError, match="no qbench.schema_version"):
        open_run(copy)
