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


def run(items: int, seed: int, workers: int = 2, mean_arrival: float = 1.0, mean_service: float = 1.8) -> int:
    """Run the model for ``items`` items; return how many finished."""
    import simpy

    rng = random.Random(seed)
    env = simpy.Environment()
    store = simpy.Store(env)
    t_put, t_get, t_done = [0.0] * items, [0.0] * items, [0.0] * items

    def pusher():
        for i in range(items):
            yield store.put((i, rng.expovariate(1 / mean_service)))
            t_put[i] = env.now
            if i < items - 1:
                yield env.timeout(rng.expovariate(1 / mean_arrival))

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
    return sum(1 for t in t_done if t > 0)


if __name__ == "__main__":
    print(run(int(sys.argv[1]), int(sys.argv[2])))
