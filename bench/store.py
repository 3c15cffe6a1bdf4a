"""The results folder: parquet files and the manifest of the output contract (``results/README.md``).

Each cell's files are written under a temporary name and renamed when complete, so any file that
exists is whole. Items and depth changes are written batch by batch (:class:`CellWriter` is a
:class:`~bench.recorder.Sink`), so memory does not grow with the number of rows.
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path
from typing import Any, Iterable

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

__all__ = [
    "FORMAT",
    "SCHEMA_VERSION",
    "ITEMS_SCHEMA",
    "CELLS_SCHEMA",
    "DEPTH_SCHEMA",
    "CellWriter",
    "cell_name",
    "write_part",
    "read_parts",
    "finished_cells",
    "write_cells",
    "write_manifest",
    "read_manifest",
    "clean_partial",
    "is_run",
    "foreign_entries",
    "remove_run",
]

#: The manifest's ``format`` marker: a folder is a qbench run when its manifest says this.
FORMAT = "qbench-results"
SCHEMA_VERSION = 2
_META = {b"qbench.schema_version": str(SCHEMA_VERSION).encode()}

ITEMS_SCHEMA = pa.schema(
    [
        ("cell", pa.int64()),
        ("replication", pa.int64()),
        ("item", pa.int64()),
        ("worker", pa.int64()),
        ("t_arrive", pa.float64()),
        ("t_put", pa.float64()),
        ("t_get", pa.float64()),
        ("t_done", pa.float64()),
        ("wait", pa.float64()),
        ("service", pa.float64()),
        ("sojourn", pa.float64()),
        ("depth_at_put", pa.int64()),
    ],
    metadata=_META,
)

DEPTH_SCHEMA = pa.schema(
    [
        ("cell", pa.int64()),
        ("replication", pa.int64()),
        ("t", pa.float64()),
        ("depth", pa.int64()),
        ("event", pa.int8()),
    ],
    metadata=_META,
)

def _fields(kind, names: str) -> list[tuple[str, pa.DataType]]:
    return [(name, kind) for name in names.split()]


CELLS_SCHEMA = pa.schema(
    _fields(pa.int64(), "cell replication workers")
    + _fields(pa.string(), "arrival service")
    + _fields(pa.int64(), "maxsize")
    + _fields(pa.float64(), "arrival_mean arrival_cv service_mean service_cv offered_load rho")
    + [("items_target", pa.int64()), ("duration", pa.float64())]
    + _fields(pa.string(), "clock engine seed")
    + _fields(pa.int64(), "n_put n_got n_done")
    + _fields(pa.float64(), "t_end t_last_put throughput utilisation arrival_rate blocked_fraction")
    + _fields(pa.float64(), "wait_mean wait_p50 wait_p95 wait_p99 sojourn_mean sojourn_p50 sojourn_p95 sojourn_p99")
    + [("depth_mean", pa.float64()), ("depth_max", pa.int64()), ("depth_final", pa.int64())]
    + [("backlog_slope", pa.float64())]
    + _fields(pa.float64(), "arrival_obs_mean arrival_obs_sd service_obs_mean service_obs_sd")
    + _fields(pa.float64(), "clock_lag_mean clock_lag_max")
    + _fields(pa.string(), "status error")
    + [("wall_seconds", pa.float64())],
    metadata=_META,
)

_NULLABLE_FLOATS = ("t_get", "t_done", "wait", "service", "sojourn")
_TMP = ".tmp"


def _tmp(final: Path) -> Path:
    """A temporary name beside ``final``, unique to this process (two writers never share one)."""
    return final.with_name(f"{final.name}.{os.getpid()}{_TMP}")


def cell_name(cell: int) -> str:
    """Return the file name of a cell's parquet files, e.g. ``cell-00003.parquet``."""
    return f"cell-{cell:05d}.parquet"


def _atomic_replace(tmp: Path, final: Path) -> None:
    with open(tmp, "rb") as fh:
        os.fsync(fh.fileno())
    os.replace(tmp, final)


