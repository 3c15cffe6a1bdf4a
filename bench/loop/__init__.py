"""A virtual-time asyncio event loop: the clock jumps to the next timer instead of waiting for it.

:class:`VirtualEventLoop` is a real asyncio event loop (a ``SelectorEventLoop``) with three changes:

* ``time()`` is virtual: it starts at 0 and only moves when nothing is ready to run, straight to the
  earliest timer. It is kept as an integer count of nanoseconds, so a 1 ms sleep is 1 ms at
  t = 0 and at t = 1e9 s alike.
* Timers with equal deadlines run in the order they were scheduled (a sequence number breaks the
  tie), so a program gives the same event trace on every run and under any ``PYTHONHASHSEED``.
* When every task waits, no timer is pending and no executor job can wake one, it raises
  :class:`Deadlock` at once, naming the blocked tasks (and the jobs).

Work sent to ``run_in_executor`` (and so ``asyncio.to_thread``) takes zero virtual time while it
runs: the loop waits for a busy job in real time and advances the clock only when every job in
flight waits on the loop — blocked in a ``threading`` wait (``Future.result()``, ``Event.wait()``,
...) after handing work to the loop (``run_coroutine_threadsafe``, ``call_soon_threadsafe``), or
with no thread-pool worker running. :mod:`.jobs` states the rule in full; every loop of the package
follows it.

Within one iteration the loop keeps asyncio's own order: callbacks already ready run first (FIFO),
then timers that fell due, in deadline order; callbacks scheduled while an iteration runs wait for
the next one.

The package knows nothing else of the project (it imports only the standard library and its own
modules):

* :mod:`.reference`: :class:`ReferenceVirtualEventLoop`, the plain loop that is the specification,
  and :class:`Deadlock`;
* :mod:`.jobs`: executor jobs, and the rule by which the clock advances while they run;
* :mod:`.handles`: the light handles of the fast loops;
* :mod:`.pyloop`: :class:`PyVirtualEventLoop`, the fast loop in pure Python;
* :mod:`.cloop`: the same loop with its hot path in the optional C extension ``bench.loop._core``.

:class:`VirtualEventLoop` is the C-backed loop when ``bench.loop._core`` was built and
:class:`PyVirtualEventLoop` otherwise (:data:`ACCELERATED` says which); the choice is made at the
bottom of this module, as asyncio picks its C ``_asyncio``.
"""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from typing import Any, TypeVar

from .pyloop import PyVirtualEventLoop
from .reference import CLOCK_RANGE, RESOLUTION, Deadlock, ReferenceVirtualEventLoop

__all__ = [
    "Deadlock",
    "VirtualEventLoop",
    "PyVirtualEventLoop",
    "ReferenceVirtualEventLoop",
    "ACCELERATED",
    "CLOCK_RANGE",
    "RESOLUTION",
    "run_virtual",
]

_T = TypeVar("_T")

#: The virtual loop to use: the C-backed loop when ``bench.loop._core`` is built, else the Python one.
VirtualEventLoop = PyVirtualEventLoop
#: True when :class:`VirtualEventLoop` runs its hot path in C (``bench.loop._core`` was built).
ACCELERATED = False


def run_virtual(main: Coroutine[Any, Any, _T], *, debug: bool | None = None) -> _T:
    """Run a coroutine on a fresh :class:`VirtualEventLoop` and return its result (like ``asyncio.run``).

    Raises:
        Deadlock: every task waits and nothing can wake one.
    """
    with asyncio.Runner(debug=debug, loop_factory=VirtualEventLoop) as runner:
        return runner.run(main)


# -- the accelerator: the C core replaces the pure-Python loop when it was built -------------------

try:
    from . import _core  # noqa: F401  (only whether it imports matters here; .cloop uses it)
except ImportError:  # built without a C compiler: PyVirtualEventLoop does the same, about half as fast
    pass
else:
    from .cloop import VirtualEventLoop

    ACCELERATED = True
