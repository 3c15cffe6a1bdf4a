"""Executor jobs of the virtual loops, and the rule by which the clock advances while they run.

Each call of ``run_in_executor`` on a thread pool (so ``asyncio.to_thread``) is a *job*: it runs
in a thread, in real time, while the loop's clock is virtual. Whenever nothing is ready to run,
the loop looks at every job in flight (:func:`survey`):

1. A job is **busy** while its thread runs (computes, sleeps, does I/O), while its result is on
   its way to the loop, and while it is queued for a pool worker that is free or busy. The loop
   waits for busy jobs in real time and the clock does not move: a job that never waits on the
   loop takes zero virtual time.
2. A job **waits on the loop** when its thread is blocked in one of :mod:`threading`'s waits
   (``concurrent.futures.Future.result``, ``Event.wait``, ``queue.Queue.get``,
   ``Condition.wait``, ``Semaphore.acquire``, ...; a wait with a timeout of 0 or less is a poll,
   not a wait) and not yet woken, and either it has handed work to the loop
   (``call_soon_threadsafe`` from its thread, which ``run_coroutine_threadsafe`` uses; that work
   has run, since the loop looks only when nothing is ready) or no thread-pool worker of the
   process is running a task (each is idle, blocked in such a wait or joining a thread), so only
   the loop can wake it. Threads of no pool are not looked at: those a program keeps (another
   event loop, a monitor) would otherwise hold the clock for ever. A job queued behind pool workers that all run jobs waiting on the
   loop waits on the loop too.
3. The clock advances to the next timer only when every job waits on the loop and no thread of
   the process is starting (a job that starts a thread waits for it in ``Thread.start``).
4. A job that hands work and keeps computing is busy until it blocks: the work it handed runs
   at the current virtual time and the clock holds until the job blocks or returns. A job that
   hands work and then blocks on something other than the loop (a pool of its own), or that
   blocks on a thread of no pool, is taken to wait on the loop: the clock may move on meanwhile.
5. Timeouts: ``Future.result(timeout)`` and ``Future.exception(timeout)`` of a
   ``concurrent.futures.Future`` count virtual time: the job raises ``TimeoutError`` at the
   virtual time it began to wait plus ``timeout``, as under ``asyncio.run`` (provided the loop
   gets there within ``timeout`` of real time). Other waits' timeouts are real time: the clock
   may pass them, and with nothing else to do the loop waits for them in real time.
6. :class:`~bench.loop.reference.Deadlock`: nothing is ready, no timer is pending and every job
   waits on the loop, none with a real-time timeout. The message names the blocked tasks and the
   waiting jobs (function, thread, the line where it waits).

So every virtual time a program sees is the same on every run and on every loop: the clock never
moves while a job runs, and a blocked job is woken only by the loop, at a virtual time the program
fixes, or by its virtual timeout. Events of one virtual instant that a thread takes part in may
interleave with the loop's in any order, as under asyncio. Real-time timeouts, and threads the
loop does not know of (started outside an executor) calling into it, escape the rule.

How it is read: a thread is blocked when its innermost Python frame is ``threading.Condition.wait``
(``sys._current_frames``) and the waiter lock it noted when it began to wait is still in the
condition's waiter list (the waiter leaves the list when it is notified, so a woken thread is busy
at once; see ``_note_wait`` for how a thread notes its waits); a pool's
worker runs under ``concurrent.futures.thread._worker``, and sits in it when idle; a starting thread is in ``threading._limbo``.
All are the same on Python 3.11 to 3.13. A job changes state without telling the loop when it
blocks, so while one could, the loop looks again after a pause of 0.1 ms, doubled up to 5 ms.
"""

from __future__ import annotations

import concurrent.futures
import concurrent.futures.thread
import os
import sys
import threading
from collections.abc import Callable
from types import FrameType
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .reference import ReferenceVirtualEventLoop

__all__ = ["Job", "Survey", "survey", "describe"]

#: a job's states: submitted but not started, running in its thread, returned (result on its way)
QUEUED, RUNNING, RETURNED = "queued", "running", "returned"

