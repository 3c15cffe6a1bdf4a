"""Model time as integer nanoseconds, and back to float seconds, the way the virtual clock does it.

The virtual loop keeps its clock in integer nanoseconds and gives ``time()`` as ``ns / 1e9``
rounded once. :func:`seconds` is that conversion for arrays; :func:`to_ns` is its inverse, used to
store times as integers: for a virtual-clock time it finds the integer whose :func:`seconds` is
the time exactly, so a stored time reads back bit for bit; a scaled-clock time (a real
measurement, not a multiple of 1 ns) is stored to the nearest nanosecond.
"""

from __future__ import annotations

import numpy as np

__all__ = ["NS", "seconds", "to_ns"]

#: Nanoseconds per second.
NS = 1_000_000_000
#: Up to 2**53 ns (about 104 days) an int64 converts to float64 exactly, so ``ns / 1e9`` is rounded
#: once; beyond, the virtual loop divides Python ints (one correct rounding), and so does this.
_EXACT_NS = 2**53


def seconds(ns: np.ndarray) -> np.ndarray:
    """Integer nanoseconds to float seconds exactly as the virtual loop's ``time()`` gives them.

    Args:
        ns: int64 nanoseconds.
    """
    out = ns / NS
    if ns.size and (int(ns.max()) > _EXACT_NS or int(ns.min()) < -_EXACT_NS):
        big = np.abs(ns) > _EXACT_NS
        out[big] = [v / NS for v in ns[big].tolist()]
    return out


def to_ns(values: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]:
    """Float seconds to int64 nanoseconds that :func:`seconds` turns back into the same floats
    wherever such an integer exists (every time of the virtual clock), else the nearest.

    Args:
        values: float seconds; NaN marks a missing time.

    Returns:
        The nanoseconds (0 where missing) and the mask of missing values (``None`` if none is).
    """
    values = np.asarray(values, dtype=np.float64)
    missing = np.isnan(values)
    has_missing = bool(missing.any())
    if has_missing:
        values = np.where(missing, 0.0, values)
    whole = np.floor(values)  # whole seconds and the fraction are both exact in float64, so the
    fraction = values - whole  # fraction's product with 1e9 rounds to the nearest integer nanosecond
    fraction *= NS
    np.rint(fraction, out=fraction)
    ns = whole.astype(np.int64) * NS + fraction.astype(np.int64)
    off = seconds(ns) != values
    if off.any():  # a tie, or a time that is not a whole number of nanoseconds: try one either side
        where = np.flatnonzero(off)
        want = values[where]
        for step in (-1, 1):
            near = ns[where] + step
            hit = seconds(near) == want
            ns[where[hit]] = near[hit]
    return ns, (missing if has_missing else None)
