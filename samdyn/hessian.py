"""Hessian spectra of a loss on a pytree of parameters: products, both ends by Lanczos, dense.

* :func:`hvp` — one Hessian-vector product, forward-over-reverse (``jvp`` of ``grad``): the cost
  of about two gradients, no Hessian in memory.
* :func:`extreme_eigs` — the ``k`` smallest *and* ``k`` largest eigenvalues (signed) by Lanczos
  with full reorthogonalisation and a Rayleigh–Ritz step, run until their residuals
  ‖Hv − θv‖ are below a stated tolerance (or for a fixed number of steps); residuals on request.
  Near a saddle the most negative eigenvalue matters as much as the largest one; power iteration
  on the largest magnitude would return whichever of the two is bigger in absolute value, so it
  is not used.
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
spectrum up to round-off. The residual of a Ritz pair (θ, v = Vᵀs) is computed from the stored
products, ‖(HV)ᵀs − θ Vᵀs‖, exact also after a restart (where the three-term estimate |β s_m| is not).
"""

from __future__ import annotations

from typing import Any, Callable

import jax
import jax.numpy as jnp
import numpy as np
from jax.flatten_util import ravel_pytree

from . import checks

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


def _lanczos_step(matvec, starts, dtype):
    """One Lanczos step ``(j, (basis, products, next)) -> (basis, products, next)``, full reorthogonalisation."""
    m = starts.shape[0]
    tiny = jnp.asarray(100 * jnp.finfo(dtype).eps, dtype)

    def orthonormalise(w, basis):
        for _ in range(2):
            w = w - basis.T @ (basis @ w)
        return w

    def step(j, carry):
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

    return step


def _ritz_ends(basis, products, j, k):
    """Ritz values and residual norms ‖Hv − θv‖ of the k lowest and k highest pairs of the first j rows.

    Rows ``j:`` of ``basis`` / ``products`` are zero; their diagonal entries of ``T`` are set far above
    every Ritz value, so the ``j`` Ritz values are the lowest ``j`` eigenvalues of ``T``.
    """
    m = basis.shape[0]
    t = basis @ products.T
    t = 0.5 * (t + t.T)
    unused = jnp.arange(m) >= j
    far = 2 * jnp.max(jnp.sum(jnp.abs(t), axis=1)) + 1
    theta, vectors = jnp.linalg.eigh(t + jnp.diag(jnp.where(unused, far, 0).astype(t.dtype)))
    pick = jnp.concatenate([jnp.arange(k), j - 1 - jnp.arange(k)])
    th, s = theta[pick], vectors[:, pick]
    res = jnp.linalg.norm(products.T @ s - (basis.T @ s) * th[None, :], axis=0)
    scale = jnp.maximum(jnp.abs(theta[0]), jnp.abs(theta[j - 1]))
    return th[:k], th[k:], res[:k], res[k:], scale


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
    basis, products = _krylov(matvec, n, m, key, dtype or jnp.result_type(float))
    t = basis @ products.T
    return jnp.linalg.eigvalsh(0.5 * (t + t.T))


def _krylov(matvec, n, m, key, dtype):
    """The orthonormal Krylov basis (m, n) and its products with the operator (m, n), m steps."""
    starts = jax.random.normal(key, (m, n), dtype=dtype)
    zeros = jnp.zeros((m, n), dtype)
    basis, products, _ = jax.lax.fori_loop(0, m, _lanczos_step(matvec, starts, dtype),
                                           (zeros, zeros, starts[0] / jnp.linalg.norm(starts[0])))
    return basis, products


