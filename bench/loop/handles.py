"""The light handles of the fast loops: a ready callback and a timer kept as lists.

:class:`_Soon` is what ``PyVirtualEventLoop.call_soon`` returns and :class:`_Timer` what its
``call_later``/``call_at`` return: a timer is its own heap entry, ordered by (deadline, scheduling
order) by list comparison in C. Both have the public methods of asyncio's handles (``cancel``,
``cancelled``, ``get_context``, and ``when`` for timers) but not their private attributes.
"""

from __future__ import annotations

import contextvars

from .reference import _NS


class _ListHandle(list):
    """A handle of :class:`PyVirtualEventLoop` kept as a list (built and read in C), compared by
    identity like asyncio's handles (lists would compare by value)."""

    __slots__ = ()
    _source_traceback = None  # what asyncio's own code reads of a non-debug handle
    __eq__ = object.__eq__
    __ne__ = object.__ne__
    __hash__ = object.__hash__  # type: ignore[assignment]  # lists are unhashable; handles hash by identity


class _Soon(_ListHandle):
    """A ready callback of :class:`PyVirtualEventLoop`: ``[callback, args, context]``.

    It has the public interface of :class:`asyncio.Handle` (``cancel``, ``cancelled``,
    ``get_context``); cancelling clears ``callback``, as ``Handle.cancel`` does.
    """

    __slots__ = ()

    def cancel(self) -> None:
        """Cancel the callback; it will not run."""
        self[0] = self[1] = None

    def cancelled(self) -> bool:
        """Return True if the callback was cancelled."""
        return self[0] is None

    def get_context(self) -> contextvars.Context:
        """Return the context the callback runs in."""
        return self[2]

    def __repr__(self) -> str:
        return f"<Handle {'cancelled' if self[0] is None else self[0]!r}>"


class _Timer(_ListHandle):
    """A timer of :class:`PyVirtualEventLoop` and its heap entry at once:
    ``[when_ns, sequence, callback, args, context, loop while scheduled]``.

    Lists compare item by item in C, so the heap orders timers by (deadline, scheduling order)
    without Python-level comparisons. It has the public interface of :class:`asyncio.TimerHandle`
    (``when``, ``cancel``, ``cancelled``, ``get_context``).
    """

    __slots__ = ()

    def when(self) -> float:
        """Return the scheduled time in (virtual) seconds."""
        return self[0] / _NS

    def cancel(self) -> None:
        """Cancel the timer; a scheduled one is counted so the heap can be compacted."""
        if self[2] is not None:
            loop = self[5]
            if loop is not None:
                loop._cancelled_timers += 1
            self[2] = self[3] = None

    def cancelled(self) -> bool:
        """Return True if the timer was cancelled."""
        return self[2] is None

    def get_context(self) -> contextvars.Context:
        """Return the context the callback runs in."""
        return self[4]

    def __repr__(self) -> str:
        return f"<TimerHandle when={self[0] / _NS!r} {'cancelled' if self[2] is None else self[2]!r}>"
