"""Executor jobs on the virtual loops: threads that call back into the loop (bench/loop/jobs.py).

Every program runs on the reference loop, the pure-Python loop and (when built) the C loop, several
times each: all must give the same results, virtual times included, on every run.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import multiprocessing
import random
import subprocess
import sys
import textwrap
import threading
import time

import pytest

from bench.loop import ACCELERATED, Deadlock, PyVirtualEventLoop, ReferenceVirtualEventLoop, VirtualEventLoop

LOOPS = (ReferenceVirtualEventLoop, PyVirtualEventLoop, VirtualEventLoop) if ACCELERATED else (
    ReferenceVirtualEventLoop, PyVirtualEventLoop)  # fmt: skip
#: runs of each program on each loop: virtual times must not depend on how the threads were scheduled
RUNS = 3


def _run(loop_cls, main):
    with asyncio.Runner(loop_factory=loop_cls) as runner:
        return runner.run(main())


def _every_loop(main, runs=RUNS):
    """Run ``main()`` ``runs`` times on every loop; every result must equal the reference's first."""
    results = [(cls.__name__, _run(cls, main)) for cls in LOOPS for _ in range(runs)]
    expected = results[0][1]
    for name, result in results[1:]:
        assert result == expected, name
    return expected


async def _add(a, b, delay=0.05):
    await asyncio.sleep(delay)
    return a + b


_ISSUE_PROGRAM = """
import asyncio
from bench import run_virtual

async def add(a, b):
    await asyncio.sleep(0.05)
    return a + b

async def main():
    loop = asyncio.get_running_loop()
    def blocking():  # sync code in a thread that calls back into the loop
        return asyncio.run_coroutine_threadsafe(add(1, 2), loop).result()
    print(await asyncio.to_thread(blocking), loop.time())

run_virtual(main())
"""


