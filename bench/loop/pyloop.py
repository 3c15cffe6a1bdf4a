"""The fast virtual-time loop in pure Python: :class:`PyVirtualEventLoop`.

It behaves exactly like the reference loop (:mod:`bench.loop.reference`; the tests compare their
event traces) and is several times faster: light handles (:mod:`bench.loop.handles`) and a
``_run_once`` that runs iteration after iteration. It is what :class:`bench.loop.VirtualEventLoop`
is where the C core ``bench.loop._core`` was not built, and the class to subclass to change how
the loop schedules.
"""

from __future__ import annotations

import asyncio
import contextvars
import functools
import heapq
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any, TypeVarTuple

from .handles import _Soon, _Timer
from .reference import _NS, Deadlock, ReferenceVirtualEventLoop

__all__ = ["PyVirtualEventLoop"]

_set_result_unless_cancelled = getattr(asyncio.futures, "_set_result_unless_cancelled", None)
_copy_context = contextvars.copy_context
_heappush = heapq.heappush
_heappop = heapq.heappop
_Ts = TypeVarTuple("_Ts")

try:
    from asyncio.format_helpers import _format_callback_source
except ImportError:  # pragma: no cover - a future Python without it

    def _format_callback_source(func: object, args: Iterable[Any]) -> str:
        return repr(func)


