"""The contract between the harness and a scenario: the :class:`ScenarioContext` it is given.

A scenario is ``async def NAME(ctx: ScenarioContext) -> None``. It runs one replication on the
running event loop (virtual, or real with every delay scaled), and must:

* create its queue (``ctx.queue()`` gives one of the grid's discipline and ``maxsize``) and tasks;
* number items 0, 1, 2, ... in the order they arrive, and report each through the recorder hooks
  (``ctx.recorder``): ``arrive(item, t)`` when a pusher starts putting it, ``put(item, t, depth)``
  when it enters the queue, ``get(item, worker, t, depth)`` when a worker takes it, ``done(item,
  t)`` when it is served; and, for richer queues, ``tag(item, klass, pusher)``, ``requeue(item, t,
  depth)`` (a retry goes back on the queue), ``fail(item, t, retry)`` (an attempt failed) and
  ``abandon(item, t, depth)`` (it gave up waiting), ``exhausted(t)`` (the arrival process ran out)
  and ``workers(t, active, provisioned)`` (elastic workers: the count from t on). ``t`` is
  ``ctx.now()``, model seconds;
  ``depth`` is the number of items waiting in the queue right after the event;
* in an ``items`` run (``ctx.items`` set), put exactly that many items (fewer only when the
  arrival process ran out, reported by ``exhausted``), see every one of them leave (served,
  abandoned or given up) and return;
* in a ``duration`` run (``ctx.duration`` set), simply keep going: the harness ends the
  replication at the first event at or after the duration (it records nothing from then on) and
  cancels every task;
* draw its randomness from the streams given here (``ctx.arrivals``, ``ctx.services``,
  ``ctx.stream(name, spec)``, ``ctx.rng(name)``), never from a global generator, so that a seed fixes
  the run and cells that differ only in workers see the same numbers (common random numbers);
* sleep with ``ctx.sleep(seconds)`` (model seconds: scaled on a real clock, its lateness measured),
  or ``asyncio.sleep(seconds * ctx.factor)``.

The harness ends a replication that breaks this contract, raises, deadlocks or never ends, and
fails its cell with one line saying which (:mod:`bench.scenarios.supervisor`); the other cells run.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

import numpy as np

from bench.behaviour import Behaviour, Elastic
from bench.distributions import Distribution, SpecError, Stream, parse
from bench.errors import InputError
from bench.full_recorder import FullRecorder
from bench.scenario import Scenario

__all__ = ["ScenarioContext"]

_UNIT = parse("uniform:0:1")


class ScenarioContext:
    """What a scenario coroutine is given (see the module docstring for the contract).

    Attributes:
        scenario: the whole configuration (:class:`~bench.scenario.Scenario`).
        workers: the number of workers of the cell.
        maxsize: the queue's capacity (0: unbounded).
        items: put this many items, finish them and return; or None in a duration run.
        duration: the model seconds a duration run lasts (the harness stops it); or None.
        behaviour: discipline, classes, patience, batch, linger, setup, failure, attempts, backoff.
        arrival: the cell's inter-arrival distribution (``parts``: one per pusher when merged).
        service: the cell's service-time distribution.
        backlog0: items already queued at t = 0 (put them first, at 0, drawing their services first).
        elastic: elastic workers (:class:`~bench.behaviour.Elastic`: the built-in pool runs a controller
            that adds and retires workers) or None; ``workers`` is then its most.
        arrivals: the cell's seeded inter-arrival stream (the first pusher's when merged). Its ``lead``
            is the time of the first arrival (0 for a distribution; an arrival process's own time);
            an arrival process's stream may run out (``next`` raises ``StopIteration``): call
            ``recorder.exhausted(t)`` then, and an items run may end with fewer items.
        services: the cell's seeded service-time stream, one draw per item in item order.
        recorder: the recorder hooks.
        scale: real seconds per model second on a real loop, None in virtual time.
        factor: ``scale`` or 1: multiply a model delay by it for the loop.
    """

    def __init__(self, scenario: Scenario, arrivals: Stream, services: Stream, recorder: FullRecorder,
                 scale: float | None, origin: float = 0.0) -> None:  # fmt: skip
        self.scenario = scenario
        self.workers = scenario.workers
        self.maxsize = scenario.maxsize
        self.items = scenario.items
        self.duration = scenario.duration
        self.behaviour: Behaviour = scenario.behaviour
        self.backlog0 = scenario.backlog0
        self.elastic: Elastic | None = scenario.elastic
        self.arrival: Distribution = scenario.arrival
        self.service: Distribution = scenario.service
        self.arrivals = arrivals
        self.services = services
        self.recorder = recorder
        self.scale = scale
        self.factor = 1.0 if scale is None else scale
        self._origin = origin
        self._loop: asyncio.AbstractEventLoop | None = None

    # -- random numbers ---------------------------------------------------------------------------

    def stream(self, name: str, spec: str | Distribution) -> Stream:
        """A seeded stream of ``spec`` (a distribution spec or a Distribution) keyed by ``name``.

        The same seed, cell specs, replication and name give the same numbers whatever the worker
        count (:meth:`bench.distributions.Stream.sibling` of the arrival stream); different names
        give independent streams. Call it once per name and keep the stream.

        Raises:
            bench.errors.InputError: a bad spec.
        """
        if isinstance(spec, str):
            try:
                spec = parse(spec)
            except SpecError as err:
                raise InputError(f"ctx.stream({name!r}, ...): {err}") from None
        return self.arrivals.sibling(name, spec)

    def uniforms(self, name: str) -> Stream:
        """A seeded stream of uniform draws in [0, 1) keyed by ``name`` (see :meth:`stream`)."""
        return self.arrivals.sibling(name, _UNIT)

    def rng(self, name: str) -> np.random.Generator:
        """A numpy Generator keyed by ``name``, seeded like :meth:`stream` (for draws a Stream cannot make)."""
        return self.arrivals.sibling(name, _UNIT).generator

    # -- the queue and the clock ------------------------------------------------------------------

    def queue(self) -> asyncio.Queue:
        """A new queue of the grid's discipline and ``maxsize``: ``asyncio.Queue`` (fifo),
        ``asyncio.LifoQueue`` (lifo) or ``asyncio.PriorityQueue`` (priority: put ``(rank, seq, x)``)."""
        discipline = self.behaviour.discipline
        if discipline == "lifo":
            return asyncio.LifoQueue(self.maxsize)
        if discipline == "priority":
            return asyncio.PriorityQueue(self.maxsize)
        return asyncio.Queue(self.maxsize)

    @property
    def loop(self) -> asyncio.AbstractEventLoop:
        """The running loop (set when the scenario starts)."""
        if self._loop is None:
            self._loop = asyncio.get_running_loop()
        return self._loop

    def now(self) -> float:
        """Model seconds since the replication started."""
        return (self.loop.time() - self._origin) / self.factor

    def now_function(self) -> Callable[[], float]:
        """:meth:`now` as a function, the loop's own ``time`` where that is the same value (one
        call fewer per event in a scenario's hot loop)."""
        if self.scale is None and self._origin == 0:
            return self.loop.time
        return self.now

    def sleep_function(self) -> Callable[[float], Awaitable[None]]:
        """``sleep(model_seconds)``: ``asyncio.sleep`` in virtual time; on a real loop a scaled sleep
        whose lateness goes to :meth:`~bench.full_recorder.FullRecorder.late`."""
        if self.scale is None:
            return asyncio.sleep
        loop, factor, late = self.loop, self.factor, self.recorder.late

        async def sleep(delay: float) -> None:
            due = loop.time() + delay * factor
            await asyncio.sleep(delay * factor)
            late((loop.time() - due) / factor)

        return sleep

    async def sleep(self, seconds: float) -> None:
        """Sleep ``seconds`` of model time (see :meth:`sleep_function`)."""
        await self.sleep_function()(seconds)

    def call_later(self, seconds: float, callback: Callable[..., Any], *args: Any) -> asyncio.TimerHandle:
        """``loop.call_later`` in model seconds (a timeout: the pool's patience uses it)."""
        return self.loop.call_later(seconds * self.factor, callback, *args)
