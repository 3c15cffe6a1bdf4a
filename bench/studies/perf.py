"""The pyperf suite: the engines against SimPy, Ciw (and looptime) on the same models, in items/s.

Run it with ``make perf`` or ``qbench perf`` (``python -m bench.studies.perf`` is the same; pyperf options
such as ``--fast``, ``--rigorous``, ``-p``/``-n``/``-w`` and ``-o FILE`` pass through). It writes one
pyperf JSON file under ``results/perf/`` (comparable with ``python -m pyperf compare_to A.json
B.json``) and prints a table of items/s and ratios.

Benchmarks (every value is one whole replication; pyperf reports seconds per item, and the
table shows items/s = 1 / mean):

* ``<model>/<engine>`` for the models ``mm1`` (M/M/1, ρ = 0.8), ``mm2`` (M/M/2, ρ = 0.9) and
  ``seed`` (``const:1`` arrivals, ``uniform:0:5`` service, 2 workers) and the engines
  - ``asyncio``: bench/scenario.py on :class:`~bench.loop.VirtualEventLoop`, recording every item
    and depth change into a :class:`~bench.recorder.Recorder` whose sink is the streaming
    :class:`~bench.replication_stats.ReplicationStats` (parquet writing is left out: the peers do not write files);
  - ``asyncio-py``: the same with the pure-Python fallback (:class:`~bench.loop.PyVirtualEventLoop`
    and the recorder's :class:`~bench.recorder.PyLog`), what runs where no C compiler was found at
    install time (mm2 only);
  - ``asyncio-ref``: the same on :class:`~bench.loop.ReferenceVirtualEventLoop` (mm2 only);
  - ``recurrence``: bench/recurrence.py with the same sink;
  - ``simpy-store`` / ``simpy-resource``: the same pusher/puller model written for SimPy with a
    ``Store`` (the pusher/puller shape) and with a ``Resource`` (the idiomatic M/M/c), keeping each
    item's put, get and done times in lists;
  - ``ciw``: the same queue in Ciw (its own records), fewer items (it is slow);
  - ``looptime``: the asyncio scenario on looptime's fake-clock loop (no-op cycles off), when
    ``import looptime`` works. It is not in the ``perf`` extra because its pytest plugin breaks
    this project's test run; to include it, install it out of the venv and point PYTHONPATH at it:
    ``pip install --target /tmp/looptime looptime && PYTHONPATH=/tmp/looptime qbench perf``.
* ``queue/<loop>/<n>c``: raw ``asyncio.Queue`` put/get throughput, one producer and n consumers,
  on asyncio's loop and on uvloop (``bench_async_func`` with ``loop_factory``).

Expensive set-up happens once, in the parent: the SimPy and Ciw models read pre-drawn arrival and
service times from ``results/perf/.cache/``; each worker process only loads them.

The defaults (2 processes x 3 values, 1 warm-up each; 200k items on mm2, the headline model,
50k on the others, an eighth of that for Ciw) keep ``make perf`` to a few minutes; ``--quick``
divides every item count by 10 (a smoke run), ``--rigorous`` gives pyperf's tighter settings.
``--rss`` instead measures the peak RSS of a 500k-item and a 5M-item cell (:mod:`bench.studies.rss`).

Every engine runs through its entry point (:func:`bench.replication.engine`); the options are
parsed once, by pyperf's own parser with this suite's ``--quick`` and ``--rss`` added.
"""

from __future__ import annotations

import asyncio
import datetime as _dt
import json
import os
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from bench.errors import InputError

__all__ = ["MODELS", "PerfError", "main", "items_per_second", "ratio_table"]

#: model name -> (workers, arrival spec, service spec, items)
MODELS: dict[str, tuple[int, str, str, int]] = {
    "mm1": (1, "exp:1.25", "exp:1", 50_000),
    "mm2": (2, "exp:1", "exp:1.8", 200_000),
    "seed": (2, "const:1", "uniform:0:5", 50_000),
}
#: engines that run fewer items than the model's count (they are slow), as a divisor
_SLOW = {"ciw": 8, "asyncio-py": 2, "asyncio-ref": 4, "looptime": 20}
_QUEUE_ITEMS = 20_000
_SEED = 0


