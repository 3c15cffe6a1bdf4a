"""Queue behaviours of the built-in worker pool, as specs: discipline, classes, patience, batches, retries.

A :class:`Behaviour` says how the pool (:mod:`bench.scenarios.pool`) treats its items beyond the
plain pusher/puller program: which item a free worker takes (``fifo``, ``lifo`` or ``priority`` by
class), the item classes drawn from a mix (``high:0.2,low:0.8``), how long an item waits before it
is abandoned (a patience distribution), how many items a worker takes at once (a batch, waiting a
linger time for more, with a per-batch setup time), and how an item fails and is retried (a
probability per attempt, a number of attempts, a backoff between them). Several pushers come from
a merged arrival spec (``exp:2+exp:3``, :mod:`bench.distributions`). The default behaviour is the
plain program (:attr:`Behaviour.plain`), which runs as :mod:`bench.scenario` does.

Every parser here raises :class:`BehaviourError` (bad input: one line, exit status 2) naming the
setting and what is wrong. This module depends only on :mod:`bench.distributions` and
:mod:`bench.errors`.
"""

from __future__ import annotations

import bisect
import math
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from bench.distributions import Distribution, SpecError, parse
from bench.errors import InputError

__all__ = [
    "DISCIPLINES", "NO_BACKOFF", "Backoff", "Behaviour", "BehaviourError", "ClassMix", "Elastic", "ElasticError",
    "is_elastic", "parse_backoff", "parse_classes", "parse_elastic", "parse_optional_spec",
]  # fmt: skip

#: Queue disciplines: asyncio.Queue, asyncio.LifoQueue, asyncio.PriorityQueue (by class).
DISCIPLINES = ("fifo", "lifo", "priority")
#: Most item classes in a mix (each gets its own statistics).
MAX_CLASSES = 64
#: Class weights must sum to 1 within this.
WEIGHT_TOLERANCE = 1e-9

_NAME = re.compile(r"[A-Za-z0-9_.-]{1,40}")
_NUMBER = re.compile(r"[+-]?([0-9]+\.?[0-9]*|\.[0-9]+)([eE][+-]?[0-9]+)?")


class BehaviourError(InputError):
    """A behaviour setting that cannot be used; the message is one line naming it."""


@dataclass(frozen=True)
class ClassMix:
    """Item classes and the probability of each, in priority order (the first is served first
    under the ``priority`` discipline).

    Attributes:
        names: class names, highest priority first.
        weights: their probabilities (summing to 1).
    """

    names: tuple[str, ...]
    weights: tuple[float, ...]

    @property
    def spec(self) -> str:
        """The canonical text, e.g. ``high:0.2,low:0.8``."""
        return ",".join(f"{n}:{_show(w)}" for n, w in zip(self.names, self.weights))

    def pick(self, u: float) -> int:
        """The class index of a uniform draw ``u`` in [0, 1) (inverse of the cumulative weights)."""
        return min(bisect.bisect_right(self._cumulative, u), len(self.names) - 1)

    @property
    def _cumulative(self) -> list[float]:
        total, out = 0.0, []
        for weight in self.weights:
            total += weight
            out.append(total)
        return out


def parse_classes(text: Any) -> ClassMix | None:
    """Parse a class mix ``NAME:WEIGHT[,NAME:WEIGHT...]``; ``none`` (or None) for no classes.

    Raises:
        BehaviourError: a malformed entry, a repeated name, a weight outside (0, 1], weights that
            do not sum to 1, or more than :data:`MAX_CLASSES` classes.
    """
    if text is None or (isinstance(text, str) and text.strip().lower() in ("", "none")):
        return None
    if not isinstance(text, str):
        raise BehaviourError(f"classes: expected text like 'high:0.2,low:0.8', got {text!r}")
    names, weights = [], []
    for entry in text.split(","):
        name, sep, weight = entry.strip().partition(":")
        name, weight = name.strip(), weight.strip()
        if not sep or not _NAME.fullmatch(name) or not _NUMBER.fullmatch(weight):
            raise BehaviourError(f"classes: bad entry {entry.strip()!r} in {text!r}; use NAME:WEIGHT pairs, e.g. "
                                 "high:0.2,low:0.8 (names of letters, digits, '_', '-', '.')")  # fmt: skip
        value = float(weight)
        if not 0 < value <= 1:
            raise BehaviourError(f"classes: the weight of {name!r} must be in (0, 1], got {weight}")
        if name in names:
            raise BehaviourError(f"classes: {name!r} is given twice in {text!r}")
        names.append(name)
        weights.append(value)
    if len(names) > MAX_CLASSES:
        raise BehaviourError(f"classes: at most {MAX_CLASSES} classes, got {len(names)}")
    total = math.fsum(weights)
    if abs(total - 1) > WEIGHT_TOLERANCE:
        raise BehaviourError(f"classes: the weights of {text!r} sum to {total:.6g}; they must sum to 1")
    return ClassMix(tuple(names), tuple(weights))


