"""Synthetic results folders for the analysis tests, written exactly per ``results/README.md``
with the schema-version-5 columns of ``cells.parquet``.

A FIFO G/G/c queue is simulated with the Kiefer-Wolfowitz recurrence (each item, in arrival
order, goes to the worker that frees up first), so the data has the shape and the statistics of
a real run, with known theory: M/M/c cells match Erlang C, the seed scenario grows at 0.2 items/s.
A bounded queue (``maxsize > 0``) blocks the pusher in ``put`` while ``maxsize`` items wait, as
``asyncio.Queue`` does; the pusher draws its next inter-arrival time once ``put`` returns. Every
drawn delay is rounded to whole nanoseconds, as the virtual clock does. Arrival and service times
depend only on (seed, replication), not on the worker count: common random numbers, as the
harness promises. The version-2 columns (achieved arrival rate, blocked fraction, observed means
and SDs of the draws) are computed from the simulated items; the version-3 ones are those of the
plain pool (one pusher, fifo, no classes, patience, batches or failures), and the version-4 ones
those of fixed workers, stationary arrivals and no backlog at t = 0 (no ``events/`` files: the
reader takes a cell without one as a renewal process at its mean rate with its fixed workers). This module deliberately shares no
code with ``analysis`` (the backlog slope below is computed independently), so tests check one
against the other.
"""

from __future__ import annotations

import heapq
import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from bench.digest import Digest, Digester
from bench.encoding import encode_depth, encode_digests, encode_items

VERSION = 5
META = {b"qbench.schema_version": str(VERSION).encode(), b"qbench.run": b"synthetic"}
MAX_BACKLOG = 1_000_000


@dataclass(frozen=True)
class Dist:
    """A tiny distribution spec parser for the fixture: const, uniform, exp, pareto:MEAN:ALPHA."""

    spec: str

    @property
    def parts(self) -> list[str]:
        return self.spec.split(":")

    @property
    def mean(self) -> float:
        fam, *p = self.parts
        return (float(p[0]) + float(p[1])) / 2 if fam == "uniform" else float(p[0])

    @property
    def cv(self) -> float:
        fam, *p = self.parts
        if fam == "const":
            return 0.0
        if fam == "exp":
            return 1.0
        if fam == "pareto":
            alpha = float(p[1])
            return 1 / np.sqrt(alpha * (alpha - 2)) if alpha > 2 else np.nan
        lo, hi = float(p[0]), float(p[1])
        return (hi - lo) / np.sqrt(12) / self.mean

    def sample(self, rng: np.random.Generator, n: int) -> np.ndarray:
        """``n`` draws, rounded to whole nanoseconds like every delay on the virtual clock."""
        fam, *p = self.parts
        if fam == "const":
            x = np.full(n, float(p[0]))
        elif fam == "exp":
            x = rng.exponential(float(p[0]), n)
        elif fam == "pareto":
            alpha = float(p[1])
            x = float(p[0]) * (alpha - 1) / alpha * (1 + rng.pareto(alpha, n))
        else:
            x = rng.uniform(float(p[0]), float(p[1]), n)
        return np.round(x * 1e9) / 1e9


@dataclass(frozen=True)
class Replication:
    """One simulated replication: its items and depth frames, when it ended and its status."""

    items: pd.DataFrame
    depth: pd.DataFrame
    t_end: float
    status: str


def replicate(
    arrival: str,
    service: str,
    workers: int,
    duration: float | None,
    seed: int | str,
    replication: int,
    *,
    maxsize: int = 0,
    items: int | None = None,
    max_backlog: int = MAX_BACKLOG,
) -> Replication:
    """One replication of a FIFO G/G/c queue, ended at ``duration``, after ``items`` items, or when
    the queue reaches ``max_backlog`` (status ``capped``, statistics over [0, t_end])."""
    rng_a, rng_s = (np.random.default_rng([int(seed), replication, k]) for k in (0, 1))
    a, s = Dist(arrival), Dist(service)
    n = items if items is not None else int(duration / a.mean * 1.5 + 50)
    gaps, svc = a.sample(rng_a, n - 1), s.sample(rng_s, n)
    t_arrive, t_put, t_get, who = _recurrence(gaps, svc, workers, maxsize)
    end = float(np.max(t_get + svc)) if items is not None else float(duration)
    keep = t_put < end if items is None else np.ones(n, dtype=bool)
    frames = _frames(t_arrive[keep], t_put[keep], t_get[keep], svc[keep], who[keep], end, replication, maxsize)
    capped = np.flatnonzero(frames[1]["depth"].to_numpy() >= max_backlog)
    if len(capped) == 0:
        return Replication(*frames, end, "ok")
    t_cap = float(frames[1]["t"].iloc[capped[0]])
    keep &= t_put <= t_cap
    frames = _frames(t_arrive[keep], t_put[keep], t_get[keep], svc[keep], who[keep], t_cap, replication, maxsize)
    return Replication(*frames, t_cap, "capped")


