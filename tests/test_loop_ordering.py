"""The fast virtual loop against the reference one: the same programs give the same event traces."""

from __future__ import annotations

import asyncio
import contextvars
import random
import re
import sys

import numpy as np
import pytest

from bench.distributions import parse
from bench.grid import Cell
from bench.loop import ACCELERATED, Deadlock, PyVirtualEventLoop, ReferenceVirtualEventLoop, VirtualEventLoop
from bench.scenario import Scenario

#: the fast loops under test: the pure-Python one and, when the extension is built, the C one
FAST = (PyVirtualEventLoop, VirtualEventLoop) if ACCELERATED else (PyVirtualEventLoop,)
LOOPS = (ReferenceVirtualEventLoop, *FAST)


def _run(loop_cls, main, debug=False):
    with asyncio.Runner(loop_factory=loop_cls, debug=debug) as runner:
        return runner.run(main())


def _both(main, debug=False):
    """Run ``main()`` on the reference loop and on every fast loop; all results must be equal."""
    ref, *fast = (_run(cls, main, debug) for cls in LOOPS)
    for cls, result in zip(FAST, fast):
        assert result == ref, cls.__name__
    return ref


def _program(seed: int):
    """A random asyncio program that writes (time, what) to a trace: sleeps with ties, zero
    delays, call_soon / call_later / call_at, cancelled timers, queues, events, locks, semaphores,
    conditions, wait_for, timeout, gather and task groups."""

    async def main():
        rng = random.Random(seed)
        loop = asyncio.get_running_loop()
        trace = []

        def note(*what):
            trace.append((loop.time(), *what))

        delays = [0, 0, 0.25, 0.5, 0.5, 1.0, 1e-9, 3.0]
        queue = asyncio.Queue(rng.choice([0, 1, 3]))
        event = asyncio.Event()
        lock = asyncio.Lock()
        sem = asyncio.Semaphore(2)
        cond = asyncio.Condition()
        state = {"n": 0}

        async def producer(name):
            for i in range(rng.randint(5, 15)):
                await asyncio.sleep(rng.choice(delays))
                await queue.put((name, i))
                note("put", name, i, queue.qsize())
                if rng.random() < 0.3:
                    loop.call_soon(note, "soon", name, i)
                if rng.random() < 0.3:
                    loop.call_later(rng.choice(delays), note, "later", name, i)
                if rng.random() < 0.2:
                    h = loop.call_at(loop.time() + rng.choice(delays), note, "at", name, i)
                    if rng.random() < 0.5:
                        h.cancel()

        async def consumer(name):
            while True:
                item = await queue.get()
                note("get", name, item, queue.qsize())
                async with sem:
                    await asyncio.sleep(rng.choice(delays))
                async with lock:
                    state["n"] += 1
                    note("locked", name, state["n"])
                    await asyncio.sleep(rng.choice(delays[:3]))
                async with cond:
                    cond.notify_all()
                queue.task_done()

        async def watcher(name):
            async with cond:
                await cond.wait()
                note("notified", name)
            try:
                await asyncio.wait_for(event.wait(), rng.choice([0.5, 1.0, 100.0]))
                note("event", name)
            except TimeoutError:
                note("wait_for timeout", name)
            try:
                async with asyncio.timeout(rng.choice([0.25, 2.0])):
                    await asyncio.sleep(rng.choice([0.25, 1.0, 5.0]))
                note("in time", name)
            except TimeoutError:
                note("timeout", name)

        consumers = [asyncio.create_task(consumer(f"c{k}"), name=f"c{k}") for k in range(rng.randint(1, 4))]
        async with asyncio.TaskGroup() as tg:
            for k in range(rng.randint(1, 3)):
                tg.create_task(producer(f"p{k}"))
            for k in range(2):
                tg.create_task(watcher(f"w{k}"))
            tg.create_task(_setter(event, rng.choice(delays), note))
        await queue.join()
        results = await asyncio.gather(*(asyncio.sleep(d, result=d) for d in (0.5, 0, 0.5, 1e-9)))
        note("gathered", tuple(results))
        for task in consumers:
            task.cancel()
        await asyncio.gather(*consumers, return_exceptions=True)
        note("end")
        return trace

    return main


async def _setter(event, delay, note):
    await asyncio.sleep(delay * 3)
    event.set()
    note("set")


