"""Probability distributions for inter-arrival and service times, parsed from spec strings.

A spec is ``FAMILY:PARAM[:PARAM]``, e.g. ``uniform:0:5`` or ``lognormal:2.5:1.5``. Families with a
``MEAN:CV`` form let a grid hold the mean fixed while it varies variability. :func:`parse` turns a
spec into a :class:`Distribution` that knows its ``mean`` and ``cv`` and draws vectorised samples
from a :class:`numpy.random.Generator`. A bad spec raises :class:`SpecError` with one line naming
the spec and what is wrong.

Specs joined by ``+`` (``exp:2+exp:3``) are a *merged* arrival spec: one pusher per part, the
streams merged in the queue. Its ``parts`` are the pushers' distributions and its ``mean`` the
mean gap of the merged stream (``1 / sum(1 / part means)``); it is drawn per part, never as a whole.

Arrival *processes* whose gaps are not independent draws (a piecewise rate schedule, a sinusoidal
daily cycle, on/off bursts, a replayed trace: :mod:`bench.processes`) parse here too, into a
:class:`Distribution` with a ``process``: a :class:`Stream` of one then reads the gaps between its
successive arrival times, a ``lead`` (the time of its first arrival) first, and may end (a trace
shorter than the run). Renewal specs keep their convention: the first item arrives at 0.

This module depends only on numpy (and pyarrow, lazily, to read parquet for ``empirical``) and
:mod:`bench.errors`.
"""

from __future__ import annotations

import array
import csv
import functools
import hashlib
import io
import itertools
import math
import re
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

import numpy as np

from bench.errors import InputError

__all__ = [
    "ArrivalPath",
    "Distribution",
    "SpecError",
    "Stream",
    "parse",
    "read_numbers",
    "scaled",
    "FAMILIES",
    "SIBLING",
    "STREAM_CHUNK",
    "TIME_PARAMETERS",
]

#: Samples are drawn in blocks of this size, so every engine that reads a stream sees the same numbers.
STREAM_CHUNK = 4096
#: The spawn-key word that marks a sibling stream (:meth:`Stream.sibling`), after its parent's key.
SIBLING = 2


class SpecError(InputError):
    """A distribution spec that cannot be used; the message is one line naming the spec."""


@dataclass(frozen=True)
class Distribution:
    """A parsed distribution spec.

    Attributes:
        spec: the canonical spec string (round-trips through :func:`parse`).
        family: the family name, e.g. ``"exp"``.
        mean: the expected value, in model seconds.
        cv: coefficient of variation (std / mean); ``None`` where it is infinite or undefined.
        high: the largest value a sample can take (``inf`` for unbounded families).
        inputs: ``(path, sha256)`` of each file the distribution was read from (``empirical``),
            so a run can record them and refuse to mix two versions of a file.
        parts: the parts of a merged spec (``exp:2+exp:3``: one pusher each); empty otherwise.
        process: for an arrival process (:mod:`bench.processes`), ``process(rng, until)`` starts one
            path of it (its arrival times, generated in blocks); None for a distribution of i.i.d. draws.
        stationary: whether the arrivals form a stationary process (every renewal spec; a schedule,
            cycle or trace is not): steady-state statistics apply only then.
        horizon: the latest model time the spec itself names (a schedule's last change or period, a
            trace's last timestamp), checked against the clock's range; 0 for distributions.
        peak: the highest arrival rate of a process, items/s (NaN for distributions).
    """

    spec: str
    family: str
    mean: float
    cv: float | None
    _draw: Callable[[np.random.Generator, int], np.ndarray] = field(repr=False, compare=False)
    high: float = math.inf
    inputs: tuple[tuple[str, str], ...] = ()
    parts: tuple[Distribution, ...] = ()
    process: Callable[[np.random.Generator, float | None], ArrivalPath] | None = field(default=None, repr=False,
                                                                              compare=False)  # fmt: skip
    stationary: bool = True
    horizon: float = 0.0
    peak: float = math.nan

    @property
    def scv(self) -> float | None:
        """Squared coefficient of variation, or ``None`` where it is undefined."""
        return None if self.cv is None else self.cv * self.cv

    def sample(self, rng: np.random.Generator, n: int) -> np.ndarray:
        """Draw ``n`` independent samples as a float64 array."""
        return np.asarray(self._draw(rng, n), dtype=np.float64)

    def __str__(self) -> str:
        return self.spec

    def __reduce__(self):
        # Samplers are closures: the spec rebuilds them in another process, which checks that the
        # input files still hold what was read here.
        return _rebuild, (self.spec, self.inputs)


