"""The on-disk store of a sweep: one zarr group, written a chunk at a time, safe to kill.

Layout of a store folder ``STORE/``::

    spec.json        the canonical spec, its hash and the chunking (written when the store is made)
    spec.toml        the spec as written (for people)
    data.zarr/       the result: every variable at full size, zarr chunks aligned with sweep chunks
    chunks/<id>.json one completion marker per finished chunk (timing, worker, divergence count)
    COMPLETE         written last, when every chunk is done

Why zarr: every sweep chunk writes its own aligned region of the full-size arrays, so nothing is
merged at the end and memory stays at one chunk whatever the size of the sweep; the store opens
lazily as one labelled ``xarray.Dataset``; and its directory-of-files layout is what parallel
writers, object stores and other languages read. (netCDF would need a file per chunk and a final
merge that holds or rewrites the whole result.)

Atomicity: the store is created in a temporary folder and renamed into place, so it either exists
with its spec or not at all. A chunk's data files are written, fsync-ed, and only then is its marker
written (to a temporary name, fsync-ed, renamed). A chunk whose marker is missing — killed while
writing — is rewritten from scratch on the next run, and :func:`open` never shows its data as done.
"""

from __future__ import annotations

import functools
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import xarray as xr
import zarr

from .plan import Plan, chunk_slices, layout
from .spec import Spec, SpecError
from .work import variable_attrs

__all__ = ["Store", "StoreError", "open", "provenance"]


class StoreError(SpecError):
    """The store cannot take this sweep (another spec, another chunking) or is not a sweep store."""


def _fsync_path(path: Path):
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def atomic_write(path: Path, text: str):
    """Write ``text`` to ``path`` atomically: a temporary file, fsync, rename, fsync of the folder."""
    path = Path(path)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    with tmp.open("w") as fh:
        fh.write(text)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)
    _fsync_path(path.parent)


@functools.lru_cache(maxsize=1)
def git_commit() -> str:
    """``git rev-parse HEAD`` in samdyn's folder, or ``"unknown"``."""
    try:
        out = subprocess.run(["git", "rev-parse", "HEAD"], cwd=Path(__file__).resolve().parent, capture_output=True,
                             text=True, timeout=10)
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    return out.stdout.strip() if out.returncode == 0 and out.stdout.strip() else "unknown"


def made_by() -> dict:
    """The samdyn version and git commit of the running code."""
    return {"samdyn_version": sys.modules["samdyn"].__version__,  # the package is loaded: this module is in it
            "git_commit": git_commit()}


def provenance(spec: Spec, plan: Plan) -> dict:
    """The store's attributes: what ran, with what, and how it was cut."""
    import jax

    run = spec.data["run"]
    seed = dict(spec.grid)["seed"]
    return {
        "title": spec.data["name"] or "samdyn sweep", "description": spec.data["description"] or "",
        **made_by(), "jax_version": jax.__version__,
        "jax_backend": jax.default_backend(), "numpy_version": np.__version__,
        "spec_hash": spec.hash, "spec_json": spec.text, "spec_toml": spec.source or "",
        "mode": spec.mode, "dtype": run["dtype"], "seed": seed, "steps": run["steps"] or run["epochs"],
        "particles": run["particles"] or 0, "chunk": plan.chunk, "n_chunks": plan.n_chunks,
        "chunk_split": plan.split, "chunk_block": list(plan.block), "lanes": plan.lanes,
        "grid_dims": list(plan.dims),
    }


def _coord(values) -> tuple:
    """Coordinate values and their zarr dtype: strings as variable-length UTF-8 (in the v3 spec)."""
    arr = np.asarray(values)
    return (arr.astype(str), str) if arr.dtype.kind in "UOT" else (arr, arr.dtype)


