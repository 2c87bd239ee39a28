"""The engine: one compiled program per configuration, run over chunks of particles, devices and
interruptible segments.

Every simulator in samdyn — :func:`samdyn.simulate` (trajectories, observables), the many-particle
statistics of :mod:`samdyn.streaming`, and the sweeps built on them — is a thin caller of
:func:`run`: it describes *what* to run (a :class:`Program`) and *on which particles* (a list of
:class:`Chunk`), and gets back host arrays per chunk. None of them writes its own scan.

**Layout.** A chunk holds ``lanes`` particles. Inside the compiled program a particle cloud is a
tuple of ``d`` arrays of shape ``(lanes,)`` (one per coordinate, particles on the last axis,
contiguous) and the optimizer's ``step`` is ``vmap``-ed over that axis: every leaf of a step is
then a ``(lanes,)`` array, the global norm is a sum over leaves, and XLA fuses a whole step into
one loop over the chunk. The problem and the noise oracle still see ``(d,)`` arrays.

**Chunks and devices.** Chunks shorter than ``lanes`` are padded (padding lanes repeat the first
particle; ``args["valid"]`` tells the recorder which lanes are real, and lane outputs are cut back).
Chunk ``c`` lives on local device ``c mod n_devices`` for the whole run (on CPU, ``import samdyn``
asks JAX for one device per core).

**Randomness.** Step ``t`` (1-based) of the particle with id ``p`` draws its noise from
``samdyn.noise.Counter(step_key(seed, t[, stream]), p)``: a pure, elementwise function of (seed,
step, particle id) — and of the setting's ``stream`` only when settings are asked not to share noise.
A particle's bits are therefore the same for any chunk size, number of devices, subset of
particles, or grid it is part of.

**Segments.** All chunks advance in lock step, a *pass* at a time: each pass runs every chunk's
program for a number of steps sized to take about :data:`PASS_SECONDS`, then the host collects the
records, updates the progress bar and checks for Ctrl-C. So a run of any length stops within about
a second of a KeyboardInterrupt, and :class:`Interrupted` carries the state of the last complete
pass. Step counts are traced values: runs of different lengths share one compiled program.

**Divergence.** A particle is flagged at the first step where a coordinate is NaN/inf or exceeds
``divergence_bound`` in absolute value; it keeps running (its values are what they are) and never
stops the others.

**Recorder protocol.** A recorder decides what a run keeps besides the end state. It is a hashable
(frozen) object with:

* ``records: bool`` — whether it records at the record times ``every, 2·every, …``;
* ``lane_keys: tuple[str, ...]`` — names of its outputs whose last axis is the particle axis (cut
  back to the real particles);
* ``init(lanes, args) -> extra`` — its per-chunk carry besides the particles (a pytree);
* ``on_step(problem, extra, w, t, args) -> extra`` — after every step ``t``;
* ``record(problem, w, info, extra, args) -> dict`` — arrays for one record time, given the cloud
  ``w`` (tuple of ``d`` arrays of shape ``(lanes,)``) and the step's
  :class:`~samdyn.optim.StepInfo` batched over lanes (``perturbed`` as a tuple like ``w``);
* ``finish(extra) -> dict`` — final outputs from the carry (on the host).

``args`` is the chunk's dict of traced inputs: the caller's :attr:`Chunk.args` plus ``valid``
(``(lanes,)`` bool). Records come back stacked on a leading time axis.
"""

from __future__ import annotations

import dataclasses
import functools
import math
import os
import time
from typing import Any, Callable, NamedTuple, Sequence

import jax
import jax.numpy as jnp
import numpy as np

from . import checks
from .noise import Counter, step_key
from .optim import HParams, Optimizer

__all__ = ["Program", "Chunk", "Output", "Interrupted", "EndState", "run", "split", "join", "default_chunk_size", "as_problem",
           "PASS_SECONDS", "LONG_RUN_SECONDS", "DEFAULT_DIVERGENCE_BOUND"]

