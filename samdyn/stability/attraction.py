"""Basins of attraction: where runs from a grid of starts end (fixed points, cycles, divergence)."""

from __future__ import annotations

import dataclasses
import functools

import jax
import jax.numpy as jnp
import numpy as np

from ..landscapes import Landscape
from ..optim import Optimizer
from ..simulation import simulate
from ._common import _check_opt, _map, _scalar_hp

__all__ = ["DIVERGED", "UNSETTLED", "CYCLE", "Basins", "basins"]

#: Basin labels that are not critical-point indices.
DIVERGED, UNSETTLED, CYCLE = -1, -2, -3


@dataclasses.dataclass(frozen=True)
class Basins:
    """Where each run from a grid of starts ends.

    Attributes:
        labels: int array (start-grid shape): i ≥ 0 → the end state's *centre* is within ``tol`` of
            ``critical_points[i]`` (the end point itself for a fixed point; the mean of the orbit for a
            p-cycle, e.g. SAM's ±a·v₁ around a minimum or saddle; the mean of the next ``max_period``
            iterates otherwise); ``DIVERGED`` (−1: non-finite or past the blow-up bound);
            ``UNSETTLED`` (−2: not near any critical point and not periodic); ``CYCLE`` (−3: a p-cycle,
            p ≥ 2, away from every critical point).
        period: int array: the smallest p ≤ ``max_period`` with ‖Tᵖz − z‖ ≤ cycle_tol·max(1, ‖z‖)
            (1: a fixed point), 0 when none (still moving, or a longer / non-periodic oscillation).
        cycling: bool, ``period ≥ 2``.
        final: end points, shape (*grid, d).
        centre: the point used for the assignment, shape (*grid, d).
        critical_points: the landscape's critical points (label order).
        diverged: bool, the run became non-finite or left simulate's ±divergence_bound (1e12).
    """

    labels: np.ndarray
    period: np.ndarray
    cycling: np.ndarray
    final: np.ndarray
    centre: np.ndarray
    critical_points: tuple
    diverged: np.ndarray


@functools.lru_cache(maxsize=16)
def _orbit_program(optimizer, problem, max_period):
    T = _map(optimizer, problem)

    def one(z, hp, cycle_tol):
        zs = [z]
        for _ in range(max_period):
            zs.append(T(zs[-1], hp))
        zs = jnp.stack(zs)  # (K+1, 2d)
        d = z.shape[0] // 2
        ret = jnp.linalg.norm(zs[1:] - z[None, :], axis=1)  # ‖Tᵖz − z‖, p = 1..K
        ok = ret <= cycle_tol * jnp.maximum(1.0, jnp.linalg.norm(z))
        period = jnp.where(jnp.any(ok), jnp.argmax(ok) + 1, 0)
        steps = jnp.arange(max_period)
        weights = jnp.where(period > 0, (steps < period).astype(z.dtype) / jnp.maximum(period, 1), 1.0 / max_period)
        centre = jnp.sum(weights[:, None] * zs[:-1, :d], axis=0)
        return period, centre

    return jax.jit(jax.vmap(one, in_axes=(0, None, None)))


def basins(
    landscape: Landscape,
    optimizer: Optimizer,
    hp,
    x0,
    steps: int,
    *,
    tol: float | None = None,
    max_period: int = 8,
    cycle_tol: float | None = None,
    dtype: str = "float64",
    chunk_size: int | None = None,
) -> Basins:
    """Basins of attraction: run ``simulate`` from every start and assign each end to a critical point.

    After the run, ``max_period`` more steps of the same map (the optimizer's step, momentum buffer
    included) give each end state's period and centre (see :class:`Basins`); the centre is assigned
    to the nearest critical point within ``tol``.

    Args:
        landscape: a Landscape (its ``critical_points()`` are the labels).
        optimizer: any optimizer; hp: scalar hparams.
        x0: starts, shape (*grid, d) (e.g. ``np.stack(np.meshgrid(xs, ys, indexing="ij"), -1)``).
        steps: steps per run.
        tol: distance to a critical point that counts as "there" (default 1e-3 × the domain's largest side).
        max_period: longest period looked for (≥ 1).
        cycle_tol: relative return tolerance ‖Tᵖz − z‖ ≤ cycle_tol·max(1, ‖z‖) (default 1e-9 in
            float64, 1e-6 in float32: a float32 end state is rounded to ~6e-8).
        dtype, chunk_size: passed to ``simulate``.

    >>> import samdyn as sd
    >>> b = basins(sd.landscapes.get("quadratic", eigenvalues=(1, 2)), sd.optim.gd(), sd.optim.hparams(lr=0.1), [[1.0, 1.0]], 400)
    >>> b.labels.tolist(), b.period.tolist()
    ([0], [1])
    """
    if not isinstance(landscape, Landscape):
        raise TypeError(f"basins: landscape must be a Landscape, got {landscape!r}")
    _check_opt(optimizer)
    hp = _scalar_hp(hp)
    x0 = np.asarray(x0, dtype=np.float64)
    if x0.ndim < 1 or x0.shape[-1] != landscape.dim:
        raise ValueError(f"basins: x0 must have shape (..., {landscape.dim}), got {x0.shape}")
    if isinstance(max_period, bool) or not isinstance(max_period, int) or max_period < 1:
        raise ValueError(f"basins: max_period must be an integer >= 1, got {max_period!r}")
    span = max(b - a for a, b in landscape.domain)
    tol = 1e-3 * span if tol is None else float(tol)
    if not tol > 0:
        raise ValueError(f"basins: tol must be > 0, got {tol}")
    if cycle_tol is None:
        cycle_tol = 1e-6 if dtype == "float32" else 1e-9
    cps = landscape.critical_points()
    run = simulate(landscape, optimizer, hp, x0, steps, dtype=dtype, chunk_size=chunk_size)
    d = landscape.dim
    final = run.final.reshape(-1, d)
    mom = run.final_momentum.reshape(-1, d)
    finite = np.all(np.isfinite(final), axis=-1) & np.all(np.isfinite(mom), axis=-1) & ~run.diverged.reshape(-1)
    z = np.where(finite[:, None], np.concatenate([final, mom], axis=1), 0.0)
    period, centre = (np.asarray(a) for a in _orbit_program(optimizer, landscape, max_period)(jnp.asarray(z), hp, float(cycle_tol)))
    centre_ok = finite & np.all(np.isfinite(centre), axis=-1)
    period = np.where(centre_ok, period, 0)
    labels = np.full(final.shape[0], UNSETTLED, dtype=np.int64)
    near = np.zeros(final.shape[0], dtype=bool)
    if cps:
        P = np.stack([c.point for c in cps])  # (k, d)
        dist = np.linalg.norm(np.where(centre_ok[:, None], centre, np.inf)[:, None, :] - P[None], axis=-1)
        nearest = np.argmin(dist, axis=1)
        near = dist[np.arange(final.shape[0]), nearest] <= tol
        labels = np.where(near, nearest, labels)
    labels = np.where(~near & (period >= 2), CYCLE, labels)
    labels = np.where(~finite, DIVERGED, labels)
    grid = x0.shape[:-1]
    return Basins(
        labels.reshape(grid), period.reshape(grid), (period >= 2).reshape(grid), run.final, centre.reshape(grid + (d,)), cps,
        (~finite).reshape(grid),
    )
