"""Streaming statistics of one replication, in bounded memory.

:class:`ReplicationStats` is a :class:`~bench.recorder.Sink`: it sees every batch of items and depth changes
once and keeps only running sums, a log-histogram per latency and the integrals of the queue-size
step function. From those it gives the per-replication row of ``cells.parquet``.
"""

from __future__ import annotations

import math

import numpy as np

__all__ = ["LogHistogram", "ReplicationStats", "SLOTS", "log_slots", "rank_slot", "slot_value"]


#: The log-histograms' range and resolution: bins 10**(1/1000) wide from 1e-9 to 1e10 s, zero in
#: a slot of its own; a quantile is its bin's geometric centre, within 0.115% of the true value.
LOW, HIGH, PER_DECADE = 1e-9, 1e10, 1000
_LOG_LOW = math.log10(LOW)
SLOTS = int(round((math.log10(HIGH) - _LOG_LOW) * PER_DECADE)) + 1  # slot 0 holds exact zeros


def log_slots(values: np.ndarray) -> np.ndarray:
    """The histogram slot of each finite value >= 0 (values outside the range go to the end bins)."""
    with np.errstate(divide="ignore"):  # log10(0) = -inf lands in slot 0, the zeros' own bin
        raw = np.log10(values)
    raw -= _LOG_LOW
    raw *= PER_DECADE
    np.floor(raw, out=raw)
    np.clip(raw, 0, SLOTS - 2, out=raw)
    index = raw.astype(np.int64)
    index += 1
    if values.size and not values.min() > 0:
        index[values <= 0] = 0
    return index


def slot_value(slot: int) -> float:
    """The value a quantile falling in ``slot`` is reported as: the geometric centre of its bin."""
    return 0.0 if slot == 0 else 10 ** (_LOG_LOW + (slot - 0.5) / PER_DECADE)


def rank_slot(slots: np.ndarray, counts: np.ndarray, q: float) -> int:
    """The slot holding the ``q``-quantile (0 < q <= 1) of a histogram given as sorted slots and
    their counts: the first slot whose cumulative count reaches ``ceil(q * total)``."""
    total = int(counts.sum())
    rank = max(1, math.ceil(q * total))
    return int(slots[int(np.searchsorted(np.cumsum(counts), rank))])


class LogHistogram:
    """Counts of non-negative values in log-spaced bins, for quantiles in bounded memory.

    Bins are ``10**(1/PER_DECADE)`` wide between ``LOW`` and ``HIGH`` (:func:`log_slots`); zero has a
    bin of its own, and values outside the range are clamped to the end bins. A quantile is reported
    as the geometric centre of its bin, so its relative error is at most half a bin (0.115%).
    """

    def __init__(self) -> None:
        self._counts = np.zeros(SLOTS, dtype=np.int64)
        self.count = 0

    def add(self, values: np.ndarray) -> None:
        """Add an array of finite values >= 0."""
        if values.size == 0:
            return
        self._counts += np.bincount(log_slots(values), minlength=SLOTS)
        self.count += values.size

    def quantile(self, q: float) -> float:
        """Return the ``q``-quantile (0 < q <= 1), NaN when empty."""
        if self.count == 0:
            return math.nan
        return slot_value(rank_slot(np.arange(SLOTS), self._counts, q))


class _Latency:
    """Mean and histogram of one latency column."""

    def __init__(self) -> None:
        self.total = 0.0
        self.hist = LogHistogram()

    def add(self, values: np.ndarray) -> None:
        total = float(values.sum())
        if not np.isfinite(total):  # some rows are censored (NaN): leave them out
            values = values[np.isfinite(values)]
            total = float(values.sum())
        self.total += total
        self.hist.add(values if values.size == 0 or values.min() >= 0 else np.maximum(values, 0.0))

    def stats(self, name: str) -> dict[str, float]:
        n = self.hist.count
        return {
            f"{name}_mean": self.total / n if n else math.nan,
            f"{name}_p50": self.hist.quantile(0.50),
            f"{name}_p95": self.hist.quantile(0.95),
            f"{name}_p99": self.hist.quantile(0.99),
        }


class _Moments:
    """Count, mean and sum of squared deviations of a stream of values (Chan et al.'s parallel
    update, so batches combine without loss of precision)."""

    def __init__(self) -> None:
        self.n = 0
        self.mean = 0.0
        self.m2 = 0.0

    def add(self, values: np.ndarray) -> None:
        k = values.size
        if k == 0:
            return
        mean = float(values.mean())
        m2 = float(((values - mean) ** 2).sum())
        n = self.n + k
        delta = mean - self.mean
        self.mean += delta * k / n
        self.m2 += m2 + delta * delta * self.n * k / n
        self.n = n

    def stats(self, name: str) -> dict[str, float]:
        return {
            f"{name}_obs_mean": self.mean if self.n else math.nan,
            f"{name}_obs_sd": math.sqrt(self.m2 / (self.n - 1)) if self.n > 1 else math.nan,
        }