#: Target wall time of one pass (all chunks advance, then progress and Ctrl-C are checked).
PASS_SECONDS = 0.4
#: A run estimated to take longer than this is refused unless ``confirm=True``.
LONG_RUN_SECONDS = 3600.0
#: Default ``divergence_bound``: a coordinate beyond ±1e12 counts as diverged.
DEFAULT_DIVERGENCE_BOUND = 1e12
#: Particles per chunk on CPU: a chunk's state stays in cache (see the README's benchmarks).
CPU_CHUNK = 4096
#: Most record slots per pass (a power of two at most this; the programs differ only by it).
MAX_SLOTS = 512
#: The compiled width is a multiple of this many lanes (padding lanes repeat the first particle):
#: XLA computes every real particle in the same vectorised loop body, whatever the chunk size, so
#: fused multiply-adds round alike and a particle's bits do not depend on the chunk size.
LANE_BLOCK = 64


def split(x):
    """(d, ...) array -> tuple of d arrays (the per-coordinate layout used inside the scan)."""
    return tuple(x[i] for i in range(x.shape[0]))


def join(w):
    """Inverse of :func:`split`: a tuple of d arrays -> one (d, ...) array."""
    return jnp.stack(w)


class FunctionProblem:
    """A plain loss ``f(x) -> scalar`` on ``(d,)`` arrays as a problem: ``loss``, ``grad`` (by JAX), ``dim``."""

    def __init__(self, loss: Callable, dim: int):
        self.loss = loss
        self.grad = jax.grad(loss)
        self.dim = dim
        self.name = getattr(loss, "__name__", "loss")


@functools.lru_cache(maxsize=64)
def _function_problem(loss, dim):
    return FunctionProblem(loss, dim)


def as_problem(problem, dim: int, where: str = "simulate"):
    """``problem`` as an object with ``loss``/``grad`` on ``(d,)`` arrays: a Landscape (or anything with
    ``loss`` and ``grad``) is checked against ``dim``; a plain loss function is wrapped (cached, so the
    same function reuses compiled programs).

    >>> as_problem(lambda x: (x**2).sum(), 2).dim
    2
    """
    if hasattr(problem, "grad") and hasattr(problem, "loss"):
        have = getattr(problem, "dim", dim)
        if have != dim:
            raise ValueError(f"{where}: x0 has {dim} coordinates, the problem has {have}")
        return problem
    if callable(problem):
        return _function_problem(problem, dim)
    raise TypeError(f"{where}: problem must be a Landscape (or have .loss and .grad) or a loss function, got "
                    f"{checks.summary(problem)}")


def default_chunk_size(n: int) -> int:
    """Particles per chunk when the caller gives none: ``min(n, 4096)`` on CPU (cache-sized chunks);
    on an accelerator one chunk holds everything up to 2²⁴ particles (wide kernels pay off there)."""
    if jax.default_backend() == "cpu":
        return max(1, min(n, CPU_CHUNK))
    return max(1, min(n, 2**24))


@dataclasses.dataclass(frozen=True)
class Program:
    """What to run: the static half of a configuration (hashable; one compiled program each).

    Attributes:
        problem: object with ``loss`` and ``grad`` on ``(d,)`` arrays.
        opt: the :class:`~samdyn.optim.Optimizer` whose ``step`` is run unchanged.
        noise: a noise model (:mod:`samdyn.noise`) or None for the exact gradient.
        recorder: what to keep (see the recorder protocol above).
        common_noise: all settings share each particle's draws (common random numbers); if False,
            each chunk's ``stream`` (its setting index) enters the step key.
        divergence_bound: flag a particle once a coordinate exceeds this in absolute value
            (``inf``: only NaN/inf).
    """

    problem: Any
    opt: Optimizer
    noise: Any
    recorder: Any
    common_noise: bool = True
    divergence_bound: float = DEFAULT_DIVERGENCE_BOUND


@dataclasses.dataclass
class Chunk:
    """The particles of one chunk (host arrays; ``n ≤ lanes``).

    Attributes:
        x: initial points, (n, d).
        hp: :class:`~samdyn.optim.HParams` with leaves of shape (n,) (a scalar leaf is broadcast).
        particle: each particle's id within its setting, (n,) integers < 2³².
        stream: each particle's setting index, (n,) integers (used when settings do not share noise).
        args: the recorder's traced inputs for this chunk (arrays or scalars).
    """

    x: np.ndarray
    hp: HParams
    particle: np.ndarray
    stream: np.ndarray
    args: dict


