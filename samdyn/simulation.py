"""``simulate``: trajectories and observables of an optimizer on a landscape, batched over starts
and hyperparameters — a thin caller of :mod:`samdyn.engine` with its own recorder.

``simulate(problem, opt, hp, x0, steps)`` runs ``opt.step`` — the same pure function that
``samdyn.stability`` differentiates and ``samdyn.nets`` trains with — for every combination of a
hyperparameter grid and a batch of initial points.

Layout and batching:

* the hyperparameter leaves broadcast to a grid of shape ``hp_shape``; ``x0`` has shape
  ``(*x0_batch, d)``; the run's ``batch_shape`` is ``hp_shape + x0_batch`` (every point under every
  setting); results come back batch-first, as NumPy arrays;
* the engine runs the particles in chunks of ``chunk_size`` (particles on the last axis inside the
  compiled program), in interruptible passes, with a progress bar for long runs.

What is recorded (``record``, ``every``, ``observe``):

* ``record="final"`` keeps the end point only; ``"trajectory"`` keeps ``w_t`` at
  ``t = every, 2·every, …`` (``Run.times``);
* ``observe`` names streaming observables computed inside the scan at the same times:
  ``"loss"`` = f(w_t), ``"distance"`` = ‖w_t − reference‖, and of step t (the step that produced
  w_t, evaluated at w_{t−1}): ``"grad_norm"`` = ‖∇f(w_{t−1})‖ and ``"cosine"`` between SAM's two
  gradients; or ``{name: fn(params, info) -> scalar}`` for one particle.

A particle whose coordinates become NaN/inf or leave ``±divergence_bound`` is flagged
(``Run.diverged``, ``Run.diverged_at``); it never stops the others. With ``stats=`` the run keeps
statistics over many noisy particles instead (:mod:`samdyn.streaming`).
"""

from __future__ import annotations

import dataclasses
import functools
import math
from typing import Any, Callable, Mapping, Sequence

import jax
import jax.numpy as jnp
import numpy as np

from . import checks, engine
from .optim import HParams, Optimizer, hparams as make_hparams
from .streaming import StatsSpec, run_particles

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


