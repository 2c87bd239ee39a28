"""Shared private helpers of ``samdyn.stability``: input checks, the update map on the flat state
``z = (w, v)`` and its compiled programs, kinds from eigenvalue moduli, the exact (sympy) blocks, and
the two errors every analysis may raise. Nothing here is public API: the errors are re-exported by
:mod:`samdyn.stability.jacobians` and the package.
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np
import sympy as sp

from ..landscapes import CriticalPoint, Landscape
from ..optim import HParams, Optimizer, OptState, hparams as make_hparams
from ..engine import as_problem

_SAM_NOTE = (
    "normalised SAM's map w - eta*grad f(w + rho*g/(|g|+eps)) is not differentiable where g = grad f(w) = 0 "
    "(g/|g| has no limit); near a critical point SAM moves on 2-cycles: use stability.periodic_orbits "
    "or stability.sam_quadratic_cycle"
)


class NotAFixedPointError(ValueError):
    """Raised when a fixed point of the map is required and the given state is not one."""


class NonDifferentiableError(ValueError):
    """Raised when the Jacobian of normalised SAM is asked for where the gradient vanishes."""


# ---- input handling ---------------------------------------------------------------------------


def _point_array(point) -> np.ndarray:
    if isinstance(point, CriticalPoint):
        point = point.point
    arr = np.asarray(point, dtype=np.float64)
    if arr.ndim != 1 or arr.size == 0:
        raise ValueError(f"stability: point must have shape (d,), got {arr.shape}")
    if not np.all(np.isfinite(arr)):
        raise ValueError("stability: point must be finite")
    return arr


def _check_opt(optimizer):
    if not isinstance(optimizer, Optimizer):
        raise TypeError(f"stability: optimizer must be an Optimizer (sd.optim.gd/sam/usam), got {optimizer!r}")
    return optimizer


def _scalar_hp(hp) -> HParams:
    if isinstance(hp, dict):
        hp = make_hparams(**hp)
    if not isinstance(hp, HParams):
        raise TypeError(f"stability: hp must be sd.optim.hparams(...), got {hp!r}")
    for name, leaf in zip(HParams._fields, hp):
        if np.ndim(leaf) != 0:
            raise ValueError(f"stability: hp.{name} must be a scalar here (use phase_diagram for grids), got shape {np.shape(leaf)}")
    return HParams(*(jnp.asarray(leaf, dtype=jnp.float64) for leaf in hp))


def _state_array(state, d) -> np.ndarray:
    if state is None:
        return np.zeros(d)
    if isinstance(state, OptState):
        state = state.momentum
    arr = np.asarray(state, dtype=np.float64)
    if arr.shape != (d,):
        raise ValueError(f"stability: state (momentum buffer) must have shape ({d},), got {arr.shape}")
    return arr


def _problem(problem, d):
    return as_problem(problem, d, "stability")


def _is_sam(optimizer) -> bool:
    return optimizer.name == "sam"


def _eps(optimizer) -> float:
    return float(dict(optimizer.options).get("eps", 0.0))


def _nesterov(optimizer) -> bool:
    return bool(dict(optimizer.options).get("nesterov", False))


# ---- the map --------------------------------------------------------------------------------------


def _map(optimizer: Optimizer, problem):
    """T(z, hp) on the flat state z = concat(w, v) of shape (2d,)."""

    def T(z, hp):
        d = z.shape[0] // 2
        w, s, _ = optimizer.step(problem.grad, z[:d], OptState(z[d:]), hp)
        return jnp.concatenate([w, s.momentum])

    return T


@functools.lru_cache(maxsize=64)
def _compiled(optimizer, problem):
    T = _map(optimizer, problem)
    jac = jax.jacfwd(T)

    def grad_norm(w):
        return jnp.linalg.norm(problem.grad(w))

    return {"T": jax.jit(T), "jac": jax.jit(jac), "grad_norm": jax.jit(grad_norm)}


def _guard_sam(optimizer, fns, w, what="jacobian"):
    if _is_sam(optimizer):
        gn = float(fns["grad_norm"](jnp.asarray(w)))
        if gn <= 1e3 * _eps(optimizer):
            raise NonDifferentiableError(f"{what}: ‖∇f(w)‖ = {gn:.3g}; {_SAM_NOTE}")


def _kind_from_moduli(mod: np.ndarray, tol: float) -> str:
    if np.any(np.abs(mod - 1.0) <= tol):
        return "non-hyperbolic"
    if np.all(mod < 1.0):
        return "attractor"
    if np.all(mod > 1.0):
        return "repeller"
    return "saddle"


def _sorted_eigs(M: np.ndarray) -> np.ndarray:
    eig = np.linalg.eigvals(M)
    return eig[np.lexsort((eig.imag, eig.real, -np.abs(eig)))]


# ---- exact (sympy) blocks -------------------------------------------------------------------------


def _exact_hessian(landscape: Landscape, point) -> sp.Matrix:
    if not isinstance(landscape, Landscape):
        raise TypeError(f"stability: exact results need a Landscape (sympy expression), got {landscape!r}")
    if isinstance(point, CriticalPoint):
        if point.exact_hessian is None:
            raise ValueError(f"stability: {point!r} has no exact location; pass exact coordinates (sympy numbers)")
        return sp.Matrix(point.exact_hessian)
    coords = tuple(sp.nsimplify(c, rational=True) if isinstance(c, float) else sp.sympify(c) for c in point)
    if len(coords) != landscape.dim:
        raise ValueError(f"stability: point has {len(coords)} coordinates, the landscape {landscape.dim}")
    sub = dict(zip(landscape.symbols, coords))
    grad = [sp.simplify(g.subs(sub)) for g in landscape.grad_expr]
    if any(g != 0 for g in grad):
        raise NotAFixedPointError(f"stability: {coords} is not a critical point of {landscape.name}: ∇f = {grad}")
    return landscape.hessian_expr.subs(sub)


def _descent_jacobian(H: sp.Matrix, name: str, rho) -> sp.Matrix:
    if name == "gd":
        return H
    if name == "usam":
        return H + rho * H * H
    if name == "sam":
        raise NonDifferentiableError(f"exact_jacobian: {_SAM_NOTE}")
    raise ValueError(f"stability: unknown optimizer {name!r}")


def _block(D, I, eta, gamma, nesterov):
    """[[∂w'/∂w, ∂w'/∂v], [∂v'/∂w, ∂v'/∂v]] for v' = γv + d, w' = w − η(v' or d + γv')."""
    if nesterov:
        return [[I - eta * (1 + gamma) * D, -eta * gamma**2 * I], [D, gamma * I]]
    return [[I - eta * D, -eta * gamma * I], [D, gamma * I]]


def _opt_name(optimizer):
    if isinstance(optimizer, Optimizer):
        return optimizer.name, _nesterov(optimizer)
    if isinstance(optimizer, str):
        return optimizer, False
    raise TypeError(f"stability: optimizer must be an Optimizer or 'gd'/'usam', got {optimizer!r}")
