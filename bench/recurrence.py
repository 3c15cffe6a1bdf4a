"""The recurrence engine: FIFO G/G/c computed exactly from its recurrences, no event loop.

It reproduces what the asyncio engine (:mod:`bench.scenario` on a :class:`~bench.loop.VirtualEventLoop`)
records, item by item, from the same random streams:

* services are drawn one per item, in item order (the pusher draws item ``i``'s service when it
  starts putting it); arrivals one after each put, except after the last put of an ``items`` run;
* every delay is rounded to integer nanoseconds exactly as the virtual loop rounds it
  (``round(seconds * 1e9)``, ties to even, negatives to zero), and times are sums of those
  integers, so ``t_put``, ``t_get`` and ``t_done`` equal the asyncio engine's bit for bit;
* ``t_arrive[i] = t_put[i-1] + a[i-1]``; with a bounded queue (``maxsize`` m > 0) the pusher blocks
  while the queue is full: ``t_put[i] = max(t_arrive[i], t_get[i-m])``;
* ``t_get[i] = max(t_put[i], earliest time a worker is free)`` (a heap of server-free times;
  Lindley's recurrence, vectorised with numpy, for one worker and an unbounded queue);
  ``t_done[i] = t_get[i] + s[i]``;
* a backlog at t = 0 (``backlog0``): items ``0 .. backlog0 - 1`` arrive and are put at 0 (gaps of 0),
  the arrival process's first item at its ``lead``; their puts at 0 come before any get at 0, as the
  pusher puts them all before a worker runs;
* an arrival process that runs out (a trace) ends the items: the item after its last gap is the last;
* ``duration`` runs keep events strictly before ``T`` (the asyncio engine's main task wakes first
  at ``T`` and cancels everything before any other event at ``T`` is recorded); an item whose
  pusher was still blocked in ``put`` at ``T`` is dropped, as the recorder drops it.

* ``max_backlog``: the run stops at the put that makes the queue that long, as the asyncio engine
  does (status ``capped``): gets before that put (in event order) and services ended before its
  instant are kept. To know that a later put never reaches the cap before an item's events are
  final, items are held until their service ends (memory: the backlog, as in the recorder).

Depth events are ordered by (time, item, put before get). The asyncio engine produces the same
order except, possibly, between events of *different* items at the *same* instant (ties that
depend on timer sequence numbers); the queue size after all events of an instant, and so the depth
step function, the time-averaged depth and the backlog slope, is the same. ``depth_at_put`` is
read off this order, so it can differ from the asyncio engine's when another item's get happens at
exactly the instant of the put. Which worker takes an item can differ when several are free at the
same instant (here: the lowest index); every time is the same.

Batches go to the same sinks as the asyncio engine's :class:`~bench.recorder.Recorder` (a
:class:`~bench.replication_stats.ReplicationStats`, a :class:`~bench.store.CellWriter`), so the files and the
summary row have the same schema. Memory is bounded by the batch size plus the backlog.

The earliest-free-server loops (several workers, or a bounded queue) run in C when the optional
extension ``bench._recurrence`` was built (:data:`ACCELERATED` says whether; it is imported in one
place, at the bottom of this module), in Python otherwise, with the same results.
"""

from __future__ import annotations

import asyncio
import heapq
import math
from collections.abc import Callable
from typing import Any

import numpy as np

from bench.distributions import Stream
from bench.model_time import NS as _NS
from bench.model_time import seconds
from bench.recorder import Sink
from bench.replication import Replication
from bench.scenario import Scenario

__all__ = ["run_recurrence", "BATCH", "ACCELERATED"]

#: Items computed (and rows handed to the sink) at a time.
BATCH = 65536

#: Times are int64 nanoseconds, as on the virtual loop. A chunk whose times could pass 95% of that
#: range is refused (sums would wrap); in a duration run, arrivals estimated past 75% of it (far
#: beyond any duration the grid accepts, at most half the range) are dropped before the sums.
_RANGE_NS = 2**63 - 1
_BOUND_NS = 0.95 * _RANGE_NS
_DROP_NS = 0.75 * _RANGE_NS


