"""A whole sweep: open (or create) the store, run the chunks it lacks, write each as it finishes.

:func:`run` is what ``samdyn sweep`` calls; :func:`describe` is its ``--dry-run``; :func:`show` is
``samdyn show``.
"""

from __future__ import annotations

import dataclasses
import math
import socket
import sys
import time
from pathlib import Path
from typing import Callable

import numpy as np

from .executors import InProcess
from .plan import make_plan, setting_bytes
from .spec import load, setup
from .store import Store, open as open_store

__all__ = ["run", "Summary", "describe", "show"]

#: Assumed speeds for the --dry-run time estimate, measured roughly on 2 CPU cores (a GPU is far
#: faster): particle-steps/s by noise kind (a 2-D landscape; Hessian noise takes an eigh per step),
#: and FLOP/s of a small dense network.
ASSUMED_PARTICLE_STEPS = {"none": 1e8, "gaussian": 3e7, "minibatch": 3e7, "hessian": 5e6}
ASSUMED_FLOPS = 4e10


@dataclasses.dataclass(frozen=True)
class Summary:
    """What :func:`run` did.

    Attributes:
        store: the store folder.
        chunks: chunks in the sweep; ran: chunks computed by this call (the others were already done).
        settings: grid settings; work: particle-steps (run-steps for networks) computed by this call.
        seconds: wall time of this call; diverged: diverged runs in the whole result (for a
            many-particle run: settings with at least one diverged particle).
    """

    store: str
    chunks: int
    ran: int
    settings: int
    work: int
    seconds: float
    diverged: int
    unit: str

    def __str__(self) -> str:
        rate = self.work / self.seconds if self.seconds > 0 else float("nan")
        speed = f" in {self.seconds:.1f} s ({rate:.3g} {self.unit}/s)" if self.ran else ""
        return (f"done: {self.chunks} chunks ({self.ran} run now, {self.chunks - self.ran} already in the store), "
                f"{self.settings} settings, {self.work:.3g} {self.unit}{speed}\n"
                f"store: {self.store}  (samdyn.sweep.open({self.store!r}))\n"
                f"diverged: {self.diverged} of {self.settings} runs")


def run(spec, out, *, executor=None, progress: bool = True, on_chunk: Callable | None = None) -> Summary:
    """Run ``spec`` into the store ``out``, skipping the chunks it already holds.

    Args:
        spec: a :class:`~samdyn.sweep.spec.Spec`, a TOML path or a dict.
        out: the store folder (created if absent; refused if it holds another spec).
        executor: :class:`~samdyn.sweep.executors.InProcess` (default) or
            :class:`~samdyn.sweep.executors.Dask`.
        progress: show a progress bar on stderr (chunks done, particle-steps/s, ETA).
        on_chunk: called as ``on_chunk(chunk_id)`` after each chunk is stored.

    Returns:
        A :class:`Summary`.
    """
    from tqdm.auto import tqdm

    spec = load(spec)
    plan = make_plan(spec)
    store = Store.create_or_open(out, spec, plan)
    done = store.done()
    todo = [c for c in range(plan.n_chunks) if c not in done]
    if todo and done:
        store.check_code()
    unit = "run-steps" if spec.kind == "nets" else "particle-steps"
    total = sum(plan.chunk_work(c) for c in todo)
    executor = executor or InProcess()
    t0 = time.perf_counter()
    work = 0
    diverged = sum(store.marker(c)["diverged"] for c in done)
    with tqdm(total=total, unit=f" {unit}", unit_scale=True, disable=not (progress and todo), file=sys.stderr,
              dynamic_ncols=True, desc=f"chunks {len(done)}/{plan.n_chunks}") as bar:
        for chunk_id, ds in executor.map(spec, todo):
            n_div = int(np.asarray(ds["diverged"].values).sum())
            store.write(chunk_id, ds, {"diverged": n_div, "host": socket.gethostname()})
            diverged += n_div
            done.add(chunk_id)
            w = plan.chunk_work(chunk_id)
            work += w
            bar.set_description(f"chunks {len(done)}/{plan.n_chunks}", refresh=False)
            bar.update(w)
            del ds
            if on_chunk is not None:
                on_chunk(chunk_id)
    seconds = time.perf_counter() - t0
    summary = Summary(str(store.path), plan.n_chunks, len(todo), plan.settings, work, seconds, diverged, unit)
    if not store.complete:
        store.finish({"chunks": plan.n_chunks, "settings": plan.settings, "diverged": diverged})
    return summary