class Output(NamedTuple):
    """A run's results, one dict per chunk (host NumPy arrays, lane outputs cut to the chunk's
    particles), and the number of steps every particle has completed."""

    chunks: list
    steps_done: int


class Interrupted(KeyboardInterrupt):
    """Ctrl-C during a run. ``partial`` holds what the last complete pass reached (set by the
    caller to its own result type, e.g. a :class:`~samdyn.simulation.Run` with ``steps`` = steps
    done); ``steps_done`` / ``steps`` say how far it got."""

    def __init__(self, message: str, steps_done: int, steps: int, partial: Any = None):
        super().__init__(message)
        self.steps_done, self.steps, self.partial = steps_done, steps, partial


class _Inputs(NamedTuple):
    hp: HParams
    particle: Any
    stream: Any
    seed: Any
    args: dict


@dataclasses.dataclass(frozen=True)
class EndState:
    """The recorder that keeps nothing but the end state (see the protocol above)."""

    records = False
    lane_keys = ()

    def init(self, lanes, args):
        return ()

    def on_step(self, problem, extra, w, t, args):
        return extra

    def record(self, problem, w, info, extra, args):
        return {}

    def finish(self, extra):
        return {}


@functools.lru_cache(maxsize=128)
def _has_momentum_buffer(opt: Optimizer) -> bool:
    """Whether ``opt``'s state is a NamedTuple with a ``momentum`` field (traced once per optimizer)."""
    state = jax.eval_shape(opt.init, (jax.ShapeDtypeStruct((), jnp.float32),))
    return "momentum" in getattr(state, "_fields", ())  # a field (an optax base's .momentum is a property)


def _step_dtype():
    return jnp.int64 if jax.config.jax_enable_x64 else jnp.int32


