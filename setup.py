"""Build the optional C speed-ups; everything else is in pyproject.toml.

``optional=True``: where no C compiler is found the install still succeeds and qbench runs its
pure-Python twins (``bench.clock.ACCELERATED`` is then False).
"""

from setuptools import Extension, setup

setup(ext_modules=[Extension("bench._speedups", ["bench/_speedups.c"], optional=True, extra_compile_args=["-O2"])])