@pytest.mark.parametrize("seed", range(40))
def test_random_programs_give_identical_traces(seed):
    trace = _both(_program(seed))
    assert trace[-1][1] == "end" and len(trace) > 20


def test_random_program_identical_in_debug_mode():
    _both(_program(7), debug=True)


def _scenario_trace(collect, run_asyncio, loop_cls, workers, arrival, service, maxsize, items=None, duration=None):
    cell = Cell(0, workers, parse(arrival), parse(service), maxsize)
    keep = collect()
    _, t_end = run_asyncio(Scenario(workers, cell.arrival, cell.service, maxsize, items, duration), cell, 3, keep,
                           loop_factory=loop_cls, batch=101)  # fmt: skip
    return t_end, {kind: keep.table(kind) for kind in ("items", "depth")}


@pytest.mark.parametrize(
    "config",
    [
        (2, "const:1", "uniform:0:5", 0, 400, None),
        (3, "const:1", "const:3", 0, None, 200.0),  # ties everywhere
        (2, "const:0.5", "const:1", 2, 300, None),  # bounded, blocking pusher, ties
        (4, "exp:1", "exp:3.5", 0, 2000, None),
        (1, "exp:1", "exp:1.2", 3, None, 500.0),
    ],
)
@pytest.mark.parametrize("fast_cls", FAST)
def test_scenario_records_identical_rows_and_depth_event_order(config, fast_cls, collect, run_asyncio):
    workers, arrival, service, maxsize, items, duration = config
    t_ref, ref = _scenario_trace(
        collect, run_asyncio, ReferenceVirtualEventLoop, workers, arrival, service, maxsize, items, duration
    )
    t_fast, fast = _scenario_trace(collect, run_asyncio, fast_cls, workers, arrival, service, maxsize, items, duration)
    assert t_fast == t_ref
    for kind in ("items", "depth"):
        assert ref[kind].keys() == fast[kind].keys()
        for name in ref[kind]:
            np.testing.assert_array_equal(fast[kind][name], ref[kind][name], err_msg=f"{kind}.{name}")


def test_callback_exceptions_reach_the_handler_and_the_loop_goes_on():
    def make():
        async def main():
            loop = asyncio.get_running_loop()
            seen = []
            loop.set_exception_handler(
                lambda loop, ctx: seen.append((loop.time(), ctx["message"].split(" at ")[0], repr(ctx["exception"])))
            )
            loop.call_soon(lambda: 1 / 0)
            loop.call_later(1.0, lambda: [][1])
            await asyncio.sleep(2)
            return seen

        return main

    seen = _both(make())
    assert [s[0] for s in seen] == [0.0, 1.0] and "ZeroDivisionError" in seen[0][2]


def test_deadlock_message_is_the_same():
    async def main():
        q = asyncio.Queue()

        async def stuck():
            await q.get()

        asyncio.create_task(stuck(), name="stuck-getter")
        await asyncio.sleep(5)
        await asyncio.Event().wait()

    messages = []
    for cls in LOOPS:
        with pytest.raises(Deadlock) as info:
            _run(cls, lambda: main())
        messages.append(re.sub(r"Task-\d+", "Task-N", str(info.value)))
    assert len(set(messages)) == 1 and "t=5s" in messages[0] and "stuck-getter" in messages[0]


def test_executor_and_threadsafe_callbacks_take_no_virtual_time():
    def make():
        async def main():
            loop = asyncio.get_running_loop()
            await asyncio.sleep(1.5)
            value = await loop.run_in_executor(None, sum, range(1000))
            t1 = loop.time()
            await asyncio.to_thread(lambda: None)
            return value, t1, loop.time()

        return main

    assert _both(make()) == (499500, 1.5, 1.5)


def test_timer_handles_keep_their_public_interface():
    async def main():
        loop = asyncio.get_running_loop()
        await asyncio.sleep(1)
        h = loop.call_later(2.5, print)
        s = loop.call_soon(print)
        out = (h.when(), h.cancelled(), s.cancelled())
        h.cancel()
        s.cancel()
        return out + (h.cancelled(), s.cancelled())

    assert _both(lambda: main()) == (3.5, False, False, True, True)


def test_precision_one_millisecond_at_a_billion_seconds():
    async def main():
        loop = asyncio.get_running_loop()
        await asyncio.sleep(1e9)
        t0 = loop.time()
        await asyncio.sleep(0.001)
        return t0, loop.time(), loop.time_ns()

    t0, t1, ns = _both(lambda: main())
    assert ns == 1_000_000_000_001_000_000 and t1 - t0 == pytest.approx(0.001, abs=1e-7)