def simulate(
    arrival: str, service: str, workers: int, duration: float, seed: int | str, replication: int, maxsize: int = 0
):
    """One replication over [0, duration]; returns (items, depth) frames."""
    rep = replicate(arrival, service, workers, duration, seed, replication, maxsize=maxsize)
    return rep.items, rep.depth


def _recurrence(gaps: np.ndarray, svc: np.ndarray, workers: int, maxsize: int):
    """Arrival, put and get times and the worker of every item; a full bounded queue blocks the put
    until the item ``maxsize`` places ahead is taken (FIFO: gets happen in item order)."""
    n = len(svc)
    t_arrive, t_put, t_get = np.zeros(n), np.zeros(n), np.zeros(n)
    who = np.empty(n, dtype=np.int64)
    free = [(0.0, w) for w in range(workers)]
    for i in range(n):
        t_arrive[i] = 0.0 if i == 0 else t_put[i - 1] + gaps[i - 1]
        t_put[i] = max(t_arrive[i], t_get[i - maxsize]) if 0 < maxsize <= i else t_arrive[i]
        f, w = heapq.heappop(free)
        t_get[i], who[i] = max(f, t_put[i]), w
        heapq.heappush(free, (t_get[i] + svc[i], w))
    return t_arrive, t_put, t_get, who


def _frames(t_arrive, t_put, t_get, svc, who, end, replication, maxsize):
    t_done = t_get + svc
    got, done = t_get <= end, t_done <= end
    n = len(t_put)
    items = pd.DataFrame({
        "replication": np.full(n, replication, dtype=np.int64), "item": np.arange(n, dtype=np.int64),
        "worker": pd.Series(who, dtype="Int64").where(got),
        "t_arrive": t_arrive, "t_put": t_put,
        "t_get": np.where(got, t_get, np.nan), "t_done": np.where(done, t_done, np.nan),
    })  # fmt: skip
    items["wait"] = items["t_get"] - items["t_put"]
    items["service"] = items["t_done"] - items["t_get"]
    items["sojourn"] = items["t_done"] - items["t_put"]
    items["status"] = np.where(done, "served", np.where(got, "in_service", "queued"))
    items["class"] = pd.Series([None] * n, dtype=object)
    items["pusher"] = np.zeros(n, dtype=np.int64)
    items["attempts"] = got.astype(np.int64)
    items["t_leave"] = items["t_done"]
    # Events at equal times in causal order: an unblocked put before any get; a put that waited for
    # a free slot right after the get of the item maxsize places ahead; gets in item order.
    blocked = t_put > t_arrive
    rank = np.where(blocked, np.arange(n) - maxsize + 0.5, -1.0)
    times = np.concatenate([t_put, t_get[got]])
    ranks = np.concatenate([rank, np.flatnonzero(got).astype(float)])
    kinds = np.concatenate([np.ones(n, np.int8), -np.ones(int(got.sum()), np.int8)])
    order = np.lexsort((ranks, times))
    depth = pd.DataFrame({"replication": np.full(len(times), replication, dtype=np.int64),
                          "t": times[order], "depth": np.cumsum(kinds[order]).astype(np.int64),
                          "event": kinds[order]})  # fmt: skip
    put_rows = np.flatnonzero(kinds[order] == 1)
    items["depth_at_put"] = depth["depth"].to_numpy()[put_rows][np.argsort(np.argsort(t_put, kind="stable"))]
    return items, depth


