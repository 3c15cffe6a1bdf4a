"""Bad input: the one error type the command line prints as one line with exit status 2.

Every module that checks what a user gave (distribution specs, grids, executors, results folders)
raises a subclass of :class:`InputError` with a one-line message naming what is wrong. Anything
else that escapes is a bug and keeps its traceback.
"""

from __future__ import annotations

__all__ = ["InputError"]


class InputError(ValueError):
    """Input that cannot be used: the message is one line naming the input and what is wrong."""
