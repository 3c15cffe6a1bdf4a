# Every target uses the project's own virtual environment, created on first use.
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed
PERF_STAMP := $(VENV)/.installed-perf
RUN    ?= results/default
ARGS   ?=
# the C speed-ups, one per Python module (see setup.py)
C_SRC  := bench/loop/_core.c bench/_recorder.c bench/_recurrence.c

.PHONY: install test test-all lint bench report perf plan-perf clean

$(STAMP): pyproject.toml setup.py $(C_SRC)
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[dev]'
	@touch $(STAMP)

install: $(STAMP)

test: $(STAMP)
	$(PY) -m pytest $(ARGS)

# the suite on every supported Python found (3.11, 3.12, 3.13: pyenv's or on PATH), each in its own
# .venv-3.X with the C extensions built for it; absent ones are skipped with a line that says so
test-all:
	.ci/each-python $(ARGS)

# ruff (lint and format check) and mypy, as configured in pyproject.toml
lint: $(STAMP)
	$(PY) -m ruff check bench analysis tests
	$(PY) -m ruff format --check bench analysis tests
	$(PY) -m mypy

bench: $(STAMP)
	$(PY) -m bench run bench/grids/default.toml --out $(RUN) --force --report $(ARGS)

report: $(STAMP)
	$(PY) -m bench report $(RUN)

$(PERF_STAMP): $(STAMP)
	$(PY) -m pip install --quiet -e '.[dev,perf,uvloop]'
	@touch $(PERF_STAMP)

perf: $(PERF_STAMP)
	$(PY) -m bench perf $(ARGS)

# how long `qbench plan` takes to answer on each engine (aims: < 10 s recurrence, < 2 min asyncio)
plan-perf: $(STAMP)
	$(PY) -m bench.studies.plan_perf $(ARGS)

clean:
	rm -rf $(VENV) .venv-3.* build *.egg-info .pytest_cache
	find bench -name '*.so' -delete
