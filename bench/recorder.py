"""Per-item and per-depth-change records of one replication, streamed out in batches.

The scenario calls :meth:`Recorder.arrive`, :meth:`~Recorder.put`, :meth:`~Recorder.get` and
:meth:`~Recorder.done`. The recorder keeps only items that are not yet finished (plus one batch),
hands finished items to its sink in item order, and depth changes in event order, as numpy column
dicts. Memory is bounded by the backlog, not by the number of items recorded.
"""

from __future__ import annotations

from typing import Callable, Protocol

import numpy as np

__all__ = ["Recorder", "Sink", "BATCH"]

#: Rows handed to the sink at a time.
BATCH = 65536

_NAN = float("nan")


class Sink(Protocol):
    """Where a recorder sends its batches (a store writer, a summary, or both)."""

    def items(self, columns: dict[str, np.ndarray]) -> None:
        """Receive a batch of item rows (columns of equal length, in item order)."""

    def depth(self, columns: dict[str, np.ndarray]) -> None:
        """Receive a batch of depth-change rows, in event order."""


class Recorder:
    """Collects what one replication of the scenario does.

    Args:
        sink: receives batches of item and depth rows.
        batch: rows per batch.
        on_progress: called with the number of finished items each time a batch of items goes out.
    """

    def __init__(self, sink: Sink, batch: int = BATCH, on_progress: Callable[[int], None] | None = None) -> None:
        self._sink = sink
        self._batch = batch
        self._on_progress = on_progress
        self._base = 0  # item id of the first row still held
        self._next_done = 0  # lowest item id (relative to _base) not yet finished
        self._t_arrive: list[float] = []
        self._t_put: list[float] = []
        self._depth_at_put: list[int] = []
        self._t_get: list[float] = []
        self._worker: list[int] = []
        self._t_done: list[float] = []
        self._ev_t: list[float] = []
        self._ev_depth: list[int] = []
        self._ev_kind: list[int] = []
        self.n_put = 0
        self.n_got = 0
        self.n_done = 0
        self.t_last_put = 0.0
        self.busy = 0.0  # worker-seconds of finished services
        self.capped: tuple[float, int] | None = None  # (time, depth) when a backlog cap stopped the run

    # -- hooks the scenario calls ------------------------------------------------------------------

    def arrive(self, item: int, t: float) -> None:
        """The pusher starts putting ``item`` at ``t``."""
        self._t_arrive.append(t)
        self._t_put.append(_NAN)
        self._depth_at_put.append(-1)
        self._t_get.append(_NAN)
        self._worker.append(-1)
        self._t_done.append(_NAN)

    def put(self, item: int, t: float, depth: int) -> None:
        """``item`` entered the queue at ``t``; the queue now holds ``depth`` items."""
        k = item - self._base
        self._t_put[k] = t
        self._depth_at_put[k] = depth
        self.n_put += 1
        self.t_last_put = t
        self._event(t, depth, 1)

    def get(self, item: int, worker: int, t: float, depth: int) -> None:
        """``worker`` took ``item`` at ``t``; the queue now holds ``depth`` items."""
        k = item - self._base
        self._t_get[k] = t
        self._worker[k] = worker
        self.n_got += 1
        self._event(t, depth, -1)

    def done(self, item: int, t: float) -> None:
        """``item``'s service ended at ``t``."""
        k = item - self._base
        self._t_done[k] = t
        self.busy += t - self._t_get[k]
        self.n_done += 1
        if k == self._next_done:
            self._advance()

    def cap(self, t: float, depth: int) -> None:
        """The run was stopped at ``t`` because the queue reached ``depth`` items."""
        self.capped = (t, depth)

    # -- batching --------------------------------------------------------------------------------

    def _event(self, t: float, depth: int, kind: int) -> None:
        self._ev_t.append(t)
        self._ev_depth.append(depth)
        self._ev_kind.append(kind)
        if len(self._ev_t) >= self._batch:
            self._flush_depth()

    def _advance(self) -> None:
        done, k, n = self._t_done, self._next_done, len(self._t_done)
        while k < n and done[k] == done[k]:  # not NaN
            k += 1
        self._next_done = k
        if k >= self._batch:
            self._flush_items(k)

    def _flush_items(self, n: int) -> None:
        if n == 0:
            return
        t_put = np.array(self._t_put[:n])
        t_get = np.array(self._t_get[:n])
        t_done = np.array(self._t_done[:n])
        worker = np.array(self._worker[:n], dtype=np.int64)
        columns = {
            "item": np.arange(self._base, self._base + n, dtype=np.int64),
            "worker": worker,
            "t_arrive": np.array(self._t_arrive[:n]),
            "t_put": t_put,
            "t_get": t_get,
            "t_done": t_done,
            "wait": t_get - t_put,
            "service": t_done - t_get,
            "sojourn": t_done - t_put,
            "depth_at_put": np.array(self._depth_at_put[:n], dtype=np.int64),
        }
        for column in (self._t_arrive, self._t_put, self._depth_at_put, self._t_get, self._worker, self._t_done):
            del column[:n]
        self._base += n
        self._next_done -= n
        self._sink.items(columns)
        if self._on_progress is not None:
            self._on_progress(n)

    def _flush_depth(self) -> None:
        if not self._ev_t:
            return
        columns = {
            "t": np.array(self._ev_t),
            "depth": np.array(self._ev_depth, dtype=np.int64),
            "event": np.array(self._ev_kind, dtype=np.int8),
        }
        self._ev_t, self._ev_depth, self._ev_kind = [], [], []
        self._sink.depth(columns)

    def close(self, t_end: float) -> None:
        """Flush everything still held; items not yet put (a pusher blocked at the end) are dropped.

        Args:
            t_end: the model time at which the replication ended (partial services count as busy).
        """
        n_arrived = len(self._t_put)
        if n_arrived and self._t_put[-1] != self._t_put[-1]:  # blocked in put when time ran out
            for column in (self._t_arrive, self._t_put, self._depth_at_put, self._t_get, self._worker, self._t_done):
                column.pop()
        for k in range(self._next_done, len(self._t_done)):
            t_get = self._t_get[k]
            if t_get == t_get and self._t_done[k] != self._t_done[k]:
                self.busy += t_end - t_get
        self._flush_items(len(self._t_put))
        self._flush_depth()
