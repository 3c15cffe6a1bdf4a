"""How long ``qbench plan`` takes to answer, on each engine: the benchmark behind ``make plan-perf``.

It times the whole command as a user runs it (a fresh interpreter each time: imports, theory,
simulation, estimates and output) on one M/G/c plan, ``exp:1`` arrivals, ``lognormal:2.5:1.5``
service, ``wait_p99<=15`` (the README's example: 3 workers fail, 4 meet), several times per
engine, and prints the fastest and the median wall time with the answer. The aims: under 10 s
on the recurrence engine and under 2 minutes on the asyncio engine, on 2 cores. Results go to
``results/perf/plan-DATE.json``.

It runs the command line in a subprocess rather than importing the planner: studies are part of
``bench``, which does not import ``analysis`` (only ``bench/cli.py`` joins the two).
"""

from __future__ import annotations

import argparse
import datetime as _dt
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path

__all__ = ["PLAN", "main", "time_plan"]

#: The plan timed: one arrival, one service, a p99 target.
PLAN = ("--arrival", "exp:1", "--service", "lognormal:2.5:1.5", "--slo", "wait_p99<=15")
#: Runs per engine by default (the asyncio engine is slower: fewer runs).
_REPEATS = {"recurrence": 5, "asyncio": 2}
#: The aims, seconds.
AIMS = {"recurrence": 10.0, "asyncio": 120.0}


def time_plan(engine: str, extra: Sequence[str] = ()) -> tuple[float, dict]:
    """Run the plan once on ``engine`` in a fresh interpreter; return its wall seconds and JSON answer.

    Raises:
        RuntimeError: the command failed.
    """
    command = [sys.executable, "-m", "bench", "plan", *PLAN, "--engine", engine, "--format", "json", "--no-progress",
               *extra]  # fmt: skip
    start = time.perf_counter()
    done = subprocess.run(command, capture_output=True, text=True)
    wall = time.perf_counter() - start
    if done.returncode != 0:
        raise RuntimeError(f"qbench plan failed ({done.returncode}): {done.stderr.strip()[-500:]}")
    return wall, json.loads(done.stdout)


def main(argv: Sequence[str] | None = None) -> int:
    """Time the plan on each engine; print a table; write ``results/perf/plan-DATE.json``."""
    parser = argparse.ArgumentParser(prog="python -m bench.studies.plan_perf", description=__doc__.split("\n\n")[0])
    parser.add_argument("--engines", default="recurrence,asyncio", help="engines to time (default both)")
    parser.add_argument("--repeat", type=int, help="runs per engine (default 5 recurrence, 2 asyncio)")
    parser.add_argument("--items", type=int, help="items per replication (default: the plan's own choice)")
    parser.add_argument("--out", type=Path, default=Path("results/perf"), help="folder for the JSON")
    args = parser.parse_args(argv)
    extra = ["--items", str(args.items)] if args.items else []
    results = {}
    for engine in args.engines.split(","):
        runs = [time_plan(engine, extra) for _ in range(args.repeat or _REPEATS.get(engine, 3))]
        walls = [wall for wall, _ in runs]
        answer = runs[0][1]
        results[engine] = {"seconds": walls, "min": min(walls), "median": statistics.median(walls),
                           "aim": AIMS.get(engine), "workers": answer["workers"], "decided": answer["decided"],
                           "items_simulated": answer["spent"]["items"], "answer": answer["answer"]}  # fmt: skip
        print(f"{engine:<11} min {min(walls):7.2f} s  median {statistics.median(walls):7.2f} s  "
              f"(aim < {AIMS.get(engine, float('nan')):g} s; {len(walls)} runs; {answer['spent']['items']:,} items "
              f"simulated) -> {answer['answer']}")  # fmt: skip
    args.out.mkdir(parents=True, exist_ok=True)
    stamp = _dt.datetime.now().strftime("%Y%m%d-%H%M%S")
    path = args.out / f"plan-{stamp}.json"
    path.write_text(json.dumps({"plan": list(PLAN), "results": results, "python": platform.python_version(),
                                "cpus": os.cpu_count(), "machine": platform.machine()}, indent=2) + "\n")  # fmt: skip
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
