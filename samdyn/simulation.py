"""Running an optimizer on a landscape: one jitted ``lax.scan``, batched, chunked, streaming.

``simulate(problem, opt, hp, x0, steps)`` runs ``opt.step`` — the same pure function that
``samdyn.stability`` differentiates and ``samdyn.nets`` trains with — for every combination of a
hyperparameter grid and a batch of initial points, in one compiled program per chunk of particles.

Layout and batching:

* the hyperparameter leaves broadcast to a grid of shape ``hp_shape``; ``x0`` has shape
  ``(*x0_batch, d)``; the run's ``batch_shape`` is ``hp_shape + x0_batch`` (every point under every
  setting);
* inside the scan the particles sit on the *last* axis, contiguous (``(d, chunk)``), and the step
  is ``vmap``-ed over that axis; results come back batch-first, as NumPy arrays;
* particles are processed in chunks of ``chunk_size`` (the last one padded), each chunk by the
  same compiled function, so memory is bounded by the chunk and by what is recorded.

What is recorded (``record``, ``every``, ``observe``):

* ``record="final"`` keeps the end point only; ``"trajectory"`` keeps ``w_t`` at
  ``t = every, 2·every, …`` (``Run.times``);
* ``observe`` names streaming observables computed inside the scan at the same times:
  ``"loss"`` = f(w_t), ``"distance"`` = ‖w_t − reference‖, and of step t (the step that produced
  w_t, evaluated at w_{t−1}): ``"grad_norm"`` = ‖∇f(w_{t−1})‖ and ``"cosine"`` between SAM's two
  gradients; or ``{name: fn(params, info) -> scalar}`` for one particle.

A particle whose parameters become NaN/inf is flagged (``Run.diverged``, ``Run.diverged_at``); it
never stops the others.
"""

from __future__ import annotations

import dataclasses
import functools
import math
from typing import Any, Callable, Mapping, Sequence

import jax
import jax.numpy as jnp
import numpy as np

from .optim import HParams, Optimizer, hparams as make_hparams

__all__ = ["Run", "simulate", "OBSERVABLES"]

#: Built-in observables: name -> fn(problem, params, info, reference) for one particle.
OBSERVABLES: dict[str, Callable] = {
    "loss": lambda problem, w, info, ref: problem.loss(w),
    "grad_norm": lambda problem, w, info, ref: info.grad_norm,
    "cosine": lambda problem, w, info, ref: info.cosine,
    "distance": lambda problem, w, info, ref: jnp.linalg.norm(w - ref),
}

#: Largest trajectory (bytes) simulate agrees to hold in memory before asking for ``every``.
MAX_RECORD_BYTES = 4 * 2**30
DEFAULT_CHUNK = 4096


@dataclasses.dataclass(frozen=True)
class Run:
    """The result of :func:`simulate`; arrays are NumPy, batch axes first.

    Attributes:
        final: end points, shape ``(*batch_shape, d)``.
        trajectory: ``w_t`` at ``times``, shape ``(*batch_shape, len(times), d)``, or None.
        times: steps at which records were taken, shape ``(T,)`` (empty when nothing recorded).
        observables: name -> array of shape ``(*batch_shape, T)``.
        diverged: True where the parameters became NaN/inf, shape ``batch_shape``.
        diverged_at: first step with non-finite parameters, −1 if none, shape ``batch_shape``.
        final_momentum: the optimizer's momentum buffer at the end, shape ``(*batch_shape, d)``.
        hp: the hyperparameters broadcast to ``hp_shape`` (NumPy leaves).
        batch_shape: ``hp_shape + x0_batch``.
        steps, dtype, chunk_size, seed: how it was run.
        stats: :class:`samdyn.streaming.ParticleStats` of a many-particle run (``stats=``), else
            None; then ``batch_shape`` ends with the particle axis, ``final`` is
            ``(*batch_shape, d)``, ``times`` are the statistics' record steps and
            ``final_momentum`` is None.
    """

    final: np.ndarray
    trajectory: np.ndarray | None
    times: np.ndarray
    observables: dict
    diverged: np.ndarray
    diverged_at: np.ndarray
    final_momentum: np.ndarray
    hp: HParams
    batch_shape: tuple
    steps: int
    dtype: str
    chunk_size: int
    seed: int
    stats: Any = None  # ParticleStats of a many-particle run (``simulate(..., stats=...)``), else None


