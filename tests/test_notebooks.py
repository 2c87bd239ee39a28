"""The notebooks: each runs top to bottom in a real Jupyter kernel at smoke size, its ``.ipynb`` and its
jupytext ``.py`` hold the same cells, and the committed ``.ipynb`` carries no outputs.

The kernel is ``python3`` from the environment running the tests (jupyter_client starts it with
``sys.executable``); it imports samdyn from this checkout (``PYTHONPATH``) and runs in ``notebooks/``.
``SAMDYN_NOTEBOOK_SMOKE=1`` makes every notebook pick its small sizes; the code is the same.

At smoke size compiling dominates, so the kernel is set to compile less:
``SAMDYN_CPU_DEVICES=1`` (one JAX device, so a run over several chunks compiles its program once, not
once per device; a particle's bits do not depend on the device count, tests/test_engine.py) and XLA's
backend optimisation level 0 (the training programs of 04 compile in about a quarter of the time).
These change how fast the programs are built, not what they compute; a smoke run checks that every
cell runs and that the notebooks' own assertions hold.
"""

import os
import pathlib

import jupytext
import nbformat
import pytest
from nbclient import NotebookClient

ROOT = pathlib.Path(__file__).resolve().parents[1]
NOTEBOOKS = ROOT / "notebooks"
NAMES = ["00_explorer", "01_quickstart", "02_stability", "03_diffusion_and_escape", "04_networks", "05_sweeps"]


def cells(nb):
    return [(cell.cell_type, cell.source.strip()) for cell in nb.cells]


def test_the_notebooks_are_these_pairs():
    assert sorted(p.stem for p in NOTEBOOKS.glob("*.ipynb")) == NAMES
    assert sorted(p.stem for p in NOTEBOOKS.glob("*.py")) == NAMES


@pytest.mark.parametrize("name", NAMES)
def test_ipynb_and_py_agree_and_outputs_are_stripped(name):
    nb = nbformat.read(NOTEBOOKS / f"{name}.ipynb", as_version=4)
    paired = jupytext.read(NOTEBOOKS / f"{name}.py")
    assert cells(nb) == cells(paired), f"{name}.ipynb and {name}.py differ: run `jupytext --sync notebooks/{name}.py`"
    assert nb.metadata["jupytext"]["formats"] == "ipynb,py:percent"
    assert nb.metadata["kernelspec"]["name"] == "python3"
    for i, cell in enumerate(nb.cells):
        if cell.cell_type == "code":
            assert cell.outputs == [] and cell.execution_count is None, (
                f"{name}.ipynb cell {i} has outputs: clear them (jupyter nbconvert --clear-output --inplace)")


def stream_text(nb) -> str:
    return "".join(out.get("text", "") for cell in nb.cells if cell.cell_type == "code" for out in cell.outputs
                   if out.output_type == "stream")


@pytest.mark.parametrize("name", NAMES)
def test_notebook_runs_at_smoke_size(name, monkeypatch):
    monkeypatch.setenv("SAMDYN_NOTEBOOK_SMOKE", "1")
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])))
    monkeypatch.delenv("MPLBACKEND", raising=False)  # conftest's Agg is for the tests; the kernel draws inline
    monkeypatch.setenv("SAMDYN_CPU_DEVICES", "1")
    monkeypatch.setenv("XLA_FLAGS", " ".join(filter(None, [os.environ.get("XLA_FLAGS"), "--xla_backend_optimization_level=0"])))
    nb = nbformat.read(NOTEBOOKS / f"{name}.ipynb", as_version=4)
    client = NotebookClient(nb, kernel_name="python3", timeout=300, resources={"metadata": {"path": str(NOTEBOOKS)}})
    client.execute()  # raises CellExecutionError at the first cell that fails
    errors = [out for cell in nb.cells if cell.cell_type == "code" for out in cell.outputs if out.output_type == "error"]
    assert errors == []
    figures = sum("image/png" in out.get("data", {}) for cell in nb.cells if cell.cell_type == "code"
                  for out in cell.outputs)
    assert figures >= 1 or name == "00_explorer"  # the explorer draws into an Image widget
    if name == "00_explorer":
        # the notebook asserts it too; this says the check ran and what it measured
        text = stream_text(nb)
        assert "slider moves after the first γ > 0: 0 new compilations" in text and "back to Beale: 0" in text
