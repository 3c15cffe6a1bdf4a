"""The reference virtual-time loop, the specification of the fast loops, and :class:`Deadlock`.

:class:`ReferenceVirtualEventLoop` is a plain ``asyncio.SelectorEventLoop`` with a virtual clock:
one asyncio iteration per ``_run_once``, asyncio's own handles, a heap of
``(deadline ns, sequence, TimerHandle)``. It is written for clarity, not speed: the fast loops
(:mod:`bench.loop.pyloop`, :mod:`bench.loop.cloop`) are tested against it for identical event
traces. This module also holds the integer-nanosecond conversion every loop of the package uses.
"""

from __future__ import annotations

import asyncio
import collections
import contextvars
import functools
import heapq
import itertools
import selectors
import threading
import traceback
from collections.abc import Callable
from concurrent.futures import Executor, ThreadPoolExecutor
from types import FrameType
from typing import TYPE_CHECKING, Any, TypeVar, TypeVarTuple

from .jobs import RUNNING, Job, describe, survey

__all__ = ["Deadlock", "ReferenceVirtualEventLoop"]

_NS = 1_000_000_000
#: The virtual clock's range in seconds: it counts int64 nanoseconds (about 292 years; the C core
#: clamps deadlines beyond it, the Python loops do not).
CLOCK_RANGE = (2**63 - 1) / _NS
#: The virtual clock's resolution in seconds: every delay is rounded to whole nanoseconds.
RESOLUTION = 1 / _NS
#: How long the loop pauses, in real seconds, before it looks again at a busy executor job that
#: could block without telling it: the first pause, doubled up to the last.
_POLL_FIRST, _POLL_MAX = 1e-4, 5e-3

_T = TypeVar("_T")
_Ts = TypeVarTuple("_Ts")

if TYPE_CHECKING:

    class _TimerHandle(asyncio.TimerHandle):
        """asyncio's TimerHandle with the private slots this loop uses (typeshed leaves them out)."""

        _scheduled: bool
        _source_traceback: traceback.StackSummary | None

else:
    _TimerHandle = asyncio.TimerHandle


class Deadlock(RuntimeError):
    """Every task is waiting and nothing (no ready callback, timer or executor job) can wake one."""


def _ns(seconds: float) -> int:
    return round(seconds * _NS)


