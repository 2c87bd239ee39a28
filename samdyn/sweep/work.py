"""The unit of work: ``run_chunk(spec, chunk_id) -> xarray.Dataset``, one batched call.

A chunk (see :mod:`samdyn.sweep.plan`) is computed by exactly one call of ``samdyn.simulate`` (a
trajectory run, or its many-particle statistics mode) or ``samdyn.nets.train``, with the chunk's
hyperparameters as traced arrays; the result is labelled with the chunk's coordinates. The function
is pure and deterministic: the same spec and chunk id give the same bits in any process, which is
what makes resuming and Dask's retries safe.
"""

from __future__ import annotations

import numpy as np
import xarray as xr

from .. import nets, optim
from ..simulation import simulate
from ..streaming import particle_stats
from .plan import LABELS, layout, make_plan, record_times, width_directions
from .spec import Spec, load, setup, starts

__all__ = ["run_chunk", "variable_attrs"]

HP_DEFAULTS = {"lr": None, "rho": 0.0, "momentum": 0.0}


def variable_attrs(name: str) -> dict:
    """``long_name`` and ``units`` of a variable or coordinate (empty for unknown names)."""
    if name.startswith("x0_"):
        return {"long_name": f"initial {name[3:]}", "units": "parameter units"}
    long_name, units = LABELS.get(name, (name, ""))
    return {"long_name": long_name, "units": units}


def _chunk_values(spec: Spec, p, sl):
    """Per-axis coordinate values of the chunk, and the value of every grid key in it."""
    values = {a.name: np.asarray(a.values)[s] for a, s in zip(p.axes, sl)}
    grid = dict(spec.grid)
    fixed = {}
    for key in ("optimizer", "batch_size", "seed"):
        if key in values and next(a for a in p.axes if a.name == key).static:
            fixed[key] = values[key][0].item()
        elif key == "optimizer":
            fixed[key] = spec.data["optimizer"]["name"]
        else:
            fixed[key] = grid.get(key)
    return values, fixed


def _hparams(spec: Spec, p, values) -> dict:
    """The chunk's hyperparameters, shaped to broadcast over its lr / rho / momentum axes."""
    grid = dict(spec.grid)
    hp_axes = [a.name for a in p.axes if a.name in HP_DEFAULTS]
    hp = {}
    for name, default in HP_DEFAULTS.items():
        if name in hp_axes:
            shape = [1] * len(hp_axes)
            shape[hp_axes.index(name)] = -1
            hp[name] = np.asarray(values[name], dtype=np.float64).reshape(shape)
        else:
            hp[name] = grid.get(name, default)
    return hp


def run_chunk(spec, chunk_id: int) -> xr.Dataset:
    """Compute chunk ``chunk_id`` of ``spec`` (a :class:`~samdyn.sweep.spec.Spec`, a path or a dict).

    Returns:
        A Dataset whose dims are the grid's axes (the chunk's part of each) followed by each
        variable's own dims (record times, coordinates, particles, …); see :func:`plan.layout`.
    """
    spec = load(spec)
    p = make_plan(spec)
    sl = p.slices(chunk_id)
    values, fixed = _chunk_values(spec, p, sl)
    hp = _hparams(spec, p, values)
    opt = setup(spec).optimizer(fixed["optimizer"])
    if spec.mode == "nets":
        arrays = _nets(spec, p, sl, values, fixed, hp, opt)
    else:
        arrays = _landscape(spec, p, sl, fixed, hp, opt)
    return _dataset(spec, p, sl, values, arrays)


def _landscape(spec: Spec, p, sl, fixed, hp, opt) -> dict:
    s, run = setup(spec), spec.data["run"]
    start_axes, points = starts(spec)
    start_slices = tuple(sl[len(sl) - len(start_axes):])
    x0 = points[start_slices] if start_axes else points
    common = dict(noise=s.noise(fixed["batch_size"]), key=fixed["seed"], every=run["every"], dtype=run["dtype"],
                  chunk_size=p.lanes, progress=False)
    obs = run["observables"]
    if spec.mode == "trajectory":
        observe = [o for o in obs if o != "trajectory"]
        # a start's noise is keyed by its index in the whole set of starts, whichever chunk runs it
        ids = np.arange(points[..., 0].size).reshape(points.shape[:-1])[start_slices] if start_axes else None
        r = simulate(s.problem, opt, optim.hparams(**hp), x0, run["steps"], record="trajectory" if "trajectory" in obs
                     else "final", observe=observe, reference=run["reference"], particle_ids=ids, **common)
        out = {"final": r.final, "diverged": r.diverged, "diverged_at": r.diverged_at}
        out.update({name: r.observables[name] for name in observe})
        if "trajectory" in obs:
            out["trajectory"] = r.trajectory
        return out
    stats = particle_stats(reference=run["reference"], radius=run["radius"], level=run["level"],
                           loss_edges=run["loss_edges"])
    r = simulate(s.problem, opt, optim.hparams(**hp), x0, run["steps"], stats=stats, particles=run["particles"],
                 **common)
    st = r.stats
    out = {"diverged": r.diverged.any(axis=-1), "n_diverged": r.diverged.sum(axis=-1)}
    getters = {
        "msd": lambda: st.msd, "mean": lambda: st.mean, "cov": lambda: st.cov, "count": lambda: st.count,
        "width": lambda: st.width(width_directions(spec)[1]), "escaped": lambda: st.fraction_exited,
        "exit_step": lambda: st.exit_step, "crossed": lambda: st.fraction_crossed, "cross_step": lambda: st.cross_step,
        "loss_quantiles": lambda: st.loss_quantiles(run["quantiles"]), "final": lambda: r.final,
    }
    out.update({name: getters[name]() for name in obs})
    return out


