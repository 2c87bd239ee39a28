"""Many-particle runs with statistics computed inside the scan (the ``stats=`` mode of ``simulate``).

``simulate(problem, opt, hp, x0, steps, noise=..., particles=P, stats=particle_stats(...))`` runs
``P`` particles from every initial point under every hyperparameter setting, in chunks of
``chunk_size`` lanes, and never holds a trajectory: every ``every`` steps each chunk reduces its
lanes to *sums* —

* ``count`` — finite (non-diverged) particles,
* ``s1 = Σ (w − ref)``, ``s2 = Σ (w − ref)(w − ref)ᵀ`` — first and second moments about the
  reference point ``ref`` (float64 sums when x64 is on, whatever the run's dtype),
* a histogram of the loss on fixed ``loss_edges`` (integer counts),
* the number of particles that have left the ball ``‖w − ref‖ > radius`` / reached the level
  ``f(w) ≤ level`` at least once (checked at *every* step; a particle that diverges counts as
  having left the ball),

and each particle's first exit / crossing step is kept (int32 per particle).

Exact combination across chunks: integer counts add exactly; the float sums of each chunk are kept
separately and combined with ``math.fsum`` (exactly rounded, so independent of the order and the
grouping of chunks). Chunk ``c`` of a setting holds particles ``c·chunk … (c+1)·chunk − 1``, and
particle ``p`` draws its noise from (seed, step, p) alone (:mod:`samdyn.engine`), so with the same
seed and chunk size the results are bit-identical whether the particles come in one call or in
several (``first_chunk=`` and :meth:`ParticleStats.merge`); each particle's path is the same for
any chunk size. All settings of a grid see the same draws (common random numbers: differences
between ρ, γ or B are not blurred by independent noise) unless ``common_noise=False``.

This module is a thin caller of :mod:`samdyn.engine`: :func:`run_particles` lays out the chunks
and :class:`_Statistics` is its recorder.

Loss quantiles come from the merged histogram, linearly interpolated inside a bin: exact to the
bin width (choose ``loss_edges`` accordingly); a quantile that falls in the under/overflow bin is
NaN.

Memory: per chunk, the state is ``O(chunk · d)`` and the records ``O(T · (d² + bins))`` with
``T = steps // every``; the host keeps ``n_chunks · T · (d + d²)`` float64 sums per setting, running
integer totals (counts, histogram), the final positions (d floats per particle) and one int32 per
particle and event. E.g. 10⁶ particles × 10⁴ steps in 2-D with ``every=10`` and 65 bins: 245 chunks
× 1000 × 6 × 8 B ≈ 12 MB of sums, 0.5 MB of histogram, 16 MB of final positions and 8 MB of exit
steps — the compiled program and JAX dominate (see ``experiments/bench_stochastic.py`` for the
measured peak RSS).
"""

from __future__ import annotations

import dataclasses
import functools
import math

import jax
import jax.numpy as jnp
import numpy as np

from . import checks, engine
from .optim import HParams

__all__ = ["StatsSpec", "ParticleStats", "particle_stats"]


@dataclasses.dataclass(frozen=True)
class StatsSpec:
    """What to measure over particles (see :func:`particle_stats`); hashable, values as tuples."""

    reference: tuple | None = None
    radius: float | None = None
    level: float | None = None
    loss_edges: tuple | None = None


def particle_stats(reference=None, radius=None, level=None, loss_edges=None) -> StatsSpec:
    """A statistics spec for ``simulate(..., particles=P, stats=...)``.

    Args:
        reference: point (d,) about which moments, MSD and the ball are taken (default: each
            setting's initial point).
        radius: ball radius > 0 for first-exit times (None: not tracked).
        level: loss level; the first step with ``f(w) ≤ level`` is recorded (None: not tracked).
        loss_edges: ascending histogram edges (≥ 2) for the loss distribution / quantiles.

    >>> particle_stats(radius=1.0).radius
    1.0
    """
    if reference is not None:
        ref = np.asarray(reference, dtype=np.float64)
        if ref.ndim != 1 or not np.all(np.isfinite(ref)):
            raise ValueError(f"particle_stats: reference must be a finite point of shape (d,), got {reference!r}")
        reference = tuple(ref.tolist())
    if radius is not None:
        radius = float(radius)
        if not (np.isfinite(radius) and radius > 0):
            raise ValueError(f"particle_stats: radius must be finite and > 0, got {radius!r}")
    if level is not None:
        level = float(level)
        if not np.isfinite(level):
            raise ValueError(f"particle_stats: level must be finite, got {level!r}")
    if loss_edges is not None:
        e = np.asarray(loss_edges, dtype=np.float64)
        if e.ndim != 1 or e.size < 2 or not np.all(np.isfinite(e)) or np.any(np.diff(e) <= 0):
            raise ValueError("particle_stats: loss_edges must be a finite, strictly increasing 1-D array of >= 2 edges")
        loss_edges = tuple(e.tolist())
    return StatsSpec(reference, radius, level, loss_edges)


