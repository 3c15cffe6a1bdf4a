"""qbench: run asyncio pusher/puller queues over a grid of configurations, in virtual or scaled time.

The public surface: the virtual-time loops, distributions, the scenario, the recurrence engine,
grids, executors and the runner.
"""

from bench.clock import parse_clock
from bench.distributions import Distribution, SpecError, Stream, parse
from bench.executor import ExecutorError, make_executor
from bench.grid import Cell, Grid, GridError, load_grid, make_grid, streams
from bench.loop import Deadlock, ReferenceVirtualEventLoop, VirtualEventLoop, run_virtual
from bench.recurrence import run_recurrence
from bench.runner import RunResult, create_run, run_cell, run_grid
from bench.scenario import Scenario, run_scenario

__version__ = "0.1.0"

__all__ = [
    "Cell",
    "Deadlock",
    "Distribution",
    "ExecutorError",
    "Grid",
    "GridError",
    "ReferenceVirtualEventLoop",
    "RunResult",
    "Scenario",
    "SpecError",
    "Stream",
    "VirtualEventLoop",
    "create_run",
    "load_grid",
    "make_executor",
    "make_grid",
    "parse",
    "parse_clock",
    "run_cell",
    "run_grid",
    "run_recurrence",
    "run_scenario",
    "run_virtual",
    "streams",
]
