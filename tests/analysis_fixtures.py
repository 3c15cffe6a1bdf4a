"""Synthetic results folders for the analysis tests, written exactly per ``results/README.md``.

A FIFO G/G/c queue is simulated with the Kiefer-Wolfowitz recurrence (each item, in arrival
order, goes to the worker that frees up first), so the data has the shape and the statistics of
a real run, with known theory: M/M/c cells match Erlang C, the seed scenario grows at 0.2 items/s.
Arrival and service times depend only on (seed, replication), not on the worker count: common
random numbers, as the harness promises. This module deliberately shares no code with
``analysis`` (the backlog slope below is computed independently), so tests check one against
the other.
"""

from __future__ import annotations

import heapq
import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

META = {b"qbench.schema_version": b"1", b"qbench.run": b"synthetic"}


@dataclass(frozen=True)
class Dist:
    """A tiny distribution spec parser for the fixture: const, uniform, exp."""

    spec: str

    @property
    def parts(self) -> list[str]:
        return self.spec.split(":")

    @property
    def mean(self) -> float:
        fam, *p = self.parts
        return {"const": lambda: float(p[0]), "exp": lambda: float(p[0]),
                "uniform": lambda: (float(p[0]) + float(p[1])) / 2}[fam]()  # fmt: skip

    @property
    def cv(self) -> float:
        fam, *p = self.parts
        if fam == "const":
            return 0.0
        if fam == "exp":
            return 1.0
        lo, hi = float(p[0]), float(p[1])
        return (hi - lo) / np.sqrt(12) / self.mean

    def sample(self, rng: np.random.Generator, n: int) -> np.ndarray:
        fam, *p = self.parts
        if fam == "const":
            return np.full(n, float(p[0]))
        if fam == "exp":
            return rng.exponential(float(p[0]), n)
        return rng.uniform(float(p[0]), float(p[1]), n)


def simulate(arrival: str, service: str, workers: int, duration: float, seed: int, replication: int):
    """One replication of a FIFO G/G/c queue over [0, duration]; returns (items, depth) frames."""
    rng_a, rng_s = (np.random.default_rng([seed, replication, k]) for k in (0, 1))
    a, s = Dist(arrival), Dist(service)
    n = int(duration / a.mean * 1.5 + 50)
    t_put = np.concatenate([[0.0], np.cumsum(a.sample(rng_a, n - 1))])
    t_put = t_put[t_put < duration]
    svc = s.sample(rng_s, len(t_put))
    free = [(0.0, w) for w in range(workers)]
    t_get, who = np.empty(len(t_put)), np.empty(len(t_put), dtype=np.int64)
    for i, tp in enumerate(t_put):
        f, w = heapq.heappop(free)
        t_get[i], who[i] = max(f, tp), w
        heapq.heappush(free, (t_get[i] + svc[i], w))
    return _frames(t_put, t_get, svc, who, duration, replication)


def _frames(t_put, t_get, svc, who, duration, replication):
    t_done = t_get + svc
    got = t_get <= duration
    done = t_done <= duration
    n = len(t_put)
    items = pd.DataFrame({
        "replication": np.full(n, replication, dtype=np.int64), "item": np.arange(n, dtype=np.int64),
        "worker": pd.Series(who, dtype="Int64").where(got),
        "t_arrive": t_put, "t_put": t_put,
        "t_get": np.where(got, t_get, np.nan), "t_done": np.where(done, t_done, np.nan),
    })  # fmt: skip
    items["wait"] = items["t_get"] - items["t_put"]
    items["service"] = items["t_done"] - items["t_get"]
    items["sojourn"] = items["t_done"] - items["t_put"]
    times = np.concatenate([t_put, t_get[got]])
    kinds = np.concatenate([np.ones(n, np.int8), -np.ones(int(got.sum()), np.int8)])
    order = np.lexsort((-kinds, times))
    depth = pd.DataFrame({"replication": np.full(len(times), replication, dtype=np.int64),
                          "t": times[order], "depth": np.cumsum(kinds[order]).astype(np.int64),
                          "event": kinds[order]})  # fmt: skip
    put_rows = np.flatnonzero(depth["event"].to_numpy() == 1)
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


