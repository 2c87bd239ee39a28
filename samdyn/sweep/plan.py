"""From a spec to axes, chunks and the layout of the result.

**Axes.** Every list in ``[grid]`` (and a set of initial points) is an axis, a named dimension of
the result. Axes that change a static choice of the compiled program — ``optimizer``,
``batch_size`` and, on a landscape, ``seed`` (``simulate``'s ``key``) — come first; then ``lr``,
``rho``, ``momentum`` in the order of ``[grid]`` (traced hyperparameters: one compiled program runs
any number of them); then the initial points (landscapes) or ``seed`` (networks, where the seeds
are batched by ``nets.train``).

**Chunks.** A chunk is a box of whole settings: one index on each axis before the *split* axis, a
block of consecutive indices along it, everything after it. The boxes tile the grid regularly, so
a chunk is one batched call of ``simulate`` or ``nets.train`` and one aligned region of the store.
A chunk never spans two values of a static axis. ``run.chunk`` is the number of settings a chunk
holds (default: as many as fit a 64 MiB result and 2³⁰ particle-steps, for a network 64 runs).

**Bits.** Every call of a sweep runs the same compiled program: trajectory runs pad each call to
``lanes`` particles, a multiple of 16, so that every particle is computed by the vectorised loop
body — a run of fewer lanes, or a lane in a scalar tail, can round differently (measured on the
CPU); network runs pad every call to the chunk's run count (XLA picks its batched matmul by batch
size). Many-particle runs compute each setting by itself, in chunks of ``run.chunk_size`` particles
(``simulate``'s own rule), so their bits never depend on the sweep's chunking. Noise is keyed by
(seed, step, particle id) — a start's id is its index in the whole set of starts — so a noisy
sweep reproduces itself under any chunking too.
"""

from __future__ import annotations

import dataclasses
import functools
import math

import numpy as np

from .. import nets
from .spec import Spec, setup, starts

__all__ = ["Axis", "Var", "Plan", "make_plan", "axes", "layout", "record_times", "chunk_slices", "STATIC_AXES", "LABELS"]

#: Axes that change the compiled program; a chunk holds one value of each.
STATIC_AXES = ("optimizer", "batch_size", "seed")
CHUNK_BYTES = 64 * 2**20
CHUNK_WORK = 2**30
NETS_CHUNK = 64
MAX_LANES = 4096
LANE_MULTIPLE = 16

#: ``name -> (long name, units)`` written as attributes (axis labels of the plot helpers).
LABELS = {
    "optimizer": ("optimizer", ""), "batch_size": ("batch size B", "samples"), "seed": ("seed", ""),
    "lr": ("learning rate η", ""), "rho": ("ρ", "parameter units"), "momentum": ("momentum γ", ""),
    "start": ("initial point", ""), "step": ("step", "steps"), "epoch": ("epoch", "epochs"),
    "particle": ("particle", ""), "coord": ("coordinate", ""), "coord2": ("coordinate", ""),
    "quantile": ("quantile", ""), "direction": ("Hessian eigenvector", ""),
    "final": ("final point", "parameter units"), "trajectory": ("w_t", "parameter units"),
    "diverged": ("diverged (NaN/inf)", ""), "diverged_at": ("first non-finite step (−1: never)", "steps"),
    "n_diverged": ("diverged particles", "particles"),
    "loss": ("loss f(w_t)", "loss units"), "distance": ("‖w_t − reference‖", "parameter units"),
    "grad_norm": ("‖∇f(w_{t−1})‖", "gradient units"), "cosine": ("cos between SAM's gradients", ""),
    "msd": ("mean squared displacement E‖w − ref‖²", "(parameter units)²"),
    "mean": ("mean position", "parameter units"), "cov": ("covariance over particles", "(parameter units)²"),
    "width": ("spread along the Hessian eigenvector", "parameter units"),
    "escaped": ("fraction escaped (‖w − ref‖ > radius once)", "fraction"),
    "exit_step": ("first step outside the ball (−1: never)", "steps"),
    "crossed": ("fraction that reached the loss level", "fraction"),
    "cross_step": ("first step with f ≤ level (−1: never)", "steps"),
    "loss_quantiles": ("loss quantile (from the histogram)", "loss units"),
    "count": ("finite particles", "particles"),
    "train_loss": ("training loss", "nats"), "test_loss": ("test loss", "nats"),
    "train_acc": ("training accuracy", "fraction"), "test_acc": ("test accuracy", "fraction"),
    "param_norm": ("‖w_t‖", "parameter units"),
    "monitor_step": ("trap monitor record step", "steps"), "monitor_epoch": ("trap monitor record epoch", "epochs"),
    "k": ("k-th most negative Hessian eigenvalue", ""),
    "monitor_lambda_min": ("most negative Hessian eigenvalues λ_min", "loss units / (parameter units)²"),
    "monitor_lambda_max": ("largest Hessian eigenvalue", "loss units / (parameter units)²"),
    "monitor_grad_norm": ("full-batch gradient norm ‖∇L(w)‖", "gradient units"),
    "monitor_radius": ("effective USAM radius ‖e‖/‖g‖ of the last step", "parameter units / gradient units"),
    "monitor_ratio": ("radius · |λ_min| (> threshold: the saddle attracts)", ""),
    "monitor_cosine": ("cos between SAM's gradients", ""),
    "monitor_captured": ("near a critical point with the ratio beyond the threshold", ""),
    "monitor_hessian_trace": ("Hessian trace (Hutchinson)", "loss units / (parameter units)²"),
    "monitor_sharpness": ("worst-case sharpness max_{‖e‖≤ρ} L(w + e) − L(w)", "loss units"),
    "captured": ("captured at the last monitor record", ""),
}


