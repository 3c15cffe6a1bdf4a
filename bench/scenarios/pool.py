"""The built-in ``pool`` scenario: pushers put items on an asyncio queue, workers take and serve them.

Written as an asyncio user writes a worker pool, with the behaviours of :mod:`bench.behaviour`:

* **discipline**: the queue is ``asyncio.Queue`` (fifo), ``asyncio.LifoQueue`` (lifo) or
  ``asyncio.PriorityQueue`` (priority) holding ``(class rank, put sequence, job)``: a free worker
  takes the first class of the mix first, FIFO within a class, never preempting a service;
* **classes**: each item's class is drawn from the mix (and recorded) under any discipline, so a
  FIFO run and a priority run of the same seed see the same items;
* **patience**: each item's deadline is ``t_put + patience``. At the deadline a timeout
  (``loop.call_later``, what ``asyncio.timeout`` does underneath) marks it abandoned: it leaves the
  queue's count then (a -1 depth change) and the worker that later pops its entry discards it.
  Why a timeout rather than letting the worker that finds it expired drop it: the item's customer
  gives up at its deadline, and the queue's depth then counts the items really waiting, so the
  depth record, Little's law and Erlang-A's queue length mean what they say. ``asyncio.Queue``
  cannot remove an entry from its middle, so on a bounded queue (``maxsize > 0``) an abandoned
  entry keeps its slot until a worker pops it, as it would in real code;
* **batches**: a worker takes up to ``batch`` items: the first as usual, then what is queued
  without waiting, or, with ``linger > 0``, waiting up to ``linger`` seconds after the first for
  more; the batch takes ``setup`` (one draw) plus the sum of its items' service times;
* **failures and retries**: an attempt fails with probability ``failure``; a failed item waits
  its backoff in a task of its own and goes back on the queue (``requeue``), up to ``attempts``
  attempts, then gives up. An item's fate (its failures, each attempt's service time and each
  backoff's jitter) is drawn when it is put, from its pusher's streams, so it does not depend on
  the worker count (common random numbers);
* **several pushers**: a merged arrival spec (``exp:2+exp:3``) runs one pusher per part, with its
  own streams; item ids count arrivals over all pushers.

With none of them (one pusher, fifo, no classes) this coroutine records exactly what
:func:`bench.scenario.run_scenario` does (tested); the asyncio engine runs that one then, as it is
faster.
"""

from __future__ import annotations

import asyncio
import itertools
import math
from collections.abc import Callable
from typing import Any

from bench.distributions import Stream
from bench.scenarios.context import ScenarioContext

__all__ = ["pool"]


class _Job:
    """One item and its fate, drawn when it is put (small: a queued item costs memory)."""

    __slots__ = ("item", "rank", "klass", "service", "retries", "fails", "attempt", "deadline", "timer", "dead")

    def __init__(self, item: int, service: float) -> None:
        self.item = item
        self.rank = 0  # class index: the priority queue's key
        self.klass: str | None = None
        self.service = service  # the current attempt's service time
        self.retries: list[tuple[float, float]] | None = None  # (backoff, service) of each planned retry
        self.fails = 0  # the first `fails` attempts fail (all of them: it gives up)
        self.attempt = 0  # index of the current attempt
        self.deadline = math.inf  # its patience until it is put, then put time + patience
        self.timer: asyncio.TimerHandle | None = None
        self.dead = False  # abandoned: its queue entry is discarded when popped