@functools.lru_cache(maxsize=128)
def _programs(program: Program, slots: int, momentum_free: bool):
    """(init, segment): the jitted chunk programs of one configuration.

    ``segment(carry, t0, slot_steps, slot_record, inputs)`` runs ``slots`` slots; slot ``i``
    advances ``slot_steps[i]`` steps (0 for an unused slot) and, if ``slot_record[i]``, records.

    Specialised on what the host knows (each choice is a separate cached program):

    * ``momentum_free``: every momentum value is 0, so the buffer term γv is the constant 0 and the
      buffer is not carried through the plain steps (with γ = 0 torch's buffer is just the step's
      direction, which the last step of every slot still stores, so ``final_momentum`` is exact);
    """
    problem, opt, noise, recorder = program.problem, program.opt, program.noise, program.recorder
    bound = program.divergence_bound

    def lane_step(w, state, hp, draws):
        grad = problem.grad if noise is None else noise.oracle(problem, draws)
        return opt.step(lambda v: split(grad(join(v))), w, state, hp)

    # Hyperparameters stay per-lane arrays even when a chunk shares them: passed as broadcast
    # scalars, XLA contracts some noisy steps into other fused multiply-adds (1-ulp differences).
    hp_axes = HParams(*(0 for _ in HParams._fields))
    if momentum_free:
        hp_axes = hp_axes._replace(momentum=None)  # replaced by the constant 0 below
    batched_step = jax.vmap(lane_step, in_axes=(-1, -1, hp_axes, -1), out_axes=-1)

    def advance(carry, t, inp: _Inputs, keep_buffer=True):
        w, state, diverged_at, extra = carry
        draws = None
        if noise is not None:
            key = step_key(inp.seed, t, None if program.common_noise else inp.stream)
            draws = noise.sample(Counter(key, inp.particle), w)
        if momentum_free:
            # γ = 0 as a constant and a zero buffer: XLA folds γv away, and the new buffer (= this
            # step's direction) is kept only where it is read (the last step of a slot)
            zeros = jax.tree.map(jnp.zeros_like, state.momentum)
            hp = inp.hp._replace(momentum=jnp.zeros((), w[0].dtype))
            w, new_state, info = batched_step(w, state._replace(momentum=zeros), hp, draws)
            state = new_state if keep_buffer else new_state._replace(momentum=state.momentum)
        else:
            w, state, info = batched_step(w, state, inp.hp, draws)
        bad = functools.reduce(jnp.logical_or, [~jnp.isfinite(c) if bound == float("inf") else ~(jnp.abs(c) <= bound)
                                                for c in w])  # NaN fails <=, and so does inf for a finite bound
        diverged_at = jnp.where((diverged_at < 0) & bad, t.astype(diverged_at.dtype), diverged_at)
        extra = recorder.on_step(problem, extra, w, t, inp.args)
        return (w, state, diverged_at, extra), info

    def init(x, inp: _Inputs):
        w0 = split(x)
        lanes = x.shape[-1]
        state0 = jax.vmap(opt.init, in_axes=-1, out_axes=-1)(w0)  # per particle: a step counter is a (lanes,) array
        return (w0, state0, jnp.full((lanes,), -1, dtype=_step_dtype()), recorder.init(lanes, inp.args))

    def segment(carry, t0, slot_steps, slot_record, inp: _Inputs):
        def run_steps(first, count, carry):
            # no unrolling: two steps in one loop body let XLA contract across them (1-ulp changes)
            return jax.lax.fori_loop(0, count, lambda i, c: advance(c, first + i, inp, keep_buffer=False)[0], carry)

        def slot(state, todo):
            carry, t = state
            k, keep = todo
            # k − 1 plain steps, then the last one whose StepInfo the record may need
            carry = run_steps(t + 1, jnp.maximum(k - 1, 0), carry)
            if not recorder.records:
                carry = jax.lax.cond(k > 0, lambda c: advance(c, t + k, inp)[0], lambda c: c, carry)
                return (carry, t + k), {}
            info_shape = jax.eval_shape(lambda c: advance(c, t + k, inp)[1], carry)
            no_info = jax.tree.map(lambda s: jnp.zeros(s.shape, s.dtype), info_shape)
            carry, info = jax.lax.cond(k > 0, lambda c: advance(c, t + k, inp), lambda c: (c, no_info), carry)
            w, extra = carry[0], carry[3]

            def take(_):
                return recorder.record(problem, w, info._replace(perturbed=tuple(info.perturbed)), extra, inp.args)

            rec_shape = jax.eval_shape(take, None)
            rec = jax.lax.cond(keep, take, lambda _: jax.tree.map(lambda s: jnp.zeros(s.shape, s.dtype), rec_shape), None)
            return (carry, t + k), rec

        (carry, _), recs = jax.lax.scan(slot, (carry, t0), (slot_steps, slot_record))
        return carry, recs

    return jax.jit(init), jax.jit(segment)