def _exact_sum(a: np.ndarray, axis: int) -> np.ndarray:
    """Exactly rounded sum along ``axis`` (math.fsum): independent of order and grouping."""
    a = np.moveaxis(np.asarray(a, dtype=np.float64), axis, -1)
    flat = a.reshape(-1, a.shape[-1])
    out = np.fromiter((math.fsum(row) for row in flat), dtype=np.float64, count=flat.shape[0])
    return out.reshape(a.shape[:-1])


@dataclasses.dataclass(frozen=True)
class ParticleStats:
    """Streaming statistics of a many-particle run; ``S`` = the run's setting shape
    (``hp_shape + x0_batch``), ``T`` = number of records, ``C`` = chunks per setting.

    Attributes:
        times: steps of the records, (T,).
        reference: the reference point per setting, (*S, d).
        count: finite particles at each record, (*S, T) int64.
        s1_chunks: per-chunk Σ (w − ref), (*S, C, T, d) float64.
        s2_chunks: per-chunk Σ (w − ref)(w − ref)ᵀ, (*S, C, T, d, d) float64.
        loss_hist: loss histogram counts, (*S, T, len(edges) + 1) int64 (bin 0 = below the first
            edge, last bin = at or above the last), or None.
        exited: particles that have left the ball by each record, (*S, T) int64, or None.
        crossed: particles that have reached the level by each record, (*S, T) int64, or None.
        exit_step: first step outside the ball per particle, −1 if never, (*S, P) int32, or None.
        cross_step: first step with f ≤ level per particle, (*S, P) int32, or None.
        particles: P; chunk_size; first_chunk: index of the first chunk; spec: the StatsSpec.
    """

    times: np.ndarray
    reference: np.ndarray
    count: np.ndarray
    s1_chunks: np.ndarray
    s2_chunks: np.ndarray
    loss_hist: np.ndarray | None
    exited: np.ndarray | None
    crossed: np.ndarray | None
    exit_step: np.ndarray | None
    cross_step: np.ndarray | None
    particles: int
    chunk_size: int
    first_chunk: int
    spec: StatsSpec

    def __repr__(self) -> str:
        fields = ", ".join(f"{f.name}={checks.summary(getattr(self, f.name))}" for f in dataclasses.fields(self))
        return f"ParticleStats({fields})"

    # ---- combined sums ------------------------------------------------------------------------
    @functools.cached_property
    def s1(self) -> np.ndarray:
        """Σ (w − ref) over all particles, (*S, T, d) (exactly rounded over chunks)."""
        return _exact_sum(self.s1_chunks, self.s1_chunks.ndim - 3)

    @functools.cached_property
    def s2(self) -> np.ndarray:
        """Σ (w − ref)(w − ref)ᵀ, (*S, T, d, d)."""
        return _exact_sum(self.s2_chunks, self.s2_chunks.ndim - 4)

    def _n(self, extra: int):
        n = self.count.astype(np.float64)
        return n.reshape(n.shape + (1,) * extra)

    @property
    def mean(self) -> np.ndarray:
        """Mean position over finite particles, (*S, T, d)."""
        return self.reference[..., None, :] + self.s1 / self._n(1)

    @property
    def second_moment(self) -> np.ndarray:
        """E[(w − ref)(w − ref)ᵀ] over particles, (*S, T, d, d)."""
        return self.s2 / self._n(2)

    @property
    def cov(self) -> np.ndarray:
        """Sample covariance over particles (ddof = 1), (*S, T, d, d)."""
        n = self._n(2)
        m = self.s1 / self._n(1)
        return (self.s2 - n * m[..., :, None] * m[..., None, :]) / (n - 1)

    @property
    def msd(self) -> np.ndarray:
        """Mean squared displacement from the reference, E‖w − ref‖², (*S, T)."""
        return np.trace(self.s2, axis1=-2, axis2=-1) / self._n(0)

    def width(self, directions, *, central: bool = False) -> np.ndarray:
        """Spread along each direction (e.g. Hessian eigenvectors of a critical point): sqrt(vᵀ M v).

        Args:
            directions: (d, k) matrix whose columns are the directions (normalised here).
            central: use the covariance (spread about the mean) instead of the second moment about
                the reference (spread about the critical point, the default).

        Returns:
            (*S, T, k).
        """
        d = self.reference.shape[-1]
        V = checks.array("ParticleStats.width", "directions", directions, ndim=(1, 2))
        if V.ndim == 1:
            V = V[:, None]
        if V.shape[0] != d:
            checks.fail("ParticleStats.width", "directions", f"a ({d}, k) matrix of column directions (d = {d})", V)
        norms = np.linalg.norm(V, axis=0, keepdims=True)
        if np.any(norms == 0):
            checks.fail("ParticleStats.width", "directions", "non-zero columns", V)
        V = V / norms
        M = self.cov if central else self.second_moment
        return np.sqrt(np.einsum("...ij,ik,jk->...k", M, V, V))

    @property
    def fraction_exited(self) -> np.ndarray:
        """Fraction of all P particles that have left the ball by each record, (*S, T)."""
        if self.exited is None:
            raise ValueError("ParticleStats: no radius was given")
        return self.exited / self.particles

    @property
    def fraction_crossed(self) -> np.ndarray:
        """Fraction of particles that have reached the loss level by each record, (*S, T)."""
        if self.crossed is None:
            raise ValueError("ParticleStats: no level was given")
        return self.crossed / self.particles

    def loss_quantiles(self, q) -> np.ndarray:
        """Loss quantiles from the histogram (exact to one bin width), (*S, T, len(q))."""
        if self.loss_hist is None:
            raise ValueError("ParticleStats: no loss_edges were given")
        q = np.atleast_1d(np.asarray(q, dtype=np.float64))
        if np.any((q < 0) | (q > 1)):
            raise ValueError("loss_quantiles: q must lie in [0, 1]")
        edges = np.asarray(self.spec.loss_edges)
        h = self.loss_hist.astype(np.float64)
        cum = np.cumsum(h, axis=-1)  # (..., E+1)
        total = cum[..., -1:]
        target = q * total  # (..., nq)
        out = np.full(target.shape, np.nan)
        # interior bins j = 1..E-1 span [edges[j-1], edges[j])
        for k in range(q.size):
            t = target[..., k : k + 1]
            j = np.sum(cum < t, axis=-1)  # first bin whose cumulative count reaches t
            j = np.where(t[..., 0] <= 0, 1, j)
            inside = (j >= 1) & (j <= edges.size - 1)
            jc = np.clip(j, 1, edges.size - 1)
            below = np.take_along_axis(cum, (jc - 1)[..., None], axis=-1)[..., 0]
            cnt = np.take_along_axis(h, jc[..., None], axis=-1)[..., 0]
            frac = np.where(cnt > 0, (t[..., 0] - below) / np.where(cnt > 0, cnt, 1.0), 0.0)
            val = edges[jc - 1] + np.clip(frac, 0, 1) * (edges[jc] - edges[jc - 1])
            out[..., k] = np.where(inside, val, np.nan)
        return out

    # ---- combination ------------------------------------------------------------------------
    def merge(self, other: "ParticleStats") -> "ParticleStats":
        """Combine two runs of the same spec that cover adjacent chunk ranges (exact: bit-identical
        to one run over both ranges)."""
        a, b = (self, other) if self.first_chunk <= other.first_chunk else (other, self)
        n_a = a.s1_chunks.shape[-3]
        if a.chunk_size != b.chunk_size or a.spec != b.spec or not np.array_equal(a.times, b.times):
            raise ValueError("ParticleStats.merge: runs differ in chunk size, spec or record times")
        if not np.array_equal(a.reference, b.reference) or a.count.shape != b.count.shape:
            raise ValueError("ParticleStats.merge: runs differ in reference or settings")
        if a.first_chunk + n_a != b.first_chunk or a.particles != n_a * a.chunk_size:
            raise ValueError(
                "ParticleStats.merge: the first run must cover whole chunks ending where the second begins"
                f" (chunks {a.first_chunk}..{a.first_chunk + n_a - 1}, {a.particles} particles; second starts at {b.first_chunk})"
            )

        def add(x, y):
            return None if x is None else x + y

        def cat(x, y, axis):
            return None if x is None else np.concatenate([x, y], axis=axis)

        return ParticleStats(
            times=a.times,
            reference=a.reference,
            count=a.count + b.count,
            s1_chunks=cat(a.s1_chunks, b.s1_chunks, -3),
            s2_chunks=cat(a.s2_chunks, b.s2_chunks, -4),
            loss_hist=add(a.loss_hist, b.loss_hist),
            exited=add(a.exited, b.exited),
            crossed=add(a.crossed, b.crossed),
            exit_step=cat(a.exit_step, b.exit_step, -1),
            cross_step=cat(a.cross_step, b.cross_step, -1),
            particles=a.particles + b.particles,
            chunk_size=a.chunk_size,
            first_chunk=a.first_chunk,
            spec=a.spec,
        )