class ArrivalPath(Protocol):
    """One path of an arrival process (:mod:`bench.processes`): what a :class:`Stream` reads.

    Attributes:
        lead: the time of the first arrival (``inf``: none at all).
    """

    lead: float

    def block(self) -> np.ndarray:
        """The next gaps between successive arrivals, at most :data:`STREAM_CHUNK` of them; an empty
        array when the process has no more arrivals (a trace that ended)."""

    def rates(self, end: float) -> tuple[np.ndarray, np.ndarray]:
        """The arrival rate in force over [0, ``end``] as a step function: the times it changes
        (the first is 0) and the rate from each on, items/s (empty where the process has none, a trace)."""


class Stream:
    """An endless supply of samples from one distribution and one generator, drawn in blocks.

    Blocks are always :data:`STREAM_CHUNK` long, so two readers of equal generators see the same
    sequence whether they take samples one by one (:meth:`next`) or in blocks (:meth:`take`), or
    mix the two.

    ``next`` is an attribute holding a callable: once first called it is ``next()`` over a chain
    of blocks, which runs entirely in C (the asyncio engine calls it twice per item).

    For an arrival process (``dist.process``), the samples are the gaps between its successive
    arrival times and :attr:`lead` is the time of its first arrival (0 for a distribution: its first
    item arrives at 0). Such a stream may end: ``next`` then raises ``StopIteration`` and ``take``
    returns fewer samples than asked, and :attr:`exhausted` turns True.

    Args:
        dist: the distribution.
        rng: the generator.
        until: an arrival process's arrivals at or after this time are left out (the stream ends
            there); None for no end beyond the process's own.
    """

    __slots__ = ("_dist", "_rng", "_buf", "_pos", "_iter", "next", "_path", "lead", "exhausted", "_until")

    def __init__(self, dist: Distribution, rng: np.random.Generator, until: float | None = None) -> None:
        self._dist = dist
        self._rng = rng
        self._buf: list[float] = []  # the block take() is reading, until next() takes over
        self._pos = 0
        self._iter: Iterator[float] | None = None
        self.next: Callable[[], float] = self._first_next
        self._until = until
        self._path = dist.process(rng, until) if dist.process is not None else None
        #: The time of the first arrival: 0 for a distribution, the process's own for a process.
        self.lead = self._path.lead if self._path is not None else 0.0
        #: True once a finite stream (a trace, a schedule that ends, ``until``) has run out.
        self.exhausted = self._path is not None and math.isinf(self.lead)

    def _first_next(self) -> float:
        """Return the next sample and switch ``next`` to the C-level iterator."""
        self._iter = itertools.chain.from_iterable(self._blocks())
        self.next = functools.partial(next, self._iter)
        return self.next()

    def _blocks(self) -> Iterator[list[float]]:
        rest, self._buf, self._pos = self._buf[self._pos :], [], 0
        if rest:
            yield rest
        while True:
            block = self._block()
            if not block.size:
                self.exhausted = True
                return
            yield block.tolist()

    def _block(self) -> np.ndarray:
        """Draw one block (an arrival process's may be shorter, and empty at its end)."""
        if self._path is not None:
            return self._path.block() if not self.exhausted else np.empty(0)
        return self._dist.sample(self._rng, STREAM_CHUNK)

    def rates(self, end: float) -> tuple[np.ndarray, np.ndarray]:
        """The arrival rate in force over [0, ``end``]: change times and rates, items/s (one row at 0,
        ``1 / mean``, for a distribution; an arrival process's own, e.g. a schedule's pieces)."""
        if self._path is None:
            return np.zeros(1), np.array([1.0 / self._dist.mean])
        t, rate = self._path.rates(end)
        if self._until is not None and self._until < end and len(t):  # the arrivals end there
            keep = t < self._until
            t, rate = np.append(t[keep], self._until), np.append(rate[keep], 0.0)
        return t, rate

    @property
    def generator(self) -> np.random.Generator:
        """The stream's generator (drawing from it directly moves the stream on)."""
        return self._rng

    def sibling(self, name: str, dist: Distribution) -> Stream:
        """A stream of ``dist`` keyed by ``name``, derived from this stream's seed sequence.

        Its generator is seeded by ``SeedSequence(entropy, spawn_key=(*this stream's spawn key,
        SIBLING, crc32(name)))``: the same seed and name give the same numbers (common random
        numbers wherever this stream is shared), and different names, or this stream itself,
        independent ones. Drawing from it leaves this stream untouched.

        Raises:
            ValueError: this stream's generator was not seeded from a ``SeedSequence``.
        """
        seq = self._rng.bit_generator.seed_seq
        if not isinstance(seq, np.random.SeedSequence):
            raise ValueError("a sibling stream needs a generator seeded from a numpy SeedSequence")
        key = (*seq.spawn_key, SIBLING, zlib.crc32(name.encode()))
        child = np.random.SeedSequence(seq.entropy, spawn_key=key, pool_size=seq.pool_size)
        return Stream(dist, np.random.Generator(np.random.PCG64(child)))

    def take(self, n: int) -> np.ndarray:
        """Return the next ``n`` samples as an array (same values as ``n`` calls of :meth:`next`);
        fewer when a finite stream runs out (then :attr:`exhausted` is True)."""
        if self._iter is not None:  # next() was used: read on through its iterator
            return np.fromiter(itertools.islice(self._iter, n), dtype=np.float64)
        out = np.empty(n, dtype=np.float64)
        filled = 0
        while filled < n:
            if self._pos == len(self._buf):
                block = self._block()
                if not block.size:
                    self.exhausted = True
                    return out[:filled]
                if n - filled >= block.size:  # a whole block goes straight out, no list round trip
                    out[filled : filled + block.size] = block
                    filled += block.size
                    continue
                self._buf = block.tolist()
                self._pos = 0
            k = min(n - filled, len(self._buf) - self._pos)
            out[filled : filled + k] = self._buf[self._pos : self._pos + k]
            self._pos += k
            filled += k
        return out