@pytest.mark.parametrize("loop_name", [cls.__name__ for cls in LOOPS])
def test_the_issue_program_prints_3_and_the_sleeps_virtual_time(loop_name):
    """The program of the issue, as a user would run it (in a subprocess, so a hang fails the test)."""
    program = _ISSUE_PROGRAM.replace(
        "from bench import run_virtual",
        f"from bench.loop import {loop_name}\n"
        f"def run_virtual(main):\n    with asyncio.Runner(loop_factory={loop_name}) as r:\n        return r.run(main)",
    )
    if loop_name == "VirtualEventLoop":
        program = _ISSUE_PROGRAM  # bench.run_virtual itself
    done = subprocess.run([sys.executable, "-c", program], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout == "3 0.05\n"


def test_a_coroutine_run_from_a_thread_takes_exactly_its_virtual_time():
    async def main():
        loop = asyncio.get_running_loop()
        await asyncio.sleep(1)

        def blocking():
            return asyncio.run_coroutine_threadsafe(_add(1, 2), loop).result(), loop.time()

        return await asyncio.to_thread(blocking), loop.time()

    assert _every_loop(main) == ((3, 1.05), 1.05)


def test_the_coroutine_raising_reaches_the_thread_and_the_caller():
    async def boom():
        await asyncio.sleep(0.5)
        raise ValueError("boom")

    async def main():
        loop = asyncio.get_running_loop()
        with pytest.raises(ValueError, match="boom"):
            await asyncio.to_thread(lambda: asyncio.run_coroutine_threadsafe(boom(), loop).result())
        return loop.time()

    assert _every_loop(main) == 0.5


def test_the_coroutine_cancelled_on_the_loop_cancels_the_threads_wait():
    async def main():
        loop = asyncio.get_running_loop()
        started = asyncio.Event()
        victim: list[asyncio.Task] = []

        async def sleeper():
            victim.append(asyncio.current_task())
            started.set()
            await asyncio.sleep(10)

        async def canceller():
            await started.wait()
            await asyncio.sleep(1)
            victim[0].cancel()

        canceller_task = asyncio.create_task(canceller())
        with pytest.raises(asyncio.CancelledError):
            await asyncio.to_thread(lambda: asyncio.run_coroutine_threadsafe(sleeper(), loop).result())
        await canceller_task
        return loop.time()

    assert _every_loop(main) == 1.0


def test_the_thread_cancelling_its_future_cancels_the_coroutine():
    async def main():
        loop = asyncio.get_running_loop()
        seen = {}

        async def slow():
            try:
                await asyncio.sleep(10)
            except asyncio.CancelledError:
                seen["cancelled at"] = loop.time()
                raise

        def blocking():
            future = asyncio.run_coroutine_threadsafe(slow(), loop)
            asyncio.run_coroutine_threadsafe(asyncio.sleep(2), loop).result()  # wait 2 virtual s
            return future.cancel()

        cancelled = await asyncio.to_thread(blocking)
        await asyncio.sleep(0)
        return cancelled, loop.time(), seen

    assert _every_loop(main) == (True, 2.0, {"cancelled at": 2.0})


def test_future_result_timeout_counts_in_virtual_time():
    """``result(timeout=0.25)`` on a coroutine that needs 10 s: TimeoutError at t = 0.25, as under
    asyncio.run, however long the loop takes in real time to get there."""

    async def main():
        loop = asyncio.get_running_loop()
        seen = {}

        async def slow():
            try:
                await asyncio.sleep(10)
            except asyncio.CancelledError:
                seen["cancelled at"] = loop.time()
                raise

        def blocking():
            future = asyncio.run_coroutine_threadsafe(slow(), loop)
            try:
                return future.result(timeout=0.25)
            except TimeoutError:
                timed_out_at = loop.time()
                future.cancel()
                return "timed out", timed_out_at

        result = await asyncio.to_thread(blocking)
        await asyncio.sleep(0)
        return result, loop.time(), seen

    assert _every_loop(main) == (("timed out", 0.25), 0.25, {"cancelled at": 0.25})


def test_future_result_in_time_keeps_no_timer_behind():
    """A result that comes before the timeout: the timeout's timer is dropped, so a later deadlock
    is found where it happens, not at the dead timeout."""

    async def main():
        loop = asyncio.get_running_loop()
        await asyncio.to_thread(lambda: asyncio.run_coroutine_threadsafe(_add(2, 3), loop).result(timeout=60))
        await asyncio.Event().wait()

    for cls in LOOPS:
        with pytest.raises(Deadlock, match=r"t=0\.05s"):
            _run(cls, main)


def test_several_threads_at_once_each_wait_exactly():
    async def main():
        loop = asyncio.get_running_loop()

        def job(i):
            total = sum(asyncio.run_coroutine_threadsafe(_add(i, k, 0.1 * (i + 1)), loop).result() for k in range(3))
            return total, loop.time()

        async def ticker():
            ticks = []
            for _ in range(5):
                await asyncio.sleep(0.07)
                ticks.append(loop.time())
            return ticks

        results = await asyncio.gather(*(asyncio.to_thread(job, i) for i in range(4)), ticker())
        return results, loop.time()

    (*jobs, ticks), end = _every_loop(main)
    assert jobs == [(3 * i + 3, pytest.approx(0.3 * (i + 1))) for i in range(4)]
    assert ticks == pytest.approx([0.07, 0.14, 0.21, 0.28, 0.35])
    assert end == pytest.approx(1.2)


def test_a_job_that_does_nothing_with_the_loop_takes_zero_virtual_time_among_waiting_ones():
    """A computing job holds the clock, even while other jobs wait on the loop and timers are due."""

    async def main():
        loop = asyncio.get_running_loop()
        woke = []

        async def sleeper():
            await asyncio.sleep(0.001)
            woke.append(loop.time())

        def compute():
            time.sleep(0.05)  # real time, and no call into the loop
            return sum(range(1000)), loop.time()

        def waits_on_loop():
            return asyncio.run_coroutine_threadsafe(_add(1, 1, 0.5), loop).result()

        asyncio.create_task(sleeper())
        waiting = asyncio.ensure_future(asyncio.to_thread(waits_on_loop))
        computed = await asyncio.to_thread(compute)
        return computed, loop.time(), list(woke), await waiting, loop.time()

    assert _every_loop(main) == ((499500, 0.0), 0.0, [], 2, 0.5)


def test_a_job_that_hands_work_and_keeps_computing_still_takes_zero_virtual_time():
    async def main():
        loop = asyncio.get_running_loop()
        log = []

        async def ticker():
            for _ in range(3):
                await asyncio.sleep(0.01)
                log.append(("tick", loop.time()))

        ticking = asyncio.create_task(ticker())

        def job():
            loop.call_soon_threadsafe(log.append, ("handed", loop.time()))
            time.sleep(0.05)  # computing after handing work: the clock holds
            return loop.time()

        returned = await asyncio.to_thread(job)
        await ticking
        return returned, log

    assert _every_loop(main) == (0.0, [("handed", 0.0), ("tick", 0.01), ("tick", 0.02), ("tick", 0.03)])


def test_a_job_waiting_for_a_timer_without_handing_work_is_woken_by_it():
    """No other thread runs, so only the loop can wake the job: the clock moves to the timer."""

    async def main():
        loop = asyncio.get_running_loop()
        event = threading.Event()
        loop.call_later(1.5, event.set)
        return await asyncio.to_thread(event.wait), loop.time()

    assert _every_loop(main) == (True, 1.5)


def test_a_thread_of_no_pool_running_meanwhile_does_not_hold_the_clock():
    """Threads a program keeps (another event loop, a monitor) are not looked at: the job waiting
    for a timer is still woken by it."""
    stop = threading.Event()

    def spin():
        while not stop.is_set():
            time.sleep(0.001)

    spinner = threading.Thread(target=spin, daemon=True)
    spinner.start()
    try:

        async def main():
            loop = asyncio.get_running_loop()
            event = threading.Event()
            loop.call_later(2.5, event.set)
            return await asyncio.to_thread(event.wait), loop.time()

        assert _every_loop(main) == (True, 2.5)
    finally:
        stop.set()
        spinner.join()


def test_a_job_waiting_on_a_thread_of_its_own_holds_the_clock():
    """Blocked without having handed work while another thread computes for it: still busy."""

    async def main():
        loop = asyncio.get_running_loop()
        loop.call_later(0.001, lambda: None)

        def job():
            with concurrent.futures.ThreadPoolExecutor(1) as own:
                return own.submit(lambda: (time.sleep(0.05), loop.time())[1]).result(), loop.time()

        return await asyncio.to_thread(job)

    assert _every_loop(main) == (0.0, 0.0)


def test_jobs_queued_behind_a_full_pool_start_as_the_waiting_ones_finish():
    async def main():
        loop = asyncio.get_running_loop()
        with concurrent.futures.ThreadPoolExecutor(max_workers=1) as pool:

            def job(i):
                return asyncio.run_coroutine_threadsafe(_add(i, 0, 0.05), loop).result(), loop.time()

            return await asyncio.gather(*(loop.run_in_executor(pool, job, i) for i in range(3)))

    assert _every_loop(main) == [(0, 0.05), (1, 0.1), (2, 0.15)]


def test_a_job_outliving_its_caller_still_holds_the_clock_until_it_returns():
    async def main():
        loop = asyncio.get_running_loop()
        done = []

        def blocking():
            value = asyncio.run_coroutine_threadsafe(_add(1, 2, 0.5), loop).result()
            time.sleep(0.02)
            done.append(loop.time())
            return value

        with pytest.raises(TimeoutError):
            await asyncio.wait_for(asyncio.to_thread(blocking), 0.1)
        at_timeout = loop.time()
        await asyncio.sleep(1)
        return at_timeout, done, loop.time()

    assert _every_loop(main) == (0.1, [0.5], 1.1)


def test_a_real_time_timeout_with_nothing_else_to_do_is_waited_for():
    """Event.wait(timeout) counts real time: with no timer pending the loop waits it out (bounded),
    rather than raising Deadlock; the clock does not move."""

    async def main():
        loop = asyncio.get_running_loop()
        event = threading.Event()
        wall = time.perf_counter()
        got = await asyncio.to_thread(event.wait, 0.1)
        return got, loop.time(), time.perf_counter() - wall >= 0.1

    assert _every_loop(main, runs=1) == (False, 0.0, True)


def test_deadlock_names_the_job_waiting_on_the_loop():
    async def main():
        loop = asyncio.get_running_loop()
        await asyncio.sleep(2)

        def stuck_job():
            return asyncio.run_coroutine_threadsafe(asyncio.Event().wait(), loop).result()

        await asyncio.to_thread(stuck_job)

    messages = set()
    for cls in LOOPS:
        wall = time.perf_counter()
        with pytest.raises(Deadlock) as info:
            _run(cls, main)  # closing the runner cancels the coroutine, which frees the thread
        assert time.perf_counter() - wall < 5
        messages.add(str(info.value).split("blocked: ")[0])
        assert "stuck_job (thread asyncio_0, waiting at test_loop_executor.py:" in str(info.value)
    assert messages == {
        "deadlock at virtual t=2s: every task waits, no timer is pending and every executor job waits on the loop; "
    }


@pytest.mark.parametrize("loop_cls", LOOPS)
def test_deadlock_when_a_job_waits_after_handing_work_nobody_answers(loop_cls):
    loop = loop_cls()
    event = threading.Event()

    def job():
        loop.call_soon_threadsafe(lambda: None)
        event.wait()

    async def main():
        await loop.run_in_executor(None, job)

    try:
        with pytest.raises(Deadlock, match=r"executor jobs waiting: .*job \(thread"):
            loop.run_until_complete(main())
    finally:
        event.set()
        loop.run_until_complete(loop.shutdown_default_executor())
        loop.close()


def test_work_in_a_process_pool_is_waited_for_like_before():
    async def main():
        loop = asyncio.get_running_loop()
        spawn = multiprocessing.get_context("spawn")  # fork() from a threaded process is unsafe (3.12 warns)
        with concurrent.futures.ProcessPoolExecutor(1, mp_context=spawn) as pool:
            value = await loop.run_in_executor(pool, abs, -7)
        return value, loop.time()

    assert _every_loop(main, runs=1) == (7, 0.0)


def _threads_program(seed: int):
    """A random program of tasks and thread jobs that call back into the loop: it traces
    (virtual time, what) for every event, from tasks and from threads."""

    async def main():
        rng = random.Random(seed)
        loop = asyncio.get_running_loop()
        trace = []
        queue: asyncio.Queue = asyncio.Queue()
        delays = [0, 0.25, 0.5, 1.0, 1e-9]

        async def service(name, i, delay):
            await asyncio.sleep(delay)
            trace.append((loop.time(), "served", name, i))
            if delay == 1e-9:
                raise ValueError(i)
            return i

        def job(name, plan):
            got = []
            for i, (delay, timeout) in enumerate(plan):
                future = asyncio.run_coroutine_threadsafe(service(name, i, delay), loop)
                try:
                    got.append(future.result(timeout))
                except TimeoutError:
                    future.cancel()
                    got.append("timeout")
                except ValueError:
                    got.append("raised")
                loop.call_soon_threadsafe(queue.put_nowait, (name, i))
            return name, got, loop.time()

        async def consumer():  # takes no time: items that threads put at one instant may come in any order
            while True:
                item = await queue.get()
                trace.append((loop.time(), "got", *item))

        async def ticker(ticks):
            for k in range(ticks.randint(2, 6)):
                await asyncio.sleep(ticks.choice(delays[1:4]))
                trace.append((loop.time(), "tick", k))

        plans = [[(rng.choice(delays), rng.choice([None, None, 0.3, 5.0])) for _ in range(rng.randint(1, 4))]
                 for _ in range(rng.randint(1, 4))]  # fmt: skip
        consuming = asyncio.create_task(consumer())
        ticks = random.Random(seed + 1000)  # the ticker's own stream: draws in its own order
        results = await asyncio.gather(
            ticker(ticks), *(asyncio.to_thread(job, f"j{k}", p) for k, p in enumerate(plans))
        )
        trace.append((loop.time(), "jobs", tuple(results[1:])))
        consuming.cancel()
        # Events of one virtual instant may come in any order when a thread acts at that instant
        # (as under asyncio); their virtual times may not.
        return sorted(trace, key=repr)

    return main


@pytest.mark.parametrize("seed", range(12))
def test_random_thread_programs_give_the_same_virtual_times_on_every_loop_and_run(seed):
    trace = _every_loop(_threads_program(seed))
    assert [entry[1] for entry in trace].count("jobs") == 1 and len(trace) > 3


def test_the_clock_rule_holds_in_a_fresh_interpreter_with_the_issue_variants():
    """The variants, run as a program of their own, print the same on every run."""
    program = textwrap.dedent(
        """
        import asyncio
        from bench import run_virtual
        async def add(a, b, d):
            await asyncio.sleep(d)
            return a + b
        async def main():
            loop = asyncio.get_running_loop()
            def job(i):
                return asyncio.run_coroutine_threadsafe(add(i, i, 0.01 * (i + 1)), loop).result(), loop.time()
            print(await asyncio.gather(*(asyncio.to_thread(job, i) for i in range(5))), loop.time())
        run_virtual(main())
        """
    )
    outputs = {
        subprocess.run([sys.executable, "-c", program], capture_output=True, text=True, timeout=60, check=True).stdout
        for _ in range(3)
    }
    assert outputs == {"[(0, 0.01), (2, 0.02), (4, 0.03), (6, 0.04), (8, 0.05)] 0.05\n"}


def test_a_thread_program_gives_the_same_event_trace_in_order():
    """Jobs one after the other, each calling back several times, beside a ticker whose times never
    meet theirs: every event, from a task or a thread, comes in the same order on every loop."""

    async def main():
        loop = asyncio.get_running_loop()
        trace = []

        async def served(name, i, delay):
            loop.call_later(delay / 2, trace.append, (loop.time() + delay / 2, "half", name, i))
            await asyncio.sleep(delay)
            trace.append((loop.time(), "served", name, i))
            return i

        def job(name, delays):
            for i, delay in enumerate(delays):
                loop.call_soon_threadsafe(trace.append, (loop.time(), "asked", name, i))
                asyncio.run_coroutine_threadsafe(served(name, i, delay), loop).result()
            return name

        async def ticker():
            for k in range(12):
                await asyncio.sleep(0.07)
                trace.append((loop.time(), "tick", k))

        ticking = asyncio.create_task(ticker())
        for name, delays in (("a", [0.25, 0.5]), ("b", [0.125, 0.125, 0.25]), ("c", [0.0, 0.375])):
            done = await asyncio.to_thread(job, name, delays)
            trace.append((loop.time(), "job", done))
        await ticking
        return [(round(t, 9), *what) for t, *what in trace]

    trace = _every_loop(main)
    assert [what for _, what, *_ in trace].count("served") == 7
    assert (0.25, "served", "a", 0) in trace and trace[-1] == (1.625, "job", "c")
