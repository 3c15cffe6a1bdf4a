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

from bench.digest import Digest, Digester
from bench.encoding import (
    DEPTH_FILE_SCHEMA,
    DIGEST_WRITER_OPTIONS,
    ITEMS_FILE_SCHEMA,
    WRITER_OPTIONS,
    encode_depth,
    encode_digests,
    encode_events,
    encode_items,
    int64s,
    read_whole,
    rows_table,
)
from bench.errors import InputError
from bench.results_format import (
    CELL_DIRS,
    CELLS,
    CELLS_SCHEMA,
    DEPTH,
    DIGESTS,
    EVENTS,
    EVENTS_SCHEMA,
    FILES_KEY,
    ITEMS,
    LOCK,
    MANIFEST,
    METADATA,
    PARTS,
    REPORT,
    cell_id,
    cell_name,
    foreign_entries,
    is_run,
    is_tmp,
    sample_fraction,
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
    "PARTS_PER_READ",
    "ROWS_PER_GROUP",
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
    """Streams one cell's records (all replications): its digests to ``digests/`` and its events
    (the arrival rate in force, the worker count) to ``events/`` always, and its items and depth
    changes to ``items/`` and ``depth/`` as the record level says.

    Args:
        run: the results folder.
        cell: the cell id.
        record: the grid's record level: ``items`` (every item and depth change), ``sample:F`` (a
            seeded fraction F of the items, no depth changes) or ``summary`` (digests only).
        seed: the grid's root seed (it seeds the sample).

    Use :meth:`start_replication` before a replication's batches and :meth:`end_replication` after
    them, and :meth:`commit` once the cell is complete: only then do the files appear under their
    final names.
    """

    def __init__(self, run: Path, cell: int, record: str = "items", seed: int = 0) -> None:
        self._run, self._cell, self._seed = run, cell, seed
        self._fraction = sample_fraction(record)
        self._replication = 0
        self._digester: Digester | None = None
        self._digests: list[dict[str, Any]] = []
        self._keep: np.random.Generator | None = None
        self._paths: dict[str, tuple[Path, Path]] = {}
        self._writers: dict[str, Any] = {}
        kinds = {1.0: (ITEMS, DEPTH), None: ()}.get(self._fraction, (ITEMS,))
        for kind in (*kinds, EVENTS, DIGESTS):
            final = run / kind / cell_name(cell)
            self._paths[kind] = (tmp_name(final), final)
        for kind, schema in ((ITEMS, ITEMS_FILE_SCHEMA), (DEPTH, DEPTH_FILE_SCHEMA)):
            if kind in kinds:
                tmp = self._paths[kind][0]
                self._writers[kind] = pq.ParquetWriter(tmp, schema.with_metadata(METADATA), **WRITER_OPTIONS[kind])
        self._writers[EVENTS] = pq.ParquetWriter(self._paths[EVENTS][0], EVENTS_SCHEMA, compression="zstd")

    def start_replication(self, replication: int, workers: int = 1) -> None:
        """Tag the batches that follow with ``replication`` (run with ``workers`` workers)."""
        self._replication = replication
        self._digester = Digester(workers, replication)
        if self._fraction is not None and self._fraction < 1.0:
            key = np.random.SeedSequence(self._seed, spawn_key=(_SAMPLE_KEY, self._cell, replication))
            self._keep = np.random.default_rng(key)

    def end_replication(self, t_end: float) -> Digest:
        """Close the replication that ended at ``t_end``; return its digest."""
        if self._digester is None:
            raise RuntimeError("end_replication without start_replication")
        digest = self._digester.finish(t_end)
        self._digests.append(digest.to_row())
        self._digester = None
        return digest

    def items(self, columns: dict[str, np.ndarray]) -> None:
        """Digest a batch of item rows and write it (or its sample) in the stored form."""
        if self._digester is not None:
            self._digester.items(columns)
        if ITEMS not in self._writers:
            return
        if self._keep is not None:
            chosen = self._keep.random(len(columns["item"])) < (self._fraction or 0.0)
            columns = {name: np.asarray(values)[chosen] for name, values in columns.items()}
        batch = encode_items(columns, self._cell, self._replication)
        self._writers[ITEMS].write_batch(batch.replace_schema_metadata(METADATA))

    def depth(self, columns: dict[str, np.ndarray]) -> None:
        """Digest a batch of depth changes and write it (record level ``items`` only)."""
        if self._digester is not None:
            self._digester.depth(columns)
        if DEPTH in self._writers:
            batch = encode_depth(columns, self._cell, self._replication)
            self._writers[DEPTH].write_batch(batch.replace_schema_metadata(METADATA))

    def events(self, columns: dict[str, np.ndarray]) -> None:
        """Write a batch of events (``t``, ``kind``, ``value``): the arrival rate in force, the worker count."""
        batch = encode_events(columns, self._cell, self._replication, EVENTS_SCHEMA)
        self._writers[EVENTS].write_batch(batch)

    def commit(self) -> dict[str, dict[str, Any]]:
        """Close the files and move them to their final names; return each file's size and sha256
        (by kind), which :func:`write_part` records so that a resume can tell a damaged file."""
        for writer in self._writers.values():
            writer.close()
        table = encode_digests(self._digests, self._cell).replace_schema_metadata(METADATA)
        pq.write_table(table, self._paths[DIGESTS][0], **DIGEST_WRITER_OPTIONS)
        checks = {}
        for kind, (tmp, final) in self._paths.items():
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
        for tmp, _ in self._paths.values():
            tmp.unlink(missing_ok=True)


#: The spawn-key tag of the sample's random stream (apart from every simulation stream's key).
_SAMPLE_KEY = 0x53414D50


def _rows_table(rows: list[dict[str, Any]]) -> pa.Table:
    return rows_table(rows, CELLS_SCHEMA)


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


def _as_cells(table: pa.Table) -> pa.Table:
    """A part's rows with :data:`CELLS_SCHEMA` (a cast, which imports ``pyarrow.compute``, only when
    the types differ)."""
    table = table.replace_schema_metadata(None)
    return table if table.schema.equals(CELLS_SCHEMA.remove_metadata()) else table.cast(CELLS_SCHEMA)


def finished_cells(run: Path) -> set[int]:
    """Return the ids of cells that finished (a readable summary part exists and no replication failed)."""
    done = set()
    for path in (run / PARTS).iterdir():
        cell = cell_id(path.name)
        if cell is None:
            continue
        try:
            part = read_whole(path, columns=["status"])
        except (OSError, pa.ArrowException):  # damaged: the cell runs again and its part is rewritten
            continue
        if "failed" not in part.column("status").to_pylist() and _files_intact(run, cell, part.schema.metadata):
            done.add(cell)
    return done


def _files_intact(run: Path, cell: int, metadata: dict[bytes, bytes] | None) -> bool:
    """Whether a finished cell's files are those its part recorded (size and sha256), every kind
    it recorded; a part without fingerprints needs its item and depth files to exist."""
    recorded = json.loads(metadata[FILES_KEY]) if metadata and FILES_KEY in metadata else None
    for kind in (ITEMS, DEPTH) if recorded is None else [k for k in recorded if k in CELL_DIRS]:
        path = run / kind / cell_name(cell)
        if not path.is_file():
            return False
        if recorded is not None and recorded.get(kind) != _fingerprint(path):
            return False
    return True


#: Parts read at once when they are consolidated (each holds its own small buffers: a few dozen
#: are a few MB), and rows of ``cells.parquet`` per row group.
PARTS_PER_READ, ROWS_PER_GROUP = 32, 4096


def _part_paths(run: Path) -> list[Path]:
    """The summary parts, in cell order."""
    paths = [p for p in (run / PARTS).iterdir() if cell_id(p.name) is not None]
    return sorted(paths, key=lambda p: cell_id(p.name) or 0)


def _in_order(table: pa.Table) -> pa.Table:
    """Rows sorted by (cell, replication): already so in parts read in cell order (no sort then)."""
    key = int64s(table.column("cell")) * (1 << 32) + int64s(table.column("replication"))
    if np.all(key[1:] > key[:-1]):
        return table
    return table.sort_by([("cell", "ascending"), ("replication", "ascending")])


def read_parts(run: Path) -> pa.Table | None:
    """Return all summary parts as one table sorted by (cell, replication), or ``None`` if none."""
    paths = _part_paths(run)
    if not paths:
        return None
    return _in_order(pa.concat_tables([_as_cells(read_whole(p)) for p in paths]))


def write_cells(run: Path) -> int:
    """Consolidate ``parts/`` into ``cells.parquet`` (atomically); return the number of rows.

    The parts are read :data:`PARTS_PER_READ` at a time and compacted, and written
    :data:`ROWS_PER_GROUP` rows to a row group, so memory does not grow with the number of cells (a
    10,000-cell run's parts read at once took 1.1 GB).
    """
    paths = _part_paths(run)
    if not paths:
        return 0
    final = run / CELLS
    tmp = tmp_name(final)
    rows, held, count = 0, [], 0
    with pq.ParquetWriter(tmp, CELLS_SCHEMA) as writer:
        for start in range(0, len(paths), PARTS_PER_READ):
            parts = [_as_cells(read_whole(p)) for p in paths[start : start + PARTS_PER_READ]]
            held.append(_in_order(pa.concat_tables(parts)).combine_chunks())  # one chunk a column: compact
            count += held[-1].num_rows
            if count >= ROWS_PER_GROUP or start + PARTS_PER_READ >= len(paths):
                group = pa.concat_tables(held).combine_chunks()
                writer.write_table(group.replace_schema_metadata(METADATA))
                rows, held, count = rows + group.num_rows, [], 0
    _atomic_replace(tmp, final)
    return rows


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
