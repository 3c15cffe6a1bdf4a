"""A cell task that kills its worker process for one cell.

Spawned worker processes import it by its name, ``support.crashing_task``: keep it at module level.
"""

from __future__ import annotations

import os

from bench.runner import run_cell

CRASH_CELL = 1


def crash_on_one_cell(run, grid, cell, progress=None):
    """Run the cell, except that cell ``CRASH_CELL`` ends its worker process abruptly."""
    if cell.id == CRASH_CELL:
        os._exit(3)
    return run_cell(run, grid, cell, progress)
