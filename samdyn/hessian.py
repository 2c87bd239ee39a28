"""Hessian spectra of a loss on a pytree of parameters: products, both ends by Lanczos, dense.

* :func:`hvp` — one Hessian-vector product, forward-over-reverse (``jvp`` of ``grad``): the cost
  of about two gradients, no Hessian in memory.
* :func:`extreme_eigs` — the ``k`` smallest *and* ``k`` largest eigenvalues (signed) by Lanczos
  with full reorthogonalisation and a Rayleigh–Ritz step. Near a saddle the most negative
  eigenvalue matters as much as the largest one; power iteration on the largest magnitude would
  return whichever of the two is bigger in absolute value, so it is not used.
* :func:`dense_eigvalsh` — the whole spectrum through the dense Hessian (small models only).

Why a hand-written Lanczos rather than ``scipy.sparse.linalg.eigsh``: the training loop in
``samdyn.nets`` measures the spectrum *inside* its jitted, ``vmap``-ed ``lax.scan`` (many nets at
once), where a host call-back into ARPACK cannot run. The pure-JAX version below is short
(m Hessian-vector products, Gram–Schmidt twice against the stored basis, an ``m × m`` ``eigh``),
jittable and vmappable; its tests compare it with the dense spectrum.

Details of :func:`extreme_eigs`: the Krylov basis ``V`` (``m × n``) and ``HV`` are stored; the
Ritz values are the eigenvalues of ``T = V H Vᵀ`` computed from the stored products (more robust
than the three-term tridiagonal). When the Krylov space is exhausted early (a Hessian with few
distinct eigenvalues, e.g. a deep linear net at the origin) the iteration restarts from a fresh
random vector orthogonalised against the basis, so ``T`` stays the projection of ``H`` on an
orthonormal basis and no spurious zero Ritz values appear. With ``m = n`` the result is the full
spectrum up to round-off.
"""

from __future__ import annotations

from typing import Any, Callable

import jax
import jax.numpy as jnp
from jax.flatten_util import ravel_pytree

__all__ = ["hvp", "extreme_eigs", "lanczos", "dense_hessian", "dense_eigvalsh"]


def hvp(loss: Callable[[Any], Any], params, vector):
    """Hessian-vector product ``∇²loss(params) · vector`` by forward-over-reverse differentiation.

    Args:
        loss: scalar function of a pytree.
        params: the point (pytree).
        vector: a pytree shaped like ``params``.

    Returns:
        A pytree shaped like ``params``.

    >>> import jax.numpy as jnp
    >>> hvp(lambda w: jnp.sum(w**3), jnp.array([1.0, 2.0]), jnp.array([1.0, 1.0])).tolist()
    [6.0, 12.0]
    """
    return jax.jvp(jax.grad(loss), (params,), (vector,))[1]


def _flat_hvp(loss, params):
    """(flat matvec, n, dtype) for the Hessian of ``loss`` at ``params`` on the raveled vector."""
    flat, unravel = ravel_pytree(params)

    def matvec(v):
        return ravel_pytree(hvp(loss, params, unravel(v.astype(flat.dtype))))[0]

    return matvec, flat.shape[0], flat.dtype