class Store:
    """A sweep store folder (see the module docstring). Use :meth:`create_or_open`."""

    def __init__(self, path):
        self.path = Path(path)
        meta_path = self.path / "spec.json"
        if not meta_path.is_file():
            raise StoreError(f"sweep store: {str(self.path)!r} is not a sweep store (no spec.json)")
        self.meta = json.loads(meta_path.read_text())
        self.n_chunks = self.meta["n_chunks"]

    @property
    def data_path(self) -> Path:
        return self.path / "data.zarr"

    @classmethod
    def create_or_open(cls, path, spec: Spec, plan: Plan) -> "Store":
        """Open the store at ``path`` for ``spec`` (refusing another spec), creating it if absent."""
        path = Path(path)
        meta = {"spec_hash": spec.hash, "n_chunks": plan.n_chunks, "split": plan.split, "block": list(plan.block),
                "shape": list(plan.shape), "dims": list(plan.dims)}
        if path.exists() and not (path.is_dir() and not any(path.iterdir())):  # an empty folder is taken
            store = cls(path)
            if store.meta["spec_hash"] != spec.hash:
                raise StoreError(
                    f"sweep store: {str(path)!r} holds another spec (hash {store.meta['spec_hash'][:12]}…, this one"
                    f" {spec.hash[:12]}…); point --out elsewhere or delete the store")
            if {k: store.meta.get(k) for k in meta} != meta:
                raise StoreError(f"sweep store: {str(path)!r} was cut into other chunks (another samdyn version?);"
                                 " point --out elsewhere or delete the store")
            return store
        tmp = path.with_name(f".{path.name}.creating")
        shutil.rmtree(tmp, ignore_errors=True)  # left by a run killed while creating
        tmp.mkdir(parents=True)
        _create_zarr(tmp / "data.zarr", spec, plan)
        (tmp / "chunks").mkdir()
        atomic_write(tmp / "spec.toml", spec.source or f"# canonical JSON\n# {spec.text}\n")
        atomic_write(tmp / "spec.json", json.dumps({**meta, "made_by": made_by(), "spec": spec.data}, indent=1))
        os.rename(tmp, path)
        _fsync_path(path.parent)
        return cls(path)

    def check_code(self):
        """Refuse to add chunks computed by other code (another samdyn version or git commit) than
        the chunks already stored: their bits could differ. A finished store is read by anyone."""
        then, now = self.meta.get("made_by", {}), made_by()
        if any(then.get(k, "unknown") != v and "unknown" not in (then.get(k, "unknown"), v) for k, v in now.items()):
            raise StoreError(f"sweep store: {str(self.path)!r} holds chunks computed by samdyn {then} and this is {now};"
                             " finishing it would mix their bits: point --out elsewhere or delete the store")

    def done(self) -> set:
        """Ids of the chunks whose completion marker exists."""
        folder = self.path / "chunks"
        return {int(p.stem) for p in folder.glob("*.json") if p.stem.isdigit()}

    @property
    def complete(self) -> bool:
        return (self.path / "COMPLETE").is_file()

    def write(self, chunk_id: int, ds: xr.Dataset, info: dict):
        """Write chunk ``chunk_id``'s data into its region, fsync it, then write its marker."""
        meta = self.meta
        sl = chunk_slices(meta["shape"], meta["split"], meta["block"], chunk_id)
        group = zarr.open_group(self.data_path, mode="r+")
        grid_dims = tuple(meta["dims"])
        for dim, s in zip(grid_dims, sl):
            if np.asarray(group[dim][s]).tolist() != np.asarray(ds[dim].values).tolist():
                raise RuntimeError(f"sweep store: chunk {chunk_id} has other {dim} values than its region")
        chunk_index = tuple(s.start // b for s, b in zip(sl, meta["block"]))
        written = []
        for name, var in ds.data_vars.items():
            arr = group[name]
            extra = arr.ndim - len(grid_dims)
            arr[tuple(sl) + (slice(None),) * extra] = var.values
            key = self.data_path / name / "c"
            for i in chunk_index + (0,) * extra:
                key = key / str(i)
            written.append(key)  # zarr writes a chunk file by temporary file + rename; absent if all fill
        for key in written:
            if key.is_file():
                _fsync_path(key)
        for folder in {key.parent for key in written if key.parent.is_dir()}:
            _fsync_path(folder)
        atomic_write(self.path / "chunks" / f"{chunk_id}.json", json.dumps({"chunk": chunk_id, **info}))

    def marker(self, chunk_id: int) -> dict:
        """The completion marker of a finished chunk."""
        return json.loads((self.path / "chunks" / f"{chunk_id}.json").read_text())

    def finish(self, summary: dict):
        """Write the COMPLETE marker (last)."""
        missing = self.n_chunks - len(self.done())
        if missing:
            raise RuntimeError(f"sweep store: {missing} chunks are missing; not complete")
        atomic_write(self.path / "COMPLETE", json.dumps(summary, indent=1))


def _create_zarr(path: Path, spec: Spec, plan: Plan):
    variables, coords = layout(spec)
    # non-dimension coordinates (e.g. x0 over start × coord) are listed for xarray's CF decoding
    aux = " ".join(name for name, (dims, _) in coords.items() if dims != (name,))
    attrs = {**provenance(spec, plan), **({"coordinates": aux} if aux else {})}
    group = zarr.open_group(path, mode="w", zarr_format=3, attributes=attrs)
    for axis in plan.axes:
        values, dtype = _coord(axis.values)
        arr = group.create_array(axis.name, shape=values.shape, dtype=dtype, chunks=values.shape,
                                 dimension_names=(axis.name,), attributes=variable_attrs(axis.name))
        arr[:] = values
    for name, (dims, values) in coords.items():
        values, dtype = _coord(values)
        arr = group.create_array(name, shape=values.shape, dtype=dtype, chunks=values.shape or None,
                                 dimension_names=dims, attributes=variable_attrs(name))
        arr[...] = values
    for name, var in variables.items():
        group.create_array(name, shape=plan.shape + var.shape, dtype=var.dtype, chunks=plan.block + var.shape,
                           fill_value=var.fill, dimension_names=plan.dims + var.dims, attributes=variable_attrs(name))


def open(path, *, partial: bool = False) -> xr.Dataset:  # noqa: A001 - the natural name: sweep.open(STORE)
    """The result of the sweep stored at ``path``, as a lazily loaded ``xarray.Dataset``.

    Args:
        path: the store folder (``samdyn sweep … --out STORE``).
        partial: allow an unfinished sweep. Then the Dataset has a boolean ``done`` over the grid
            dims, and the float variables of unfinished chunks are NaN (a chunk killed while
            writing is never shown as done).

    Raises:
        StoreError: not a sweep store, or unfinished and ``partial`` is False.
    """
    store = Store(path)
    ds = xr.open_dataset(store.data_path, engine="zarr", consolidated=False, chunks=None)
    done = store.done()
    if len(done) == store.n_chunks:
        return ds
    if not partial:
        raise StoreError(f"sweep store: {str(path)!r} is unfinished ({len(done)} of {store.n_chunks} chunks);"
                         " rerun the sweep to finish it, or open(..., partial=True)")
    meta = store.meta
    mask = np.zeros(meta["shape"], dtype=bool)
    for c in done:
        mask[chunk_slices(meta["shape"], meta["split"], meta["block"], c)] = True
    done_da = xr.DataArray(mask, dims=tuple(meta["dims"]), attrs={"long_name": "chunk finished"})
    out = ds.copy()
    for name, var in ds.data_vars.items():
        if var.dtype.kind == "f":
            out[name] = var.where(done_da)
    out["done"] = done_da
    return out
