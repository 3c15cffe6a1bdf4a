"""The scenario plug-in point: a registry of scenario coroutines, built-in and users' own.

A scenario is a coroutine function ``async def NAME(ctx) -> None`` that runs one replication of a
queue program on the running event loop, given a :class:`~bench.scenarios.context.ScenarioContext`
(its queue options, seeded random streams, recorder hooks and clock). The grid names it in its
``scenario`` axis:

* a built-in name: ``pool`` (the default, :mod:`bench.scenarios.pool`: pushers, an asyncio queue
  and workers, with the behaviours of :mod:`bench.behaviour`);
* ``path/to/file.py:NAME``: the coroutine ``NAME`` of a Python file (imported by path, its folder
  on ``sys.path`` so it can import its neighbours);
* ``package.module:NAME``: the coroutine ``NAME`` of an importable module.

Built-ins are registered the same way, as ``module:NAME`` in :data:`BUILTIN`. :func:`resolve`
checks a reference when a grid is made (the file exists, imports and defines a coroutine function
of that name) and records the file's sha256; :func:`load` imports it again wherever a cell runs
(worker processes and Dask workers included) and refuses a file whose content changed since.

The plain program (the ``pool`` with no behaviour and one pusher) runs as
:func:`bench.scenario.run_scenario`, the fast path; :func:`~bench.scenarios.supervisor.run_program`
runs every other scenario.
"""

from __future__ import annotations

import hashlib
import importlib
import inspect
import os
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

from bench.errors import InputError
from bench.scenario import DEFAULT_PROGRAM

__all__ = ["BUILTIN", "DEFAULT_PROGRAM", "MAX_SCENARIO_BYTES", "ProgramRef", "ScenarioError", "load", "resolve"]

#: Built-in scenario name -> ``module:function`` of its coroutine.
BUILTIN = {DEFAULT_PROGRAM: "bench.scenarios.pool:pool"}
#: Largest scenario file (read whole, hashed and compiled in every process that runs it).
MAX_SCENARIO_BYTES = 16 << 20


class ScenarioError(InputError):
    """A scenario reference that cannot be used: missing, not importable, or not a coroutine function."""


@dataclass(frozen=True)
class ProgramRef:
    """A resolved scenario reference.

    Attributes:
        reference: the canonical text: a built-in name, ``/absolute/path.py:NAME`` or ``module:NAME``.
        path: the file it comes from (absolute), or None for a built-in.
        sha256: the file's sha256, or None for a built-in.
    """

    reference: str
    path: str | None = None
    sha256: str | None = None

    @property
    def builtin(self) -> bool:
        """Whether it is a built-in scenario."""
        return self.reference in BUILTIN

    @property
    def name(self) -> str:
        """A short name for messages: the built-in name, or ``file.py:NAME`` / ``module:NAME``."""
        if self.path is None or not self.reference.startswith(self.path):
            return self.reference
        return f"{os.path.basename(self.path)}:{self.reference.rpartition(':')[2]}"


def _split(text: str) -> tuple[str, str]:
    target, sep, name = text.rpartition(":")
    if not sep or not target.strip() or not name.strip().isidentifier():
        raise ScenarioError(f"scenario {text!r}: use a built-in name ({', '.join(BUILTIN)}), FILE.py:NAME or "
                            "module:NAME, NAME being an async function")  # fmt: skip
    return target.strip(), name.strip()


def _is_path(target: str) -> bool:
    return target.endswith(".py") or "/" in target or os.sep in target


def resolve(text: Any) -> ProgramRef:
    """Check a scenario reference and resolve it (a file to its absolute path and sha256).

    Raises:
        ScenarioError: not text, an unknown built-in, a file that does not exist or cannot be read,
            a module or file that fails to import, or a NAME that is not a coroutine function.
    """
    if not isinstance(text, str) or not text.strip():
        raise ScenarioError(f"scenario {text!r}: expected a built-in name ({', '.join(BUILTIN)}), FILE.py:NAME or "
                            "module:NAME")  # fmt: skip
    text = text.strip()
    if text in BUILTIN:
        return ProgramRef(text)
    target, name = _split(text)
    if _is_path(target):
        path = os.path.abspath(os.path.expanduser(target))
        source = _read(text, path)
        digest = hashlib.sha256(source).hexdigest()
        _coroutine(text, _file_module(text, path, source, digest), name)
        return ProgramRef(f"{path}:{name}", path, digest)
    module = _module(text, target)
    _coroutine(text, module, name)
    file = getattr(module, "__file__", None)
    if file is None:
        return ProgramRef(f"{target}:{name}")
    return ProgramRef(f"{target}:{name}", os.path.abspath(file), hashlib.sha256(_read(text, file)).hexdigest())