def parse(spec: str) -> Distribution:
    """Parse a distribution spec.

    Args:
        spec: e.g. ``"const:1"``, ``"uniform:0:5"``, ``"exp:2.5"``, ``"erlang:3:2.5"``,
            ``"gamma:2.5:0.5"``, ``"lognormal:2.5:1.5"``, ``"weibull:2.5:2"``, ``"pareto:2.5:3"``,
            ``"hyperexp:2.5:2"`` or ``"empirical:path/to/file.csv"`` (optionally ``#column``).

    Raises:
        SpecError: the family is unknown, the arity is wrong, a parameter is not a finite number or
            out of range, or an empirical file is missing or holds no valid durations.
    """
    if not isinstance(spec, str) or not spec.strip():
        raise SpecError(f"bad distribution spec {spec!r}: empty")
    text = spec.strip()
    pieces = _MERGE.split(text)
    if len(pieces) > 1:
        return _merged(text, pieces)
    family, _, rest = text.partition(":")
    family = family.strip().lower()
    from bench.processes import PROCESSES  # the arrival processes build on this module

    if family in PROCESSES:
        return PROCESSES[family](text, rest)
    if family not in FAMILIES:
        known = ", ".join(sorted([*FAMILIES, *PROCESSES]))
        raise SpecError(f"bad distribution spec {text!r}: unknown family {family!r} (known: {known})")
    if family == "empirical":
        return _empirical(text, rest)
    arity, build = FAMILIES[family]
    parts = rest.split(":") if rest else []
    if len(parts) != arity:
        raise SpecError(f"bad distribution spec {text!r}: {family} takes {arity} parameter(s), got {len(parts)}")
    values = [_number(text, p) for p in parts]
    return build(text, *values)


#: Where a merged spec splits: a ``+`` followed by a family-like word and a colon, by another ``+`` or
#: by the end (so a ``+`` inside an empirical file's path does not split it).
_MERGE = re.compile(r"\s*\+\s*(?=[A-Za-z]\w*\s*:|\s*$|\s*\+)")
#: Most parts of a merged spec (pushers): each is an asyncio task with its own streams.
MAX_PARTS = 1000