def lanczos(matvec: Callable, n: int, m: int, key, dtype=None):
    """Ritz values of a symmetric operator from an ``m``-dimensional Krylov space.

    Full reorthogonalisation (classical Gram–Schmidt, twice), restart on breakdown, and a
    Rayleigh–Ritz step on the stored products. Jittable and vmappable.

    Args:
        matvec: ``v -> A v`` on vectors of shape ``(n,)``.
        n: dimension of the operator.
        m: Krylov dimension, ``1 ≤ m ≤ n``.
        key: PRNG key for the start (and restart) vectors.
        dtype: working dtype (default: the default float type).

    Returns:
        The ``m`` Ritz values in ascending order, shape ``(m,)``.
    """
    if not 1 <= m <= n:
        raise ValueError(f"lanczos: need 1 <= m <= n, got m={m}, n={n}")
    dtype = dtype or jnp.result_type(float)
    starts = jax.random.normal(key, (m, n), dtype=dtype)
    tiny = jnp.asarray(100 * jnp.finfo(dtype).eps, dtype)

    def orthonormalise(w, basis):
        for _ in range(2):
            w = w - basis.T @ (basis @ w)
        return w

    def body(j, carry):
        basis, products, nxt = carry
        basis = basis.at[j].set(nxt)
        av = matvec(nxt).astype(dtype)
        products = products.at[j].set(av)
        w = orthonormalise(av, basis)
        scale = jnp.maximum(jnp.linalg.norm(av), tiny)
        norm = jnp.linalg.norm(w)
        # breakdown (Krylov space exhausted): restart from a fresh random direction
        fresh = orthonormalise(starts[jnp.minimum(j + 1, m - 1)], basis)
        w = jnp.where(norm > 1e3 * tiny * scale, w, fresh)
        w = orthonormalise(w, basis)
        return basis, products, w / jnp.maximum(jnp.linalg.norm(w), tiny)

    v0 = starts[0] / jnp.linalg.norm(starts[0])
    zeros = jnp.zeros((m, n), dtype)
    basis, products, _ = jax.lax.fori_loop(0, m, body, (zeros, zeros, v0))
    t = basis @ products.T
    return jnp.linalg.eigvalsh(0.5 * (t + t.T))


def extreme_eigs(loss: Callable[[Any], Any], params, k: int = 1, *, m: int | None = None, key=0):
    """The ``k`` smallest and ``k`` largest Hessian eigenvalues of ``loss`` at ``params`` (signed).

    Args:
        loss: scalar function of a pytree.
        params: the point (pytree; raveled with ``jax.flatten_util.ravel_pytree``).
        k: how many eigenvalues at each end.
        m: Krylov dimension (default ``min(n, max(4k, 2k + 30))``); ``m = n`` gives the exact
            spectrum up to round-off. The extreme Ritz values converge first; a gap-dependent
            number of iterations is needed for the others.
        key: PRNG key or int seed for the start vector.

    Returns:
        ``(smallest, largest)``: arrays of shape ``(k,)``; ``smallest`` ascending (most negative
        first), ``largest`` descending (largest first).

    >>> import jax.numpy as jnp
    >>> lo, hi = extreme_eigs(lambda w: w[0]**2 - 3 * w[1]**2 + 0.5 * w[2]**2, jnp.zeros(3), k=1)
    >>> round(float(lo[0]), 6), round(float(hi[0]), 6)
    (-6.0, 2.0)
    """
    _, n, dtype = _flat_hvp(loss, params)
    if not isinstance(k, int) or k < 1:
        raise ValueError(f"extreme_eigs: k must be a positive int, got {k!r}")
    if k > n:
        raise ValueError(f"extreme_eigs: k={k} exceeds the number of parameters n={n}")
    m = min(n, max(4 * k, 2 * k + 30)) if m is None else int(m)
    if not 1 <= m <= n:
        raise ValueError(f"extreme_eigs: need 1 <= m <= n={n}, got m={m}")
    if k > m:
        raise ValueError(f"extreme_eigs: k={k} exceeds the Krylov dimension m={m}")
    if isinstance(key, int):
        key = jax.random.PRNGKey(key)
    # one compiled program per call (eager op-by-op dispatch of the loop is much slower)
    ritz = jax.jit(lambda p, key: lanczos(_flat_hvp(loss, p)[0], n, m, key, dtype))(params, key)
    return ritz[:k], ritz[::-1][:k]


def dense_hessian(loss: Callable[[Any], Any], params):
    """The dense Hessian of ``loss`` on the raveled parameters, shape ``(n, n)`` (small models)."""
    flat, unravel = ravel_pytree(params)
    return jax.jit(jax.hessian(lambda v: loss(unravel(v))))(flat)


def dense_eigvalsh(loss: Callable[[Any], Any], params):
    """All Hessian eigenvalues of ``loss`` at ``params``, ascending, shape ``(n,)`` (small models).

    >>> import jax.numpy as jnp
    >>> dense_eigvalsh(lambda w: w[0] * w[1], jnp.zeros(2)).tolist()
    [-1.0, 1.0]
    """
    h = dense_hessian(loss, params)
    return jax.jit(lambda h: jnp.linalg.eigvalsh(0.5 * (h + h.T)))(h)