def _plan(t: int, budget: int, steps: int, every: int, records: bool, slots: int):
    """Slots of the next pass from step ``t``: (steps per slot, record flag per slot, steps in all)."""
    ks, keep = [], []
    end = min(steps, t + budget)
    last_record = (steps // every) * every if records else 0
    while t < end and len(ks) < slots:
        if records and t < last_record:
            target = (t // every + 1) * every
            stop = min(target, end)
            flag = stop == target
        else:
            stop, flag = end, False
        ks.append(stop - t)
        keep.append(flag)
        t = stop
    done = sum(ks)
    ks += [0] * (slots - len(ks))
    keep += [False] * (slots - len(keep))
    return np.asarray(ks), np.asarray(keep), done


def _available_memory() -> float:
    """Bytes of memory available to this process (MemAvailable on Linux), inf if unknown."""
    try:
        with open("/proc/meminfo") as fh:
            for line in fh:
                if line.startswith("MemAvailable:"):
                    return float(line.split()[1]) * 1024
    except OSError:
        pass
    return float("inf")


def estimate_bytes(n_lanes: int, d: int, itemsize: int, n_records: int, record_per_lane: int,
                   record_per_chunk: int = 0, n_chunks: int = 1) -> float:
    """Host bytes a run holds: end states and momentum (2·d per lane), divergence steps, and records
    (``record_per_lane`` values per lane and ``record_per_chunk`` per chunk, at each record time)."""
    state = n_lanes * (2 * d * itemsize + 8)
    records = n_records * (n_lanes * record_per_lane * itemsize + n_chunks * record_per_chunk * 8)
    return float(state + records)


def check_memory(where: str, need: float, confirm: bool, hint: str) -> None:
    """Refuse (before any compute) a run whose host memory exceeds what the machine has free."""
    free = _available_memory()
    if need > 0.8 * free and not confirm:
        raise MemoryError(
            f"{where}: this run would hold about {need / 2**30:.1f} GiB, more than the "
            f"{free / 2**30:.1f} GiB this machine has available; {hint}, or pass confirm=True to try anyway"
        )


def _wants_bar(progress, eta, elapsed):
    """Whether to show the bar now: always for ``progress=True``, never for False; for None (automatic)
    only once the run has lasted a second and still has more than two to go (s). The first estimates
    can include a compile, so a run that ends within a second or two never flashes one."""
    return bool(progress) or (progress is None and eta > 2.0 and elapsed > 1.0)


def _progress_bar(enabled, label, total):
    if enabled is False:
        return None
    from tqdm.auto import tqdm

    return tqdm(total=total, desc=label, unit="step", unit_scale=True, leave=True, dynamic_ncols=True)


def run(program: Program, chunks: Sequence[Chunk], *, steps: int, every: int, seed: int, lanes: int,
        dtype: str, progress: bool | None = None, confirm: bool = False, label: str = "simulate",
        slots: int | None = None, specialise: bool = True) -> Output:
    """Run ``program`` on every chunk for ``steps`` steps; return per-chunk host outputs.

    Args:
        program: the static configuration.
        chunks: the particles, each chunk at most ``lanes`` wide.
        steps: number of updates (any positive integer; counted in int64 when x64 is on).
        every: record period, in steps (used when ``program.recorder.records``).
        seed: integer seed ≥ 0 (< 2⁶⁴).
        lanes: particles per compiled call.
        dtype: ``"float32"`` or ``"float64"``.
        progress: True shows a progress bar (steps, particle-steps/s, ETA); None shows one once
            the run has lasted a second and is expected to need two more; False never.
        confirm: run even when the estimate exceeds :data:`LONG_RUN_SECONDS`.
        label: name used in the progress bar and messages.
        slots: record slots per pass (default from the number of records).
        specialise: compile for what the host knows (no momentum buffer when every momentum is 0);
            False runs the general program, which gives the same bits (a check, and a baseline for
            benchmarks).

    Returns:
        :class:`Output`. Each chunk's dict holds ``final`` (d, n), ``momentum`` (d, n) or None,
        ``diverged_at`` (n,), the recorder's ``finish`` outputs, and its records stacked as (T, …).

    Raises:
        Interrupted: on Ctrl-C; its ``partial`` is the :class:`Output` of the last complete pass.
        ValueError: when the run would take longer than :data:`LONG_RUN_SECONDS` and not ``confirm``.
    """
    recorder = program.recorder
    if steps >= 2**31 and not jax.config.jax_enable_x64:
        raise ValueError(f"{label}: steps={steps} needs 64-bit step counters; turn on jax_enable_x64")
    n_records = steps // every if recorder.records else 0
    if slots is None:
        slots = 1 if not recorder.records else min(MAX_SLOTS, 1 << max(0, math.ceil(math.log2(n_records + 1))))
    momentum_free = (specialise and _has_momentum_buffer(program.opt)
                     and all(not np.any(np.asarray(ch.hp.momentum)) for ch in chunks))
    init_fn, segment_fn = _programs(program, slots, momentum_free)
    devices = jax.local_devices()
    seed_words = np.asarray([seed & 0xFFFFFFFF, (seed >> 32) & 0xFFFFFFFF], dtype=np.uint32)

    lanes = -(-lanes // LANE_BLOCK) * LANE_BLOCK
    carries, inputs, sizes = [], [], []
    for c, ch in enumerate(chunks):
        n = ch.x.shape[0]
        pad = lanes - n

        def padded(a, dt):
            a = np.asarray(a)
            return np.concatenate([a, np.repeat(a[:1], pad, axis=0)]).astype(dt) if pad else a.astype(dt)

        args = {**ch.args, "valid": np.arange(lanes) < n}
        hp = HParams(*(padded(np.broadcast_to(leaf, (n,)), dtype) for leaf in ch.hp))
        inp = _Inputs(hp, padded(ch.particle, np.uint32),
                      padded(ch.stream, np.uint32), seed_words, args)
        inp = jax.device_put(inp, devices[c % len(devices)])
        carries.append(init_fn(jax.device_put(padded(ch.x, dtype).T, devices[c % len(devices)]), inp))
        inputs.append(inp)
        sizes.append(n)

    records = [[] for _ in chunks]
    t, budget, bar = 0, 1, None
    started = time.perf_counter()
    total_lanes = lanes * len(chunks)
    try:
        while t < steps:
            ks, keep, done = _plan(t, budget, steps, every, recorder.records, slots)
            tic = time.perf_counter()
            t_arr = np.asarray(t, dtype=_step_dtype())
            new = [segment_fn(carry, t_arr, ks, keep, inp) for carry, inp in zip(carries, inputs)]
            dispatch = time.perf_counter() - tic  # host time to launch every chunk (the runs are asynchronous)
            if recorder.records:
                fetched = jax.device_get([rec for _, rec in new])
                for c, rec in enumerate(fetched):
                    records[c].append(jax.tree.map(lambda a: a[keep], rec))
            else:
                jax.block_until_ready([carry for carry, _ in new])
            carries = [carry for carry, _ in new]
            elapsed = time.perf_counter() - tic
            t += done
            if t >= steps:
                break
            if budget > 1:  # the first pass includes compilation: size the next ones from the others
                rate = done / max(elapsed, 1e-6)  # steps per second for all chunks, launch costs included
                eta = (steps - t) / rate
                if eta + (time.perf_counter() - started) > LONG_RUN_SECONDS and not confirm:
                    raise ValueError(
                        f"{label}: this run would take about {_duration(eta)} ({steps:.3g} steps × "
                        f"{total_lanes} particles at {rate * total_lanes:.3g} particle-steps/s measured); "
                        "pass confirm=True to run it anyway, or lower steps / the number of particles"
                    )
                if bar is None and _wants_bar(progress, eta, time.perf_counter() - started):
                    bar = _progress_bar(progress, label, steps)
                # size the next pass from the compute rate alone: launching many small chunks costs the
                # same whatever the pass length, so it must not shrink the passes
                compute_rate = done / max(elapsed - dispatch, 1e-4)
                budget = int(min(max(done // 2, 1, compute_rate * PASS_SECONDS), 8 * max(done, 1)))
            else:
                budget = 32
            if bar is not None:
                bar.n = t
                bar.set_postfix_str(f"{total_lanes * done / max(elapsed, 1e-9):.3g} particle-steps/s", refresh=False)
                bar.refresh()
    except KeyboardInterrupt as err:
        if bar is not None:
            bar.close()
        out = _collect(carries, records, sizes, recorder)
        raise Interrupted(
            f"{label}: stopped by Ctrl-C after {t} of {steps} steps ({100 * t / steps:.3g} %); "
            "the state reached is in this exception's .partial",
            t, steps, Output(out, t),
        ) from err
    if bar is not None:
        bar.n = t
        bar.close()
    return Output(_collect(carries, records, sizes, recorder), t)


def _duration(seconds: float) -> str:
    if seconds < 120:
        return f"{seconds:.0f} s"
    if seconds < 2 * 3600:
        return f"{seconds / 60:.0f} min"
    if seconds < 2 * 86400:
        return f"{seconds / 3600:.1f} h"
    return f"{seconds / 86400:.1f} days"


def _collect(carries, records, sizes, recorder) -> list:
    """Host outputs per chunk: end state, divergence steps, the recorder's outputs, stacked records."""
    outs = []
    host = jax.device_get(carries)
    for (w, state, diverged_at, extra), recs, n in zip(host, records, sizes):
        momentum = getattr(state, "momentum", None)
        out = {
            "final": np.stack(w)[:, :n],
            "momentum": None if momentum is None else np.stack(momentum)[:, :n],
            "diverged_at": np.asarray(diverged_at)[:n],
        }
        finished = recorder.finish(extra)
        if recs:
            finished.update(jax.tree.map(lambda *a: np.concatenate(a), *recs))
        for name, value in finished.items():
            out[name] = value[..., :n] if name in recorder.lane_keys else value
        outs.append(out)
    return outs
