"""A qbench scenario of your own: workers that call a rate-limited downstream API.

The program is the one you would write in production: a pusher puts requests on an
``asyncio.Queue``; each of ``ctx.workers`` workers takes one, does its own work (the cell's
``service`` time), then calls a downstream API that accepts at most ``LIMIT`` calls at once (an
``asyncio.Semaphore``, as a client library's connection pool would be) and answers in a time
drawn from ``DOWNSTREAM``. More workers stop helping once the downstream is the bottleneck (at
``LIMIT / mean call time`` = 5 requests/s here), and qbench shows where.

Run it like any grid (the file can live anywhere; its path goes into the run's manifest with its
sha256, so ``--resume`` refuses it if it changes)::

    qbench run --scenario bench/scenarios/examples/rate_limited.py:rate_limited --out results/rate_limited \\
        --workers 2,4,8 --arrival exp:0.25 --service exp:0.5 --items 20000 --replications 5
    qbench report results/rate_limited

The contract (``bench/scenarios/context.py``): ``async def NAME(ctx)`` gets a ``ScenarioContext``
with the cell's queue options (``ctx.workers``, ``ctx.maxsize``, ``ctx.queue()``), its seeded
streams (``ctx.arrivals``, ``ctx.services``, ``ctx.stream(name, spec)`` for your own), the
recorder hooks (``ctx.recorder``) and the clock (``ctx.now()``, ``ctx.sleep(seconds)``). It numbers
items 0, 1, 2, ... as they arrive and reports each one's put, get and done; in an items run it puts
``ctx.items`` items and returns once every one is done; in a duration run it just keeps going (the
harness stops it at ``ctx.duration``).
"""

from __future__ import annotations

import asyncio

#: Calls the downstream accepts at once.
LIMIT = 2
#: Its response time, a qbench distribution spec.
DOWNSTREAM = "exp:0.4"


async def rate_limited(ctx) -> None:
    queue = ctx.queue()  # asyncio.Queue(maxsize) for the grid's fifo discipline
    rec = ctx.recorder
    now, sleep = ctx.now, ctx.sleep
    downstream = asyncio.Semaphore(LIMIT)
    calls = ctx.stream("downstream", DOWNSTREAM)  # seeded, keyed by name: the same for every worker count
    done = asyncio.Event()
    finished = 0

    async def pusher() -> None:
        item = 0
        while ctx.items is None or item < ctx.items:
            rec.arrive(item, now())
            await queue.put((item, ctx.services.next()))  # draw per item: common random numbers
            rec.put(item, now(), queue.qsize())
            item += 1
            if ctx.items is None or item < ctx.items:
                await sleep(ctx.arrivals.next())

    async def worker(w: int) -> None:
        nonlocal finished
        while True:
            item, work = await queue.get()
            rec.get(item, w, now(), queue.qsize())
            await sleep(work)  # the worker's own processing
            async with downstream:  # at most LIMIT calls in flight
                await sleep(calls.next())
            rec.done(item, now())
            queue.task_done()
            finished += 1
            if finished == ctx.items:
                done.set()

    async with asyncio.TaskGroup() as group:  # a worker's exception ends the scenario (and its cell)
        workers = [group.create_task(worker(w), name=f"worker-{w}") for w in range(ctx.workers)]
        group.create_task(pusher(), name="pusher")
        await done.wait()  # a duration run never gets here: the harness stops it at ctx.duration
        for task in workers:
            task.cancel()
