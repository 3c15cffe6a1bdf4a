"""One replication: what every engine returns, and the engines by name.

An engine runs one replication of a :class:`~bench.scenario.Scenario` from its arrival and service
streams, sends item and depth batches to a sink (:class:`~bench.recorder.Sink`) and returns a
:class:`Replication`. Every engine has one entry point with the same signature::

    run(scenario, arrivals, services, sink, *, on_progress=None, batch=BATCH, scale=None,
        loop_factory=None, accelerated=True) -> Replication

``scale`` and ``loop_factory`` choose a real event loop (scaled or real time) where the engine has
one; ``accelerated=False`` runs its pure-Python twins instead of its C parts. :func:`engine` gives
an entry point by name (imported on first use, so choosing one engine costs nothing of the other).
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass

__all__ = ["ENGINES", "Replication", "engine"]

#: Engine name -> "module:function" of its entry point.
_ENTRY_POINTS = {
    "asyncio": "bench.asyncio_engine:run_asyncio",
    "recurrence": "bench.recurrence:run_recurrence",
}
#: The engines a grid may name.
ENGINES = tuple(_ENTRY_POINTS)


@dataclass
class Replication:
    """What one replication did (the same fields from every engine).

    Attributes:
        n_put: items put. n_got: items taken by a worker. n_done: items finished.
        t_end: the model time at which it ended. t_last_put: the time of the last put.
        busy: worker-seconds of service, partial services included.
        capped: ``(time, depth)`` when the queue reached ``max_backlog`` and it stopped early.
        lag_mean: model seconds by which timers woke late on a real loop, on average (0 in virtual time).
        lag_max: the largest such lateness.
        n_served: items served (None: every finished item, ``n_done``, as in the plain program).
        n_abandoned: items that gave up waiting. n_gave_up: items whose last attempt failed.
        n_attempts: services started, retries included (None: one per item taken, ``n_got``).
        arrivals_end: when the arrival process ran out before the run's end (a trace shorter than the
            run): the time of its last put; None when it did not.
        worker_seconds: worker-seconds provisioned over [0, t_end] (elastic workers: started ones
            included); None for fixed workers (``workers * t_end``).
        workers_peak: the most workers provisioned at once (None for fixed workers).
    """

    n_put: int = 0
    n_got: int = 0
    n_done: int = 0
    t_end: float = 0.0
    t_last_put: float = 0.0
    busy: float = 0.0
    capped: tuple[float, int] | None = None
    lag_mean: float = 0.0
    lag_max: float = 0.0
    n_served: int | None = None
    n_abandoned: int = 0
    n_gave_up: int = 0
    n_attempts: int | None = None
    arrivals_end: float | None = None
    worker_seconds: float | None = None
    workers_peak: int | None = None


def engine(name: str) -> Callable[..., Replication]:
    """The entry point of the engine called ``name``.

    Raises:
        KeyError: no engine has that name (grids validate names against :data:`ENGINES`).
    """
    module, _, function = _ENTRY_POINTS[name].partition(":")
    return getattr(importlib.import_module(module), function)
