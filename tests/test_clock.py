"""The virtual-time loop: asyncio semantics, determinism, precision, deadlock and executor work."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import threading
import time

import pytest

from bench.grid import parse_clock
from bench.loop import Deadlock, VirtualEventLoop, run_virtual


def test_time_starts_at_zero_and_jumps_to_the_next_timer():
    async def main():
        loop = asyncio.get_running_loop()
        start = loop.time()
        await asyncio.sleep(3600)
        return start, loop.time()

    wall = time.perf_counter()
    assert run_virtual(main()) == (0.0, 3600.0)
    assert time.perf_counter() - wall < 5  # an hour of model time, no real waiting (not a timing test: 700x slack)


def test_twelve_call_at_with_one_deadline_run_in_scheduling_order():
    async def main():
        loop = asyncio.get_running_loop()
        order: list[int] = []
        for i in range(12):
            loop.call_at(5.0, order.append, i)
        await asyncio.sleep(10)
        return order

    assert run_virtual(main()) == list(range(12))


def test_equal_deadlines_keep_order_across_call_later_and_call_at():
    async def main():
        loop = asyncio.get_running_loop()
        order: list[str] = []
        loop.call_later(2.0, order.append, "later-a")
        loop.call_at(2.0, order.append, "at-b")
        loop.call_later(2.0, order.append, "later-c")
        loop.call_later(1.0, order.append, "first")
        await asyncio.sleep(3)
        return order

    assert run_virtual(main()) == ["first", "later-a", "at-b", "later-c"]


def test_ready_callbacks_run_before_timers_that_fall_due():
    async def main():
        loop = asyncio.get_running_loop()
        order: list[str] = []
        loop.call_later(0, order.append, "timer")
        loop.call_soon(order.append, "soon")
        await asyncio.sleep(1)
        return order

    assert run_virtual(main()) == ["soon", "timer"]


def test_callbacks_scheduled_during_an_iteration_run_in_the_next_one():
    async def main():
        loop = asyncio.get_running_loop()
        order: list[str] = []

        def first():
            order.append("first")
            loop.call_soon(order.append, "child")

        loop.call_soon(first)
        loop.call_soon(order.append, "second")
        await asyncio.sleep(0.5)
        return order

    assert run_virtual(main()) == ["first", "second", "child"]


def test_wait_for_times_out_exactly_at_its_deadline():
    async def main():
        loop = asyncio.get_running_loop()
        await asyncio.sleep(7.25)
        with pytest.raises(TimeoutError):
            await asyncio.wait_for(asyncio.sleep(100), timeout=2.5)
        return loop.time()

    assert run_virtual(main()) == 9.75


def test_timeout_context_cancels_exactly_at_its_deadline():
    async def main():
        loop = asyncio.get_running_loop()
        with pytest.raises(TimeoutError):
            async with asyncio.timeout(4):
                await asyncio.sleep(10)
        return loop.time()

    assert run_virtual(main()) == 4.0


def test_tiny_sleep_does_not_freeze_the_clock():
    async def main():
        loop = asyncio.get_running_loop()
        for _ in range(1000):
            await asyncio.sleep(1e-10)
        await asyncio.sleep(1e-3)
        return loop.time()

    assert run_virtual(main()) == pytest.approx(1e-3, abs=1e-9)


@pytest.mark.parametrize("start", [0.0, 1e7, 1e9])
def test_a_millisecond_is_a_millisecond_at_any_time(start):
    async def main():
        loop = asyncio.get_running_loop()
        await asyncio.sleep(start)
        before = loop.time_ns()
        await asyncio.sleep(0.001)
        after = loop.time_ns()
        await asyncio.sleep(0.001)
        return before, after, loop.time_ns()

    before, after, last = run_virtual(main())
    assert before == round(start * 1e9)
    assert after - before == 1_000_000
    assert last - after == 1_000_000


def test_deadlock_is_raised_at_once_naming_the_blocked_tasks():
    async def main():
        queue: asyncio.Queue[int] = asyncio.Queue()

        async def consumer():
            await queue.get()

        asyncio.create_task(consumer(), name="consumer-7")
        await asyncio.sleep(2)
        await queue.get()

    wall = time.perf_counter()
    with pytest.raises(Deadlock, match=r"t=2s.*consumer-7"):
        run_virtual(main())
    assert time.perf_counter() - wall < 5


def test_awaiting_a_future_nobody_sets_is_a_deadlock():
    loop = VirtualEventLoop()
    try:
        with pytest.raises(Deadlock):
            loop.run_until_complete(loop.create_future())
    finally:
        loop.close()


def test_executor_work_takes_zero_virtual_time_and_is_no_deadlock():
    def slow(x):
        time.sleep(0.05)
        return x * 2

    async def main():
        loop = asyncio.get_running_loop()
        await asyncio.sleep(1)
        results = await asyncio.gather(loop.run_in_executor(None, slow, 3), asyncio.to_thread(slow, 4))
        return results, loop.time()

    assert run_virtual(main()) == ([6, 8], 1.0)


def test_executor_work_finishes_before_the_clock_moves_on():
    order: list[str] = []

    async def main():
        loop = asyncio.get_running_loop()
        loop.call_later(0.001, order.append, "timer")
        await loop.run_in_executor(None, lambda: (time.sleep(0.05), order.append("job")))
        await asyncio.sleep(1)

    run_virtual(main())
    assert order == ["job", "timer"]


def test_call_soon_threadsafe_from_a_thread_wakes_the_loop():
    async def main():
        loop = asyncio.get_running_loop()
        future = loop.create_future()

        def work():
            time.sleep(0.02)
            loop.call_soon_threadsafe(future.set_result, "from thread")

        await loop.run_in_executor(None, work)
        return await future

    assert run_virtual(main()) == "from thread"


def test_asyncio_runner_accepts_the_loop_factory():
    with asyncio.Runner(loop_factory=VirtualEventLoop) as runner:
        assert runner.run(asyncio.sleep(5, result="done")) == "done"
        assert runner.get_loop().time() == 5.0


def test_synchronisation_primitives_work_in_virtual_time():
    async def main():
        loop = asyncio.get_running_loop()
        log: list[tuple[str, float]] = []
        event, lock, sem = asyncio.Event(), asyncio.Lock(), asyncio.Semaphore(2)
        cond = asyncio.Condition()

        async def holder(name, hold):
            async with sem:
                async with lock:
                    await asyncio.sleep(hold)
                    log.append((name, loop.time()))

        async def waiter():
            await event.wait()
            log.append(("event", loop.time()))
            async with cond:
                await cond.wait_for(lambda: len(log) >= 3)
                log.append(("cond", loop.time()))

        async def notifier():
            await asyncio.sleep(10)
            async with cond:
                cond.notify_all()

        async with asyncio.TaskGroup() as group:
            group.create_task(waiter())
            group.create_task(holder("a", 1))
            group.create_task(holder("b", 2))
            group.create_task(notifier())
            loop.call_later(0.5, event.set)
        return log

    assert run_virtual(main()) == [("event", 0.5), ("a", 1.0), ("b", 3.0), ("cond", 10.0)]


@pytest.mark.parametrize("kind", [asyncio.Queue, asyncio.LifoQueue, asyncio.PriorityQueue])
def test_queues_deliver_in_their_order(kind):
    async def main():
        queue = kind()
        for value in (3, 1, 2):
            await queue.put(value)
        got = []
        while not queue.empty():
            got.append(await queue.get())
        return got

    expected = {asyncio.Queue: [3, 1, 2], asyncio.LifoQueue: [2, 1, 3], asyncio.PriorityQueue: [1, 2, 3]}
    assert run_virtual(main()) == expected[kind]


def test_cancelled_timers_never_run_and_do_not_accumulate():
    async def main():
        loop = asyncio.get_running_loop()
        fired = []
        for i in range(10_000):
            loop.call_later(1 + i, fired.append, i).cancel()
        keep = loop.call_later(5, fired.append, "kept")
        await asyncio.sleep(0)
        await asyncio.sleep(20_000)
        return fired, keep.cancelled(), len(loop._timers)

    fired, cancelled, left = run_virtual(main())
    assert fired == ["kept"] and not cancelled
    assert left == 0


_TRACE_PROGRAM = """
import asyncio, hashlib, random
from bench.loop import run_virtual
async def main():
    rng = random.Random(5)
    loop = asyncio.get_running_loop()
    trace = []
    queue = asyncio.Queue()
    async def worker(name):
        while True:
            item = await queue.get()
            trace.append((round(loop.time(), 9), name, item))
            await asyncio.sleep(rng.choice([0.5, 1.0, 1.5]))
            queue.task_done()
    tasks = {asyncio.create_task(worker(n)) for n in ("w-a", "w-b", "w-c")}
    for i in range(300):
        await queue.put(i)
        await asyncio.sleep(rng.choice([0.25, 0.5]))
    await queue.join()
    for t in tasks: t.cancel()
    print(hashlib.sha256(repr(trace).encode()).hexdigest(), len(trace))
