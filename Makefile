# The two commands of the README: `make demo` and `make test`. Both create .venv and install first.
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed

.PHONY: demo test test-fast bench notebooks install clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[test]'
	touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)
	MPLBACKEND=Agg $(PY) -m samdyn demo --out out/demo

test: $(STAMP)
	$(PY) -m pytest

# The quick tier for the edit-test loop (tests marked `fast` in tests/conftest.py); `make test` is the full suite.
test-fast: $(STAMP)
	$(PY) -m pytest -m fast -q

# Benchmarks (issue 6): torch is an optional peer, never a runtime dependency. torch==2.13.0 is the
# CPU wheel these machines carry; where it cannot be installed, the torch rows say "skipped".
TORCH ?= torch==2.13.0
bench: $(STAMP)
	$(PY) -m pip install --quiet $(TORCH) || echo "torch not installable here: torch rows will be skipped"
	$(PY) -m pip install --quiet -e '.[bench]' || echo "numba/optax not installable here: their anchor rows will be skipped"
	$(PY) experiments/benchmarks.py

# JupyterLab in the venv, its kernel able to import samdyn (the `notebooks` extra; README, Notebooks).
NB_STAMP := $(VENV)/.notebooks
$(NB_STAMP): $(STAMP)
	$(PY) -m pip install --quiet -e '.[notebooks]'
	touch $(NB_STAMP)

notebooks: $(NB_STAMP)
	$(VENV)/bin/jupyter lab --notebook-dir=notebooks

clean:
	rm -rf $(VENV) out .pytest_cache
