# The two commands of the README: `make demo` and `make test`. Both create .venv and install first.
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed

.PHONY: demo test test-fast bench notebooks figures paper tex install clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[test]'
	touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)
	MPLBACKEND=Agg $(PY) -m samdyn demo --out out/demo

# The suite builds the paper from the figure scripts' --quick outputs, with real TeX Live (tex below).
test: $(STAMP) tex
	SAMDYN_REQUIRE_TEX=1 $(PY) -m pytest

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

# Issue 14. `make figures` runs every figure script at full size into experiments/out/ (committed) and
# prints each one's wall time; `make figures QUICK=1` is the smoke version, into out/quick/.
FIGROOT = $(if $(QUICK),out/quick,experiments/out)
figures: $(STAMP)
	$(PY) experiments/figures.py $(if $(QUICK),--quick)

# `make paper` builds paper/main.pdf from the outputs under $(FIGROOT) (QUICK=1: the smoke outputs),
# reproducibly: a fixed SOURCE_DATE_EPOCH gives the same PDF bytes on every build.
# TEXINPUTS lets main.tex name each figure and numbers file without its folder; -g always rebuilds
# (latexmk would otherwise keep a PDF made from the other root as "up to date").
TEX_DEBS := latexmk texlive-latex-base texlive-latex-recommended texlive-fonts-recommended lmodern
TEX_STYS := article.cls geometry.sty array.sty amssymb.sty plainnat.bst graphicx.sty hyperref.sty natbib.sty amsmath.sty booktabs.sty caption.sty microtype.sty xcolor.sty lmodern.sty
tex:
	@if ! command -v latexmk >/dev/null || ! kpsewhich $(TEX_STYS) >/dev/null 2>&1; then \
	  echo "TeX Live is missing or incomplete: installing the Debian packages $(TEX_DEBS)"; \
	  SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
	  { $$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq --no-install-recommends $(TEX_DEBS) >/dev/null; } \
	    || { echo "could not install them: run 'apt-get install $(TEX_DEBS)' (Debian/Ubuntu)"; exit 1; }; \
	fi

# The PDF's dates: the day of the published full `make figures` run (2026-11-23 UTC), so that a rebuild
# from a clone gives the committed bytes. Change it when the figures are republished.
SOURCE_DATE_EPOCH ?= 1795392000
paper: tex
	cd paper && SOURCE_DATE_EPOCH=$(SOURCE_DATE_EPOCH) FORCE_SOURCE_DATE=1 TEXINPUTS=$(abspath $(FIGROOT))//: \
	  latexmk -pdf -g -interaction=nonstopmode -halt-on-error -quiet main.tex

clean:
	rm -rf $(VENV) out .pytest_cache
