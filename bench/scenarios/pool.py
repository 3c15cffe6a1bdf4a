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
  own streams; item ids count arrivals over all pushers;
* **a backlog at t = 0** (``backlog0``): the first pusher puts that many items at 0 before its
  first arrival (their services drawn first, in item order), as after an outage;
* **arrival processes** (a schedule, a daily cycle, bursts, a trace): a pusher sleeps its
  stream's ``lead`` before its first arrival, and stops when its stream runs out (a trace shorter
  than the run), telling the recorder (``exhausted``) once every pusher has;
* **elastic workers** (``workers = "auto:..."``): a controller task looks at the queue every
  ``every`` seconds and, when a rule fires (items waiting above ``depth``, or the oldest waiting
  item's wait above ``wait``) and the last scale-up is ``cool`` seconds old, starts ``step`` more
  workers (up to ``max``), each taking items after a start-up delay ``start``; it retires workers
  idle for more than ``idle`` seconds (down to ``min``) by cancelling them while they wait in
  ``queue.get()``, so a worker is never retired holding an item (cancelling a waiting getter leaves
  the queue's items where they are), and, with ``busy<F``, one idle worker per look (at most one
  per ``cool`` seconds) while fewer than that share of the workers are busy. Every change of the
  count is recorded (``workers``).

With none of them (one pusher, fifo, no classes) this coroutine records exactly what
:func:`bench.scenario.run_scenario` does (tested); the asyncio engine runs that one then, as it is
faster.
"""

from __future__ import annotations

import asyncio
import collections
import itertools
import math
from collections.abc import Callable
from typing import Any

from bench.distributions import Stream
from bench.scenarios.context import ScenarioContext

__all__ = ["pool"]


class _Job:
    """One item and its fate, drawn when it is put (small: a queued item costs memory)."""

    __slots__ = ("item", "rank", "klass", "service", "retries", "fails", "attempt", "deadline", "timer", "dead",
                 "since")  # fmt: skip

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
        self.since = -1.0  # elastic workers watching the oldest wait: when it entered the queue (-1: not in it)


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
    elastic = ctx.elastic
    idle: dict[int, float] = {}  # elastic workers: worker -> when it began waiting for an item
    watch = elastic is not None and any(what == "wait" for what, _ in elastic.up)
    waiting: collections.deque[tuple[float, _Job]] = collections.deque()  # (put time, job), for the oldest wait

    def left(job: _Job) -> None:
        state.pending -= 1
        if total is not None and state.pending == 0 and (state.next_id >= total or not state.open):
            finished.set()

    def ran_out() -> None:
        """A pusher's arrival process ran out; when every pusher's has, no item arrives any more."""
        state.open -= 1
        if not state.open:
            rec.exhausted(now())
            if total is not None and state.pending == 0:
                finished.set()

    def expire(job: _Job) -> None:
        """The deadline passed while the item waited: it leaves the queue's count."""
        job.dead = True
        job.timer = None
        job.since = -1.0
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

    async def put_one(p: int, draw: Callable[[int], _Job]) -> None:
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
        if watch:
            job.since = now()
            waiting.append((job.since, job))
        if job.deadline != math.inf:
            patience = job.deadline
            job.deadline = now() + patience
            job.timer = ctx.call_later(patience, expire, job)

    async def pusher(p: int, arrivals: Stream, draw: Callable[[int], _Job]) -> None:
        for _ in range(ctx.backlog0 if p == 0 else 0):  # items queued at t = 0, before any arrival
            if total is not None and state.next_id >= total:
                return
            await put_one(p, draw)
        lead = arrivals.lead  # the first arrival: 0 for a distribution, the process's own time otherwise
        if lead:
            if lead == math.inf:
                ran_out()
                return
            await sleep(lead)
        while True:
            if total is not None and state.next_id >= total:
                return
            await put_one(p, draw)
            if total is not None and state.next_id >= total:
                return
            try:
                gap = arrivals.next()
            except StopIteration:  # its arrival process ran out (a trace shorter than the run)
                ran_out()
                return
            await sleep(gap)

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
        if watch:
            job.since = now()
            waiting.append((job.since, job))
        if job.deadline != math.inf:
            job.timer = ctx.call_later(job.deadline - now(), expire, job)

    def took(job: _Job, worker: int) -> None:
        state.live -= 1
        job.since = -1.0
        if elastic is not None:
            idle.pop(worker, None)
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
            if elastic is not None:
                idle[w] = now()  # waiting for an item: the controller may retire it
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

    def oldest() -> float | None:
        """When the oldest item still waiting entered the queue (None: nothing waits)."""
        while waiting and waiting[0][1].since != waiting[0][0]:  # taken, abandoned, or put back later
            waiting.popleft()
        return waiting[0][0] if waiting else None

    async def controller(group: asyncio.TaskGroup, crew: set[asyncio.Task]) -> None:
        """Elastic workers: add them when a rule fires, retire idle ones (see the module docstring)."""
        assert elastic is not None
        e = elastic
        active: dict[int, asyncio.Task] = {}
        booting = 0
        names = itertools.count()

        def report() -> None:
            rec.workers(now(), len(active), len(active) + booting)

        def start(w: int) -> None:
            task = group.create_task(worker(w, group), name=f"worker-{w}")
            active[w] = task
            crew.add(task)
            task.add_done_callback(crew.discard)

        async def boot(w: int) -> None:
            nonlocal booting
            await sleep(e.start)
            booting -= 1
            start(w)
            report()

        for _ in range(e.init):
            start(next(names))
        report()
        cool_until = down_until = -math.inf
        while True:
            await sleep(e.every)
            t = now()
            fire = False
            for what, limit in e.up:
                if what == "depth":
                    fire = fire or state.live > limit
                else:
                    since = oldest()
                    fire = fire or (since is not None and t - since > limit)
            changed = False
            room = e.high - len(active) - booting
            if fire and room > 0 and t >= cool_until:
                for _ in range(min(e.step, room)):
                    w = next(names)
                    if e.start > 0:
                        booting += 1
                        task = group.create_task(boot(w), name=f"booting-{w}")
                        crew.add(task)
                        task.add_done_callback(crew.discard)
                    else:
                        start(w)
                cool_until = t + e.cool
                changed = True
            waiting_workers = sorted((since, w) for w, since in idle.items() if w in active)  # longest idle first
            spare = len(active) - e.low
            if e.down is not None:
                while waiting_workers and spare > 0 and t - waiting_workers[0][0] > e.down:
                    _, w = waiting_workers.pop(0)
                    active.pop(w).cancel()  # it waits in queue.get(): no item is lost
                    del idle[w]
                    spare -= 1
                    changed = True
            if e.busy is not None and waiting_workers and spare > 0 and t >= down_until:
                if (len(active) - len(waiting_workers)) / len(active) < e.busy:
                    _, w = waiting_workers.pop(0)
                    active.pop(w).cancel()
                    del idle[w]
                    down_until = t + e.cool
                    changed = True
            if changed:
                report()

    async with asyncio.TaskGroup() as group:
        crew: set[asyncio.Task] = set()
        if elastic is None:
            crew.update(group.create_task(worker(w, group), name=f"worker-{w}") for w in range(ctx.workers))
        else:
            crew.add(group.create_task(controller(group, crew), name="autoscaler"))
        streams = _pusher_streams(ctx)
        state.open = len(streams)
        for p, (arrivals, services) in enumerate(streams):
            group.create_task(pusher(p, arrivals, drawer(p, services)), name=f"pusher-{p}")
        if total is None:
            await asyncio.Event().wait()  # a duration run: the harness ends it at the duration
        await finished.wait()
        for task in list(crew):
            task.cancel()


class _State:
    """The pool's counters, shared by its tasks."""

    __slots__ = ("next_id", "pending", "live", "open")

    def __init__(self) -> None:
        self.next_id = 0  # the next item id (ids count arrivals over all pushers)
        self.pending = 0  # items arrived and not yet left (served, abandoned or given up)
        self.live = 0  # items waiting in the queue and not abandoned: the recorded depth
        self.open = 1  # pushers whose arrival process has not run out


def _pusher_streams(ctx: ScenarioContext) -> list[tuple[Stream, Stream]]:
    """(arrivals, services) of each pusher: the cell's own for a single pusher; for a merged arrival
    spec, one named stream per part (``arrival/P``) and the cell's services for the first pusher,
    named ones (``service/P``) for the others."""
    parts = ctx.arrival.parts
    if not parts:
        return [(ctx.arrivals, ctx.services)]
    return [(ctx.stream(f"arrival/{p}", part), ctx.services if p == 0 else ctx.stream(f"service/{p}", ctx.service))
            for p, part in enumerate(parts)]  # fmt: skip