_WAIT = threading.Condition.wait.__code__
#: waits whose timeout counts in virtual time: a concurrent future's result() and exception()
_FUTURE_WAITS = frozenset({concurrent.futures.Future.result.__code__, concurrent.futures.Future.exception.__code__})
_WORKER = concurrent.futures.thread._worker.__code__  # the outermost frame of a pool's thread
#: frames in which a pool worker is idle: waiting for work, or joining a thread
_IDLE = frozenset(
    code
    for code in (
        _WORKER,
        threading.Thread.join.__code__,
        getattr(getattr(threading.Thread, "_wait_for_tstate_lock", None), "__code__", None),  # 3.11, 3.12
    )
    if code is not None
)
#: the files of the standard library's waits, skipped when saying where a job waits
_WAIT_FILES = frozenset({threading.__file__, concurrent.futures._base.__file__})


class Job:
    """One piece of work sent to a thread pool by ``run_in_executor``: the callable the pool runs.

    Calling it (in a worker thread) runs ``func(*args)`` and keeps :attr:`state` and
    :attr:`thread` up to date for the loop, which reads them from its own thread.
    """

    __slots__ = ("loop", "func", "args", "executor", "state", "thread", "handed", "future_done", "wait", "timer")

    def __init__(self, loop: ReferenceVirtualEventLoop, func: Callable[..., Any], args: tuple[Any, ...]) -> None:
        self.loop = loop
        self.func = func
        self.args = args
        self.executor: concurrent.futures.Executor | None = None
        self.state = QUEUED
        self.thread: int | None = None  # the ident of the thread running it
        self.handed = False  # it has handed work to the loop (call_soon_threadsafe from its thread)
        self.future_done = False  # its asyncio future finished first (cancelled): the loop lets go of it
        self.wait: object = None  # the waiter lock of the Future.result wait its timer is for
        self.timer: Any = None  # that wait's virtual-time deadline (a timer handle)

    def __call__(self) -> Any:
        loop = self.loop
        ident = threading.get_ident()
        with loop._jobs_lock:
            tracked = not self.future_done
            if tracked:
                self.thread = ident
                self.state = RUNNING
                loop._job_threads[ident] = self
        profiled = tracked and _watch_this_thread()
        try:
            return self.func(*self.args)
        finally:
            if profiled:
                sys.setprofile(None)
            _waits.pop(ident, None)
            with loop._jobs_lock:
                if tracked:
                    del loop._job_threads[ident]
                    self.state = RETURNED
                late = tracked and self.future_done
            if late:  # nobody waits for its result: tell the loop the thread is free
                try:
                    loop.call_soon_threadsafe(loop._job_over, self)
                except RuntimeError:  # the loop was closed meanwhile
                    pass

    def name(self) -> str:
        """What the job runs, e.g. ``blocking`` (``to_thread``'s wrapping unwrapped)."""
        func, args = self.func, self.args
        while True:
            inner = getattr(func, "func", None)  # functools.partial
            if inner is not None:
                func, args = inner, getattr(func, "args", ())
            elif getattr(func, "__name__", None) == "run" and args and callable(args[0]):  # Context.run(f, ...)
                func, args = args[0], args[1:]
            else:
                break
        return getattr(func, "__qualname__", None) or repr(func)


class Survey:
    """What :func:`survey` found: whether the clock may advance, and how to wait if not."""

    __slots__ = ("settled", "poll", "real_timeouts", "waiting")

    def __init__(self) -> None:
        self.settled = True  # every job waits on the loop
        self.poll = False  # a job may change state without waking the loop (it may block, or time out)
        self.real_timeouts = False  # a job waits on the loop with a real-time timeout
        self.waiting: list[tuple[Job, FrameType]] = []  # the jobs waiting on the loop, with their frames