def _size(n: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if n < 1024 or unit == "TiB":
            return f"{n:.3g} {unit}"
        n /= 1024


def describe(spec) -> str:
    """The ``--dry-run`` report: grid, chunks, memory and a rough time estimate (no compute)."""
    import jax

    spec = load(spec)
    plan = make_plan(spec)
    data, run = spec.data, spec.data["run"]
    problem = data["problem"]
    what = problem.get("landscape") or problem.get("expr") or f"{problem['model']} on {problem['dataset']}"
    lines = [f"sweep {data['name'] or ''}: {spec.mode} run of {data['optimizer']['name']} on {what}, "
             f"noise {data['noise']['kind']}, {run['dtype']}"]
    axes = " × ".join(f"{a.name} {a.size}" + (" (static)" if a.static else "") for a in plan.axes) or "one setting"
    lines.append(f"grid: {axes} = {plan.settings} settings")
    block = " × ".join(f"{a.name} {b}" for a, b in zip(plan.axes, plan.block) if a.size > 1) or "everything"
    lines.append(f"chunks: {plan.n_chunks} of up to {plan.chunk} settings ({block}); "
                 f"{plan.lanes} {'runs' if spec.mode == 'nets' else 'particles'} per compiled call")
    per_setting = setting_bytes(spec)
    lines.append(f"memory: result {_size(per_setting * plan.settings)} (uncompressed), "
                 f"{_size(per_setting * plan.chunk)} per chunk")
    work = sum(plan.chunk_work(c) for c in range(plan.n_chunks))
    if spec.mode == "nets":
        s = setup(spec)
        shapes = jax.eval_shape(lambda k: s.model.init(k), jax.random.PRNGKey(0))
        n_params = sum(math.prod(leaf.shape) for leaf in jax.tree.leaves(shapes))
        b = np.mean(np.atleast_1d(dict(spec.grid)["batch_size"]))
        flops = 6.0 * n_params * b * work * (1 if data["optimizer"]["name"] == "gd" else 2)
        lines.append(f"work: {work:.3g} run-steps of a {n_params}-parameter network, ~{flops:.2g} FLOP (6 per"
                     " parameter and sample per gradient; convolutions cost more)")
        lines.append(f"time: ~{flops / ASSUMED_FLOPS:.3g} s at an assumed {ASSUMED_FLOPS:.0e} FLOP/s (2 CPU cores),"
                     " plus compile per static group")
    else:
        rate = ASSUMED_PARTICLE_STEPS[data["noise"]["kind"]]
        lines.append(f"work: {work:.3g} particle-steps")
        lines.append(f"time: ~{work / rate:.3g} s at an assumed {rate:.0e} particle-steps/s ({data['noise']['kind']}"
                     " noise, 2 CPU cores, a 2-D landscape), plus compile per static group")
    return "\n".join(lines)


def show(path) -> str:
    """The ``samdyn show`` report: dimensions, coordinates, provenance, completion, divergence."""
    store = Store(path)
    ds = open_store(path, partial=True)
    done = store.done()
    lines = [f"store {Path(path)}: {len(done)} of {store.n_chunks} chunks done"
             + (" (complete)" if store.complete else "")]
    lines.append("dimensions: " + ", ".join(f"{k} {v}" for k, v in ds.sizes.items()))
    lines.append("coordinates:")
    for name, c in ds.coords.items():
        vals = np.asarray(c.values).ravel()
        shown = ", ".join(str(v) for v in vals[:6]) + (", …" if vals.size > 6 else "")
        lines.append(f"  {name} ({', '.join(c.dims)}): {shown}")
    lines.append("variables: " + ", ".join(f"{k} ({', '.join(v.dims)}) {v.dtype}" for k, v in ds.data_vars.items()
                                           if k != "done"))
    lines.append("provenance:")
    for key in ("title", "samdyn_version", "git_commit", "jax_version", "jax_backend", "mode", "dtype", "seed",
                "steps", "particles", "chunk", "lanes", "spec_hash"):
        if key in ds.attrs:
            lines.append(f"  {key}: {ds.attrs[key]}")
    diverged = np.asarray(ds["diverged"].values)
    if "done" in ds:
        diverged = diverged[np.asarray(ds["done"].values)]
    lines.append(f"diverged: {int(diverged.sum())} of {diverged.size} finished runs")
    return "\n".join(lines)
