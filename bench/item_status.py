"""What became of an item: the values of the ``status`` column of ``items/`` (results format version 3).

Defined here, below both the recorder that writes them (:mod:`bench.full_recorder`) and the results
format that documents them (:mod:`bench.results_format`), so that there is one list.
"""

from __future__ import annotations

__all__ = ["ITEM_STATUSES", "TERMINAL"]

#: Every status an item may have: ``blocked`` (its pusher was still blocked in ``put`` at the end),
#: ``queued``, ``in_service``, ``backoff`` (an attempt failed; waiting to go back on the queue),
#: ``served``, ``abandoned`` (it left the queue at its deadline) and ``gave_up`` (its last allowed
#: attempt failed). The order is the recorder's status codes.
ITEM_STATUSES = ("blocked", "queued", "in_service", "backoff", "served", "abandoned", "gave_up")
#: Statuses of items that have left the system; the others are still in it at the end of a run.
TERMINAL = ("served", "abandoned", "gave_up")
