"""The virtual-time loop with its hot path in C: :class:`VirtualEventLoop` on ``bench.loop._core``.

Importing this module fails with ImportError when the optional extension ``bench.loop._core`` was
not built (no C compiler at install time); :mod:`bench.loop` then uses
:class:`~bench.loop.pyloop.PyVirtualEventLoop` in its place.
"""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from ._core import Core
from .pyloop import PyVirtualEventLoop, _set_result_unless_cancelled
from .reference import Deadlock, _ns

__all__ = ["VirtualEventLoop"]


class VirtualEventLoop(PyVirtualEventLoop):
    """An asyncio event loop whose clock is virtual and jumps to the next timer.

    Args:
        start: the virtual time, in seconds, at which the clock starts.

    Use it like any loop: ``asyncio.Runner(loop_factory=VirtualEventLoop)`` or
    :func:`run_virtual`. It is :class:`PyVirtualEventLoop` with the clock, the timer heap,
    ``call_soon``/``call_later``/``call_at`` and the iterations in C (``bench/loop/_core.c``),
    installed as instance attributes so that asyncio's own C ``Task`` and ``Future`` call them
    without a Python frame. Event traces are the same as the reference loop's (tested).

    Raises:
        TypeError: (at class creation) a subclass overrides one of those methods: the instance
            attributes would silently shadow it; subclass :class:`PyVirtualEventLoop` instead.
    """

    _IN_C = ("call_soon", "call_later", "call_at", "time", "time_ns", "create_future", "_run_once")

    if TYPE_CHECKING:
        time_ns: Callable[[], int]  # an instance attribute (set in __init__) in place of the method

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        overridden = [name for name in cls._IN_C if getattr(cls, name) is not getattr(VirtualEventLoop, name)]
        if overridden:
            raise TypeError(
                f"{cls.__name__} overrides {', '.join(overridden)}, which VirtualEventLoop runs in C; "
                "subclass bench.loop.PyVirtualEventLoop to change them"
            )

    def __init__(self, start: float = 0.0) -> None:
        asyncio.SelectorEventLoop.__init__(self)
        self._init_jobs()
        self._core = core = Core(self._ready, _ns(start), _set_result_unless_cancelled, _ns)
        # The core's scheduling functions shadow the methods on purpose (mypy's method-assign
        # silenced: they take the same arguments, which a Callable type cannot spell).
        self.call_later = core.call_later  # type: ignore[method-assign]
        self.call_at = core.call_at  # type: ignore[method-assign]
        self.time = core.time
        self.time_ns = core.time_ns
        self.create_future = functools.partial(asyncio.Future, loop=self)
        self.get_debug = functools.partial(getattr, self, "_debug")
        self.set_debug(self._debug)

    # Read-only views of the core's state (mypy's override silenced): this loop never runs the Python
    # code that assigns them (the reference __init__, _run_once, _drop_cancelled_timers, _pop_due).
    @property
    def _now_ns(self) -> int:  # type: ignore[override]
        return self._core.now_ns

    @property
    def _timers(self) -> list:  # type: ignore[override]
        return self._core.timers()

    @property
    def _cancelled_timers(self) -> int:  # type: ignore[override]
        return self._core.cancelled

    def set_debug(self, enabled: bool) -> None:
        """Like asyncio's; in debug mode ``call_soon`` returns asyncio's handles (with tracebacks)."""
        super().set_debug(enabled)
        core = self.__dict__.get("_core")
        if core is not None:
            if enabled:
                self.__dict__.pop("call_soon", None)
            else:
                self.call_soon = core.call_soon  # type: ignore[method-assign]  # as in __init__

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

    def _has_timer(self) -> bool:
        """Whether a timer that was not cancelled is pending (drops cancelled ones on top)."""
        self._core.drop_cancelled()
        return self._core.pending > 0

    def _raise_deadlock(self) -> None:
        raise Deadlock(self._deadlock_message())
