"""Build the optional C speed-ups, one extension per Python module; everything else is in pyproject.toml.

Each is ``optional=True``: where no C compiler is found the install still succeeds and the module
runs its pure-Python twin (its ``ACCELERATED`` flag is then False):

* ``bench.loop._core`` speeds up :mod:`bench.loop` (the virtual loop's hot path);
* ``bench._recorder`` speeds up :mod:`bench.recorder` (the row log);
* ``bench._recurrence`` speeds up :mod:`bench.recurrence` (the earliest-free-server loops).
"""

from setuptools import Extension, setup

_EXTENSIONS = {
    "bench.loop._core": "bench/loop/_core.c",
    "bench._recorder": "bench/_recorder.c",
    "bench._recurrence": "bench/_recurrence.c",
}

setup(
    ext_modules=[
        Extension(name, [source], optional=True, extra_compile_args=["-O2"]) for name, source in _EXTENSIONS.items()
    ]
)