run_virtual(main())
"""


def test_event_trace_is_identical_under_any_hash_seed():
    outputs = set()
    for hash_seed in ("0", "1", "12345"):
        env = {**os.environ, "PYTHONHASHSEED": hash_seed}
        done = subprocess.run(
            [sys.executable, "-c", _TRACE_PROGRAM], env=env, capture_output=True, text=True, check=True
        )
        outputs.add(done.stdout)
    assert len(outputs) == 1
    assert outputs.pop().split()[1] == "300"


def test_event_trace_repeats_exactly_in_process():
    def trace():
        async def main():
            loop = asyncio.get_running_loop()
            seen = []
            for i in range(50):
                loop.call_later((i * 7) % 5, seen.append, i)
            await asyncio.sleep(10)
            return seen

        return run_virtual(main())

    first = trace()
    assert first == trace()
    assert first == sorted(range(50), key=lambda i: ((i * 7) % 5, i))


@pytest.mark.parametrize(
    ("spec", "scale"), [("virtual", None), ("real", 1.0), ("scaled:0.01", 0.01), ("SCALED:2", 2.0)]
)
def test_parse_clock(spec, scale):
    assert parse_clock(spec) == scale


@pytest.mark.parametrize("spec", ["", "fast", "scaled", "scaled:0", "scaled:-1", "scaled:x", "scaled:inf"])
def test_parse_clock_rejects_bad_specs(spec):
    with pytest.raises(ValueError, match="bad clock"):
        parse_clock(spec)


def test_loop_is_usable_from_a_plain_thread():
    result = []

    def target():
        result.append(run_virtual(asyncio.sleep(2, result=42)))

    thread = threading.Thread(target=target)
    thread.start()
    thread.join()
    assert result == [42]


def _sleep_on(cls) -> float:
    """Sleep 2.5 s on a loop of class ``cls``; return the loop's time after."""

    async def main():
        await asyncio.sleep(2.5)
        return asyncio.get_running_loop().time()

    with asyncio.Runner(loop_factory=cls) as runner:
        return runner.run(main())


