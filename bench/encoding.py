"""How item and depth rows are stored in parquet, and read back (results format version 4).

A recorder hands the writer float seconds; the files hold integers: every time as int64
nanoseconds of model time (:mod:`bench.model_time`), the put time absolute and the others as
offsets from it, so that each column is small and compresses well (about 14 bytes per item,
against 72 when every time was a float64). The columns ``wait``, ``service`` and ``sojourn`` are
not stored: they are differences of the times and :func:`decode_items` computes them exactly as the
recorder did, so a reader sees the same float64 values, bit for bit, for any time of the virtual
clock (a scaled-clock time, a real measurement, is kept to the nearest nanosecond).

Stored item columns (:data:`ITEMS_FILE_SCHEMA`), with what each read column is made of:

============== ======================================================================================
``t_put_ns``    ``t_put`` (delta-encoded: consecutive puts differ little)
``block_ns``    ``t_put - t_arrive``; null when the item was never put (its ``t_put`` is null and
                ``t_put_ns`` holds ``t_arrive``)
``wait_ns``     ``t_get - t_put``; null when no worker took it
``done_ns``     ``t_done - t_put``; null when it did not finish
``leave_ns``    ``t_leave - t_put`` when ``t_leave`` differs from ``t_done``; null when they are equal
                (both null included), -1 for a null ``t_leave`` beside a ``t_done``
============== ======================================================================================

Ids and counts are int32 (``item`` int64), status and class dictionary-encoded strings.
:data:`ITEMS_SCHEMA` (in :mod:`bench.results_format`) is what a reader gets.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from bench.item_status import ITEM_STATUSES
from bench.model_time import seconds, to_ns

__all__ = [
    "DEPTH_FILE_SCHEMA", "DIGEST_FILE_SCHEMA", "DIGEST_WRITER_OPTIONS", "ITEMS_FILE_SCHEMA", "WRITER_OPTIONS", "decode_depth", "decode_digests",
    "decode_items", "encode_depth", "encode_digests", "encode_events", "encode_items", "int64s", "read_whole", "rows_table", "stored_columns",
]  # fmt: skip

_STATUS = pa.dictionary(pa.int8(), pa.string())
_CLASS = pa.dictionary(pa.int32(), pa.string())

ITEMS_FILE_SCHEMA = pa.schema(
    [
        ("cell", pa.int32()),
        ("replication", pa.int32()),
        ("item", pa.int64()),
        ("worker", pa.int32()),
        ("t_put_ns", pa.int64()),
        ("block_ns", pa.int64()),
        ("wait_ns", pa.int64()),
        ("done_ns", pa.int64()),
        ("depth_at_put", pa.int32()),
        ("status", _STATUS),
        ("class", _CLASS),
        ("pusher", pa.int32()),
        ("attempts", pa.int32()),
        ("leave_ns", pa.int64()),
    ]
)
DEPTH_FILE_SCHEMA = pa.schema(
    [
        ("cell", pa.int32()),
        ("replication", pa.int32()),
        ("t_ns", pa.int64()),
        ("depth", pa.int32()),
        ("event", pa.int8()),
    ]  # fmt: skip
)

#: ``pyarrow.parquet.ParquetWriter`` options per kind: zstd; dictionaries only for columns of few
#: distinct values; times, item ids and depths delta-encoded (successive values are close).
WRITER_OPTIONS: dict[str, dict[str, Any]] = {
    "items": {
        "compression": "zstd",
        "use_dictionary": [
            "cell",
            "replication",
            "worker",
            "block_ns",
            "status",
            "class",
            "pusher",
            "attempts",
            "leave_ns",
        ],  # fmt: skip
        "column_encoding": {name: "DELTA_BINARY_PACKED" for name in ("item", "t_put_ns", "depth_at_put")},
    },
    "depth": {
        "compression": "zstd",
        "use_dictionary": ["cell", "replication", "event"],
        "column_encoding": {"t_ns": "DELTA_BINARY_PACKED", "depth": "DELTA_BINARY_PACKED"},
    },
}

#: The stored columns each read column is computed from.
_SOURCES = {
    "t_put": ("t_put_ns", "block_ns"),
    "t_arrive": ("t_put_ns", "block_ns"),
    "t_get": ("t_put_ns", "block_ns", "wait_ns"),
    "t_done": ("t_put_ns", "block_ns", "done_ns"),
    "wait": ("t_put_ns", "block_ns", "wait_ns"),
    "service": ("t_put_ns", "block_ns", "wait_ns", "done_ns"),
    "sojourn": ("t_put_ns", "block_ns", "done_ns"),
    "t_leave": ("t_put_ns", "block_ns", "done_ns", "leave_ns"),
    "t": ("t_ns",),
}


def stored_columns(columns: list[str]) -> list[str]:
    """The stored columns to read for ``columns`` of :data:`~bench.results_format.ITEMS_SCHEMA` or
    :data:`~bench.results_format.DEPTH_SCHEMA`, in order and without repeats."""
    out: dict[str, None] = {}
    for name in columns:
        out.update(dict.fromkeys(_SOURCES.get(name, (name,))))
    return list(out)


# -- writing ----------------------------------------------------------------------------------------


def _buffer(values: np.ndarray, dtype: type) -> pa.Buffer:
    return pa.py_buffer(np.ascontiguousarray(values, dtype=dtype))


def _validity(missing: np.ndarray | None) -> tuple[pa.Buffer | None, int]:
    if missing is None or not missing.any():
        return None, 0
    return pa.py_buffer(np.packbits(~missing, bitorder="little")), int(missing.sum())


def _numbers(kind: pa.DataType, values: np.ndarray, missing: np.ndarray | None = None) -> pa.Array:
    """A numeric arrow array straight from numpy buffers (``pa.array`` would import pandas, a
    sixth of a second of start-up, to ask whether ``values`` is a pandas object)."""
    dtype = {pa.int8(): np.int8, pa.int32(): np.int32, pa.int64(): np.int64}[kind]
    validity, nulls = _validity(missing)
    return pa.Array.from_buffers(kind, len(values), [validity, _buffer(values, dtype)], null_count=nulls)


def _strings(values: Sequence[str | None]) -> pa.Array:
    data = [b"" if v is None else str(v).encode() for v in values]
    offsets = np.zeros(len(data) + 1, dtype=np.int32)
    np.cumsum([len(b) for b in data], out=offsets[1:])
    validity, nulls = _validity(np.array([v is None for v in values], dtype=bool))
    buffers = [validity, _buffer(offsets, np.int32), pa.py_buffer(b"".join(data))]
    return pa.Array.from_buffers(pa.string(), len(data), buffers, null_count=nulls)


def int64s(column: pa.ChunkedArray) -> np.ndarray:
    """An int64 column without nulls as numpy, straight from its buffers (``to_numpy`` would
    import pandas)."""
    parts = [np.frombuffer(c.buffers()[1], dtype=np.int64, count=len(c), offset=c.offset * 8) for c in column.chunks]
    return np.concatenate(parts) if parts else np.empty(0, dtype=np.int64)


def rows_table(rows: list[dict[str, Any]], schema: pa.Schema) -> pa.Table:
    """A table of ``schema`` (int64, float64 and string fields) from rows as dicts; a missing key
    or ``None`` is null. Built from buffers, as :func:`_numbers` is, so writing the summary rows of
    ``cells.parquet`` never imports pandas.

    Args:
        rows: one dict per row.
        schema: the table's schema.
    """
    arrays = []
    for field in schema:
        values = [row.get(field.name) for row in rows]
        if field.type == pa.string():
            arrays.append(_strings(values))
            continue
        dtype = np.float64 if field.type == pa.float64() else np.int64
        filled = np.array([0 if v is None else v for v in values], dtype=dtype)
        validity, nulls = _validity(np.array([v is None for v in values], dtype=bool))
        arrays.append(
            pa.Array.from_buffers(field.type, len(rows), [validity, _buffer(filled, dtype)], null_count=nulls)
        )
    return pa.Table.from_arrays(arrays, schema=schema)


_STATUS_DICTIONARY = _strings(list(ITEM_STATUSES))
_STATUS_CODE = {name: code for code, name in enumerate(ITEM_STATUSES)}


def _status(columns: dict[str, np.ndarray]) -> pa.Array:
    codes = columns.get("status_code")
    if codes is None and "status" in columns:
        status = columns["status"]
        codes = np.zeros(len(status), dtype=np.int8)
        for name, code in _STATUS_CODE.items():
            codes[status == name] = code
    elif codes is None:  # the plain program: served, in service or queued, from its times
        got, done = ~np.isnan(columns["t_get"]), ~np.isnan(columns["t_done"])
        codes = np.where(done, _STATUS_CODE["served"], np.where(got, _STATUS_CODE["in_service"],
                                                                _STATUS_CODE["queued"]))  # fmt: skip
    return pa.DictionaryArray.from_arrays(_numbers(pa.int8(), codes), _STATUS_DICTIONARY)


def _classes(values: np.ndarray | None, n: int) -> pa.Array:
    missing: np.ndarray | None
    if values is None:
        codes, missing, names = np.zeros(n, dtype=np.int32), np.ones(n, dtype=bool), []
    else:
        missing = np.equal(values, None) if values.dtype == object else None  # type: ignore[call-overload]
        present = values[~missing] if missing is not None else values
        names = sorted({str(v) for v in present.tolist()})
        codes = np.zeros(n, dtype=np.int32)
        for code, name in enumerate(names):
            codes[values == name] = code
    return pa.DictionaryArray.from_arrays(_numbers(pa.int32(), codes, missing), _strings(names))


def encode_items(columns: dict[str, np.ndarray], cell: int, replication: int) -> pa.RecordBatch:
    """One batch of item columns as a recorder sends them (float seconds) in the stored form.

    Args:
        columns: ``item``, ``worker``, the times ``t_arrive`` .. ``t_done`` and ``depth_at_put``,
            and, from a recorder that has them, ``status`` (or its codes ``status_code``), ``class``,
            ``pusher``, ``attempts`` and ``t_leave``.
        cell: the cell id.
        replication: the replication id.
    """
    n = len(columns["item"])
    arrive, _ = to_ns(columns["t_arrive"])
    put, unput = to_ns(columns["t_put"])
    get, not_got = to_ns(columns["t_get"])
    done, not_done = to_ns(columns["t_done"])
    base = np.where(unput, arrive, put) if unput is not None else put
    leave_column = columns.get("t_leave")
    if leave_column is None:
        leave, same = np.zeros(n, dtype=np.int64), np.ones(n, dtype=bool)
    else:
        leave, not_left = to_ns(leave_column)
        left = ~not_left if not_left is not None else np.ones(n, dtype=bool)
        finished = ~not_done if not_done is not None else np.ones(n, dtype=bool)
        same = (left == finished) & (~left | (leave == done))
        leave = np.where(left, leave - base, -1)
    worker = columns["worker"]
    arrays = [
        _numbers(pa.int32(), np.full(n, cell, dtype=np.int32)),
        _numbers(pa.int32(), np.full(n, replication, dtype=np.int32)),
        _numbers(pa.int64(), columns["item"]),
        _numbers(pa.int32(), worker, worker < 0),
        _numbers(pa.int64(), base),
        _numbers(pa.int64(), base - arrive, unput),
        _numbers(pa.int64(), get - base, not_got),
        _numbers(pa.int64(), done - base, not_done),
        _numbers(pa.int32(), columns["depth_at_put"]),
        _status(columns),
        _classes(columns.get("class"), n),
        _numbers(pa.int32(), columns["pusher"] if "pusher" in columns else np.zeros(n, dtype=np.int32)),
        _numbers(pa.int32(), columns["attempts"] if "attempts" in columns else (~np.isnan(columns["t_get"]))),
        _numbers(pa.int64(), leave, same),
    ]
    return pa.RecordBatch.from_arrays(arrays, schema=ITEMS_FILE_SCHEMA)


def encode_depth(columns: dict[str, np.ndarray], cell: int, replication: int) -> pa.RecordBatch:
    """One batch of depth changes (``t`` in float seconds, ``depth``, ``event``) in the stored form."""
    n = len(columns["t"])
    t, _ = to_ns(columns["t"])
    arrays = [
        _numbers(pa.int32(), np.full(n, cell, dtype=np.int32)),
        _numbers(pa.int32(), np.full(n, replication, dtype=np.int32)),
        _numbers(pa.int64(), t),
        _numbers(pa.int32(), columns["depth"]),
        _numbers(pa.int8(), columns["event"]),
    ]
    return pa.RecordBatch.from_arrays(arrays, schema=DEPTH_FILE_SCHEMA)


def encode_events(columns: dict[str, np.ndarray], cell: int, replication: int, schema: pa.Schema) -> pa.RecordBatch:
    """One batch of events (``t``, ``kind``, ``value``) as ``schema`` (``events/`` keeps them as read:
    a few rows per change of rate or workers), built without importing pandas."""
    n = len(columns["t"])
    arrays = [
        _numbers(pa.int64(), np.full(n, cell, dtype=np.int64)),
        _numbers(pa.int64(), np.full(n, replication, dtype=np.int64)),
        _floats(np.asarray(columns["t"], dtype=np.float64)),
        _strings(list(columns["kind"])),
        _floats(np.asarray(columns["value"], dtype=np.float64)),
    ]
    return pa.RecordBatch.from_arrays(arrays, schema=schema)


# -- reading ----------------------------------------------------------------------------------------


def read_whole(path: Path, columns: list[str] | None = None) -> pa.Table:
    """A whole parquet file (or some of its columns), read directly: ``pq.read_table`` would import
    ``pyarrow.dataset`` (0.2 s of start-up) and costs a millisecond more a file, which a
    10,000-cell run pays 10,000 times; the files are small, so one thread reads them."""
    with pq.ParquetFile(path) as opened:
        return opened.read(columns=columns, use_threads=False)


def _ns(table: pa.Table, name: str) -> tuple[np.ndarray, np.ndarray]:
    """A stored nanosecond column as (int64 values with 0 for nulls, null mask)."""
    column = table.column(name)
    missing = column.is_null().to_numpy(zero_copy_only=False) if column.null_count else np.zeros(len(column), bool)
    return column.fill_null(0).to_numpy(), missing


def _float(ns: np.ndarray, missing: np.ndarray) -> np.ndarray:
    out = seconds(ns)
    out[missing] = np.nan
    return out


def decode_items(table: pa.Table, columns: list[str]) -> dict[str, Any]:
    """The read columns ``columns`` of item rows from a table of stored columns
    (:func:`stored_columns` of them): numpy arrays for the times and derived columns, arrow
    columns (ids as int64, strings as strings) for the rest.

    Args:
        table: stored item columns.
        columns: names of :data:`~bench.results_format.ITEMS_SCHEMA`.
    """
    out: dict[str, Any] = {}
    times: dict[str, np.ndarray] = {}

    def time(name: str) -> np.ndarray:
        if name not in times:
            times[name] = _time(table, name)
        return times[name]

    for name in columns:
        if name in ("t_put", "t_arrive", "t_get", "t_done", "t_leave"):
            out[name] = time(name)
        elif name == "wait":
            out[name] = time("t_get") - time("t_put")
        elif name == "service":
            out[name] = time("t_done") - time("t_get")
        elif name == "sojourn":
            out[name] = time("t_done") - time("t_put")
        elif name in ("status", "class"):
            out[name] = table.column(name).cast(pa.string())
        else:
            out[name] = table.column(name).cast(pa.int64())
    return out


def _time(table: pa.Table, name: str) -> np.ndarray:
    base, _ = _ns(table, "t_put_ns")
    block, unput = _ns(table, "block_ns")
    if name == "t_put":
        return _float(base, unput)
    if name == "t_arrive":
        return seconds(base - block)
    offset = {"t_get": "wait_ns", "t_done": "done_ns", "t_leave": "done_ns"}[name]
    delta, missing = _ns(table, offset)
    if name != "t_leave":
        return _float(base + delta, missing)
    leave, same = _ns(table, "leave_ns")
    gone = ~same & (leave == -1)
    ns = np.where(same, base + delta, base + leave)
    return _float(ns, np.where(same, missing, gone))


def decode_depth(table: pa.Table, columns: list[str]) -> dict[str, Any]:
    """The read columns ``columns`` of depth rows (``t`` in float seconds) from stored ones."""
    out: dict[str, Any] = {}
    for name in columns:
        if name == "t":
            out[name] = seconds(table.column("t_ns").to_numpy())
        elif name == "event":
            out[name] = table.column(name)
        else:
            out[name] = table.column(name).cast(pa.int64())
    return out


# -- digests ----------------------------------------------------------------------------------------

#: A digest file (``digests/``) holds one row per replication: these scalars, and lists (below).
DIGEST_SCALARS = (("cell", pa.int32()), ("replication", pa.int32()), ("workers", pa.int64()), ("items", pa.int64()),
                  ("t_end", pa.float64()), ("last_put", pa.float64()), ("mser_batch", pa.int64()),
                  ("segment", pa.int64()), ("bin_width", pa.float64()))  # fmt: skip
_KINDS = ("wait", "sojourn", "service")
DIGEST_LISTS = (
    ("mser_sums", pa.float64()), ("mser_first", pa.int64()), ("seg_first_t", pa.float64()), ("seg_items", pa.int64()),
    ("seg_abandoned", pa.int64()),
    *((f"counts_{k}", pa.int64()) for k in _KINDS), *((f"sums_{k}", pa.float64()) for k in _KINDS),
    *((f"keys_{k}", pa.int64()) for k in _KINDS), *((f"tallies_{k}", pa.int64()) for k in _KINDS),
    ("busy", pa.float64()), ("queue", pa.float64()), ("depth_max", pa.int64()), ("depth_last", pa.int64()),
    ("head_put", pa.float64()), ("head_service", pa.float64()),
)  # fmt: skip
#: Writer options of a digest file: the histograms' sorted keys delta-encoded, the rest as usual.
DIGEST_WRITER_OPTIONS: dict[str, Any] = {
    "compression": "zstd",
    "use_dictionary": [name for name, _ in (*DIGEST_SCALARS, *DIGEST_LISTS) if not name.startswith("keys_")],
    "column_encoding": {f"keys_{k}": "DELTA_BINARY_PACKED" for k in _KINDS},
}
DIGEST_FILE_SCHEMA = pa.schema([*DIGEST_SCALARS, *((name, pa.large_list(kind)) for name, kind in DIGEST_LISTS)])


def encode_digests(rows: list[dict[str, Any]], cell: int) -> pa.Table:
    """Digests (as :meth:`bench.digest.Digest.to_row` gives them) of one cell, one row each."""
    arrays = [_numbers(pa.int32(), np.full(len(rows), cell, dtype=np.int32))]
    for name, kind in DIGEST_SCALARS[1:]:
        dtype = np.float64 if kind == pa.float64() else np.int64
        values = np.array([row[name] for row in rows], dtype=dtype)
        arrays.append(_numbers(kind, values) if dtype is np.int64 else _floats(values))
    for name, kind in DIGEST_LISTS:
        dtype = np.float64 if kind == pa.float64() else np.int64
        parts = [np.asarray(row[name], dtype=dtype) for row in rows]
        offsets = np.zeros(len(parts) + 1, dtype=np.int64)
        np.cumsum([len(p) for p in parts], out=offsets[1:])
        flat = np.concatenate(parts) if parts else np.empty(0, dtype=dtype)
        values = _floats(flat) if dtype is np.float64 else _numbers(pa.int64(), flat)
        arrays.append(pa.LargeListArray.from_arrays(_numbers(pa.int64(), offsets), values))
    return pa.Table.from_arrays(arrays, schema=DIGEST_FILE_SCHEMA)


def _floats(values: np.ndarray) -> pa.Array:
    return pa.Array.from_buffers(pa.float64(), len(values), [None, _buffer(values, np.float64)])


def decode_digests(table: pa.Table) -> list[dict[str, Any]]:
    """The rows of a digest file, arrays as numpy (the inverse of :func:`encode_digests`)."""
    rows: list[dict[str, Any]] = [{} for _ in range(table.num_rows)]
    for name, _ in DIGEST_SCALARS:
        for row, value in zip(rows, table.column(name).to_pylist()):
            row[name] = value
    for name, _ in DIGEST_LISTS:
        column = table.column(name).combine_chunks()
        offsets = column.offsets.to_numpy()
        flat = column.values.to_numpy()
        for i, row in enumerate(rows):
            row[name] = flat[offsets[i] : offsets[i + 1]]
    return rows
