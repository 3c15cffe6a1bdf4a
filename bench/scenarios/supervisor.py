"""Running a scenario coroutine for one replication, and every way it can go wrong.

:func:`run_program` runs a scenario (:mod:`bench.scenarios`) on a fresh event loop with a
:class:`~bench.full_recorder.FullRecorder`, and ends the replication when:

* **the duration is reached**: the first hook at or after ``duration`` stops the recording and the
  harness cancels every task. A scenario need not look at the clock, and one that ignores the
  duration cannot run past it (it is stopped at its next event);
* **the backlog reaches** ``max_backlog`` (status ``capped``, as in the plain program);
* **an items run's scenario returns**: every one of its items must have left (served, abandoned or
  given up), else the cell fails (fewer items than ``items`` only when the arrival process ran out,
  which the recorder's ``exhausted`` hook says);

and fails the cell (:class:`ScenarioFailed`, one line; the run goes on with the other cells) when:

* the scenario **raises** (the first leaf of an exception group is named);
* it **breaks the recorder contract** (item ids out of order, more items than ``items``, ...);
* it **stalls**: nothing is recorded for :data:`STALL_MEANS` times the longest mean delay of the
  cell (arrivals, service, patience, setup, linger, backoff). A deadlock (every task waiting,
  nothing scheduled) is found at once, as the virtual clock jumps straight to the watchdog; a
  scenario waiting for ever on its own timers (a forgotten heartbeat, a poll for a condition that
  never comes, a scenario that does not return once its items are done) when the clock gets there.
  The message names the waiting tasks and any task that died with an exception;
* a task **does not stop when cancelled** at the end (it swallows ``CancelledError``) within
  :data:`GRACE_MEANS` mean delays.

A coroutine that never awaits blocks its event loop; nothing in asyncio can interrupt it, and
nothing here does.
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import Callable, Coroutine
from typing import Any

from bench.distributions import Stream
from bench.full_recorder import FullRecorder
from bench.recorder import Sink
from bench.scenario import Scenario
from bench.scenarios import ProgramRef, load
from bench.scenarios.context import ScenarioContext

__all__ = ["GRACE_MEANS", "STALL_MEANS", "ScenarioFailed", "run_program"]

#: A scenario that records nothing for this many times the cell's longest mean delay has stalled.
STALL_MEANS = 1e6
#: Tasks must end within this many times the longest mean delay of being cancelled.
GRACE_MEANS = 1e3
#: The longest watchdog delay, model seconds (far below the virtual clock's range).
_LONGEST = 1e9


class ScenarioFailed(RuntimeError):
    """The scenario raised, broke the recorder contract, stalled or would not stop: its cell fails."""


def run_program(
    scenario: Scenario,
    arrivals: Stream,
    services: Stream,
    sink: Sink,
    *,
    on_progress: Callable[[int], None] | None,
    batch: int,
    scale: float | None,
    loop_factory: Callable[[], asyncio.AbstractEventLoop],
) -> tuple[FullRecorder, float]:
    """Run one replication of ``scenario`` (not the plain one) and return its recorder and end time.

    Raises:
        bench.scenarios.ScenarioError: the scenario cannot be loaded (a file changed or vanished).
        ScenarioFailed: see the module docstring.
    """
    program = load(scenario.program, scenario.program_sha256)
    name = ProgramRef(scenario.program, scenario.program.rpartition(":")[0] or None).name
    recorder = FullRecorder(sink, batch, on_progress, items=scenario.items, duration=scenario.duration,
                            max_backlog=scenario.max_backlog)  # fmt: skip
    loop = loop_factory()
    clean = False
    try:
        t_end, clean = loop.run_until_complete(_supervise(program, name, scenario, arrivals, services, recorder, scale))
    except ScenarioFailed:
        raise
    except RuntimeError as err:  # the loop's Deadlock, should the watchdog be gone
        if type(err).__name__ != "Deadlock":
            raise
        raise ScenarioFailed(f"scenario {name!r} deadlocked: {err}") from None
    finally:
        _close(loop, clean)
    recorder.close(t_end)
    return recorder, t_end


async def _supervise(program: Callable[..., Coroutine[Any, Any, Any]], name: str, scenario: Scenario,
                     arrivals: Stream, services: Stream, recorder: FullRecorder,
                     scale: float | None) -> tuple[float, bool]:  # fmt: skip
    """Run the scenario to its end; return ``(t_end, clean)``, ``clean`` when every task ended."""
    loop = asyncio.get_running_loop()
    me = asyncio.current_task()
    ctx = ScenarioContext(scenario, arrivals, services, recorder, scale, loop.time())
    stop: asyncio.Future[str] = loop.create_future()

    def stop_with(why: str) -> None:
        if not stop.done():
            stop.set_result(why)

    recorder.on_stop = stop_with
    died: list[tuple[str, BaseException]] = []
    loop.set_task_factory(_watched(died))
    try:
        coroutine = program(ctx)
    except Exception as err:  # e.g. a signature that does not take the context
        raise ScenarioFailed(f"scenario {name!r} could not start: calling it with the context raised "
                             f"{_describe(err)}") from None  # fmt: skip
    task = loop.create_task(coroutine, name=f"scenario {name}")
    task.add_done_callback(lambda _: stop_with("returned"))
    longest = _longest_delay(scenario)
    window = min(STALL_MEANS * longest, _LONGEST)
    watchdog = _Watchdog(loop, recorder, window * ctx.factor, stop_with)
    # a duration run ends at the duration even when nothing happens then (arrivals that ran out)
    timer = loop.call_later(scenario.duration * ctx.factor, stop_with, "end") if scenario.duration else None
    try:
        why = await stop
    finally:
        watchdog.cancel()
        if timer is not None:
            timer.cancel()
    failure = _failure(why, task, scenario, recorder, window, died, ctx.now())
    stubborn = await _cancel_all(loop, me, min(GRACE_MEANS * longest, _LONGEST) * ctx.factor)
    if failure is not None:
        raise ScenarioFailed(f"scenario {name!r} {failure}")
    if stubborn:
        raise ScenarioFailed(f"scenario {name!r}: task {stubborn[0]!r} did not stop when cancelled at the end of the "
                             "replication (does it swallow CancelledError?)")  # fmt: skip
    if why == "capped":
        assert recorder.capped is not None  # the recorder stopped for it
        return recorder.capped[0], True
    if scenario.duration is not None:
        return scenario.duration, True
    return ctx.now(), True


def _failure(why: str, task: asyncio.Task, scenario: Scenario, recorder: FullRecorder, window: float,
             died: list[tuple[str, BaseException]], now: float) -> str | None:  # fmt: skip
    """Why the replication failed (a phrase after the scenario's name), or None."""
    if why == "error":
        return f"broke the recorder contract: {recorder.error}"
    if why == "stalled":
        items = scenario.items
        if items is not None and recorder.finished == items:
            doing = f"every one of its {items} items has left but it did not return"
        else:
            doing = "a deadlock, or tasks waiting for ever"
        tasks = _waiting(task.get_loop())
        crashes = "".join(f"; task {n!r} died of {_describe(e)}" for n, e in died[:3])
        return (f"stalled: nothing was recorded in the {window:.4g} model s after t={recorder.last_event:.9g}s "
                f"({doing}){crashes}; waiting: {tasks}")  # fmt: skip
    if why != "returned":
        return None
    if task.cancelled():
        return "was cancelled from inside (its own task was cancelled)"
    error = task.exception()
    if error is not None:
        return f"raised {_describe(error)}"
    items = scenario.items
    short = recorder.arrived < items if items is not None and recorder.arrivals_end is None else False
    if items is not None and (short or recorder.finished < recorder.arrived):
        left = (items if recorder.arrivals_end is None else recorder.arrived) - recorder.finished
        return (f"returned at t={now:.9g}s with {left} of its {items} items not finished: an "
                "items run must put every item and see each leave (served, abandoned or given up)")  # fmt: skip
    return None


def _describe(error: BaseException) -> str:
    """``Type: message`` of an error, the first leaf of an exception group, on one line."""
    while isinstance(error, BaseExceptionGroup) and error.exceptions:
        error = error.exceptions[0]
    text = f"{type(error).__name__}: {error}" if str(error) else type(error).__name__
    return text.splitlines()[0]


def _watched(died: list[tuple[str, BaseException]]) -> Callable[..., asyncio.Task]:
    """A task factory that notes every task that dies of an exception (for the stall message)."""

    def noted(task: asyncio.Task) -> None:
        error = None if task.cancelled() else task.exception()
        if error is not None:
            died.append((task.get_name(), error))

    def factory(loop: asyncio.AbstractEventLoop, coro: Any, **kwargs: Any) -> asyncio.Task:
        task = asyncio.Task(coro, loop=loop, **kwargs)
        task.add_done_callback(noted)
        return task

    return factory


def _waiting(loop: asyncio.AbstractEventLoop) -> str:
    """The tasks still running and where each waits, for a stall message."""
    me = asyncio.current_task()
    found = []
    for task in sorted(asyncio.all_tasks(loop), key=lambda t: t.get_name()):
        if task is me:
            continue
        coro = task.get_coro()
        frame = getattr(coro, "cr_frame", None)
        where = f" at {frame.f_code.co_filename.rsplit('/', 1)[-1]}:{frame.f_lineno}" if frame else ""
        found.append(f"{task.get_name()}{where}")
    return ", ".join(found[:8]) + (f", and {len(found) - 8} more" if len(found) > 8 else "") or "no task"


class _Watchdog:
    """Calls ``stop("stalled")`` when the recorder records nothing for ``window`` loop seconds."""

    def __init__(self, loop: asyncio.AbstractEventLoop, recorder: FullRecorder, window: float,
                 stop: Callable[[str], None]) -> None:  # fmt: skip
        self._loop, self._recorder, self._window, self._stop = loop, recorder, window, stop
        self._seen = -1
        self._handle = loop.call_later(window, self._check)

    def _check(self) -> None:
        events = self._recorder.events
        if events == self._seen:
            self._stop("stalled")
            return
        self._seen = events
        self._handle = self._loop.call_later(self._window, self._check)

    def cancel(self) -> None:
        self._handle.cancel()


async def _cancel_all(loop: asyncio.AbstractEventLoop, me: asyncio.Task | None, grace: float) -> list[str]:
    """Cancel every task but this one and wait up to ``grace``; return the names of those still running."""
    tasks = [t for t in asyncio.all_tasks(loop) if t is not me]
    for task in tasks:
        task.cancel()
    if not tasks:
        return []
    _, pending = await asyncio.wait(tasks, timeout=grace)
    return sorted(t.get_name() for t in pending)


def _longest_delay(scenario: Scenario) -> float:
    """The longest mean delay of a cell: arrival (each pusher's), service and the behaviours'."""
    arrival = scenario.arrival
    means = [part.mean for part in arrival.parts] or [arrival.mean]
    means += [scenario.service.mean, *scenario.behaviour.delays()]
    means += scenario.elastic.delays() if scenario.elastic is not None else []
    finite = [m for m in means if math.isfinite(m) and m > 0]
    return max(finite) if finite else 1.0


def _close(loop: asyncio.AbstractEventLoop, clean: bool) -> None:
    """Close the loop; when a task would not stop, without running it again (it would never end)."""
    try:
        if clean:
            loop.run_until_complete(loop.shutdown_asyncgens())
            loop.run_until_complete(loop.shutdown_default_executor())
        else:
            loop.set_exception_handler(lambda loop, context: None)  # "Task was destroyed but it is pending"
    finally:
        loop.set_task_factory(None)
        loop.close()
