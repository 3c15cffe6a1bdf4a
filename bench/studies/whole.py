"""Whole-process speed: what a user waits for, start-up and writing included, against SimPy.

Each benchmark is one whole command, started fresh, on M/M/2 (rho = 0.9) with 1,000,000 items and
one cell (``--jobs 1``): the SimPy script (:mod:`bench.studies.simpy_script`, recording every item
to lists), and ``qbench run`` on each engine, recording every item to parquet and, for the
``--record summary`` too (digests only). ``qbench run`` is run with ``--no-progress
--no-summary``: the table it prints at the end is the analysis, not the run. Each command runs
``repeats`` times in turn (interleaved, so drift in the machine's load hits every one alike); the
median wall time is reported with items/s and the ratio to the SimPy script. ``qbench perf`` runs
this after its pyperf benchmarks and adds the table to its output; ``qbench perf --whole`` runs it
alone.
"""

from __future__ import annotations

import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

__all__ = ["COMMANDS", "ITEMS", "whole_study"]

#: Items per command.
ITEMS = 1_000_000
#: The model, as qbench run flags.
_MODEL = ["--workers", "2", "--arrival", "exp:1", "--service", "exp:1.8", "--seed", "1", "--jobs", "1",
          "--no-progress", "--no-summary"]  # fmt: skip


def _qbench(*flags: str) -> list[str]:
    return [sys.executable, "-m", "bench", "run", "--out", "{out}", *_MODEL, "--items", "{items}", *flags]


#: Benchmark name -> command (``{out}`` and ``{items}`` are filled in); the SimPy script first.
COMMANDS: dict[str, list[str]] = {
    "simpy-script": [sys.executable, "-m", "bench.studies.simpy_script", "{items}", "1"],
    "qbench-recurrence-items": _qbench("--engine", "recurrence"),
    "qbench-asyncio-items": _qbench("--engine", "asyncio"),
    "qbench-recurrence-summary": _qbench("--engine", "recurrence", "--record", "summary"),
    "qbench-asyncio-summary": _qbench("--engine", "asyncio", "--record", "summary"),
}


def _supported(name: str) -> bool:
    """Whether this machine has what a benchmark needs (the SimPy script needs SimPy)."""
    if name == "simpy-script":
        try:
            import simpy  # noqa: F401
        except ImportError:
            return False
    return True


def _time(command: list[str], items: int) -> float:
    with tempfile.TemporaryDirectory() as tmp:
        filled = [part.replace("{out}", str(Path(tmp) / "run")).replace("{items}", str(items)) for part in command]
        start = time.perf_counter()
        subprocess.run(filled, check=True, capture_output=True)
        return time.perf_counter() - start


def whole_study(items: int = ITEMS, repeats: int = 3, out: Path | None = None, log=None) -> list[dict]:
    """Time every command ``repeats`` times (interleaved); return one row each with the median
    seconds, items/s and the ratio to the SimPy script, and write ``out/whole.json`` when given."""
    names = [n for n in COMMANDS if _supported(n)]
    times: dict[str, list[float]] = {n: [] for n in names}
    for _ in range(repeats):
        for name in names:
            times[name].append(_time(COMMANDS[name], items))
            if log:
                log(f"{name}: {times[name][-1]:.2f} s")
    rows = []
    base = statistics.median(times["simpy-script"]) if "simpy-script" in times else None
    for name in names:
        median = statistics.median(times[name])
        rows.append({"benchmark": f"whole/{name}", "items": items, "seconds": round(median, 3),
                     "items_per_s": round(items / median), "all_seconds": [round(t, 3) for t in times[name]],
                     "vs_simpy_script": round(base / median, 2) if base else None})  # fmt: skip
    if out is not None:
        out.mkdir(parents=True, exist_ok=True)
        (out / "whole.json").write_text(json.dumps(rows, indent=2) + "\n")
    return rows


def table(rows: list[dict]) -> str:
    """The rows as a plain-text table."""
    lines = [f"{'benchmark':<34} {'seconds':>8} {'items/s':>12} {'vs simpy-script':>16}"]
    for r in rows:
        ratio = f"{r['vs_simpy_script']:.2f}x" if r["vs_simpy_script"] else "-"
        lines.append(f"{r['benchmark']:<34} {r['seconds']:>8.2f} {r['items_per_s']:>12,} {ratio:>16}")
    return "\n".join(lines)


if __name__ == "__main__":
    rows = whole_study(int(sys.argv[1]) if len(sys.argv) > 1 else ITEMS, log=print)
    print(table(rows))
