"""The recorder of every scenario but the plain one: the same hooks, in Python, and the facts they add.

The plain pusher/puller program (:mod:`bench.scenario`) records through
:class:`~bench.recorder.Recorder`, whose four hooks append to a C row log. The pool with behaviours
and users' own scenarios (:mod:`bench.scenarios`) record through :class:`FullRecorder`: the same
four hooks with the same arguments (``arrive``, ``put``, ``get``, ``done``), plus those a richer
queue needs (``requeue`` for a retry, ``fail`` for a failed attempt, ``abandon`` for an item that
gave up waiting, ``tag`` for its class and pusher), ``exhausted`` when the arrival process ran out
(a trace shorter than the run) and ``workers`` for every change of an elastic pool's worker count
(sent to the sink's optional ``events`` method, and integrated into the worker-seconds it costs). It is a side channel in Python: the C log and
its twin :class:`~bench.recorder.PyLog` are untouched, and the plain program keeps its speed.

It sends the sink the same batches as :class:`~bench.recorder.Recorder` (items in item order once a
prefix of them has left the system, depth changes in event order) with the extra item columns
``status``, ``class``, ``pusher``, ``attempts`` and ``t_leave`` (``results/README.md``). Memory is
bounded by the items still in the system plus a batch.

It also enforces what a replication may do, so that a scenario cannot run past its grid: in a
``duration`` run, the first hook at or after the duration ends the replication (nothing at or after
it is recorded); reaching ``max_backlog`` items queued ends it as ``capped``; a hook that breaks
the contract (item ids out of order, more items than the grid's ``items``, an item put twice)
ends it with an error. A hook never raises into the scenario: it records why it stopped
(:attr:`FullRecorder.stopped`, :attr:`FullRecorder.error`) and calls ``on_stop``, which the engine
uses to end the run.
"""

from __future__ import annotations

import array
import math
from collections.abc import Callable
from typing import Any

import numpy as np

from bench.item_status import ITEM_STATUSES
from bench.recorder import BATCH, Sink, item_columns

__all__ = ["FullRecorder"]

# item status codes: positions in ITEM_STATUSES, the names written to the ``status`` column
_BLOCKED, _QUEUED, _IN_SERVICE, _BACKOFF, _SERVED, _ABANDONED, _GAVE_UP = range(len(ITEM_STATUSES))
_STATUS_ARRAY = np.array(ITEM_STATUSES)
_NAN = math.nan