def _merged(text: str, pieces: list[str]) -> Distribution:
    """A merged arrival spec: one pusher per part; the merged stream's mean gap is 1 / sum of rates.
    Its CV is 1 when every part is exponential (a superposition of Poisson streams is Poisson) and
    undefined otherwise (a superposition of other renewal streams is not a renewal stream)."""
    if any(not piece.strip() for piece in pieces):
        raise SpecError(f"bad distribution spec {text!r}: an empty part in a merged spec (A+B)")
    if len(pieces) > MAX_PARTS:
        raise SpecError(f"bad distribution spec {text[:40]!r}...: at most {MAX_PARTS} merged parts")
    parts = tuple(parse(piece) for piece in pieces)
    spec = "+".join(part.spec for part in parts)
    mean = 1.0 / sum(1.0 / part.mean for part in parts)
    cv = 1.0 if all(part.family == "exp" for part in parts) else None

    def draw(rng: np.random.Generator, n: int) -> np.ndarray:
        raise SpecError(f"{spec!r} merges several pushers' streams: it is drawn per part, not as a whole")

    inputs = tuple(entry for part in parts for entry in part.inputs)
    return Distribution(spec, "merged", mean, cv, draw, max(part.high for part in parts), inputs, parts,
                        stationary=all(part.stationary for part in parts),
                        horizon=max(part.horizon for part in parts),
                        peak=sum(part.peak if part.process else 1.0 / part.mean for part in parts))  # fmt: skip


def _rebuild(spec: str, inputs: tuple[tuple[str, str], ...] = ()) -> Distribution:
    """Parse ``spec`` in another process; if that fails there (an empirical file gone or changed
    since it was first read), return a distribution that raises the error when sampled, so the
    failure belongs to the cell that uses it."""
    try:
        dist = parse(spec)
        if inputs and dist.inputs != inputs:
            changed = next(path for (path, digest), now in zip(inputs, dist.inputs) if now[1] != digest)
            raise SpecError(f"bad distribution spec {spec!r}: {changed!r} changed since the run read it")
        return dist
    except SpecError as err:
        message = str(err)

        def broken(rng: np.random.Generator, n: int) -> np.ndarray:
            raise SpecError(message)

        return Distribution(spec, spec.partition(":")[0], math.nan, None, broken)


def _fail(spec: str, why: str) -> SpecError:
    return SpecError(f"bad distribution spec {spec!r}: {why}")


#: A plain decimal number: no underscores, hex or other forms Python's float() also takes.
NUMBER = re.compile(r"[+-]?([0-9]+\.?[0-9]*|\.[0-9]+)([eE][+-]?[0-9]+)?")
_NON_FINITE = re.compile(r"[+-]?(inf|infinity|nan)", re.IGNORECASE)


def _number(spec: str, text: str) -> float:
    word = text.strip()
    if _NON_FINITE.fullmatch(word):
        raise _fail(spec, f"{word!r} is not finite")
    if not NUMBER.fullmatch(word):
        raise _fail(spec, f"{word!r} is not a number")
    value = float(word)
    if not math.isfinite(value):
        raise _fail(spec, f"{word!r} is not finite (too large for a float)")
    return value


def _show(value: float) -> str:
    """A number as short as ``%g`` when that is exact, else with every digit (so a bound and a
    rejected value never print alike)."""
    short = f"{value:g}"
    return short if float(short) == value else repr(value)


def _positive(spec: str, name: str, value: float) -> float:
    if value <= 0:
        raise _fail(spec, f"{name} must be > 0, got {_show(value)}")
    return value


def _canon(family: str, *values: float) -> str:
    return ":".join([family, *(str(int(v)) if v.is_integer() and abs(v) < 1e15 else repr(v) for v in values)])


def _const(spec: str, value: float) -> Distribution:
    _positive(spec, "the value", value)
    return Distribution(_canon("const", value), "const", value, 0.0, lambda rng, n: np.full(n, value), value)


def _uniform(spec: str, low: float, high: float) -> Distribution:
    if low < 0:
        raise _fail(spec, f"LOW must be >= 0, got {_show(low)}")
    if not high > low:
        raise _fail(spec, f"HIGH must be above LOW, got {_show(low)}..{_show(high)}")
    mean = (low + high) / 2
    cv = (high - low) / math.sqrt(12) / mean
    return Distribution(
        _canon("uniform", low, high), "uniform", mean, cv, lambda rng, n: rng.uniform(low, high, n), high
    )