async def pool(ctx: ScenarioContext) -> None:
    """Run the worker pool until a duration run is stopped, or every item of an items run has left."""
    b = ctx.behaviour
    rec = ctx.recorder
    now = ctx.now_function()
    sleep = ctx.sleep_function()
    queue = ctx.queue()
    priority = b.discipline == "priority"
    mix = b.classes
    setup = ctx.stream("setup", b.setup) if b.setup is not None else None
    total = ctx.items
    state = _State()
    finished = asyncio.Event()
    seq = itertools.count()

    def left(job: _Job) -> None:
        state.pending -= 1
        if total is not None and state.pending == 0 and state.next_id >= total:
            finished.set()

    def expire(job: _Job) -> None:
        """The deadline passed while the item waited: it leaves the queue's count."""
        job.dead = True
        job.timer = None
        state.live -= 1
        rec.abandon(job.item, now(), state.live)
        left(job)

    def entry(job: _Job) -> Any:
        return (job.rank, next(seq), job) if priority else job

    def take_nowait() -> _Job | None:
        while not queue.empty():
            got = queue.get_nowait()
            job = got[2] if priority else got
            if not job.dead:
                return job
        return None

    async def take() -> _Job:
        while True:
            got = await queue.get()
            job = got[2] if priority else got
            if not job.dead:
                return job

    def drawer(p: int, services: Stream) -> Callable[[int], _Job]:
        """Draws an item's fate from pusher ``p``'s streams, in item order."""
        classes = ctx.uniforms(f"class/{p}") if mix is not None else None
        patience = ctx.stream(f"patience/{p}", b.patience) if b.patience is not None else None
        failing = b.failure > 0
        fail_u = ctx.uniforms(f"failure/{p}") if failing else None
        retry_services = ctx.stream(f"retry-service/{p}", ctx.service) if failing else None
        jitter = ctx.uniforms(f"backoff/{p}") if failing and b.backoff.jitter else None
        p_fail, most, backoff = b.failure, b.attempts, b.backoff

        def draw(item: int) -> _Job:
            job = _Job(item, services.next())
            if classes is not None:
                assert mix is not None
                job.rank = mix.pick(classes.next())
                job.klass = mix.names[job.rank]
            if patience is not None:
                job.deadline = patience.next()
            if fail_u is not None and retry_services is not None:
                fails = 0
                while fails < most and fail_u.next() < p_fail:
                    fails += 1
                job.fails = fails
                if fails:
                    job.retries = [(backoff.delay(retry + 1, jitter.next() if jitter is not None else 1.0),
                                    retry_services.next()) for retry in range(min(fails + 1, most) - 1)]  # fmt: skip
            return job

        return draw

    async def pusher(p: int, arrivals: Stream, draw: Callable[[int], _Job]) -> None:
        while True:
            if total is not None and state.next_id >= total:
                return
            item = state.next_id
            state.next_id += 1
            state.pending += 1
            rec.arrive(item, now())
            job = draw(item)
            if mix is not None or p:
                rec.tag(item, job.klass, p)
            await queue.put(entry(job))
            state.live += 1
            rec.put(item, now(), state.live)
            if job.deadline != math.inf:
                patience = job.deadline
                job.deadline = now() + patience
                job.timer = ctx.call_later(patience, expire, job)
            if total is not None and state.next_id >= total:
                return
            await sleep(arrivals.next())

    async def retry(job: _Job, wait: float) -> None:
        if wait > 0:
            await sleep(wait)
        if now() >= job.deadline:  # its deadline passed while it backed off: it is not put back
            rec.abandon(job.item, now(), None)
            left(job)
            return
        await queue.put(entry(job))
        state.live += 1
        rec.requeue(job.item, now(), state.live)
        if job.deadline != math.inf:
            job.timer = ctx.call_later(job.deadline - now(), expire, job)

    def took(job: _Job, worker: int) -> None:
        state.live -= 1
        if job.timer is not None:
            job.timer.cancel()
            job.timer = None
        rec.get(job.item, worker, now(), state.live)

    def ended(job: _Job, t: float, group: asyncio.TaskGroup) -> None:
        """An attempt of ``job`` ended at ``t``: served, failed and retried, or given up."""
        if job.attempt < job.fails:
            again = job.retries is not None and job.attempt < len(job.retries)
            rec.fail(job.item, t, again)
            if again:
                assert job.retries is not None
                wait, job.service = job.retries[job.attempt]
                job.attempt += 1
                group.create_task(retry(job, wait), name=f"retry-{job.item}")
                return
        else:
            rec.done(job.item, t)
        left(job)

    async def worker(w: int, group: asyncio.TaskGroup) -> None:
        most, linger = b.batch, b.linger
        while True:
            job = await take()
            took(job, w)
            if most == 1 and setup is None:
                await sleep(job.service)
                ended(job, now(), group)
                continue
            batch = [job]
            start = now()
            while len(batch) < most:
                more = take_nowait()
                if more is None:
                    wait = start + linger - now()
                    if wait <= 0:
                        break
                    try:
                        async with asyncio.timeout(wait * ctx.factor):
                            more = await take()
                    except TimeoutError:
                        break
                took(more, w)
                batch.append(more)
            length = setup.next() if setup is not None else 0.0
            for one in batch:
                length += one.service
            await sleep(length)
            t = now()
            for one in batch:
                ended(one, t, group)

    async with asyncio.TaskGroup() as group:
        workers = [group.create_task(worker(w, group), name=f"worker-{w}") for w in range(ctx.workers)]
        for p, (arrivals, services) in enumerate(_pusher_streams(ctx)):
            group.create_task(pusher(p, arrivals, drawer(p, services)), name=f"pusher-{p}")
        if total is None:
            await asyncio.Event().wait()  # a duration run: the harness ends it at the duration
        await finished.wait()
        for task in workers:
            task.cancel()


class _State:
    """The pool's counters, shared by its tasks."""

    __slots__ = ("next_id", "pending", "live")

    def __init__(self) -> None:
        self.next_id = 0  # the next item id (ids count arrivals over all pushers)
        self.pending = 0  # items arrived and not yet left (served, abandoned or given up)
        self.live = 0  # items waiting in the queue and not abandoned: the recorded depth


def _pusher_streams(ctx: ScenarioContext) -> list[tuple[Stream, Stream]]:
    """(arrivals, services) of each pusher: the cell's own for a single pusher; for a merged arrival
    spec, one named stream per part (``arrival/P``) and the cell's services for the first pusher,
    named ones (``service/P``) for the others."""
    parts = ctx.arrival.parts
    if not parts:
        return [(ctx.arrivals, ctx.services)]
    return [(ctx.stream(f"arrival/{p}", part), ctx.services if p == 0 else ctx.stream(f"service/{p}", ctx.service))
            for p, part in enumerate(parts)]  # fmt: skip
