"""A cell's scenario and behaviours as the analysis sees them: labels, and which theory and checks apply.

Every behaviour is a parameter column of ``cells.parquet`` (results format version 3): the axes
``scenario``, ``discipline``, ``patience``, ``batch``, ``failure`` and the settings ``classes``,
``linger``, ``setup``, ``attempts``, ``backoff``, with ``pushers`` from the arrival spec. A cell
with their defaults is the *plain* pool, the FIFO G/G/c queue the rest of the analysis assumes.

What the plain-queue figures need, and where a behaviour breaks it:

* **FIFO theory** (M/M/c, M/G/1, Kingman, Allen-Cunneen, the fluid slope, utilisation): the mean
  wait and ``P(wait)`` of a work-conserving queue do not depend on the order items are served in, so
  ``lifo``, ``priority`` (one service distribution for every class) and several Poisson pushers keep
  them; patience, batches, a setup time, failures and a user's own scenario do not;
* **Little's law** on the wait: abandoned items and retries spend queue time that ``wait`` (from the
  first put to the last take) does not describe, so the check is not made for them;
* **input checks**: a batched item's ``service`` is its batch's, and a user's scenario defines
  ``service`` itself, so the service check is left out there (the arrival check too for a user's).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import pandas as pd

__all__ = [
    "BEHAVIOUR_AXES", "behaviour_label", "builtin", "checks_inputs", "elastic", "fifo_theory_applies",
    "has_behaviours", "is_plain", "little_applies", "workers_label",
]  # fmt: skip

#: Behaviour axes of a grid and their defaults (the plain pool).
BEHAVIOUR_AXES = {"scenario": "pool", "discipline": "fifo", "patience": "none", "batch": 1, "failure": 0.0}


def _text(params: Mapping[str, Any], key: str, default: str = "none") -> str:
    value = params.get(key)
    return default if value is None or (not isinstance(value, str) and pd.isna(value)) else str(value)


def _number(params: Mapping[str, Any], key: str, default: float) -> float:
    value = params.get(key)
    return default if value is None or pd.isna(value) else float(value)


def builtin(params: Mapping[str, Any]) -> bool:
    """Whether the cell runs the built-in pool (not a user's scenario)."""
    return _text(params, "scenario", "pool") == "pool"


def is_plain(params: Mapping[str, Any]) -> bool:
    """The plain pool: one pusher, fifo, no classes, patience, batches, setup or failures."""
    return (fifo_theory_applies(params) and _text(params, "discipline", "fifo") == "fifo"
            and _text(params, "classes") == "none" and int(_number(params, "pushers", 1)) == 1)  # fmt: skip


def has_behaviours(params: Mapping[str, Any]) -> bool:
    """Whether the cell is anything but the plain pool."""
    return not is_plain(params)


def fifo_theory_applies(params: Mapping[str, Any]) -> bool:
    """The built-in pool without patience, batches, setup or failures (any discipline, classes, pushers)."""
    return (builtin(params) and _text(params, "patience") == "none" and int(_number(params, "batch", 1)) == 1
            and _text(params, "setup") == "none" and _number(params, "failure", 0.0) == 0)  # fmt: skip


def little_applies(params: Mapping[str, Any]) -> bool:
    """Whether ``L = lam W`` on the wait is a fair self-check: no abandonment and no retries."""
    return _text(params, "patience") == "none" and _number(params, "failure", 0.0) == 0


def checks_inputs(params: Mapping[str, Any]) -> tuple[bool, bool]:
    """Whether the measured (arrival, service) means can be checked against their specs (not the
    arrival of a non-stationary process: over a run its mean gap is not the long-run one)."""
    mine = builtin(params)
    steady = params.get("stationary")
    arrival = mine and (steady is None or pd.isna(steady) or bool(steady))
    return arrival, mine and int(_number(params, "batch", 1)) == 1 and _text(params, "setup") == "none"


def elastic(params: Mapping[str, Any]) -> str | None:
    """The cell's elastic workers spec (``auto:...``), or None for fixed workers."""
    value = params.get("elastic")
    return None if value is None or (not isinstance(value, str) and pd.isna(value)) or not value else str(value)


def workers_label(params: Mapping[str, Any]) -> str:
    """``3`` for fixed workers, ``auto 2-16`` for elastic ones (their min and max)."""
    spec = elastic(params)
    if spec is None:
        return str(params["workers"])
    words = dict(part.split("=", 1) for part in spec[len("auto:") :].split(",") if "=" in part)
    return f"auto {words.get('min', '?')}-{words.get('max', params['workers'])}"


def behaviour_label(params: Mapping[str, Any]) -> str:
    """The cell's behaviours in a few words (empty for the plain pool), e.g.
    ``priority high:0.2,low:0.8; patience exp:10``."""
    words = []
    scenario = _text(params, "scenario", "pool")
    if scenario != "pool":
        words.append(f"scenario {scenario.rsplit('/', 1)[-1]}")
    discipline, classes = _text(params, "discipline", "fifo"), _text(params, "classes")
    if discipline != "fifo" or classes != "none":
        words.append(discipline + (f" {classes}" if classes != "none" else ""))
    if _text(params, "patience") != "none":
        words.append(f"patience {_text(params, 'patience')}")
    batch, setup, linger = int(_number(params, "batch", 1)), _text(params, "setup"), _number(params, "linger", 0.0)
    if batch > 1 or setup != "none":
        words.append(f"batch {batch}" + (f" linger {linger:g}" if batch > 1 and linger else "")
                     + (f" setup {setup}" if setup != "none" else ""))  # fmt: skip
    failure = _number(params, "failure", 0.0)
    if failure:
        backoff = _text(params, "backoff")
        words.append(f"failure {failure:g} x{int(_number(params, 'attempts', 1))}"
                     + (f" backoff {backoff}" if backoff != "none" else ""))  # fmt: skip
    pushers = int(_number(params, "pushers", 1))
    if pushers > 1:
        words.append(f"{pushers} pushers")
    backlog = int(_number(params, "backlog0", 0))
    if backlog:
        words.append(f"backlog0 {backlog}")
    spec = elastic(params)
    if spec is not None:
        words.append(spec)
    return "; ".join(words)
