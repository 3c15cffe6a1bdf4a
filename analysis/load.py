"""Open a results folder into pandas, through the results format (:mod:`bench.results_format`).

:func:`open_run` reads the small parts of a run (``manifest.json`` and ``cells.parquet``, or the
per-cell ``parts/`` of an interrupted run) and checks the schema version. The large parts, the
per-item records and the queue-depth events, are read on demand by :func:`read_items` and
:func:`read_depth` (and the arrival rate in force and the worker count over time by :func:`read_events`): only the files of the requested cells are opened, only the requested columns
are decoded and replication / item filters are pushed down to parquet, so plotting one cell of a
10M-row run reads one cell.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.dataset as ds
import pyarrow.parquet as pq

from bench.digest import Digest
from bench.encoding import decode_depth, decode_digests, decode_items, read_whole, stored_columns
from bench.errors import InputError
from bench.results_format import (
    CELLS,
    CELLS_SCHEMA,
    DATA_STATUSES,
    DEPTH,
    DEPTH_SCHEMA,
    DIGESTS,
    EVENTS,
    EVENTS_SCHEMA,
    ITEMS,
    ITEMS_SCHEMA,
    MANIFEST,
    PARAMETERS,
    PARTS,
    PLAN_KEY,
    SCHEMA_KEY,
    SCHEMA_VERSION,
    STATUSES,
    cell_id,
    cell_name,
)

__all__ = [
    "DATA_STATUSES", "PARAMETERS", "ResultsError", "Run", "SCHEMA_VERSION", "STATUSES", "data_rows", "open_run",
    "has_depth", "has_items", "read_depth", "read_digests", "read_events", "read_items", "record_level",
]  # fmt: skip

#: Columns of ``cells.parquet``: every column of the format; a file without one is refused.
REQUIRED = tuple(CELLS_SCHEMA.names)


class ResultsError(InputError):
    """A folder that cannot be read as a results folder; the message is one line."""


@dataclass(frozen=True)
class Run:
    """An opened results folder.

    Attributes:
        path: the folder.
        manifest: the parsed ``manifest.json`` (empty if the run left none).
        cells: one row per (cell, replication), as in ``cells.parquet``.
        params: one row per cell, indexed by ``cell``: the parameter columns only.
    """

    path: Path
    manifest: dict = field(repr=False)
    cells: pd.DataFrame = field(repr=False)
    params: pd.DataFrame = field(repr=False)

    @property
    def name(self) -> str:
        """The run's name: the manifest's ``run`` or the folder name."""
        return str(self.manifest.get("run") or self.path.name)

    def data_cells(self) -> pd.DataFrame:
        """Rows of :attr:`cells` that hold statistics (status in :data:`DATA_STATUSES`)."""
        return data_rows(self.cells)

    def rows_of(self, cell: int) -> pd.DataFrame:
        """The rows of :attr:`cells` of one cell, every status: a slice of the frame (``cells.parquet``
        is sorted by cell), so a report of 10,000 cells does not filter 10,000 rows 10,000 times."""
        ids = self._cell_ids
        if ids is None:
            return self.cells[self.cells["cell"] == cell]
        start, stop = np.searchsorted(ids, [cell, cell + 1])
        return self.cells.iloc[int(start) : int(stop)]

    @functools.cached_property
    def _cell_ids(self) -> np.ndarray | None:
        """The ``cell`` column when it is sorted (else None: rows are then found by a filter)."""
        ids = self.cells["cell"].to_numpy(dtype=np.int64)
        return ids if len(ids) < 2 or bool(np.all(ids[1:] >= ids[:-1])) else None


def data_rows(rows: pd.DataFrame) -> pd.DataFrame:
    """The rows of a ``cells.parquet`` frame that hold statistics: status ``ok``, ``capped`` or ``lagged``.

    Args:
        rows: rows of ``cells.parquet`` (any subset).
    """
    keep = rows["status"].isin(DATA_STATUSES).to_numpy()
    return rows if keep.all() else rows[keep]


def open_run(path: str | Path) -> Run:
    """Open a results folder, checking that it is one and that its schema version is readable.

    Args:
        path: the results folder.

    Raises:
        ResultsError: the folder is missing, is not a results folder, or has another schema version.
    """
    folder = Path(path)
    if not folder.exists():
        raise ResultsError(f"results folder {str(folder)!r} does not exist")
    if not folder.is_dir():
        raise ResultsError(f"{str(folder)!r} is a file, not a results folder")
    manifest = _read_manifest(folder)
    cells = _read_cells(folder)
    if cells is None and PLAN_KEY in manifest:
        raise ResultsError(f"{str(folder)!r} holds no cells: the plan it keeps was decided by theory alone "
                           "(its answer is in manifest.json)")  # fmt: skip
    if cells is None and manifest:
        status = manifest.get("status", "unknown")
        raise ResultsError(f"{str(folder)!r} has no finished cells yet (run status: {status}); "
                           f"finish it with: qbench run --resume {folder}")  # fmt: skip
    if cells is None:
        raise ResultsError(f"{str(folder)!r} is not a results folder (no cells.parquet or parts/)")
    params = _parameters(cells)
    return Run(folder, manifest, cells, params)


def _read_manifest(folder: Path) -> dict:
    """The manifest, with its schema version checked; ``{}`` when there is none."""
    file = folder / MANIFEST
    if not file.exists():
        return {}
    try:
        manifest = json.loads(file.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ResultsError(f"{str(file)!r} is not valid JSON: {exc}") from None
    _check_version(manifest.get("schema_version", SCHEMA_VERSION), file)
    return manifest


def _check_version(version: object, where: Path) -> None:
    """Raise :class:`ResultsError` unless ``version`` is :data:`SCHEMA_VERSION`."""
    if str(version) != str(SCHEMA_VERSION):
        again = " (re-run it with this qbench)" if str(version).isdigit() and int(str(version)) < SCHEMA_VERSION else ""
        raise ResultsError(
            f"{str(where)!r} has qbench.schema_version {version}, this analysis reads version {SCHEMA_VERSION}{again}"
        )


def _check_file(file: Path, read=pq.read_schema):
    """Read one parquet file with ``read`` (its schema, or ``pq.read_table`` for the whole table),
    check the schema version in its metadata and return what was read."""
    try:
        got = read(file)
    except (OSError, pa.ArrowException) as exc:
        raise ResultsError(f"{str(file)!r} is not a readable parquet file: {exc}") from None
    metadata = (got if isinstance(got, pa.Schema) else got.schema).metadata or {}
    if SCHEMA_KEY not in metadata:
        raise ResultsError(f"{str(file)!r} carries no qbench.schema_version; not written by qbench")
    _check_version(metadata[SCHEMA_KEY].decode(), file)
    return got


def _read_cells(folder: Path) -> pd.DataFrame | None:
    """``cells.parquet``, or the concatenated ``parts/`` of an unfinished run; None if neither exists."""
    whole = folder / CELLS
    parts = folder / PARTS
    files = [whole] if whole.exists() else sorted(p for p in parts.glob("*") if cell_id(p.name) is not None)
    if not files:
        return None
    # One read per file: the table carries the schema whose version is checked.
    table = pd.concat([_checked_rows(f) for f in files], ignore_index=True)
    # The root seed is text in version 2 (it may exceed 64 bits): never a number to round.
    table["seed"] = table["seed"].map(lambda v: None if pd.isna(v) else str(v)).astype(object)
    return table.sort_values(["cell", "replication"], kind="stable").reset_index(drop=True)


def _checked_rows(file: Path) -> pd.DataFrame:
    """The rows of one ``cells.parquet`` or part, with its version, columns and statuses checked."""
    rows = _check_file(file, pq.read_table).to_pandas()
    missing = [c for c in REQUIRED if c not in rows.columns]
    if missing:
        raise ResultsError(f"{str(file)!r} lacks column(s) {', '.join(missing)} of schema version {SCHEMA_VERSION}")
    unknown = sorted(set(rows["status"].fillna("(null)")) - set(STATUSES))
    if unknown:
        raise ResultsError(f"{str(file)!r} has status {', '.join(unknown)}; schema version {SCHEMA_VERSION} knows "
                           f"{', '.join(STATUSES)}")  # fmt: skip
    return rows


def _parameters(cells: pd.DataFrame) -> pd.DataFrame:
    """One row per cell with the parameter columns present in ``cells``."""
    columns = [c for c in PARAMETERS if c in cells.columns]
    return cells.groupby("cell", sort=True)[columns].first()


def _cell_files(run: Run, kind: str, cells: Iterable[int] | None) -> list[Path]:
    """The parquet files of ``kind`` (``items`` or ``depth``) holding the requested cells."""
    folder = run.path / kind
    wanted = run.params.index if cells is None else cells
    files = [folder / cell_name(int(c)) for c in wanted]
    return [f for f in files if f.exists()]


def _read(
    run: Run,
    kind: str,
    cells: Iterable[int] | None,
    replications: Iterable[int] | None,
    columns: list[str] | None,
    where: ds.Expression | None,
    join: bool,
) -> pd.DataFrame:
    """Read ``kind`` records of some cells with filters pushed down, optionally joined with parameters."""
    files = _cell_files(run, kind, cells)
    for file in files:
        _check_file(file)
    if not files:
        return _empty(run, kind, columns, join)
    names = list(_SCHEMAS[kind].names) if columns is None else columns
    wanted = list(dict.fromkeys(["cell", "replication", *names]))
    dataset = ds.dataset([str(f) for f in files], format="parquet")
    condition = where
    if replications is not None:
        reps = ds.field("replication").isin([int(r) for r in replications])
        condition = reps if condition is None else condition & reps
    try:
        table = dataset.to_table(columns=wanted if kind == EVENTS else stored_columns(wanted), filter=condition)
    except (pa.ArrowInvalid, pa.ArrowKeyError, KeyError) as exc:  # e.g. a filter on a column not stored
        raise ResultsError(f"cannot read {kind} of {str(run.path)!r}: {exc}".splitlines()[0]) from None
    if kind == EVENTS:  # stored as read: a few rows per change of rate or workers
        return table.to_pandas()
    decoded = (decode_items if kind == ITEMS else decode_depth)(table, wanted)
    frame = pd.DataFrame({name: _pandas(values) for name, values in decoded.items()})
    return _join(run, frame) if join else frame


#: The columns a reader gets of each kind of per-cell record.
_SCHEMAS = {ITEMS: ITEMS_SCHEMA, DEPTH: DEPTH_SCHEMA, EVENTS: EVENTS_SCHEMA}


def _pandas(values):
    """A decoded column (numpy array or arrow column) as something pandas takes without copying twice."""
    return values if isinstance(values, np.ndarray) else values.to_pandas()


def _empty(run: Run, kind: str, columns: list[str] | None, join: bool) -> pd.DataFrame:
    """An empty frame with the requested columns, for a selection that matched no file."""
    names = dict.fromkeys(["cell", "replication", *(columns or [])])
    frame = pd.DataFrame({c: pd.Series(dtype="int64" if c in ("cell", "replication") else "float64") for c in names})
    return _join(run, frame) if join else frame


def _join(run: Run, frame: pd.DataFrame) -> pd.DataFrame:
    """Attach the cell parameters (workers, arrival, service, rho, ...) to records keyed by ``cell``."""
    extra = [c for c in run.params.columns if c not in frame.columns]
    return frame.merge(run.params[extra], left_on="cell", right_index=True, how="left")


def read_items(
    run: Run,
    *,
    cells: Iterable[int] | None = None,
    replications: Iterable[int] | None = None,
    columns: list[str] | None = None,
    where: ds.Expression | None = None,
    join: bool = True,
) -> pd.DataFrame:
    """Per-item records of some cells, with filters pushed down to parquet.

    Args:
        run: an opened run.
        cells: cell ids to read (all when None); only their files are opened.
        replications: replication ids to keep (all when None), filtered inside parquet.
        columns: item columns to decode (all when None); ``cell`` and ``replication`` always come.
        where: an extra ``pyarrow.dataset`` filter, e.g. ``ds.field("item") < 100``.
        join: attach the cell parameters (``workers``, ``arrival``, ``service``, ``rho``, ...).

    Raises:
        ResultsError: a file has another schema version or is not readable.
    """
    return _read(run, ITEMS, cells, replications, columns, where, join)


def has_items(run: Run, cell: int) -> bool:
    """Whether the run kept item records of ``cell`` (record level ``items`` or ``sample:F``)."""
    return (run.path / ITEMS / cell_name(int(cell))).exists()


def has_depth(run: Run, cell: int) -> bool:
    """Whether the run kept every change of ``cell``'s queue size (record level ``items``)."""
    return (run.path / DEPTH / cell_name(int(cell))).exists()


