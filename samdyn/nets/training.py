"""Training many small networks at once with ``samdyn.optim``'s ``step`` — the same jitted update.

:func:`train` runs ``opt.step(grad_fn, params, state, hp)`` — the very function that
``samdyn.simulate`` runs on the analytic landscapes — with ``grad_fn`` the minibatch gradient of
the model's loss, so SAM's two gradients share the step's batch. It never defines an update rule.

One compiled program trains every run: the hyperparameter grid (``hp`` leaves broadcast to
``hp_shape``) times the seeds, ``vmap``-ed over runs, ``lax.scan`` over steps. A run is
``(hp, seed)``; the seed fixes both the initialisation and the minibatch order, so runs that differ
only in hyperparameters see the same initial weights and the same batches.

Minibatches: epochs of ``n_train // batch_size`` batches drawn *without replacement* from a fresh
permutation per epoch (the ``n_train mod batch_size`` left-over samples of an epoch are skipped
in that epoch, as with ``drop_last=True``).

Records, at steps ``t = eval_every, 2·eval_every, …`` (``TrainResult.times``): ``train_loss``,
``train_acc``, ``test_loss``, ``test_acc`` (full sets, or the first ``eval_samples`` training
samples), ``distance`` = ‖w_t − w_0‖, ``param_norm`` = ‖w_t‖, and, of the step that produced
``w_t``: ``grad_norm`` = ‖minibatch gradient at w_{t−1}‖ and ``cosine`` between SAM's two
gradients (both from the optimizer's ``StepInfo``). Every ``hessian_every`` steps: the
``hessian_k`` smallest and largest eigenvalues of the training-loss Hessian by Lanczos
(``samdyn.hessian``), on the first ``hessian_samples`` training samples. Accuracies are NaN for
regression. A run whose parameters become NaN/inf or exceed ±``divergence_bound`` is flagged
(``diverged``, ``diverged_at``); the other runs go on.

The oracle is the one the optimizer asks for (``samdyn.optim.batch_oracle``): a
``LossOracle`` of the minibatch loss, or, for ``optim.msam(m)``, the minibatch cut into
micro-batches of ``m`` samples (``batch_size`` must be a multiple of ``m``). The optimizer's state
(momentum, step counter of a schedule, …) lives inside the program: schedules advance with the steps.

The saddle-trap monitor (``monitor=TrapMonitor(every)``; Kim et al. 2023, Theorem 1: a saddle whose
Hessian has a negative eigenvalue λ attracts USAM once ρ > −1/λ) records, every ``every`` steps, on
the Hessian's loss (first ``hessian_samples`` training samples): the ``k`` most negative and the
largest Hessian eigenvalues (Lanczos), the full gradient norm ‖∇L(w)‖, the effective USAM radius
``r = ‖e‖/‖g‖`` of the last step (``StepInfo.radius``: ρ_t for USAM, ρ_t/‖g‖ for SAM, 0 for GD), the
ratio ``r · |λ_min|`` and SAM's cosine. A record is *captured* when the run sits near a critical
point (‖∇L‖ ≤ ``grad_tol``) with the ratio beyond the threshold (> 1 by default): "SAM is being
captured". ``TrainResult.captured`` is that flag at the last monitor record.
"""

from __future__ import annotations

import dataclasses
import functools
import math
from typing import Any, Sequence

import jax
import jax.numpy as jnp
import numpy as np
from jax.flatten_util import ravel_pytree

from .. import checks
from .. import hessian as _hessian
from ..engine import DEFAULT_DIVERGENCE_BOUND
from ..optim import HParams, Optimizer, batch_oracle, hparams as make_hparams, tree_norm
from ..optim.sharpness import hessian_trace, worst_case_sharpness
from .datasets import Dataset
from .models import Model, accuracy_from_outputs, loss_fn, loss_from_outputs

__all__ = ["TrainResult", "TrapMonitor", "train", "run_keys", "minibatch_indices", "epoch_permutation", "RECORDS",
           "MONITOR_RECORDS"]

