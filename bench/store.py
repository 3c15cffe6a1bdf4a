"""Writing run folders in the results format (:mod:`bench.results_format`), and replacing them.

Each cell's files are written under a temporary name and renamed when complete, so any file that
exists is whole. Items and depth changes are written batch by batch (:class:`CellWriter` is a
:class:`~bench.recorder.Sink`), so memory does not grow with the number of rows. :func:`remove_run`
is the one place that deletes a folder, and it deletes only a pure qbench run.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import json
import os
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from bench.errors import InputError
from bench.results_format import (
    CELL_DIRS,
    CELLS,
    CELLS_SCHEMA,
    DEPTH,
    DEPTH_SCHEMA,
    EVENTS,
    EVENTS_SCHEMA,
    FILES_KEY,
    ITEMS,
    ITEMS_SCHEMA,
    LOCK,
    MANIFEST,
    METADATA,
    NULLABLE_FLOATS,
    PARTS,
    REPORT,
    cell_id,
    cell_name,
    foreign_entries,
    is_run,
    is_tmp,
    item_defaults,
    tmp_name,
)

__all__ = [
    "CellWriter",
    "DiskFull",
    "FolderBusy",
    "disk_full",
    "locked",
    "clean_partial",
    "finished_cells",
    "read_manifest",
    "read_parts",
    "remove_run",
    "write_cells",
    "write_manifest",
    "write_part",
]


class DiskFull(Exception):
    """The results folder's file system is full (or a quota or file-size limit was reached): the
    run stops; every finished cell stays, and ``--resume`` finishes the run once there is room."""


#: errno values that mean "no room to write": no space, a quota, a file-size limit.
_FULL = {errno.ENOSPC, errno.EDQUOT, errno.EFBIG}


def disk_full(err: BaseException) -> bool:
    """Whether ``err`` (or what caused it) is a write refused for want of room."""
    while err is not None:
        if isinstance(err, DiskFull) or (isinstance(err, OSError) and err.errno in _FULL):
            return True
        err = err.__cause__ or err.__context__  # type: ignore[assignment]
    return False


class FolderBusy(InputError):
    """Another process is writing the results folder (it holds the folder's lock)."""


@contextlib.contextmanager
def locked(folder: Path) -> Iterator[None]:
    """Hold ``folder``'s lock (an ``flock`` on its ``.lock`` file) while writing it.

    The operating system releases the lock when the holder ends, however it ends (``kill -9``
    included), so a killed run never leaves a folder locked. Where ``flock`` does not exist
    (Windows), this does nothing.

    Raises:
        FolderBusy: another process holds the lock.
    """
    try:
        import fcntl
    except ImportError:  # pragma: no cover - no flock on this platform
        yield
        return
    fd = os.open(folder / LOCK, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW, 0o644)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            owner = os.pread(fd, 32, 0).decode(errors="replace").strip() or "?"
            raise FolderBusy(f"{str(folder)!r} is being written by another qbench run (pid {owner}); wait for it to "
                             "end or choose another folder") from None  # fmt: skip
        os.ftruncate(fd, 0)
        os.pwrite(fd, str(os.getpid()).encode(), 0)
        yield
    finally:
        os.close(fd)  # closing the descriptor releases the lock


def _atomic_replace(tmp: Path, final: Path) -> None:
    with open(tmp, "rb") as fh:
        os.fsync(fh.fileno())
    os.replace(tmp, final)


class CellWriter:
    """Streams one cell's items, depth changes and events to ``items/``, ``depth/`` and ``events/``
    (all replications).

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
        for kind, schema in ((ITEMS, ITEMS_SCHEMA), (DEPTH, DEPTH_SCHEMA), (EVENTS, EVENTS_SCHEMA)):
            final = run / kind / cell_name(cell)
            tmp = tmp_name(final)
            self._paths.append((tmp, final))
            self._writers[kind] = pq.ParquetWriter(tmp, schema, compression="zstd")

    def start_replication(self, replication: int) -> None:
        """Tag the batches that follow with ``replication``."""
        self._replication = replication

    def _ids(self, n: int) -> list[pa.Array]:
        return [
            pa.array(np.full(n, self._cell, dtype=np.int64)),
            pa.array(np.full(n, self._replication, dtype=np.int64)),
        ]

    def items(self, columns: dict[str, np.ndarray]) -> None:
        """Write a batch of item rows."""
        n = len(columns["item"])
        columns = item_defaults(columns)
        arrays = self._ids(n) + [columns["item"], pa.array(columns["worker"], mask=columns["worker"] < 0)]
        for name in ITEMS_SCHEMA.names[4:]:
            values = columns[name]
            mask = np.isnan(values) if name in NULLABLE_FLOATS else None
            arrays.append(pa.array(values, mask=mask, type=ITEMS_SCHEMA.field(name).type))
        self._writers[ITEMS].write_batch(pa.record_batch(arrays, schema=ITEMS_SCHEMA))

    def depth(self, columns: dict[str, np.ndarray]) -> None:
        """Write a batch of depth changes."""
        n = len(columns["t"])
        arrays = self._ids(n) + [columns["t"], columns["depth"], columns["event"]]
        self._writers[DEPTH].write_batch(pa.record_batch(arrays, schema=DEPTH_SCHEMA))

    def events(self, columns: dict[str, np.ndarray]) -> None:
        """Write a batch of events (``t``, ``kind``, ``value``): the arrival rate in force, the worker count."""
        n = len(columns["t"])
        arrays = self._ids(n) + [columns["t"], pa.array(columns["kind"], type=pa.string()), columns["value"]]
        self._writers[EVENTS].write_batch(pa.record_batch(arrays, schema=EVENTS_SCHEMA))

    def commit(self) -> dict[str, dict[str, Any]]:
        """Close the files and move them to their final names; return each file's size and sha256
        (by kind), which :func:`write_part` records so that a resume can tell a damaged file."""
        for writer in self._writers.values():
            writer.close()
        checks = {}
        for (tmp, final), kind in zip(self._paths, (ITEMS, DEPTH, EVENTS)):
            checks[kind] = _fingerprint(tmp)
            _atomic_replace(tmp, final)
        return checks

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


def _fingerprint(path: Path) -> dict[str, Any]:
    """A file's size and sha256."""
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return {"bytes": path.stat().st_size, "sha256": digest.hexdigest()}


def write_part(run: Path, cell: int, rows: list[dict[str, Any]], files: dict[str, dict] | None = None) -> None:
    """Write a cell's summary rows to ``parts/``; the file's presence marks the cell finished.

    Args:
        run: the results folder.
        cell: the cell id.
        rows: its summary rows.
        files: the fingerprints :meth:`CellWriter.commit` returned, recorded in the part's metadata.
    """
    final = run / PARTS / cell_name(cell)
    tmp = tmp_name(final)
    table = _rows_table(rows)
    if files:
        table = table.replace_schema_metadata({**METADATA, FILES_KEY: json.dumps(files).encode()})
    pq.write_table(table, tmp)
    _atomic_replace(tmp, final)


def finished_cells(run: Path) -> set[int]:
    """Return the ids of cells that finished (a readable summary part exists and no replication failed)."""
    done = set()
    for path in (run / PARTS).iterdir():
        cell = cell_id(path.name)
        if cell is None:
            continue
        try:
            part = pq.read_table(path, columns=["status"])
        except (OSError, pa.ArrowException):  # damaged: the cell runs again and its part is rewritten
            continue
        if "failed" not in part.column("status").to_pylist() and _files_intact(run, cell, part.schema.metadata):
            done.add(cell)
    return done


def _files_intact(run: Path, cell: int, metadata: dict[bytes, bytes] | None) -> bool:
    """Whether a finished cell's item, depth and event files are those its part recorded (size and sha256);
    a part written before fingerprints were recorded only needs the files to exist."""
    recorded = json.loads(metadata[FILES_KEY]) if metadata and FILES_KEY in metadata else None
    for kind in (ITEMS, DEPTH, EVENTS):
        path = run / kind / cell_name(cell)
        if not path.is_file():
            return False
        if recorded is not None and recorded.get(kind) != _fingerprint(path):
            return False
    return True


def read_parts(run: Path) -> pa.Table | None:
    """Return all summary parts as one table sorted by (cell, replication), or ``None`` if none."""
    paths = sorted(p for p in (run / PARTS).iterdir() if cell_id(p.name) is not None)
    if not paths:
        return None
    table = pa.concat_tables([pq.read_table(p, schema=CELLS_SCHEMA) for p in paths])
    return table.sort_by([("cell", "ascending"), ("replication", "ascending")])


def write_cells(run: Path) -> int:
    """Consolidate ``parts/`` into ``cells.parquet`` (atomically); return the number of rows."""
    table = read_parts(run)
    if table is None:
        return 0
    final = run / CELLS
    tmp = tmp_name(final)
    pq.write_table(table.replace_schema_metadata(METADATA), tmp)
    _atomic_replace(tmp, final)
    return table.num_rows


def write_manifest(run: Path, manifest: dict[str, Any]) -> None:
    """Write ``manifest.json`` atomically."""
    final = run / MANIFEST
    tmp = tmp_name(final)
    tmp.write_text(json.dumps(manifest, indent=2, sort_keys=False, default=str) + "\n")
    _atomic_replace(tmp, final)


def read_manifest(run: Path) -> dict[str, Any]:
    """Read ``manifest.json``."""
    return json.loads((run / MANIFEST).read_text())


def clean_partial(run: Path) -> Iterable[Path]:
    """Delete temporary files left by an interrupted run (only names qbench writes); return them."""
    removed = []
    for folder in (run, *(run / sub for sub in CELL_DIRS)):
        for path in folder.glob("*.tmp") if folder.is_dir() else ():
            if is_tmp(path.name) and path.is_file() and not path.is_symlink():
                path.unlink(missing_ok=True)
                removed.append(path)
    return removed


# -- replacing a run folder (what --force may delete) -------------------------------------------


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
    _check_pure(folder)
    with locked(folder):  # never while another run writes it
        _check_pure(folder)
        for sub in (*CELL_DIRS, REPORT):
            if (folder / sub).is_dir():
                for inner in (folder / sub).iterdir():
                    inner.unlink()
                (folder / sub).rmdir()
        for entry in folder.iterdir():
            entry.unlink()
        folder.rmdir()


def _check_pure(folder: Path) -> None:
    """Refuse a folder holding anything qbench does not write."""
    foreign = foreign_entries(folder)
    if foreign:
        raise ValueError(
            f"{str(folder)!r} holds files qbench did not write (e.g. {foreign[0].name!r}); refusing to replace it"
        )