@dataclass(frozen=True)
class Backoff:
    """The wait before a failed item is put back on the queue.

    Attributes:
        kind: ``none`` (at once), ``const`` (``base`` seconds) or ``expo`` (``min(cap, base *
            2**(attempt - 1))`` after failed attempt ``attempt``).
        base: seconds.
        cap: the longest wait of ``expo``, seconds.
        jitter: draw the wait uniformly in [0, the wait] ("full jitter").
    """

    kind: str = "none"
    base: float = 0.0
    cap: float = math.inf
    jitter: bool = False

    @property
    def spec(self) -> str:
        """The canonical text: ``none``, ``const:D[:jitter]`` or ``expo:BASE:CAP[:jitter]``."""
        if self.kind == "none":
            return "none"
        parts = [self.kind, _show(self.base)] + ([_show(self.cap)] if self.kind == "expo" else [])
        return ":".join(parts + (["jitter"] if self.jitter else []))

    @property
    def longest(self) -> float:
        """The longest wait, seconds."""
        return 0.0 if self.kind == "none" else self.base if self.kind == "const" else self.cap

    def delay(self, attempt: int, u: float) -> float:
        """The wait after failed attempt ``attempt`` (1-based), given a uniform draw ``u`` (used
        only with jitter)."""
        if self.kind == "none":
            return 0.0
        wait = self.base if self.kind == "const" else min(self.cap, self.base * 2.0 ** min(attempt - 1, 1000))
        return wait * u if self.jitter else wait


NO_BACKOFF = Backoff()


def parse_backoff(text: Any) -> Backoff:
    """Parse a backoff: ``none``, ``const:D`` or ``expo:BASE:CAP``, each optionally ``:jitter``.

    Raises:
        BehaviourError: anything else, or times that are not finite numbers >= 0 (BASE > 0 and
            CAP >= BASE for ``expo``).
    """
    if text is None:
        return NO_BACKOFF
    if not isinstance(text, str):
        raise BehaviourError(f"backoff: expected text like 'const:1' or 'expo:0.5:30:jitter', got {text!r}")
    parts = [p.strip() for p in text.strip().lower().split(":")]
    jitter = parts[-1] == "jitter"
    if jitter:
        parts = parts[:-1]
    usage = "use none, const:D or expo:BASE:CAP, optionally followed by :jitter"
    if parts == ["none"] and not jitter:
        return NO_BACKOFF
    kind, numbers = parts[0], parts[1:]
    if kind not in ("const", "expo") or len(numbers) != (1 if kind == "const" else 2):
        raise BehaviourError(f"backoff: bad spec {text!r}; {usage}")
    if not all(_NUMBER.fullmatch(n) for n in numbers):
        raise BehaviourError(f"backoff: bad spec {text!r}: times must be plain numbers of seconds")
    values = [float(n) for n in numbers]
    if not all(math.isfinite(v) and v >= 0 for v in values):
        raise BehaviourError(f"backoff: bad spec {text!r}: times must be finite and >= 0")
    if kind == "const":
        return Backoff("const", values[0], values[0], jitter)
    base, cap = values
    if not base > 0 or cap < base:
        raise BehaviourError(f"backoff: bad spec {text!r}: expo needs BASE > 0 and CAP >= BASE")
    return Backoff("expo", base, cap, jitter)


def parse_optional_spec(name: str, value: Any) -> Distribution | None:
    """A distribution spec, or None for ``none``; merged specs (``A+B``) are for arrivals only.

    Raises:
        BehaviourError: a bad spec (the message names ``name``).
    """
    if value is None or (isinstance(value, str) and value.strip().lower() == "none"):
        return None
    if not isinstance(value, str):
        raise BehaviourError(f"{name}: expected a distribution spec like 'exp:10' or 'none', got {value!r}")
    try:
        dist = parse(value)
    except SpecError as err:
        raise BehaviourError(f"{name}: {err}") from None
    if dist.parts:
        raise BehaviourError(f"{name}: {dist.spec!r} merges several streams (A+B), which only an arrival spec may do")
    if dist.process is not None:
        raise BehaviourError(f"{name}: {dist.spec!r} is an arrival process (a rate over time), which only an arrival "
                             "spec may be")  # fmt: skip
    return dist


