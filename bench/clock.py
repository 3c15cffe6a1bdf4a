"""A virtual-time asyncio event loop: the clock jumps to the next timer instead of waiting for it.

:class:`VirtualEventLoop` is a real asyncio event loop (a ``SelectorEventLoop``) with three changes:

* ``time()`` is virtual: it starts at 0 and only moves when nothing is ready to run, straight to the
  earliest timer. It is kept as an integer count of nanoseconds, so a 1 ms sleep is 1 ms at
  t = 0 and at t = 1e9 s alike.
* Timers with equal deadlines run in the order they were scheduled (a sequence number breaks the
  tie), so a program gives the same event trace on every run and under any ``PYTHONHASHSEED``.
* When every task waits and no timer or executor job is pending, it raises :class:`Deadlock`
  at once, naming the blocked tasks.

Work sent to ``run_in_executor`` (and so ``asyncio.to_thread``) takes zero virtual time: the loop
waits for it in real time before it advances the clock.

Within one iteration the loop keeps asyncio's own order: callbacks already ready run first (FIFO),
then timers that fell due, in deadline order; callbacks scheduled while an iteration runs wait for
the next one. This module knows nothing else of the project.
"""

from __future__ import annotations

import asyncio
import contextvars
import functools
import heapq
import itertools
from typing import Any, Awaitable, Callable, TypeVar

__all__ = [
    "Deadlock",
    "VirtualEventLoop",
    "PyVirtualEventLoop",
    "ReferenceVirtualEventLoop",
    "ACCELERATED",
    "parse_clock",
    "run_virtual",
    "loop_factory",
    "LOOPS",
    "CLOCK_RANGE",
    "HORIZON",
    "RESOLUTION",
]

_T = TypeVar("_T")
_NS = 1_000_000_000


class Deadlock(RuntimeError):
    """Every task is waiting and nothing (no ready callback, timer or executor job) can wake one."""


def _ns(seconds: float) -> int:
    return round(seconds * _NS)


class ReferenceVirtualEventLoop(asyncio.SelectorEventLoop):
    """The plain virtual-time loop: one asyncio iteration per ``_run_once``, stock handles.

    Args:
        start: the virtual time, in seconds, at which the clock starts.

    It is the specification :class:`VirtualEventLoop` is tested against (same event traces) and
    the loop the perf suite's ``asyncio-ref`` benchmark runs on.
    """

    def __init__(self, start: float = 0.0) -> None:
        super().__init__()
        self._now_ns = _ns(start)
        self._now_s = self._now_ns / _NS  # time() in seconds, kept with _now_ns
        self._timers: list[tuple[int, int, asyncio.TimerHandle]] = []
        self._seq = itertools.count()
        self._cancelled_timers = 0
        self._external = 0  # executor jobs in flight; the clock waits for them

    # -- the clock -------------------------------------------------------------------------------

    def time(self) -> float:
        """Return the virtual time in seconds."""
        return self._now_ns / _NS

    def time_ns(self) -> int:
        """Return the virtual time in integer nanoseconds (exact at any magnitude)."""
        return self._now_ns

    # -- scheduling ------------------------------------------------------------------------------

    def call_later(self, delay: float, callback: Callable[..., Any], *args: Any, context: Any = None):
        """Schedule ``callback`` after ``delay`` virtual seconds (exact integer-nanosecond arithmetic)."""
        if delay is None:
            raise TypeError("delay must not be None")
        return self._schedule(self._now_ns + max(_ns(delay), 0), callback, args, context)

    def call_at(self, when: float, callback: Callable[..., Any], *args: Any, context: Any = None):
        """Schedule ``callback`` at virtual time ``when`` (seconds)."""
        if when is None:
            raise TypeError("when cannot be None")
        return self._schedule(_ns(when), callback, args, context)

    def _schedule(self, when_ns: int, callback, args, context) -> asyncio.TimerHandle:
        self._check_closed()
        if self._debug:
            self._check_thread()
            self._check_callback(callback, "call_at")
        timer = asyncio.TimerHandle(when_ns / _NS, callback, args, self, context)
        if timer._source_traceback:
            del timer._source_traceback[-1]
        heapq.heappush(self._timers, (when_ns, next(self._seq), timer))
        timer._scheduled = True
        return timer

    def _timer_handle_cancelled(self, handle: asyncio.TimerHandle) -> None:
        if handle._scheduled:
            self._cancelled_timers += 1

    # -- executor work takes zero virtual time ---------------------------------------------------

    def run_in_executor(self, executor, func, *args):
        """Like :meth:`asyncio.AbstractEventLoop.run_in_executor`; the clock waits for the job."""
        future = super().run_in_executor(executor, func, *args)
        self._external += 1
        future.add_done_callback(self._external_done)
        return future

    def _external_done(self, _future: Any) -> None:
        self._external -= 1

    async def shutdown_default_executor(self, *args: Any, **kwargs: Any) -> None:
        """Shut the default executor down, waiting for it in real time."""
        self._external += 1
        try:
            await super().shutdown_default_executor(*args, **kwargs)
        finally:
            self._external -= 1

    # -- one iteration ---------------------------------------------------------------------------

    def _run_once(self) -> None:
        ready = self._ready
        timers = self._timers
        self._drop_cancelled_timers()
        if self._external and not ready:
            # Wait in real time for executor jobs; their completion arrives via the self-pipe.
            self._process_events(self._selector.select(None))
        if not ready and not self._stopping:
            if timers:
                if timers[0][0] > self._now_ns:
                    self._now_ns = timers[0][0]
                    self._now_s = self._now_ns / _NS
            elif not self._external:
                raise Deadlock(self._deadlock_message())
        now = self._now_ns
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
        return (
            f"deadlock at virtual t={self.time():.9g}s: every task waits and no timer or executor job "
            f"is pending; blocked: {names or 'no task (a bare future is awaited)'}"
        )