@dataclasses.dataclass(frozen=True)
class _Statistics:
    """Recorder (see :mod:`samdyn.engine` for the protocol): per-particle first exit / crossing
    steps in the carry, particle sums at every record time.

    ``args``: ``ref`` (d,), ``valid`` (lanes,) bool (padding lanes are False), ``radius``, ``level``
    (scalars) and ``edges`` (histogram edges).
    """

    has_radius: bool
    has_level: bool
    n_edges: int
    records = True
    lane_keys = ("exit_at", "cross_at")

    def init(self, lanes, args):
        never = jnp.full((lanes,), -1, dtype=jnp.int32)
        return {"exit_at": never, "cross_at": never}

    def on_step(self, problem, extra, w, t, args):
        t32 = jnp.asarray(t, jnp.int32)
        exit_at, cross_at = extra["exit_at"], extra["cross_at"]
        if self.has_radius:
            dist2 = functools.reduce(jnp.add, [(c - args["ref"][i]) ** 2 for i, c in enumerate(w)])
            exit_at = jnp.where((exit_at < 0) & ~(dist2 <= args["radius"] ** 2), t32, exit_at)
        if self.has_level:
            loss = jax.vmap(problem.loss, in_axes=-1)(jnp.stack(w))
            cross_at = jnp.where((cross_at < 0) & (loss <= args["level"]), t32, cross_at)
        return {"exit_at": exit_at, "cross_at": cross_at}

    def record(self, problem, w, info, extra, args):
        acc = jnp.float64 if jax.config.jax_enable_x64 else jnp.float32
        w = jnp.stack(w)  # (d, lanes)
        valid, ref = args["valid"], args["ref"]
        ok = valid & jnp.all(jnp.isfinite(w), axis=0)
        y = jnp.where(ok[None, :], (w - ref[:, None]).astype(acc), 0.0)
        rec = {"count": jnp.sum(ok.astype(jnp.int32)), "s1": jnp.sum(y, axis=1), "s2": y @ y.T}
        if self.n_edges:
            idx = jnp.searchsorted(args["edges"], jax.vmap(problem.loss, in_axes=-1)(w), side="right")
            rec["hist"] = jnp.zeros((self.n_edges + 1,), jnp.int32).at[idx].add(ok.astype(jnp.int32))
        if self.has_radius:
            rec["exited"] = jnp.sum((valid & (extra["exit_at"] >= 0)).astype(jnp.int32))
        if self.has_level:
            rec["crossed"] = jnp.sum((valid & (extra["cross_at"] >= 0)).astype(jnp.int32))
        return rec

    def finish(self, extra):
        return dict(extra)