def _items(model: str, engine: str, quick: bool) -> int:
    n = MODELS[model][3] // _SLOW.get(engine, 1)
    return max(n // 10, 1000) if quick else n


def _cell(model: str):
    from bench.distributions import parse
    from bench.grid import Cell

    workers, arrival, service, _ = MODELS[model]
    return Cell(0, workers, parse(arrival), parse(service), 0)


# -- the engines -----------------------------------------------------------------------------------


def _run_engine(model: str, n: int, name: str, **options: Any) -> float:
    """One replication of ``model`` on engine ``name`` (its entry point, with ``options``), recording
    every item and depth change into the streaming statistics; return its wall time."""
    from bench.grid import streams
    from bench.replication import engine
    from bench.replication_stats import ReplicationStats
    from bench.scenario import Scenario

    cell = _cell(model)
    scenario = Scenario(workers=cell.workers, arrival=cell.arrival, service=cell.service, items=n)
    start = time.perf_counter()
    stats = ReplicationStats(n)
    arrivals, services = streams(_SEED, cell, 0)
    done = engine(name)(scenario, arrivals, services, stats, **options)
    stats.finish(done.t_end)
    return time.perf_counter() - start


def _looptime_loop() -> asyncio.AbstractEventLoop:
    """asyncio's own loop on looptime's fake clock, no-op cycles off."""
    import looptime

    return looptime.new_event_loop(start=0.0, noop_cycles=0)


def _reference_loop() -> asyncio.AbstractEventLoop:
    from bench.loop import ReferenceVirtualEventLoop

    return ReferenceVirtualEventLoop()


def _draws(model: str, n: int) -> tuple[list[float], list[float]]:
    """The model's first n arrivals and services, from the cache the parent wrote."""
    path = _cache_path(model, n)
    with np.load(path) as data:
        return data["arrivals"].tolist(), data["services"].tolist()


def _run_simpy_store(model: str, n: int) -> float:
    import simpy  # noqa: F401 - imported before the clock starts, as the other peers are

    from bench.studies.simpy_script import simulate

    arrivals, services = _draws(model, n)
    start = time.perf_counter()
    simulate(n, MODELS[model][0], iter(services), iter(arrivals))
    return time.perf_counter() - start


def _run_simpy_resource(model: str, n: int) -> float:
    import simpy

    arrivals, services = _draws(model, n)
    workers = MODELS[model][0]
    start = time.perf_counter()
    env = simpy.Environment()
    servers = simpy.Resource(env, capacity=workers)
    t_put, t_get, t_done = [0.0] * n, [0.0] * n, [0.0] * n

    def customer(i):
        t_put[i] = env.now
        with servers.request() as request:
            yield request
            t_get[i] = env.now
            yield env.timeout(services[i])
        t_done[i] = env.now

    def source():
        for i in range(n):
            env.process(customer(i))
            if i < n - 1:
                yield env.timeout(arrivals[i])

    env.process(source())
    env.run()
    return time.perf_counter() - start


def _run_ciw(model: str, n: int) -> float:
    import ciw

    arrivals, services = _draws(model, n)
    workers = MODELS[model][0]
    start = time.perf_counter()
    network = ciw.create_network(
        arrival_distributions=[ciw.dists.Sequential(arrivals)],
        service_distributions=[ciw.dists.Sequential(services)],
        number_of_servers=[workers],
    )
    ciw.seed(_SEED)
    sim = ciw.Simulation(network)
    sim.simulate_until_max_customers(n, method="Finish")
    sim.get_all_records()
    return time.perf_counter() - start


_RUNNERS = {
    "asyncio": lambda model, n: _run_engine(model, n, "asyncio"),
    "asyncio-py": lambda model, n: _run_engine(model, n, "asyncio", accelerated=False),
    "asyncio-ref": lambda model, n: _run_engine(model, n, "asyncio", loop_factory=_reference_loop),
    "looptime": lambda model, n: _run_engine(model, n, "asyncio", loop_factory=_looptime_loop),
    "recurrence": lambda model, n: _run_engine(model, n, "recurrence"),
    "simpy-store": _run_simpy_store,
    "simpy-resource": _run_simpy_resource,
    "ciw": _run_ciw,
}


def _accelerators() -> dict[str, bool]:
    """Which optional C extension is built: its name -> the ``ACCELERATED`` flag of the module it speeds up."""
    from bench import loop, recorder, recurrence

    return {"bench.loop._core": loop.ACCELERATED, "bench._recorder": recorder.ACCELERATED,
            "bench._recurrence": recurrence.ACCELERATED}  # fmt: skip


def _time_func(loops: int, engine: str, model: str, n: int) -> float:
    run = _RUNNERS[engine]
    return sum(run(model, n) for _ in range(loops))


# -- raw queue throughput ----------------------------------------------------------------------------


async def _queue_throughput(n: int, consumers: int) -> None:
    queue: asyncio.Queue = asyncio.Queue()

    async def consume():
        get, done = queue.get, queue.task_done
        while True:
            await get()
            done()

    tasks = [asyncio.create_task(consume()) for _ in range(consumers)]
    put = queue.put
    for i in range(n):
        await put(i)
        if not i % 64:
            await asyncio.sleep(0)  # let the consumers run, like a producer with real work
    await queue.join()
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)