def _exp(spec: str, mean: float) -> Distribution:
    _positive(spec, "MEAN", mean)
    return Distribution(_canon("exp", mean), "exp", mean, 1.0, lambda rng, n: rng.exponential(mean, n))


def _erlang(spec: str, k: float, mean: float) -> Distribution:
    if k < 1 or k != int(k):
        raise _fail(spec, f"K must be a whole number >= 1, got {_show(k)}")
    _positive(spec, "MEAN", mean)
    shape, scale = int(k), mean / k
    return Distribution(
        _canon("erlang", k, mean), "erlang", mean, 1 / math.sqrt(k), lambda rng, n: rng.gamma(shape, scale, n)
    )


def _check_mean_cv(spec: str, mean: float, cv: float, low: float = 0.0, high: float = math.inf) -> None:
    _positive(spec, "MEAN", mean)
    if not (low < cv <= high):
        bound = f"in ({_show(low)}, {_show(high)}]" if math.isfinite(high) else f"> {_show(low)}"
        raise _fail(spec, f"CV must be {bound}, got {_show(cv)}")


def _gamma(spec: str, mean: float, cv: float) -> Distribution:
    _check_mean_cv(spec, mean, cv, high=100.0)
    shape, scale = 1 / cv**2, mean * cv**2
    return Distribution(_canon("gamma", mean, cv), "gamma", mean, cv, lambda rng, n: rng.gamma(shape, scale, n))


def _lognormal(spec: str, mean: float, cv: float) -> Distribution:
    _check_mean_cv(spec, mean, cv, high=100.0)
    sigma2 = math.log1p(cv * cv)
    mu, sigma = math.log(mean) - sigma2 / 2, math.sqrt(sigma2)
    return Distribution(
        _canon("lognormal", mean, cv), "lognormal", mean, cv, lambda rng, n: rng.lognormal(mu, sigma, n)
    )


def _weibull_cv(k: float) -> float:
    g1 = math.lgamma(1 + 1 / k)
    g2 = math.lgamma(1 + 2 / k)
    return math.sqrt(max(math.exp(g2 - 2 * g1) - 1, 0.0))


def _weibull_shape(cv: float) -> float:
    lo, hi = math.log(0.05), math.log(2000.0)  # cv(k) falls as k rises
    for _ in range(200):
        mid = (lo + hi) / 2
        if _weibull_cv(math.exp(mid)) > cv:
            lo = mid
        else:
            hi = mid
    return math.exp((lo + hi) / 2)


def _weibull(spec: str, mean: float, cv: float) -> Distribution:
    _check_mean_cv(spec, mean, cv, low=0.001, high=100.0)
    k = _weibull_shape(cv)
    scale = mean / math.exp(math.lgamma(1 + 1 / k))
    return Distribution(_canon("weibull", mean, cv), "weibull", mean, cv, lambda rng, n: scale * rng.weibull(k, n))


def _pareto(spec: str, mean: float, alpha: float) -> Distribution:
    _positive(spec, "MEAN", mean)
    if not alpha > 1:
        raise _fail(spec, f"ALPHA must be > 1 for a finite mean, got {_show(alpha)}")
    xm = mean * (alpha - 1) / alpha
    cv = 1 / math.sqrt(alpha * (alpha - 2)) if alpha > 2 else None
    return Distribution(
        _canon("pareto", mean, alpha), "pareto", mean, cv, lambda rng, n: xm * (1 + rng.pareto(alpha, n))
    )


def _hyperexp(spec: str, mean: float, cv: float) -> Distribution:
    _check_mean_cv(spec, mean, cv, low=1.0, high=100.0)
    # Two phases with balanced means (Whitt 1982): p1/mu1 = p2/mu2.
    scv = cv * cv
    p1 = (1 + math.sqrt((scv - 1) / (scv + 1))) / 2
    m1, m2 = mean / (2 * p1), mean / (2 * (1 - p1))

    def draw(rng: np.random.Generator, n: int) -> np.ndarray:
        branch = rng.random(n) < p1
        return rng.exponential(1.0, n) * np.where(branch, m1, m2)

    return Distribution(_canon("hyperexp", mean, cv), "hyperexp", mean, cv, draw)


