"""Helpers shared by the engine tests: a sink that keeps every batch, and one asyncio replication."""

from __future__ import annotations

import asyncio
from typing import Any

import numpy as np

from bench.grid import Cell, streams
from bench.loop import VirtualEventLoop
from bench.recorder import BATCH, Recorder
from bench.scenario import Scenario, run_scenario


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


def run_asyncio(scenario: Scenario, cell: Cell, seed: int, sink: Any, *, loop_factory=VirtualEventLoop,
                batch: int = BATCH, log=None) -> tuple[Recorder, float]:  # fmt: skip
    """Run replication 0 of ``scenario`` on a loop from ``loop_factory``, recording into ``sink``
    (through the row log ``log``, the recorder's default if None); return the (closed) recorder
    and the end time."""
    recorder = Recorder(sink, batch=batch, log=log)
    arrivals, services = streams(seed, cell, 0)
    with asyncio.Runner(loop_factory=loop_factory) as runner:
        t_end = runner.run(run_scenario(scenario, arrivals, services, recorder))
    recorder.close(t_end)
    return recorder, t_end
