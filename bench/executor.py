"""Where cells run: in this process, in local worker processes, or as tasks on a Dask cluster.

Every executor runs a function ``task(folder, grid, cell, progress) -> rows`` for each cell and calls
``finished(cell, rows)`` in the parent as each completes, in completion order (``rows`` is the
exception instead when the worker running the cell died). Cells write their own
files into the run folder (atomically), so an executor only moves work and summary rows, never data.

The local and Dask executors keep at most :data:`IN_FLIGHT` tasks per worker submitted at a time
and submit the next as one finishes, so the client's and the scheduler's memory do not grow with
the number of cells.

Why workers write to the run folder rather than send Arrow tables back: a cell streams its records in
batches, so memory stays bounded by the batch size on every worker; the client is no bottleneck;
and a cell whose files exist is complete wherever it ran. The price is that Dask workers must see
the run folder at the same absolute path (one machine, or a shared file system).
"""

from __future__ import annotations

import itertools
import multiprocessing
import os
import queue as _queue
import signal
import sys
import time
from collections.abc import Callable
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from typing import TYPE_CHECKING, Any

from bench.errors import InputError

if TYPE_CHECKING:
    import multiprocessing.queues

    from distributed import Client, LocalCluster

__all__ = [
    "IN_FLIGHT",
    "ExecutorError",
    "WorkerDied",
    "SerialExecutor",
    "ProcessExecutor",
    "DaskExecutor",
    "make_executor",
]

Task = Callable[..., list]
Finished = Callable[[Any, list | BaseException], None]  # rows, or what killed the worker
Progress = Callable[[int], None]


#: Tasks submitted per worker at a time (enough to keep every worker busy while the parent takes
#: a result; few enough that a 10,000-cell grid is never held by the scheduler all at once).
IN_FLIGHT = 4


class ExecutorError(InputError):
    """The executor cannot start (e.g. an unreachable scheduler); the message is one line."""


class SerialExecutor:
    """Runs cells one after another in this process."""

    def __enter__(self) -> SerialExecutor:
        return self

    def __exit__(self, *exc: Any) -> None:
        return None

    def run_cells(self, task: Task, folder, grid, cells: list, finished: Finished, progress: Progress) -> None:
        """Run ``task`` for every cell, reporting each as it finishes."""
        for cell in cells:
            finished(cell, task(folder, grid, cell, progress))


def _outcome(future) -> list | BaseException:
    """A finished future's rows, or the exception that killed its worker (recorded as a failed cell)."""
    try:
        return future.result()
    except Exception as err:  # the task itself never raises: run_cell records its own failures
        return err


# -- local worker processes --------------------------------------------------------------------

_progress_queue: multiprocessing.queues.Queue[int] | None = None


def _init_worker(progress_queue: multiprocessing.queues.Queue[int]) -> None:
    global _progress_queue
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent decides what Ctrl-C means
    _die_with_parent()
    _progress_queue = progress_queue


def _die_with_parent() -> None:
    """On Linux, have the kernel kill this worker when the parent dies, ``kill -9`` included (the
    pool cannot tell its workers then, and they would idle on for ever, each holding its memory)."""
    if not sys.platform.startswith("linux"):
        return
    try:
        import ctypes

        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL)  # 1 = PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        return
    if os.getppid() == 1:  # the parent died before the request took effect
        os._exit(1)


def _report(n: int) -> None:
    assert _progress_queue is not None  # only handed to tasks when there is one
    _progress_queue.put(n)


def _in_worker(task: Task, folder, grid, cell) -> list:
    return task(folder, grid, cell, _report if _progress_queue is not None else None)


def _drain(progress_queue, progress: Progress) -> None:
    total = 0
    while True:
        try:
            total += progress_queue.get_nowait()
        except _queue.Empty:
            break
    if total:
        progress(total)


class WorkerDied(RuntimeError):
    """The worker process running a cell died (killed, out of memory, or crashed in C code)."""


class ProcessExecutor:
    """Runs cells in ``jobs`` local worker processes (spawned, so the same on every platform).

    When a worker process dies, the pool breaks and every cell in flight comes back unfinished; they
    run again in a fresh pool. A cell caught in two breaks runs alone, and if its worker dies there
    too it is reported as failed with :class:`WorkerDied`. So one crashing cell costs only itself.
    """

    def __init__(self, jobs: int) -> None:
        self._jobs = jobs

    def __enter__(self) -> ProcessExecutor:
        return self

    def __exit__(self, *exc: Any) -> None:
        return None

    def run_cells(self, task: Task, folder, grid, cells: list, finished: Finished, progress: Progress) -> None:
        """Run ``task`` for every cell in worker processes; on any exception kill them and re-raise."""
        strikes: dict[Any, int] = {}
        todo = list(cells)
        while todo:
            shared = [c for c in todo if strikes.get(c.id, 0) < 2]
            alone = [c for c in todo if strikes.get(c.id, 0) >= 2]
            lost, unrun = self._pool(task, folder, grid, shared, finished, progress, self._jobs) if shared else ([], [])
            for cell in lost:
                strikes[cell.id] = strikes.get(cell.id, 0) + 1
            for cell in alone:
                if any(self._pool(task, folder, grid, [cell], finished, progress, 1)):
                    finished(
                        cell, WorkerDied("the worker process running this cell died (killed, out of memory or crashed)")
                    )
            todo = lost + unrun

    @staticmethod
    def _pool(task: Task, folder, grid, cells: list, finished: Finished, progress: Progress,
              jobs: int) -> tuple[list, list]:  # fmt: skip
        """Run ``cells`` in a new pool of ``jobs`` processes, :data:`IN_FLIGHT` per process submitted
        at a time; return the cells lost to a broken pool (running when it broke) and those it never ran."""
        context = multiprocessing.get_context("spawn")
        progress_queue = context.Queue()
        pool = ProcessPoolExecutor(jobs, mp_context=context, initializer=_init_worker, initargs=(progress_queue,))
        pending: dict[Future, Any] = {}
        waiting = iter(cells)
        lost: list = []
        try:
            for cell in itertools.islice(waiting, IN_FLIGHT * jobs):
                pending[pool.submit(_in_worker, task, folder, grid, cell)] = cell
            while pending:
                ready, _ = wait(pending, timeout=0.2, return_when=FIRST_COMPLETED)
                _drain(progress_queue, progress)
                for future in ready:
                    cell = pending.pop(future)
                    if isinstance(future.exception(), BrokenProcessPool):
                        lost.append(cell)
                        continue
                    finished(cell, _outcome(future))
                    if not lost:  # a broken pool takes no more work
                        for more in itertools.islice(waiting, 1):
                            pending[pool.submit(_in_worker, task, folder, grid, more)] = more
            _drain(progress_queue, progress)
            pool.shutdown(wait=True)
            return lost, list(waiting)
        except BaseException:
            for process in list((getattr(pool, "_processes", None) or {}).values()):
                process.kill()
            pool.shutdown(wait=False, cancel_futures=True)
            raise


