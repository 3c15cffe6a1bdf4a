"""The grid: axes and settings from a TOML file or the command line, expanded into cells.

A grid file holds axes (lists) and settings (scalars)::

    workers = [1, 2, 3, 4]                  # axes: every combination is a cell
    arrival = ["const:1", "exp:1"]
    service = ["uniform:0:5", "exp:2.5"]
    maxsize = [0]
    duration = 3000                         # settings: exactly one of items / duration
    replications = 5
    seed = 1
    clock = "virtual"                       # or "scaled:0.01", or "real"
    max_backlog = 1000000                   # stop a cell whose queue reaches this many items

Random numbers come from one ``numpy.random.SeedSequence(seed)``: each (arrival, service, maxsize,
replication) and purpose (0 = arrivals, 1 = services) gets its own stream, keyed by the specs'
text rather than their position in the grid. Cells that differ only in ``workers`` therefore see the
same arrivals and service times (common random numbers), and so do two runs with the same seed.
"""

from __future__ import annotations

import itertools
import math
import tomllib
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from bench.clock import parse_clock
from bench.distributions import Distribution, SpecError, Stream, parse

__all__ = ["Cell", "Grid", "GridError", "load_grid", "make_grid", "override", "streams", "AXES", "SETTINGS"]

AXES = ("workers", "arrival", "service", "maxsize")
SETTINGS = ("items", "duration", "replications", "seed", "clock", "max_backlog")
#: A cell whose queue reaches this many items is stopped (status ``capped``): memory stays bounded.
DEFAULT_MAX_BACKLOG = 1_000_000
_DEFAULTS: dict[str, Any] = {
    "maxsize": [0],
    "replications": 1,
    "seed": 0,
    "clock": "virtual",
    "max_backlog": DEFAULT_MAX_BACKLOG,
}


class GridError(ValueError):
    """A grid file or grid flag that cannot be run; the message is one line."""


@dataclass(frozen=True)
class Cell:
    """One point of the grid.

    Attributes:
        id: position in the grid's cell list (0-based).
        workers: number of pullers.
        arrival: inter-arrival distribution.
        service: service-time distribution.
        maxsize: queue capacity (0 = unbounded).
    """

    id: int
    workers: int
    arrival: Distribution
    service: Distribution
    maxsize: int

    def params(self) -> dict[str, Any]:
        """The cell's parameters as the plain values stored in ``cells.parquet`` and the manifest."""
        offered = self.service.mean / self.arrival.mean
        return {
            "cell": self.id,
            "workers": self.workers,
            "arrival": self.arrival.spec,
            "service": self.service.spec,
            "maxsize": self.maxsize,
            "arrival_mean": self.arrival.mean,
            "arrival_cv": self.arrival.cv,
            "service_mean": self.service.mean,
            "service_cv": self.service.cv,
            "offered_load": offered,
            "rho": offered / self.workers,
        }


@dataclass(frozen=True)
class Grid:
    """Axes and settings of a run; :meth:`cells` is their cartesian product."""

    workers: tuple[int, ...]
    arrival: tuple[Distribution, ...]
    service: tuple[Distribution, ...]
    maxsize: tuple[int, ...] = (0,)
    items: int | None = None
    duration: float | None = None
    replications: int = 1
    seed: int = 0
    clock: str = "virtual"
    max_backlog: int = DEFAULT_MAX_BACKLOG
    engine: str = "asyncio"  # "asyncio" (the real program) or "recurrence" (bench/recurrence.py)
    loop: str = "asyncio"  # event loop under scaled/real clocks: "asyncio" or "uvloop"

    @property
    def scale(self) -> float | None:
        """Real seconds per model second under the grid's clock; ``None`` in virtual time."""
        return parse_clock(self.clock)

    def cells(self) -> list[Cell]:
        """Return every cell, ``workers`` varying fastest."""
        combos = itertools.product(self.arrival, self.service, self.maxsize, self.workers)
        return [Cell(i, w, a, s, m) for i, (a, s, m, w) in enumerate(combos)]

    def to_dict(self) -> dict[str, Any]:
        """The grid as plain values (what a grid file holding it would say)."""
        return {
            "workers": list(self.workers),
            "arrival": [d.spec for d in self.arrival],
            "service": [d.spec for d in self.service],
            "maxsize": list(self.maxsize),
            "items": self.items,
            "duration": self.duration,
            "replications": self.replications,
            "seed": self.seed,
            "clock": self.clock,
            "max_backlog": self.max_backlog,
        }