#: Largest empirical file: its durations are resampled, so a few million are plenty, and every
#: worker process parses its own copy (about 16 bytes per value while it does).
MAX_EMPIRICAL_BYTES = 64 << 20


def _empirical(spec: str, rest: str) -> Distribution:
    """Resample a file's durations. Bad values (empty cells aside: NaN, inf, negative, non-numeric)
    are refused, not dropped: a file with them is a data problem the user should see, and dropping
    them silently would bias the distribution."""
    if not rest.strip():
        raise _fail(spec, "empirical takes a file path, e.g. empirical:durations.csv")
    path_text, _, column = rest.partition("#")
    path = Path(path_text.strip())
    values, content = read_numbers(spec, path, column, "value(s)", "durations must be finite numbers >= 0",
                                   "resampling needs far fewer durations (take a sample of the file)")  # fmt: skip
    if values.size == 0 or values.mean() <= 0:
        raise _fail(spec, f"{str(path)!r} holds no valid durations (finite numbers >= 0, mean > 0)")
    mean = float(values.mean())
    cv = float(values.std() / mean)
    digest = hashlib.sha256(content).hexdigest()

    def draw(rng: np.random.Generator, n: int) -> np.ndarray:
        return values[rng.integers(0, values.size, n)]

    return Distribution(spec, "empirical", mean, cv, draw, float(values.max()), ((str(path.resolve()), digest),))


def read_numbers(spec: str, path: Path, column: str, what: str, rule: str, too_big: str) -> tuple[np.ndarray, bytes]:
    """One column of numbers of a CSV or parquet file (at most :data:`MAX_EMPIRICAL_BYTES`, read once:
    hashed and parsed alike), and the file's bytes; a missing, large, unreadable file or bad values
    (empty cells aside: NaN, inf, negative, non-numeric; refused, not dropped) stop with one line.

    Args:
        spec: the spec being parsed (for the message).
        path: the file.
        column: the column's name (``#NAME`` of the spec), or "" for the first.
        what: what a bad entry is called (``value(s)``, ``timestamp(s)``).
        rule: what the numbers must be.
        too_big: what to do about a file too large.

    Raises:
        SpecError: one line saying what is wrong.
    """
    if not path.is_file():
        raise _fail(spec, f"file {str(path)!r} not found")
    try:
        with path.open("rb") as handle:
            content = handle.read(MAX_EMPIRICAL_BYTES + 1)
        if len(content) > MAX_EMPIRICAL_BYTES:
            raise SpecError(f"{str(path)!r} is larger than {MAX_EMPIRICAL_BYTES >> 20} MB; {too_big}")
        values, bad = _read_column(path, content, column.strip() or None)
    except SpecError as err:
        raise _fail(spec, str(err)) from None
    except Exception as err:  # a malformed file of any kind is one line, not a traceback
        raise _fail(spec, f"cannot read {str(path)!r}: {err.__class__.__name__}: {err}".splitlines()[0]) from None
    if bad:
        shown = ", ".join(f"row {row}: {value}" for row, value in bad[:3])
        more = f" and {len(bad) - 3} more" if len(bad) > 3 else ""
        raise _fail(spec, f"{len(bad)} bad {what} in {str(path)!r} ({shown}{more}); {rule}")
    return values, content


def _read_column(path: Path, content: bytes, column: str | None) -> tuple[np.ndarray, list[tuple[int, str]]]:
    """The column's values and its bad entries as (row number in the file, text); empty cells and
    nulls are skipped. Rows count from 1: a CSV's physical lines, a parquet file's rows."""
    if path.suffix.lower() in {".parquet", ".pq"}:
        return _read_parquet(path, content, column)
    lines = io.TextIOWrapper(io.BytesIO(content), encoding="utf-8-sig", newline="")
    reader = csv.reader(lines)
    values, bad = array.array("d"), []
    index, header = 0, None
    for row in reader:
        if not row or not any(cell.strip() for cell in row):
            continue
        if header is None:
            header = row
            if any(_as_float(cell) is None for cell in row):  # a header line names the columns
                if column is not None:
                    if column not in header:
                        raise SpecError(f"column {column!r} not in {str(path)!r}")
                    index = header.index(column)
                continue
            if column is not None:
                raise SpecError(f"column {column!r} not in {str(path)!r} (it has no header line)")
        text = row[index].strip() if index < len(row) else ""
        if not text:
            continue
        value = _as_float(text)
        if value is None or not math.isfinite(value) or value < 0:
            bad.append((reader.line_num, repr(text)))
        else:
            values.append(value)
    if header is None:
        raise SpecError(f"{str(path)!r} is empty")
    return np.frombuffer(values, dtype=np.float64).copy(), bad