def _extreme_pairs(matvec, n, m, k, key, dtype, tol):
    """k lowest / highest Ritz values and residuals; with ``tol``, stop once all 2k residuals ≤ tol·max|θ|."""
    if tol is None:
        basis, products = _krylov(matvec, n, m, key, dtype)
        return _ritz_ends(basis, products, m, k)[:4]
    starts = jax.random.normal(key, (m, n), dtype=dtype)
    step = _lanczos_step(matvec, starts, dtype)
    every = max(k, 8, m // 16)  # Lanczos steps between convergence checks (each costs an m×m eigh)

    def block(state):
        basis, products, nxt, j, _, _ = state
        stop = jnp.minimum(j + every, m)
        basis, products, nxt = jax.lax.fori_loop(j, stop, step, (basis, products, nxt))
        *ends, scale = _ritz_ends(basis, products, stop, k)
        done = jnp.all(jnp.concatenate(ends[2:]) <= tol * scale)
        return basis, products, nxt, stop, done, ends

    def going(state):
        return (state[3] < m) & ~state[4]

    zeros = jnp.zeros((m, n), dtype)
    none = [jnp.zeros(k, dtype)] * 4
    state = (zeros, zeros, starts[0] / jnp.linalg.norm(starts[0]), jnp.asarray(0), jnp.asarray(False), none)
    return tuple(jax.lax.while_loop(going, block, state)[5])


def extreme_eigs(loss: Callable[[Any], Any], params, k: int = 1, *, m: int | None = None, tol: float | None = None,
                 key=0, residuals: bool = False):
    """The ``k`` smallest and ``k`` largest Hessian eigenvalues of ``loss`` at ``params`` (signed).

    Two modes:

    * **converged** (``m=None``, or ``tol`` given): Lanczos runs until every one of the ``2k``
      Ritz pairs (θ, v) has residual ‖Hv − θv‖ ≤ ``tol``·max|θ| (checked every
      ``max(k, 8, m/16)`` steps), or until ``m`` steps. Then each θ lies within its residual of an
      eigenvalue of H (within residual² / gap when it is separated from the rest of the spectrum
      by ``gap``). On the tanh MLPs of the tests (n = 147, k = 1, 3, 5) the values equal the dense
      spectrum's ends to within ``tol``·‖H‖.
    * **fixed** (``m`` given, ``tol=None``): exactly ``m`` Lanczos steps; ``m = n`` gives the exact
      spectrum up to round-off.

    Single-vector Lanczos finds one copy of a repeated eigenvalue until the Krylov space is
    exhausted: small residuals certify that each value is (close to) an eigenvalue, not that no
    copy was skipped. Where multiplicities are expected use ``m = n`` on small models.

    Args:
        loss: scalar function of a pytree.
        params: the point (pytree; raveled with ``jax.flatten_util.ravel_pytree``), n numbers.
        k: how many eigenvalues at each end, ``1 ≤ k ≤ m``.
        m: Krylov dimension (memory: two ``m × n`` arrays). Default ``min(n, 10k + 100)`` as the
            cap of the converged mode.
        tol: relative residual at which the converged mode stops; default √eps of the parameters'
            dtype (1.5e-8 in float64, 3.5e-4 in float32).
        key: PRNG key or int seed for the start vector.
        residuals: also return the residual norms.

    Returns:
        ``(smallest, largest)``: arrays of shape ``(k,)``; ``smallest`` ascending (most negative
        first), ``largest`` descending (largest first). With ``residuals=True``,
        ``(smallest, largest, res_smallest, res_largest)``, the residuals ‖Hv − θv‖ of each value
        (same units as the eigenvalues), shape ``(k,)`` each.

    >>> import jax.numpy as jnp
    >>> lo, hi = extreme_eigs(lambda w: w[0]**2 - 3 * w[1]**2 + 0.5 * w[2]**2, jnp.zeros(3), k=1)
    >>> round(float(lo[0]), 6), round(float(hi[0]), 6)
    (-6.0, 2.0)
    >>> f = lambda w: jnp.sum(jnp.arange(1.0, 7.0) * w**2)  # H = diag(2, 4, ..., 12)
    >>> lo, hi, res_lo, res_hi = extreme_eigs(f, jnp.zeros(6), 2, residuals=True)
    >>> jnp.round(lo, 9).tolist(), jnp.round(hi, 9).tolist(), bool(max(res_lo.max(), res_hi.max()) < 1e-12)
    ([2.0, 4.0], [12.0, 10.0], True)
    """
    _, n, dtype = _flat_hvp(loss, params)
    k = checks.integer("extreme_eigs", "k", k, low=1)
    if k > n:
        checks.fail("extreme_eigs", "k", f"at most the number of parameters n = {n}", k)
    if m is None:
        m = min(n, 10 * k + 100)
        tol = float(np.sqrt(np.finfo(dtype).eps)) if tol is None else tol
    else:
        if isinstance(m, bool) or not isinstance(m, (int, np.integer)) or not 1 <= m <= n:
            checks.fail("extreme_eigs", "m", f"an integer with 1 <= m <= n = {n}", m)
        m = int(m)
        if k > m:
            checks.fail("extreme_eigs", "k", f"at most m = {m} (k exceeds the Krylov dimension)", k)
    if tol is not None:
        tol = checks.real("extreme_eigs", "tol", tol, low=0, low_open=True)
    checks.boolean("extreme_eigs", "residuals", residuals)
    if isinstance(key, int):
        key = jax.random.PRNGKey(key)
    # one compiled program per call (eager op-by-op dispatch of the loop is much slower)
    lo, hi, res_lo, res_hi = jax.jit(lambda p, key: _extreme_pairs(_flat_hvp(loss, p)[0], n, m, k, key, dtype, tol))(
        params, key)
    return (lo, hi, res_lo, res_hi) if residuals else (lo, hi)


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
