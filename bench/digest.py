"""A replication's digest: what the steady-state estimator, the report and compare need of its
items, in memory and on disk that do not grow with the number of items.

:class:`Digester` is a :class:`~bench.recorder.Sink`: it sees every batch of items and depth changes
once, as :class:`~bench.replication_stats.ReplicationStats` does, and :meth:`Digester.finish` gives
a :class:`Digest`:

- **warm-up batches**: the waits that are known (items taken), in item order, summed in batches of
  ``5 * 2**j`` (at most :data:`MSER_BATCHES` batches; pairs are merged as the run grows), with the
  item index where each batch starts. MSER on their means finds the warm-up cut.
- **segments**: the items in :data:`SEGMENTS_MIN` to ``2 * SEGMENTS_MIN`` runs of consecutive
  items (``5 * 2**k`` each). Per segment, for the wait, the sojourn and the service: the count, the
  sum and a sparse log-histogram (the one of ``cells.parquet``: 0.115% resolution; the service
  times' histogram is one for the whole run, :data:`WHOLE_RUN`); the items and
  the abandoned ones; the put time of its first item. A warm-up cut is rounded up to a segment
  start, so every figure after it is a sum over whole segments.
- **time bins**: at most :data:`TIME_BINS` bins of equal width (doubled as the run grows): the
  cumulative busy worker-seconds and queue item-seconds at each bin boundary (from the items'
  intervals, so a window's utilisation and mean queue are differences), and the largest and the
  last queue size in each bin (from the depth changes: the backlog over time).

Every rule above depends only on the data, never on how the batches were cut, so a replication
digested batch by batch while it runs and one digested from its whole columns agree.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, fields
from typing import Any

import numpy as np

from bench.replication_stats import SLOTS, log_slots

__all__ = [
    "Digest", "Digester", "KINDS", "MSER_BASE", "MSER_BATCHES", "SEGMENTS_MIN", "TIME_BINS", "WHOLE_RUN", "merge_pairs",
]  # fmt: skip

#: Items per warm-up batch at the start (MSER-5), and the most batches kept.
MSER_BASE, MSER_BATCHES = 5, 1024
#: Items per segment at the start; segments are merged in pairs when there are more than twice
#: SEGMENTS_MIN, so a long run has between SEGMENTS_MIN and 2 * SEGMENTS_MIN of them.
SEGMENT_BASE, SEGMENTS_MIN = 5, 16
#: The most time bins.
TIME_BINS = 512
#: The latencies digested.
KINDS = ("wait", "sojourn", "service")
#: The latencies whose histogram covers the whole run (every key in segment 0): service times do
#: not depend on the queue's state, so a warm-up cut has nothing to remove from them, and one
#: histogram instead of one per segment makes a digest about a third smaller.
WHOLE_RUN = frozenset({"service"})
#: The first items whose put and service times a digest keeps: two runs whose digests agree on them
#: drew the same random numbers (compare pairs their replications).
HEAD = 20
_FIRST_WIDTH = 2.0**-20  # seconds: the first time bins' width, doubled until the run fits


def merge_pairs(values: np.ndarray) -> np.ndarray:
    """Sums of consecutive pairs (an odd last value is dropped): a batch or segment twice as long."""
    n = len(values) // 2 * 2
    return values[:n:2] + values[1:n:2]


@dataclass(frozen=True)
class Digest:
    """One replication, digested (see the module docstring). Arrays are numpy.

    Attributes:
        replication: the replication id.
        workers: the worker count.
        items: items put.
        t_end: when the replication ended.
        last_put: when the last item was put.
        mser_batch: known waits per warm-up batch.
        mser_sums: the sum of each full warm-up batch.
        mser_first: the item index of each batch's first wait.
        segment: items per segment.
        seg_first_t: the put time of each segment's first item.
        seg_items: items per segment.
        seg_abandoned: abandoned items per segment.
        counts, sums: per kind (``wait``, ``sojourn``, ``service``) and segment: known values and their sum.
        keys, tallies: per kind, a sparse histogram of all segments: ``segment * SLOTS + slot``
            (sorted) and how many values fell there.
        bin_width: the time bins' width.
        busy, queue: cumulative worker-seconds busy and item-seconds queued at each bin boundary
            ``k * bin_width`` (``k = 0 .. bins``).
        depth_max, depth_last: per time bin, the largest queue size seen at a change and the size
            after its last change (-1: no change in that bin).
        head_put, head_service: the put and service times of the first :data:`HEAD` items (NaN
            where unknown).
    """

    replication: int
    workers: int
    items: int
    t_end: float
    last_put: float
    mser_batch: int
    mser_sums: np.ndarray = field(repr=False)
    mser_first: np.ndarray = field(repr=False)
    segment: int
    seg_first_t: np.ndarray = field(repr=False)
    seg_items: np.ndarray = field(repr=False)
    seg_abandoned: np.ndarray = field(repr=False)
    counts: dict[str, np.ndarray] = field(repr=False)
    sums: dict[str, np.ndarray] = field(repr=False)
    keys: dict[str, np.ndarray] = field(repr=False)
    tallies: dict[str, np.ndarray] = field(repr=False)
    bin_width: float
    busy: np.ndarray = field(repr=False)
    queue: np.ndarray = field(repr=False)
    depth_max: np.ndarray = field(repr=False)
    depth_last: np.ndarray = field(repr=False)
    head_put: np.ndarray = field(repr=False)
    head_service: np.ndarray = field(repr=False)

    @classmethod
    def of(
        cls, columns: dict[str, np.ndarray], workers: int, replication: int = 0, t_end: float | None = None
    ) -> Digest:
        """The digest of a replication's whole item columns (those present of ``wait``, ``sojourn``,
        ``service``, ``t_put``, ``t_get``, ``t_done`` and ``abandoned`` (1.0 for an abandoned item)).

        Args:
            columns: the item columns in item order.
            workers: the worker count.
            replication: the replication id.
            t_end: when the replication ended (default: its latest known time).
        """
        digester = Digester(workers, replication)
        digester.items(columns)
        if t_end is None:
            known = [np.nanmax(columns[c]) for c in ("t_put", "t_get", "t_done") if c in columns and len(columns[c])]
            t_end = float(max([v for v in known if not math.isnan(v)], default=0.0))
        return digester.finish(t_end)

    def to_row(self) -> dict[str, Any]:
        """The digest as one flat row: scalars, and arrays as lists (the stored form)."""
        row: dict[str, Any] = {}
        for f in fields(self):
            value = getattr(self, f.name)
            if isinstance(value, dict):
                for kind in KINDS:
                    row[f"{f.name}_{kind}"] = value[kind]
            else:
                row[f.name] = value
        return row

    @classmethod
    def from_row(cls, row: dict[str, Any]) -> Digest:
        """Rebuild a digest from :meth:`to_row`'s form (arrays may come back as lists)."""
        values: dict[str, Any] = {}
        for f in fields(cls):
            if f.name in ("counts", "sums", "keys", "tallies"):
                values[f.name] = {kind: np.asarray(row[f"{f.name}_{kind}"], dtype=_DTYPES[f.name]) for kind in KINDS}
            elif f.name in _DTYPES:
                values[f.name] = np.asarray(row[f.name], dtype=_DTYPES[f.name])
            else:
                values[f.name] = row[f.name]
        return cls(**values)


