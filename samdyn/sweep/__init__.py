"""Sweeps: one spec file → a labelled, resumable dataset, in-process or on a Dask cluster.

>>> from samdyn import sweep
>>> spec = sweep.load_spec({"problem": {"landscape": "saddle"}, "optimizer": {"name": "gd"},
...                         "grid": {"lr": [0.1, 0.2]}, "run": {"x0": [1.0, 0.5], "steps": 10}})
>>> ds = sweep.run_chunk(spec, 0)
>>> ds["final"].sel(lr=0.1).values.round(6).tolist()        # (1 - 2·0.1)^10 · 1, (1 + 2·0.1)^10 · 0.5
[0.107374, 3.095868]

``sweep.run(spec, STORE)`` runs every chunk into a store (``samdyn sweep SPEC.toml --out STORE``)
and ``sweep.open(STORE)`` reads the result. Modules: :mod:`.spec` (TOML → validated Spec),
:mod:`.plan` (axes, chunks, layout), :mod:`.work` (a chunk → Dataset), :mod:`.store` (zarr store,
markers, provenance), :mod:`.executors` (in-process, Dask), :mod:`.driver` (the whole sweep),
:mod:`.cli` (``samdyn sweep``, ``samdyn show``).
"""

from .driver import Summary, describe, run, show
from .executors import Dask, InProcess
from .plan import Plan, make_plan
from .spec import Spec, SpecError, load as load_spec, loads as loads_spec
from .store import StoreError, open
from .work import run_chunk

__all__ = ["Spec", "SpecError", "StoreError", "load_spec", "loads_spec", "Plan", "make_plan", "run_chunk", "run",
           "open", "describe", "show", "Summary", "InProcess", "Dask"]
