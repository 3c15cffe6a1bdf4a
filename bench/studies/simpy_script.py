"""The peer of the whole-process benchmark: an M/M/2 queue as a SimPy user writes it.

``python -m bench.studies.simpy_script ITEMS SEED`` runs a pusher and two pullers around a SimPy
``Store`` (the pusher/puller shape of qbench's scenario), draws its times with Python's ``random``
and records every item's put, get and done times in lists, as a script whose results are then
looked at would. It imports nothing of qbench: its start-up is SimPy's alone. It prints the number
of items finished, so a caller can check that the work was done.
"""

from __future__ import annotations

import random
import sys
from collections.abc import Iterator


def simulate(items: int, workers: int, services: Iterator[float], gaps: Iterator[float]) -> list[float]:
    """The pusher/puller model on a SimPy ``Store``: item ``i`` takes the next of ``services`` and the
    pusher waits the next of ``gaps`` after putting it; returns each item's done time (0 if unfinished).
    The pyperf suite times this same model (:mod:`bench.studies.perf`)."""
    import simpy

    env = simpy.Environment()
    store = simpy.Store(env)
    t_put, t_get, t_done = [0.0] * items, [0.0] * items, [0.0] * items

    def pusher():
        for i in range(items):
            yield store.put((i, next(services)))
            t_put[i] = env.now
            if i < items - 1:
                yield env.timeout(next(gaps))

    def puller():
        while True:
            i, service = yield store.get()
            t_get[i] = env.now
            yield env.timeout(service)
            t_done[i] = env.now

    env.process(pusher())
    for _ in range(workers):
        env.process(puller())
    env.run()
    return t_done


def run(items: int, seed: int, workers: int = 2, mean_arrival: float = 1.0, mean_service: float = 1.8) -> int:
    """Run the model for ``items`` items, times drawn with ``random``; return how many finished."""
    rng = random.Random(seed)
    services = (rng.expovariate(1 / mean_service) for _ in range(items))
    gaps = (rng.expovariate(1 / mean_arrival) for _ in range(items))
    return sum(1 for t in simulate(items, workers, services, gaps) if t > 0)


if __name__ == "__main__":
    print(run(int(sys.argv[1]), int(sys.argv[2])))