class _StepIntegral:
    """Integrals of a step function d(t) from t = 0: of d and of t·d, up to the last change seen."""

    def __init__(self) -> None:
        self.t = 0.0
        self.d = 0
        self.area = 0.0  # ∫ d dt
        self.moment = 0.0  # ∫ t d dt

    def add(self, t: np.ndarray, d: np.ndarray) -> None:
        if t.size == 0:
            return
        starts = np.concatenate(([self.t], t[:-1]))
        levels = np.concatenate(([self.d], d[:-1])).astype(np.float64)
        widths = t - starts
        # numpy's own pairwise sums, not np.dot: BLAS may split a dot product over threads, which
        # spin and stall when the cores are busy and can round differently with the thread count.
        area = levels * widths
        self.area += float(area.sum())
        self.moment += float((area * (t + starts)).sum() / 2)
        self.t, self.d = float(t[-1]), int(d[-1])

    def until(self, end: float) -> tuple[float, float]:
        """Return (∫d, ∫t·d) over [0, end], extending the last level to ``end``."""
        width = max(end - self.t, 0.0)
        return self.area + self.d * width, self.moment + self.d * width * (end + self.t) / 2


def _slope(area: float, moment: float, length: float) -> float:
    """Least-squares slope of a function on [0, length] given its integrals ∫d and ∫t·d."""
    if length <= 0:
        return math.nan
    return (moment - length / 2 * area) / (length**3 / 12)


class ReplicationStats:
    """Per-replication statistics, fed batch by batch.

    Args:
        items_target: in an ``items`` run, the number of puts; the backlog slope is fitted over the
            arrival period (up to the last put), not the drain that follows. ``None`` in a
            ``duration`` run, where the slope covers the whole run.
        backlog0: items queued at t = 0 before the first arrival: their zero gaps are not
            inter-arrival draws, so the observed inter-arrival statistics leave them out.
    """

    def __init__(self, items_target: int | None = None, *, backlog0: int = 0) -> None:
        self._items_target = items_target
        self._skip = backlog0  # gaps of the backlog queued at t = 0 (and the first arrival after it) are not draws
        self._wait = _Latency()
        self._sojourn = _Latency()
        self._whole = _StepIntegral()
        self._window: tuple[float, float, float] | None = None  # (area, moment, length) of arrivals
        self._puts = 0
        self.depth_max = 0
        self._arrivals = _Moments()  # the inter-arrival times the pusher slept
        self._services = _Moments()  # the service times of finished items
        self._blocked = 0.0  # seconds the pusher spent blocked in put (a full bounded queue)
        self._last_put = math.nan  # t_put of the last item of the previous batch

    def items(self, columns: dict[str, np.ndarray]) -> None:
        """Add a batch of item rows. Items that gave up after failed attempts (``status``
        ``gave_up``, where a batch has it) count in no latency: wait and sojourn describe items
        served or still in the system (abandoned ones were never taken: theirs are null)."""
        wait, sojourn = columns["wait"], columns["sojourn"]
        status = columns.get("status")
        if status is not None:
            gave_up = status == "gave_up"
            if gave_up.any():
                wait, sojourn = np.where(gave_up, np.nan, wait), np.where(gave_up, np.nan, sojourn)
        self._wait.add(wait)
        self._sojourn.add(sojourn)
        t_arrive, t_put = columns["t_arrive"], columns["t_put"]
        if t_put.size:
            slept = t_arrive[1:] - t_put[:-1]
            if not math.isnan(self._last_put):
                slept = np.concatenate(([t_arrive[0] - self._last_put], slept))
            if self._skip:
                cut = min(self._skip, slept.size)
                slept, self._skip = slept[cut:], self._skip - cut
            self._arrivals.add(slept)
            self._last_put = float(t_put[-1])
            self._blocked += float((t_put - t_arrive).sum())
        service = columns["service"]
        self._services.add(service[~np.isnan(service)])

    def depth(self, columns: dict[str, np.ndarray]) -> None:
        """Add a batch of depth changes."""
        t, d, event = columns["t"], columns["depth"], columns["event"]
        if d.size:
            self.depth_max = max(self.depth_max, int(d.max()))
        if self._window is None and self._items_target is not None:
            puts = self._puts + np.cumsum(event == 1)
            hit = int(np.searchsorted(puts, self._items_target))
            if hit < t.size:
                self._whole.add(t[: hit + 1], d[: hit + 1])
                end = float(t[hit])
                self._window = (*self._whole.until(end), end)
                t, d = t[hit + 1 :], d[hit + 1 :]
            else:
                self._puts = int(puts[-1]) if puts.size else self._puts
        self._whole.add(t, d)

    def finish(self, t_end: float) -> dict[str, float]:
        """Return the statistics of the replication that ended at ``t_end``."""
        area, moment = self._whole.until(t_end)
        window = self._window or (area, moment, t_end)
        period = self._last_put  # the arrival period: item 0 is put at 0 (a process's first arrival: its lead)
        return {
            "arrival_rate": self._arrivals.n / period if period > 0 else math.nan,
            "blocked_fraction": self._blocked / period if period > 0 else math.nan,
            **self._arrivals.stats("arrival"),
            **self._services.stats("service"),
            **self._wait.stats("wait"),
            **self._sojourn.stats("sojourn"),
            "depth_mean": area / t_end if t_end > 0 else math.nan,
            "depth_max": self.depth_max,
            "depth_final": self._whole.d,
            "backlog_slope": _slope(*window),
        }