def _interrupted_trace(loop_cls):
    """Callbacks and due timers (one of them a sleep's) interrupted by KeyboardInterrupt, then resumed."""
    loop = loop_cls()
    trace = []

    def note(what):
        trace.append((loop.time(), what))

    def interrupt():
        raise KeyboardInterrupt

    async def sleeper():
        await asyncio.sleep(1)
        note("sleeper woke")

    async def main():
        await asyncio.sleep(0.5)
        loop.call_soon(note, "s1")
        loop.call_soon(interrupt)
        loop.call_soon(note, "s2")
        await asyncio.sleep(1)
        note("main done")

    loop.call_later(1, note, "t1")
    loop.call_later(1, interrupt)
    loop.call_later(1, note, "t2")
    loop.create_task(sleeper())  # its sleep's timer is due at t=1 too, after the three above
    task = loop.create_task(main())
    try:
        for _ in range(5):
            try:
                loop.run_until_complete(task)
                break
            except KeyboardInterrupt:
                trace.append((loop.time(), "interrupted"))
    finally:
        loop.close()
    return trace


def test_an_interrupted_iteration_resumes_in_the_same_order():
    ref, *fast = (_interrupted_trace(cls) for cls in LOOPS)
    assert [what for _, what in ref] == [
        "s1",
        "interrupted",
        "s2",
        "t1",
        "interrupted",
        "t2",
        "sleeper woke",
        "main done",
    ]
    for cls, trace in zip(FAST, fast):
        assert trace == ref, cls.__name__


def _handler_interrupt_trace(loop_cls):
    """The exception handler raises KeyboardInterrupt while reporting a failed timer; then resume."""
    loop = loop_cls()
    ran = []
    interrupt = [KeyboardInterrupt]

    def handler(loop, context):
        ran.append(("handled", type(context["exception"]).__name__, repr(sys.exc_info()[1])))
        if interrupt:
            raise interrupt.pop()  # the first time only

    def boom():
        ran.append("boom")
        raise ValueError("x")

    loop.set_exception_handler(handler)
    loop.call_later(1, ran.append, "a")
    loop.call_later(1, boom)
    loop.call_later(1, ran.append, "c")
    loop.call_later(2, loop.stop)
    try:
        loop.run_forever()
    except KeyboardInterrupt:
        ran.append("interrupted")
    loop.run_forever()
    loop.close()
    return ran


def test_a_handler_that_raises_does_not_rerun_timers_and_sees_the_exception_as_handled():
    ref, *fast = (_handler_interrupt_trace(cls) for cls in LOOPS)
    assert ref == ["a", "boom", ("handled", "ValueError", "ValueError('x')"), "interrupted", "c"]
    for cls, trace in zip(FAST, fast):
        assert trace == ref, cls.__name__


def test_a_timer_freed_mid_compaction_may_schedule_timers():
    """Dropping 100 cancelled timers frees their context, whose last object schedules timers from
    its __del__ while the heap is being compacted: every timer still runs once, in order."""

    def trace(loop_cls):
        var = contextvars.ContextVar("v")
        loop = loop_cls()
        log = []

        class Schedules:
            def __del__(self):
                log.append(("del", loop.time()))
                for i in range(3):
                    loop.call_later(0.001 * (i + 1), log.append, ("from_del", i))

        def setup():
            var.set(Schedules())
            for handle in [loop.call_later(50 + i * 1e-3, print) for i in range(100)]:
                handle.cancel()
            for i in range(5):
                loop.call_later(300 + i, log.append, ("late", i), context=outer)

        outer = contextvars.copy_context()
        for i in range(5):
            loop.call_later(100 + i, log.append, ("live", i), context=outer)
        loop.call_soon(setup, context=contextvars.Context())
        loop.call_later(400, loop.stop)
        loop.run_forever()
        left = len(loop._timers)
        loop.close()
        return log, left

    ref, *fast = (trace(cls) for cls in FAST)
    assert sorted(x for x in ref[0] if x[0] == "from_del") == [("from_del", i) for i in range(3)]
    assert [x for x in ref[0] if x[0] == "live"] == [("live", i) for i in range(5)] and ref[1] == 0
    for cls, got in zip(FAST[1:], fast):
        assert got == ref, cls.__name__


