"""Sharpness measures for any loss and parameters: λ_max, the Hessian trace, worst-case and m-sharpness.

All are pure JAX (jittable and vmappable: usable inside a training program's records and in
sweeps) and take ``loss(params) -> scalar`` on any pytree:

* :func:`lambda_max` — the largest Hessian eigenvalue by Lanczos (``samdyn.hessian.extreme_eigs``).
* :func:`hessian_trace` — Hutchinson's estimator ``mean_i zᵢᵀ H zᵢ`` with Rademacher ``zᵢ``
  (unbiased; variance ``2 Σ_{i≠j} H_ij² / samples``; exact when H is diagonal).
* :func:`worst_case_sharpness` — ``max_{‖e‖≤ρ} L(w + e) − L(w)`` by projected ascent:
  ``e ← Π_ρ(e + ρ ∇L(w + e)/‖∇L(w + e)‖)`` from ``e = ρ ∇L(w)/‖∇L(w)‖`` (a random unit direction
  when ∇L(w) = 0), the best iterate returned (a lower bound that tightens with ``steps``).
* :func:`m_sharpness` — the mean over micro-batches of ``m`` samples of each micro-batch's
  worst-case sharpness (Foret et al.; Andriushchenko & Flammarion 2022).
"""

from __future__ import annotations

from typing import Callable

import jax
import jax.numpy as jnp
import numpy as np
from jax.flatten_util import ravel_pytree

from .. import checks
from ..hessian import extreme_eigs, hvp

__all__ = ["lambda_max", "hessian_trace", "worst_case_sharpness", "m_sharpness"]


def _key(key):
    if isinstance(key, (int, np.integer)) and not isinstance(key, bool):
        return jax.random.PRNGKey(int(key))
    return key


def lambda_max(loss: Callable, params, *, m: int | None = None, key=0):
    """The largest eigenvalue of the Hessian of ``loss`` at ``params`` (Lanczos, Krylov dimension ``m``)."""
    return extreme_eigs(loss, params, 1, m=m, key=key)[1][0]


def hessian_trace(loss: Callable, params, *, samples: int = 100, key=0):
    """Hutchinson's estimate of ``tr ∇²loss(params)`` from ``samples`` Rademacher probes.

    >>> import jax.numpy as jnp
    >>> float(hessian_trace(lambda w: jnp.sum(w ** 2 * jnp.arange(1.0, 4.0)), jnp.ones(3), samples=3))
    12.0
    """
    samples = checks.integer("hessian_trace", "samples", samples, low=1)
    flat, unravel = ravel_pytree(params)
    z = jax.random.rademacher(_key(key), (samples, flat.size), dtype=flat.dtype)

    def quad(v):
        return jnp.vdot(v, ravel_pytree(hvp(loss, params, unravel(v)))[0])

    return jnp.mean(jax.lax.map(quad, z))


def worst_case_sharpness(loss: Callable, params, rho, *, steps: int = 20, key=0):
    """``max_{‖e‖ ≤ ρ} loss(params + e) − loss(params)`` by ``steps`` projected normalised ascent steps.

    Args:
        loss: scalar function of a pytree.
        params: the point.
        rho: the radius (a scalar, may be traced).
        steps: ascent steps (gradient evaluations: ``steps + 1``).
        key: PRNG key or int for the start direction when the gradient at ``params`` vanishes.

    Returns:
        The best ``loss(params + e) − loss(params)`` found (≥ 0 up to round-off; a lower bound).

    >>> import jax.numpy as jnp
    >>> f = lambda w: 0.5 * (2 * w[0] ** 2 - w[1] ** 2)     # at 0: max over the ball = ρ²·λ_max/2
    >>> round(float(worst_case_sharpness(f, jnp.zeros(2), 0.1, steps=50)), 6)
    0.01
    """
    steps = checks.integer("worst_case_sharpness", "steps", steps, low=1)
    flat, unravel = ravel_pytree(params)
    base = loss(params)

    def f(v):
        return loss(unravel(flat + v))

    grad = jax.grad(f)

    def unit(v):
        n = jnp.linalg.norm(v)
        return v / jnp.where(n > 0, n, 1.0), n

    g0, n0 = unit(grad(jnp.zeros_like(flat)))
    start = unit(jax.random.normal(_key(key), flat.shape, flat.dtype))[0]
    e0 = rho * jnp.where(n0 > 0, g0, start)

    def body(carry, _):
        e, best = carry
        e = e + rho * unit(grad(e))[0]
        n = jnp.linalg.norm(e)
        e = e * jnp.where(n > rho, rho / jnp.where(n > 0, n, 1.0), 1.0)
        return (e, jnp.maximum(best, f(e))), None

    (e, best), _ = jax.lax.scan(body, (e0, f(e0)), None, length=steps)
    return best - base


def m_sharpness(loss: Callable, params, batch: tuple, m: int, rho, *, steps: int = 20, key=0):
    """Mean over the micro-batches of ``m`` samples of their worst-case sharpness.

    Args:
        loss: ``loss(params, *micro_batch) -> scalar``.
        params: the point.
        batch: arrays with the samples on their leading axis (a multiple of ``m`` of them).
        m: micro-batch size.
        rho, steps, key: as in :func:`worst_case_sharpness`.
    """
    m = checks.integer("m_sharpness", "m", m, low=1)
    size = np.shape(batch[0])[0]
    if size % m or any(np.shape(b)[0] != size for b in batch):
        checks.fail("m_sharpness", "batch", f"arrays with the same number of samples, a multiple of m={m}",
                    [np.shape(b) for b in batch])
    micro = tuple(jnp.reshape(b, (size // m, m) + tuple(np.shape(b)[1:])) for b in batch)

    def one(*mb):
        return worst_case_sharpness(lambda p: loss(p, *mb), params, rho, steps=steps, key=key)

    return jnp.mean(jax.vmap(one)(*micro))