@dataclasses.dataclass(frozen=True)
class Run:
    """The result of :func:`simulate`; arrays are NumPy, batch axes first.

    Attributes:
        final: end points, shape ``(*batch_shape, d)``.
        trajectory: ``w_t`` at ``times``, shape ``(*batch_shape, len(times), d)``, or None.
        times: steps at which records were taken, shape ``(T,)`` (empty when nothing recorded).
        observables: name -> array of shape ``(*batch_shape, T)``.
        diverged: True where the parameters became NaN/inf or left ±divergence_bound, shape
            ``batch_shape``.
        diverged_at: first such step, −1 if none, shape ``batch_shape``.
        final_momentum: the optimizer's momentum buffer at the end, shape ``(*batch_shape, d)``
            (None when the optimizer keeps none).
        hp: the hyperparameters broadcast to ``hp_shape`` (NumPy leaves).
        batch_shape: ``hp_shape + x0_batch``.
        steps, dtype, chunk_size, seed: how it was run (``steps`` = steps completed: fewer than
            asked only in the ``partial`` run of an interrupted call).
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

    def __repr__(self) -> str:
        fields = ", ".join(f"{f.name}={checks.summary(getattr(self, f.name))}" for f in dataclasses.fields(self)
                           if f.name not in ("hp", "observables"))
        obs = "{" + ", ".join(f"{k!r}: {checks.summary(v)}" for k, v in self.observables.items()) + "}"
        return f"Run({fields}, observables={obs})"


def _observables(observe) -> tuple:
    """Normalise ``observe`` to a hashable tuple of (name, fn, is_custom)."""
    if isinstance(observe, str):
        observe = (observe,)
    if isinstance(observe, Mapping):
        for name, fn in observe.items():
            checks.function("simulate", f"observe[{name!r}]", fn, "a function fn(params, info) -> scalar")
        return tuple((name, fn, True) for name, fn in observe.items())
    for name in observe:
        if name not in OBSERVABLES:
            known = ", ".join(OBSERVABLES)
            raise ValueError(f"simulate: unknown observable {name!r}; known: {known} (or pass a dict of functions)")
    return tuple((name, OBSERVABLES[name], False) for name in observe)


def _check_problem(problem, d, dtype):
    try:
        hash(problem)
    except TypeError:
        return _trace_problem.__wrapped__(problem, d, dtype)
    return _trace_problem(problem, d, dtype)


@functools.lru_cache(maxsize=256)
def _trace_problem(problem, d, dtype):
    """Trace the problem's loss and gradient once on the host (no compute; cached): a loss written
    with ``math`` or ``numpy`` instead of ``jax.numpy`` fails here, with a message that says so."""
    point = jax.ShapeDtypeStruct((d,), jnp.dtype(dtype))
    try:
        jax.eval_shape(problem.loss, point)
        jax.eval_shape(problem.grad, point)
    except (jax.errors.TracerArrayConversionError, jax.errors.ConcretizationTypeError,
            jax.errors.TracerBoolConversionError, jax.errors.TracerIntegerConversionError) as err:
        raise TypeError(
            "simulate: the loss function could not be traced by JAX; write it with jax.numpy "
            "(jnp.sin, jnp.sum, jnp.where …), not math / numpy functions or Python if/float() on its "
            f"argument ({type(err).__name__})"
        ) from err


def _check_noise(noise):
    if noise is not None and not (hasattr(noise, "sample") and hasattr(noise, "oracle")):
        checks.fail("simulate", "noise", "None or a noise model such as sd.noise.gaussian(std=0.1)", noise, TypeError)


def _check_dtype(dtype):
    checks.choice("simulate", "dtype", dtype, ("float32", "float64"))
    if dtype == "float64" and not jax.config.jax_enable_x64:
        raise ValueError(
            "simulate: dtype='float64' needs JAX's x64 mode, which is off (import samdyn turns it on; "
            "something turned it off since): call jax.config.update('jax_enable_x64', True), or ask "
            "for dtype='float32'"
        )


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
    particle_ids=None,
    common_noise: bool = True,
    divergence_bound: float = engine.DEFAULT_DIVERGENCE_BOUND,
    progress: bool | None = None,
    confirm: bool = False,
) -> Run:
    """Run ``opt`` on ``problem`` from every ``x0`` under every hyperparameter setting in ``hp``.

    Args:
        problem: a :class:`~samdyn.landscapes.Landscape` (or any object with ``loss``/``grad`` on
            ``(d,)`` arrays), or a plain loss function of a ``(d,)`` array written with ``jax.numpy``.
        opt: an :class:`~samdyn.optim.Optimizer` (``gd()``, ``sam()``, ``usam()``).
        hp: :class:`~samdyn.optim.HParams` (or a dict for ``hparams(**hp)``); leaves broadcast to
            the grid ``hp_shape``.
        x0: initial points, shape ``(d,)`` or ``(*x0_batch, d)``.
        steps: number of updates (any positive integer; a long run shows progress and stops on
            Ctrl-C, raising :class:`samdyn.engine.Interrupted` whose ``partial`` is the Run so far).
        noise: a gradient-noise model (``samdyn.noise``), None for the exact gradient.
        key: integer seed in [0, 2⁶⁴). Step ``t`` of particle ``p`` draws from (key, t, p) only.
        record: ``"final"`` or ``"trajectory"``.
        every: record the trajectory and observables every ``every`` steps.
        observe: observable names (``"loss"``, ``"grad_norm"``, ``"cosine"``, ``"distance"``) or a
            dict ``{name: fn(params, info) -> scalar}``.
        reference: point for ``"distance"``, shape ``(d,)``.
        dtype: ``"float64"`` (analysis) or ``"float32"`` (throughput).
        chunk_size: particles per compiled call (default min(batch, 4096) on CPU, one chunk on an
            accelerator); capped at the number of particles.
        stats: a :func:`samdyn.streaming.particle_stats` spec: run ``particles`` noisy copies of
            every setting and compute statistics over them inside the scan (``Run.stats``, a
            :class:`samdyn.streaming.ParticleStats`; ``every`` sets the record times). Then
            ``final`` has shape ``(*batch_shape, particles, d)`` and ``record``/``observe`` must be
            left at their defaults.
        particles: number of particles per setting (stats mode only).
        first_chunk: index of this call's first chunk (stats mode): particles
            ``first_chunk·chunk_size …`` so that runs split over calls merge bit-identically.
        particle_ids: each initial point's particle id, shape ``x0_batch`` (default: its flat index
            in ``x0``). A particle's noise depends on (key, step, id): rerun a subset of starts with
            their original ids to reproduce them bit for bit.
        common_noise: every hyperparameter setting sees the same draws for the same particle
            (common random numbers, the default: comparisons across ρ or γ are not blurred by
            independent noise); False gives each setting its own stream.
        divergence_bound: a particle is flagged diverged at the first step where a coordinate is
            NaN/inf or exceeds this in absolute value (default 1e12; ``float("inf")``: NaN/inf only).
        progress: show a progress bar (None: when the run is expected to take more than a few
            seconds).
        confirm: run even if the estimate says it takes more than an hour or more memory than the
            machine has.

    Returns:
        A :class:`Run`.

    >>> import samdyn as sd
    >>> run = sd.simulate(sd.landscapes.get("saddle"), sd.optim.gd(), sd.optim.hparams(lr=0.1), [1.0, 0.0], 10)
    >>> run.final.round(6).tolist()
    [0.107374, 0.0]
    """
    # ---- validate everything on the host, before any compute --------------------------------
    checks.instance("simulate", "opt", opt, Optimizer, "an Optimizer (sd.optim.gd(), sam(), usam())")
    if isinstance(hp, Mapping):
        hp = make_hparams(**hp)
    checks.instance("simulate", "hp", hp, HParams, "sd.optim.hparams(...)")
    hp = make_hparams(*hp)  # an HParams built by hand gets the same checks
    steps = checks.integer("simulate", "steps", steps, low=1)
    every = checks.integer("simulate", "every", every, low=1)
    if every > steps:
        raise ValueError(f"simulate: every={every} exceeds steps={steps}")
    checks.choice("simulate", "record", record, ("final", "trajectory"))
    _check_dtype(dtype)
    seed = checks.integer("simulate", "key", key, low=0, high=2**64 - 1)
    common_noise = checks.boolean("simulate", "common_noise", common_noise)
    confirm = checks.boolean("simulate", "confirm", confirm)
    if progress is not None:
        checks.boolean("simulate", "progress", progress)
    bound = checks.real("simulate", "divergence_bound", divergence_bound, low=0.0, low_open=True) \
        if divergence_bound != float("inf") else float("inf")
    _check_noise(noise)
    x0 = np.asarray(x0, dtype=np.float64) if not isinstance(x0, str) else checks.fail("simulate", "x0", "an array of shape (d,) or (..., d)", x0, TypeError)
    if x0.ndim == 0 or x0.size == 0:
        raise ValueError(f"simulate: x0 must have shape (d,) or (..., d), got shape {x0.shape}")
    if not np.all(np.isfinite(x0)):
        raise ValueError(f"simulate: x0 must be finite, got {checks.summary(x0)}")
    problem = engine.as_problem(problem, x0.shape[-1], "simulate")
    d = x0.shape[-1]
    obs = _observables(observe)
    if any(item[0] == "distance" for item in obs) and reference is None:
        raise ValueError("simulate: observable 'distance' needs reference=<point of shape (d,)>")
    ref = np.zeros(d) if reference is None else checks.array("simulate", "reference", reference, shape=(d,))
    _check_problem(problem, d, dtype)
    if noise is not None and hasattr(noise, "check"):
        noise.check(problem, d)

    hp_np = HParams(*(np.asarray(leaf, dtype=np.float64) for leaf in hp))
    hp_shape = np.broadcast_shapes(*(leaf.shape for leaf in hp_np))
    if stats is not None or particles is not None:
        if particle_ids is not None:
            raise ValueError("simulate: particle_ids is for trajectory runs; stats runs number particles 0 … P−1 "
                             "(use first_chunk= to continue a run)")
        return _simulate_stats(problem, opt, noise, hp_np, hp_shape, x0, steps, every, record, obs, stats,
                               particles, first_chunk, chunk_size, seed, dtype, common_noise, bound, progress, confirm)
    x0_batch = x0.shape[:-1]
    n_hp, n_x = math.prod(hp_shape), math.prod(x0_batch)
    n = n_hp * n_x
    chunk = engine.default_chunk_size(n) if chunk_size is None else min(n, checks.integer("simulate", "chunk_size", chunk_size, low=1))
    if particle_ids is None:
        ids = np.arange(n_x, dtype=np.int64)
    else:
        ids = checks.array("simulate", "particle_ids", particle_ids, dtype=np.int64)
        if ids.shape != x0_batch or np.any(ids < 0) or np.any(ids >= 2**32):
            checks.fail("simulate", "particle_ids", f"integers in [0, 2**32) of shape {x0_batch} (x0's batch shape)", particle_ids)
        ids = ids.reshape(-1)
    recording = record == "trajectory" or bool(obs)
    n_rec = steps // every if recording else 0
    itemsize = np.dtype(dtype).itemsize
    per_lane = (d if record == "trajectory" else 0) + len(obs)
    rec_bytes = n * n_rec * per_lane * itemsize
    if rec_bytes > MAX_RECORD_BYTES and not confirm:
        raise ValueError(
            f"simulate: recording would take {rec_bytes / 2**30:.1f} GiB; raise every= or record fewer observables"
            " (or pass confirm=True)"
        )
    engine.check_memory("simulate", engine.estimate_bytes(n, d, itemsize, n_rec, per_lane), confirm,
                        "raise every=, record fewer observables or run fewer particles")

    # ---- flatten the batch: hyperparameters outer, initial points inner ---------------------
    # a leaf the user gave as one value stays a scalar (the engine broadcasts it)
    hp_flat = HParams(*(leaf if leaf.ndim == 0 else np.repeat(np.broadcast_to(leaf, hp_shape).reshape(-1), n_x)
                        for leaf in hp_np))
    x_flat = np.tile(x0.reshape(n_x, d), (n_hp, 1))
    ids_flat = np.tile(ids, n_hp)
    streams = np.repeat(np.arange(n_hp), n_x)
    ref_arg = {"ref": ref.astype(dtype)}
    chunks = [
        engine.Chunk(x_flat[sl], HParams(*(leaf if leaf.ndim == 0 else leaf[sl] for leaf in hp_flat)), ids_flat[sl],
                     streams[sl], ref_arg)
        for sl in (slice(c, c + chunk) for c in range(0, n, chunk))
    ]
    program = engine.Program(problem, opt, noise, _Trajectories(record == "trajectory", obs), common_noise, bound)

    def to_run(out: engine.Output) -> Run:
        def gather(name):
            arr = np.concatenate([o[name] for o in out.chunks], axis=-1)
            arr = np.moveaxis(arr, -1, 0)
            return arr.reshape(hp_shape + x0_batch + arr.shape[1:])

        has_momentum = out.chunks[0]["momentum"] is not None
        n_done = out.steps_done // every if recording else 0
        diverged_at = gather("diverged_at")
        return Run(
            final=gather("final"),
            trajectory=gather("trajectory") if record == "trajectory" else None,
            times=every * np.arange(1, n_done + 1),
            observables={item[0]: gather(item[0]) for item in obs},
            diverged=diverged_at >= 0,
            diverged_at=diverged_at,
            final_momentum=gather("momentum") if has_momentum else None,
            hp=HParams(*(np.broadcast_to(leaf, hp_shape) for leaf in hp_np)),
            batch_shape=hp_shape + x0_batch,
            steps=out.steps_done,
            dtype=dtype,
            chunk_size=chunk,
            seed=seed,
        )

    try:
        out = engine.run(program, chunks, steps=steps, every=every, seed=seed, lanes=chunk, dtype=dtype,
                         progress=progress, confirm=confirm, label="simulate")
    except engine.Interrupted as stop:
        stop.partial = to_run(stop.partial)
        raise
    return to_run(out)


@dataclasses.dataclass(frozen=True)
class _Trajectories:
    """Recorder of the plain path (see :mod:`samdyn.engine` for the protocol): the trajectory and
    per-particle observables at record times, as ``(T, …, lanes)`` arrays."""

    keep_trajectory: bool
    obs: tuple

    @property
    def records(self):
        return self.keep_trajectory or bool(self.obs)

    @property
    def lane_keys(self):
        return ("trajectory",) + tuple(item[0] for item in self.obs)

    def init(self, lanes, args):
        return ()

    def on_step(self, problem, extra, w, t, args):
        return extra

    def record(self, problem, w, info, extra, args):
        def lane_observe(w, info, ref):
            return {name: fn(w, info) if custom else fn(problem, w, info, ref) for name, fn, custom in self.obs}

        w = engine.join(w)
        info = info._replace(perturbed=engine.join(info.perturbed))
        rec = jax.vmap(lane_observe, in_axes=(-1, -1, None), out_axes=-1)(w, info, args["ref"]) if self.obs else {}
        if self.keep_trajectory:
            rec["trajectory"] = w
        return rec

    def finish(self, extra):
        return {}


def _simulate_stats(problem, opt, noise, hp_np, hp_shape, x0, steps, every, record, obs, stats, particles,
                    first_chunk, chunk_size, seed, dtype, common_noise, bound, progress, confirm) -> Run:
    """The many-particle branch of :func:`simulate` (see :mod:`samdyn.streaming`)."""
    checks.instance("simulate", "stats", stats, StatsSpec, "samdyn.particle_stats(...)")
    if particles is None:
        raise ValueError("simulate: stats= needs particles=<number of particles per setting>")
    particles = checks.integer("simulate", "particles", particles, low=1)
    if record != "final" or obs:
        raise ValueError("simulate: with stats= keep record='final' and observe=() (statistics replace records)")
    first_chunk = checks.integer("simulate", "first_chunk", first_chunk, low=0)
    d = x0.shape[-1]
    if stats.reference is not None and len(stats.reference) != d:
        raise ValueError(f"simulate: stats reference has {len(stats.reference)} coordinates, the problem has {d}")
    # the chunk size numbers the particles (chunk c holds c·chunk …), so runs split over calls merge;
    # the compiled width is capped at the number of particles
    chunk = engine.default_chunk_size(particles) if chunk_size is None \
        else checks.integer("simulate", "chunk_size", chunk_size, low=1)

    def to_run(out: dict) -> Run:
        return Run(
            final=out["final"],
            trajectory=None,
            times=out["stats"].times,
            observables={},
            diverged=out["diverged_at"] >= 0,
            diverged_at=out["diverged_at"],
            final_momentum=None,
            hp=HParams(*(np.broadcast_to(leaf, hp_shape) for leaf in hp_np)),
            batch_shape=out["settings_shape"],
            steps=out["steps"],
            dtype=dtype,
            chunk_size=chunk,
            seed=seed,
            stats=out["stats"],
        )

    try:
        out = run_particles(problem, opt, noise, hp_np, hp_shape, x0, steps, every, stats, particles, chunk,
                            first_chunk, seed, dtype, common_noise=common_noise, divergence_bound=bound,
                            progress=progress, confirm=confirm)
    except engine.Interrupted as stop:
        stop.partial = to_run(stop.partial)
        raise
    return to_run(out)