def load(reference: str, sha256: str | None = None) -> Callable[..., Any]:
    """The coroutine function of a reference (as :func:`resolve` made it), imported in this process.

    Args:
        reference: a built-in name, ``/absolute/path.py:NAME`` or ``module:NAME``.
        sha256: the file's sha256 when the run began; a file that differs is refused.

    Raises:
        ScenarioError: it cannot be loaded, or its file changed since the run read it.
    """
    key = (reference, sha256)
    found = _LOADED.get(key)
    if found is not None:
        return found
    target, name = _split(BUILTIN.get(reference, reference))
    if _is_path(target):
        source = _read(reference, target)
        digest = hashlib.sha256(source).hexdigest()
        if sha256 is not None and digest != sha256:
            raise ScenarioError(f"scenario {reference!r}: {target!r} changed since the run read it (its sha256 "
                                "differs); start a new run")  # fmt: skip
        function = _coroutine(reference, _file_module(reference, target, source, digest), name)
    else:
        module = _module(reference, target)
        file = getattr(module, "__file__", None)
        if sha256 is not None and file is not None and hashlib.sha256(_read(reference, file)).hexdigest() != sha256:
            raise ScenarioError(f"scenario {reference!r}: {file!r} changed since the run read it (its sha256 "
                                "differs); start a new run")  # fmt: skip
        function = _coroutine(reference, module, name)
    _LOADED[key] = function
    return function


_LOADED: dict[tuple[str, str | None], Callable[..., Any]] = {}
_FILES: dict[tuple[str, str], ModuleType] = {}


def _read(text: str, path: str) -> bytes:
    file = Path(path)
    if not file.is_file():
        raise ScenarioError(f"scenario {text!r}: no file {path!r}")
    try:
        with file.open("rb") as handle:
            source = handle.read(MAX_SCENARIO_BYTES + 1)
    except OSError as err:
        raise ScenarioError(f"scenario {text!r}: cannot read {path!r}: {err.strerror or err}") from None
    if len(source) > MAX_SCENARIO_BYTES:
        raise ScenarioError(f"scenario {text!r}: {path!r} is larger than {MAX_SCENARIO_BYTES >> 20} MB")
    return source


def _first_line(err: BaseException) -> str:
    text = f"{type(err).__name__}: {err}" if str(err) else type(err).__name__
    return text.splitlines()[0]


def _file_module(text: str, path: str, source: bytes, digest: str) -> ModuleType:
    """Import a scenario file (once per content) from the bytes that were hashed."""
    key = (path, digest)
    module = _FILES.get(key)
    if module is not None:
        return module
    name = f"qbench_scenario_{digest[:16]}"
    module = ModuleType(name)
    module.__file__ = path
    folder = os.path.dirname(path)
    if folder not in sys.path:
        sys.path.insert(0, folder)  # so the file can import its neighbours, as `python file.py` would
    sys.modules[name] = module
    try:
        exec(compile(source, path, "exec"), module.__dict__)
    except BaseException as err:  # noqa: B902 - any failure to import is the user's file, told in one line
        sys.modules.pop(name, None)
        if isinstance(err, KeyboardInterrupt):
            raise
        raise ScenarioError(f"scenario {text!r}: importing {path!r} raised {_first_line(err)}") from None
    _FILES[key] = module
    return module


def _module(text: str, target: str) -> ModuleType:
    try:
        return importlib.import_module(target)
    except ImportError as err:
        raise ScenarioError(f"scenario {text!r}: cannot import module {target!r} ({_first_line(err)}); a module must "
                            "be importable (installed or on PYTHONPATH), or give a FILE.py path") from None  # fmt: skip
    except Exception as err:
        raise ScenarioError(f"scenario {text!r}: importing module {target!r} raised {_first_line(err)}") from None


def _coroutine(text: str, module: ModuleType, name: str) -> Callable[..., Any]:
    where = getattr(module, "__file__", None) or module.__name__
    function = getattr(module, name, None)
    if function is None:
        raise ScenarioError(f"scenario {text!r}: {os.path.basename(str(where))!r} defines no {name!r}")
    if not inspect.iscoroutinefunction(function):
        raise ScenarioError(f"scenario {text!r}: {name!r} is not an async function (a scenario is "
                            f"`async def {name}(ctx)`)")  # fmt: skip
    return function