# -- seeing a thread block ------------------------------------------------------------------------
#
# Reading another thread's frame locals (frame.f_locals) can crash CPython 3.12 while that thread
# runs, so a thread notes its own waits: when it calls the blocking ``waiter.acquire`` in
# ``Condition.wait``, the condition, the waiter and the timeout go into ``_waits`` under its ident.
# On 3.12+ a sys.monitoring CALL event on that one code object does it, in every thread, at no cost
# elsewhere; on 3.11 (or when no monitoring tool id is free) a profile function set in each job's
# thread while the job runs. The loop reads only code objects, lines and ``f_back`` of other
# threads' frames (as tracebacks do), and ``waiter in condition._waiters``.

_waits: dict[int, tuple[Any, Any, Any]] = {}  # thread ident -> (condition, waiter, timeout) of its last wait
_monitoring = False  # the sys.monitoring event is set


def _note_wait(frame: FrameType, acquire: object, first: object = None) -> None:
    """In the waiting thread: note the wait of ``frame`` (``Condition.wait``) if ``acquire`` is its
    blocking ``waiter.acquire`` (a bound method, or the method descriptor with ``first`` its lock,
    as 3.12's monitoring reports a method call)."""
    if getattr(acquire, "__name__", None) != "acquire":
        return
    waiter = getattr(acquire, "__self__", first)
    local = frame.f_locals  # this thread's own frame: safe
    cond = local.get("self")
    if waiter is not None and waiter in getattr(cond, "_waiters", ()):
        _waits[threading.get_ident()] = (cond, waiter, local.get("timeout"))


def _on_call(code: object, offset: int, callable: object, arg0: object) -> None:
    _note_wait(sys._getframe(1), callable, arg0)


def _profile(frame: FrameType, event: str, arg: object) -> None:
    if event == "c_call" and frame.f_code is _WAIT:
        _note_wait(frame, arg)


def _watch_this_thread() -> bool:
    """Make the waits of the calling (job) thread seen; True if it set this thread's profile function."""
    global _monitoring
    monitoring = getattr(sys, "monitoring", None)
    if monitoring is not None and not _monitoring:
        with _watch_lock:
            if not _monitoring:
                for tool in (4, 3):
                    if monitoring.get_tool(tool) is None:
                        monitoring.use_tool_id(tool, "bench.loop")
                        monitoring.register_callback(tool, monitoring.events.CALL, _on_call)
                        monitoring.set_local_events(tool, _WAIT, monitoring.events.CALL)
                        _monitoring = True
                        break
    if _monitoring or sys.getprofile() is not None:
        return False
    sys.setprofile(_profile)
    return True


_watch_lock = threading.Lock()


def _blocked(ident: int | None, frame: FrameType | None) -> tuple[Any, Any, Any] | None:
    """``(condition, waiter, timeout)`` when thread ``ident``, at ``frame``, waits in a
    ``Condition.wait`` not yet woken, else None."""
    if frame is None or frame.f_code is not _WAIT or ident is None:
        return None
    wait = _waits.get(ident)
    if wait is None or wait[1] not in wait[0]._waiters:
        return None  # about to wait, or woken and leaving
    if wait[2] is not None and wait[2] <= 0:
        return None  # a poll (Semaphore.acquire(timeout=0) in ThreadPoolExecutor.submit): it goes on at once
    return wait


def _pool_worker_running(ident: int, frame: FrameType) -> bool:
    """Whether ``frame`` is the innermost of a thread-pool worker that runs a task (not idle, not
    blocked); the threads of no pool are not looked at. A worker whose waits are not noted (3.11,
    not a job's thread) counts as blocked while it is in ``Condition.wait``."""
    if frame.f_code in _IDLE or _blocked(ident, frame) is not None:
        return False
    if frame.f_code is _WAIT and ident not in _waits:
        return False
    outer: FrameType | None = frame
    while outer is not None:
        if outer.f_code is _WORKER:
            return True
        outer = outer.f_back
    return False


def _starting() -> bool:
    """Whether a thread was started and has not begun to run Python yet (it has no frame to read;
    the thread that started it waits for it in ``Thread.start``)."""
    return bool(getattr(threading, "_limbo", None))