class ReferenceVirtualEventLoop(asyncio.SelectorEventLoop):
    """The plain virtual-time loop: one asyncio iteration per ``_run_once``, stock handles.

    Args:
        start: the virtual time, in seconds, at which the clock starts.

    It is the specification :class:`VirtualEventLoop` and :class:`PyVirtualEventLoop` are tested
    against (same event traces).
    """

    if TYPE_CHECKING:
        # asyncio's private loop state used by the virtual loops; typeshed does not declare it.
        _ready: collections.deque[Any]  # asyncio's handles, and the fast loops' light handles
        _debug: bool
        _closed: bool
        _stopping: bool
        _selector: selectors.BaseSelector
        _default_executor: ThreadPoolExecutor | None

        def _check_closed(self) -> None: ...
        def _check_thread(self) -> None: ...
        def _check_callback(self, callback: object, method: str) -> None: ...
        def _process_events(self, event_list: list[tuple[selectors.SelectorKey, int]]) -> None: ...

    def __init__(self, start: float = 0.0) -> None:
        super().__init__()
        self._now_ns = _ns(start)
        self._now_s = self._now_ns / _NS  # time() in seconds, kept with _now_ns
        self._timers: list[tuple[int, int, _TimerHandle]] = []
        self._seq = itertools.count()
        self._cancelled_timers = 0
        self._init_jobs()

    def _init_jobs(self) -> None:
        """The executor jobs' state (every loop class calls this from its ``__init__``)."""
        self._external = 0  # work in flight in executors: each job, and work the loop cannot look into
        self._jobs: dict[Job, None] = {}  # the jobs on thread pools in flight, in submission order
        self._job_threads: dict[int, Job] = {}  # thread ident -> the job it runs (written by the threads)
        self._jobs_lock = threading.Lock()  # a job's start and end against its future's completion
        self._waiting_jobs: list[tuple[Job, FrameType]] = []  # the jobs found waiting on the loop

    # -- the clock -------------------------------------------------------------------------------

    def time(self) -> float:
        """Return the virtual time in seconds."""
        return self._now_ns / _NS

    def time_ns(self) -> int:
        """Return the virtual time in integer nanoseconds (exact at any magnitude)."""
        return self._now_ns

    # -- scheduling ------------------------------------------------------------------------------

    def call_later(
        self,
        delay: float,
        callback: Callable[[*_Ts], object],
        *args: *_Ts,
        context: contextvars.Context | None = None,
    ) -> asyncio.TimerHandle:
        """Schedule ``callback`` after ``delay`` virtual seconds (exact integer-nanosecond arithmetic)."""
        if delay is None:
            raise TypeError("delay must not be None")
        return self._schedule(self._now_ns + max(_ns(delay), 0), callback, args, context)

    def call_at(
        self,
        when: float,
        callback: Callable[[*_Ts], object],
        *args: *_Ts,
        context: contextvars.Context | None = None,
    ) -> asyncio.TimerHandle:
        """Schedule ``callback`` at virtual time ``when`` (seconds)."""
        if when is None:
            raise TypeError("when cannot be None")
        return self._schedule(_ns(when), callback, args, context)

    def _schedule(
        self, when_ns: int, callback: Callable[..., object], args: tuple[Any, ...], context: contextvars.Context | None
    ) -> asyncio.TimerHandle:
        self._check_closed()
        if self._debug:
            self._check_thread()
            self._check_callback(callback, "call_at")
        timer = _TimerHandle(when_ns / _NS, callback, args, self, context)
        if timer._source_traceback:
            del timer._source_traceback[-1]
        heapq.heappush(self._timers, (when_ns, next(self._seq), timer))
        timer._scheduled = True
        return timer

    def _timer_handle_cancelled(self, handle: _TimerHandle) -> None:
        if handle._scheduled:
            self._cancelled_timers += 1

    # -- executor jobs: the clock waits for them unless they wait on the loop (bench/loop/jobs.py) --

    def run_in_executor(self, executor: Executor | None, func: Callable[[*_Ts], _T], *args: *_Ts) -> asyncio.Future[_T]:
        """Like :meth:`asyncio.AbstractEventLoop.run_in_executor`; the clock waits for the job while
        it is busy (see :mod:`bench.loop.jobs` for the rule)."""
        if executor is not None and not isinstance(executor, ThreadPoolExecutor):
            # Not a thread pool (a process pool, say): a job the loop cannot look into, busy until done.
            future = super().run_in_executor(executor, func, *args)
            self._external += 1
            future.add_done_callback(self._external_done)
            return future
        if self._debug:
            self._check_callback(func, "run_in_executor")  # the job wrapper would hide a coroutine function
        job = Job(self, func, args)
        future = super().run_in_executor(executor, job)
        job.executor = executor if executor is not None else self._default_executor
        self._external += 1
        self._jobs[job] = None
        future.add_done_callback(functools.partial(self._job_done, job))
        return future

    def call_soon_threadsafe(
        self, callback: Callable[[*_Ts], object], *args: *_Ts, context: contextvars.Context | None = None
    ) -> asyncio.Handle:
        """Like :meth:`asyncio.AbstractEventLoop.call_soon_threadsafe`; from an executor job's thread it
        marks the job as having handed work to the loop."""
        job = self._job_threads.get(threading.get_ident())
        if job is not None:
            job.handed = True
        return super().call_soon_threadsafe(callback, *args, context=context)

    def _job_done(self, job: Job, _future: Any) -> None:
        with self._jobs_lock:
            job.future_done = True
            over = job.state != RUNNING  # else the job's thread tells the loop when it returns
        if over:
            self._job_over(job)

    def _job_over(self, job: Job) -> None:
        if self._jobs.pop(job, False) is None:
            self._external -= 1
            if job.timer is not None:
                job.timer.cancel()
                job.timer = None

    def _external_done(self, _future: Any) -> None:
        self._external -= 1

    async def shutdown_default_executor(self, *args: Any, **kwargs: Any) -> None:
        """Shut the default executor down, waiting for it in real time."""
        self._external += 1
        try:
            await super().shutdown_default_executor(*args, **kwargs)
        finally:
            self._external -= 1

    def _await_jobs(self) -> None:
        """Wait in real time, while nothing is ready, until a callback is ready or the clock may
        advance: every executor job waits on the loop (then a timer is pending, or no job waits
        with a real-time timeout and the caller raises :class:`Deadlock`)."""
        ready = self._ready
        pause = 0.0
        while True:
            found = survey(self, list(self._jobs), self._external - len(self._jobs))
            if ready:  # looked at after the jobs: work a job handed before it blocked is seen here
                return
            if found.settled and (not found.real_timeouts or self._has_timer()):
                self._waiting_jobs = found.waiting
                return
            # A busy job wakes the loop (self-pipe) when it hands work or returns, but not when it
            # blocks or a real-time timeout ends a wait: then look again after a short pause.
            self._process_events(self._selector.select(pause if found.poll else None))
            if ready:
                return
            pause = min(pause * 2 or _POLL_FIRST, _POLL_MAX)

    def _has_timer(self) -> bool:
        """Whether a timer that was not cancelled is pending (drops cancelled ones on top)."""
        self._drop_cancelled_timers()
        return bool(self._timers)

    # -- one iteration ---------------------------------------------------------------------------

    def _run_once(self) -> None:
        ready = self._ready
        self._drop_cancelled_timers()
        if not ready and not self._stopping:
            if self._external:
                self._await_jobs()  # may set or cancel the timers of jobs' waits
                self._drop_cancelled_timers()
            if not ready:
                timers = self._timers
                if not timers:
                    raise Deadlock(self._deadlock_message())
                if timers[0][0] > self._now_ns:
                    self._now_ns = timers[0][0]
                    self._now_s = self._now_ns / _NS
        timers = self._timers
        now = self._now_ns
        handle: asyncio.Handle | None
        while timers and timers[0][0] <= now:
            handle = heapq.heappop(timers)[2]
            if handle._cancelled:
                self._cancelled_timers -= 1
            else:
                handle._scheduled = False
                ready.append(handle)
        for _ in range(len(ready)):
            handle = ready.popleft()
            if not handle._cancelled:
                handle._run()
        handle = None  # break reference cycles when a callback raised

    def _drop_cancelled_timers(self) -> None:
        timers = self._timers
        if self._cancelled_timers > 64 and self._cancelled_timers * 2 > len(timers):
            kept = []
            for entry in timers:
                if entry[2]._cancelled:
                    entry[2]._scheduled = False
                else:
                    kept.append(entry)
            heapq.heapify(kept)
            self._timers = kept
            self._cancelled_timers = 0
            return
        while timers and timers[0][2]._cancelled:
            heapq.heappop(timers)[2]._scheduled = False
            self._cancelled_timers -= 1

    def _deadlock_message(self) -> str:
        blocked = []
        for task in sorted(asyncio.all_tasks(self), key=lambda t: t.get_name()):
            coro = task.get_coro()
            frame = getattr(coro, "cr_frame", None)
            where = f" at {frame.f_code.co_filename.rsplit('/', 1)[-1]}:{frame.f_lineno}" if frame else ""
            blocked.append(f"{task.get_name()} ({getattr(coro, '__qualname__', coro)}{where})")
        names = ", ".join(blocked[:10]) + (f", and {len(blocked) - 10} more" if len(blocked) > 10 else "")
        tasks = names or "no task (a bare future is awaited)"
        if not self._jobs:
            return (
                f"deadlock at virtual t={self.time():.9g}s: every task waits and no timer or executor job "
                f"is pending; blocked: {tasks}"
            )
        jobs = ", ".join(describe(job, frame) for job, frame in self._waiting_jobs)
        return (
            f"deadlock at virtual t={self.time():.9g}s: every task waits, no timer is pending and every "
            f"executor job waits on the loop; blocked: {tasks}; executor jobs waiting: {jobs}"
        )
