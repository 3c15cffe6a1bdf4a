"""The stored form of items and depth changes: compact, and read back exactly as recorded."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pyarrow as pa
import pytest

from analysis.load import ResultsError, open_run, read_items
from bench.encoding import ITEMS_FILE_SCHEMA, decode_depth, decode_items, encode_depth, encode_items, stored_columns
from bench.model_time import NS, seconds, to_ns
from bench.results_format import ITEMS_SCHEMA

NAN = np.nan
TIMES = ("t_arrive", "t_put", "t_get", "t_done", "wait", "service", "sojourn", "t_leave")


def _virtual(ns: list[int | None]) -> np.ndarray:
    """Times as the virtual clock gives them: integer nanoseconds over 1e9, NaN for None."""
    return np.array([NAN if v is None else v / NS for v in ns])


def _batch() -> dict[str, np.ndarray]:
    """Items in every state the recorders write: served, queued, in service, abandoned, given up,
    blocked in put, a retried item, times beyond 2**53 ns, and a class left out."""
    big = 2**60 + 12345
    t_arrive = [0, 10, 20, 30, 40, 50, 60, big]
    t_put = [0, 10, 25, 30, 40, 50, None, big + 7]
    t_get = [5, None, 26, None, 41, 52, None, big + 9]
    t_done = [9, None, None, None, 47, 58, None, big + 999_999_999]
    t_leave = [9, None, None, 35, 47, None, None, big + 999_999_999]  # item 5: t_done without t_leave
    columns = {
        "item": np.arange(8, dtype=np.int64),
        "worker": np.array([0, -1, 1, -1, 0, 1, -1, 0], dtype=np.int64),
        **{
            name: _virtual(v)
            for name, v in zip(
                ("t_arrive", "t_put", "t_get", "t_done", "t_leave"), (t_arrive, t_put, t_get, t_done, t_leave)
            )
        },  # fmt: skip
        "depth_at_put": np.array([1, 1, 2, 3, 1, 1, -1, 1], dtype=np.int64),
        "status": np.array(
            ["served", "queued", "in_service", "abandoned", "gave_up", "served", "blocked", "served"], dtype=object
        ),  # fmt: skip
        "class": np.array(["gold", None, "tin", "gold", None, "tin", "gold", None], dtype=object),
        "pusher": np.array([0, 1, 0, 1, 0, 1, 0, 1], dtype=np.int64),
        "attempts": np.array([1, 0, 1, 0, 3, 2, 0, 1], dtype=np.int64),
    }
    columns["wait"] = columns["t_get"] - columns["t_put"]
    columns["service"] = columns["t_done"] - columns["t_get"]
    columns["sojourn"] = columns["t_done"] - columns["t_put"]
    return columns


def _same(a: np.ndarray, b: np.ndarray) -> bool:
    """Equal bit for bit, NaNs in the same places."""
    return bool(np.array_equal(np.isnan(a), np.isnan(b)) and np.array_equal(a[~np.isnan(a)], b[~np.isnan(b)]))


def test_every_column_reads_back_exactly_as_the_recorder_gave_it():
    columns = _batch()
    table = pa.Table.from_batches([encode_items(columns, cell=3, replication=2)])
    back = decode_items(table, list(ITEMS_SCHEMA.names))
    for name in TIMES:
        assert _same(back[name], columns[name]), name
    assert back["cell"].to_pylist() == [3] * 8 and back["replication"].to_pylist() == [2] * 8
    assert back["worker"].to_pylist() == [0, None, 1, None, 0, 1, None, 0]
    assert back["status"].to_pylist() == list(columns["status"])
    assert back["class"].to_pylist() == list(columns["class"])
    for name in ("item", "depth_at_put", "pusher", "attempts"):
        assert back[name].to_pylist() == columns[name].tolist()


def test_the_plain_recorders_columns_take_their_defaults():
    columns = {k: v for k, v in _batch().items() if k not in ("status", "class", "pusher", "attempts", "t_leave")}
    columns["t_put"][6] = 60 / 1  # the plain program puts every item it records
    back = decode_items(
        pa.Table.from_batches([encode_items(columns, 0, 0)]), ["status", "class", "attempts", "t_leave"]
    )
    got, done = ~np.isnan(columns["t_get"]), ~np.isnan(columns["t_done"])
    assert back["status"].to_pylist() == ["served" if d else "in_service" if g else "queued" for g, d in zip(got, done)]
    assert back["class"].null_count == 8 and back["attempts"].to_pylist() == got.astype(int).tolist()
    assert _same(back["t_leave"], columns["t_done"])


def test_depth_changes_read_back_exactly():
    t = _virtual([0, 3, 3, 2**55, 2**55 + 1])
    columns = {"t": t, "depth": np.array([1, 2, 1, 2, 1]), "event": np.array([1, 1, -1, 1, -1], dtype=np.int8)}
    back = decode_depth(pa.Table.from_batches([encode_depth(columns, 1, 4)]), ["t", "depth", "event"])
    assert _same(back["t"], t) and back["depth"].to_pylist() == [1, 2, 1, 2, 1]
    assert back["event"].to_pylist() == [1, 1, -1, 1, -1]


@pytest.mark.parametrize("high", [10.0, 1e5, 1e8, 4.6e9])
def test_virtual_clock_times_convert_to_nanoseconds_and_back_bit_for_bit(high):
    ns = np.random.default_rng(7).integers(0, int(high * NS), 200_000)
    times = seconds(ns)
    back, missing = to_ns(times)
    assert missing is None and np.array_equal(seconds(back), times)


def test_a_scaled_clock_time_is_kept_to_the_nearest_nanosecond():
    times = np.random.default_rng(8).random(100_000) * 1000.0
    back, _ = to_ns(times)
    assert np.max(np.abs(seconds(back) - times)) <= 0.5e-9 + 1000.0 * 2**-52


def test_an_item_costs_at_most_32_bytes_on_disk(tmp_path):
    """M/M/2 at rho = 0.9, 200,000 items, every column (the limit the results format promises)."""
    out = tmp_path / "run"
    subprocess.run([sys.executable, "-m", "bench", "run", "--out", out, "--workers", "2", "--arrival", "exp:1",
                    "--service", "exp:1.8", "--items", "200000", "--no-progress", "--no-summary"], check=True)  # fmt: skip
    size = (out / "items" / "cell-00000.parquet").stat().st_size
    assert size / 200_000 <= 32
    items = read_items(open_run(out), join=False)
    assert len(items) == 200_000 and set(items.columns) == set(ITEMS_SCHEMA.names)


def test_a_filter_on_a_column_that_is_not_stored_is_one_line(tmp_path, write_run):
    import pyarrow.dataset as ds

    run = open_run(write_run(tmp_path / "run", [(1, "exp:1", "exp:2")], duration=50.0, replications=1))
    with pytest.raises(ResultsError, match="cannot read items") as err:
        read_items(run, where=ds.field("wait") > 1.0)
    assert "\n" not in str(err.value)


def test_stored_columns_name_only_what_a_read_needs():
    assert stored_columns(["cell", "wait"]) == ["cell", "t_put_ns", "block_ns", "wait_ns"]
    assert set(stored_columns(list(ITEMS_SCHEMA.names))) == set(ITEMS_FILE_SCHEMA.names)
