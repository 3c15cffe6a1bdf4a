"""The asyncio engine: the real pusher/puller program (:mod:`bench.scenario`) on an event loop.

:func:`run_asyncio` is its one entry point (the signature every engine shares,
:mod:`bench.replication`): it records the scenario into a :class:`~bench.recorder.Recorder` on a
fresh :class:`~bench.loop.VirtualEventLoop` (virtual time), or on a real event loop with every delay
multiplied by ``scale`` (scaled or real time), and returns the :class:`~bench.replication.Replication`.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from bench.distributions import Stream
from bench.loop import PyVirtualEventLoop, VirtualEventLoop
from bench.recorder import BATCH, PyLog, Recorder, Sink
from bench.replication import Replication
from bench.scenario import Scenario, run_scenario

__all__ = ["run_asyncio"]


def run_asyncio(
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
    """Run one replication of ``scenario`` as real asyncio code and record it into ``sink``.

    Args:
        scenario: what to run.
        arrivals: inter-arrival times, one per item after the first.
        services: service times, one per item.
        sink: receives item batches (in item order) and depth batches (in event order).
        on_progress: called with the number of items in each batch sent.
        batch: items per batch.
        scale: ``None`` for virtual time; else real seconds per model second on a real loop.
        loop_factory: the event loop to run on (default: :class:`~bench.loop.VirtualEventLoop` in
            virtual time, asyncio's own loop otherwise).
        accelerated: use the C parts (the loop's core, the recorder's row log) where built; with
            False, the pure-Python loop and row log, as on a machine without a C compiler.
    """
    if loop_factory is None:
        if scale is not None:
            loop_factory = asyncio.new_event_loop
        else:
            loop_factory = VirtualEventLoop if accelerated else PyVirtualEventLoop
    recorder = Recorder(sink, batch, on_progress, log=None if accelerated else PyLog)
    with asyncio.Runner(loop_factory=loop_factory) as runner:
        t_end = runner.run(run_scenario(scenario, arrivals, services, recorder, scale))
    recorder.close(t_end)
    return Replication(
        n_put=recorder.n_put,
        n_got=recorder.n_got,
        n_done=recorder.n_done,
        t_end=t_end,
        t_last_put=recorder.t_last_put,
        busy=recorder.busy,
        capped=recorder.capped,
        lag_mean=recorder.lag_mean,
        lag_max=recorder.lag_max,
    )