def step_slope(t: np.ndarray, y: np.ndarray, end: float) -> float:
    """Least-squares slope of the step function y (value y[k] on [t[k], t[k+1])) over [0, end]."""
    keep = t <= end
    t, y = np.concatenate([[0.0], t[keep]]), np.concatenate([[0.0], y[keep]])
    edges = np.concatenate([t, [end]])
    # integral of (u - end/2) * y over each step, via the antiderivative (u - end/2)^2 / 2
    c = edges - end / 2
    moment = np.sum(y * (c[1:] ** 2 - c[:-1] ** 2) / 2)
    return float(moment / (end**3 / 12))


def _sample(values: np.ndarray) -> tuple[float, float]:
    """Mean and SD (ddof=1) of a sample, NaN where undefined."""
    mean = float(values.mean()) if len(values) else np.nan
    return mean, float(values.std(ddof=1)) if len(values) > 1 else np.nan


def _stats(rep: Replication, workers: int) -> dict:
    items, depth, end = rep.items, rep.depth, rep.t_end
    got, done = items["wait"].dropna(), items["sojourn"].dropna()
    t, y = depth["t"].to_numpy(), depth["depth"].to_numpy()
    dt = np.diff(np.concatenate([t, [end]]))
    busy = np.sum(np.clip(np.minimum(items["t_get"].fillna(end) + items["service"].fillna(np.inf), end)
                          - items["t_get"].fillna(end), 0, None))  # fmt: skip
    t_last = float(items["t_put"].max())
    n_put = len(items)
    gaps = items["t_arrive"].to_numpy()[1:] - items["t_put"].to_numpy()[:-1]
    blocked = float(np.sum(items["t_put"] - items["t_arrive"]))
    q = lambda x, p: float(np.percentile(x, p)) if len(x) else np.nan  # noqa: E731
    arrival_obs, service_obs = _sample(gaps), _sample(items["service"].dropna().to_numpy())
    return {
        "n_put": n_put, "n_got": len(got), "n_done": len(done), "t_end": end, "t_last_put": t_last,
        "throughput": len(done) / end, "utilisation": busy / (workers * end),
        "wait_mean": got.mean(), "wait_p50": q(got, 50), "wait_p95": q(got, 95), "wait_p99": q(got, 99),
        "sojourn_mean": done.mean(), "sojourn_p50": q(done, 50), "sojourn_p95": q(done, 95),
        "sojourn_p99": q(done, 99), "depth_mean": float(np.sum(y * dt) / end),
        "depth_max": int(y.max()), "depth_final": int(y[-1]), "backlog_slope": step_slope(t, y, t_last),
        "arrival_rate": (n_put - 1) / t_last if n_put >= 2 and t_last > 0 else np.nan,
        "blocked_fraction": blocked / t_last if t_last > 0 else np.nan,
        "arrival_obs_mean": arrival_obs[0], "arrival_obs_sd": arrival_obs[1],
        "service_obs_mean": service_obs[0], "service_obs_sd": service_obs[1],
        "clock_lag_mean": 0.0, "clock_lag_max": 0.0,
        "n_served": len(done), "n_abandoned": 0, "n_gave_up": 0, "n_attempts": len(got),
        "goodput": len(done) / end, "abandon_rate": 0.0 if len(got) else np.nan,
        "status": rep.status,
        "error": None if rep.status == "ok" else f"backlog reached {int(y.max())} items at t={end:.6g}s (max_backlog); "
        "stopped early",
        "wall_seconds": 0.01,
        "worker_seconds": workers * end, "workers_peak": workers, "arrivals_end": np.nan,
    }  # fmt: skip