@dataclasses.dataclass(frozen=True)
class Axis:
    """A dimension of the result: ``name``, coordinate ``values``, and whether it is ``static``."""

    name: str
    values: tuple
    static: bool

    @property
    def size(self) -> int:
        return len(self.values)


@dataclasses.dataclass(frozen=True)
class Var:
    """A variable of the result: the dims it has besides the grid's, their sizes, its dtype and fill."""

    dims: tuple
    shape: tuple
    dtype: str
    fill: object


def axes(spec: Spec) -> tuple:
    """The axes of ``spec``'s result, static ones first (see the module docstring)."""
    grid = dict(spec.grid)
    opt = spec.data["optimizer"]["name"]
    out = []
    if isinstance(opt, list):
        out.append(Axis("optimizer", tuple(opt), True))
    for name in ("batch_size",) + (("seed",) if spec.kind == "landscape" else ()):
        if isinstance(grid.get(name), list):
            out.append(Axis(name, tuple(grid[name]), True))
    for name, value in spec.grid:
        if name in ("lr", "rho", "momentum") and isinstance(value, list):
            out.append(Axis(name, tuple(value), False))
    if spec.kind == "landscape":
        out.extend(Axis(name, tuple(np.asarray(v).tolist()), False) for name, v in starts(spec)[0])
    elif isinstance(grid["seed"], list):
        out.append(Axis("seed", tuple(grid["seed"]), False))
    return tuple(out)


