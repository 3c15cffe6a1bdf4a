"""Fidelity study: how far scaled time drifts from virtual time, on asyncio's loop and on uvloop.

The same cells (same seed, same random streams) run once in virtual time (exact) and then on a
real event loop with every delay multiplied by a scale factor (1e-1 … 1e-4 by default). Item ``i``
is the same piece of work in every run, so the difference between its scaled-time and its
virtual-time sojourn (both in model seconds) is pure event-loop overhead and timer granularity,
magnified by 1/scale. The study reports, per (cell, loop, scale):

* ``drift_mean``: mean |sojourn_scaled − sojourn_virtual| over items (model seconds);
* ``drift_p99``: its 99th percentile;
* ``mean_sojourn_error``: relative error of the mean sojourn (the number a user would read).

It writes ``fidelity.csv`` and a chart of drift against scale (PNG and SVG). Runs are short:
each scaled run gets at most ``budget`` real seconds (fewer items at large scales), so the
whole study takes well under a minute.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from bench.asyncio_engine import run_asyncio
from bench.distributions import parse
from bench.grid import Cell, GridError, loop_factory, streams
from bench.scenario import Scenario

__all__ = ["fidelity_study", "CELLS", "SCALES"]

#: (label, workers, arrival, service)
CELLS = (
    ("seed: const:1 / uniform:0:5, 2 workers", 2, "const:1", "uniform:0:5"),
    ("M/M/1 rho=0.8: exp:1.25 / exp:1", 1, "exp:1.25", "exp:1"),
)
SCALES = (1e-1, 1e-2, 1e-3, 1e-4)


class _Keep:
    def __init__(self) -> None:
        self.sojourn: list[np.ndarray] = []

    def items(self, columns) -> None:
        self.sojourn.append(np.asarray(columns["sojourn"]).copy())

    def depth(self, columns) -> None:
        pass


def _sojourns(cell: Cell, n: int, seed: int, scale: float | None, loop: str) -> np.ndarray:
    """The sojourn of every item of ``n``, in virtual time (``scale`` None) or scaled on ``loop``."""
    keep = _Keep()
    scenario = Scenario(workers=cell.workers, arrival=cell.arrival, service=cell.service, items=n)
    arrivals, services = streams(seed, cell, 0)
    run_asyncio(scenario, arrivals, services, keep, scale=scale,
                loop_factory=None if scale is None else loop_factory(loop))  # fmt: skip
    return np.concatenate(keep.sojourn)


def fidelity_study(
    out: Path | str,
    items: int = 300,
    scales: Sequence[float] | None = None,
    loops: Sequence[str] | None = None,
    seed: int = 1,
    budget: float = 2.0,
    log: Callable[[str], None] | None = None,
) -> list[Path]:
    """Run the study and write ``fidelity.csv``, ``fidelity.png`` and ``fidelity.svg`` into ``out``.

    Args:
        out: folder to write into (created).
        items: items per run at most.
        scales: scale factors (real seconds per model second).
        loops: ``asyncio`` and/or ``uvloop`` (uvloop is skipped, with a note, if not installed).
        seed: root seed of the streams.
        budget: real seconds a scaled run may take; larger scales run fewer items.
        log: called with one line per run.

    Returns:
        the paths written.
    """
    import pandas as pd

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    scales = tuple(scales or SCALES)
    wanted = tuple(loops or ("asyncio", "uvloop"))
    usable = []
    for name in wanted:
        try:
            loop_factory(name)
            usable.append(name)
        except GridError as err:
            if log:
                log(f"skipping {name}: {err}")
    rows = []
    for label, workers, arrival, service in CELLS:
        cell = Cell(id=0, workers=workers, arrival=parse(arrival), service=parse(service), maxsize=0)
        exact = _sojourns(cell, items, seed, None, "virtual")
        for loop in usable:
            for scale in scales:
                n = max(20, min(items, int(budget / (scale * cell.arrival.mean))))
                got = _sojourns(cell, n, seed, scale, loop)
                drift = np.abs(got - exact[:n])
                row: dict[str, Any] = {
                    "cell": label,
                    "loop": loop,
                    "scale": scale,
                    "items": n,
                    "drift_mean": float(drift.mean()),
                    "drift_p99": float(np.quantile(drift, 0.99)),
                    "mean_sojourn_error": float(got.mean() / exact[:n].mean() - 1),
                }
                rows.append(row)
                if log:
                    log(
                        f"{label} | {loop:7} scale={scale:g} items={n}: mean drift {row['drift_mean']:.3g} model s, "
                        f"p99 {row['drift_p99']:.3g}, mean sojourn error {100 * row['mean_sojourn_error']:+.2f}%"
                    )
    table = pd.DataFrame(rows)
    paths = [out / "fidelity.csv"]
    table.to_csv(paths[0], index=False)
    paths += _chart(table, out)
    return paths


def _chart(table, out: Path) -> list[Path]:
    from matplotlib.figure import Figure  # no pyplot: no global backend or state is touched

    fig = Figure(figsize=(11, 4.2))
    axes = fig.subplots(1, 2)
    styles = {"asyncio": "-o", "uvloop": "--s"}
    for (cell, loop), part in table.groupby(["cell", "loop"], sort=False):
        part = part.sort_values("scale")
        label = f"{loop} · {cell.split(':')[0]}"
        axes[0].plot(part.scale, part.drift_mean.clip(lower=1e-9), styles.get(loop, "-"), label=label)
        axes[1].plot(
            part.scale, 100 * part.mean_sojourn_error.abs().clip(lower=1e-6), styles.get(loop, "-"), label=label
        )
    axes[0].set(
        xscale="log",
        yscale="log",
        xlabel="scale (real seconds per model second)",
        ylabel="mean |sojourn drift| (model seconds)",
        title="Per-item drift from virtual time",
    )
    axes[1].set(
        xscale="log",
        yscale="log",
        xlabel="scale (real seconds per model second)",
        ylabel="|error of mean sojourn| (%)",
        title="Error of the mean sojourn",
    )
    for ax in axes:
        ax.invert_xaxis()
        ax.grid(True, which="both", alpha=0.3)
        ax.legend(fontsize=8)
    fig.suptitle("Scaled time vs virtual time: where real event-loop overhead starts to distort results")
    fig.tight_layout()
    paths = [out / "fidelity.png", out / "fidelity.svg"]
    for path in paths:
        fig.savefig(path, dpi=120)
    return paths


if __name__ == "__main__":  # pragma: no cover
    import sys

    for written in fidelity_study(sys.argv[1] if len(sys.argv) > 1 else "results/fidelity", log=print):
        print(f"wrote {written}")