# -- set-up, the table, the entry point --------------------------------------------------------------


def _cache_dir() -> Path:
    return Path(os.environ.get("QBENCH_PERF_CACHE", "results/perf/.cache"))


def _cache_path(model: str, n: int) -> Path:
    return _cache_dir() / f"{model}-{n}.npz"


def _prepare(plan: list[tuple[str, str, int]]) -> None:
    """Draw the peers' arrivals and services once (the same streams the engines read)."""
    from bench.grid import streams

    _cache_dir().mkdir(parents=True, exist_ok=True)
    for model, engine, n in plan:
        path = _cache_path(model, n)
        if engine.startswith(("simpy", "ciw")) and not path.exists():
            arrivals, services = streams(_SEED, _cell(model), 0)
            np.savez(path, arrivals=arrivals.take(n), services=services.take(n))


def _available(engine: str) -> bool:
    module = {"simpy-store": "simpy", "simpy-resource": "simpy", "ciw": "ciw", "looptime": "looptime"}.get(engine)
    if module is None:
        return True
    try:
        __import__(module)
    except ImportError:
        return False
    return True


def _plan(quick: bool) -> list[tuple[str, str, int]]:
    plan = []
    for model in MODELS:
        engines = ["asyncio", "recurrence", "simpy-store", "simpy-resource", "ciw", "looptime"]
        if model == "mm2":
            engines[1:1] = ["asyncio-py", "asyncio-ref"]
        for engine in engines:
            if _available(engine):
                plan.append((model, engine, _items(model, engine, quick)))
    return plan


def items_per_second(benchmark: Any) -> float:
    """items/s of a pyperf benchmark whose values are seconds per item."""
    return 1.0 / benchmark.mean()


def ratio_table(rates: dict[str, float]) -> str:
    """A plain-text table: per model, items/s of each engine and its ratio to SimPy Store / asyncio."""
    lines = [f"{'benchmark':<24} {'items/s':>12} {'vs simpy-store':>15} {'vs asyncio':>11}"]
    for model in MODELS:
        store = rates.get(f"{model}/simpy-store")
        ours = rates.get(f"{model}/asyncio")
        for name, rate in rates.items():
            if not name.startswith(model + "/"):
                continue
            vs_store = f"{rate / store:.2f}x" if store else "-"
            vs_ours = f"{rate / ours:.2f}x" if ours else "-"
            lines.append(f"{name:<24} {rate:>12,.0f} {vs_store:>15} {vs_ours:>11}")
    queue = {k: v for k, v in rates.items() if k.startswith("queue/")}
    for name, rate in queue.items():
        base = queue.get(name.replace("/uvloop/", "/asyncio/"))
        lines.append(f"{name:<24} {rate:>12,.0f} {'-':>15} {f'{rate / base:.2f}x' if base else '-':>11}")
    return "\n".join(lines)


class PerfError(InputError):
    """A perf option that cannot be used (one line, exit status 2)."""


#: Bounds of the options: pyperf spawns --processes worker processes one after another.
_BOUNDS = {"processes": (1, 100), "values": (1, 1000), "warmups": (0, 100)}
_DEFAULTS = {"processes": 2, "values": 3}


def _runner(argv: list[str]):
    """A pyperf Runner holding this suite's options, with ``argv`` parsed (the only parse)."""
    import pyperf

    def forward(cmd, args):  # what pyperf's worker processes need of our options
        if args.quick:
            cmd.append("--quick")

    explicit = any(a in argv for a in ("--rigorous", "--fast", "-p", "--processes"))
    runner = pyperf.Runner(program_args=("-m", "bench.studies.perf"), add_cmdline_args=forward, loops=1, warmups=1,
                           **({} if explicit else _DEFAULTS))  # fmt: skip
    parser = runner.argparser
    parser.prog = "qbench perf"
    parser.add_argument("--quick", action="store_true", help="a tenth of the items (smoke run)")
    parser.add_argument("--rss", action="store_true", help="measure peak RSS of a 500k- and a 5M-item cell instead")
    parser.add_argument("--whole", action="store_true", help="only the whole-process benchmarks (1M items, vs SimPy)")

    def error(message: str):
        raise PerfError(message)

    parser.error = error
    try:
        args = runner.parse_args(argv)
        for name, (low, high) in _BOUNDS.items():
            value = getattr(args, name, None)
            if value is not None and not low <= value <= high:
                raise PerfError(f"--{name} must be in {low}..{high}, got {value}")
        if args.output and not Path(args.output).resolve().parent.is_dir():
            raise PerfError(f"--output {args.output!r}: its folder does not exist")
    except PerfError:
        pyperf.Runner._created.discard(id(pyperf.Runner))  # pyperf allows one Runner per process; this one never ran
        raise
    return runner