# -- Dask ----------------------------------------------------------------------------------------

#: Seconds to wait for a Dask scheduler given by address before giving up with one line.
CONNECT_TIMEOUT = 5.0


class DaskExecutor:
    """Runs each cell as a task on a Dask cluster: an existing one at ``address``, or a new
    ``distributed.LocalCluster`` of ``jobs`` single-threaded worker processes.

    Raises:
        ExecutorError: ``dask.distributed`` is not installed or the scheduler cannot be reached.
    """

    def __init__(self, address: str | None, jobs: int, connect_timeout: float | None = None) -> None:
        self._address = address
        self._jobs = jobs
        self._timeout = CONNECT_TIMEOUT if connect_timeout is None else connect_timeout
        self._client: Client | None = None
        self._cluster: LocalCluster | None = None

    def __enter__(self) -> DaskExecutor:
        try:
            from distributed import Client, LocalCluster
        except ImportError:
            raise ExecutorError("--executor dask needs dask.distributed: pip install -e '.[dask]'") from None
        try:
            if self._address is None:
                self._cluster = LocalCluster(
                    n_workers=self._jobs, threads_per_worker=1, processes=True, dashboard_address=None
                )
                self._client = Client(self._cluster)
            else:
                self._client = Client(self._address, timeout=self._timeout)
        except (OSError, TimeoutError, ValueError) as err:
            self.__exit__(None, None, None)
            where = self._address or "a new LocalCluster"
            raise ExecutorError(f"cannot reach the Dask scheduler at {where}: {str(err).splitlines()[0]}") from None
        return self

    def __exit__(self, *exc: Any) -> None:
        for resource in (self._client, self._cluster):
            if resource is not None:
                try:
                    resource.close()
                except Exception:
                    pass
        self._client = self._cluster = None

    def run_cells(self, task: Task, folder, grid, cells: list, finished: Finished, progress: Progress) -> None:
        """Submit one task per cell and report each as it completes; cancel the rest on any exception.

        Workers report finished items as events on a topic of this run, which feed ``progress``.
        """
        from distributed import as_completed

        client = self._client
        assert client is not None, "DaskExecutor.run_cells runs inside 'with DaskExecutor(...)'"
        topic = f"qbench-items-{folder.name}-{id(self)}-{time.monotonic_ns()}"
        if progress is not None:
            client.subscribe_topic(topic, lambda event: progress(event[1]))

        def submit(cell):
            return client.submit(_on_dask_worker, task, folder, grid, cell, topic if progress is not None else None,
                                 key=f"qbench-{folder.name}-cell-{cell.id}-{id(self)}", pure=False)  # fmt: skip

        waiting = iter(cells)
        slots = IN_FLIGHT * max(sum(client.nthreads().values()), 1)
        futures = {submit(cell): cell for cell in itertools.islice(waiting, slots)}
        done = as_completed(list(futures))
        try:
            for future in done:
                finished(futures.pop(future), _outcome(future))
                for cell in itertools.islice(waiting, 1):  # keep the scheduler's queue short
                    more = submit(cell)
                    futures[more] = cell
                    done.add(more)
        except BaseException:
            client.cancel(list(futures))
            raise
        finally:
            if progress is not None:
                client.unsubscribe_topic(topic)


def _on_dask_worker(task: Task, folder, grid, cell, topic: str | None) -> list:
    """Run ``task`` on a Dask worker, logging finished items as events on ``topic`` (if any)."""
    if topic is None:
        return task(folder, grid, cell, None)
    from distributed import get_worker

    worker = get_worker()
    return task(folder, grid, cell, lambda n: worker.log_event(topic, int(n)))


def make_executor(kind: str, jobs: int, scheduler: str | None = None):
    """Return the executor named ``kind`` (``local`` or ``dask``); ``local`` with one job runs serially."""
    if kind == "dask":
        return DaskExecutor(scheduler, jobs)
    return SerialExecutor() if jobs <= 1 else ProcessExecutor(jobs)