def _ns(values: np.ndarray) -> np.ndarray:
    """Seconds to integer nanoseconds as the virtual loop rounds a delay (half to even, >= 0;
    clamped to the int64 range as the C loop clamps a deadline)."""
    scaled = values * _NS
    np.rint(scaled, out=scaled)
    np.clip(scaled, 0, _BOUND_NS, out=scaled)
    return scaled.astype(np.int64)


class _Engine:
    def __init__(self, scenario: Scenario, arrivals: Stream, services: Stream, sink: Any, on_progress, batch: int,
                 accelerated: bool) -> None:  # fmt: skip
        self.scenario = scenario
        self.arrivals = arrivals
        self.services = services
        self.sink = sink
        self.on_progress = on_progress
        self.batch = batch
        self.workers = scenario.workers
        self.maxsize = scenario.maxsize
        self.limit = None if scenario.duration is None else round(scenario.duration * _NS)  # events < limit
        self.items = scenario.items
        self.next_item = 0
        self.next_arrive = 0  # ns
        self.prev_done = 0  # c == 1 unbounded: t_done of the previous item
        self.heap = list(range(self.workers))  # encoded free times: free_ns * c + worker
        self.ring = [0] * self.maxsize  # bounded: t_get (ns) * c of the last m items, by item % m
        self.free_ns = np.zeros(self.workers, dtype=np.int64)  # the same two in plain ns, for the C loops
        self.ring_ns = np.zeros(self.maxsize, dtype=np.int64)
        self.pending_t = np.empty(0, dtype=np.int64)  # gets not yet emitted as depth events
        self.pending_i = np.empty(0, dtype=np.int64)
        self.depth = 0
        self.cap = scenario.max_backlog  # stop when a put makes the queue this long (None: never)
        self.result = Replication()
        self.done = False
        self.t_end_ns = 0  # items run: the latest t_done so far
        # items computed but not yet sent (in service or queued), as column arrays
        self.held: tuple[np.ndarray, ...] | None = None
        empty = np.empty(0, dtype=np.int64)
        self._carry = (empty, empty)  # draws of a chunk cut short by _fit, used first by the next
        self.latest = 0  # the latest time held in the state (free times, ring, prev_done), ns
        # (t_put in ns, item) of the put that made the queue reach max_backlog
        self.capped: tuple[int, int] | None = None
        self.in_c = ACCELERATED and accelerated  # the server loops in C (bench._recurrence) or in Python
        # backlog0 items put at 0, then the arrival process's first arrival at its lead: as gaps
        # (0 between backlog items, the lead after the last) drawn before the stream's own
        self.ended: int | None = None  # items generated when the arrival process ran out (None: it did not)
        backlog, lead = scenario.backlog0, arrivals.lead
        # The pusher puts the backlog (and a first arrival at 0) without yielding to the workers, so
        # those puts come before any get at t = 0: items below ``burst`` are put first at their instant.
        self.burst = backlog + (1 if lead == 0 else 0)
        lead_ns = _ns(np.array([lead]))[:1] if math.isfinite(lead) else np.empty(0, dtype=np.int64)
        if backlog:
            self._carry = (np.concatenate((np.zeros(backlog - 1, dtype=np.int64), lead_ns)), empty)
        elif lead_ns.size:
            self.next_arrive = int(lead_ns[0])
        else:  # no backlog and a process without a single arrival: nothing happens
            self.done, self.ended = True, 0

    # -- one chunk of items ------------------------------------------------------------------------

    def compute(self) -> Replication:
        while not self.done:
            n = self.batch
            if self.items is not None:
                n = min(n, self.items - self.next_item)
            self.chunk(n)
        if self.capped is None:
            self.flush_gets()
        self.flush_items(final=True)
        r = self.result
        if self.ended is not None and self.capped is None and r.n_put == self.ended:
            r.arrivals_end = r.t_last_put  # the process ran out before the run's end
        if self.capped is not None:
            r.t_end = self.capped[0] / _NS
            assert self.cap is not None  # only max_backlog caps a run
            r.capped = (r.t_end, self.cap)
        elif self.limit is None:
            r.t_end = self.t_end_ns / _NS
        else:
            assert self.scenario.duration is not None  # self.limit is set from it
            r.t_end = float(self.scenario.duration)
        return r

    def chunk(self, n: int) -> None:
        first = self.next_item
        last_chunk = self.items is not None and first + n == self.items
        n_arr = n - 1 if last_chunk else n
        a, s = self._draw(n, n_arr)
        short = a.size < n_arr  # the arrival process ran out: the item after its last gap is the last
        if short:
            n, n_arr, s = a.size + 1, a.size, s[: a.size + 1]
        whole = n
        a, s, n, n_arr, beyond = self._fit(a, s, n, n_arr)
        if short and n == whole:
            last_chunk, self.ended = True, first + n
        if self.maxsize == 0:
            t_arrive = np.empty(n, dtype=np.int64)
            t_arrive[0] = self.next_arrive
            np.cumsum(a[: n - 1], out=t_arrive[1:])
            t_arrive[1:] += self.next_arrive
            if n_arr == n:
                self.next_arrive = int(t_arrive[-1] + a[-1])
            if self.limit is not None:
                cut = int(np.searchsorted(t_arrive, self.limit, "left"))
                if cut < n:
                    n, t_arrive, s, self.done = cut, t_arrive[:cut], s[:cut], True
            t_put = t_arrive
            if self.workers == 1:
                t_get, worker = self._lindley(t_put, s)
            else:
                t_get, worker = self._heap(t_put, s)
        else:
            t_arrive, t_put, t_get, worker, s = self._bounded(a, s, n)
            n = t_put.size
        if last_chunk or beyond:
            self.done = True
        if n == 0:
            self.done = True
            return
        self.latest = max(self.latest, int(t_get[-1] + s.max()))  # FIFO: the last get is the latest
        self.emit(first, t_arrive, t_put, t_get, s, worker)
        if self.limit is not None:
            self._clamp_state()

    def _fit(self, a: np.ndarray, s: np.ndarray, n: int, n_arr: int):
        """Keep a chunk's int64 sums from wrapping: return ``(a, s, n, n_arr, beyond)``, where
        ``beyond`` says that arrivals past the end of a duration run were dropped (the run ends).

        Every time a chunk computes is at most ``start + sum(a) + min(sum(s), sum(s)/c + max(s))``
        (greedy list scheduling never leaves a worker idle while work waits: Graham's bound), where
        ``start`` is the latest time in the engine's state. In a duration run nothing past the limit is observed,
        so services are clamped to it, the state is clamped to it after each chunk
        (:meth:`_clamp_state`), and a chunk whose bound is still too high is cut short, its unused
        draws carried to the next chunk (no draw is lost, the streams' order is kept).

        Raises:
            OverflowError: an ``items`` run whose times could pass the clock's range.
        """
        c = self.workers
        if self.limit is not None:
            np.minimum(s, self.limit, out=s)  # a service ending past the limit ends past it either way
        start = max(self.next_arrive, self.latest)
        beyond = False
        if start + a.sum(dtype=np.float64) >= _DROP_NS and self.limit is not None:
            estimate = self.next_arrive + np.concatenate(([0.0], np.cumsum(a, dtype=np.float64)))[:n]
            n = int(np.searchsorted(estimate, _DROP_NS, "left"))  # every later arrival is past the limit
            n_arr = min(n_arr, n)
            a, s, beyond = a[:n_arr], s[:n], True
        work = s.sum(dtype=np.float64)
        if n and start + a.sum(dtype=np.float64) + min(work, work / c + float(s.max())) >= _BOUND_NS:
            if self.limit is None:
                raise OverflowError(
                    f"model times of this replication could pass the virtual clock's range "
                    f"({_RANGE_NS / _NS:.4g} s, int64 nanoseconds); shorten the delays or the run"
                )
            busy = np.cumsum(s, dtype=np.float64)
            grown = start + np.cumsum(a, dtype=np.float64) + np.minimum(busy, busy / c + float(s.max()))
            k = max(1, int(np.searchsorted(grown, _BOUND_NS, "left")))
            self._carry = (np.concatenate((a[k:], self._carry[0])), np.concatenate((s[k:], self._carry[1])))
            a, s, n, n_arr, beyond = a[:k], s[:k], k, k, False
        return a, s, n, n_arr, beyond

    def _clamp_state(self) -> None:
        """In a duration run, a worker free (or an item taken) after the limit is the same as one
        free at the limit: nothing after it is observed. Clamping keeps the state's times in range."""
        limit, c = self.limit, self.workers
        assert limit is not None  # called in duration runs only
        if self.latest <= limit:
            return
        self.latest = limit
        np.minimum(self.free_ns, limit, out=self.free_ns)
        np.minimum(self.ring_ns, limit, out=self.ring_ns)
        self.prev_done = min(self.prev_done, limit)
        if max(self.heap) >= limit * c:
            self.heap = [min(e // c, limit) * c + e % c for e in self.heap]
            heapq.heapify(self.heap)
        self.ring = [min(e, limit * c) for e in self.ring]

    def _draw(self, n: int, n_arr: int) -> tuple[np.ndarray, np.ndarray]:
        """The next ``n_arr`` arrivals and ``n`` services in ns, draws carried from the last chunk first."""
        carried_a, carried_s = self._carry
        more_a, more_s = max(n_arr - carried_a.size, 0), max(n - carried_s.size, 0)
        a = _ns(self.arrivals.take(more_a)) if more_a else np.empty(0, dtype=np.int64)
        s = _ns(self.services.take(more_s)) if more_s else np.empty(0, dtype=np.int64)
        if carried_a.size or carried_s.size:
            a, s = np.concatenate((carried_a, a)), np.concatenate((carried_s, s))
        self._carry = (a[n_arr:], s[n:])  # draws beyond this chunk (a backlog's gaps) come first next time
        return a[:n_arr], s[:n]

    def _lindley(self, t_put: np.ndarray, s: np.ndarray):
        total = np.cumsum(s)
        before = total - s
        top = np.maximum.accumulate(t_put - before)
        np.maximum(top, self.prev_done, out=top)
        t_get = top + before
        self.prev_done = int(top[-1] + total[-1])
        return t_get, np.zeros(t_put.size, dtype=np.int64)

    def _assign(self, t_put: np.ndarray, s: np.ndarray):
        """The earliest-free-server loop in C (``bench._recurrence.assign``); same result as below."""
        t_get = np.empty(t_put.size, dtype=np.int64)
        worker = np.empty(t_put.size, dtype=np.int64)
        _c_assign(np.ascontiguousarray(t_put), np.ascontiguousarray(s), self.free_ns, t_get, worker)
        return t_get, worker

    def _bounded_c(self, a: np.ndarray, s: np.ndarray, n: int):
        """The bounded-queue loop in C (``bench._recurrence.bounded``); same result as :meth:`_bounded`.

        Its state lives in arrays (unscaled ns): free times per worker and the ring of t_get."""
        a_full = np.zeros(n, dtype=np.int64)
        a_full[: a.size] = a
        state = np.array([self.next_arrive, self.next_item, -1 if self.limit is None else self.limit], dtype=np.int64)
        t_arrive, t_put, t_get, worker = (np.empty(n, dtype=np.int64) for _ in range(4))
        k, stop = _c_bounded(a_full, np.ascontiguousarray(s), self.free_ns, self.ring_ns, state,
                             t_arrive, t_put, t_get, worker)  # fmt: skip
        self.next_arrive = int(state[0])
        if stop:
            self.done = True
        return t_arrive[:k], t_put[:k], t_get[:k], worker[:k], s[:k]

    def _two(self, t_put: np.ndarray, s: np.ndarray):
        """Two workers: two free times instead of a heap (the commonest multi-worker case)."""
        free = [0, 0]
        for e in self.heap:  # encoded free_ns * 2 + worker
            free[e & 1] = e >> 1
        f0, f1 = free
        out: list[int] = []
        append = out.append
        for p, d in zip(t_put.tolist(), s.tolist()):
            if f0 <= f1:  # ties go to the lower index, as in the heap
                if p > f0:
                    f0 = p
                append(f0)
                f0 += d
            else:
                if p > f1:
                    f1 = p
                append(~f1)  # worker 1: stored as ~t_get, decoded below
                f1 += d
        self.heap = sorted((f0 * 2, f1 * 2 + 1))
        enc = np.array(out, dtype=np.int64)
        sign = enc >> 63  # -1 for worker 1, 0 for worker 0
        return enc ^ sign, -sign

    def _heap(self, t_put: np.ndarray, s: np.ndarray):
        c = self.workers
        if self.in_c:
            return self._assign(t_put, s)
        if c == 2:
            return self._two(t_put, s)
        heap = self.heap
        replace = heapq.heapreplace
        out: list[int] = []
        append = out.append
        for p, d in zip((t_put * c).tolist(), (s * c).tolist()):
            f = heap[0]
            w = f % c
            g = f - w
            if p > g:
                g = p
            replace(heap, g + d + w)
            append(g + w)
        enc = np.array(out, dtype=np.int64)
        worker = enc % c
        return (enc - worker) // c, worker

    def _bounded(self, a: np.ndarray, s: np.ndarray, n: int):
        if self.in_c:
            return self._bounded_c(a, s, n)
        c, m = self.workers, self.maxsize
        heap, ring = self.heap, self.ring
        replace = heapq.heapreplace
        limit = None if self.limit is None else self.limit * c
        arrive_out, put_out, get_out = [], [], []
        nxt = self.next_arrive * c
        i = self.next_item
        a_c = (a * c).tolist()
        a_c.append(0)
        stop = False
        for k, d in enumerate((s * c).tolist()):
            if limit is not None and nxt >= limit:
                stop = True
                break
            slot = i % m
            p = nxt
            if i >= m:
                q = ring[slot]
                if q > p:
                    p = q
            if limit is not None and p >= limit:
                stop = True  # the pusher is blocked in put when time runs out: dropped
                break
            arrive_out.append(nxt)
            put_out.append(p)
            f = heap[0]
            w = f % c
            g = f - w
            if p > g:
                g = p
            replace(heap, g + d + w)
            ring[slot] = g
            get_out.append(g + w)
            nxt = p + a_c[k]
            i += 1
        self.next_arrive = nxt // c
        if stop:
            self.done = True
        k = len(put_out)
        enc = np.array(get_out, dtype=np.int64)
        worker = enc % c
        return (
            np.array(arrive_out, dtype=np.int64) // c,
            np.array(put_out, dtype=np.int64) // c,
            (enc - worker) // c,
            worker,
            s[:k],
        )

    # -- output ------------------------------------------------------------------------------------

    def emit(self, first: int, t_arrive, t_put, t_get, s, worker) -> None:
        n = t_put.size
        item = np.arange(first, first + n, dtype=np.int64)
        self.next_item = first + n
        t_done = t_get + s
        got = n if self.limit is None else int(np.searchsorted(t_get, self.limit, "left"))  # FIFO: t_get sorted
        depth_at_put = self.merge(t_put, item, t_get[:got], item[:got])
        if self.capped is not None:  # the queue reached max_backlog at the k-th put: the run stops there
            k = self.capped[1] - first + 1
            item, t_arrive, t_put, t_get, t_done, worker, depth_at_put = (
                a[:k] for a in (item, t_arrive, t_put, t_get, t_done, worker, depth_at_put)
            )
            self.done = True
        if self.limit is None:
            self.t_end_ns = max(self.t_end_ns, int(t_done.max()))
        held = (item, t_arrive, t_put, t_get, t_done, worker, depth_at_put)
        self.held = held if self.held is None else tuple(np.concatenate(pair) for pair in zip(self.held, held))
        self.flush_items(bound=int(t_put[-1]))

    def flush_items(self, bound: int | None = None, final: bool = False) -> None:
        """Send the held items whose service ended by ``bound`` (all of them when ``final``), as a
        prefix in item order; the rest stay held (the backlog and the items in service)."""
        if self.held is None:
            return
        item, t_arrive, t_put, t_get, t_done, worker, depth_at_put = self.held
        late = None if final else t_done > bound
        k = int(np.argmax(late)) if late is not None and late.any() else item.size
        if k < item.size and k < self.batch and not final:
            return
        if k == 0:
            return
        self.held = None if k == item.size else tuple(a[k:] for a in self.held)
        item, t_arrive, t_put, t_get, t_done, worker, depth_at_put = (
            a[:k] for a in (item, t_arrive, t_put, t_get, t_done, worker, depth_at_put)
        )
        end = None
        if self.capped is not None:
            end, last = self.capped
            got = (t_get < end) | ((t_get == end) & (item < last))  # gets before the capping put
        elif self.limit is not None:
            end = self.limit
            got = t_get < end
        else:
            got = np.ones(k, dtype=bool)
        done = got & (t_done < end) if end is not None else got
        f_put = seconds(t_put)
        if end is None:  # items run, no cap: every item was taken and finished
            f_get, f_done = seconds(t_get), seconds(t_done)
            service = f_done - f_get
        else:
            f_get = np.where(got, seconds(t_get), np.nan)
            f_done = np.where(done, seconds(t_done), np.nan)
            worker = np.where(got, worker, -1)
            service = f_done - f_get
        r = self.result
        r.busy += float(np.nansum(service))
        if end is not None:
            open_ = got & ~done
            if open_.any():
                r.busy += float((end / _NS - f_get[open_]).sum())
        r.n_put += k
        r.n_got += int(got.sum())
        r.n_done += int(done.sum())
        r.t_last_put = float(f_put[-1])
        for lo in range(0, k, self.batch):
            hi = lo + self.batch
            self.sink.items(
                {
                    "item": item[lo:hi],
                    "worker": worker[lo:hi],
                    "t_arrive": seconds(t_arrive[lo:hi]),
                    "t_put": f_put[lo:hi],
                    "t_get": f_get[lo:hi],
                    "t_done": f_done[lo:hi],
                    "wait": f_get[lo:hi] - f_put[lo:hi],
                    "service": service[lo:hi],
                    "sojourn": f_done[lo:hi] - f_put[lo:hi],
                    "depth_at_put": depth_at_put[lo:hi],
                }
            )
            if self.on_progress is not None:
                self.on_progress(min(hi, k) - lo)

    def merge(self, t_put, i_put, t_get, i_get) -> np.ndarray:
        """Emit every put of the chunk and every known get up to the last put, in event order;
        return the queue size right after each put."""
        bound = int(t_put[-1])
        g_t = np.concatenate((self.pending_t, t_get))
        g_i = np.concatenate((self.pending_i, i_get))
        ready = int(np.searchsorted(g_t, bound, "right"))
        self.pending_t, self.pending_i = g_t[ready:], g_i[ready:]
        return self._events(t_put, i_put, g_t[:ready], g_i[:ready])

    def flush_gets(self) -> None:
        if self.pending_t.size:
            empty = np.empty(0, dtype=np.int64)
            self._events(empty, empty, self.pending_t, self.pending_i)
            self.pending_t = self.pending_i = empty

    def _events(self, t_put, i_put, t_get, i_get) -> np.ndarray:
        """Send the depth events of these puts and gets in (time, item, put before get) order and
        return the queue size right after each put. The gets are those of earlier items still
        pending, then those of a prefix of the puts' items (both in item order, as FIFO makes them)."""
        np_, ng = t_put.size, t_get.size
        first = int(i_put[0]) if np_ else 0
        old = int(np.searchsorted(i_get, first, "left")) if np_ else ng  # gets of earlier items
        m = ng - old  # gets of this chunk's first m items
        # Lay events out in (item, put before get) order; a stable sort by time then gives the order.
        t = np.empty(np_ + ng, dtype=np.int64)
        step = np.empty(np_ + ng, dtype=np.int8)
        t[:old], step[:old] = t_get[:old], -1
        t[old : old + 2 * m : 2], step[old : old + 2 * m : 2] = t_put[:m], 1
        t[old + 1 : old + 2 * m : 2], step[old + 1 : old + 2 * m : 2] = t_get[old:], -1
        t[old + 2 * m :], step[old + 2 * m :] = t_put[m:], 1
        order = np.argsort(t, kind="stable")
        if np_ and first < self.burst:  # the backlog's puts at t = 0 come before any get there (see __init__)
            j = np.arange(min(np_, self.burst - first))
            burst = j[t_put[j] == 0]
            rank = np.arange(t.size)
            rank[np.where(burst < m, old + 2 * burst, old + m + burst)] = -1
            order = np.lexsort((rank, t))
        step = step[order]
        depth = self.depth + np.cumsum(step, dtype=np.int64)
        at_put = depth[step == 1]  # puts come out in item order
        if self.cap is not None and np_ and int(at_put.max()) >= self.cap:
            k = int(np.argmax(at_put >= self.cap))  # the put that fills the queue to max_backlog
            cut = int(np.flatnonzero(step == 1)[k]) + 1  # nothing after it is recorded
            order, step, depth = order[:cut], step[:cut], depth[:cut]
            self.capped = (int(t_put[k]), int(i_put[k]))
            self.pending_t = self.pending_i = np.empty(0, dtype=np.int64)
        if depth.size:
            self.depth = int(depth[-1])
        for lo in range(0, order.size, self.batch):
            hi = lo + self.batch
            self.sink.depth({"t": seconds(t[order[lo:hi]]), "depth": depth[lo:hi], "event": step[lo:hi]})
        return at_put


def run_recurrence(
    scenario: Scenario,
    arrivals: Stream,
    services: Stream,
    sink: Sink,
    *,
    on_progress: Callable[[int], None] | None = None,
    batch: int = BATCH,
    scale: float | None = None,
    loop_factory: Callable[[], asyncio.AbstractEventLoop] | None = None,
    accelerated: bool = True,
) -> Replication:
    """Compute one replication of ``scenario`` and send its items and depth changes to ``sink``.

    The recurrence engine's entry point (the signature every engine shares, :mod:`bench.replication`).

    Args:
        scenario: what to run (any workers, maxsize, items or duration).
        arrivals: inter-arrival times (the stream :func:`bench.grid.streams` gives the asyncio engine).
        services: service times, one per item in item order.
        sink: receives item batches (in item order) and depth batches (in event order).
        on_progress: called with the number of items in each batch sent.
        batch: items per batch.
        scale: must be ``None``: this engine computes in virtual time.
        loop_factory: must be ``None``: this engine runs no event loop.
        accelerated: run the server loops in C where ``bench._recurrence`` was built.

    Raises:
        ValueError: a scale or a loop factory was given, or a scenario other than the plain pool
            (the grid refuses those before anything runs).
        OverflowError: the replication's times would pass the virtual clock's range.
    """
    if scale is not None or loop_factory is not None:
        raise ValueError("the recurrence engine computes in virtual time: it takes no scale or event loop")
    if not scenario.plain:
        raise ValueError("the recurrence engine computes the plain FIFO pool only (one pusher, no classes, "
                         "patience, batches or failures, the built-in scenario); use the asyncio engine")  # fmt: skip
    return _Engine(scenario, arrivals, services, sink, on_progress, batch, accelerated).compute()


# -- the accelerator: bench._recurrence (C) runs the server loops of _Engine when it was built -------

#: True when the earliest-free-server loops run in C (``bench._recurrence`` was built).
ACCELERATED = False
try:
    from bench._recurrence import assign as _c_assign
    from bench._recurrence import bounded as _c_bounded
except ImportError:  # built without a C compiler: _Engine's Python loops do the same
    pass
else:
    ACCELERATED = True