class CellWriter:
    """Streams one cell's items and depth changes to ``items/`` and ``depth/`` (all replications).

    Args:
        run: the results folder.
        cell: the cell id.

    Use :meth:`start_replication` to set the replication of the batches that follow, and :meth:`commit`
    once the cell is complete: only then do the files appear under their final names.
    """

    def __init__(self, run: Path, cell: int) -> None:
        self._cell = cell
        self._replication = 0
        self._paths = []
        self._writers = {}
        for kind, schema in (("items", ITEMS_SCHEMA), ("depth", DEPTH_SCHEMA)):
            final = run / kind / cell_name(cell)
            tmp = _tmp(final)
            self._paths.append((tmp, final))
            self._writers[kind] = pq.ParquetWriter(tmp, schema, compression="zstd")

    def start_replication(self, replication: int) -> None:
        """Tag the batches that follow with ``replication``."""
        self._replication = replication

    def _ids(self, n: int) -> list[pa.Array]:
        return [pa.array(np.full(n, self._cell, dtype=np.int64)), pa.array(np.full(n, self._replication, dtype=np.int64))]

    def items(self, columns: dict[str, np.ndarray]) -> None:
        """Write a batch of item rows."""
        n = len(columns["item"])
        arrays = self._ids(n) + [columns["item"], pa.array(columns["worker"], mask=columns["worker"] < 0)]
        for name in ITEMS_SCHEMA.names[4:]:
            values = columns[name]
            mask = np.isnan(values) if name in _NULLABLE_FLOATS else None
            arrays.append(pa.array(values, mask=mask))
        self._writers["items"].write_batch(pa.record_batch(arrays, schema=ITEMS_SCHEMA))

    def depth(self, columns: dict[str, np.ndarray]) -> None:
        """Write a batch of depth changes."""
        n = len(columns["t"])
        arrays = self._ids(n) + [columns["t"], columns["depth"], columns["event"]]
        self._writers["depth"].write_batch(pa.record_batch(arrays, schema=DEPTH_SCHEMA))

    def commit(self) -> None:
        """Close the files and move them to their final names."""
        for writer in self._writers.values():
            writer.close()
        for tmp, final in self._paths:
            _atomic_replace(tmp, final)

    def abort(self) -> None:
        """Close and delete the temporary files (the cell failed)."""
        for writer in self._writers.values():
            try:
                writer.close()
            except Exception:
                pass
        for tmp, _ in self._paths:
            tmp.unlink(missing_ok=True)


def _rows_table(rows: list[dict[str, Any]]) -> pa.Table:
    return pa.Table.from_pylist(rows, schema=CELLS_SCHEMA)


def write_part(run: Path, cell: int, rows: list[dict[str, Any]]) -> None:
    """Write a cell's summary rows to ``parts/``; the file's presence marks the cell finished."""
    final = run / "parts" / cell_name(cell)
    tmp = _tmp(final)
    pq.write_table(_rows_table(rows), tmp)
    _atomic_replace(tmp, final)


def finished_cells(run: Path) -> set[int]:
    """Return the ids of cells that finished (a summary part exists and no replication failed)."""
    done = set()
    for path in (run / "parts").glob("cell-*.parquet"):
        status = pq.read_table(path, columns=["status"]).column("status").to_pylist()
        if "failed" not in status:
            done.add(int(path.name[5:10]))
    return done


def read_parts(run: Path) -> pa.Table | None:
    """Return all summary parts as one table sorted by (cell, replication), or ``None`` if none."""
    paths = sorted((run / "parts").glob("cell-*.parquet"))
    if not paths:
        return None
    table = pa.concat_tables([pq.read_table(p, schema=CELLS_SCHEMA) for p in paths])
    return table.sort_by([("cell", "ascending"), ("replication", "ascending")])


def write_cells(run: Path) -> int:
    """Consolidate ``parts/`` into ``cells.parquet`` (atomically); return the number of rows."""
    table = read_parts(run)
    if table is None:
        return 0
    final = run / "cells.parquet"
    tmp = _tmp(final)
    pq.write_table(table.replace_schema_metadata(_META), tmp)
    _atomic_replace(tmp, final)
    return table.num_rows


def write_manifest(run: Path, manifest: dict[str, Any]) -> None:
    """Write ``manifest.json`` atomically."""
    final = run / "manifest.json"
    tmp = _tmp(final)
    tmp.write_text(json.dumps(manifest, indent=2, sort_keys=False, default=str) + "\n")
    _atomic_replace(tmp, final)


def read_manifest(run: Path) -> dict[str, Any]:
    """Read ``manifest.json``."""
    return json.loads((run / "manifest.json").read_text())


def clean_partial(run: Path) -> Iterable[Path]:
    """Delete temporary files left by an interrupted run (only names qbench writes); return them."""
    removed = []
    tops = [run / f"{name}" for name in _TOP_FILES]
    candidates = [p for top in tops for p in run.glob(f"{top.name}.*{_TMP}")]
    candidates += [p for sub in _CELL_DIRS for p in (run / sub).glob(f"cell-*{_TMP}")]
    for tmp in candidates:
        if _OWN_TMP.fullmatch(tmp.name):
            tmp.unlink(missing_ok=True)
            removed.append(tmp)
    return removed