# -- the fast loop -------------------------------------------------------------------------------

_set_result_unless_cancelled = getattr(asyncio.futures, "_set_result_unless_cancelled", None)
_copy_context = contextvars.copy_context
_heappush = heapq.heappush
_heappop = heapq.heappop

try:
    from asyncio.format_helpers import _format_callback_source
except ImportError:  # pragma: no cover - a future Python without it

    def _format_callback_source(callback: Any, args: Any) -> str:
        return repr(callback)


class _ListHandle(list):
    """A handle of :class:`PyVirtualEventLoop` kept as a list (built and read in C), compared by
    identity like asyncio's handles (lists would compare by value)."""

    __slots__ = ()
    _source_traceback = None  # what asyncio's own code reads of a non-debug handle
    __eq__ = object.__eq__
    __ne__ = object.__ne__
    __hash__ = object.__hash__


class _Soon(_ListHandle):
    """A ready callback of :class:`PyVirtualEventLoop`: ``[callback, args, context]``.

    It has the public interface of :class:`asyncio.Handle` (``cancel``, ``cancelled``,
    ``get_context``); cancelling clears ``callback``, as ``Handle.cancel`` does.
    """

    __slots__ = ()

    def cancel(self) -> None:
        """Cancel the callback; it will not run."""
        self[0] = self[1] = None

    def cancelled(self) -> bool:
        """Return True if the callback was cancelled."""
        return self[0] is None

    def get_context(self) -> contextvars.Context:
        """Return the context the callback runs in."""
        return self[2]

    def __repr__(self) -> str:
        return f"<Handle {'cancelled' if self[0] is None else self[0]!r}>"


class _Timer(_ListHandle):
    """A timer of :class:`PyVirtualEventLoop` and its heap entry at once:
    ``[when_ns, sequence, callback, args, context, loop while scheduled]``.

    Lists compare item by item in C, so the heap orders timers by (deadline, scheduling order)
    without Python-level comparisons. It has the public interface of :class:`asyncio.TimerHandle`
    (``when``, ``cancel``, ``cancelled``, ``get_context``).
    """

    __slots__ = ()

    def when(self) -> float:
        """Return the scheduled time in (virtual) seconds."""
        return self[0] / _NS

    def cancel(self) -> None:
        """Cancel the timer; a scheduled one is counted so the heap can be compacted."""
        if self[2] is not None:
            loop = self[5]
            if loop is not None:
                loop._cancelled_timers += 1
            self[2] = self[3] = None

    def cancelled(self) -> bool:
        """Return True if the timer was cancelled."""
        return self[2] is None

    def get_context(self) -> contextvars.Context:
        """Return the context the callback runs in."""
        return self[4]

    def __repr__(self) -> str:
        return f"<TimerHandle when={self[0] / _NS!r} {'cancelled' if self[2] is None else self[2]!r}>"