def _write(table: pd.DataFrame, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    arrow = pa.Table.from_pandas(table, preserve_index=False)
    pq.write_table(arrow.replace_schema_metadata({**(arrow.schema.metadata or {}), **META}), path)


def _cell_params(cell: int, spec: tuple, settings: dict) -> dict:
    workers, arrival, service, *rest = spec
    a, s = Dist(arrival), Dist(service)
    return {"cell": cell, "workers": workers, "arrival": arrival, "service": service, "maxsize": rest[0] if rest else 0,
            "arrival_mean": a.mean, "arrival_cv": a.cv, "service_mean": s.mean, "service_cv": s.cv,
            "offered_load": s.mean / a.mean, "rho": s.mean / a.mean / workers, **PLAIN, **settings}  # fmt: skip


#: The version-3 parameters of the plain pool.
PLAIN = {"scenario": "pool", "discipline": "fifo", "patience": "none", "batch": 1, "failure": 0.0, "classes": None,
         "linger": 0.0, "setup": "none", "attempts": 3, "backoff": "none", "pushers": 1, "patience_mean": None,
         "setup_mean": None, "backlog0": 0, "elastic": None, "stationary": True}  # fmt: skip


def write_run(
    folder: Path,
    grid: Sequence[tuple],
    *,
    duration: float | None = 2000.0,
    items: int | None = None,
    replications: int = 5,
    seed: int | str = 1,
    clock: str = "virtual",
    engine: str = "asyncio",
    max_backlog: int = MAX_BACKLOG,
    failed: dict[int, str] | None = None,
    with_cells_parquet: bool = True,
) -> Path:
    """Write a synthetic results folder with one cell per ``(workers, arrival, service[, maxsize])`` of
    ``grid``; ``items`` (instead of ``duration``) makes an items run; cells named in ``failed`` are
    recorded as a runner records a cell that raised: every replication ``failed`` with the error,
    no statistics and no items or depth files."""
    duration = None if items is not None else duration
    settings = {"items_target": items, "duration": duration, "clock": clock, "engine": engine, "seed": str(seed)}
    rows, manifest_cells = [], []
    for cell, spec in enumerate(grid):
        params = _cell_params(cell, spec, settings)
        manifest_cells.append({k: params[k] for k in ("cell", "workers", "arrival", "service", "maxsize")})
        if cell in (failed or {}):
            error = failed[cell]
            cell_rows = [{**params, "replication": r, "status": "failed", "error": error} for r in range(replications)]
        else:
            cell_rows = _simulate_cell(folder, params, replications, seed, max_backlog)
        _write(_cells_frame(cell_rows), folder / "parts" / f"cell-{cell:05d}.parquet")
        rows.extend(cell_rows)
    if with_cells_parquet:
        _write(_cells_frame(rows), folder / "cells.parquet")
    grid_settings = {"items": items, "duration": duration, "replications": replications, "seed": str(seed),
                     "clock": clock, "max_backlog": max_backlog}  # fmt: skip
    manifest = {"schema_version": VERSION, "run": folder.name, "status": "failed" if failed else "complete",
                "created": "2024-01-01T00:00:00Z", "command": "synthetic", "grid": grid_settings,
                "cells": manifest_cells, "seeds": {"seed": str(seed)}, "engine": engine,
                "loop": "virtual" if clock == "virtual" else "asyncio", "clock": clock,
                "versions": {"python": "3", "qbench": "0.1.0"}, "platform": "test", "git_commit": "0" * 40,
                "timings": {"total": 0.1}}  # fmt: skip
    (folder / "manifest.json").write_text(json.dumps(manifest, indent=1))
    return folder


def _simulate_cell(folder: Path, params: dict, replications: int, seed: int | str, max_backlog: int) -> list[dict]:
    """Simulate every replication of one cell, write its items and depth files, return its rows."""
    items_all, depth_all, cell_rows, digests = [], [], [], []
    cell, workers = params["cell"], params["workers"]
    for r in range(replications):
        rep = replicate(params["arrival"], params["service"], workers, params["duration"], seed, r,
                        maxsize=params["maxsize"], items=params["items_target"], max_backlog=max_backlog)  # fmt: skip
        cell_rows.append({**params, "replication": r, **_stats(rep, workers)})
        items_all.append(rep.items.assign(cell=cell))
        depth_all.append(rep.depth.assign(cell=cell))
        digests.append(_digest(rep, workers, r))
    _write_records(items_all, cell, folder / "items" / f"cell-{cell:05d}.parquet", encode_items)
    _write_records(depth_all, cell, folder / "depth" / f"cell-{cell:05d}.parquet", encode_depth)
    (folder / "digests").mkdir(parents=True, exist_ok=True)
    table = encode_digests([d.to_row() for d in digests], cell)
    pq.write_table(table.replace_schema_metadata(META), folder / "digests" / f"cell-{cell:05d}.parquet")
    return cell_rows


def _digest(rep: Replication, workers: int, replication: int) -> Digest:
    """The replication's digest, as a run records it (:mod:`bench.digest`)."""
    digester = Digester(workers, replication)
    columns = {c: rep.items[c].to_numpy(dtype=float) for c in ("item", "wait", "sojourn", "service", "t_put", "t_get",
                                                               "t_done")}  # fmt: skip
    columns["item"] = rep.items["item"].to_numpy(dtype=np.int64)
    digester.items(columns)
    digester.depth({"t": rep.depth["t"].to_numpy(), "depth": rep.depth["depth"].to_numpy()})
    return digester.finish(rep.t_end)


def _write_records(frames: list[pd.DataFrame], cell: int, path: Path, encode) -> None:
    """Write one cell's item or depth rows (one frame per replication) in the stored form."""
    path.parent.mkdir(parents=True, exist_ok=True)
    batches = []
    for frame in frames:
        columns = {c: frame[c].to_numpy() for c in frame.columns if c not in ("cell", "replication")}
        if "worker" in columns:
            columns["worker"] = frame["worker"].fillna(-1).to_numpy(dtype=np.int64)
        if "class" in columns:
            columns["class"] = np.array([None if pd.isna(v) else v for v in columns["class"]], dtype=object)
        batches.append(encode(columns, cell, int(frame["replication"].iloc[0])))
    table = pa.Table.from_batches(batches)
    pq.write_table(table.replace_schema_metadata(META), path)


def restatus(folder: Path, cell: int, replications: list[int], status: str, **values) -> None:
    """Rewrite some replications of a cell in ``cells.parquet`` and the cell's part: a new status
    (e.g. ``lagged``) and column values (e.g. ``clock_lag_mean``), the rest of the data untouched."""
    for path in (folder / "cells.parquet", folder / "parts" / f"cell-{cell:05d}.parquet"):
        if not path.exists():
            continue
        frame = pq.read_table(path).to_pandas()
        hit = (frame["cell"] == cell) & frame["replication"].isin(replications)
        frame.loc[hit, "status"] = status
        for column, value in values.items():
            frame.loc[hit, column] = value
        _write(frame, path)


def _front(frame: pd.DataFrame) -> pd.DataFrame:
    """Put ``cell`` first and reset the index."""
    return frame[["cell", *[c for c in frame.columns if c != "cell"]]].reset_index(drop=True)


_INTS = ["cell", "replication", "workers", "maxsize", "n_put", "n_got", "n_done", "depth_max", "depth_final", "batch",
         "attempts", "pushers", "n_served", "n_abandoned", "n_gave_up", "n_attempts", "backlog0", "workers_peak"]  # fmt: skip
_FLOATS = ["arrival_mean", "arrival_cv", "service_mean", "service_cv", "offered_load", "rho", "duration", "t_end",
           "t_last_put", "throughput", "utilisation", "wait_mean", "wait_p50", "wait_p95", "wait_p99", "sojourn_mean",
           "sojourn_p50", "sojourn_p95", "sojourn_p99", "depth_mean", "backlog_slope", "arrival_rate",
           "blocked_fraction", "arrival_obs_mean", "arrival_obs_sd", "service_obs_mean", "service_obs_sd",
           "clock_lag_mean", "clock_lag_max", "wall_seconds", "failure", "linger", "goodput", "abandon_rate", "patience_mean", "setup_mean",
           "worker_seconds", "arrivals_end"]  # fmt: skip


def _cells_frame(rows: list[dict]) -> pd.DataFrame:
    frame = pd.DataFrame(rows)
    for column in _INTS + ["items_target"]:
        frame[column] = frame[column].astype("Int64") if column in frame else pd.array([None] * len(frame), "Int64")
    for column in _FLOATS:
        frame[column] = frame[column].astype("float64") if column in frame else np.nan
    for column in (
        "arrival",
        "service",
        "clock",
        "engine",
        "seed",
        "status",
        "error",
        "scenario",
        "discipline",
        "patience",
        "classes",
        "setup",
        "backoff",
        "elastic",
    ):
        frame[column] = frame[column].astype("string")
    frame["stationary"] = frame["stationary"].astype("boolean") if "stationary" in frame else pd.NA
    if frame[_INTS].notna().all().all():
        frame[_INTS] = frame[_INTS].astype("int64")
    return _front(frame)


SEED_GRID = [(2, "const:1", "uniform:0:5"), (3, "const:1", "uniform:0:5"), (4, "const:1", "uniform:0:5")]