class _FunctionProblem:
    """Adapter: a plain loss ``f(x) -> scalar`` on ``(d,)`` arrays, differentiated by JAX."""

    def __init__(self, loss: Callable, dim: int):
        self.loss = loss
        self.grad = jax.grad(loss)
        self.dim = dim
        self.name = getattr(loss, "__name__", "loss")


@functools.lru_cache(maxsize=64)
def _function_problem(loss, dim):
    return _FunctionProblem(loss, dim)


def _as_problem(problem, x0_dim):
    if hasattr(problem, "grad") and hasattr(problem, "loss"):
        dim = getattr(problem, "dim", x0_dim)
        if dim != x0_dim:
            raise ValueError(f"simulate: x0 has {x0_dim} coordinates, the problem has {dim}")
        return problem
    if callable(problem):
        return _function_problem(problem, x0_dim)
    raise TypeError(f"simulate: problem must be a Landscape (or have .loss and .grad) or a loss function, got {problem!r}")


def _check_int(name, value, low):
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < low:
        raise ValueError(f"simulate: {name} must be an integer >= {low}, got {value!r}")
    return int(value)


def _observables(observe) -> tuple:
    """Normalise ``observe`` to a hashable tuple of (name, fn, is_custom)."""
    if isinstance(observe, str):
        observe = (observe,)
    if isinstance(observe, Mapping):
        for name, fn in observe.items():
            if not callable(fn):
                raise TypeError(f"simulate: observable {name!r} must be callable fn(params, info)")
        return tuple((name, fn, True) for name, fn in observe.items())
    for name in observe:
        if name not in OBSERVABLES:
            known = ", ".join(OBSERVABLES)
            raise ValueError(f"simulate: unknown observable {name!r}; known: {known} (or pass a dict of functions)")
    return tuple((name, OBSERVABLES[name], False) for name in observe)


