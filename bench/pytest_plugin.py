"""A pytest plugin: ``@pytest.mark.virtual_time`` runs an ``async def`` test on the virtual-time loop.

qbench installs it as the ``pytest11`` entry point ``qbench``; it does nothing to a test without
the marker. A marked test's coroutine runs on a fresh :class:`~bench.loop.VirtualEventLoop` (as
:func:`bench.loop.run_virtual` runs it), so an hour of ``asyncio.sleep`` takes no real time, every
run gives the same times, and a deadlock raises :class:`~bench.loop.Deadlock` instead of hanging::

    import asyncio
    import pytest

    @pytest.mark.virtual_time
    async def test_a_retry_loop_gives_up_after_an_hour():
        loop = asyncio.get_running_loop()
        await asyncio.sleep(3600)
        assert loop.time() == 3600

With pytest-asyncio installed, both work side by side: in its ``strict`` mode a test marked both
``virtual_time`` and ``asyncio`` fails (choose one loop); in its ``auto`` mode, which marks every
``async def`` test ``asyncio``, a test marked ``virtual_time`` runs here on the virtual loop.
``@pytest.mark.virtual_time(debug=True)`` runs the loop in asyncio's debug mode.
"""

from __future__ import annotations

import inspect
from typing import Any

import pytest

__all__ = ["MARKER"]

MARKER = "virtual_time"


def pytest_configure(config: pytest.Config) -> None:
    """Declare the marker (so ``--strict-markers`` accepts it)."""
    config.addinivalue_line(
        "markers",
        f"{MARKER}: run this async def test on qbench's virtual-time event loop (deterministic, instant sleeps)",
    )


@pytest.hookimpl(tryfirst=True)
def pytest_pyfunc_call(pyfuncitem: pytest.Function) -> Any:
    """Run a marked test's coroutine on a fresh virtual-time loop; leave every other test alone."""
    marker = pyfuncitem.get_closest_marker(MARKER)
    if marker is None:
        return None
    if pyfuncitem.get_closest_marker("asyncio") is not None and _asyncio_mode(pyfuncitem.config) != "auto":
        pytest.fail(f"{pyfuncitem.nodeid}: marked both virtual_time and asyncio; choose one loop", pytrace=False)
    function = getattr(pyfuncitem.obj, "__wrapped__", pyfuncitem.obj)
    if not inspect.iscoroutinefunction(function):
        pytest.fail(f"{pyfuncitem.nodeid}: @pytest.mark.{MARKER} marks an async def test", pytrace=False)
    from bench.loop import run_virtual

    arguments = {name: pyfuncitem.funcargs[name] for name in pyfuncitem._fixtureinfo.argnames}
    run_virtual(function(**arguments), debug=marker.kwargs.get("debug"))
    return True


def _asyncio_mode(config: pytest.Config) -> str:
    """pytest-asyncio's mode (``strict``, ``auto``), or ``none`` without it."""
    try:
        return str(config.getoption("asyncio_mode", default=None) or config.getini("asyncio_mode"))
    except ValueError:
        return "none"
