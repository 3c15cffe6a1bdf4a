"""The project's clock settings: which clock a grid runs on, and which real loop runs scaled time.

:func:`parse_clock` reads a grid's ``clock`` (``virtual``, ``real`` or ``scaled:F``);
:func:`loop_factory` gives the real event loop (one of :data:`LOOPS`) for scaled and real clocks.
The virtual-time loop itself is the package :mod:`bench.loop`.
"""

from __future__ import annotations

import asyncio
from typing import Callable

__all__ = [
    "parse_clock",
    "loop_factory",
    "LOOPS",
]

LOOPS = ("asyncio", "uvloop")


def loop_factory(name: str) -> Callable[[], asyncio.AbstractEventLoop]:
    """Return a factory of real event loops for scaled and real clocks: ``asyncio`` or ``uvloop``.

    Raises:
        ValueError: an unknown name, or ``uvloop`` when it is not installed (extra ``uvloop``).
    """
    if name == "asyncio":
        return asyncio.new_event_loop
    if name == "uvloop":
        try:
            import uvloop
        except ImportError:
            raise ValueError("--loop uvloop needs uvloop: pip install 'qbench[uvloop]'") from None
        return uvloop.new_event_loop
    raise ValueError(f"bad loop {name!r}: use one of {', '.join(LOOPS)}")


def parse_clock(spec: str) -> float | None:
    """Parse a clock spec: ``virtual`` gives ``None``; ``scaled:F`` gives F; ``real`` gives 1.0.

    Under ``scaled:F`` one model second lasts F real seconds on a real event loop.

    Raises:
        ValueError: anything else, or F not a finite number > 0.
    """
    text = str(spec).strip().lower()
    if text == "virtual":
        return None
    if text == "real":
        return 1.0
    kind, _, factor = text.partition(":")
    if kind == "scaled":
        try:
            scale = float(factor)
        except ValueError:
            scale = float("nan")
        if scale > 0 and scale != float("inf"):
            return scale
        raise ValueError(f"bad clock {spec!r}: scaled:F needs a finite factor F > 0, e.g. scaled:0.01")
    raise ValueError(f"bad clock {spec!r}: use virtual, real or scaled:F (e.g. scaled:0.01)")