class PyVirtualEventLoop(ReferenceVirtualEventLoop):
    """An asyncio event loop whose clock is virtual and jumps to the next timer (pure Python).

    :class:`VirtualEventLoop` is this loop with its hot path in C (``bench/loop/_core.c``) when that
    extension was built, and this very class when it was not (no C compiler at install time).

    Args:
        start: the virtual time, in seconds, at which the clock starts.

    Use it like any loop: ``asyncio.Runner(loop_factory=VirtualEventLoop)`` or :func:`run_virtual`.

    It behaves exactly like :class:`ReferenceVirtualEventLoop` (tests compare their event traces)
    and is several times faster:

    * ``_run_once`` runs iteration after iteration in one tight loop until the loop is asked to
      stop (``run_forever`` checks ``_stopping`` after each call, so it stops after the same
      iteration as the reference);
    * each iteration is asyncio's: the callbacks ready at its start run first, in FIFO order, then
      the timers that fell due, in (deadline, scheduling order); callbacks scheduled meanwhile wait
      for the next iteration;
    * ``call_soon`` returns a light handle and ``call_later``/``call_at`` a light timer handle that
      is its own heap entry (both built in C, with the public methods of asyncio's handles but not
      their private attributes); a timer that completes a sleep's future is run inline.

    In debug mode ``call_soon`` returns asyncio's own handles (with their source tracebacks).
    """

    if TYPE_CHECKING:
        _timers: list[_Timer]  # type: ignore[assignment]  # its heap holds _Timer lists, not the reference's tuples
        # instance attributes (set in __init__) in place of the methods
        create_future: Callable[[], asyncio.Future[Any]]
        time: Callable[[], float]
        get_debug: Callable[[], bool]

    def __init__(self, start: float = 0.0) -> None:
        super().__init__(start)
        # C-level callables instead of Python methods on hot paths; same results.
        self.create_future = functools.partial(asyncio.Future, loop=self)
        self.time = functools.partial(getattr, self, "_now_s")
        self.get_debug = functools.partial(getattr, self, "_debug")  # every Future() asks

    def call_soon(self, callback: Callable[[*_Ts], object], *args: *_Ts, context: contextvars.Context | None = None):
        """Like :meth:`asyncio.AbstractEventLoop.call_soon`."""
        if self._debug:
            return super().call_soon(callback, *args, context=context)
        if self._closed:
            raise RuntimeError("Event loop is closed")
        handle = _Soon((callback, args, _copy_context() if context is None else context))
        self._ready.append(handle)
        return handle

    def call_later(
        self,
        delay: float,
        callback: Callable[[*_Ts], object],
        *args: *_Ts,
        context: contextvars.Context | None = None,
    ):
        """Schedule ``callback`` after ``delay`` virtual seconds (exact integer-nanosecond arithmetic)."""
        if delay is None:
            raise TypeError("delay must not be None")
        if self._closed:
            raise RuntimeError("Event loop is closed")
        when_ns = round(delay * 1_000_000_000)
        if context is None and callback is not _set_result_unless_cancelled:
            context = _copy_context()  # a sleep's timer runs inline and reads no context
        now = self._now_ns
        timer = _Timer((now + when_ns if when_ns > 0 else now, next(self._seq), callback, args, context, self))
        _heappush(self._timers, timer)
        return timer

    def call_at(
        self,
        when: float,
        callback: Callable[[*_Ts], object],
        *args: *_Ts,
        context: contextvars.Context | None = None,
    ):
        """Schedule ``callback`` at virtual time ``when`` (seconds)."""
        if when is None:
            raise TypeError("when cannot be None")
        if self._closed:
            raise RuntimeError("Event loop is closed")
        timer = _Timer(
            (round(when * _NS), next(self._seq), callback, args, _copy_context() if context is None else context, self)
        )
        _heappush(self._timers, timer)
        return timer

    def _timer_handle_cancelled(self, handle: Any) -> None:
        pass  # our timers count themselves in _Timer.cancel

    def _drop_cancelled_timers(self) -> None:
        timers = self._timers
        if self._cancelled_timers > 64 and self._cancelled_timers * 2 > len(timers):
            kept = []
            for entry in timers:
                if entry[2] is None:
                    entry[5] = None
                else:
                    kept.append(entry)
            heapq.heapify(kept)
            self._timers = kept
            self._cancelled_timers = 0
            return
        while timers and timers[0][2] is None:
            _heappop(timers)[5] = None
            self._cancelled_timers -= 1

    def _run_once(self) -> None:
        """Run iterations until the loop is asked to stop (``run_forever`` then returns)."""
        ready = self._ready
        popleft = ready.popleft
        set_result = _set_result_unless_cancelled
        Soon = _Soon
        timers = self._timers
        now = self._now_ns
        due: list[_Timer] | tuple[_Timer, ...] | None  # the timers this iteration runs
        timer: _Timer | None
        while True:
            if ready:
                n = len(ready)
                due = self._pop_due(now) if timers and timers[0][0] <= now else None
            else:
                # Idle: drop cancelled timers, wait for executor jobs, move the clock to the next timer.
                n = 0
                if timers and (timers[0][2] is None or self._cancelled_timers > 64):
                    self._drop_cancelled_timers()
                    timers = self._timers
                if not self._stopping:
                    if self._external:
                        self._await_jobs()  # may set or cancel the timers of jobs' waits
                        n = len(ready)
                        if not n and self._timers and self._timers[0][2] is None:
                            self._drop_cancelled_timers()
                        timers = self._timers
                    if not n:
                        if not timers:
                            raise Deadlock(self._deadlock_message())
                        if timers[0][0] > now:
                            now = self._now_ns = timers[0][0]
                            self._now_s = now / _NS
                if timers and timers[0][0] <= now:
                    timer = _heappop(timers)
                    timer[5] = None  # no longer scheduled
                    if timer[2] is None:
                        self._cancelled_timers -= 1
                        timer = None
                    if timers and timers[0][0] <= now:
                        due = self._pop_due(now)
                        if timer is not None:
                            due.insert(0, timer)
                    elif timer is None:
                        due = None
                    else:
                        due = (timer,)
                else:
                    due = None
            try:
                while n:
                    n -= 1
                    handle = popleft()
                    if type(handle) is Soon:
                        callback = handle[0]
                        if callback is None:
                            continue
                        try:
                            handle[2].run(callback, *handle[1])
                        except (SystemExit, KeyboardInterrupt):
                            raise
                        except BaseException as exc:
                            self._callback_failed(handle, callback, handle[1], exc)
                    elif not handle._cancelled:  # one of asyncio's own handles
                        handle._run()
                if due is not None:
                    for k, timer in enumerate(due):
                        callback = timer[2]
                        if callback is None:
                            continue
                        try:
                            if callback is set_result:  # a sleep's timer: sets a future, reads no context
                                future, result = timer[3]
                                if not future.cancelled():
                                    future.set_result(result)
                            else:
                                timer[4].run(callback, *timer[3])
                        except (SystemExit, KeyboardInterrupt):
                            due = due[k + 1 :]
                            raise
                        except BaseException as exc:
                            try:
                                self._callback_failed(timer, callback, timer[3], exc)
                            except BaseException:  # the exception handler itself raised
                                due = due[k + 1 :]
                                raise
            except BaseException:
                # Leaving mid-iteration (SystemExit, KeyboardInterrupt): what this iteration had not
                # run yet stays first in line, in order, as in the reference loop.
                if due:
                    for k, timer in enumerate(due):
                        context = timer[4] if timer[4] is not None else _copy_context()  # a sleep's
                        ready.insert(n + k, Soon((timer[2], timer[3], context)))
                raise
            handle = callback = timer = due = None  # break reference cycles when a callback raised
            if self._stopping:
                return
            if timers is not self._timers:  # compacted meanwhile
                timers = self._timers

    def _pop_due(self, now: int) -> list[_Timer]:
        """Pop the timers due at ``now`` in (deadline, sequence) order; drop cancelled ones."""
        timers = self._timers
        due: list[_Timer] = []
        while timers and timers[0][0] <= now:
            timer = _heappop(timers)
            timer[5] = None  # no longer scheduled
            if timer[2] is None:
                self._cancelled_timers -= 1
            else:
                due.append(timer)
        return due

    def _callback_failed(self, handle: Any, callback: Any, args: Any, exc: BaseException) -> None:
        """Report a callback's exception as :meth:`asyncio.Handle._run` does."""
        self.call_exception_handler(
            {
                "message": f"Exception in callback {_format_callback_source(callback, args)}",
                "exception": exc,
                "handle": handle,
            }
        )