_DTYPES = {"mser_sums": np.float64, "mser_first": np.int64, "seg_first_t": np.float64, "seg_items": np.int64,
           "seg_abandoned": np.int64, "counts": np.int64, "sums": np.float64, "keys": np.int64,
           "tallies": np.int64, "busy": np.float64, "queue": np.float64, "depth_max": np.int64,
           "depth_last": np.int64, "head_put": np.float64, "head_service": np.float64}  # fmt: skip


class _Batches:
    """Known waits in warm-up batches of ``MSER_BASE * 2**level`` consecutive ones: when there would
    be more than MSER_BATCHES, consecutive pairs merge (an unpaired last one becomes the open batch)."""

    def __init__(self) -> None:
        self.size = MSER_BASE
        self.sums = np.empty(0)
        self.first = np.empty(0, dtype=np.int64)
        self._open = (0.0, 0, 0)  # the batch being filled: its sum, its waits, its first item

    def add(self, waits: np.ndarray, items: np.ndarray) -> None:
        """Add known waits in item order, with their item indices."""
        while len(waits):
            total, count, first = self._open
            if count or len(waits) < self.size:  # fill the open batch first
                need = min(self.size - count, len(waits))
                first = first if count else int(items[0])
                total, count = total + float(waits[:need].sum()), count + need
                waits, items = waits[need:], items[need:]
                self._open = (total, count, first)
                if count == self.size:
                    self._open = (0.0, 0, 0)
                    self._append(np.array([total]), np.array([first], dtype=np.int64))
                continue
            full = len(waits) // self.size * self.size
            self._append(waits[:full].reshape(-1, self.size).sum(axis=1), items[: full : self.size])
            waits, items = waits[full:], items[full:]

    def _append(self, sums: np.ndarray, first: np.ndarray) -> None:
        self.sums = np.concatenate((self.sums, sums))
        self.first = np.concatenate((self.first, first))
        while len(self.sums) > MSER_BATCHES:
            self.size *= 2
            total, count, start = self._open
            if len(self.sums) % 2:  # the unpaired last batch opens the next, bigger one
                self._open = (float(self.sums[-1]) + total, self.size // 2 + count, int(self.first[-1]))
            self.sums, self.first = merge_pairs(self.sums), self.first[: len(self.sums) // 2 * 2 : 2]


class _Segments:
    """Per-segment counts, sums and sparse histograms of items in item order (segments of
    ``SEGMENT_BASE * 2**k`` items; pairs merge when there are more than 2 * SEGMENTS_MIN)."""

    def __init__(self) -> None:
        self.size = SEGMENT_BASE
        self.first_t = np.empty(0)
        self.items = np.zeros(0, dtype=np.int64)
        self.abandoned = np.zeros(0, dtype=np.int64)
        self.counts = {kind: np.zeros(0, dtype=np.int64) for kind in KINDS}
        self.sums = {kind: np.zeros(0) for kind in KINDS}
        self.keys = {kind: np.empty(0, dtype=np.int64) for kind in KINDS}
        self.tallies = {kind: np.empty(0, dtype=np.int64) for kind in KINDS}

    def add(self, items: np.ndarray, columns: dict[str, np.ndarray]) -> None:
        if not len(items):
            return
        while int(items[-1]) // self.size >= 2 * SEGMENTS_MIN:
            self._merge()
        segment = items // self.size
        count = int(segment[-1]) + 1
        self._grow(count)
        self.items += np.bincount(segment, minlength=count)
        starts = np.flatnonzero(items % self.size == 0)
        if "t_put" in columns:
            self.first_t[segment[starts]] = columns["t_put"][starts]
        if "abandoned" in columns:
            self.abandoned += np.bincount(segment, weights=columns["abandoned"], minlength=count).astype(np.int64)
        for kind in KINDS:
            values = columns.get(kind)
            if values is None:
                continue
            known = ~np.isnan(values)
            where, values = segment[known], values[known]
            self.counts[kind] += np.bincount(where, minlength=count)
            self.sums[kind] += np.bincount(where, weights=values, minlength=count)
            binned = np.zeros_like(where) if kind in WHOLE_RUN else where
            keys, tallies = _tally(binned, log_slots(np.maximum(values, 0.0)))
            self.keys[kind], self.tallies[kind] = _append_sparse(self.keys[kind], self.tallies[kind], keys, tallies)

    def _grow(self, count: int) -> None:
        more = count - len(self.items)
        if more <= 0:
            return
        self.first_t = np.concatenate((self.first_t, np.full(more, np.nan)))
        self.items = np.concatenate((self.items, np.zeros(more, dtype=np.int64)))
        self.abandoned = np.concatenate((self.abandoned, np.zeros(more, dtype=np.int64)))
        for kind in KINDS:
            self.counts[kind] = np.concatenate((self.counts[kind], np.zeros(more, dtype=np.int64)))
            self.sums[kind] = np.concatenate((self.sums[kind], np.zeros(more)))

    def _merge(self) -> None:
        """Merge consecutive pairs of segments (the segment size doubles)."""
        self._grow(len(self.items) + len(self.items) % 2)
        self.size *= 2
        self.first_t = self.first_t[::2]
        self.items, self.abandoned = merge_pairs(self.items), merge_pairs(self.abandoned)
        for kind in KINDS:
            self.counts[kind], self.sums[kind] = merge_pairs(self.counts[kind]), merge_pairs(self.sums[kind])
            keys = self.keys[kind]
            merged = (keys // SLOTS // 2) * SLOTS + keys % SLOTS
            self.keys[kind], self.tallies[kind] = _sparse_sum(merged, self.tallies[kind])


def _tally(segment: np.ndarray, slots: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The sparse histogram (sorted keys ``segment * SLOTS + slot``, tallies) of values in item
    order (``segment`` never decreases): one bincount per segment, no sort."""
    if not len(segment):
        return np.empty(0, dtype=np.int64), np.empty(0, dtype=np.int64)
    cuts = np.flatnonzero(np.diff(segment)) + 1
    keys, tallies = [], []
    for lo, hi in zip(np.concatenate(([0], cuts)), np.concatenate((cuts, [len(segment)]))):
        dense = np.bincount(slots[lo:hi], minlength=SLOTS)
        present = np.flatnonzero(dense)
        keys.append(int(segment[lo]) * SLOTS + present)
        tallies.append(dense[present])
    return np.concatenate(keys), np.concatenate(tallies)


def _append_sparse(keys: np.ndarray, tallies: np.ndarray, more_keys: np.ndarray,
                   more_tallies: np.ndarray) -> tuple[np.ndarray, np.ndarray]:  # fmt: skip
    """Add a later batch's sparse histogram: only keys from its first one on can coincide."""
    if not len(more_keys):
        return keys, tallies
    split = int(np.searchsorted(keys, more_keys[0]))
    tail_keys, tail_tallies = _sparse_sum(keys[split:], tallies[split:], more_keys, more_tallies)
    return np.concatenate((keys[:split], tail_keys)), np.concatenate((tallies[:split], tail_tallies))


def _sparse_sum(keys: np.ndarray, tallies: np.ndarray, more_keys: np.ndarray | None = None,
                more_tallies: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:  # fmt: skip
    """A sparse histogram's sorted keys with the tallies of equal keys added up."""
    if more_keys is not None and more_tallies is not None:
        keys, tallies = np.concatenate((keys, more_keys)), np.concatenate((tallies, more_tallies))
    unique, inverse = np.unique(keys, return_inverse=True)
    return unique, np.bincount(inverse, weights=tallies, minlength=len(unique)).astype(np.int64)


class _TimeBins:
    """Cumulative integrals of step functions at the boundaries of at most TIME_BINS equal bins
    (the width doubles when a time falls beyond them), and the queue size per bin."""

    def __init__(self) -> None:
        self.width = _FIRST_WIDTH
        self.busy = np.zeros(TIME_BINS + 1)
        self.queue = np.zeros(TIME_BINS + 1)
        self.depth_max = np.full(TIME_BINS, -1, dtype=np.int64)
        self.depth_last = np.full(TIME_BINS, -1, dtype=np.int64)

    def fit(self, latest: float) -> None:
        """Widen the bins until ``latest`` falls inside them."""
        while latest >= TIME_BINS * self.width:
            self.width *= 2
            self.busy = np.concatenate((self.busy[::2], np.full(TIME_BINS // 2, self.busy[-1])))
            self.queue = np.concatenate((self.queue[::2], np.full(TIME_BINS // 2, self.queue[-1])))
            half = TIME_BINS // 2
            pairs_max = np.maximum(self.depth_max[::2], self.depth_max[1::2])
            right, left = self.depth_last[1::2], self.depth_last[::2]
            self.depth_max = np.concatenate((pairs_max, np.full(half, -1, dtype=np.int64)))
            self.depth_last = np.concatenate((np.where(right >= 0, right, left), np.full(half, -1, dtype=np.int64)))

    def add(self, which: str, start: np.ndarray, end: np.ndarray, weight: np.ndarray | None = None) -> None:
        """Add intervals ``[start, end)`` (``weight`` each, default 1) to the cumulative integral
        ``which`` (``busy`` or ``queue``) at every boundary ``x_k``: each adds
        ``clip(x_k - start, 0, end - start)``."""
        keep = end > start
        start, end = start[keep], end[keep]
        w = np.ones(len(start)) if weight is None else weight[keep].astype(np.float64)
        if not len(start):
            return
        self.fit(float(end.max()))
        size = TIME_BINS + 1
        opened = np.floor(start / self.width).astype(np.int64) + 1  # start < x_k for k >= opened
        closed = np.ceil(end / self.width).astype(np.int64)  # end <= x_k for k >= closed
        done = np.bincount(closed, weights=w * (end - start), minlength=size)
        open_n = np.bincount(opened, weights=w, minlength=size + 1)[:size] - np.bincount(
            closed, weights=w, minlength=size
        )
        open_t = np.bincount(opened, weights=w * start, minlength=size + 1)[:size] - np.bincount(
            closed, weights=w * start, minlength=size
        )
        x = np.arange(size) * self.width
        cumulative = getattr(self, which)  # after fit(), which may have replaced it
        cumulative += np.cumsum(done) + x * np.cumsum(open_n) - np.cumsum(open_t)

    def depth(self, t: np.ndarray, depth: np.ndarray) -> None:
        """Record queue sizes right after changes at times ``t`` (in time order)."""
        self.fit(float(t[-1]))
        slot = np.minimum((t / self.width).astype(np.int64), TIME_BINS - 1)
        np.maximum.at(self.depth_max, slot, depth)
        last = np.flatnonzero(np.diff(slot, append=slot[-1] + 1))  # the last change in each bin touched
        self.depth_last[slot[last]] = depth[last]


class Digester:
    """Digests one replication as a sink (module docstring); :meth:`finish` gives its :class:`Digest`.

    Args:
        workers: the worker count.
        replication: the replication id.
    """

    def __init__(self, workers: int, replication: int = 0) -> None:
        self.workers = workers
        self.replication = replication
        self._batches = _Batches()
        self._segments = _Segments()
        self._bins = _TimeBins()
        self._items = 0
        self._last_put = math.nan
        self._open_busy: list[np.ndarray] = []  # t_get of items in service at the end
        self._open_queue: list[np.ndarray] = []  # t_put of items never taken and never gone
        self._head_put = np.full(HEAD, np.nan)
        self._head_service = np.full(HEAD, np.nan)

    def items(self, columns: dict[str, np.ndarray]) -> None:
        """Add a batch of item rows (in item order)."""
        wait = columns["wait"]
        n = len(wait)
        if not n:
            return
        index = np.asarray(columns["item"], dtype=np.int64) if "item" in columns else self._items + np.arange(n)
        self._items = int(index[-1]) + 1
        head = index < HEAD
        if head.any():
            for name, into in (("t_put", self._head_put), ("service", self._head_service)):
                if name in columns:
                    into[index[head]] = columns[name][head]
        known = ~np.isnan(wait)
        self._batches.add(wait[known], index[known])
        digest: dict[str, np.ndarray] = {k: columns[k] for k in ("wait", "sojourn", "service", "t_put") if k in columns}
        abandoned = _abandoned(columns)
        if abandoned is not None:
            digest["abandoned"] = abandoned
        self._segments.add(index, digest)
        if "t_put" in columns:
            t_put = columns["t_put"]
            self._last_put = float(np.nanmax(t_put)) if math.isnan(self._last_put) else max(
                self._last_put, float(np.nanmax(t_put)))  # fmt: skip
            self._intervals(columns, t_put, known, abandoned)

    def _intervals(self, columns: dict[str, np.ndarray], t_put: np.ndarray, taken: np.ndarray,
                   abandoned: np.ndarray | None) -> None:  # fmt: skip
        """Queue intervals [t_put, t_get) and busy ones [t_get, t_done); open ones wait for the end."""
        bins = self._bins
        t_get = columns.get("t_get")
        if t_get is None:
            return
        put = ~np.isnan(t_put)
        bins.add("queue", t_put[taken & put], t_get[taken & put], None)
        leave = columns.get("t_leave")
        gone = np.zeros(len(t_put), dtype=bool)
        if leave is not None and abandoned is not None:  # left the queue at its deadline
            gone = abandoned.astype(bool) & put
            bins.add("queue", t_put[gone], leave[gone], None)
        self._open_queue.append(t_put[~taken & ~gone & put])
        t_done = columns.get("t_done")
        if t_done is not None:
            finished = taken & ~np.isnan(t_done)
            bins.add("busy", t_get[finished], t_done[finished], None)
            self._open_busy.append(t_get[taken & np.isnan(t_done)])

    def depth(self, columns: dict[str, np.ndarray]) -> None:
        """Add a batch of depth changes (in time order)."""
        if len(columns["t"]):
            self._bins.depth(np.asarray(columns["t"]), np.asarray(columns["depth"]))

    def finish(self, t_end: float) -> Digest:
        """The digest of the replication that ended at ``t_end`` (open intervals end there)."""
        bins, segments, batches = self._bins, self._segments, self._batches
        bins.fit(t_end)
        for which, opened in (("busy", self._open_busy), ("queue", self._open_queue)):
            starts = np.concatenate(opened) if opened else np.empty(0)
            bins.add(which, starts, np.full(len(starts), t_end))
        return Digest(
            replication=self.replication,
            workers=self.workers, items=self._items, t_end=float(t_end), last_put=self._last_put,
            mser_batch=batches.size, mser_sums=batches.sums, mser_first=batches.first,
            segment=segments.size, seg_first_t=segments.first_t, seg_items=segments.items,
            seg_abandoned=segments.abandoned, counts=segments.counts, sums=segments.sums, keys=segments.keys,
            tallies=segments.tallies, bin_width=bins.width, busy=bins.busy, queue=bins.queue,
            depth_max=bins.depth_max, depth_last=bins.depth_last, head_put=self._head_put,
            head_service=self._head_service,
        )  # fmt: skip


def _abandoned(columns: dict[str, np.ndarray]) -> np.ndarray | None:
    """1.0 for an item that left at its deadline, else 0.0; None when the batch cannot say."""
    if "abandoned" in columns:
        return np.asarray(columns["abandoned"], dtype=np.float64)
    status = columns.get("status")
    if status is None:
        return np.zeros(len(columns["wait"])) if "t_get" in columns else None
    return (np.asarray(status) == "abandoned").astype(np.float64)
