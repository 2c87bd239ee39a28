# The two commands of the README: `make demo` and `make test`. Both create .venv and install first.
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed

.PHONY: demo test install clean

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

clean:
	rm -rf $(VENV) out .pytest_cache