def simulate(
    problem,
    opt: Optimizer,
    hp: HParams | Mapping,
    x0,
    steps: int,
    *,
    noise=None,
    key: int = 0,
    record: str = "final",
    every: int = 1,
    observe: Sequence[str] | Mapping[str, Callable] = (),
    reference=None,
    dtype: str = "float64",
    chunk_size: int | None = None,
    stats=None,
    particles: int | None = None,
    first_chunk: int = 0,
) -> Run:
    """Run ``opt`` on ``problem`` from every ``x0`` under every hyperparameter setting in ``hp``.

    Args:
        problem: a :class:`~samdyn.landscapes.Landscape` (or any object with ``loss``/``grad`` on
            ``(d,)`` arrays), or a plain loss function of a ``(d,)`` array.
        opt: an :class:`~samdyn.optim.Optimizer` (``gd()``, ``sam()``, ``usam()``).
        hp: :class:`~samdyn.optim.HParams` (or a dict for ``hparams(**hp)``); leaves broadcast to
            the grid ``hp_shape``.
        x0: initial points, shape ``(d,)`` or ``(*x0_batch, d)``.
        steps: number of updates.
        noise: a gradient-noise model (``samdyn.noise``), None for the exact gradient.
        key: integer seed; step keys derive from (seed, chunk index, step).
        record: ``"final"`` or ``"trajectory"``.
        every: record the trajectory and observables every ``every`` steps.
        observe: observable names (``"loss"``, ``"grad_norm"``, ``"cosine"``, ``"distance"``) or a
            dict ``{name: fn(params, info) -> scalar}``.
        reference: point for ``"distance"``, shape ``(d,)``.
        dtype: ``"float64"`` (analysis) or ``"float32"`` (throughput).
        chunk_size: particles per compiled call (default min(batch, 4096)).
        stats: a :func:`samdyn.streaming.particle_stats` spec: run ``particles`` noisy copies of
            every setting and compute statistics over them inside the scan (``Run.stats``, a
            :class:`samdyn.streaming.ParticleStats`; ``every`` sets the record times). Then
            ``final`` has shape ``(*batch_shape, particles, d)`` and ``record``/``observe`` must be
            left at their defaults.
        particles: number of particles per setting (stats mode only).
        first_chunk: index of this call's first chunk (stats mode): particles
            ``first_chunk·chunk_size …`` so that runs split over calls merge bit-identically.

    Returns:
        A :class:`Run`.

    >>> import samdyn as sd
    >>> run = sd.simulate(sd.landscapes.get("saddle"), sd.optim.gd(), sd.optim.hparams(lr=0.1), [1.0, 0.0], 10)
    >>> run.final.round(6).tolist()
    [0.107374, 0.0]
    """
    # ---- validate everything on the host, before any compute --------------------------------
    if not isinstance(opt, Optimizer):
        raise TypeError(f"simulate: opt must be an Optimizer (sd.optim.gd/sam/usam), got {opt!r}")
    if isinstance(hp, Mapping):
        hp = make_hparams(**hp)
    if not isinstance(hp, HParams):
        raise TypeError(f"simulate: hp must be sd.optim.hparams(...), got {hp!r}")
    hp = make_hparams(*hp)  # an HParams built by hand gets the same checks
    steps = _check_int("steps", steps, 1)
    every = _check_int("every", every, 1)
    if every > steps:
        raise ValueError(f"simulate: every={every} exceeds steps={steps}")
    if record not in ("final", "trajectory"):
        raise ValueError(f"simulate: record must be 'final' or 'trajectory', got {record!r}")
    if dtype not in ("float32", "float64"):
        raise ValueError(f"simulate: dtype must be 'float32' or 'float64', got {dtype!r}")
    seed = _check_int("key", key, 0)
    x0 = np.asarray(x0, dtype=np.float64)
    if x0.ndim == 0 or x0.size == 0:
        raise ValueError(f"simulate: x0 must have shape (d,) or (..., d), got {x0.shape}")
    if not np.all(np.isfinite(x0)):
        raise ValueError("simulate: x0 must be finite")
    problem = _as_problem(problem, x0.shape[-1])
    d = x0.shape[-1]
    obs = _observables(observe)
    if any(item[0] == "distance" for item in obs) and reference is None:
        raise ValueError("simulate: observable 'distance' needs reference=<point of shape (d,)>")
    ref = np.zeros(d) if reference is None else np.asarray(reference, dtype=np.float64)
    if ref.shape != (d,):
        raise ValueError(f"simulate: reference must have shape ({d},), got {ref.shape}")

    hp_np = HParams(*(np.asarray(leaf, dtype=np.float64) for leaf in hp))
    hp_shape = np.broadcast_shapes(*(leaf.shape for leaf in hp_np))
    if noise is not None and hasattr(noise, "check"):
        noise.check(problem, d)
    if stats is not None or particles is not None:
        return _simulate_stats(problem, opt, noise, hp_np, hp_shape, x0, steps, every, record, obs, stats,
                               particles, first_chunk, chunk_size, seed, dtype)
    x0_batch = x0.shape[:-1]
    n_hp, n_x = math.prod(hp_shape), math.prod(x0_batch)
    n = n_hp * n_x
    chunk = min(n, DEFAULT_CHUNK) if chunk_size is None else _check_int("chunk_size", chunk_size, 1)
    n_rec = steps // every if (record == "trajectory" or obs) else 0
    itemsize = np.dtype(dtype).itemsize
    rec_bytes = n * n_rec * ((d if record == "trajectory" else 0) + len(obs)) * itemsize
    if rec_bytes > MAX_RECORD_BYTES:
        raise ValueError(
            f"simulate: recording would take {rec_bytes / 2**30:.1f} GiB; raise every= or record fewer observables"
        )

    # ---- flatten the batch: hyperparameters outer, initial points inner ---------------------
    hp_flat = HParams(*(np.repeat(np.broadcast_to(leaf, hp_shape).reshape(-1), n_x) for leaf in hp_np))
    x_flat = np.tile(x0.reshape(n_x, d), (n_hp, 1))
    n_chunks = -(-n // chunk)
    pad = n_chunks * chunk - n
    if pad:
        x_flat = np.concatenate([x_flat, np.repeat(x_flat[:1], pad, axis=0)])
        hp_flat = HParams(*(np.concatenate([leaf, np.repeat(leaf[:1], pad)]) for leaf in hp_flat))

    runner = _runner(problem, opt, noise, steps, every, _Trajectories(record == "trajectory", obs))
    def chunk_args(c):
        sl = slice(c * chunk, (c + 1) * chunk)
        hp_c = HParams(*(leaf[sl].astype(dtype) for leaf in hp_flat))
        return x_flat[sl].T.astype(dtype), hp_c, {"ref": ref.astype(dtype)}, np.uint32(seed), np.uint32(c)  # x: (d, chunk)

    outs = _run_chunks(runner, (chunk_args(c) for c in range(n_chunks)))

    def gather(name, lane_axis):
        arr = np.concatenate([o[name] for o in outs], axis=lane_axis)
        arr = np.moveaxis(arr, lane_axis, 0)[:n]
        return arr.reshape(hp_shape + x0_batch + arr.shape[1:])

    # records come stacked as (T, ..., lanes): gathered, they are (*batch, T, ...)
    trajectory = gather("trajectory", -1) if record == "trajectory" else None
    observables = {item[0]: gather(item[0], -1) for item in obs}
    diverged_at = gather("diverged_at", 0)
    return Run(
        final=gather("final", -1),
        trajectory=trajectory,
        times=every * np.arange(1, n_rec + 1),
        observables=observables,
        diverged=diverged_at >= 0,
        diverged_at=diverged_at,
        final_momentum=gather("momentum", -1),
        hp=HParams(*(np.broadcast_to(leaf, hp_shape) for leaf in hp_np)),
        batch_shape=hp_shape + x0_batch,
        steps=steps,
        dtype=dtype,
        chunk_size=chunk,
        seed=seed,
    )


def _run_chunks(runner, chunk_args) -> list:
    """Run ``runner(*args)`` for each chunk's args and fetch the results, in order.

    Chunks go round-robin to every local device (on CPU, ``import samdyn`` asks JAX for one device
    per core), with at most two per device in flight, so host memory holds only a few chunks'
    inputs beyond the results.
    """
    devices = jax.local_devices()
    outs, pending = [], []
    for c, args in enumerate(chunk_args):
        pending.append(runner(*jax.device_put(args, devices[c % len(devices)])))
        if len(pending) >= 2 * len(devices):
            outs.append(jax.device_get(pending.pop(0)))
    outs.extend(jax.device_get(pending))
    return outs


def _split(x):
    """(d, ...) array -> tuple of d arrays (the per-coordinate layout used inside the scan)."""
    return tuple(x[i] for i in range(x.shape[0]))


def _join(w):
    """Inverse of :func:`_split`."""
    return jnp.stack(w)


@dataclasses.dataclass(frozen=True)
class _Trajectories:
    """Recorder of the plain path: the trajectory and per-particle observables at record times.

    A recorder tells :func:`_runner` what to carry and keep besides the particles (hashable, static):
    ``n_records(steps, every)``; ``init(lanes, args)`` → extra per-lane carry;
    ``on_step(problem, extra, w, t, args)`` → extra after step ``t``; ``record(problem, w, info, extra,
    args)`` → dict of arrays for one record time; ``finish(extra)`` → dict of final outputs. ``w`` is
    the particle cloud in the per-coordinate layout (a tuple of d arrays of shape (lanes,)), ``info``
    the step's :class:`~samdyn.optim.StepInfo` batched over lanes, ``args`` the chunk's traced inputs.
    """

    keep_trajectory: bool
    obs: tuple

    def n_records(self, steps, every):
        return steps // every if (self.keep_trajectory or self.obs) else 0

    def init(self, lanes, args):
        return ()

    def on_step(self, problem, extra, w, t, args):
        return extra

    def record(self, problem, w, info, extra, args):
        def lane_observe(w, info, ref):
            return {name: fn(w, info) if custom else fn(problem, w, info, ref) for name, fn, custom in self.obs}

        w = _join(w)
        info = info._replace(perturbed=_join(info.perturbed))
        rec = jax.vmap(lane_observe, in_axes=(-1, -1, None), out_axes=-1)(w, info, args["ref"]) if self.obs else {}
        if self.keep_trajectory:
            rec["trajectory"] = w
        return rec

    def finish(self, extra):
        return {}


@functools.lru_cache(maxsize=128)
def _runner(problem, opt: Optimizer, noise, steps: int, every: int, recorder):
    """The jitted chunk program ``run_chunk(x, hp, args, seed, chunk_index)`` for one configuration.

    ``x`` is the chunk's initial cloud, shape (d, lanes); ``hp`` has leaves of shape (lanes,);
    ``args`` is the recorder's dict of traced inputs. Step ``t`` (1-based) draws its noise with
    ``fold_in(fold_in(fold_in(PRNGKey(seed), chunk_index), 0), t)``. Cached: the same configuration
    reuses the same compiled code.
    """

    # Inside the scan a particle is a tuple of d scalars, not a (d,) vector: under vmap every leaf
    # is then a (chunk,) array, the optimizer's global norm is a sum over leaves (elementwise, no
    # reduction) and XLA fuses a whole step into one loop over the chunk. The problem and the noise
    # oracle still see (d,) arrays.
    def lane_step(w, state, hp, draws):
        grad = problem.grad if noise is None else noise.oracle(problem, draws)
        return opt.step(lambda v: _split(grad(_join(v))), w, state, hp)

    batched_step = jax.vmap(lane_step, in_axes=(-1, -1, 0, -1), out_axes=-1)
    n_rec = recorder.n_records(steps, every)

    def run_chunk(x, hp, args, seed, chunk_index):
        chunk_key = jax.random.fold_in(jax.random.fold_in(jax.random.PRNGKey(seed), chunk_index), 0)
        lanes = x.shape[-1]

        def advance(carry, t):
            w, state, diverged_at, extra = carry
            draws = None if noise is None else noise.sample(jax.random.fold_in(chunk_key, t), _join(w), lanes)
            w, state, info = batched_step(w, state, hp, draws)
            finite = functools.reduce(jnp.logical_and, [jnp.isfinite(c) for c in w])
            diverged_at = jnp.where((diverged_at < 0) & ~finite, jnp.asarray(t, jnp.int32), diverged_at)
            extra = recorder.on_step(problem, extra, w, t, args)
            return (w, state, diverged_at, extra), info

        def advance_from(first):
            """Body for fori_loop(0, k): step number first + i."""
            return lambda i, carry: advance(carry, first + i)[0]

        def block(carry, b):
            start = b * every
            carry = jax.lax.fori_loop(0, every - 1, advance_from(start + 1), carry)
            carry, info = advance(carry, start + every)
            return carry, recorder.record(problem, carry[0], info, carry[3], args)

        w0 = _split(x)
        carry = (w0, opt.init(w0), jnp.full((lanes,), -1, dtype=jnp.int32), recorder.init(lanes, args))
        carry, recs = jax.lax.scan(block, carry, jnp.arange(n_rec)) if n_rec else (carry, {})
        carry = jax.lax.fori_loop(0, steps - n_rec * every, advance_from(n_rec * every + 1), carry)
        w, state, diverged_at, extra = carry
        out = {"final": _join(w), "momentum": _join(state.momentum), "diverged_at": diverged_at}
        return {**out, **recorder.finish(extra), **recs}

    return jax.jit(run_chunk)


def _simulate_stats(problem, opt, noise, hp_np, hp_shape, x0, steps, every, record, obs, stats, particles,
                    first_chunk, chunk_size, seed, dtype) -> Run:
    """The many-particle branch of :func:`simulate` (see :mod:`samdyn.streaming`)."""
    from .streaming import StatsSpec, run_particles

    if not isinstance(stats, StatsSpec):
        raise TypeError(f"simulate: stats must be samdyn.streaming.particle_stats(...), got {stats!r}")
    particles = _check_int("particles", particles, 1) if particles is not None else None
    if particles is None:
        raise ValueError("simulate: stats= needs particles=<number of particles per setting>")
    if record != "final" or obs:
        raise ValueError("simulate: with stats= keep record='final' and observe=() (statistics replace records)")
    first_chunk = _check_int("first_chunk", first_chunk, 0)
    d = x0.shape[-1]
    if stats.reference is not None and len(stats.reference) != d:
        raise ValueError(f"simulate: stats reference has {len(stats.reference)} coordinates, the problem has {d}")
    chunk = min(particles, DEFAULT_CHUNK) if chunk_size is None else _check_int("chunk_size", chunk_size, 1)
    out = run_particles(problem, opt, noise, hp_np, hp_shape, x0, steps, every, stats, particles, chunk,
                        first_chunk, seed, dtype)
    batch_shape = out["settings_shape"]
    return Run(
        final=out["final"],
        trajectory=None,
        times=out["stats"].times,
        observables={},
        diverged=out["diverged_at"] >= 0,
        diverged_at=out["diverged_at"],
        final_momentum=None,
        hp=HParams(*(np.broadcast_to(leaf, hp_shape) for leaf in hp_np)),
        batch_shape=batch_shape,
        steps=steps,
        dtype=dtype,
        chunk_size=chunk,
        seed=seed,
        stats=out["stats"],
    )
