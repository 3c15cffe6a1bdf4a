"""Per-class statistics of a cell (or per pusher, when several pushers and no classes), with intervals.

A run whose cells draw item classes (``classes = "high:0.2,low:0.8"``) records each item's class in
``items/``; one with several pushers records each item's pusher. For every replication with data,
each group's figures are computed exactly from its items (quantiles by the inverted CDF), and each
figure gets a 95% Student t interval across replications, like every figure of
:mod:`analysis.cell_stats`:

* ``share``: the group's fraction of the items put;
* ``wait_mean``, ``wait_p50``, ``wait_p95``, ``wait_p99``: over items taken by a worker, those that
  gave up after failed attempts left out (as in ``cells.parquet``);
* ``sojourn_mean``, ``sojourn_p99``: over items served;
* ``abandon_rate``: abandoned items over items taken or abandoned.

A group metric is named ``METRIC[GROUP]``, e.g. ``wait_p99[high]`` or ``wait_mean[pusher 1]``;
``qbench compare`` accepts such names (:func:`split_metric`), pairing replications as it pairs any
metric. Nothing here is estimated with a warm-up cut: the figures describe the whole run, as the
summary table's do.
"""

from __future__ import annotations

import math
import re

import numpy as np
import pandas as pd

from analysis.estimate import Estimate, mean_ci
from analysis.load import Run, data_rows, has_items, read_items

__all__ = ["GROUP_METRICS", "group_key", "group_stats", "group_values", "metric_values", "split_metric"]

#: The per-group metrics, in display order.
GROUP_METRICS = ("share", "wait_mean", "wait_p50", "wait_p95", "wait_p99", "sojourn_mean", "sojourn_p99",
                 "abandon_rate")  # fmt: skip

_GROUP_METRIC = re.compile(r"(?P<base>[a-z_0-9]+)\[(?P<group>[^\[\]]+)\]")


def split_metric(name: str) -> tuple[str, str] | None:
    """``("wait_p99", "high")`` for ``wait_p99[high]``; None for a name that is not a group metric."""
    match = _GROUP_METRIC.fullmatch(name.strip())
    if match is None or match["base"] not in GROUP_METRICS:
        return None
    return match["base"], match["group"].strip()


def group_key(params: dict) -> str | None:
    """The item column that groups a cell: ``class`` when it draws classes, ``pusher`` when it has
    several pushers (and no classes), None otherwise."""
    classes = params.get("classes")
    if isinstance(classes, str) and classes and classes != "none":
        return "class"
    pushers = params.get("pushers")
    if pushers is not None and not pd.isna(pushers) and int(pushers) > 1:
        return "pusher"
    return None


def _label(key: str, value: object) -> str:
    return f"pusher {int(value)}" if key == "pusher" else str(value)  # type: ignore[call-overload]


def group_values(run: Run, cell: int) -> pd.DataFrame:
    """One row per (replication with data, group) of a cell: ``replication``, ``group`` and every
    metric of :data:`GROUP_METRICS` (empty when the cell has no groups)."""
    params = run.params.loc[cell].to_dict()
    key = group_key(params)
    columns = ["replication", "group", *GROUP_METRICS]
    if key is None or not has_items(run, cell):  # a summary run keeps no items to group
        return pd.DataFrame(columns=columns)
    rows = data_rows(run.cells)
    reps = sorted(int(r) for r in rows.loc[rows["cell"] == cell, "replication"])
    items = read_items(run, cells=[cell], replications=reps, columns=[key, "status", "wait", "sojourn"], join=False)
    found = []
    for rep, one in items.groupby("replication", sort=True):
        total = len(one)
        for value, group in one.groupby(key, sort=False, dropna=True):
            status = group["status"].to_numpy(dtype=object)
            taken = group["wait"].notna().to_numpy() & (status != "gave_up")
            waits = group["wait"].to_numpy(dtype=float)[taken]
            sojourns = group["sojourn"].to_numpy(dtype=float)[status == "served"]
            abandoned = int((status == "abandoned").sum())
            decided = abandoned + int(group["wait"].notna().sum())
            found.append({"replication": int(rep), "group": _label(key, value), "share": len(group) / total,
                          "wait_mean": _mean(waits), "wait_p50": _quantile(waits, 0.50),
                          "wait_p95": _quantile(waits, 0.95), "wait_p99": _quantile(waits, 0.99),
                          "sojourn_mean": _mean(sojourns), "sojourn_p99": _quantile(sojourns, 0.99),
                          "abandon_rate": abandoned / decided if decided else math.nan})  # fmt: skip
    frame = pd.DataFrame(found, columns=columns)
    if key == "class":  # the mix's order: highest priority first
        order = {name.split(":")[0]: i for i, name in enumerate(str(params["classes"]).split(","))}
        frame = frame.sort_values(["replication", "group"], key=lambda c: c.map(order) if c.name == "group" else c,
                                  kind="stable").reset_index(drop=True)  # fmt: skip
    return frame


def _mean(values: np.ndarray) -> float:
    return float(values.mean()) if values.size else math.nan


def _quantile(values: np.ndarray, q: float) -> float:
    return float(np.quantile(values, q, method="inverted_cdf")) if values.size else math.nan


def group_stats(values: pd.DataFrame) -> dict[str, dict[str, Estimate]]:
    """Each group's metrics with 95% intervals across replications, groups in first-seen order.

    Args:
        values: :func:`group_values` of a cell.
    """
    return {
        str(group): {metric: mean_ci(frame[metric].to_numpy(dtype=float)) for metric in GROUP_METRICS}
        for group, frame in values.groupby("group", sort=False)
    }


def metric_values(values: pd.DataFrame, metric: str, replications: list[int]) -> np.ndarray:
    """A group metric (``wait_p99[high]``) per replication, in the order of ``replications`` (NaN
    where the replication has no item of the group).

    Args:
        values: :func:`group_values` of the cell.
        metric: the group metric's name.
        replications: replication ids, in the order wanted.

    Raises:
        ValueError: ``metric`` is not a group metric.
    """
    split = split_metric(metric)
    if split is None:
        raise ValueError(f"{metric!r} is not a group metric (METRIC[GROUP], METRIC one of {', '.join(GROUP_METRICS)})")
    base, group = split
    mine = values[values["group"] == group].set_index("replication")[base]
    return np.array([float(mine.get(r, math.nan)) for r in replications], dtype=float)