def record_times(spec: Spec) -> tuple[str, np.ndarray]:
    """The record axis: ``("step", steps)`` or, for a network run in epochs, ``("epoch", epochs)``."""
    run = spec.data["run"]
    if run["epochs"] is not None:
        return "epoch", run["every"] * np.arange(1, run["epochs"] // run["every"] + 1)
    return "step", run["every"] * np.arange(1, run["steps"] // run["every"] + 1)


def width_directions(spec: Spec):
    """Eigenvalues (ascending) and eigenvectors (columns) of the Hessian at the stats reference point."""
    run = spec.data["run"]
    point = run["reference"] if run["reference"] is not None else run["x0"]["point"]
    H = np.asarray(setup(spec).problem.hessian(np.asarray(point, dtype=np.float64)), dtype=np.float64)
    return np.linalg.eigh(H)


def layout(spec: Spec) -> tuple[dict, dict]:
    """``(variables, coords)`` of the result besides the grid axes.

    ``variables``: name -> :class:`Var` (the extra dims follow the grid dims); ``coords``: name ->
    ``(dims, values)`` for the non-grid coordinates (record times, particle index, coordinates, …).
    """
    tname, times = record_times(spec)
    coords: dict = {}
    variables = _variables(spec, coords, tname, len(times))
    if any(tname in v.dims for v in variables.values()):
        coords[tname] = ((tname,), times)
    return variables, coords


def _variables(spec: Spec, coords: dict, tname: str, T: int) -> dict:
    """The variables of :func:`layout`; adds the non-grid coordinates they need to ``coords``."""
    run, mode = spec.data["run"], spec.mode
    dtype, obs, nan = run["dtype"], run["observables"], float("nan")
    variables: dict = {}
    if mode == "nets":
        for name in obs:
            variables[name] = Var((tname,), (T,), dtype, nan)
        variables["diverged"] = Var((), (), "bool", False)
        variables["diverged_at"] = Var((), (), "int32", -1)
        if run.get("monitor") is not None:
            variables.update(_monitor_variables(spec, coords, tname))
        return variables

    f = setup(spec).problem
    d = f.dim
    names = [str(s) for s in f.symbols]
    coords["coord"] = (("coord",), np.asarray(names))
    start_axes, points = starts(spec)
    if start_axes and "point" not in run["x0"] and len(start_axes) == 1:
        coords["x0"] = ((start_axes[0][0], "coord"), points)
    if mode == "trajectory":
        variables["final"] = Var(("coord",), (d,), dtype, nan)
        variables["diverged"] = Var((), (), "bool", False)
        variables["diverged_at"] = Var((), (), "int32", -1)
        for name in obs:
            if name == "trajectory":
                variables[name] = Var((tname, "coord"), (T, d), dtype, nan)
            else:
                variables[name] = Var((tname,), (T,), dtype, nan)
        return variables

    P = run["particles"]
    variables["diverged"] = Var((), (), "bool", False)
    variables["n_diverged"] = Var((), (), "int64", -1)
    for name in obs:
        if name in ("msd", "escaped", "crossed"):
            variables[name] = Var((tname,), (T,), "float64", nan)
        elif name == "count":
            variables[name] = Var((tname,), (T,), "int64", -1)
        elif name == "mean":
            variables[name] = Var((tname, "coord"), (T, d), "float64", nan)
        elif name == "cov":
            coords["coord2"] = (("coord2",), np.asarray(names))
            variables[name] = Var((tname, "coord", "coord2"), (T, d, d), "float64", nan)
        elif name == "width":
            lam, _ = width_directions(spec)
            coords["direction"] = (("direction",), np.arange(d))
            coords["eigenvalue"] = (("direction",), lam)
            variables[name] = Var((tname, "direction"), (T, d), "float64", nan)
        elif name in ("exit_step", "cross_step"):
            coords["particle"] = (("particle",), np.arange(P))
            variables[name] = Var(("particle",), (P,), "int32", -2)  # -1 is "never"; -2 "not computed"
        elif name == "loss_quantiles":
            coords["quantile"] = (("quantile",), np.asarray(run["quantiles"]))
            variables[name] = Var((tname, "quantile"), (T, len(run["quantiles"])), "float64", nan)
        elif name == "final":
            coords["particle"] = (("particle",), np.arange(P))
            variables[name] = Var(("particle", "coord"), (P, d), dtype, nan)
    return variables


def _monitor_variables(spec: Spec, coords: dict, tname: str) -> dict:
    """The trap monitor's records (``monitor_<record>`` over ``monitor_<tname>``; ``monitor_lambda_min``
    also over ``k``) and ``captured``, its flag at the last record; adds their coordinates."""
    run = spec.data["run"]
    monitor = nets.TrapMonitor(**run["monitor"])
    length = run["epochs"] if run["epochs"] is not None else run["steps"]
    mname = f"monitor_{tname}"
    coords[mname] = ((mname,), monitor.every * np.arange(1, length // monitor.every + 1))
    Tm, nan = len(coords[mname][1]), float("nan")
    variables = {}
    for name in monitor.records:
        if name == "lambda_min":
            coords["k"] = (("k",), np.arange(monitor.k))
            variables[f"monitor_{name}"] = Var((mname, "k"), (Tm, monitor.k), run["dtype"], nan)
        elif name == "captured":
            variables[f"monitor_{name}"] = Var((mname,), (Tm,), "bool", False)
        else:
            variables[f"monitor_{name}"] = Var((mname,), (Tm,), run["dtype"], nan)
    variables["captured"] = Var((), (), "bool", False)
    return variables


def setting_bytes(spec: Spec) -> int:
    """Bytes of result per grid setting (uncompressed)."""
    variables, _ = layout(spec)
    return sum(math.prod(v.shape) * np.dtype(v.dtype).itemsize for v in variables.values())


def setting_work(spec: Spec) -> int:
    """Work per grid setting: particle-steps (landscapes) or steps (networks, one run each)."""
    run = spec.data["run"]
    if spec.kind == "nets":
        if run["steps"] is not None:
            return run["steps"]
        batches = np.atleast_1d(dict(spec.grid)["batch_size"])
        return run["epochs"] * (setup(spec).n_train // int(batches.min()))
    return run["steps"] * (run["particles"] or 1)


def chunk_slices(shape, split: int, block, chunk_id: int) -> tuple:
    """Index ranges of chunk ``chunk_id`` of a regular tiling (see :class:`Plan`), one ``slice`` per axis."""
    if split < 0:
        return tuple(slice(0, n) for n in shape)
    n_blocks = -(-shape[split] // block[split])
    outer = np.unravel_index(chunk_id // n_blocks, tuple(shape[:split])) if split else ()
    j, b = chunk_id % n_blocks, block[split]
    return (tuple(slice(int(i), int(i) + 1) for i in outer) + (slice(j * b, min((j + 1) * b, shape[split])),)
            + tuple(slice(0, n) for n in shape[split + 1:]))


@dataclasses.dataclass(frozen=True)
class Plan:
    """How a spec's grid is cut into chunks.

    Attributes:
        spec: the spec.
        axes: the grid's axes (:func:`axes`).
        split: chunks take one index on each axis before ``split``, a block along it and every index
            after it (−1: one chunk holds the whole grid).
        block: a full chunk's extent along each axis.
        lanes: particles per compiled call of a trajectory run (a multiple of 16), runs per call of
            a network run, or particles per call of a many-particle run.
    """

    spec: Spec
    axes: tuple
    split: int
    block: tuple

    @property
    def shape(self) -> tuple:
        return tuple(a.size for a in self.axes)

    @property
    def dims(self) -> tuple:
        return tuple(a.name for a in self.axes)

    @property
    def settings(self) -> int:
        return math.prod(self.shape)

    @property
    def chunk(self) -> int:
        """Settings in a full chunk."""
        return math.prod(self.block)

    @property
    def n_chunks(self) -> int:
        if self.split < 0:
            return 1
        return math.prod(self.shape[: self.split]) * -(-self.shape[self.split] // self.block[self.split])

    @property
    def lanes(self) -> int:
        run = self.spec.data["run"]
        if self.spec.mode == "stats":
            return run["chunk_size"] or min(run["particles"], MAX_LANES)
        if self.spec.mode == "nets":
            return self.chunk
        return min(MAX_LANES, -(-self.chunk // LANE_MULTIPLE) * LANE_MULTIPLE)

    def slices(self, chunk_id: int) -> tuple:
        """The chunk's index range along every axis, a tuple of ``slice``."""
        if not 0 <= chunk_id < self.n_chunks:
            raise IndexError(f"chunk {chunk_id} is not in 0..{self.n_chunks - 1}")
        return chunk_slices(self.shape, self.split, self.block, chunk_id)

    def chunk_settings(self, chunk_id: int) -> int:
        return math.prod(s.stop - s.start for s in self.slices(chunk_id))

    def chunk_work(self, chunk_id: int) -> int:
        """Particle-steps (landscapes) or run-steps (networks) of one chunk."""
        if self.spec.kind == "nets" and self.spec.data["run"]["epochs"] is not None:
            sl = self.slices(chunk_id)
            grid = dict(self.spec.grid)
            b = grid["batch_size"]
            if isinstance(b, list):
                i = self.dims.index("batch_size")
                b = b[sl[i].start]
            steps = self.spec.data["run"]["epochs"] * (setup(self.spec).n_train // b)
            return self.chunk_settings(chunk_id) * steps
        return self.chunk_settings(chunk_id) * setting_work(self.spec)


@functools.lru_cache(maxsize=32)
def make_plan(spec: Spec) -> Plan:
    """Cut ``spec``'s grid into chunks of ``run.chunk`` settings (or the default, see the module)."""
    ax = axes(spec)
    sizes = [a.size for a in ax]
    run = spec.data["run"]
    target = run["chunk"]
    if target is None:
        if spec.mode == "nets":
            target = NETS_CHUNK
        else:
            target = max(1, min(CHUNK_BYTES // max(1, setting_bytes(spec)), CHUNK_WORK // setting_work(spec)))
    n_static = sum(a.static for a in ax)
    split = len(ax) - 1
    for k in range(n_static - 1, len(ax)):
        if math.prod(sizes[k + 1:]) <= target:
            split = k
            break
    if split < 0:
        return Plan(spec, ax, -1, tuple(sizes))
    inner = math.prod(sizes[split + 1:])
    b = 1 if split < n_static else min(sizes[split], max(1, target // inner))
    return Plan(spec, ax, split, (1,) * split + (b,) + tuple(sizes[split + 1:]))
