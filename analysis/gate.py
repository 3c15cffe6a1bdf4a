"""A latency gate for CI: conditions on a comparison that fail a build (``qbench compare --fail-if``).

Virtual time makes a scenario's latency deterministic for a seed, so a regression in p99 or backlog
growth can fail a build with no hardware noise. A condition is ``METRIC OP THRESHOLD``:

* ``wait_p99 > +5%``: NEW's value is more than 5% above BASE's (relative change ``(B - A) / A``);
* ``wait_mean > +0.25``: more than 0.25 above BASE's (the difference ``B - A``, same unit as the metric);
* ``backlog_slope > 0``: NEW's value itself is above 0 (no sign, no percent: an absolute bound).

OP is one of ``>``, ``>=``, ``<``, ``<=``. A condition *holds* (the gate fails) for a pair of cells
when it holds for the whole 95% interval of the quantity, not just for its point estimate: for
``> +5%`` the interval of ``(B - A) / A`` must lie above 5%. That is the significance-aware reading:
noise alone does not fail a build. Where there is no interval (one replication) the point estimate
decides; with common random numbers and a deterministic clock that estimate is exact for the seed.
The relative interval is the difference's interval divided by BASE's mean.
"""

from __future__ import annotations

import math
import operator
import re
from collections.abc import Callable
from dataclasses import dataclass

from analysis.classes import split_metric
from analysis.compare import COMPARABLE, CompareResult, MetricComparison
from analysis.load import ResultsError

__all__ = ["Condition", "Failure", "failures", "parse_condition"]

_PATTERN = re.compile(
    r"\s*(?P<metric>[a-z_0-9.]+(\[[^\[\]<>=]+\])?)\s*(?P<op>>=|<=|>|<)\s*(?P<sign>[+-])?(?P<number>[0-9]+(\.[0-9]*)?([eE][+-]?[0-9]+)?|\.[0-9]+)"
    r"\s*(?P<percent>%)?\s*"
)
_OPS: dict[str, Callable[[float, float], bool]] = {
    ">": operator.gt,
    ">=": operator.ge,
    "<": operator.lt,
    "<=": operator.le,
}


@dataclass(frozen=True)
class Condition:
    """One ``--fail-if`` condition.

    Attributes:
        text: the condition as written.
        metric: the compared metric.
        op: ``>``, ``>=``, ``<`` or ``<=``.
        threshold: the bound (a fraction for a relative condition: +5% is 0.05).
        kind: ``relative`` (``(B - A) / A``), ``difference`` (``B - A``) or ``value`` (B itself).
    """

    text: str
    metric: str
    op: str
    threshold: float
    kind: str

    def holds(self, row: MetricComparison) -> tuple[bool, str]:
        """Whether the condition holds for one compared pair, and the quantity in words."""
        low, point, high = self._quantity(row)
        above = self.op in (">", ">=")
        test = _OPS[self.op]
        edge = point if math.isnan(low) else (low if above else high)  # the interval's nearest end
        shown = f"{_fmt(point, self.kind)}" + (
            "" if math.isnan(low) else f" [{_fmt(low, self.kind)}, {_fmt(high, self.kind)}]"
        )
        return (not math.isnan(edge) and test(edge, self.threshold)), shown

    def _quantity(self, row: MetricComparison) -> tuple[float, float, float]:
        if self.kind == "value":
            return row.b.low, row.b.mean, row.b.high
        if self.kind == "difference":
            return row.diff.low, row.diff.mean, row.diff.high
        base = abs(row.a.mean)
        if base == 0 or math.isnan(base):
            return math.nan, math.nan, math.nan
        return row.diff.low / base, row.diff.mean / base, row.diff.high / base


@dataclass(frozen=True)
class Failure:
    """A condition that holds for a compared pair of cells."""

    condition: Condition
    row: MetricComparison
    quantity: str

    def line(self) -> str:
        """One line: the condition, the cells, and the quantity with its interval."""
        return f"{self.condition.text}: {self.row.key or 'all cells'}: {self.quantity}"


def _fmt(value: float, kind: str) -> str:
    return f"{100 * value:+.3g}%" if kind == "relative" else f"{value:.4g}"


def parse_condition(text: str) -> Condition:
    """Parse ``METRIC OP THRESHOLD`` (see the module docstring).

    Raises:
        ResultsError: the text is not a condition, names a metric compare cannot compare, or has a
            percent without a sign.
    """
    match = _PATTERN.fullmatch(text)
    if match is None:
        raise ResultsError(f"bad --fail-if {text!r}: expected METRIC OP THRESHOLD, e.g. 'wait_p99 > +5%'")
    metric, op, sign, number, percent = (match.group(k) for k in ("metric", "op", "sign", "number", "percent"))
    if metric not in COMPARABLE and split_metric(metric) is None:
        raise ResultsError(f"bad --fail-if {text!r}: unknown metric {metric!r} (choose from: {', '.join(COMPARABLE)}, "
                           "or a class's: METRIC[CLASS])")  # fmt: skip
    value = float(number) * (-1 if sign == "-" else 1)
    if percent and not sign:
        raise ResultsError(f"bad --fail-if {text!r}: a change in percent takes a sign, e.g. '+5%'")
    kind = "relative" if percent else ("difference" if sign else "value")
    return Condition(text.strip(), metric, op, value / 100 if percent else value, kind)


def failures(result: CompareResult, conditions: list[Condition]) -> list[Failure]:
    """Every (condition, pair) for which the condition holds, in condition order."""
    found = []
    for condition in conditions:
        for row in result.rows:
            if row.metric == condition.metric:
                holds, quantity = condition.holds(row)
                if holds:
                    found.append(Failure(condition, row, quantity))
    return found