def record_level(run: Run) -> str:
    """What the run kept of its items: ``items``, ``sample:F`` or ``summary`` (the grid's ``record``)."""
    return str((run.manifest.get("grid") or {}).get("record") or "items")


def read_digests(run: Run, cell: int) -> list[Digest]:
    """The digests of one cell's replications (:mod:`bench.digest`), in replication order; none
    when the cell has no digest file (it failed).

    Raises:
        ResultsError: the file has another schema version or is not readable.
    """
    file = run.path / DIGESTS / cell_name(int(cell))
    if not file.exists():
        return []
    table = _check_file(file, read_whole)
    return [Digest.from_row(row) for row in sorted(decode_digests(table), key=lambda r: r["replication"])]


def read_depth(
    run: Run,
    *,
    cells: Iterable[int] | None = None,
    replications: Iterable[int] | None = None,
    columns: list[str] | None = None,
    where: ds.Expression | None = None,
    join: bool = False,
) -> pd.DataFrame:
    """Queue-depth change events of some cells, in event order, with filters pushed down to parquet.

    Args:
        run: an opened run.
        cells: cell ids to read (all when None); only their files are opened.
        replications: replication ids to keep (all when None).
        columns: depth columns to decode (all when None); ``cell`` and ``replication`` always come.
        where: an extra ``pyarrow.dataset`` filter, e.g. ``ds.field("t") <= 100.0``.
        join: attach the cell parameters.

    Raises:
        ResultsError: a file has another schema version or is not readable.
    """
    return _read(run, DEPTH, cells, replications, columns, where, join)