def test_a_subclass_cannot_silently_lose_its_scheduling_override():
    from bench.loop import ACCELERATED, PyVirtualEventLoop

    if not ACCELERATED:
        pytest.skip("bench.loop._core is not built: VirtualEventLoop is the Python loop")
    with pytest.raises(TypeError, match="call_later.*PyVirtualEventLoop"):

        class Tracing(VirtualEventLoop):
            def call_later(self, delay, callback, *args, context=None):
                return super().call_later(delay, callback, *args, context=context)

    class Named(VirtualEventLoop):  # overriding anything else is fine
        def __repr__(self) -> str:
            return "<Named>"

    class PyTracing(PyVirtualEventLoop):
        def call_later(self, delay, callback, *args, context=None):
            return super().call_later(delay, callback, *args, context=context)

    for cls in (Named, PyTracing):
        assert _sleep_on(cls) == 2.5


def test_the_loop_package_runs_on_its_own(tmp_path):
    """bench.loop imports only the standard library and its own modules: a renamed copy of it (with
    its C core, when built) runs a program with nothing else on the path, not even site-packages."""
    import shutil
    from pathlib import Path

    import bench.loop

    shutil.copytree(Path(bench.loop.__file__).parent, tmp_path / "vloop", ignore=shutil.ignore_patterns("__pycache__"))
    program = ("import asyncio, sys, vloop\nassert not [m for m in sys.modules if m.startswith('bench')]\n"
               "print(vloop.ACCELERATED, vloop.run_virtual(asyncio.sleep(5, result=7)))")  # fmt: skip
    out = subprocess.run([sys.executable, "-S", "-E", "-c", program], cwd=tmp_path, capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == [str(bench.loop.ACCELERATED), "7"]