def survey(loop: ReferenceVirtualEventLoop, jobs: list[Job], opaque: int) -> Survey:
    """Classify the loop's jobs (see the module docstring); set or drop their virtual-time deadlines.

    Args:
        loop: the loop, idle (nothing ready), in its own thread.
        jobs: its jobs in flight, in the order they were submitted.
        opaque: other work in flight the loop cannot look into (another kind of executor, the
            default executor's shutdown); each is busy until it completes, and says so.
    """
    found = Survey()
    if opaque:
        found.settled = False
    if _starting():  # a job may be waiting in Thread.start for it: wait until it runs
        found.settled = False
        found.poll = True
    frames = sys._current_frames()
    blocked: dict[int, tuple[Any, Any, Any]] = {}
    for job in jobs:
        if job.state == RUNNING and job.thread is not None:
            wait = _blocked(job.thread, frames.get(job.thread))
            if wait is not None:
                blocked[job.thread] = wait
    quiet: bool | None = None  # computed when needed: no thread-pool worker runs a task
    waiting_threads: set[int] = set()
    for job in jobs:
        wait = blocked.get(job.thread) if job.state == RUNNING and job.thread is not None else None
        if wait is not None and not job.handed and quiet is None:
            here = threading.get_ident()
            quiet = not any(
                ident != here and ident not in blocked and _pool_worker_running(ident, frame)
                for ident, frame in frames.items()
            )
        _deadline(loop, job, wait, frames)
        if wait is None or not (job.handed or quiet):
            if job.state != RETURNED:  # a returned job's result wakes the loop; the others may not
                found.poll = True
            if job.state != QUEUED:
                found.settled = False
            continue
        assert job.thread is not None
        waiting_threads.add(job.thread)
        found.waiting.append((job, frames[job.thread]))
        if wait[2] is not None and job.timer is None:
            found.real_timeouts = found.poll = True
    for job in jobs:  # queued jobs: waiting only behind workers that all wait on the loop
        if job.state == QUEUED and not _stuck_behind(job, waiting_threads):
            found.settled = False
    return found


def _stuck_behind(job: Job, waiting_threads: set[int]) -> bool:
    threads = getattr(job.executor, "_threads", None)
    limit = getattr(job.executor, "_max_workers", None)
    if threads is None or limit is None or len(threads) < limit:
        return False
    return all(thread.ident in waiting_threads for thread in list(threads))


def _deadline(loop: ReferenceVirtualEventLoop, job: Job, wait: tuple[Any, Any, Any] | None, frames: dict) -> None:
    """Keep the timer of a job blocked in ``Future.result(timeout)``: set it at the first sight of
    the wait, drop it once the wait is over."""
    future_wait = None
    if wait is not None and wait[2] is not None:
        caller = frames[job.thread].f_back
        if caller is not None and caller.f_code in _FUTURE_WAITS:
            future_wait = wait
    if job.timer is not None and (future_wait is None or future_wait[1] is not job.wait):
        job.timer.cancel()
        job.timer = job.wait = None
    if future_wait is not None and job.timer is None:
        cond, waiter, timeout = future_wait
        job.wait = waiter
        job.timer = loop.call_later(max(timeout, 0), _time_out, cond, waiter)


def _time_out(cond: threading.Condition, waiter: Any) -> None:
    """Wake one thread waiting on ``cond`` (its ``Future.result`` then raises ``TimeoutError``)."""
    with cond:
        try:
            cond._waiters.remove(waiter)  # type: ignore[attr-defined]  # threading's own bookkeeping
        except ValueError:
            return  # woken meanwhile
        waiter.release()


def describe(job: Job, frame: FrameType) -> str:
    """``name (thread NAME, waiting at FILE:LINE)`` for a deadlock message."""
    where = frame
    while where.f_back is not None and where.f_code.co_filename in _WAIT_FILES:
        where = where.f_back
    thread = next((t.name for t in threading.enumerate() if t.ident == job.thread), "?")
    return f"{job.name()} (thread {thread}, waiting at {os.path.basename(where.f_code.co_filename)}:{where.f_lineno})"