#: Names of the per-record observables (each ``(*batch_shape, T)`` in ``TrainResult.records``).
RECORDS = ("train_loss", "train_acc", "test_loss", "test_acc", "grad_norm", "cosine", "distance", "param_norm")

#: Names of the trap monitor's records (``TrainResult.monitor``; ``lambda_min`` has a trailing ``k`` axis).
MONITOR_RECORDS = ("lambda_min", "lambda_max", "grad_norm", "radius", "ratio", "cosine", "captured")


@dataclasses.dataclass(frozen=True)
class TrapMonitor:
    """The saddle-trap monitor of :func:`train` (see the module docstring).

    Attributes:
        every: steps between records (a multiple of ``train``'s ``eval_every``).
        k: how many of the most negative Hessian eigenvalues to record.
        m: Lanczos Krylov dimension (capped at the number of parameters; equal to it: exact).
        grad_tol: ‖∇L(w)‖ at or below which the run is "near a critical point".
        threshold: the ratio ``r · |λ_min|`` beyond which a saddle attracts (1: Kim et al.'s ρ > −1/λ).
        trace_samples: if > 0, also record ``hessian_trace`` (Hutchinson, this many probes).
        sharpness_steps: if > 0, also record ``sharpness``, the worst-case sharpness
            ``max_{‖e‖≤ρ} L(w + e) − L(w)`` at the run's ``hp.rho`` (projected ascent, this many steps).
    """

    every: int
    k: int = 1
    m: int = 20
    grad_tol: float = 1e-3
    threshold: float = 1.0
    trace_samples: int = 0
    sharpness_steps: int = 0

    def __post_init__(self):
        checks.integer("TrapMonitor", "every", self.every, low=1)
        checks.integer("TrapMonitor", "k", self.k, low=1)
        checks.integer("TrapMonitor", "m", self.m, low=1)
        checks.real("TrapMonitor", "grad_tol", self.grad_tol, low=0.0)
        checks.real("TrapMonitor", "threshold", self.threshold, low=0.0)
        checks.integer("TrapMonitor", "trace_samples", self.trace_samples, low=0)
        checks.integer("TrapMonitor", "sharpness_steps", self.sharpness_steps, low=0)

    @property
    def records(self) -> tuple:
        """The names this monitor records (:data:`MONITOR_RECORDS` plus the optional measures)."""
        return MONITOR_RECORDS + ("hessian_trace",) * (self.trace_samples > 0) + ("sharpness",) * (self.sharpness_steps > 0)


@dataclasses.dataclass(frozen=True)
class TrainResult:
    """The result of :func:`train`; NumPy arrays with the batch axes ``(*hp_shape, n_seeds)`` first.

    Attributes:
        params: final parameters, a pytree whose leaves have shape ``(*batch_shape, *leaf_shape)``.
        times: steps at which records were taken, ``(T,)``.
        records: name (see :data:`RECORDS`) -> ``(*batch_shape, T)``.
        hessian_times: steps at which Hessian extremes were taken, ``(Th,)``.
        eig_low: the ``k`` smallest eigenvalues, ascending, ``(*batch_shape, Th, k)``.
        eig_high: the ``k`` largest eigenvalues, descending, ``(*batch_shape, Th, k)``.
        diverged: True where parameters became NaN/inf or left ±divergence_bound, ``batch_shape``.
        diverged_at: the first such step, −1 if none, ``batch_shape``.
        monitor_times: steps of the trap monitor's records, ``(Tm,)`` (empty without a monitor).
        monitor: name (see :attr:`TrapMonitor.records`) -> ``(*batch_shape, Tm)`` (``lambda_min``:
            ``(*batch_shape, Tm, k)``); empty without a monitor.
        captured: the monitor's flag at its last record, ``batch_shape`` (False without one).
        hp: hyperparameters broadcast to ``hp_shape`` (NumPy leaves).
        seeds: the seeds, ``(n_seeds,)``.
        batch_shape: ``hp_shape + (n_seeds,)``.
        steps, batch_size, dtype, model, optimizer: how it was run.
    """

    params: Any
    times: np.ndarray
    records: dict
    hessian_times: np.ndarray
    eig_low: np.ndarray
    eig_high: np.ndarray
    diverged: np.ndarray
    diverged_at: np.ndarray
    hp: HParams
    seeds: np.ndarray
    batch_shape: tuple
    steps: int
    batch_size: int
    dtype: str
    model: str
    optimizer: str
    monitor_times: np.ndarray = dataclasses.field(default_factory=lambda: np.zeros((0,), int))
    monitor: dict = dataclasses.field(default_factory=dict)
    captured: np.ndarray | None = None

    def final(self, name: str) -> np.ndarray:
        """The last record of ``name``, shape ``batch_shape``."""
        return self.records[name][..., -1]


