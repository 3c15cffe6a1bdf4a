"""The pusher/puller scenario: one pusher, N pullers, one ``asyncio.Queue``, run as real asyncio code.

This is the program the harness measures, written as a user would write it: the pusher puts item
``i`` and then sleeps its inter-arrival time; each puller takes an item, sleeps its service time and
marks it done. Instrumentation hooks report every put, get and completion to a
:class:`~bench.recorder.Recorder`. The same coroutine runs on a virtual clock (scale 1 on a
:class:`~bench.loop.VirtualEventLoop`) or on a real loop with every delay multiplied by ``scale``;
timestamps are always recorded in model seconds.

This is the built-in ``pool`` scenario when it uses no behaviour (:attr:`Scenario.plain`); the
pool with behaviours (priorities, patience, batches, retries, several pushers) and users' own
scenarios run through the plug-in point in :mod:`bench.scenarios`.
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from bench.behaviour import Behaviour, Elastic
from bench.distributions import Distribution, Stream
from bench.recorder import Recorder

__all__ = ["DEFAULT_PROGRAM", "Scenario", "run_scenario"]

#: The built-in scenario a grid runs unless it names another (see :mod:`bench.scenarios`).
DEFAULT_PROGRAM = "pool"


@dataclass(frozen=True)
class Scenario:
    """One configuration of the pusher/puller program.

    Attributes:
        workers: number of puller coroutines (>= 1).
        arrival: the pusher's inter-arrival time distribution.
        service: a puller's per-item time distribution.
        maxsize: queue capacity; 0 is unbounded, otherwise ``put`` blocks the pusher (backpressure).
        items: put this many items, then let the workers finish all of them.
        duration: stop the clock at this many model seconds; unfinished items stay censored.
        max_backlog: stop early (cleanly, keeping what was recorded) once the queue holds this many
            items; ``None`` for no cap. Guards memory in runaway overloaded cells.
        program: the scenario to run: a built-in name (``pool``) or a user's ``FILE.py:NAME`` or
            ``module:NAME`` (:mod:`bench.scenarios`).
        program_sha256: the sha256 of the user's file, checked when it is loaded (None: built-in).
        behaviour: the pool's behaviours (:class:`~bench.behaviour.Behaviour`); the default is the
            plain program.
        backlog0: items already queued at t = 0 (a backlog left by an outage): items ``0 ..
            backlog0 - 1``, put at 0 before the first arrival, their services drawn first, in item order.
        elastic: elastic workers (:class:`~bench.behaviour.Elastic`), or None for ``workers`` fixed
            workers; then ``workers`` is its most.
    """

    workers: int
    arrival: Distribution
    service: Distribution
    maxsize: int = 0
    items: int | None = None
    duration: float | None = None
    max_backlog: int | None = None
    program: str = DEFAULT_PROGRAM
    program_sha256: str | None = None
    behaviour: Behaviour = field(default_factory=Behaviour)
    backlog0: int = 0
    elastic: Elastic | None = None

    @property
    def plain(self) -> bool:
        """The built-in pool with no behaviour, one pusher and fixed workers: :func:`run_scenario` runs it."""
        return (self.program == DEFAULT_PROGRAM and self.behaviour.plain and not self.arrival.parts
                and self.elastic is None)  # fmt: skip

    def __post_init__(self) -> None:
        if self.workers < 1:
            raise ValueError(f"workers must be >= 1, got {self.workers}")
        if self.maxsize < 0:
            raise ValueError(f"maxsize must be >= 0, got {self.maxsize}")
        if (self.items is None) == (self.duration is None):
            raise ValueError("give exactly one of items or duration")
        if self.items is not None and self.items < 1:
            raise ValueError(f"items must be >= 1, got {self.items}")
        if self.duration is not None and not self.duration > 0:
            raise ValueError(f"duration must be > 0, got {self.duration}")
        if self.max_backlog is not None and self.max_backlog < 1:
            raise ValueError(f"max_backlog must be >= 1, got {self.max_backlog}")
        if self.backlog0 < 0 or (self.items is not None and self.backlog0 > self.items):
            raise ValueError(f"backlog0 must be in 0..items, got {self.backlog0}")


async def run_scenario(
    scenario: Scenario, arrivals: Stream, services: Stream, recorder: Recorder, scale: float | None = None
) -> float:
    """Run the scenario on the running loop and return the model time at which it ended.

    Args:
        scenario: what to run.
        arrivals: inter-arrival times, one per item after the first.
        services: service times, one per item (drawn per item, so any worker count sees the same work).
        recorder: receives every put, get and completion (and, on a real loop, how late timers fired).
        scale: ``None`` on a virtual clock; on a real loop, real seconds per model second. Then every
            sleep is timed: the model seconds by which it woke late go to :meth:`Recorder.late`, and
            a ``duration`` run ends when the main task actually wakes, not at the nominal duration.
    """
    loop = asyncio.get_running_loop()
    origin = loop.time()
    queue: asyncio.Queue = asyncio.Queue(scenario.maxsize)
    last = scenario.items - 1 if scenario.items is not None else -1
    real = scale is not None
    factor = scale if scale is not None else 1.0

    main = asyncio.current_task()
    assert main is not None  # a coroutine awaited on a running loop runs in a task
    cap = scenario.max_backlog or float("inf")
    capped: list[float] = []

    def now() -> float:
        return (loop.time() - origin) / factor

    if origin == 0 and not real:
        now = loop.time  # noqa: F811 - the same value, one call fewer per event

    sleep: Callable[[float], Awaitable[None]] = asyncio.sleep
    if real:
        late = recorder.late

        async def sleep(delay: float) -> None:  # noqa: F811 - a timed sleep on a real loop
            due = loop.time() + delay
            await asyncio.sleep(delay)
            late((loop.time() - due) / factor)

    async def first_arrival() -> bool:
        """Wait for the first arrival (at 0 for a distribution, the process's own time otherwise);
        False for a process with no arrival at all."""
        lead = arrivals.lead
        if lead == math.inf:
            return False
        if lead:
            await sleep(lead * factor)
        return True

    async def pusher() -> None:
        item = 0
        backlog = scenario.backlog0  # a backlog left by an outage: items 0 .. K-1 queued at t = 0
        if not backlog and not await first_arrival():
            return
        while True:
            recorder.arrive(item, now())
            await queue.put((item, services.next()))
            depth = queue.qsize()
            recorder.put(item, now(), depth)
            if depth >= cap:
                capped.append(now())
                main.cancel()
                return
            if item == last:
                return
            item += 1
            if item <= backlog:  # still queueing the backlog, or the first arrival after it
                if item < backlog:
                    continue
                if not await first_arrival():
                    return
                continue
            try:
                gap = arrivals.next()
            except StopIteration:  # the arrival process ran out (a trace shorter than the run)
                return
            await sleep(gap * factor)

    async def puller(worker: int) -> None:
        while True:
            item, service = await queue.get()
            recorder.get(item, worker, now(), queue.qsize())
            await sleep(service * factor)
            recorder.done(item, now())
            queue.task_done()

    def pusher_failed(task: asyncio.Task) -> bool:
        """The pusher raised an error (e.g. a draw beyond the clock's range), not an interrupt."""
        return task.done() and not task.cancelled() and isinstance(task.exception(), Exception)

    def pusher_ended(task: asyncio.Task) -> None:
        if pusher_failed(task):
            main.cancel()  # stop now and raise the pusher's error

    pullers = [asyncio.create_task(puller(w), name=f"puller-{w}") for w in range(scenario.workers)]
    push = asyncio.create_task(pusher(), name="pusher")
    push.add_done_callback(pusher_ended)
    try:
        if scenario.duration is None:
            await push
            await queue.join()
        else:
            await sleep(scenario.duration * factor)
    except asyncio.CancelledError:
        if pusher_failed(push):
            main.uncancel()
            error = push.exception()
            assert error is not None  # pusher_failed checked it
            raise error from None
        if not capped:
            raise
        main.uncancel()
        assert scenario.max_backlog is not None  # only a finite cap (max_backlog) stops the pusher
        recorder.cap(capped[0], scenario.max_backlog)
        return capped[0]
    finally:
        for task in (push, *pullers):
            task.cancel()
        await asyncio.gather(push, *pullers, return_exceptions=True)
    if scenario.duration is not None and not real:
        return scenario.duration
    return now()