class PyVirtualEventLoop(ReferenceVirtualEventLoop):
    """An asyncio event loop whose clock is virtual and jumps to the next timer (pure Python).

    :class:`VirtualEventLoop` is this loop with its hot path in C (``bench/_speedups.c``) when that
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

    def __init__(self, start: float = 0.0) -> None:
        super().__init__(start)
        # C-level callables instead of Python methods on hot paths; same results.
        self.create_future = functools.partial(asyncio.Future, loop=self)
        self.time = functools.partial(getattr, self, "_now_s")
        self.get_debug = functools.partial(getattr, self, "_debug")  # every Future() asks

    def call_soon(self, callback: Callable[..., Any], *args: Any, context: Any = None):
        """Like :meth:`asyncio.AbstractEventLoop.call_soon`."""
        if self._debug:
            return super().call_soon(callback, *args, context=context)
        if self._closed:
            raise RuntimeError("Event loop is closed")
        handle = _Soon((callback, args, _copy_context() if context is None else context))
        self._ready.append(handle)
        return handle

    def call_later(self, delay: float, callback: Callable[..., Any], *args: Any, context: Any = None):
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

    def call_at(self, when: float, callback: Callable[..., Any], *args: Any, context: Any = None):
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
                if self._external:
                    self._process_events(self._selector.select(None))
                    n = len(ready)
                if not n and not self._stopping:
                    if timers:
                        if timers[0][0] > now:
                            now = self._now_ns = timers[0][0]
                            self._now_s = now / _NS
                    elif not self._external:
                        raise Deadlock(self._deadlock_message())
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

    def _pop_due(self, now: int) -> list:
        """Pop the timers due at ``now`` in (deadline, sequence) order; drop cancelled ones."""
        timers = self._timers
        due = []
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


try:
    from bench import _speedups
except ImportError:  # built without a C compiler: the pure-Python loop does the same, slower
    _speedups = None

#: True when :class:`VirtualEventLoop` runs its hot path in C.
ACCELERATED = _speedups is not None

if _speedups is not None:

    class VirtualEventLoop(PyVirtualEventLoop):
        """An asyncio event loop whose clock is virtual and jumps to the next timer.

        Args:
            start: the virtual time, in seconds, at which the clock starts.

        Use it like any loop: ``asyncio.Runner(loop_factory=VirtualEventLoop)`` or
        :func:`run_virtual`. It is :class:`PyVirtualEventLoop` with the clock, the timer heap,
        ``call_soon``/``call_later``/``call_at`` and the iterations in C (``bench/_speedups.c``),
        installed as instance attributes so that asyncio's own C ``Task`` and ``Future`` call them
        without a Python frame. Event traces are the same as the reference loop's (tested).

        Raises:
            TypeError: (at class creation) a subclass overrides one of those methods: the instance
                attributes would silently shadow it; subclass :class:`PyVirtualEventLoop` instead.
        """

        _IN_C = ("call_soon", "call_later", "call_at", "time", "time_ns", "create_future", "_run_once")

        def __init_subclass__(cls, **kwargs: Any) -> None:
            super().__init_subclass__(**kwargs)
            overridden = [name for name in cls._IN_C if getattr(cls, name) is not getattr(VirtualEventLoop, name)]
            if overridden:
                raise TypeError(
                    f"{cls.__name__} overrides {', '.join(overridden)}, which VirtualEventLoop runs in C; "
                    "subclass bench.clock.PyVirtualEventLoop to change them"
                )

        def __init__(self, start: float = 0.0) -> None:
            asyncio.SelectorEventLoop.__init__(self)
            self._external = 0  # executor jobs in flight; the clock waits for them
            self._core = core = _speedups.Core(self._ready, _ns(start), _set_result_unless_cancelled, _ns)
            self.call_later = core.call_later
            self.call_at = core.call_at
            self.time = core.time
            self.time_ns = core.time_ns
            self.create_future = functools.partial(asyncio.Future, loop=self)
            self.get_debug = functools.partial(getattr, self, "_debug")
            self.set_debug(self._debug)

        @property
        def _now_ns(self) -> int:
            return self._core.now_ns

        @property
        def _timers(self) -> list:
            return self._core.timers()

        @property
        def _cancelled_timers(self) -> int:
            return self._core.cancelled

        def set_debug(self, enabled: bool) -> None:
            """Like asyncio's; in debug mode ``call_soon`` returns asyncio's handles (with tracebacks)."""
            super().set_debug(enabled)
            core = self.__dict__.get("_core")
            if core is not None:
                if enabled:
                    self.__dict__.pop("call_soon", None)
                else:
                    self.call_soon = core.call_soon

        def close(self) -> None:
            """Close the loop and drop its timers."""
            super().close()
            if self._closed:
                self._core.close()

        def _drop_cancelled_timers(self) -> None:
            self._core.drop_cancelled()

        def _run_once(self) -> None:
            """Run iterations (in C) until the loop is asked to stop."""
            self._core.run(self)

        def _wait_external(self) -> None:
            """Wait in real time for executor jobs; their completion arrives via the self-pipe."""
            self._process_events(self._selector.select(None))

        def _raise_deadlock(self) -> None:
            raise Deadlock(self._deadlock_message())

else:
    VirtualEventLoop = PyVirtualEventLoop  # type: ignore[misc]


def run_virtual(main: Awaitable[_T], *, debug: bool | None = None) -> _T:
    """Run a coroutine on a fresh :class:`VirtualEventLoop` and return its result (like ``asyncio.run``).

    Raises:
        Deadlock: every task waits and nothing can wake one.
    """
    with asyncio.Runner(debug=debug, loop_factory=VirtualEventLoop) as runner:
        return runner.run(main)


LOOPS = ("asyncio", "uvloop")


def loop_factory(name: str) -> Callable[[], asyncio.AbstractEventLoop]:
    """Return a factory of real event loops for scaled and real clocks: ``asyncio`` or ``uvloop``.

    Raises:
        ValueError: an unknown name, or ``uvloop`` when it is not installed (extra ``uvloop``).
    """
    if name == "asyncio":
        return asyncio.new_event_loop
    if name == "uvloop":
        try:
            import uvloop
        except ImportError:
            raise ValueError("--loop uvloop needs uvloop: pip install 'qbench[uvloop]'") from None
        return uvloop.new_event_loop
    raise ValueError(f"bad loop {name!r}: use one of {', '.join(LOOPS)}")


def parse_clock(spec: str) -> float | None:
    """Parse a clock spec: ``virtual`` gives ``None``; ``scaled:F`` gives F; ``real`` gives 1.0.

    Under ``scaled:F`` one model second lasts F real seconds on a real event loop.

    Raises:
        ValueError: anything else, or F not a finite number > 0.
    """
    text = str(spec).strip().lower()
    if text == "virtual":
        return None
    if text == "real":
        return 1.0
    kind, _, factor = text.partition(":")
    if kind == "scaled":
        try:
            scale = float(factor)
        except ValueError:
            scale = float("nan")
        if scale > 0 and scale != float("inf"):
            return scale
        raise ValueError(f"bad clock {spec!r}: scaled:F needs a finite factor F > 0, e.g. scaled:0.01")
    raise ValueError(f"bad clock {spec!r}: use virtual, real or scaled:F (e.g. scaled:0.01)")


#: The virtual clock's range in seconds: it counts int64 nanoseconds (about 292 years). Delays and
#: model times beyond it cannot be represented, so grids that could reach it are refused.
CLOCK_RANGE = (2**63 - 1) / 1e9
#: The longest model time, and the longest single delay, a run may use: half the clock's range
#: (about 146 years), so that a time plus a delay never leaves the range.
HORIZON = CLOCK_RANGE / 2
#: The virtual clock's resolution in seconds: every delay is rounded to whole nanoseconds.
RESOLUTION = 1e-9
