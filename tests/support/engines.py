"""Helpers shared by the engine tests: a sink that keeps every batch, and one asyncio replication."""

from __future__ import annotations

from typing import Any

import numpy as np

from bench.asyncio_engine import run_asyncio as engine_run_asyncio
from bench.grid import Cell, streams
from bench.recorder import BATCH
from bench.replication import Replication
from bench.scenario import Scenario


class Collect:
    """A sink that keeps a copy of every batch (tests only)."""

    def __init__(self) -> None:
        self._batches: dict[str, list[dict]] = {"items": [], "depth": []}

    def items(self, columns) -> None:
        self._batches["items"].append({k: np.asarray(v).copy() for k, v in columns.items()})

    def depth(self, columns) -> None:
        self._batches["depth"].append({k: np.asarray(v).copy() for k, v in columns.items()})

    def table(self, kind: str) -> dict[str, np.ndarray]:
        """The ``items`` or ``depth`` batches joined into columns (``{}`` when there were none)."""
        batches = self._batches[kind]
        return {k: np.concatenate([b[k] for b in batches]) for k in batches[0]} if batches else {}


def run_asyncio(scenario: Scenario, cell: Cell, seed: int, sink: Any, *, loop_factory=None, batch: int = BATCH,
                accelerated: bool = True) -> tuple[Replication, float]:  # fmt: skip
    """Run replication 0 of ``scenario`` through the asyncio engine's entry point, on a loop from
    ``loop_factory`` (the engine's default if None), recording into ``sink``; return what it did
    and its end time."""
    arrivals, services = streams(seed, cell, 0)
    done = engine_run_asyncio(scenario, arrivals, services, sink, batch=batch, loop_factory=loop_factory,
                              accelerated=accelerated)  # fmt: skip
    return done, done.t_end


def plain_and_pool(scenario: Scenario, cell: Cell) -> tuple[Replication, Replication]:
    """One replication of ``cell`` by the plain program and by the general pool (``Scenario.plain``
    forced each way, batches of 997): checks that their item and depth records are identical and
    returns what each engine run returned."""
    import pytest

    outputs = []
    for plain in (True, False):
        with pytest.MonkeyPatch.context() as patch:
            patch.setattr(Scenario, "plain", property(lambda self, plain=plain: plain))
            sink = Collect()
            done = engine_run_asyncio(scenario, *streams(1, cell, 0), sink, batch=997)
        outputs.append((done, sink.table("items"), sink.table("depth")))
    (a, items_a, depth_a), (b, items_b, depth_b) = outputs
    for name, column in items_a.items():
        np.testing.assert_array_equal(items_b[name], column, err_msg=name)
    for name, column in depth_a.items():
        np.testing.assert_array_equal(depth_b[name], column, err_msg=name)
    return a, b
