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
    engine = "asyncio"                      # or "recurrence" (exact FIFO recurrences, virtual clock only),
                                            # or "auto" (recurrence where it is exact, else asyncio)
    loop = "asyncio"                        # the real loop of scaled and real clocks, or "uvloop"
    slo = ["wait_p99<=5"]                   # targets (all must hold): the report says which cells meet them
    record = "items"                        # keep every item, "sample:0.01" a seeded 1%, or "summary" none
                                            # (every level keeps each replication's digest: report, compare)

Scenario and behaviour axes and settings (the README has the grammar)::

    scenario = ["pool"]                     # built-in name, "path/file.py:NAME" or "module:NAME"
    discipline = ["fifo", "priority"]       # or "lifo"
    classes = "high:0.2,low:0.8"            # item classes (priority order) and their mix
    patience = ["none", "exp:10"]           # time an item waits before it is abandoned
    batch = [1, 4]                          # most items a worker takes at once
    linger = 0.0                            # seconds a worker waits for a batch to fill
    setup = "const:0.5"                     # per-batch setup time (batch = setup + its services)
    failure = [0.0, 0.1]                    # probability that an attempt fails
    attempts = 3                            # most attempts per item (the first included)
    backoff = "expo:0.5:30:jitter"          # wait before a retry: none, const:D, expo:BASE:CAP[:jitter]

An arrival spec joining specs with ``+`` (``exp:2+exp:3``) runs one pusher per part.

Traffic over time and elastic workers::

    arrival = ["sine:1:0.8:86400"]          # arrival processes (bench/processes.py): schedule:, sine:,
                                            # bursts:, trace: (their rate changes over time)
    workers = [12, "auto:min=4,max=16,up=depth>20,down=idle>60,start=30"]   # fixed, or elastic
    backlog0 = [0, 500]                     # items already queued at t = 0 (recovery after an outage)

Random numbers come from one ``numpy.random.SeedSequence(seed)``: each (arrival, service, maxsize,
replication) and purpose (0 = arrivals, 1 = services) gets its own stream, keyed by the specs'
text rather than their position in the grid. Cells that differ only in ``workers`` therefore see the
same arrivals and service times (common random numbers), and so do two runs with the same seed.
A scenario's other streams (classes, patience, failures, each pusher's, a user's own) are siblings
of the arrival stream keyed by name (:meth:`bench.distributions.Stream.sibling`), so they share
that key and not the behaviour axes: a FIFO cell and a priority cell see the same items.

