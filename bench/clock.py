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
import heapq
import itertools
from typing import Any, Awaitable, Callable, TypeVar

__all__ = ["Deadlock", "VirtualEventLoop", "parse_clock", "run_virtual", "loop_factory", "LOOPS"]

_T = TypeVar("_T")
_NS = 1_000_000_000


class Deadlock(RuntimeError):
    """Every task is waiting and nothing (no ready callback, timer or executor job) can wake one."""


def _ns(seconds: float) -> int:
    return round(seconds * _NS)


class VirtualEventLoop(asyncio.SelectorEventLoop):
    """An asyncio event loop whose clock is virtual and jumps to the next timer.

    Args:
        start: the virtual time, in seconds, at which the clock starts.

    Use it like any loop: ``asyncio.Runner(loop_factory=VirtualEventLoop)`` or :func:`run_virtual`.
    """

    def __init__(self, start: float = 0.0) -> None:
        super().__init__()
        self._now_ns = _ns(start)
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