class FullRecorder:
    """Collects what one replication of a scenario does, hook by hook.

    Args:
        sink: receives batches of item and depth rows.
        batch: rows per batch.
        on_progress: called with the number of items in each batch sent.
        items: the grid's ``items`` (ids ``0 .. items - 1``; one more is a contract error), or None.
        duration: the grid's ``duration``: hooks at or after it end the replication; or None.
        max_backlog: end the replication (``capped``) when a put makes the queue this long; or None.

    Hooks take model seconds (``t``) and the queue's size right after the event (``depth``: the
    items waiting, those in service not counted). Item ids count 0, 1, 2, ... in the order of
    ``arrive`` (a ``put`` of the next id arrives it too).
    """

    def __init__(self, sink: Sink, batch: int = BATCH, on_progress: Callable[[int], None] | None = None, *,
                 items: int | None = None, duration: float | None = None,
                 max_backlog: int | None = None) -> None:  # fmt: skip
        self._sink = sink
        self._batch = batch
        self._on_progress = on_progress
        self._items = items
        self._end = math.inf if duration is None else duration
        self._cap = max_backlog
        self._base = 0  # item id of the first item still held
        # typed arrays (8 bytes a number, not a boxed float), a list only for the class names
        self._held: dict[str, Any] = {name: array.array(code) if code else [] for name, (code, _) in _HELD.items()}
        self._open = 0  # held index of the first item still in the system
        self._depth: tuple[list[float], list[int], list[int]] = ([], [], [])
        self._holding: dict[int, list[float]] = {}  # worker -> [items in hand, busy since]
        self.n_put = 0
        self.n_got = 0
        self.n_done = 0
        self.n_served = 0
        self.n_abandoned = 0
        self.n_gave_up = 0
        self.n_attempts = 0
        self.n_requeued = 0
        self.t_last_put = 0.0
        self.busy = 0.0
        self.capped: tuple[float, int] | None = None
        self.lag_total = 0.0
        self.lag_max = 0.0
        self.lag_count = 0
        #: Hooks recorded so far (the engine's watchdog reads it as a sign of progress).
        self.events = 0
        #: Model time of the last hook recorded.
        self.last_event = 0.0
        #: Why the hooks stopped recording: ``end`` (the duration was reached), ``capped`` or ``error``.
        self.stopped: str | None = None
        #: The contract error that stopped them, one line.
        self.error: str | None = None
        #: Called once with :attr:`stopped` when the hooks stop recording (the engine ends the run).
        self.on_stop: Callable[[str], None] | None = None
        #: When the arrival process ran out (:meth:`exhausted`), or None.
        self.arrivals_end: float | None = None
        # elastic workers: changes of the count, sent to the sink's optional ``events`` method
        self._events: tuple[list[float], list[str], list[float]] = ([], [], [])
        self._send_events: Callable[[dict[str, np.ndarray]], None] | None = getattr(sink, "events", None)
        self._provisioned: tuple[float, int] | None = None  # (since, count) of workers provisioned
        self._worker_seconds = 0.0
        #: The most workers provisioned at once (elastic workers; None for a fixed pool).
        self.workers_peak: int | None = None

    # -- the hooks -----------------------------------------------------------------------------------

    def arrive(self, item: int, t: float) -> None:
        """The pusher starts putting ``item`` at ``t`` (``t_arrive``)."""
        if self._stop_at(t):
            return
        self._arrive(item, t)

    def put(self, item: int, t: float, depth: int) -> None:
        """``item`` entered the queue for the first time at ``t``; the queue holds ``depth`` items."""
        if self._stop_at(t):
            return
        if item == self._base + len(self._held["t_arrive"]):
            self._arrive(item, t)
        k = self._index(item, "put")
        if k is None:
            return
        held = self._held
        if held["status"][k] != _BLOCKED:
            self._fail_contract(f"item {item} was put twice (a retry goes back with requeue)")
            return
        held["t_put"][k] = t
        held["depth_at_put"][k] = depth
        held["status"][k] = _QUEUED
        self.n_put += 1
        self.t_last_put = t
        self._move(t, depth, 1)

    def requeue(self, item: int, t: float, depth: int) -> None:
        """``item`` went back on the queue at ``t`` after a failed attempt (a +1 depth change)."""
        if self._stop_at(t):
            return
        k = self._index(item, "requeue")
        if k is None:
            return
        self._held["status"][k] = _QUEUED
        self.n_requeued += 1
        self._move(t, depth, 1)

    def get(self, item: int, worker: int, t: float, depth: int) -> None:
        """``worker`` took ``item`` at ``t`` (an attempt starts); the queue holds ``depth`` items."""
        if self._stop_at(t):
            return
        k = self._index(item, "get")
        if k is None:
            return
        held = self._held
        if held["attempts"][k] == 0:
            self.n_got += 1
        held["attempts"][k] += 1
        held["t_get"][k] = t
        held["worker"][k] = worker
        held["status"][k] = _IN_SERVICE
        self.n_attempts += 1
        hold = self._holding.get(worker)
        if hold is None:
            self._holding[worker] = [1, t]
        else:
            hold[0] += 1
        self._move(t, depth, -1)

    def done(self, item: int, t: float) -> None:
        """``item``'s attempt ended successfully at ``t``: it is served."""
        if self._stop_at(t):
            return
        k = self._index(item, "done")
        if k is None:
            return
        held = self._held
        held["t_done"][k] = t
        held["t_leave"][k] = t
        held["status"][k] = _SERVED
        self.n_done += 1
        self.n_served += 1
        self._release(k, t)
        self._left(k)

    def fail(self, item: int, t: float, retry: bool) -> None:
        """``item``'s attempt failed at ``t``; with ``retry`` it will go back on the queue
        (:meth:`requeue`), otherwise it gives up (``t_done`` and ``t_leave`` are ``t``)."""
        if self._stop_at(t):
            return
        k = self._index(item, "fail")
        if k is None:
            return
        held = self._held
        self._release(k, t)
        if retry:
            held["status"][k] = _BACKOFF
            return
        held["t_done"][k] = t
        held["t_leave"][k] = t
        held["status"][k] = _GAVE_UP
        self.n_done += 1
        self.n_gave_up += 1
        self._left(k)

    def abandon(self, item: int, t: float, depth: int | None) -> None:
        """``item`` gave up waiting at ``t``: it left the queue (``depth`` after it, a -1 depth
        change), or, with ``depth`` None, it was not in the queue (a retry past its deadline)."""
        if self._stop_at(t):
            return
        k = self._index(item, "abandon")
        if k is None:
            return
        held = self._held
        held["t_leave"][k] = t
        held["status"][k] = _ABANDONED
        self.n_abandoned += 1
        if depth is not None:
            self._move(t, depth, -1)
        self._left(k)

    def tag(self, item: int, klass: str | None = None, pusher: int = 0) -> None:
        """``item``'s class (None: none) and the pusher that put it (0 for a single pusher)."""
        if self.stopped is not None:
            return
        k = self._index(item, "tag")
        if k is not None:
            self._held["class"][k] = klass
            self._held["pusher"][k] = pusher

    def exhausted(self, t: float) -> None:
        """The arrival process ran out at ``t`` (a trace shorter than the run): no item arrives after
        it, and an items run may end with fewer than ``items`` items."""
        if self._stop_at(t):
            return
        if self.arrivals_end is None:
            self.arrivals_end = t

    def workers(self, t: float, active: int, provisioned: int) -> None:
        """Elastic workers: from ``t`` on, ``active`` workers take items and ``provisioned`` are paid
        for (active ones and those still starting); call it at t = 0 and at every change."""
        if self._stop_at(t):
            return
        times, kinds, values = self._events
        times += [t, t]
        kinds += ["workers", "provisioned"]
        values += [float(active), float(provisioned)]
        if self._provisioned is not None:
            since, count = self._provisioned
            self._worker_seconds += count * (t - since)
        self._provisioned = (t, provisioned)
        self.workers_peak = max(self.workers_peak or 0, provisioned)
        if len(times) >= self._batch:
            self._flush_events()

    @property
    def worker_seconds(self) -> float | None:
        """Worker-seconds provisioned so far (up to the last change; :meth:`close` adds the rest); None
        for a fixed pool (no :meth:`workers` call)."""
        return None if self._provisioned is None else self._worker_seconds

    def _flush_events(self) -> None:
        times, kinds, values = self._events
        if times and self._send_events is not None:
            self._send_events({"t": np.array(times, dtype=np.float64), "kind": np.array(kinds, dtype=object),
                               "value": np.array(values, dtype=np.float64)})  # fmt: skip
        self._events = ([], [], [])

    def late(self, seconds: float) -> None:
        """A timer on a real loop woke ``seconds`` (model seconds) after it was due."""
        self.lag_total += seconds
        self.lag_count += 1
        if seconds > self.lag_max:
            self.lag_max = seconds

    def cap(self, t: float, depth: int) -> None:
        """The run was stopped at ``t`` because the queue reached ``depth`` items."""
        self.capped = (t, depth)

    # -- state ----------------------------------------------------------------------------------

    @property
    def lag_mean(self) -> float:
        """Mean lateness of the timers, model seconds (0 on a virtual clock)."""
        return self.lag_total / self.lag_count if self.lag_count else 0.0

    @property
    def arrived(self) -> int:
        """Items arrived so far (the next item id)."""
        return self._base + len(self._held["t_arrive"])

    @property
    def finished(self) -> int:
        """Items that have left the system: served, abandoned or given up."""
        return self.n_served + self.n_abandoned + self.n_gave_up

    # -- internals ------------------------------------------------------------------------------

    def _stop_at(self, t: float) -> bool:
        """Whether the hooks no longer record: they have stopped, or ``t`` reached the duration."""
        if self.stopped is not None:
            return True
        if t >= self._end:
            self._stop("end")
            return True
        self.events += 1
        self.last_event = t
        return False

    def _stop(self, why: str) -> None:
        self.stopped = why
        if self.on_stop is not None:
            self.on_stop(why)

    def _fail_contract(self, message: str) -> None:
        self.error = message
        self._stop("error")

    def _arrive(self, item: int, t: float) -> None:
        expected = self.arrived
        if item != expected:
            self._fail_contract(f"item ids must count 0, 1, 2, ... in the order items arrive: got {item!r} where "
                                f"{expected} was next")  # fmt: skip
            return
        if self._items is not None and item >= self._items:
            self._fail_contract(
                f"item {item} arrived, but the grid's items = {self._items} puts items 0..{self._items - 1}"
            )
            return
        for name, (_, fill) in _HELD.items():
            self._held[name].append(fill)
        self._held["t_arrive"][-1] = t

    def _index(self, item: int, hook: str) -> int | None:
        k = item - self._base
        if not 0 <= k < len(self._held["t_arrive"]):
            self._fail_contract(f"{hook}({item!r}, ...): no such item in the system (arrived: 0..{self.arrived - 1}; "
                                "finished items are gone)")  # fmt: skip
            return None
        if self._held["status"][k] >= _SERVED and hook != "tag":
            said = ITEM_STATUSES[self._held["status"][k]]
            self._fail_contract(f"{hook}({item!r}, ...): item {item} has already left the system ({said})")
            return None
        return k

    def _move(self, t: float, depth: int, event: int) -> None:
        times, depths, events = self._depth
        times.append(t)
        depths.append(depth)
        events.append(event)
        if event > 0 and self._cap is not None and depth >= self._cap:
            self.capped = (t, self._cap)
            self._stop("capped")
        if len(times) >= self._batch:
            self._flush_depth()

    def _release(self, k: int, t: float) -> None:
        """The worker of held item ``k`` put it down at ``t``: busy time ends when its hands are empty."""
        worker = self._held["worker"][k]
        hold = self._holding.get(worker)
        if hold is None:
            return
        hold[0] -= 1
        if hold[0] <= 0:
            self.busy += t - hold[1]
            del self._holding[worker]

    def _left(self, k: int) -> None:
        """Held item ``k`` left the system: items go out, in order, once a batch of them has."""
        if k != self._open:
            return
        status = self._held["status"]
        end = len(status)
        while k < end and status[k] >= _SERVED:
            k += 1
        self._open = k
        if k >= self._batch:
            self._flush_items(k)

    def _flush_depth(self) -> None:
        times, depths, events = self._depth
        if times:
            self._sink.depth({"t": np.array(times, dtype=np.float64), "depth": np.array(depths, dtype=np.int64),
                              "event": np.array(events, dtype=np.int8)})  # fmt: skip
            self._depth = ([], [], [])

    def _flush_items(self, n: int) -> None:
        held = self._held
        out = {name: _numpy(column, n) for name, column in held.items()}
        for column in held.values():
            del column[:n]
        columns = item_columns(self._base, n, out)
        columns.update(
            status=_STATUS_ARRAY[out["status"]], **{k: out[k] for k in ("class", "pusher", "attempts", "t_leave")}
        )
        self._base += n
        self._open -= n
        self._sink.items(columns)
        if self._on_progress is not None:
            self._on_progress(n)

    def close(self, t_end: float) -> None:
        """Flush everything; an item whose pusher is still blocked in ``put`` at the end is dropped
        when it is the last to arrive (as :class:`~bench.recorder.Recorder` drops it).

        Args:
            t_end: the model time at which the replication ended (work in hand counts as busy).
        """
        self._flush_depth()
        self._flush_events()
        if self._provisioned is not None:
            since, count = self._provisioned
            self._worker_seconds += count * max(t_end - since, 0.0)
            self._provisioned = (t_end, count)
        held = self._held
        status = held["status"]
        while status and status[-1] == _BLOCKED:
            for column in held.values():
                column.pop()
        for _, since in self._holding.values():
            self.busy += t_end - since
        self._holding.clear()
        if status:
            self._flush_items(len(status))


#: Held item columns: their array type code ("" for a list) and the value of an item that has not
#: done the thing yet.
_HELD: dict[str, tuple[str, Any]] = {
    "t_arrive": ("d", _NAN),
    "t_put": ("d", _NAN),
    "depth_at_put": ("q", -1),
    "t_get": ("d", _NAN),
    "worker": ("q", -1),
    "t_done": ("d", _NAN),
    "status": ("b", _BLOCKED),
    "class": ("", None),
    "pusher": ("q", 0),
    "attempts": ("q", 0),
    "t_leave": ("d", _NAN),
}


def _numpy(column: Any, n: int) -> np.ndarray:
    """The first ``n`` values of a held column as a numpy array (a copy: the column then shrinks)."""
    if isinstance(column, list):
        return np.array(column[:n], dtype=object)
    return np.frombuffer(column, dtype=_DTYPES[column.typecode], count=n).astype(_OUT[column.typecode])


_DTYPES = {"d": np.float64, "q": np.int64, "b": np.int8}
_OUT = {"d": np.float64, "q": np.int64, "b": np.int64}