def run_keys(key, seed):
    """``(init_key, data_key, hessian_key)`` of the run with this seed: ``fold_in(key, seed)`` split in 3."""
    key = jax.random.PRNGKey(key) if isinstance(key, (int, np.integer)) else key
    return tuple(jax.random.split(jax.random.fold_in(key, seed), 3))


def epoch_permutation(key, n: int):
    """A uniformly random permutation of ``range(n)``: indices sorted by random 32-bit keys.

    The key and the index are packed into one uint64 and sorted as a single array, which XLA's
    CPU sort runs several times faster than ``jax.random.permutation``'s key–value sort (the
    data pipeline was a sizeable part of a small net's step). Ties between keys (probability
    ≈ n²/2³³) fall back to index order. Needs x64 (on after ``import samdyn``); without it this
    is ``jax.random.permutation``.
    """
    if not jax.config.jax_enable_x64:
        return jax.random.permutation(key, n)
    bits = jax.random.bits(key, (n,), jnp.uint32).astype(jnp.uint64)
    packed = (bits << jnp.uint64(32)) | jnp.arange(n, dtype=jnp.uint64)
    return (jax.lax.sort(packed) & jnp.uint64(0xFFFFFFFF)).astype(jnp.int32)


def minibatch_indices(data_key, t, n: int, batch_size: int):
    """Sample indices of step ``t`` (0-based): batch ``t mod E`` of epoch ``t // E``, ``E = n // batch_size``.

    Each epoch is a fresh permutation of ``range(n)`` (:func:`epoch_permutation` of
    ``fold_in(data_key, epoch)``), cut into
    ``E`` disjoint batches: sampling without replacement within an epoch.

    >>> import jax
    >>> key = jax.random.PRNGKey(0)
    >>> idx = [minibatch_indices(key, t, 6, 2) for t in range(3)]
    >>> sorted(int(i) for b in idx for i in b)
    [0, 1, 2, 3, 4, 5]
    """
    per_epoch = n // batch_size
    perm = epoch_permutation(jax.random.fold_in(data_key, t // per_epoch), n)
    return jax.lax.dynamic_slice(perm, ((t % per_epoch) * batch_size,), (batch_size,))


def _int(name, value, low=1, high=None):
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < low or (high is not None and value > high):
        bound = f"in [{low}, {high}]" if high is not None else f">= {low}"
        raise ValueError(f"train: {name} must be an int {bound}, got {value!r}")
    return int(value)


def _check_data(model: Model, data: Dataset):
    if not isinstance(model, Model):
        raise TypeError(f"train: model must be a samdyn.nets Model, got {type(model).__name__}")
    if not isinstance(data, Dataset):
        raise TypeError(f"train: data must be a samdyn.nets.datasets.Dataset, got {type(data).__name__}")
    if model.task != data.task:
        raise ValueError(f"train: model {model.name!r} is for {model.task} but data {data.name!r} is {data.task}")
    for split in ("train", "test"):
        x, y = getattr(data, f"x_{split}"), getattr(data, f"y_{split}")
        if tuple(x.shape[1:]) != tuple(model.in_shape):
            raise ValueError(f"train: {split} inputs have shape {x.shape[1:]} per sample, model {model.name!r} "
                             f"expects {model.in_shape}")
        if len(x) != len(y) or len(x) == 0:
            raise ValueError(f"train: {split} split has {len(x)} inputs and {len(y)} targets (need equal, > 0)")
        if model.task == "classification":
            if y.ndim != 1 or y.min() < 0 or y.max() >= model.out_dim:
                raise ValueError(f"train: {split} labels must be ints in [0, {model.out_dim}) of shape (N,)")
        elif y.reshape(len(y), -1).shape[1] != model.out_dim:
            raise ValueError(f"train: {split} targets have {y.reshape(len(y), -1).shape[1]} outputs, "
                             f"model has {model.out_dim}")


@functools.lru_cache(maxsize=64)
def _runner(model: Model, opt: Optimizer, batch_size: int, n_blocks: int, hess: bool, hess_k: int, hess_m: int,
            monitor: TrapMonitor | None = None, mon_m: int = 1, bound: float = DEFAULT_DIVERGENCE_BOUND):
    """The jitted program for one configuration (cached): every run, ``n_blocks`` record blocks.

    Step counts are traced (``every``, ``last`` = steps in the final block, ``hess_every``), so
    runs of different lengths with the same number of records share one compiled program; the
    optimizer step is traced once (one loop body).
    """

    def one_run(hp, key, counts, x, y, x_eval, y_eval, x_test, y_test, x_hess, y_hess):
        every, last, hess_every, mon_every = counts
        init_key, data_key, hess_key = key
        params0 = model.init(init_key, x.dtype)
        n = x.shape[0]
        per_epoch = n // batch_size

        def advance(t, carry):
            params, state, diverged_at, perm, _ = carry
            # the epoch's permutation, drawn once per epoch: the indices equal minibatch_indices(t - 1)
            s = t - 1
            perm = jax.lax.cond(s % per_epoch == 0,
                                lambda: epoch_permutation(jax.random.fold_in(data_key, s // per_epoch), n),
                                lambda: perm)
            idx = jax.lax.dynamic_slice(perm, ((s % per_epoch) * batch_size,), (batch_size,))
            xb, yb = x[idx], y[idx]
            grad_fn = batch_oracle(opt, lambda p, xs, ys: loss_fn(model, p, xs, ys), xb, yb)
            params, state, info = opt.step(grad_fn, params, state, hp)
            flat = ravel_pytree(params)[0]
            ok = jnp.all(jnp.isfinite(flat)) if bound == float("inf") else jnp.all(jnp.abs(flat) <= bound)  # NaN fails
            diverged_at = jnp.where((diverged_at < 0) & ~ok, t.astype(jnp.int32), diverged_at)
            radius = jnp.zeros_like(info.grad_norm) if info.radius is None else info.radius
            return params, state, diverged_at, perm, (info.grad_norm, info.cosine, radius)

        def split_metrics(params, xs, ys):
            out = model.apply(params, xs)
            return loss_from_outputs(model.task, out, ys), accuracy_from_outputs(model.task, out, ys)

        def hess_loss(q):
            return loss_fn(model, q, x_hess, y_hess)

        def trap(p, step_info):
            lo, hi = _hessian.extreme_eigs(hess_loss, p, monitor.k, m=mon_m, key=hess_key)
            gn = tree_norm(jax.grad(hess_loss)(p))
            ratio = step_info[2] * jnp.maximum(-lo[0], 0.0)
            captured = (gn <= monitor.grad_tol) & (ratio > monitor.threshold)
            rec = {"lambda_min": lo, "lambda_max": hi[0], "grad_norm": gn, "radius": step_info[2], "ratio": ratio,
                   "cosine": step_info[1], "captured": captured}
            if monitor.trace_samples:
                rec["hessian_trace"] = hessian_trace(hess_loss, p, samples=monitor.trace_samples, key=hess_key)
            if monitor.sharpness_steps:
                rec["sharpness"] = worst_case_sharpness(hess_loss, p, hp.rho, steps=monitor.sharpness_steps, key=hess_key)
            return rec

        def observe(params, step_info, due, mon_due):
            rec = {"grad_norm": step_info[0], "cosine": step_info[1],
                   "distance": tree_norm(jax.tree.map(jnp.subtract, params, params0)),
                   "param_norm": tree_norm(params)}
            rec["train_loss"], rec["train_acc"] = split_metrics(params, x_eval, y_eval)
            rec["test_loss"], rec["test_acc"] = split_metrics(params, x_test, y_test)
            if hess:
                def eigs(p):
                    return _hessian.extreme_eigs(lambda q: loss_fn(model, q, x_hess, y_hess), p, hess_k,
                                                 m=hess_m, key=hess_key)

                def skip(p):
                    nan = jnp.full((hess_k,), jnp.nan, x.dtype)
                    return nan, nan

                rec["eig_low"], rec["eig_high"] = jax.lax.cond(due, eigs, skip, params)
            if monitor is not None:
                shapes = jax.eval_shape(trap, params, step_info)
                blank = jax.tree.map(lambda sd: jnp.zeros(sd.shape, sd.dtype), shapes)
                rec["monitor"] = jax.lax.cond(mon_due, trap, lambda p, i: blank, params, step_info)
            return rec

        def block(carry, b):
            start = b * every
            length = jnp.where(b < n_blocks - 1, every, last)
            carry = jax.lax.fori_loop(start + 1, start + length + 1, advance, carry)
            due = ((start + length) % hess_every == 0) & (length == every)
            mon_due = ((start + length) % mon_every == 0) & (length == every)
            return carry, observe(carry[0], carry[4], due, mon_due)

        nan = jnp.full((), jnp.nan, x.dtype)
        carry = (params0, opt.init(params0), jnp.asarray(-1, jnp.int32), jnp.zeros((n,), jnp.int32), (nan, nan, nan))
        carry, recs = jax.lax.scan(block, carry, jnp.arange(n_blocks))
        return {"params": carry[0], "diverged_at": carry[2], **recs}

    batched = jax.vmap(one_run, in_axes=(0, 0) + (None,) * 9)
    return jax.jit(batched)


def train(model: Model, data: Dataset, optimizer: Optimizer, hp, steps: int, batch_size: int, key=0, *,
          seeds: int | Sequence[int] = 1, eval_every: int | None = None, eval_samples: int | None = None,
          hessian_every: int | None = None, hessian_k: int = 1, hessian_m: int = 20,
          hessian_samples: int | None = 1000, dtype: str = "float32", monitor: TrapMonitor | None = None,
          divergence_bound: float = DEFAULT_DIVERGENCE_BOUND) -> TrainResult:
    """Train ``model`` on ``data`` with ``optimizer.step``, for every hyperparameter setting and seed.

    Args:
        model: a :class:`~samdyn.nets.models.Model`.
        data: a :class:`~samdyn.nets.datasets.Dataset` of the same task and input shape.
        optimizer: a ``samdyn.optim`` optimizer (``gd()``, ``sam()``, ``usam()``, …); its ``step``
            is called unchanged, with the minibatch gradient as ``grad_fn``.
        hp: ``samdyn.optim.hparams(...)`` (or a dict of its arguments); leaves broadcast to
            ``hp_shape``, one run per grid point and seed.
        steps: optimizer steps per run.
        batch_size: minibatch size, ``1 ≤ batch_size ≤ n_train``.
        key: PRNG key or int; run ``s`` uses ``fold_in(key, s)`` (see :func:`run_keys`).
        seeds: number of seeds (``0 … n−1``) or an explicit sequence of non-negative ints.
        eval_every: record every this many steps (default: once, at the end).
        eval_samples: training samples used for ``train_loss``/``train_acc`` (default: all).
        hessian_every: Hessian extremes every this many steps (a multiple of ``eval_every``;
            default: never).
        hessian_k: eigenvalues at each end of the spectrum.
        hessian_m: Lanczos Krylov dimension (capped at the number of parameters).
        hessian_samples: training samples in the Hessian's loss (default 1000; None: all).
        dtype: ``"float32"`` (default, for throughput) or ``"float64"``; data, parameters and
            hyperparameters are cast to it.
        monitor: a :class:`TrapMonitor` (the saddle-trap monitor, on the ``hessian_samples``
            loss) or None.
        divergence_bound: a run is flagged diverged at the first step where a parameter is NaN/inf
            or exceeds this in absolute value (default 1e12, as in ``simulate``; ``inf``: NaN/inf only).

    Returns:
        A :class:`TrainResult`.
    """
    _check_data(model, data)
    if not isinstance(optimizer, Optimizer):
        raise TypeError(f"train: optimizer must be a samdyn.optim.Optimizer, got {type(optimizer).__name__}")
    if isinstance(hp, dict):
        hp = make_hparams(**hp)
    if not isinstance(hp, HParams):
        raise TypeError(f"train: hp must be samdyn.optim.hparams(...) or a dict of its arguments, got {type(hp).__name__}")
    hp = make_hparams(*(np.asarray(leaf) for leaf in hp))  # re-validate on the host
    if dtype not in ("float32", "float64"):
        raise ValueError(f"train: dtype must be 'float32' or 'float64', got {dtype!r}")
    n_train = len(data.x_train)
    steps = _int("steps", steps)
    batch_size = _int("batch_size", batch_size)
    if batch_size > n_train:
        raise ValueError(f"train: batch_size={batch_size} is larger than the training set ({n_train} samples)")
    every = steps if eval_every is None else _int("eval_every", eval_every, 1, steps)
    hess_every = 0
    if hessian_every is not None:
        hess_every = _int("hessian_every", hessian_every, 1, steps)
        if hess_every % every:
            raise ValueError(f"train: hessian_every={hess_every} must be a multiple of eval_every={every}")
        _int("hessian_k", hessian_k)
        _int("hessian_m", hessian_m)
    micro = dict(optimizer.options).get("micro_batch")
    if micro is not None and batch_size % micro:
        raise ValueError(f"train: batch_size={batch_size} must be a multiple of {optimizer.name}'s micro-batch size {micro}")
    mon_every = 0
    if monitor is not None:
        checks.instance("train", "monitor", monitor, TrapMonitor, "None or samdyn.nets.TrapMonitor(every, ...)")
        mon_every = _int("monitor.every", monitor.every, 1, steps)
        if mon_every % every:
            raise ValueError(f"train: monitor.every={mon_every} must be a multiple of eval_every={every}")
    n_eval = n_train if eval_samples is None else _int("eval_samples", eval_samples, 1, n_train)
    n_hess = n_train if hessian_samples is None else min(_int("hessian_samples", hessian_samples), n_train)
    if isinstance(seeds, (int, np.integer)) and not isinstance(seeds, bool):
        seed_list = np.arange(_int("seeds", seeds))
    else:
        seed_list = np.asarray(list(seeds))
        if seed_list.ndim != 1 or seed_list.size == 0 or not np.issubdtype(seed_list.dtype, np.integer) or np.any(seed_list < 0):
            raise ValueError(f"train: seeds must be a positive int or a non-empty sequence of ints >= 0, got {seeds!r}")
    if not isinstance(key, (int, np.integer)):
        key = jnp.asarray(key)
        if key.shape != (2,):
            raise ValueError(f"train: key must be an int or a jax.random.PRNGKey, got shape {key.shape}")

    shapes = jax.eval_shape(lambda k: model.init(k, jnp.dtype(dtype)), jax.random.PRNGKey(0))
    n_params = sum(math.prod(leaf.shape) for leaf in jax.tree.leaves(shapes))
    hess_k, hess_m = (hessian_k, min(hessian_m, n_params)) if hess_every else (1, 1)
    if hess_every and hess_k > hess_m:
        raise ValueError(f"train: hessian_k={hess_k} exceeds the Krylov dimension {hess_m}")
    mon_m = min(monitor.m, n_params) if monitor is not None else 1
    if monitor is not None and monitor.k > mon_m:
        raise ValueError(f"train: monitor.k={monitor.k} exceeds the Krylov dimension {mon_m}")

    # broadcast the grid, then flatten runs = (hp grid) × seeds
    hp_np = jax.tree.map(np.asarray, hp)
    hp_shape = np.broadcast_shapes(*(leaf.shape for leaf in hp_np))
    hp_grid = HParams(*(np.broadcast_to(leaf, hp_shape) for leaf in hp_np))
    n_seeds, n_hp = len(seed_list), math.prod(hp_shape)
    runs_hp = HParams(*(jnp.asarray(np.repeat(leaf.reshape(-1), n_seeds), dtype=dtype) for leaf in hp_grid))
    keys = jnp.stack([jnp.stack(run_keys(key, int(s))) for s in seed_list])           # (S, 3, 2)
    runs_keys = jnp.tile(keys, (n_hp, 1, 1))                                            # (H·S, 3, 2)

    def cast_x(a):
        return jnp.asarray(a, dtype=dtype)

    def cast_y(a):
        return jnp.asarray(a, dtype=jnp.int32 if model.task == "classification" else dtype)

    arrays = (cast_x(data.x_train), cast_y(data.y_train), cast_x(data.x_train[:n_eval]), cast_y(data.y_train[:n_eval]),
              cast_x(data.x_test), cast_y(data.y_test), cast_x(data.x_train[:n_hess]), cast_y(data.y_train[:n_hess]))
    n_rec, rem = divmod(steps, every)
    n_blocks = n_rec + (rem > 0)
    counts = (jnp.asarray(every), jnp.asarray(rem if rem else every), jnp.asarray(hess_every or 1),
              jnp.asarray(mon_every or 1))
    bound = float("inf") if divergence_bound == float("inf") else \
        checks.real("train", "divergence_bound", divergence_bound, low=0.0, low_open=True)
    fn = _runner(model, optimizer, batch_size, n_blocks, bool(hess_every), hess_k, hess_m, monitor, mon_m, bound)
    out = jax.device_get(fn(runs_hp, runs_keys, counts, *arrays))

    batch_shape = tuple(hp_shape) + (n_seeds,)

    def shaped(a):
        return np.asarray(a).reshape(batch_shape + np.shape(a)[1:])

    times = every * np.arange(1, n_rec + 1)
    records = {name: shaped(out[name])[..., :n_rec] for name in RECORDS}
    if hess_every:
        due = times % hess_every == 0
        eig_low = shaped(out["eig_low"])[..., :n_rec, :][..., due, :]
        eig_high = shaped(out["eig_high"])[..., :n_rec, :][..., due, :]
        hess_times = times[due]
    else:
        eig_low = eig_high = np.zeros(batch_shape + (0, 0))
        hess_times = np.zeros((0,), int)
    mon, mon_times, captured = {}, np.zeros((0,), int), np.zeros(batch_shape, bool)
    if monitor is not None:
        due = times % mon_every == 0
        mon = {name: shaped(out["monitor"][name])[..., :n_rec][..., due] for name in monitor.records if name != "lambda_min"}
        mon["lambda_min"] = shaped(out["monitor"]["lambda_min"])[..., :n_rec, :][..., due, :]
        mon_times = times[due]
        captured = mon["captured"][..., -1] if mon_times.size else captured
    diverged_at = shaped(out["diverged_at"])
    return TrainResult(
        params=jax.tree.map(shaped, out["params"]), times=times, records=records, hessian_times=hess_times,
        eig_low=eig_low, eig_high=eig_high, diverged=diverged_at >= 0, diverged_at=diverged_at, hp=hp_grid,
        seeds=seed_list, batch_shape=batch_shape, steps=steps, batch_size=batch_size, dtype=dtype,
        model=model.name, optimizer=optimizer.name, monitor_times=mon_times, monitor=mon, captured=captured)