class ElasticError(BehaviourError):
    """An elastic workers spec (``auto:...``) that cannot be used; one line naming it."""


#: The rules an elastic pool scales up on (any of them, joined by ``|``) and down on, with their comparison.
UP_RULES = {"depth": ">", "wait": ">"}
DOWN_RULES = {"idle": ">", "busy": "<"}
_RULE = re.compile(r"\s*(?P<what>[a-z]+)\s*(?P<op>[<>])\s*(?P<value>[^|]+?)\s*")
_ELASTIC_KEYS = ("min", "max", "init", "up", "down", "start", "cool", "every", "step")


@dataclass(frozen=True)
class Elastic:
    """Elastic workers: a controller adds workers when a rule fires and retires idle ones.

    Attributes:
        low: the fewest workers (``min``); never retired below.
        high: the most workers (``max``), started ones included.
        init: workers at t = 0 (default ``min``), ready at once.
        up: scale-up rules, ``(what, threshold)``: ``depth`` (items waiting) or ``wait`` (the oldest
            waiting item's wait, s); any one that holds (strictly above) fires.
        down: the idle time after which a worker is retired, s (None: no such rule).
        busy: retire one idle worker per look while the share of workers busy is below this (None:
            no such rule).
        start: the start-up delay: seconds from the decision to add a worker until it takes items.
        cool: seconds after a scale-up before the next may happen (default ``start``).
        every: seconds between two looks of the controller at the queue.
        step: workers added per scale-up.
    """

    low: int
    high: int
    init: int
    up: tuple[tuple[str, float], ...]
    down: float | None = None
    busy: float | None = None
    start: float = 0.0
    cool: float = 0.0
    every: float = 1.0
    step: int = 1

    @property
    def spec(self) -> str:
        """The canonical text, e.g. ``auto:min=2,max=16,up=depth>20,down=idle>60,start=5``."""
        words = [f"min={self.low}", f"max={self.high}"]
        words += [f"init={self.init}"] if self.init != self.low else []
        words.append("up=" + "|".join(f"{what}>{_show(value)}" for what, value in self.up))
        downs = [f"idle>{_show(self.down)}"] if self.down is not None else []
        downs += [f"busy<{_show(self.busy)}"] if self.busy is not None else []
        words += ["down=" + "|".join(downs)] if downs else []
        words += [f"start={_show(self.start)}"] if self.start else []
        words += [f"cool={_show(self.cool)}"] if self.cool != self.start else []
        words += [f"every={_show(self.every)}"] if self.every != 1.0 else []
        words += [f"step={self.step}"] if self.step != 1 else []
        return "auto:" + ",".join(words)

    @property
    def label(self) -> str:
        """A short label: ``auto 2-16``."""
        return f"auto {self.low}-{self.high}"

    def delays(self) -> list[float]:
        """Its delays (start-up, cool-down, the controller's period, the idle limit), seconds."""
        return [self.start, self.cool, self.every, self.down or 0.0]

    def __str__(self) -> str:
        return self.spec


def is_elastic(value: Any) -> bool:
    """Whether a ``workers`` value is an elastic spec (text starting ``auto:``)."""
    return isinstance(value, str) and value.strip().lower().startswith("auto:")


