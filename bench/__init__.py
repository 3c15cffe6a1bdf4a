"""qbench: run asyncio pusher/puller queues over a grid of configurations, in virtual or scaled time.

The public surface, imported on first use (so ``qbench --help`` and each command load only what
they need): the virtual-time loops, distributions, the scenario and its behaviours, the context a
user's scenario gets, the engines' entry points, grids,
executors, the runner and the error raised for bad input.
"""

from __future__ import annotations

import importlib
from typing import Any

#: Public name -> the module that defines it.
_WHERE = {
    "Behaviour": "bench.behaviour",
    "Cell": "bench.grid",
    "Deadlock": "bench.loop",
    "Distribution": "bench.distributions",
    "ExecutorError": "bench.executor",
    "Grid": "bench.grid",
    "GridError": "bench.grid",
    "InputError": "bench.errors",
    "PyVirtualEventLoop": "bench.loop",
    "ReferenceVirtualEventLoop": "bench.loop",
    "Replication": "bench.replication",
    "RunResult": "bench.runner",
    "Scenario": "bench.scenario",
    "Sampler": "bench.sampling",
    "ScenarioContext": "bench.scenarios.context",
    "SpecError": "bench.distributions",
    "Stream": "bench.distributions",
    "VirtualEventLoop": "bench.loop",
    "choose_engine": "bench.grid",
    "create_run": "bench.runner",
    "load_grid": "bench.grid",
    "make_executor": "bench.executor",
    "make_grid": "bench.grid",
    "parse": "bench.distributions",
    "parse_clock": "bench.grid",
    "run_asyncio": "bench.asyncio_engine",
    "run_cell": "bench.runner",
    "run_grid": "bench.runner",
    "run_recurrence": "bench.recurrence",
    "run_scenario": "bench.scenario",
    "run_virtual": "bench.loop",
    "streams": "bench.grid",
}

__all__ = sorted(_WHERE)


def _version() -> str:
    """The installed package's version (read from its metadata: written once, in pyproject.toml)."""
    from importlib import metadata

    try:
        return metadata.version("qbench")
    except metadata.PackageNotFoundError:  # run from a source tree that was never installed
        return "0+unknown"


def __getattr__(name: str) -> Any:
    """Import a public name's module on first use (PEP 562); ``__version__`` is read then too."""
    if name == "__version__":
        globals()[name] = value = _version()
        return value
    if name not in _WHERE:
        raise AttributeError(f"module 'bench' has no attribute {name!r}")
    value = getattr(importlib.import_module(_WHERE[name]), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})
