"""Theory beside measurement: one row per (cell, quantity) where a formula applies.

Quantities compared:

* ``Wq`` (mean wait) and ``P(wait)``: the steady-state prediction of :func:`analysis.theory.predict`
  against the steady-state measurement (:func:`analysis.cell_stats.steady_state`: MSER-5 warm-up cut,
  pooled, sectioning interval), for cells with ``rho < 1``;
* ``utilisation``: ``min(rho, 1)``, the long-run identity of any work-conserving G/G/c;
* ``backlog slope``: the fluid slope ``lam - c / E[S]`` for cells with ``rho >= 1``.

Every formula here is for an unbounded queue fed at the offered rate, so cells with a bounded queue
(``maxsize > 0``, whose pusher blocks when it is full) and cells without data get no row; nor do
cells whose behaviours change the queue (patience, batches, failures, a user's own scenario:
:func:`analysis.behaviours.fifo_theory_applies`), whose rows come from
:mod:`analysis.behaviour_agreement`, nor cells with a non-stationary arrival process or elastic
workers (no steady state of one M/M/c: :mod:`analysis.windows` gives a schedule's pieces theirs).

The last two are limits as the horizon grows (finite runs differ by ``O(1/t_end)``), so they are
marked not exact, like the labelled approximations (``approx.``). Two judgements are given:

* ``inside_ci``: theory lies in the measurement's 95% interval (the interval shown);
* ``agrees``: theory lies in the 99% interval: the *CI-derived tolerance*. A run's table holds
  many rows, and at 95% one exact row in twenty would be flagged by chance alone; 99% keeps the
  false-alarm rate of a default-grid table (about ten exact rows) near one in ten.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import pandas as pd

from analysis.backlog import stationary
from analysis.behaviours import elastic, fifo_theory_applies
from analysis.cell_stats import CellStats, steady_state
from analysis.estimate import Estimate
from analysis.load import Run
from analysis.student_t import t_quantile
from analysis.theory import Prediction, predict

__all__ = ["AGREEMENT_LEVEL", "Agreement", "agreement_frame", "compare_theory"]

#: Confidence level of the interval that serves as the tolerance for theory.
AGREEMENT_LEVEL = 0.99


@dataclass(frozen=True)
class Agreement:
    """One theory-versus-measurement row.

    Attributes:
        cell: cell id.
        quantity: ``Wq``, ``P(wait)``, ``utilisation`` or ``backlog slope``.
        model: the formula used.
        exact: whether the formula is exact (else an approximation).
        theory: the predicted value.
        measured: the measurement with its CI.
        note: how the measurement was taken (e.g. the warm-up truncation).
    """

    cell: int
    quantity: str
    model: str
    exact: bool
    theory: float
    measured: Estimate
    note: str = ""

    @property
    def relative_error(self) -> float:
        """``(measured - theory) / theory`` (``nan`` when theory is 0)."""
        return (self.measured.mean - self.theory) / self.theory if self.theory else math.nan

    @property
    def inside_ci(self) -> bool:
        """Whether the theory value lies inside the measurement's (95%) CI."""
        return self.measured.contains(self.theory)

    @property
    def agrees(self) -> bool:
        """Whether theory lies inside the 99% interval of the measurement (the tolerance)."""
        m = self.measured
        if m.n < 2 or math.isnan(m.half_width):
            return False
        scale = t_quantile(0.5 + AGREEMENT_LEVEL / 2, m.n - 1) / t_quantile(0.5 + m.level / 2, m.n - 1)
        return abs(m.mean - self.theory) <= scale * m.half_width


def _prediction(stats: CellStats) -> Prediction | None:
    """The steady-state prediction for a cell, if any."""
    p = stats.params
    return predict(p["arrival"], float(p["arrival_mean"]), _float(p.get("arrival_cv")), p["service"],
                   float(p["service_mean"]), _float(p.get("service_cv")), int(p["workers"]))  # fmt: skip


def _float(value: float | None) -> float | None:
    """A float, or None for a missing value."""
    return None if value is None or pd.isna(value) else float(value)


def compare_theory(run: Run, stats: CellStats) -> list[Agreement]:
    """Theory rows for one cell (reads that cell's waits for the steady-state figures); none for a
    bounded queue or a cell without data.

    Args:
        run: the opened run.
        stats: the cell's statistics from :func:`analysis.cell_stats.cell_stats`.
    """
    p = stats.params
    rows: list[Agreement] = []
    if int(p.get("maxsize") or 0) > 0 or stats.replications == 0 or not fifo_theory_applies(p):
        return rows
    if not stationary(p) or elastic(p) is not None:
        return rows  # no steady state (analysis.windows compares theory per piece), or a varying worker count
    rho = float(p["rho"])
    if "utilisation" in stats.metrics:
        rows.append(Agreement(stats.cell, "utilisation", "long-run identity min(rho, 1)", False,
                              min(rho, 1.0), stats.metrics["utilisation"]))  # fmt: skip
    if rho >= 1:
        return rows + [Agreement(stats.cell, "backlog slope", "fluid limit lam - c/E[S]", False, stats.fluid_slope,
                                 stats.growth.slope, "least-squares slope over the arrival period")]  # fmt: skip
    prediction = _prediction(stats)
    if prediction is None:
        return rows
    steady = stats.steady if stats.steady is not None else steady_state(run, stats.cell)
    note = f"MSER-5 warm-up cut: first {steady.truncation.mean:.0f} items of each replication"
    note += "" if steady.settled else " (did not settle)"
    rows.append(Agreement(stats.cell, "Wq", prediction.model, prediction.exact, prediction.wq, steady.wait, note))
    if not math.isnan(prediction.p_wait):
        rows.append(Agreement(stats.cell, "P(wait)", prediction.model, prediction.exact, prediction.p_wait,
                              steady.p_wait, note))  # fmt: skip
    return rows


def agreement_frame(rows: list[Agreement]) -> pd.DataFrame:
    """A flat table of agreement rows, for reports and tests.

    Args:
        rows: rows from :func:`compare_theory`.
    """
    return pd.DataFrame([{
        "cell": r.cell, "quantity": r.quantity, "model": r.model, "exact": r.exact, "theory": r.theory,
        "measured": r.measured.mean, "low": r.measured.low, "high": r.measured.high,
        "relative_error": r.relative_error, "inside_ci": r.inside_ci, "agrees": r.agrees, "note": r.note,
    } for r in rows])  # fmt: skip