def parse_elastic(text: str, max_workers: int) -> Elastic:
    """Parse ``auto:KEY=VALUE,...`` (keys ``min``, ``max``, ``up`` required; ``init``, ``down``,
    ``start``, ``cool``, ``every``, ``step`` optional; see the README's grammar).

    Args:
        text: the spec.
        max_workers: the most workers a cell may have.

    Raises:
        ElasticError: an unknown or repeated key, an unknown rule, a bad number, ``min > max``,
            ``init`` outside [min, max], or no ``up`` rule.
    """
    body = text.strip()[len("auto:") :]
    values: dict[str, str] = {}
    for entry in body.split(","):
        key, sep, value = entry.strip().partition("=")
        key = key.strip().lower()
        if not sep or not value.strip():
            raise ElasticError(f"workers {text!r}: bad entry {entry.strip()!r}; write KEY=VALUE, e.g. "
                               "auto:min=2,max=16,up=depth>20,down=idle>60,start=5")  # fmt: skip
        if key not in _ELASTIC_KEYS:
            raise ElasticError(f"workers {text!r}: unknown key {key!r} (known: {', '.join(_ELASTIC_KEYS)})")
        if key in values:
            raise ElasticError(f"workers {text!r}: {key!r} is given twice")
        values[key] = value.strip()
    for key in ("min", "max", "up"):
        if key not in values:
            raise ElasticError(f"workers {text!r}: {key!r} is required (e.g. auto:min=2,max=16,up=depth>20)")

    def whole(key: str, low: int) -> int:
        word = values[key]
        if not re.fullmatch(r"[0-9]+", word):
            raise ElasticError(f"workers {text!r}: {key} must be a whole number, got {word!r}")
        number = int(word)
        if not low <= number <= max_workers:
            raise ElasticError(f"workers {text!r}: {key} must be in {low}..{max_workers:,}, got {number}")
        return number

    def seconds(key: str, word: str, positive: bool = False) -> float:
        if not _NUMBER.fullmatch(word):
            unit = {"depth": " of items", "busy": ""}.get(key, " of seconds")
            raise ElasticError(f"workers {text!r}: {key} must be a number{unit}, got {word!r}")
        number = float(word)
        if not math.isfinite(number) or number < 0 or (positive and number == 0):
            raise ElasticError(f"workers {text!r}: {key} must be a finite number {'> 0' if positive else '>= 0'}, "
                               f"got {word}")  # fmt: skip
        return number

    low, high = whole("min", 0), whole("max", 1)
    if low > high:
        raise ElasticError(f"workers {text!r}: min {low} is above max {high}")
    init = whole("init", 0) if "init" in values else low
    if not low <= init <= high:
        raise ElasticError(f"workers {text!r}: init {init} must lie in [min, max] = [{low}, {high}]")
    up = tuple(_rule(text, part, UP_RULES, seconds) for part in values["up"].split("|"))
    downs = (
        dict(_rule(text, part, DOWN_RULES, seconds) for part in values["down"].split("|")) if "down" in values else {}
    )
    down, busy = downs.get("idle"), downs.get("busy")
    if busy is not None and not 0 < busy <= 1:
        raise ElasticError(f"workers {text!r}: busy<F needs a share of workers F in (0, 1], got {_show(busy)}")
    start = seconds("start", values["start"]) if "start" in values else 0.0
    cool = seconds("cool", values["cool"]) if "cool" in values else start
    every = seconds("every", values["every"], positive=True) if "every" in values else 1.0
    step = whole("step", 1) if "step" in values else 1
    return Elastic(low, high, init, up, down, busy, start, cool, every, step)


def _rule(text: str, part: str, known: dict[str, str], seconds: Callable[..., float]) -> tuple[str, float]:
    match = _RULE.fullmatch(part)
    if match is None or known.get(match.group("what")) != match.group("op"):
        said = part.strip()
        raise ElasticError(f"workers {text!r}: unknown rule {said!r}; rules are "
                           f"{' or '.join(f'{k}{op}VALUE' for k, op in known.items())}")  # fmt: skip
    return match.group("what"), seconds(match.group("what"), match.group("value").strip())


@dataclass(frozen=True)
class Behaviour:
    """How the built-in pool treats its items (the defaults are the plain pusher/puller program).

    Attributes:
        discipline: ``fifo`` (``asyncio.Queue``), ``lifo`` (``asyncio.LifoQueue``) or ``priority``
            (``asyncio.PriorityQueue``, by class: the first class of the mix first, FIFO within one).
        classes: the item classes and their mix (None: no classes).
        patience: how long an item may wait in the queue before it is abandoned (None: for ever).
        batch: most items a worker takes at once.
        linger: seconds a worker waits for more items after the first of a batch (0: it takes
            what is queued, without waiting).
        setup: a batch's setup time, added to the sum of its items' service times (None: 0).
        failure: probability that an attempt fails, in [0, 1).
        attempts: most attempts of an item (the first included); after the last failure it gives up.
        backoff: the wait before a failed item goes back on the queue.
    """

    discipline: str = "fifo"
    classes: ClassMix | None = None
    patience: Distribution | None = None
    batch: int = 1
    linger: float = 0.0
    setup: Distribution | None = None
    failure: float = 0.0
    attempts: int = 3
    backoff: Backoff = NO_BACKOFF

    @property
    def plain(self) -> bool:
        """No behaviour beyond the plain program: FIFO, no classes, patience, batches, setup or failures."""
        return (self.discipline == "fifo" and self.classes is None and self.patience is None and self.batch == 1
                and self.setup is None and self.failure == 0)  # fmt: skip

    def delays(self) -> list[float]:
        """The mean delays this behaviour adds (patience, setup, linger, the longest backoff), seconds."""
        means = [d.mean for d in (self.patience, self.setup) if d is not None]
        return means + [self.linger, self.backoff.longest if self.failure else 0.0]


def _show(value: float) -> str:
    """A number as short as ``%g`` when that is exact, else with every digit."""
    short = f"{value:g}"
    return short if float(short) == value else repr(value)