The grid owns every setting: each is read from the file or a flag, validated here (engine and
clock compatibility, a loop that is installed, sizes that can run, times inside the virtual
clock's range), written to the manifest by :meth:`Grid.to_dict` and read back from it on resume.
"""

from __future__ import annotations

import asyncio
import collections
import dataclasses
import itertools
import math
import re
import tomllib
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from bench.behaviour import (
    DISCIPLINES,
    NO_BACKOFF,
    Backoff,
    Behaviour,
    ClassMix,
    Elastic,
    is_elastic,
    parse_backoff,
    parse_classes,
    parse_elastic,
    parse_optional_spec,
)
from bench.distributions import Distribution, SpecError, Stream, parse
from bench.errors import InputError
from bench.loop import CLOCK_RANGE, RESOLUTION
from bench.replication import ENGINES
from bench.results_format import parse_record, parse_targets
from bench.scenario import DEFAULT_PROGRAM, Scenario
from bench.scenarios import ProgramRef, resolve

__all__ = [
    "AXES", "Cell", "ENGINE_CHOICES", "Grid", "GridError", "HORIZON", "LOOPS", "SETTINGS", "choose_engine",
    "generators", "load_grid", "loop_factory", "make_grid", "override", "parse_clock", "streams",
]  # fmt: skip

AXES = ("workers", "arrival", "service", "maxsize", "scenario", "discipline", "patience", "batch", "failure",
        "backlog0")  # fmt: skip
SETTINGS = ("items", "duration", "replications", "seed", "clock", "max_backlog", "engine", "loop", "slo", "classes",
            "linger", "setup", "attempts", "backoff", "record")  # fmt: skip
#: What a grid's ``engine`` may say: an engine's name, or ``auto`` (:func:`choose_engine`).
ENGINE_CHOICES = (*ENGINES, "auto")
#: Real event loops for scaled and real clocks.
LOOPS = ("asyncio", "uvloop")
#: A cell whose queue reaches this many items is stopped (status ``capped``): memory stays bounded.
DEFAULT_MAX_BACKLOG = 1_000_000

# -- what can run: every size input is bounded, and refused beyond its bound before anything runs --

#: The longest model time, and the longest single delay, a run may use: half the virtual clock's
#: range (about 146 years), so that a time plus a delay never leaves the range.
HORIZON = CLOCK_RANGE / 2

#: Largest grid file: 100,000 cells' axes fit in a few MB of TOML.
MAX_GRID_BYTES = 16 << 20
#: Most workers: each is an asyncio task, about 1.1 kB with its coroutine (measured with
#: tracemalloc), so 100,000 take about 110 MB per process and start in a fraction of a second.
MAX_WORKERS = 100_000
#: Largest ``max_backlog``: a queued item costs about 300 bytes in the asyncio engine (the queue
#: entry, the recorder's held columns, pending depth rows; measured: 420 MB peak RSS for a cell
#: stopped at 1,000,000), so this bounds one cell's memory near 3 GB.
MAX_BACKLOG = 10_000_000
#: Most cells in a grid: the manifest lists every cell (about 0.5 kB of JSON each).
MAX_CELLS = 100_000
#: Most (cell, replication) rows: ``cells.parquet`` is read whole by the analysis (~0.5 kB a row).
MAX_ROWS = 1_000_000
#: Most items per replication: item ids travel as float64 through the recorder, exact up to 2**53.
MAX_ITEMS = 2**53
#: Largest root seed: ``numpy.random.SeedSequence`` takes up to 128 bits of entropy.
MAX_SEED = 2**128 - 1
#: Unbounded distributions (exp, gamma, ...) may have a mean of at most this share of the clock's
#: range: a sample beyond the range then needs a 1000-fold excursion (and still fails its cell).
TAIL_ROOM = 1000
#: Real seconds below which an event loop cannot keep time: one iteration of asyncio's loop costs a
#: few microseconds, so a mean delay or a whole run shorter than this is refused on a real clock.
MIN_REAL_DELAY = 1e-5
#: Largest clock scale (real seconds per model second).
MAX_SCALE = 1e6
#: Largest ``max_backlog`` for a cell that is not the plain pool (a scenario or behaviours): there a
#: queued item costs up to ~900 bytes (the item's job, its recorder row and, with patience, its
#: timeout; measured: 849 bytes with patience, 572 without), so this bounds a cell near 2.7 GB too.
MAX_BACKLOG_BEHAVIOURS = 3_000_000
#: Most items in a batch: a worker holds them all in one list while it serves them.
MAX_BATCH = 100_000
#: Most attempts per item: each failed attempt is drawn when the item is put (a list of that length).
MAX_ATTEMPTS = 1000
_DEFAULTS: dict[str, Any] = {
    "maxsize": [0],
    "scenario": [DEFAULT_PROGRAM],
    "discipline": ["fifo"],
    "patience": ["none"],
    "batch": [1],
    "failure": [0.0],
    "backlog0": [0],
    "linger": 0.0,
    "setup": "none",
    "attempts": 3,
    "backoff": "none",
    "replications": 1,
    "seed": 0,
    "clock": "virtual",
    "max_backlog": DEFAULT_MAX_BACKLOG,
    "engine": "asyncio",
    "loop": "asyncio",
    "slo": [],
    "record": "items",
}


class GridError(InputError):
    """A grid file or grid flag that cannot be run; the message is one line."""


@dataclass(frozen=True)
class Cell:
    """One point of the grid.

    Attributes:
        id: position in the grid's cell list (0-based).
        workers: number of pullers (with elastic workers, their most: ``elastic.high``).
        arrival: inter-arrival distribution.
        service: service-time distribution.
        maxsize: queue capacity (0 = unbounded).
        scenario: the scenario it runs (the built-in pool by default).
        discipline: ``fifo``, ``lifo`` or ``priority``.
        patience: how long an item waits before it is abandoned (None: for ever).
        batch: most items a worker takes at once.
        failure: probability that an attempt fails.
        backlog0: items already queued at t = 0.
        elastic: elastic workers, or None for ``workers`` fixed ones.
    """

    id: int
    workers: int
    arrival: Distribution
    service: Distribution
    maxsize: int
    scenario: ProgramRef = ProgramRef(DEFAULT_PROGRAM)
    discipline: str = "fifo"
    patience: Distribution | None = None
    batch: int = 1
    failure: float = 0.0
    backlog0: int = 0
    elastic: Elastic | None = None

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
            "scenario": self.scenario.reference,
            "discipline": self.discipline,
            "patience": self.patience.spec if self.patience is not None else "none",
            "patience_mean": self.patience.mean if self.patience is not None else None,
            "batch": self.batch,
            "failure": self.failure,
            "pushers": max(len(self.arrival.parts), 1),
            "backlog0": self.backlog0,
            "elastic": self.elastic.spec if self.elastic is not None else None,
            "stationary": self.arrival.stationary,
        }


@dataclass(frozen=True)
class Grid:
    """Axes and settings of a run; :meth:`cells` is their cartesian product."""

    workers: tuple[int | Elastic, ...]
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
    slo: tuple[str, ...] = ()  # targets, canonical text (bench.results_format.parse_target): all must hold
    programs: tuple[ProgramRef, ...] = (ProgramRef(DEFAULT_PROGRAM),)  # the 'scenario' axis
    discipline: tuple[str, ...] = ("fifo",)
    patience: tuple[Distribution | None, ...] = (None,)
    batch: tuple[int, ...] = (1,)
    failure: tuple[float, ...] = (0.0,)
    backlog0: tuple[int, ...] = (0,)
    classes: ClassMix | None = None
    linger: float = 0.0
    setup: Distribution | None = None
    attempts: int = 3
    backoff: Backoff = NO_BACKOFF
    record: str = "items"  # what is kept of the items: items, sample:F or summary (results_format.RECORD_LEVELS)

    @property
    def scale(self) -> float | None:
        """Real seconds per model second under the grid's clock; ``None`` in virtual time."""
        return parse_clock(self.clock)

    @property
    def loop_factory(self) -> Callable[[], asyncio.AbstractEventLoop] | None:
        """The real event loop of a scaled or real clock; ``None`` in virtual time."""
        return None if self.scale is None else loop_factory(self.loop)

    def scenario(self, cell: Cell) -> Scenario:
        """The program one replication of ``cell`` runs under this grid's settings (its scenario,
        queue options and behaviours)."""
        return Scenario(
            workers=cell.workers,
            arrival=cell.arrival,
            service=cell.service,
            maxsize=cell.maxsize,
            items=self.items,
            duration=self.duration,
            max_backlog=self.max_backlog,
            program=cell.scenario.reference,
            program_sha256=cell.scenario.sha256,
            behaviour=self.behaviour(cell),
            backlog0=cell.backlog0,
            elastic=cell.elastic,
        )

    def behaviour(self, cell: Cell) -> Behaviour:
        """The behaviours of ``cell``: its axes and the grid's behaviour settings."""
        return Behaviour(discipline=cell.discipline, classes=self.classes, patience=cell.patience, batch=cell.batch,
                         linger=self.linger, setup=self.setup, failure=cell.failure, attempts=self.attempts,
                         backoff=self.backoff)  # fmt: skip

    def settings_params(self) -> dict[str, Any]:
        """The behaviour settings as the plain values stored in each row of ``cells.parquet``."""
        return {"classes": self.classes.spec if self.classes is not None else None, "linger": self.linger,
                "setup": self.setup.spec if self.setup is not None else "none", "attempts": self.attempts,
                "backoff": self.backoff.spec, "setup_mean": self.setup.mean if self.setup is not None else None}  # fmt: skip

    def cells(self) -> list[Cell]:
        """Return every cell, ``workers`` varying fastest (the scenario and behaviour axes slowest,
        so a grid without them numbers its cells as before)."""
        combos = itertools.product(self.programs, self.discipline, self.patience, self.batch, self.failure,
                                   self.backlog0, self.arrival, self.service, self.maxsize, self.workers)  # fmt: skip
        return [Cell(i, w.high if isinstance(w, Elastic) else w, a, s, m, sc, d, pt, b, f, k,
                     w if isinstance(w, Elastic) else None)
                for i, (sc, d, pt, b, f, k, a, s, m, w) in enumerate(combos)]  # fmt: skip

    def inputs(self) -> list[dict[str, str]]:
        """Every input file of the grid, for the manifest: each empirical distribution's file and
        each user scenario's file, as ``{"spec", "path", "sha256"}`` (``--resume`` compares them)."""
        dists = [*self.arrival, *self.service, *self.patience, self.setup]
        found = [{"spec": d.spec, "path": path, "sha256": digest} for d in dists if d is not None
                 for path, digest in d.inputs]  # fmt: skip
        found += [{"spec": f"scenario {r.reference}", "path": r.path, "sha256": r.sha256} for r in self.programs
                  if r.path is not None and r.sha256 is not None]  # fmt: skip
        return found

    def to_dict(self) -> dict[str, Any]:
        """The grid as plain values (what a grid file holding it would say)."""
        return {
            "workers": [w.spec if isinstance(w, Elastic) else w for w in self.workers],
            "arrival": [d.spec for d in self.arrival],
            "service": [d.spec for d in self.service],
            "maxsize": list(self.maxsize),
            "items": self.items,
            "duration": self.duration,
            "replications": self.replications,
            "seed": self.seed,
            "clock": self.clock,
            "max_backlog": self.max_backlog,
            "engine": self.engine,
            "loop": self.loop,
            "slo": list(self.slo),
            "scenario": [r.reference for r in self.programs],
            "discipline": list(self.discipline),
            "patience": [d.spec if d is not None else "none" for d in self.patience],
            "batch": list(self.batch),
            "failure": list(self.failure),
            "backlog0": list(self.backlog0),
            "classes": self.classes.spec if self.classes is not None else None,
            "linger": self.linger,
            "setup": self.setup.spec if self.setup is not None else "none",
            "attempts": self.attempts,
            "backoff": self.backoff.spec,
            "record": self.record,
        }


def _record(value: Any) -> str:
    """The grid's record level, canonical (``results_format.parse_record``)."""
    try:
        return parse_record(value)
    except InputError as err:
        raise GridError(str(err)) from None


def loop_factory(name: str) -> Callable[[], asyncio.AbstractEventLoop]:
    """Return a factory of real event loops for scaled and real clocks: ``asyncio`` or ``uvloop``.

    Raises:
        GridError: an unknown name, or ``uvloop`` when it is not installed (extra ``uvloop``).
    """
    if name == "asyncio":
        return asyncio.new_event_loop
    if name == "uvloop":
        try:
            import uvloop
        except ImportError:
            raise GridError("loop 'uvloop' needs the uvloop package (the project's 'uvloop' extra)") from None
        return uvloop.new_event_loop
    raise GridError(f"bad loop {name!r}: use one of {', '.join(LOOPS)}")


def parse_clock(spec: str) -> float | None:
    """Parse a clock spec: ``virtual`` gives ``None``; ``scaled:F`` gives F; ``real`` gives 1.0.

    Under ``scaled:F`` one model second lasts F real seconds on a real event loop.

    Raises:
        GridError: anything else, or F not a finite number > 0.
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
        raise GridError(f"bad clock {spec!r}: scaled:F needs a finite factor F > 0, e.g. scaled:0.01")
    raise GridError(f"bad clock {spec!r}: use virtual, real or scaled:F (e.g. scaled:0.01)")


def choose_engine(name: str, clock: str = "virtual") -> str:
    """The engine a grid runs: ``name`` itself, or for ``auto`` the recurrence engine where it is
    exact, the asyncio engine otherwise.

    The recurrence engine reproduces the asyncio engine item by item (a test holds them to it) for
    the scenario as it is today, a FIFO queue with or without a bound, whenever the clock is
    virtual; on a scaled or real clock only the asyncio engine runs. A grid with a cell the
    recurrences do not model (a queue behaviour, a user's scenario) sends ``auto`` to the asyncio
    engine (:func:`make_grid`).

    Raises:
        GridError: an unknown name or clock.
    """
    name = _choice("engine", name, ENGINE_CHOICES)
    if name != "auto":
        return name
    return "recurrence" if parse_clock(clock) is None else "asyncio"


def generators(seed: int, cell: Cell, replication: int) -> tuple[np.random.Generator, np.random.Generator]:
    """The (arrivals, services) random generators of one replication of a cell.

    Keyed by (crc32 of the arrival spec, crc32 of the service spec, maxsize, replication, purpose)
    under ``SeedSequence(seed)``, so they do not depend on ``workers`` or on the rest of the grid.
    """
    key = (zlib.crc32(cell.arrival.spec.encode()), zlib.crc32(cell.service.spec.encode()), cell.maxsize, replication)
    rngs = [np.random.Generator(np.random.PCG64(np.random.SeedSequence(seed, spawn_key=(*key, p)))) for p in (0, 1)]
    return rngs[0], rngs[1]


def streams(seed: int, cell: Cell, replication: int) -> tuple[Stream, Stream]:
    """Return the (arrivals, services) streams of one replication of a cell, drawn from
    :func:`generators` (common random numbers across worker counts)."""
    arrivals, services = generators(seed, cell, replication)
    return Stream(cell.arrival, arrivals), Stream(cell.service, services)


def load_grid(path: Path | str) -> dict[str, Any]:
    """Read a grid file into a dict of raw values (validated by :func:`make_grid`).

    Raises:
        GridError: the file is missing, unreadable or not valid TOML.
    """
    path = Path(path)
    try:
        with path.open("rb") as handle:
            text = handle.read(MAX_GRID_BYTES + 1)  # a device or a huge file is not read whole
    except OSError as err:
        raise GridError(f"cannot read grid file {str(path)!r}: {err.strerror or err}") from None
    if len(text) > MAX_GRID_BYTES:
        raise GridError(f"grid file {str(path)!r} is larger than {MAX_GRID_BYTES >> 20} MB; a grid of the largest size "
                        "allowed fits in far less")  # fmt: skip
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
    workers = _axis(values, "workers", _workers)
    maxsize = _axis(values, "maxsize", _whole(0))
    arrival = _axis(values, "arrival", _spec)
    service = _axis(values, "service", _spec)
    items, duration = values.get("items"), values.get("duration")
    if (items is None) == (duration is None):
        raise GridError("give exactly one of 'items' (number of puts) or 'duration' (model seconds)")
    if items is not None:
        items = _whole(1, MAX_ITEMS, " (item ids must stay exact in float64)")("items", items)
    if duration is not None:
        duration = _duration(duration)
    replications = _whole(1, MAX_ROWS, " (one row of cells.parquet each)")("replications", values["replications"])
    seed = _whole(0, MAX_SEED, " (SeedSequence takes 128 bits)")("seed", values["seed"])
    clock = str(values["clock"])
    parse_clock(clock)
    max_backlog = _whole(1, MAX_BACKLOG, " (a queued item costs ~300 bytes)")("max_backlog", values["max_backlog"])
    engine, loop = choose_engine(values["engine"], clock), _choice("loop", values["loop"], LOOPS)
    slo = _targets(values["slo"])
    behaviours = _behaviours(values)
    grid = Grid(workers, arrival, service, maxsize, items, duration, replications, seed, clock, max_backlog, engine,
                loop, slo, **behaviours, record=_record(values["record"]))  # fmt: skip
    _check_behaviours(grid)
    _check_backlog0(grid)
    if values["engine"] == "auto" and grid.engine == "recurrence" and any(_plain(grid, c) for c in grid.cells()):
        grid = dataclasses.replace(grid, engine="asyncio")  # a behaviour the recurrences do not model
    _check_engine(grid)
    _check_size(grid)
    _check_range(grid)
    _check_real_time(grid)
    return grid


def _behaviours(values: dict[str, Any]) -> dict[str, Any]:
    """The scenario and behaviour axes and settings, validated (see the module docstring)."""
    found: dict[str, Any] = {
        "discipline": _axis(values, "discipline", _discipline),
        "patience": _axis(values, "patience", parse_optional_spec),
        "batch": _axis(values, "batch", _whole(1, MAX_BATCH, " (a worker holds a batch in one list)")),
        "failure": _axis(values, "failure", _probability),
        "backlog0": _axis(values, "backlog0", _whole(0, MAX_BACKLOG, " (items queued at t = 0)")),
        "classes": parse_classes(values.get("classes")),
        "linger": _seconds("linger", values["linger"]),
        "setup": parse_optional_spec("setup", values["setup"]),
        "attempts": _whole(1, MAX_ATTEMPTS, " (an item's attempts are drawn when it is put)")("attempts",
                                                                                              values["attempts"]),
        "backoff": parse_backoff(values["backoff"]),
    }  # fmt: skip
    found["programs"] = _axis(values, "scenario", lambda name, value: resolve(value))
    return found


def _workers(name: str, value: Any) -> int | Elastic:
    """A ``workers`` value: a whole number of workers, or elastic workers ``auto:...``."""
    if is_elastic(value):
        return parse_elastic(value, MAX_WORKERS)
    return _whole(1, MAX_WORKERS, " (each worker is an asyncio task, ~1.1 kB)")(name, value)


def _check_backlog0(grid: Grid) -> None:
    """A backlog at t = 0 must fit: in a bounded queue, below the backlog cap, within an items run."""
    for k in grid.backlog0:
        if not k:
            continue
        if k >= grid.max_backlog:
            raise GridError(f"'backlog0' {k:,} reaches max_backlog {grid.max_backlog:,}: the run would stop at its "
                            "start; raise max_backlog")  # fmt: skip
        bounded = [m for m in grid.maxsize if m and m < k]
        if bounded:
            raise GridError(f"'backlog0' {k:,} does not fit in a queue of maxsize {bounded[0]:,}: items already queued "
                            "at t = 0 must fit in it")  # fmt: skip
        if grid.items is not None and k > grid.items:
            raise GridError(f"'backlog0' {k:,} is more than the run's items = {grid.items:,} (the backlog's items count "
                            "among them)")  # fmt: skip


def _discipline(name: str, value: Any) -> str:
    if not isinstance(value, str) or value.strip().lower() not in DISCIPLINES:
        raise GridError(f"'{name}' must be one of {', '.join(DISCIPLINES)}, got {_short(value)}")
    return value.strip().lower()


def _probability(name: str, value: Any) -> float:
    """A probability in [0, 1): a number, or a decimal written plainly."""
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise GridError(f"'{name}' must be a probability in [0, 1), got {_short(value)}")
    if isinstance(value, str) and not _DECIMAL.fullmatch(value.strip()):
        raise GridError(f"'{name}' must be a probability in [0, 1), got {_short(value)}")
    number = float(value)
    if not 0 <= number < 1:
        raise GridError(f"'{name}' must be a probability in [0, 1) (an attempt that always fails never ends), "
                        f"got {_short(value)}")  # fmt: skip
    return number


def _seconds(name: str, value: Any) -> float:
    """A time in seconds >= 0 that a delay may last (below the clock's horizon)."""
    if (
        isinstance(value, bool)
        or not isinstance(value, int | float | str)
        or (isinstance(value, str) and not _DECIMAL.fullmatch(value.strip()))
    ):
        raise GridError(f"'{name}' must be a number of seconds >= 0, got {_short(value)}")
    number = float(value)
    if not (math.isfinite(number) and 0 <= number < HORIZON):
        raise GridError(f"'{name}' must be a number of seconds in [0, {HORIZON:.4g}), got {_short(value)}")
    return number


def _check_behaviours(grid: Grid) -> None:
    """Behaviours that need one another, and specs that only an arrival may merge."""
    if "priority" in grid.discipline and grid.classes is None:
        raise GridError("discipline 'priority' needs item classes: set classes, e.g. classes = \"high:0.2,low:0.8\" "
                        "(the first class is served first)")  # fmt: skip
    processes = [d.spec for d in grid.service if d.process is not None]
    if processes:
        raise GridError(f"service: {processes[0]!r} is an arrival process (a rate over time); only an arrival spec "
                        "may be one")  # fmt: skip
    merged = [d.spec for d in grid.service if d.parts]
    if merged:
        raise GridError(f"service: {merged[0]!r} merges several streams (A+B); only an arrival spec may (one pusher "
                        "per part)")  # fmt: skip


def _plain(grid: Grid, cell: Cell) -> str | None:
    """Why ``cell`` is not the plain FIFO pool (the one program the recurrence engine computes), or None."""
    behaviour = grid.behaviour(cell)
    reasons = [
        (not cell.scenario.builtin, f"scenario {cell.scenario.name!r}"),
        (cell.discipline != "fifo", f"discipline {cell.discipline!r}"),
        (behaviour.classes is not None, "item classes"),
        (cell.patience is not None, f"patience {cell.patience.spec if cell.patience else ''!r}"),
        (cell.batch != 1 or behaviour.setup is not None, "batches"),
        (cell.failure != 0, f"failure {cell.failure:g}"),
        (bool(cell.arrival.parts), f"{len(cell.arrival.parts)} pushers ({cell.arrival.spec!r})"),
        (cell.elastic is not None, f"elastic workers {cell.elastic.spec if cell.elastic else ''!r} (asyncio only)"),
    ]
    return next((why for applies, why in reasons if applies), None)


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
    if len(raw) > MAX_CELLS:
        raise GridError(f"axis '{name}' has {len(raw):,} values; a grid holds at most {MAX_CELLS:,} cells")
    items = tuple(check(name, v) for v in raw)
    counts = collections.Counter(getattr(v, "spec", v) for v in items)
    dupes = sorted(str(k) for k, n in counts.items() if n > 1)
    if dupes:
        raise GridError(f"axis '{name}' repeats {', '.join(dupes)}")
    return items


def _whole(low: int, high: int | None = None, why: str = ""):
    def check(name: str, value: Any) -> int:
        if isinstance(value, bool) or not isinstance(value, int):
            if isinstance(value, float) and value.is_integer():
                value = int(value)
            elif isinstance(value, str) and _WHOLE.fullmatch(value.strip()):
                value = int(value)
            else:
                raise GridError(f"'{name}' must be a whole number >= {low}, got {_short(value)}")
        if value < low:
            raise GridError(f"'{name}' must be >= {low}, got {_short(value)}")
        if high is not None and value > high:
            raise GridError(f"'{name}' must be <= {high:,}{why}, got {_short(value)}")
        return value

    return check


#: Whole numbers and decimals written plainly, in ASCII digits (no ``1_000``, no other scripts' digits).
_WHOLE = re.compile(r"[+-]?[0-9]+")
_DECIMAL = re.compile(r"[+-]?([0-9]+\.?[0-9]*|\.[0-9]+)([eE][+-]?[0-9]+)?")


def _short(value: Any) -> str:
    """A value for a message: very long numbers and texts are shortened."""
    if isinstance(value, int) and not isinstance(value, bool) and abs(value) >= 10**16:
        return f"{float(value):.3g}"
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


def _duration(value: Any) -> float:
    name = "duration"
    if isinstance(value, str) and not _DECIMAL.fullmatch(value.strip()):
        raise GridError(f"'{name}' must be a number, got {_short(value)}")
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise GridError(f"'{name}' must be a number, got {_short(value)}") from None
    if isinstance(value, bool) or not math.isfinite(number) or number <= 0:
        raise GridError(f"'{name}' must be a finite number > 0, got {value!r}")
    if not RESOLUTION <= number < HORIZON:
        raise GridError(f"'{name}' must lie in [{RESOLUTION:g}, {HORIZON:.4g}) s: the virtual clock counts int64 "
                        f"nanoseconds (a run may use half that range, about 146 years), got {number:g}")  # fmt: skip
    return number


def _choice(name: str, value: Any, known: tuple[str, ...]) -> str:
    if value not in known:
        raise GridError(f"'{name}' must be one of {', '.join(known)}, got {value!r}")
    return value


def _targets(value: Any) -> tuple[str, ...]:
    """The ``slo`` setting: a list of targets (one string is a list of one), in canonical text."""
    texts = [value] if isinstance(value, str) else value
    if not isinstance(texts, list | tuple):
        raise GridError(f"'slo' must be a list of targets like ['wait_p99<=5'], got {_short(value)}")
    return tuple(str(target) for target in parse_targets(list(texts)))


def _check_engine(grid: Grid) -> None:
    """The engine must run on the grid's clock, and a real loop other than asyncio's needs a real
    clock and its package."""
    if grid.engine == "recurrence" and grid.scale is not None:
        raise GridError(f"the recurrence engine computes in virtual time; it cannot run on clock {grid.clock!r}")
    if grid.engine == "recurrence":
        for cell in grid.cells():
            why = _plain(grid, cell)
            if why is not None:
                raise GridError(f"the recurrence engine computes the plain FIFO pool only (one pusher, fifo, no "
                                f"classes, patience, batches or failures); cell {cell.id} has {why}: use --engine "
                                "asyncio")  # fmt: skip
    if grid.loop != "asyncio":
        if grid.scale is None:
            raise GridError(f"loop {grid.loop!r} is for scaled and real clocks; the virtual clock has its own loop")
        loop_factory(grid.loop)


def _check_size(grid: Grid) -> None:
    """Refuse grids too large to run (see the MAX_* bounds above)."""
    cells = math.prod(len(axis) for axis in (grid.workers, grid.arrival, grid.service, grid.maxsize, grid.programs,
                                             grid.discipline, grid.patience, grid.batch, grid.failure,
                                             grid.backlog0))  # fmt: skip
    if cells > MAX_CELLS:
        raise GridError(f"the grid has {cells:,} cells; at most {MAX_CELLS:,} (the manifest lists every cell)")
    if cells * grid.replications > MAX_ROWS:
        raise GridError(f"{cells:,} cells x {grid.replications:,} replications = {cells * grid.replications:,} rows; "
                        f"at most {MAX_ROWS:,} (cells.parquet is read whole)")  # fmt: skip
    if grid.max_backlog > MAX_BACKLOG_BEHAVIOURS:
        general = next((c for c in grid.cells() if _plain(grid, c) is not None), None)
        if general is not None:
            raise GridError(f"'max_backlog' must be <= {MAX_BACKLOG_BEHAVIOURS:,} for cells with a scenario or "
                            f"behaviours (a queued item costs up to ~900 bytes there; cell {general.id} has "
                            f"{_plain(grid, general)}), got {grid.max_backlog:,}")  # fmt: skip
    too_big = [m for m in grid.maxsize if m > grid.max_backlog]
    if too_big:
        raise GridError(f"'maxsize' {too_big[0]:,} is above max_backlog {grid.max_backlog:,}: the run stops at "
                        "max_backlog queued items anyway; use maxsize = 0 (unbounded) or raise max_backlog")  # fmt: skip


def _check_range(grid: Grid) -> None:
    """Refuse specs and lengths whose model times can pass the clock's range or fall below its
    resolution (there every delay would round to zero)."""
    extra = (("patience", tuple(d for d in grid.patience if d is not None)), ("setup", (grid.setup,) if grid.setup
             else ()))  # fmt: skip
    for name, dists in (("arrival", grid.arrival), ("service", grid.service), *extra):
        for dist in (part for d in dists for part in (d.parts or (d,))):
            where = f"{name}: {dist.spec!r}"
            if dist.mean < RESOLUTION:
                raise GridError(f"{where} has mean {dist.mean:g} s, below the clock's resolution of 1 ns: every "
                                "delay would round to 0")  # fmt: skip
            if math.isfinite(dist.high) and dist.high > HORIZON:
                raise GridError(f"{where} can draw {dist.high:g} s, beyond the {HORIZON:.4g} s a delay may last "
                                "(half the virtual clock's range of int64 nanoseconds, about 146 years)")  # fmt: skip
            if math.isinf(dist.high) and dist.mean > HORIZON / TAIL_ROOM:
                raise GridError(f"{where} has mean {dist.mean:g} s: an unbounded distribution may have a mean of "
                                f"at most {HORIZON / TAIL_ROOM:.4g} s (1/{TAIL_ROOM} of the {HORIZON:.4g} s a run "
                                "may span)")  # fmt: skip
    for dist in (part for d in grid.arrival for part in (d.parts or (d,)) if part.process is not None):
        where = f"arrival: {dist.spec!r}"
        if dist.horizon >= HORIZON:
            raise GridError(f"{where} names a time of {dist.horizon:g} s, beyond the {HORIZON:.4g} s a run may span "
                            "(half the virtual clock's range of int64 nanoseconds)")  # fmt: skip
        if dist.peak * RESOLUTION > 1:
            raise GridError(f"{where} has a rate of {dist.peak:g} items/s: its gaps would be below the clock's "
                            "resolution of 1 ns")  # fmt: skip
    slowest = min(max(w.low, 1) if isinstance(w, Elastic) else w for w in grid.workers)
    for arrival in grid.arrival:
        if grid.items is not None:
            for service in grid.service:
                horizon = grid.items * max(arrival.mean, service.mean / slowest)
                if horizon >= HORIZON:
                    raise GridError(f"{grid.items:,} items of arrival {arrival.spec!r} and service {service.spec!r} "
                                    f"take about {horizon:.3g} s, beyond the {HORIZON:.4g} s a run may span "
                                    "(half the virtual clock's range); run fewer items")  # fmt: skip
        else:
            assert grid.duration is not None  # exactly one of items and duration (checked on load)
            rate = max(1.0 / arrival.mean, arrival.peak if arrival.process is not None else 0.0)
            if grid.duration * rate > MAX_ITEMS:
                raise GridError(f"a duration of {grid.duration:g} s holds about {grid.duration * rate:.3g} "
                                f"arrivals of {arrival.spec!r}; at most {MAX_ITEMS:.3g} per replication")  # fmt: skip


def _check_real_time(grid: Grid) -> None:
    """On a scaled or real clock, refuse what no event loop can keep pace with."""
    scale = grid.scale
    if scale is None:
        return
    if scale > MAX_SCALE:
        raise GridError(f"clock {grid.clock!r}: a scale above {MAX_SCALE:g} real seconds per model second cannot run")
    extra = (("patience", tuple(d for d in grid.patience if d is not None)), ("setup", (grid.setup,) if grid.setup
             else ()))  # fmt: skip
    for name, dists in (("arrival", grid.arrival), ("service", grid.service), *extra):
        for dist in (part for d in dists for part in (d.parts or (d,))):
            real = dist.mean * scale
            if real < MIN_REAL_DELAY:
                raise GridError(f"clock {grid.clock!r}: the mean {name} {dist.spec!r} would last {real:.3g} real s, "
                                f"below the ~{MIN_REAL_DELAY:g} s an event loop needs per event; use a scale of at "
                                f"least {MIN_REAL_DELAY / dist.mean:.3g} or the virtual clock")  # fmt: skip
    if grid.duration is not None and grid.duration * scale < MIN_REAL_DELAY:
        raise GridError(
            f"clock {grid.clock!r}: a duration of {grid.duration:g} model s would last "
            f"{grid.duration * scale:.3g} real s; an event loop cannot keep time that short"
        )


def _spec(name: str, value: Any) -> Distribution:
    if not isinstance(value, str):
        raise GridError(f"axis '{name}' holds {value!r}; distribution specs are strings like 'exp:1'")
    try:
        return parse(value)
    except SpecError as err:
        raise GridError(f"{name}: {err}") from None