def run_particles(problem, opt, noise, hp_np: HParams, hp_shape, x0, steps, every, spec: StatsSpec, particles: int,
                  chunk: int, first_chunk: int, seed: int, dtype: str, *, common_noise: bool = True,
                  divergence_bound: float = engine.DEFAULT_DIVERGENCE_BOUND, progress=None,
                  confirm: bool = False) -> dict:
    """Host side of a stats run (called by ``simulate`` after validation): one chunk list for the
    engine, then per-setting statistics. Returns arrays for a ``Run`` (``stats``, ``final``,
    ``diverged_at``, ``settings_shape``, ``steps``)."""
    d = x0.shape[-1]
    x0_batch = x0.shape[:-1]
    settings_shape = tuple(hp_shape) + tuple(x0_batch)
    n_hp, n_x = math.prod(hp_shape), math.prod(x0_batch)
    n_settings = n_hp * n_x
    hp_flat = [np.broadcast_to(leaf, hp_shape).reshape(-1) for leaf in hp_np]
    x_flat = x0.reshape(n_x, d)
    n_chunks = -(-particles // chunk)
    n_edges = 0 if spec.loss_edges is None else len(spec.loss_edges)
    recorder = _Statistics(spec.radius is not None, spec.level is not None, n_edges)
    cast = np.dtype(dtype).type
    radius, level = cast(spec.radius or 0.0), cast(spec.level or 0.0)
    edges = np.asarray(spec.loss_edges if n_edges else (0.0,), dtype=dtype)
    refs = [np.asarray(spec.reference if spec.reference is not None else x_flat[s % n_x], dtype=np.float64)
            for s in range(n_settings)]
    itemsize = np.dtype(dtype).itemsize
    engine.check_memory("simulate", engine.estimate_bytes(n_settings * particles, d, itemsize, 0, 0)
                        + n_settings * n_chunks * (steps // every) * (d + d * d + n_edges + 4) * 8, confirm,
                        "raise every= or run fewer particles / settings")

    chunks = []
    for s in range(n_settings):
        ih, ix = divmod(s, n_x)
        for c in range(n_chunks):
            n_valid = min(chunk, particles - c * chunk)
            chunks.append(engine.Chunk(
                x=np.repeat(x_flat[ix][None, :], n_valid, axis=0),
                hp=HParams(*(leaf[ih] for leaf in hp_flat)),  # one setting per chunk: scalars
                particle=(first_chunk + c) * chunk + np.arange(n_valid),
                stream=np.full((n_valid,), s),
                args={"ref": refs[s].astype(dtype), "radius": radius, "level": level, "edges": edges},
            ))
    program = engine.Program(problem, opt, noise, recorder, common_noise, divergence_bound)
    try:
        out = engine.run(program, chunks, steps=steps, every=every, seed=seed, lanes=min(chunk, particles), dtype=dtype,
                         progress=progress, confirm=confirm, label="simulate")
    except engine.Interrupted as stop:
        stop.partial = _assemble(stop.partial, spec, refs, settings_shape, n_chunks, particles, chunk,
                                 first_chunk, every, d)
        raise
    return _assemble(out, spec, refs, settings_shape, n_chunks, particles, chunk, first_chunk, every, d)


def _assemble(out: engine.Output, spec, refs, settings_shape, n_chunks, particles, chunk, first_chunk, every, d) -> dict:
    """Per-setting statistics from the engine's per-chunk outputs (settings outer, chunks inner)."""
    n_settings = len(refs)
    per_setting = [out.chunks[s * n_chunks:(s + 1) * n_chunks] for s in range(n_settings)]

    def stack(name, lanes=False):
        rows = [np.concatenate([o[name] for o in outs], axis=-1) if lanes else np.stack([o[name] for o in outs])
                for outs in per_setting]
        arr = np.stack(rows)
        return arr.reshape(settings_shape + arr.shape[1:])

    def total(name):  # integer counts add exactly in any order
        arr = np.stack([sum(np.asarray(o[name], dtype=np.int64) for o in outs) for outs in per_setting])
        return arr.reshape(settings_shape + arr.shape[1:])

    T = out.steps_done // every
    stats = ParticleStats(
        times=every * np.arange(1, T + 1),
        reference=np.stack(refs).reshape(settings_shape + (d,)),
        count=total("count"),
        s1_chunks=stack("s1").astype(np.float64),  # (*S, C, T, d)
        s2_chunks=stack("s2").astype(np.float64),
        loss_hist=total("hist") if spec.loss_edges is not None else None,
        exited=total("exited") if spec.radius is not None else None,
        crossed=total("crossed") if spec.level is not None else None,
        exit_step=stack("exit_at", lanes=True) if spec.radius is not None else None,
        cross_step=stack("cross_at", lanes=True) if spec.level is not None else None,
        particles=particles,
        chunk_size=chunk,
        first_chunk=first_chunk,
        spec=spec,
    )
    final = np.moveaxis(stack("final", lanes=True), -2, -1)  # (*S, P, d)
    return {"stats": stats, "final": final, "diverged_at": stack("diverged_at", lanes=True),
            "settings_shape": settings_shape + (particles,), "steps": out.steps_done}