def main(argv: Sequence[str] | None = None) -> int:
    """Run the suite (or, with ``--rss``, the memory study); see the module docstring.

    Raises:
        PerfError: a bad option (``qbench perf`` prints it as one line).
    """
    argv = list(sys.argv[1:] if argv is None else argv)
    runner = _runner(argv)
    args = runner.args
    if args.rss:
        from bench.studies.rss import rss_study

        print(json.dumps(rss_study(Path("results/perf")), indent=2))
        return 0
    if args.whole:
        return _whole(args.quick)
    if not args.worker and not args.output:
        stamp = _dt.datetime.now().strftime("%Y%m%d-%H%M%S")
        Path("results/perf").mkdir(parents=True, exist_ok=True)
        args.output = f"results/perf/perf-{stamp}{'-quick' if args.quick else ''}.json"
    if not args.worker and not (args.quiet or args.verbose):
        args.quiet = True  # pyperf's stability warnings would bury the table (pass -v to see them)
    built = _accelerators()
    built_names = ", ".join(name for name, ok in built.items() if ok) or "none"
    plan = _plan(args.quick)
    if not args.worker:
        _prepare(plan)
        missing = ", ".join(name for name, ok in built.items() if not ok)
        print(f"qbench perf: {len(plan)} model benchmarks + raw queue throughput; output {args.output}", flush=True)
        print(f"qbench perf: C speed-ups built: {built_names}"
              + (f"; NOT built (no C compiler?), pure Python instead: {missing}" if missing else ""), flush=True)  # fmt: skip
    results = {}
    for model, engine, n in plan:
        name = f"{model}/{engine}"
        metadata = {"items": n, "unit_note": "seconds per item", "qbench_speedups": built_names}
        bench = runner.bench_time_func(name, _time_func, engine, model, n, inner_loops=n, metadata=metadata)
        if bench is not None:
            results[name] = items_per_second(bench)
    results.update(_queue_benchmarks(runner, args.quick))
    if not args.worker and results:
        table = ratio_table(results)
        print()
        print(table)
        Path(args.output).with_suffix(".txt").write_text(table + "\n")
        _whole(args.quick, Path(args.output).with_suffix(".whole.txt"))
    return 0


def _whole(quick: bool, text: Path | None = None) -> int:
    """The whole-process benchmarks (:mod:`bench.studies.whole`): printed, and kept beside the JSON."""
    from bench.studies.whole import ITEMS, table, whole_study

    print("\nqbench perf: whole process, one command each, 1M items (median of 3, interleaved):", flush=True)
    rows = whole_study(ITEMS // (10 if quick else 1), repeats=3, out=Path("results/perf"))
    print(table(rows))
    if text is not None:
        text.write_text(table(rows) + "\n")
    return 0


def _queue_benchmarks(runner: Any, quick: bool) -> dict[str, float]:
    """Raw asyncio.Queue throughput, 1 and 4 consumers, on asyncio's loop and on uvloop."""
    loops: list[tuple[str, Callable[[], asyncio.AbstractEventLoop] | None]] = [("asyncio", None)]
    try:
        import uvloop

        loops.append(("uvloop", uvloop.new_event_loop))
    except ImportError:
        pass
    n = _QUEUE_ITEMS // (10 if quick else 1)
    results = {}
    for loop_name, factory in loops:
        for consumers in (1, 4):
            name = f"queue/{loop_name}/{consumers}c"
            kwargs: dict[str, Any] = {"inner_loops": n}
            if factory is not None:
                kwargs["loop_factory"] = factory
            bench = runner.bench_async_func(name, _queue_throughput, n, consumers, **kwargs)
            if bench is not None:
                results[name] = items_per_second(bench)
    return results


if __name__ == "__main__":
    sys.exit(main())