def test_deadlines_beyond_the_int64_range_wait_at_the_end_of_time():
    async def main():
        loop = asyncio.get_running_loop()
        sleeper = asyncio.ensure_future(asyncio.sleep(sys.maxsize))  # "for ever"
        far = loop.call_later(1e12, print)
        await asyncio.sleep(1)
        sleeper.cancel()
        far.cancel()
        return loop.time(), far.cancelled()

    assert _both(lambda: main()) == (1.0, True)


# -- under the eager task factory (Python 3.12+): a task runs at once, up to its first wait ---------

_eager = pytest.mark.skipif(
    not hasattr(asyncio, "eager_task_factory"), reason="asyncio.eager_task_factory is new in Python 3.12"
)


def _eager_factory(loop_cls):
    """A loop factory: a loop of ``loop_cls`` whose tasks start eagerly."""

    def factory():
        loop = loop_cls()
        loop.set_task_factory(asyncio.eager_task_factory)
        return loop

    return factory


def _eager_both(main):
    """``_both`` with eager tasks: every loop must give the reference's result."""
    ref, *fast = (_run(_eager_factory(cls), main) for cls in LOOPS)
    for cls, result in zip(FAST, fast):
        assert result == ref, cls.__name__
    return ref


@_eager
@pytest.mark.parametrize("seed", range(0, 40, 4))
def test_random_programs_give_identical_traces_under_the_eager_task_factory(seed):
    trace = _eager_both(_program(seed))
    assert trace[-1][1] == "end" and len(trace) > 20


@_eager
def test_eager_tasks_run_at_once_and_sleeps_keep_their_virtual_time():
    async def main():
        loop = asyncio.get_running_loop()
        order = []

        async def child(name, delay):
            order.append((name, "start", loop.time()))
            if delay is not None:
                await asyncio.sleep(delay)
            order.append((name, "end", loop.time()))
            return name

        quick = asyncio.create_task(child("quick", None))  # finishes inside create_task
        order.append(("quick done at creation", quick.done()))
        slow = asyncio.create_task(child("slow", 1.5))
        order.append(("slow done at creation", slow.done()))
        await asyncio.sleep(0.5)
        order.append(("main", loop.time()))
        return order, await slow, loop.time()

    order, name, end = _eager_both(main)
    assert order == [
        ("quick", "start", 0.0),
        ("quick", "end", 0.0),
        ("quick done at creation", True),
        ("slow", "start", 0.0),
        ("slow done at creation", False),
        ("main", 0.5),
        ("slow", "end", 1.5),
    ]
    assert (name, end) == ("slow", 1.5)


@_eager
def test_eager_tasks_and_threads_calling_back_into_the_loop():
    async def add(a, b):
        await asyncio.sleep(0.05)
        return a + b

    async def main():
        loop = asyncio.get_running_loop()

        def blocking():
            return asyncio.run_coroutine_threadsafe(add(1, 2), loop).result()

        return await asyncio.to_thread(blocking), loop.time()

    assert _eager_both(main) == (3, 0.05)


@_eager
def test_eager_deadlock_is_found_the_same():
    async def main():
        q = asyncio.Queue()
        asyncio.create_task(q.get(), name="eager-getter")
        await asyncio.sleep(3)
        await asyncio.Event().wait()

    messages = []
    for cls in LOOPS:
        with pytest.raises(Deadlock) as info:
            _run(_eager_factory(cls), main)
        messages.append(re.sub(r"Task-\d+", "Task-N", str(info.value)))
    assert len(set(messages)) == 1 and "t=3s" in messages[0] and "eager-getter" in messages[0]


@_eager
@pytest.mark.parametrize("fast_cls", FAST)
def test_scenario_records_identical_rows_under_the_eager_task_factory(fast_cls, collect, run_asyncio):
    config = (3, "exp:1", "exp:2.5", 2, 600, None)
    ref = _scenario_trace(collect, run_asyncio, _eager_factory(ReferenceVirtualEventLoop), *config)
    fast = _scenario_trace(collect, run_asyncio, _eager_factory(fast_cls), *config)
    assert fast[0] == ref[0]
    for kind in ("items", "depth"):
        for name in ref[1][kind]:
            np.testing.assert_array_equal(fast[1][kind][name], ref[1][kind][name], err_msg=f"{kind}.{name}")