def _stats(items: pd.DataFrame, depth: pd.DataFrame, workers: int, duration: float) -> dict:
    got, done = items["wait"].dropna(), items["sojourn"].dropna()
    t, y = depth["t"].to_numpy(), depth["depth"].to_numpy()
    dt = np.diff(np.concatenate([t, [duration]]))
    busy = np.sum(np.clip(np.minimum(items["t_get"].fillna(duration) + items["service"].fillna(np.inf), duration)
                          - items["t_get"].fillna(duration), 0, None))  # fmt: skip
    t_last = float(items["t_put"].max())
    q = lambda x, p: float(np.percentile(x, p)) if len(x) else np.nan  # noqa: E731
    return {
        "n_put": len(items), "n_got": len(got), "n_done": len(done), "t_end": duration, "t_last_put": t_last,
        "throughput": len(done) / duration, "utilisation": busy / (workers * duration),
        "wait_mean": got.mean(), "wait_p50": q(got, 50), "wait_p95": q(got, 95), "wait_p99": q(got, 99),
        "sojourn_mean": done.mean(), "sojourn_p50": q(done, 50), "sojourn_p95": q(done, 95),
        "sojourn_p99": q(done, 99), "depth_mean": float(np.sum(y * dt) / duration),
        "depth_max": int(y.max()), "depth_final": int(y[-1]), "backlog_slope": step_slope(t, y, t_last),
        "status": "ok", "error": None, "wall_seconds": 0.01,
    }  # fmt: skip


def _write(table: pd.DataFrame, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    arrow = pa.Table.from_pandas(table, preserve_index=False)
    pq.write_table(arrow.replace_schema_metadata({**(arrow.schema.metadata or {}), **META}), path)


def write_run(
    folder: Path,
    grid: list[tuple[int, str, str]],
    *,
    duration: float = 2000.0,
    replications: int = 5,
    seed: int = 1,
    with_cells_parquet: bool = True,
) -> Path:
    """Write a synthetic results folder with one cell per (workers, arrival, service) of ``grid``."""
    rows, manifest_cells = [], []
    for cell, (workers, arrival, service) in enumerate(grid):
        a, s = Dist(arrival), Dist(service)
        params = {"cell": cell, "workers": workers, "arrival": arrival, "service": service, "maxsize": 0,
                  "arrival_mean": a.mean, "arrival_cv": a.cv, "service_mean": s.mean, "service_cv": s.cv,
                  "offered_load": s.mean / a.mean, "rho": s.mean / a.mean / workers, "items_target": None,
                  "duration": duration, "clock": "virtual", "engine": "asyncio", "seed": seed}  # fmt: skip
        manifest_cells.append(params)
        items_all, depth_all, cell_rows = [], [], []
        for rep in range(replications):
            items, depth = simulate(arrival, service, workers, duration, seed, rep)
            cell_rows.append({**params, "replication": rep, **_stats(items, depth, workers, duration)})
            items_all.append(items.assign(cell=cell))
            depth_all.append(depth.assign(cell=cell))
        _write(_front(pd.concat(items_all)), folder / "items" / f"cell-{cell:05d}.parquet")
        _write(_front(pd.concat(depth_all)), folder / "depth" / f"cell-{cell:05d}.parquet")
        part = _cells_frame(cell_rows)
        _write(part, folder / "parts" / f"cell-{cell:05d}.parquet")
        rows.extend(cell_rows)
    if with_cells_parquet:
        _write(_cells_frame(rows), folder / "cells.parquet")
    manifest = {"schema_version": 1, "run": folder.name, "status": "complete", "created": "2024-01-01T00:00:00Z",
                "command": "synthetic", "grid": {"duration": duration, "replications": replications},
                "cells": manifest_cells, "seeds": {"root": seed}, "engine": "synthetic", "clock": "virtual",
                "versions": {"python": "3", "qbench": "0.1.0"}, "platform": "test", "git_commit": "0" * 40,
                "timings": {"total": 0.1}}  # fmt: skip
    (folder / "manifest.json").write_text(json.dumps(manifest, indent=1))
    return folder


def _front(frame: pd.DataFrame) -> pd.DataFrame:
    """Put ``cell`` first and reset the index."""
    return frame[["cell", *[c for c in frame.columns if c != "cell"]]].reset_index(drop=True)


def _cells_frame(rows: list[dict]) -> pd.DataFrame:
    frame = pd.DataFrame(rows)
    ints = ["cell", "replication", "workers", "maxsize", "seed", "n_put", "n_got", "n_done", "depth_max", "depth_final"]
    frame[ints] = frame[ints].astype("int64")
    frame["items_target"] = frame["items_target"].astype("Int64")
    frame["error"] = frame["error"].astype("string")
    return _front(frame)


SEED_GRID = [(2, "const:1", "uniform:0:5"), (3, "const:1", "uniform:0:5"), (4, "const:1", "uniform:0:5")]
