"""Bounded memory: the peak RSS of one stable cell at 500k and 5M items, each in a fresh process.

``qbench perf --rss`` runs :func:`rss_study`: for each engine and size it starts
``python -m bench.studies.rss ENGINE ITEMS``, whose :func:`measure` runs one M/M/1 cell (rho = 0.8)
through :func:`bench.runner.run_cell` into a temporary results folder (parquet written, so the
store is included) and prints one JSON line with its wall time, status, parquet size and peak RSS
(``ru_maxrss`` of that process). Results go to ``OUT/rss.json`` with the large-to-small ratio per
engine: near 1 when memory does not grow with the number of items.
"""

from __future__ import annotations

import json
import resource
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

__all__ = ["SIZES", "measure", "rss_study"]

#: Items per cell: the small and the large size.
SIZES = (500_000, 5_000_000)


def measure(engine: str, items: int) -> dict:
    """Run the cell once in this process and return its figures (peak RSS of this process)."""
    from bench.grid import make_grid
    from bench.runner import create_run, run_cell

    grid = make_grid({"workers": [1], "arrival": "exp:1.25", "service": "exp:1", "items": items, "seed": 1,
                      "engine": engine})  # fmt: skip
    with tempfile.TemporaryDirectory() as tmp:
        run = Path(tmp) / "run"
        create_run(run, grid)
        start = time.perf_counter()
        rows = run_cell(run, grid, grid.cells()[0])
        wall = time.perf_counter() - start
        size = sum(p.stat().st_size for p in run.rglob("*.parquet"))
    return {"engine": engine, "items": items, "status": rows[0]["status"], "wall_seconds": round(wall, 2),
            "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
            "parquet_mb": round(size / 2**20, 1)}  # fmt: skip


def rss_study(out: Path | None = None, engines: Sequence[str] = ("recurrence", "asyncio"),
              sizes: Sequence[int] = SIZES) -> list[dict]:  # fmt: skip
    """Measure every (engine, size) in a fresh process; write ``out/rss.json`` when ``out`` is given."""
    rows = []
    for engine in engines:
        for items in sizes:
            done = subprocess.run([sys.executable, "-m", "bench.studies.rss", engine, str(items)], capture_output=True,
                                  text=True, check=True)  # fmt: skip
            rows.append(json.loads(done.stdout.strip().splitlines()[-1]))
            print(json.dumps(rows[-1]), file=sys.stderr, flush=True)
    for engine in engines:
        small, large = (next(r for r in rows if r["engine"] == engine and r["items"] == n) for n in sizes)
        rows.append({"engine": engine, "ratio_large_to_small": round(large["peak_rss_mb"] / small["peak_rss_mb"], 3)})
    if out is not None:
        out.mkdir(parents=True, exist_ok=True)
        (out / "rss.json").write_text(json.dumps(rows, indent=2) + "\n")
    return rows


if __name__ == "__main__":
    print(json.dumps(measure(sys.argv[1], int(sys.argv[2]))))