def streams(seed: int, cell: Cell, replication: int) -> tuple[Stream, Stream]:
    """Return the (arrivals, services) streams of one replication of a cell.

    Keyed by (crc32 of the arrival spec, crc32 of the service spec, maxsize, replication, purpose)
    under ``SeedSequence(seed)``, so they do not depend on ``workers`` or on the rest of the grid.
    """
    key = (zlib.crc32(cell.arrival.spec.encode()), zlib.crc32(cell.service.spec.encode()), cell.maxsize, replication)
    rngs = [np.random.Generator(np.random.PCG64(np.random.SeedSequence(seed, spawn_key=(*key, p)))) for p in (0, 1)]
    return Stream(cell.arrival, rngs[0]), Stream(cell.service, rngs[1])


def load_grid(path: Path | str) -> dict[str, Any]:
    """Read a grid file into a dict of raw values (validated by :func:`make_grid`).

    Raises:
        GridError: the file is missing, unreadable or not valid TOML.
    """
    path = Path(path)
    try:
        text = path.read_bytes()
    except OSError as err:
        raise GridError(f"cannot read grid file {str(path)!r}: {err.strerror or err}") from None
    try:
        return tomllib.loads(text.decode("utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as err:
        raise GridError(f"grid file {str(path)!r} is not valid TOML: {err}") from None


def make_grid(raw: dict[str, Any]) -> Grid:
    """Validate raw values (from a grid file, flags or both) and build a :class:`Grid`.

    Raises:
        GridError: an unknown key, an empty or duplicated axis, a bad value or distribution spec,
            or both or neither of ``items`` and ``duration``.
    """
    unknown = sorted(set(raw) - set(AXES) - set(SETTINGS))
    if unknown:
        raise GridError(f"unknown grid key(s): {', '.join(unknown)} (known: {', '.join(AXES + SETTINGS)})")
    values = {**_DEFAULTS, **{k: v for k, v in raw.items() if v is not None}}
    for name in ("workers", "arrival", "service"):
        if name not in values:
            raise GridError(f"the grid needs a '{name}' axis")
    workers = _axis(values, "workers", _whole(1))
    maxsize = _axis(values, "maxsize", _whole(0))
    arrival = _axis(values, "arrival", _spec)
    service = _axis(values, "service", _spec)
    items, duration = values.get("items"), values.get("duration")
    if (items is None) == (duration is None):
        raise GridError("give exactly one of 'items' (number of puts) or 'duration' (model seconds)")
    if items is not None:
        items = _whole(1)("items", items)
    if duration is not None:
        duration = _positive("duration", duration)
    replications = _whole(1)("replications", values["replications"])
    seed = _whole(0)("seed", values["seed"])
    clock = values["clock"]
    try:
        parse_clock(clock)
    except ValueError as err:
        raise GridError(str(err)) from None
    max_backlog = _whole(1)("max_backlog", values["max_backlog"])
    return Grid(workers, arrival, service, maxsize, items, duration, replications, seed, str(clock), max_backlog)


def override(raw: dict[str, Any], **flags: Any) -> dict[str, Any]:
    """Return ``raw`` with every flag that was given replacing its key (``items`` and ``duration``
    replace each other)."""
    merged = dict(raw)
    given = {k: v for k, v in flags.items() if v is not None}
    if "items" in given:
        merged.pop("duration", None)
    if "duration" in given:
        merged.pop("items", None)
    merged.update(given)
    return merged


def _axis(values: dict[str, Any], name: str, check) -> tuple:
    raw = values[name]
    if not isinstance(raw, list):
        raw = [raw]
    if not raw:
        raise GridError(f"axis '{name}' is empty")
    items = tuple(check(name, v) for v in raw)
    keys = [getattr(v, "spec", v) for v in items]
    dupes = sorted({str(k) for k in keys if keys.count(k) > 1})
    if dupes:
        raise GridError(f"axis '{name}' repeats {', '.join(dupes)}")
    return items


def _whole(low: int):
    def check(name: str, value: Any) -> int:
        if isinstance(value, bool) or not isinstance(value, int):
            if isinstance(value, float) and value.is_integer():
                value = int(value)
            elif isinstance(value, str) and value.strip().lstrip("-").isdigit():
                value = int(value)
            else:
                raise GridError(f"'{name}' must be a whole number >= {low}, got {value!r}")
        if value < low:
            raise GridError(f"'{name}' must be >= {low}, got {value}")
        return value

    return check


def _positive(name: str, value: Any) -> float:
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise GridError(f"'{name}' must be a number, got {value!r}") from None
    if isinstance(value, bool) or not math.isfinite(number) or number <= 0:
        raise GridError(f"'{name}' must be a finite number > 0, got {value!r}")
    return number


def _spec(name: str, value: Any) -> Distribution:
    if not isinstance(value, str):
        raise GridError(f"axis '{name}' holds {value!r}; distribution specs are strings like 'exp:1'")
    try:
        return parse(value)
    except SpecError as err:
        raise GridError(f"{name}: {err}") from None

