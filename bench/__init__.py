"""qbench: run asyncio pusher/puller queues over a grid of configurations, in virtual or scaled time.

The public surface: the virtual-time loop, distributions, the scenario, grids and the runner.
"""

from bench.clock import Deadlock, VirtualEventLoop, parse_clock, run_virtual
from bench.distributions import Distribution, SpecError, Stream, parse
from bench.grid import Cell, Grid, GridError, load_grid, make_grid, streams
from bench.runner import RunResult, run_cell, run_grid
from bench.scenario import Scenario, run_scenario

__version__ = "0.1.0"

__all__ = [
    "Cell",
    "Deadlock",
    "Distribution",
    "Grid",
    "GridError",
    "RunResult",
    "Scenario",
    "SpecError",
    "Stream",
    "VirtualEventLoop",
    "load_grid",
    "make_grid",
    "parse",
    "parse_clock",
    "run_cell",
    "run_grid",
    "run_scenario",
    "run_virtual",
    "streams",
]
