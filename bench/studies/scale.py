"""A sweep at scale on Dask: how long a grid of many cells takes, and whether the scheduler's and the
client's memory stay flat in the number of cells.

It starts a Dask scheduler and ``workers`` single-threaded workers as separate processes on this
machine, runs ``qbench run`` against them (``--executor dask --scheduler ...``, recurrence engine,
``--record summary``) on a grid of ``cells`` cells of ``items`` items each (worker counts 1..100 by
service means 0.50..1.49 s, Poisson arrivals at 1/s: stable and overloaded cells alike), and reads
the peak resident memory (``VmHWM``) of the scheduler and of the client from ``/proc`` when they
end. Then it times ``qbench report`` on the result. Each size is a row of ``results/perf/scale.json``.

Run ``python -m bench.studies.scale 100 10000`` (cells per run; ``--items N``, ``--workers W``).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

__all__ = ["grid_text", "scale_run"]


def grid_text(cells: int, items: int) -> str:
    """A grid file of ``cells`` cells (a multiple of 100, at most 10,000) of ``items`` items each."""
    if cells % 100 or not 100 <= cells <= 10_000:
        raise ValueError("cells must be a multiple of 100 between 100 and 10,000")
    services = [f"exp:{0.5 + k / 100:.2f}" for k in range(cells // 100)]
    return (f"workers = {list(range(1, 101))}\narrival = [\"exp:1\"]\nservice = {json.dumps(services)}\n"
            f"items = {items}\nreplications = 1\nseed = 1\nengine = \"recurrence\"\nrecord = \"summary\"\n")  # fmt: skip


def _peak_rss_mb(pid: int) -> float:
    """The peak resident set of a live process, MB (``VmHWM``)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def _dask(*args: str) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "distributed.cli.dask_" + args[0], *args[1:]],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # fmt: skip


def scale_run(cells: int, items: int, workers: int, folder: Path, report: bool = True) -> dict:
    """One sweep on a fresh scheduler and workers; its timings and peak memories (and the report's
    time, unless ``report`` is False)."""
    port = 8786 + os.getpid() % 1000
    scheduler = _dask("scheduler", "--port", str(port), "--dashboard-address", ":0", "--no-show")
    address = f"tcp://127.0.0.1:{port}"
    pool = [_dask("worker", address, "--nthreads", "1", "--nworkers", "1", "--no-dashboard", "--memory-limit", "0")
            for _ in range(workers)]  # fmt: skip
    try:
        time.sleep(4.0)  # the scheduler listens and the workers register
        grid = folder / "grid.toml"
        grid.write_text(grid_text(cells, items))
        out = folder / "run"
        command = [sys.executable, "-m", "bench", "run", str(grid), "--out", str(out), "--executor", "dask",
                   "--scheduler", address, "--no-progress", "--no-summary"]  # fmt: skip
        probe = ("import atexit, runpy, sys; from pathlib import Path\n"
                 "atexit.register(lambda: print('VmHWM', [l for l in Path('/proc/self/status').read_text()"
                 ".splitlines() if l.startswith('VmHWM')][0].split()[1]))\n"
                 f"sys.argv = {['qbench', *command[3:]]!r}\nrunpy.run_module('bench', run_name='__main__')\n")  # fmt: skip
        start = time.perf_counter()
        done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True)
        run_seconds = time.perf_counter() - start
        if done.returncode:
            raise RuntimeError(done.stderr.strip().splitlines()[-1] if done.stderr.strip() else "qbench run failed")
        client_mb = int(done.stdout.split("VmHWM")[-1].split()[0]) / 1024
        scheduler_mb = _peak_rss_mb(scheduler.pid)
        report_seconds = _report_seconds(out) if report else float("nan")
        size = sum(f.stat().st_size for f in out.rglob("*") if f.is_file() and "report" not in f.parts)
    finally:
        for process in [*pool, scheduler]:
            process.send_signal(signal.SIGINT)
        for process in [*pool, scheduler]:
            try:
                process.wait(10)
            except subprocess.TimeoutExpired:
                process.kill()
    return {"cells": cells, "items_per_cell": items, "items": cells * items, "dask_workers": workers,
            "run_seconds": round(run_seconds, 1), "seconds_per_cell": round(run_seconds / cells, 4),
            "items_per_second": round(cells * items / run_seconds), "client_peak_rss_mb": round(client_mb, 1),
            "scheduler_peak_rss_mb": round(scheduler_mb, 1), "report_seconds": round(report_seconds, 1),
            "folder_mb": round(size / 1e6, 1)}  # fmt: skip


def _report_seconds(out: Path) -> float:
    """Seconds ``qbench report`` takes on the run folder ``out``."""
    start = time.perf_counter()
    done = subprocess.run([sys.executable, "-m", "bench", "report", str(out)], capture_output=True, text=True)
    if done.returncode:
        raise RuntimeError(done.stderr.strip().splitlines()[-1])
    return time.perf_counter() - start


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.studies.scale", description=__doc__.split("\n\n")[0],
                                     epilog="example: python -m bench.studies.scale 100 10000 --items 100000")  # fmt: skip
    parser.add_argument("cells", type=int, nargs="+", help="cells per run (multiples of 100, up to 10,000)")
    parser.add_argument("--items", type=int, default=100_000, help="items per cell (default 100,000)")
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 1, help="Dask workers (default: cores)")
    parser.add_argument("--keep", type=Path, help="keep the last run's folder here")
    parser.add_argument("--no-report", action="store_true", help="do not time qbench report on the result")
    args = parser.parse_args(argv)
    rows = []
    for cells in args.cells:
        with tempfile.TemporaryDirectory() as tmp:
            row = scale_run(cells, args.items, args.workers, Path(tmp), not args.no_report)
            print(json.dumps(row), flush=True)
            rows.append(row)
            if args.keep:
                shutil.rmtree(args.keep, ignore_errors=True)
                shutil.copytree(Path(tmp) / "run", args.keep)
    out = Path("results/perf")
    out.mkdir(parents=True, exist_ok=True)
    (out / "scale.json").write_text(json.dumps(rows, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