def _read_parquet(path: Path, content: bytes, column: str | None) -> tuple[np.ndarray, list[tuple[int, str]]]:
    import pyarrow as pa
    import pyarrow.parquet as pq

    table = pq.read_table(pa.BufferReader(content))
    names = table.column_names
    name = column or _first_numeric(names, [table.column(n).type for n in names])
    if name not in names:
        raise SpecError(f"column {name!r} not in {str(path)!r}")
    raw = table.column(name)
    if not (pa.types.is_integer(raw.type) or pa.types.is_floating(raw.type)):
        raise SpecError(f"column {name!r} of {str(path)!r} is {raw.type}, not numeric")
    present = ~raw.is_null().to_numpy(zero_copy_only=False)
    numbers = raw.to_numpy(zero_copy_only=False).astype(np.float64)
    rows = np.flatnonzero(present & ~(np.isfinite(numbers) & (numbers >= 0)))
    return numbers[present], [(int(r) + 1, _show(float(numbers[r]))) for r in rows]


def _first_numeric(names: list[str], types: list) -> str:
    import pyarrow as pa

    for name, typ in zip(names, types):
        if pa.types.is_integer(typ) or pa.types.is_floating(typ):
            return name
    raise SpecError("no numeric column")


def _as_float(text: str) -> float | None:
    word = text.strip()
    if NUMBER.fullmatch(word) or _NON_FINITE.fullmatch(word):
        return float(word)
    return None


#: family name -> the positions of its parameters that are times (they scale with the time unit).
TIME_PARAMETERS: dict[str, tuple[int, ...]] = {
    "const": (0,), "uniform": (0, 1), "exp": (0,), "erlang": (1,), "gamma": (0,), "lognormal": (0,),
    "weibull": (0,), "pareto": (0,), "hyperexp": (0,),
}  # fmt: skip


def scaled(dist: Distribution, factor: float) -> Distribution:
    """``dist`` with every draw multiplied by ``factor`` (> 0): the same draws from the same
    generator, scaled, so a load scaled by ``1 / factor`` keeps common random numbers with the
    original. Its spec is the family's own spec of the scaled distribution (``exp:1`` scaled by 0.5
    is ``exp:0.5``, times in a ``MEAN:CV`` form scale and the CV stays).

    Raises:
        SpecError: an ``empirical`` distribution (its spec names a file, no factor can be written
            into it), or a scaled parameter the family refuses.
    """
    if dist.family not in TIME_PARAMETERS:
        raise SpecError(f"bad distribution spec {dist.spec!r}: a {dist.family} distribution cannot be rescaled into "
                        "a spec of its own")  # fmt: skip
    values = [float(v) for v in dist.spec.split(":")[1:]]
    for i in TIME_PARAMETERS[dist.family]:
        values[i] *= factor
    spec = parse(_canon(dist.family, *values)).spec
    draw = dist._draw

    def scaled_draw(rng: np.random.Generator, n: int) -> np.ndarray:
        return np.asarray(draw(rng, n), dtype=np.float64) * factor

    return Distribution(spec, dist.family, dist.mean * factor, dist.cv, scaled_draw, dist.high * factor, dist.inputs)


#: family name -> (number of parameters, builder); ``empirical`` takes a path instead.
FAMILIES: dict[str, tuple[int, Callable[..., Distribution]]] = {
    "const": (1, _const),
    "uniform": (2, _uniform),
    "exp": (1, _exp),
    "erlang": (2, _erlang),
    "gamma": (2, _gamma),
    "lognormal": (2, _lognormal),
    "weibull": (2, _weibull),
    "pareto": (2, _pareto),
    "hyperexp": (2, _hyperexp),
    "empirical": (1, _empirical),
}