def _pad(a: np.ndarray, n: int) -> np.ndarray:
    """``a`` (1-D) padded to length ``n`` by repeating its last entry."""
    return np.concatenate([a, np.repeat(a[-1:], n - len(a))])


def _nets(spec: Spec, p, sl, values, fixed, hp, opt) -> dict:
    """One ``nets.train`` call over the chunk's runs, padded to the plan's run count (same program, same bits)."""
    s, run = setup(spec), spec.data["run"]
    B = int(fixed["batch_size"])
    per_epoch = s.n_train // B
    steps = run["steps"] if run["steps"] is not None else run["epochs"] * per_epoch
    every = run["every"] if run["steps"] is not None else run["every"] * per_epoch
    names = p.dims
    hp_idx = [i for i, n in enumerate(names) if n in HP_DEFAULTS]
    hp_shape = tuple(sl[i].stop - sl[i].start for i in hp_idx)
    hp_cap = int(np.prod([p.block[i] for i in hp_idx]))
    seed_axis = "seed" in names and not p.axes[names.index("seed")].static
    seeds = np.asarray(values["seed"] if seed_axis else [fixed["seed"]], dtype=np.int64)
    seed_cap = p.block[names.index("seed")] if seed_axis else 1
    flat = {k: _pad(np.broadcast_to(np.asarray(v, dtype=np.float64), hp_shape).reshape(-1), hp_cap)
            for k, v in hp.items()}
    monitor = None
    if run.get("monitor") is not None:  # its every is in the run's unit, train's in steps
        monitor = nets.TrapMonitor(**{**run["monitor"], "every": run["monitor"]["every"] * (every // run["every"])})
    res = nets.train(s.model, s.data, opt, optim.hparams(**flat), steps, B, key=0,
                     seeds=_pad(seeds, seed_cap).tolist(), eval_every=every, eval_samples=run["eval_samples"],
                     dtype=run["dtype"], monitor=monitor)
    n_hp = int(np.prod(hp_shape))
    shape = hp_shape + ((len(seeds),) if seed_axis else ())

    def cut(a):
        a = np.asarray(a)[:n_hp, : len(seeds)]
        return a.reshape(shape + a.shape[2:])

    out = {name: cut(res.records[name]) for name in run["observables"]}
    out.update(diverged=cut(res.diverged), diverged_at=cut(res.diverged_at))
    if monitor is not None:
        out.update({f"monitor_{name}": cut(res.monitor[name]) for name in monitor.records}, captured=cut(res.captured))
    expected = record_times(spec)[1] * (per_epoch if run["steps"] is None else 1)
    if run["observables"] and not np.array_equal(res.times, expected):
        raise RuntimeError(f"sweep: nets.train recorded at steps {res.times}, the layout expects {expected}")
    return out


def _dataset(spec: Spec, p, sl, values, arrays) -> xr.Dataset:
    variables, coords = layout(spec)
    block = tuple(s.stop - s.start for s in sl)
    dims = p.dims
    data_vars = {}
    for name, var in variables.items():
        a = np.asarray(arrays[name])
        a = a.reshape(block + a.shape[a.ndim - len(var.shape):])
        if a.shape != block + var.shape:
            raise RuntimeError(f"sweep: chunk variable {name} has shape {a.shape}, the layout expects {block + var.shape}")
        if a.dtype.kind == "f" and not np.can_cast(a.dtype, var.dtype, "safe"):
            raise RuntimeError(f"sweep: chunk variable {name} is {a.dtype}, the layout expects {var.dtype}")
        data_vars[name] = (dims + var.dims, a.astype(var.dtype, copy=False), variable_attrs(name))
    all_coords = {a.name: ((a.name,), values[a.name], variable_attrs(a.name)) for a in p.axes}
    for name, (cdims, cvalues) in coords.items():
        cvalues = np.asarray(cvalues)
        if cdims and cdims[0] in dims:  # a coordinate along a grid axis (the initial points)
            cvalues = cvalues[sl[dims.index(cdims[0])]]
        all_coords[name] = (cdims, cvalues, variable_attrs(name))
    return xr.Dataset(data_vars, coords=all_coords)
