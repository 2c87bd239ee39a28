"""Finite-time Lyapunov exponents of the map along an orbit (QR method)."""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np

from ..optim import Optimizer
from ._common import _check_opt, _compiled, _guard_sam, _map, _point_array, _problem, _scalar_hp, _state_array

__all__ = ["lyapunov_exponents"]


@functools.lru_cache(maxsize=16)
def _lyapunov_program(optimizer, problem, steps, reduced):
    T = _map(optimizer, problem)
    jac = jax.jacfwd(T)

    def run(z0, hp):
        d = z0.shape[0] // 2
        k = d if reduced else 2 * d

        def body(carry, _):
            z, Q, s = carry
            J = jac(z, hp)[:k, :k]
            Q, R = jnp.linalg.qr(J @ Q)
            return (T(z, hp), Q, s + jnp.log(jnp.abs(jnp.diag(R)))), None

        (z, _, s), _ = jax.lax.scan(body, (z0, jnp.eye(k, dtype=z0.dtype), jnp.zeros(k, dtype=z0.dtype)), None, length=steps)
        return s / steps, z

    return jax.jit(run)


def lyapunov_exponents(optimizer: Optimizer, loss, x0, hp, steps: int, state=None) -> tuple[np.ndarray, np.ndarray]:
    """Finite-time Lyapunov exponents of the map along the orbit from ``(x0, state)`` (QR method).

    ``λᵢ = (1/steps) Σ_t log|R_t[i, i]|`` with ``J_t Q_{t−1} = Q_t R_t`` and ``J_t`` the Jacobian of
    the optimizer's step at the t-th state. Exponents > 0 mean nearby orbits separate (chaos when the
    orbit stays bounded); on a stable p-cycle they tend to log|multipliers|/p. Units: per step.
    With γ = 0 the d×d parameter block is used (the buffer is slaved), else the full 2d state.

    Args:
        optimizer, loss, hp: as for :func:`jacobian`. x0: start, shape (d,). steps: orbit length.
        state: initial buffer (default 0).

    Returns:
        ``(exponents, end)``: exponents in decreasing order of the QR columns, shape (d,) or (2d,); the
        end state (w, v), shape (2d,).

    Raises:
        NonDifferentiableError: normalised SAM starting at a critical point.

    >>> import samdyn as sd
    >>> f = sd.landscapes.get("quadratic", eigenvalues=(1, 3))
    >>> lyap, _ = lyapunov_exponents(sd.optim.gd(), f, [1.0, 1.0], sd.optim.hparams(lr=0.1), 50)
    >>> np.allclose(np.sort(lyap), np.log([0.7, 0.9]))
    True
    """
    _check_opt(optimizer)
    w = _point_array(x0)
    d = w.size
    v = _state_array(state, d)
    hp = _scalar_hp(hp)
    if isinstance(steps, bool) or not isinstance(steps, (int, np.integer)) or steps < 1:
        raise ValueError(f"lyapunov_exponents: steps must be an integer >= 1, got {steps!r}")
    problem = _problem(loss, d)
    _guard_sam(optimizer, _compiled(optimizer, problem), w, "lyapunov_exponents")
    run = _lyapunov_program(optimizer, problem, int(steps), float(hp.momentum) == 0.0)
    lyap, end = run(jnp.asarray(np.concatenate([w, v])), hp)
    return np.asarray(lyap), np.asarray(end)
