"""Per-item and per-depth-change records of one replication, streamed out in batches.

The scenario calls :meth:`Recorder.arrive`, :meth:`~Recorder.put`, :meth:`~Recorder.get` and
:meth:`~Recorder.done`. The recorder keeps only items that are not yet finished (plus one batch),
hands finished items to its sink in item order, and depth changes in event order, as numpy column
dicts. Memory is bounded by the backlog, not by the number of items recorded.

The hooks append to a row log: :class:`PyLog` in Python, or the same log in C from the optional
extension ``bench._recorder`` when it was built (:data:`ACCELERATED` says whether; :data:`Log` is
the one used by default). The extension is imported in one place, at the bottom of this module.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol

import numpy as np

__all__ = ["Recorder", "Sink", "BATCH", "Log", "PyLog", "ACCELERATED", "item_columns"]

#: Rows handed to the sink at a time.
BATCH = 65536


class Sink(Protocol):
    """Where a recorder sends its batches (a store writer, a summary, or both)."""

    def items(self, columns: dict[str, np.ndarray]) -> None:
        """Receive a batch of item rows (columns of equal length, in item order)."""

    def depth(self, columns: dict[str, np.ndarray]) -> None:
        """Receive a batch of depth-change rows, in event order."""


def item_columns(base: int, n: int, held: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """The columns every recorder hands the sink for items ``base .. base + n - 1``, from their held
    ``worker``, ``t_arrive``, ``t_put``, ``t_get``, ``t_done`` and ``depth_at_put``: the ids, the
    times, and ``wait``, ``service`` and ``sojourn`` derived from them."""
    t_put, t_get, t_done = held["t_put"], held["t_get"], held["t_done"]
    return {
        "item": np.arange(base, base + n, dtype=np.int64),
        "worker": held["worker"],
        "t_arrive": held["t_arrive"],
        "t_put": t_put,
        "t_get": t_get,
        "t_done": t_done,
        "wait": t_get - t_put,
        "service": t_done - t_get,
        "sojourn": t_done - t_put,
        "depth_at_put": held["depth_at_put"],
    }


class Recorder:
    """Collects what one replication of the scenario does.

    Args:
        sink: receives batches of item and depth rows.
        batch: rows per batch.
        on_progress: called with the number of finished items each time a batch of items goes out.
        log: the row log's class, called as ``log(batch, on_full)``; by default :data:`Log` (the C
            log when ``bench._recorder`` is built); :class:`PyLog` for the pure-Python one.

    Each hook appends a fixed-width row ``(kind, item, t, value)`` to a flat log (in C when
    ``bench._recorder`` is built, a few dozen nanoseconds); the log is turned into numpy columns every
    ``batch`` puts. Items not yet finished are carried over as numpy arrays, so memory
    is bounded by the backlog plus a batch. The counters (``n_put``, ``busy``, …) are up to date
    whenever they are read.
    """

    def __init__(
        self,
        sink: Sink,
        batch: int = BATCH,
        on_progress: Callable[[int], None] | None = None,
        *,
        log: Callable[[int, Callable[[], None]], Any] | None = None,
    ) -> None:
        self._sink = sink
        self._batch = batch
        self._on_progress = on_progress
        self._log = (Log if log is None else log)(batch, self._collect)
        self._base = 0  # item id of the first row still held
        self._held = {name: np.empty(0, dtype) for name, dtype in _HELD}
        self._n_put = 0
        self._n_got = 0
        self._n_done = 0
        self._t_last_put = 0.0
        self._busy = 0.0  # worker-seconds of finished services
        self.capped: tuple[float, int] | None = None  # (time, depth) when a backlog cap stopped the run
        self.lag_total = 0.0  # model seconds by which timers woke late, summed (real loops only)
        self.lag_max = 0.0
        self.lag_count = 0
        # The hooks the scenario calls are the log's own (C functions when bench._recorder is built):
        #: ``arrive(item, t)``: the pusher starts putting ``item`` at ``t``.
        self.arrive: Callable[[int, float], None] = self._log.arrive
        #: ``put(item, t, depth)``: ``item`` entered the queue at ``t``; it now holds ``depth`` items.
        self.put: Callable[[int, float, int], None] = self._log.put
        #: ``get(item, worker, t, depth)``: ``worker`` took ``item`` at ``t``; the queue holds ``depth``.
        self.get: Callable[[int, int, float, int], None] = self._log.get
        #: ``done(item, t)``: ``item``'s service ended at ``t``.
        self.done: Callable[[int, float], None] = self._log.done

    def late(self, seconds: float) -> None:
        """A timer on a real loop woke ``seconds`` (model seconds) after it was due."""
        self.lag_total += seconds
        self.lag_count += 1
        if seconds > self.lag_max:
            self.lag_max = seconds

    @property
    def lag_mean(self) -> float:
        """Mean lateness of the timers, model seconds (0 on a virtual clock, where none is late)."""
        return self.lag_total / self.lag_count if self.lag_count else 0.0

    def cap(self, t: float, depth: int) -> None:
        """The run was stopped at ``t`` because the queue reached ``depth`` items."""
        self.capped = (t, depth)

    # -- counters ----------------------------------------------------------------------------------

    @property
    def n_put(self) -> int:
        """Items put so far."""
        self._collect()
        return self._n_put

    @property
    def n_got(self) -> int:
        """Items taken by a worker so far."""
        self._collect()
        return self._n_got

    @property
    def n_done(self) -> int:
        """Items finished so far."""
        self._collect()
        return self._n_done

    @property
    def t_last_put(self) -> float:
        """Time of the last put."""
        self._collect()
        return self._t_last_put

    @property
    def busy(self) -> float:
        """Worker-seconds of finished services (and, after :meth:`close`, of partial ones)."""
        self._collect()
        return self._busy

    # -- batching --------------------------------------------------------------------------------

    def _collect(self) -> None:
        """Turn the log into columns: depth rows go out, item fields land in the held arrays, and the
        finished prefix of items goes out once it is a batch long (:meth:`close` sends the rest)."""
        rows = np.frombuffer(self._log.take(), dtype=np.float64).reshape(-1, 4)
        kind, item, t, value = rows.T
        is_put = kind == _PUT
        is_get = kind >= _GET
        moves = is_put | is_get
        if moves.any():
            self._depth(t[moves], value[moves].astype(np.int64), np.where(is_put[moves], 1, -1).astype(np.int8))
        held = self._held
        is_arrive = kind == _ARRIVE
        new = int(is_arrive.sum())
        if new:
            n = held["t_arrive"].size
            grown = {}
            for name, dtype in _HELD:
                column = np.empty(n + new, dtype)
                column[:n] = held[name]
                column[n:] = _FILL[name]
                grown[name] = column
            grown["t_arrive"][n:] = t[is_arrive]
            held = self._held = grown
        base = self._base
        if is_put.any():
            k = item[is_put].astype(np.int64) - base
            held["t_put"][k] = t[is_put]
            held["depth_at_put"][k] = value[is_put]
            self._n_put += k.size
            self._t_last_put = float(t[is_put][-1])
        if is_get.any():
            k = item[is_get].astype(np.int64) - base
            held["t_get"][k] = t[is_get]
            held["worker"][k] = kind[is_get] - _GET
            self._n_got += k.size
        is_done = kind == _DONE
        if is_done.any():
            k = item[is_done].astype(np.int64) - base
            t_done = t[is_done]
            held["t_done"][k] = t_done
            self._n_done += k.size
            busy = self._busy
            for service in (t_done - held["t_get"][k]).tolist():  # in completion order, as ever
                busy += service
            self._busy = busy
        pending = np.isnan(held["t_done"])
        finished = int(pending.argmax()) if pending.any() else pending.size
        if finished >= self._batch:
            self._flush_items(finished)

    def _flush_items(self, n: int) -> None:
        held = self._held
        out = {name: column[:n] for name, column in held.items()}
        self._held = {name: column[n:] for name, column in held.items()}
        columns = item_columns(self._base, n, out)
        self._base += n
        self._sink.items(columns)
        if self._on_progress is not None:
            self._on_progress(n)

    def _depth(self, t: np.ndarray, depth: np.ndarray, event: np.ndarray) -> None:
        for lo in range(0, t.size, self._batch):
            hi = lo + self._batch
            self._sink.depth({"t": t[lo:hi], "depth": depth[lo:hi], "event": event[lo:hi]})

    def close(self, t_end: float) -> None:
        """Flush everything still held; items not yet put (a pusher blocked at the end) are dropped.

        Args:
            t_end: the model time at which the replication ended (partial services count as busy).
        """
        self._collect()
        held = self._held
        unput = np.isnan(held["t_put"])
        if unput.any():  # blocked in put when time ran out
            keep = int(unput.argmax())
            self._held = held = {name: column[:keep] for name, column in held.items()}
        in_service = ~np.isnan(held["t_get"]) & np.isnan(held["t_done"])
        busy = self._busy
        for t_get in held["t_get"][in_service].tolist():
            busy += t_end - t_get
        self._busy = busy
        if held["t_put"].size:
            self._flush_items(held["t_put"].size)


_ARRIVE, _PUT, _DONE, _GET = 0.0, 1.0, 2.0, 3.0  # log row kinds; a get is _GET + worker
_HELD = (
    ("t_arrive", np.float64),
    ("t_put", np.float64),
    ("depth_at_put", np.int64),
    ("t_get", np.float64),
    ("worker", np.int64),
    ("t_done", np.float64),
)
_FILL = {"t_arrive": np.nan, "t_put": np.nan, "depth_at_put": -1, "t_get": np.nan, "worker": -1, "t_done": np.nan}


class PyLog:
    """The recorder's row log in Python, used when ``bench._recorder`` is not built: the same
    interface as ``bench._recorder.Log``. Each hook is a closure extending one list, the cheapest
    call Python has.

    Args:
        batch: puts between two calls of ``on_full``.
        on_full: called after every ``batch`` puts (the recorder then takes the rows).
    """

    def __init__(self, batch: int, on_full: Callable[[], None]) -> None:
        self._rows: list[float] = []
        self._batch = batch
        self._puts_left = [batch]
        extend, puts_left = self._rows.extend, self._puts_left

        def arrive(item: int, t: float) -> None:
            extend((_ARRIVE, item, t, 0.0))

        def put(item: int, t: float, depth: int) -> None:
            extend((_PUT, item, t, depth))
            puts_left[0] -= 1
            if not puts_left[0]:
                on_full()

        def get(item: int, worker: int, t: float, depth: int) -> None:
            extend((_GET + worker, item, t, depth))

        def done(item: int, t: float) -> None:
            extend((_DONE, item, t, 0.0))

        self.arrive, self.put, self.get, self.done = arrive, put, get, done

    def take(self) -> np.ndarray:
        """Return the rows as float64 (kind, item, t, value), flattened, and clear the log."""
        rows = np.fromiter(self._rows, dtype=np.float64, count=len(self._rows))
        self._rows.clear()
        self._puts_left[0] = self._batch
        return rows

    def __len__(self) -> int:
        return len(self._rows) // 4


# -- the accelerator: bench._recorder (C) replaces PyLog as the default log when it was built ------

#: The row log :class:`Recorder` uses by default: ``bench._recorder.Log`` when built, else :class:`PyLog`.
Log: Callable[[int, Callable[[], None]], Any] = PyLog
#: True when the recorder's row log runs in C (``bench._recorder`` was built).
ACCELERATED = False
try:
    from bench._recorder import Log as _CLog
except ImportError:  # built without a C compiler: PyLog does the same
    pass
else:
    Log = _CLog
    ACCELERATED = True
