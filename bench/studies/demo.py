"""The program that started it all: a pusher and two pullers, Fred and George, on a real loop.

The pusher puts an item every second; each puller takes ``uniform(0, 5)`` seconds per item. With
two pullers the queue cannot keep up and its size creeps upwards, about 0.2 items per second.
:func:`demo` runs it in scaled time, so the backlog shows within seconds.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Callable

__all__ = ["NAMES", "demo"]

NAMES = ("Fred", "George", "Ginny", "Percy", "Ron", "Bill", "Charlie", "Molly")


async def demo(
    say: Callable[[str], None],
    *,
    scale: float = 0.05,
    items: int | None = 120,
    workers: int = 2,
    seed: int | None = None,
) -> None:
    """Run the blog program, reporting each take through ``say``.

    Args:
        say: called with one line per item taken, e.g. ``[George] Got item: 99 (size 16)``.
        scale: real seconds per model second (0.05 runs the first 100 items in about 5 s).
        items: stop once this many items have been taken; ``None`` runs until cancelled.
        workers: number of pullers (named Fred, George, Ginny, ...).
        seed: seed of the service times; ``None`` for a fresh one each time.
    """
    rng = random.Random(seed)
    queue: asyncio.Queue[int] = asyncio.Queue()
    taken = asyncio.Event()
    count = 0
    failures: list[Exception] = []  # say() failed (e.g. a closed pipe): the demo ends with its error

    async def pusher() -> None:
        item = 0
        while True:
            await queue.put(item)
            item += 1
            await asyncio.sleep(1 * scale)

    async def puller(name: str) -> None:
        nonlocal count
        while True:
            item = await queue.get()
            try:
                say(f"[{name}] Got item: {item} (size {queue.qsize()})")
            except Exception as err:
                failures.append(err)
                taken.set()
                return
            count += 1
            if items is not None and count >= items:
                taken.set()
            await asyncio.sleep(rng.uniform(0, 5) * scale)

    tasks = [asyncio.create_task(pusher())]
    tasks += [asyncio.create_task(puller(NAMES[w % len(NAMES)])) for w in range(workers)]
    try:
        await taken.wait()
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
    if failures:
        raise failures[0]