def read_events(run: Run, *, cells: Iterable[int] | None = None, replications: Iterable[int] | None = None,
                kinds: Iterable[str] | None = None) -> pd.DataFrame:  # fmt: skip
    """The events of some cells (version 4: the arrival rate in force, the worker count, when the
    arrivals ran out), columns ``cell``, ``replication``, ``t``, ``kind``, ``value``, sorted by
    (cell, replication, kind, t). A cell with data but no events file (written by another tool) is
    taken as a renewal process at ``1 / arrival_mean`` with its fixed ``workers``.

    Args:
        run: an opened run.
        cells: cell ids to read (all when None).
        replications: replication ids to keep (all when None).
        kinds: the kinds to keep (all when None).

    Raises:
        ResultsError: a file has another schema version or is not readable.
    """
    wanted = list(run.params.index if cells is None else cells)
    where = None if kinds is None else ds.field("kind").isin(list(kinds))
    frame = _read(run, EVENTS, wanted, replications, ["t", "kind", "value"], where, False)
    have = set(frame["cell"].unique()) if len(frame) else set()
    rows = data_rows(run.cells)
    made = []
    for cell in (c for c in wanted if c not in have):
        reps = rows.loc[rows["cell"] == cell, "replication"]
        if replications is not None:
            reps = reps[reps.isin(list(replications))]
        params = run.params.loc[cell]
        for rep in reps:
            for kind, value in (("rate", 1.0 / float(params["arrival_mean"])), ("workers", float(params["workers"])),
                                ("provisioned", float(params["workers"]))):  # fmt: skip
                if kinds is None or kind in kinds:
                    made.append({"cell": int(cell), "replication": int(rep), "t": 0.0, "kind": kind, "value": value})
    if made:
        frame = pd.concat([frame, pd.DataFrame(made)], ignore_index=True) if len(frame) else pd.DataFrame(made)
    if not len(frame):
        return pd.DataFrame({"cell": pd.Series(dtype="int64"), "replication": pd.Series(dtype="int64"),
                             "t": pd.Series(dtype="float64"), "kind": pd.Series(dtype="object"),
                             "value": pd.Series(dtype="float64")})  # fmt: skip
    frame["kind"] = frame["kind"].astype(str)
    return frame.sort_values(["cell", "replication", "kind", "t"], kind="stable").reset_index(drop=True)
