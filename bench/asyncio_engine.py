"""The asyncio engine: a scenario's real asyncio code on an event loop.

:func:`run_asyncio` is its one entry point (the signature every engine shares,
:mod:`bench.replication`): it runs the scenario on a fresh :class:`~bench.loop.VirtualEventLoop`
(virtual time), or on a real event loop with every delay multiplied by ``scale`` (scaled or real
time), and returns the :class:`~bench.replication.Replication`. The plain pusher/puller program
(:attr:`bench.scenario.Scenario.plain`) records into a :class:`~bench.recorder.Recorder` through
:func:`bench.scenario.run_scenario`, its fast path; every other scenario (the pool with behaviours,
a user's own) runs through the plug-in point, :func:`bench.scenarios.supervisor.run_program`.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from bench.distributions import Stream
from bench.loop import PyVirtualEventLoop, VirtualEventLoop
from bench.recorder import BATCH, PyLog, Recorder, Sink
from bench.replication import Replication
from bench.scenario import Scenario, run_scenario
from bench.scenarios.supervisor import run_program

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
    if not scenario.plain:
        full, t_end = run_program(scenario, arrivals, services, sink, on_progress=on_progress, batch=batch,
                                  scale=scale, loop_factory=loop_factory)  # fmt: skip
        return Replication(
            n_put=full.n_put, n_got=full.n_got, n_done=full.n_done, t_end=t_end, t_last_put=full.t_last_put,
            busy=full.busy, capped=full.capped, lag_mean=full.lag_mean, lag_max=full.lag_max,
            n_served=full.n_served, n_abandoned=full.n_abandoned, n_gave_up=full.n_gave_up,
            n_attempts=full.n_attempts, arrivals_end=full.arrivals_end, worker_seconds=full.worker_seconds,
            workers_peak=full.workers_peak,
        )  # fmt: skip
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
        arrivals_end=recorder.t_last_put if arrivals.exhausted and recorder.capped is None else None,
    )
