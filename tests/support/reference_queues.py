"""Independent implementations of two behaviours of the pool, for item-by-item checks.

Each takes the items' put times and service times (as the engine drew them) and computes every
item's fate with a plain loop over items or workers, sharing no code with ``bench``:

* :func:`fifo_with_patience`: FIFO G/G/c+G. Each item, in put order, gets the earliest-free worker
  at ``max(put, free)``, unless that is after its deadline (``put + patience``): then it abandons
  at the deadline and takes no worker's time (the standard recurrence of a FIFO queue with
  reneging: an item's start depends only on the items before it);
* :func:`batches`: FIFO workers that take up to ``batch`` items at once, what is queued when they
  are free (or the next arrival when nothing is), and serve them for ``setup`` plus the sum of
  their service times; with one worker, optionally waiting ``linger`` after the first item for more.
"""

from __future__ import annotations

import heapq

import numpy as np


def fifo_with_patience(t_put: np.ndarray, service: np.ndarray, patience: np.ndarray, workers: int) -> dict:
    """Per item: ``t_get`` (NaN if abandoned), ``t_done``, ``t_leave`` and ``abandoned``."""
    n = len(t_put)
    free = [0.0] * workers
    heapq.heapify(free)
    t_get, t_done, t_leave = np.full(n, np.nan), np.full(n, np.nan), np.full(n, np.nan)
    abandoned = np.zeros(n, dtype=bool)
    for i in range(n):
        start = max(t_put[i], free[0])
        deadline = t_put[i] + patience[i]
        if start > deadline:
            abandoned[i] = True
            t_leave[i] = deadline
            continue
        heapq.heapreplace(free, start + service[i])
        t_get[i] = start
        t_done[i] = t_leave[i] = start + service[i]
    return {"t_get": t_get, "t_done": t_done, "t_leave": t_leave, "abandoned": abandoned}


def batches(t_put: np.ndarray, service: np.ndarray, batch: int, setup: float, workers: int = 1,
            linger: float = 0.0) -> dict:  # fmt: skip
    """Per item: ``t_get`` (when a worker took it) and ``t_done`` (when its batch ended).

    ``linger > 0`` needs one worker (with several, an idle worker takes an arrival before a
    lingering one, a race this loop does not model)."""
    if linger and workers != 1:
        raise ValueError("linger is modelled for one worker only")
    n = len(t_put)
    t_get, t_done = np.full(n, np.nan), np.full(n, np.nan)
    free = [(0.0, w) for w in range(workers)]
    i = 0
    while i < n:
        f, w = heapq.heappop(free)
        first = max(f, t_put[i])
        taken = [i]
        t_get[i] = first
        i += 1
        while len(taken) < batch and i < n and t_put[i] <= first:
            t_get[i] = first
            taken.append(i)
            i += 1
        start = first
        if linger and len(taken) < batch:
            start = first + linger
            while len(taken) < batch and i < n and t_put[i] <= first + linger:
                t_get[i] = t_put[i]
                taken.append(i)
                i += 1
            if len(taken) == batch:
                start = t_get[taken[-1]]
        end = start + setup + float(service[taken].sum())
        t_done[taken] = end
        heapq.heappush(free, (end, w))
    return {"t_get": t_get, "t_done": t_done}