# -- recognising a run folder (what --force may replace) ----------------------------------------

_TOP_FILES = ("manifest.json", "cells.parquet")
_CELL_DIRS = ("items", "depth", "parts")
_REPORT_DIR = "report"
_CELL_FILE = re.compile(r"cell-\d{5,}\.parquet")
_OWN_TMP = re.compile(r"(manifest\.json|cells\.parquet|cell-\d{5,}\.parquet)\.\d+\.tmp")
_REPORT_FILE = re.compile(r"[\w.-]+\.(png|svg|html|md|csv|json)")
#: Keys every qbench manifest has had since version 1 (version 2 adds ``format``).
_MANIFEST_KEYS = {"schema_version", "run", "status", "grid", "cells"}


def is_run(folder: Path) -> bool:
    """Whether ``folder`` holds a qbench run: a ``manifest.json`` that the results format recognises
    (a JSON object with qbench's ``format`` marker, or every key a version-1 manifest had)."""
    try:
        manifest = json.loads((folder / "manifest.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    if not isinstance(manifest, dict):
        return False
    return manifest.get("format") == FORMAT or _MANIFEST_KEYS <= manifest.keys()


def foreign_entries(folder: Path) -> list[Path]:
    """Entries of ``folder`` that qbench does not write in a run folder (empty for a pure run).

    qbench writes ``manifest.json``, ``cells.parquet``, ``items/``, ``depth/`` and ``parts/``
    holding only ``cell-NNNNN.parquet`` files, ``report/`` holding only chart and document files,
    and their temporary names while writing. Symbolic links are always foreign.
    """
    foreign = []
    for entry in folder.iterdir():
        name = entry.name
        if entry.is_symlink():
            foreign.append(entry)
        elif name in _TOP_FILES or _OWN_TMP.fullmatch(name):
            if not entry.is_file():
                foreign.append(entry)
        elif name in _CELL_DIRS or name == _REPORT_DIR:
            pattern = _REPORT_FILE if name == _REPORT_DIR else _CELL_FILE
            if not entry.is_dir():
                foreign.append(entry)
                continue
            for inner in entry.iterdir():
                own = pattern.fullmatch(inner.name) or (name != _REPORT_DIR and _OWN_TMP.fullmatch(inner.name))
                if inner.is_symlink() or not inner.is_file() or not own:
                    foreign.append(inner)
        else:
            foreign.append(entry)
    return foreign


def _homes() -> set[Path]:
    """Every user's home directory this machine knows of, resolved."""
    homes = {Path.home()}
    try:
        import pwd

        homes |= {Path(entry.pw_dir) for entry in pwd.getpwall() if entry.pw_dir}
    except (ImportError, OSError):
        pass
    return {home.resolve() for home in homes}


def _check_not_precious(folder: Path) -> None:
    """Refuse the working directory, its parents, home directories and their parents, and any
    folder holding a ``.git``, whatever else they hold."""
    resolved = folder.resolve()
    if Path.cwd().resolve().is_relative_to(resolved):
        raise ValueError(f"{str(folder)!r} is the working directory or one of its parents; refusing to replace it")
    if any(home.is_relative_to(resolved) for home in _homes()):
        raise ValueError(f"{str(folder)!r} is a home directory or one of its parents; refusing to replace it")
    if (resolved / ".git").exists():
        raise ValueError(f"{str(folder)!r} holds a .git; refusing to replace it")


def remove_run(folder: Path) -> None:
    """Delete a run folder that holds nothing but what qbench writes, file by file, then the folder.

    An empty folder is removed too. Never the working directory or a parent of it, a home directory
    or a folder with a ``.git``, whatever they hold.

    Raises:
        ValueError: the folder may not be replaced (nothing is deleted then); the message is one line.
    """
    _check_not_precious(folder)
    if not any(folder.iterdir()):
        folder.rmdir()
        return
    if not is_run(folder):
        raise ValueError(f"{str(folder)!r} is not a qbench results folder; refusing to replace it")
    foreign = foreign_entries(folder)
    if foreign:
        raise ValueError(f"{str(folder)!r} holds files qbench did not write (e.g. {foreign[0].name!r}); "
                         "refusing to replace it")
    for sub in (*_CELL_DIRS, _REPORT_DIR):
        if (folder / sub).is_dir():
            for inner in (folder / sub).iterdir():
                inner.unlink()
            (folder / sub).rmdir()
    for entry in folder.iterdir():
        entry.unlink()
    folder.rmdir()
