"""Jacobians of the update map, and the classification of its fixed points.

At a critical point, with ``D = ∂d/∂w`` (``d`` the descent direction, see the package docstring):

* GD: ``D = H``; USAM: ``D = H + ρH²`` (chain rule through ``w + ρ∇f``), so without momentum
  ``∂w'/∂w = I − η(H + ρH²)`` (Kim et al. 2023, Theorem 1);
* heavy ball: ``J = [[I − ηD, −ηγI], [D, γI]]``; Nesterov: ``J = [[I − η(1+γ)D, −ηγ²I], [D, γI]]``;
* normalised SAM is *not differentiable* at a critical point (``g/‖g‖``): :func:`classify` says so
  (kind ``"non-differentiable"``) and the dynamics there are 2-cycles (:func:`periodic_orbits`,
  :func:`sam_quadratic_cycle` in :mod:`samdyn.stability.cycles`).

With ``γ = 0`` the buffer is a slave variable (``w'`` does not depend on ``v``): the full Jacobian's
eigenvalues are those of the d×d parameter block plus d zeros, and classification uses the d×d block.

Kinds (from the eigenvalue moduli |μ| of the Jacobian at a fixed point, or of ``DTᵖ`` on a p-cycle):
``"attractor"`` all |μ| < 1; ``"repeller"`` all |μ| > 1; ``"saddle"`` some in, some out;
``"non-hyperbolic"`` some |μ| within ``tol`` of 1.
"""

from __future__ import annotations

import dataclasses
import math

import jax.numpy as jnp
import numpy as np
import sympy as sp

from ..landscapes import Landscape
from ..optim import Optimizer
from ._common import (
    _SAM_NOTE,
    NonDifferentiableError,
    NotAFixedPointError,
    _block,
    _check_opt,
    _compiled,
    _descent_jacobian,
    _eps,
    _exact_hessian,
    _guard_sam,
    _is_sam,
    _kind_from_moduli,
    _opt_name,
    _point_array,
    _problem,
    _scalar_hp,
    _sorted_eigs,
    _state_array,
)

__all__ = [
    "KINDS",
    "NON_DIFFERENTIABLE",
    "ETA",
    "RHO",
    "GAMMA",
    "NotAFixedPointError",
    "NonDifferentiableError",
    "Classification",
    "jacobian",
    "classify",
    "exact_jacobian",
]

#: Kinds of a hyperbolic / non-hyperbolic fixed point or cycle; ``PhaseDiagram.kind`` codes index it.
KINDS = ("attractor", "saddle", "repeller", "non-hyperbolic")
#: The kind :func:`classify` gives normalised SAM at a critical point.
NON_DIFFERENTIABLE = "non-differentiable"
#: Exact symbols used by :func:`exact_jacobian` and :func:`attractor_region`.
ETA, RHO, GAMMA = sp.symbols("eta rho gamma", positive=True)


def _prepare(optimizer, loss, point, hp, state):
    """Validated inputs of a map analysis: point w (d,), momentum v (d,), scalar hp, problem, programs."""
    _check_opt(optimizer)
    w = _point_array(point)
    v = _state_array(state, w.size)
    problem = _problem(loss, w.size)
    return w, v, _scalar_hp(hp), problem, _compiled(optimizer, problem)


def jacobian(optimizer: Optimizer, loss, point, hp, state=None) -> np.ndarray:
    """Jacobian of the optimizer's update map over the full state (w, v), by ``jax.jacfwd``.

    Args:
        optimizer: ``sd.optim.gd()``, ``usam()`` or ``sam()`` (heavy-ball or Nesterov).
        loss: a Landscape or a loss function of a ``(d,)`` array.
        point: parameters ``w``, shape ``(d,)`` (or a ``CriticalPoint``); need not be a fixed point.
        hp: scalar ``sd.optim.hparams(lr, rho, momentum)``.
        state: momentum buffer ``v``, shape ``(d,)`` (default 0).

    Returns:
        ∂(w', v')/∂(w, v), float64 array of shape ``(2d, 2d)``; rows/columns ``[:d]`` are w, ``[d:]`` v.

    Raises:
        NonDifferentiableError: normalised SAM where ∇f(w) = 0 (no garbage matrix is returned).

    >>> import samdyn as sd
    >>> J = jacobian(sd.optim.usam(), sd.landscapes.get("saddle"), [0.0, 0.0], sd.optim.hparams(lr=0.1, rho=1.0))
    >>> J[:2, :2].round(12).tolist()   # I − η(H + ρH²), H = diag(2, −2)
    [[0.4, 0.0], [0.0, 0.8]]
    """
    w, v, hp, problem, fns = _prepare(optimizer, loss, point, hp, state)
    _guard_sam(optimizer, fns, w)
    z = jnp.asarray(np.concatenate([w, v]))
    return np.asarray(fns["jac"](z, hp))


@dataclasses.dataclass(frozen=True)
class Classification:
    """The local dynamics of the map at a fixed point.

    Attributes:
        kind: one of :data:`KINDS`, or ``"non-differentiable"`` (normalised SAM at a critical point).
        eigenvalues: multipliers of the map, sorted by decreasing modulus (complex, shape (2d,) with
            momentum, (d,) without: then v is slaved to w); ``None`` when non-differentiable.
        spectral_radius: max |eigenvalue| (NaN when non-differentiable).
        jacobian: the full (2d, 2d) Jacobian, or ``None``.
        point: the fixed point's parameters, shape (d,).
        note: explanation (why non-differentiable, where to look instead).
    """

    kind: str
    eigenvalues: np.ndarray | None
    spectral_radius: float
    jacobian: np.ndarray | None
    point: np.ndarray
    note: str = ""


def _fixed_point_residual(optimizer, fns, w, v, hp):
    """‖d(w)‖ (read off the new buffer when v = 0) and ‖v‖: both vanish exactly at a fixed point."""
    z = jnp.asarray(np.concatenate([w, np.zeros_like(w)]))
    d_w = np.asarray(fns["T"](z, hp))[w.size :]
    return float(np.linalg.norm(d_w)), float(np.linalg.norm(v))


def classify(optimizer: Optimizer, loss, point, hp, state=None, *, tol: float = 1e-9, fixed_tol: float = 1e-8) -> Classification:
    """Classify a fixed point ``(w*, v=0)`` of the optimizer's map from the eigenvalues of its Jacobian.

    Args:
        optimizer: ``gd()``, ``usam()`` (differentiable maps) or ``sam()`` (see below).
        loss: a Landscape or a loss function of a ``(d,)`` array.
        point: ``w*`` (shape (d,)) or a ``CriticalPoint`` from ``landscape.critical_points()``.
        hp: scalar ``sd.optim.hparams``.
        state: momentum buffer at the fixed point (must be 0; default 0).
        tol: |μ| within ``tol`` of 1 counts as non-hyperbolic.
        fixed_tol: the point is a fixed point when ‖d(w*)‖ ≤ fixed_tol and ‖v‖ ≤ fixed_tol, with
            d the descent direction (∇f for GD; ∇f(w + ρ∇f) for USAM).

    Returns:
        A :class:`Classification`. Normalised SAM at a critical point gives kind
        ``"non-differentiable"`` with no eigenvalues: its dynamics there are 2-cycles
        (:func:`periodic_orbits`).

    Raises:
        NotAFixedPointError: the point is not a fixed point of the map (before any Jacobian).

    >>> import samdyn as sd
    >>> f = sd.landscapes.get("beale")
    >>> saddle = f.critical_points()[-1]
    >>> classify(sd.optim.usam(), f, saddle, sd.optim.hparams(lr=0.01, rho=0.05)).kind
    'attractor'
    >>> classify(sd.optim.usam(), f, saddle, sd.optim.hparams(lr=0.01, rho=0.03)).kind
    'saddle'
    """
    w, v, hp, problem, fns = _prepare(optimizer, loss, point, hp, state)
    res_d, res_v = _fixed_point_residual(optimizer, fns, w, v, hp)
    if res_d > fixed_tol or res_v > fixed_tol:
        raise NotAFixedPointError(
            f"classify: (w, v) is not a fixed point of {optimizer.name}'s map: ‖d(w)‖ = {res_d:.3g}, ‖v‖ = {res_v:.3g} "
            f"(fixed_tol = {fixed_tol:g}); pass a critical point (landscape.critical_points()) with v = 0, "
            "or use jacobian() for the Jacobian at any state"
        )
    if _is_sam(optimizer) and float(fns["grad_norm"](jnp.asarray(w))) <= 1e3 * _eps(optimizer):
        return Classification(NON_DIFFERENTIABLE, None, math.nan, None, w, _SAM_NOTE)
    J = np.asarray(fns["jac"](jnp.asarray(np.concatenate([w, v])), hp))
    M = J[: w.size, : w.size] if float(hp.momentum) == 0.0 else J
    eig = _sorted_eigs(M)
    mod = np.abs(eig)
    return Classification(_kind_from_moduli(mod, tol), eig, float(mod.max()), J, w)


# ---- exact (sympy) --------------------------------------------------------------------------------


def exact_jacobian(landscape: Landscape, point, optimizer, *, lr=ETA, rho=RHO, momentum=GAMMA) -> sp.Matrix:
    """Exact Jacobian of the map at a critical point, a 2d×2d sympy Matrix over (w, v).

    Args:
        landscape: a Landscape (sympy expression).
        point: a ``CriticalPoint`` with an exact location, or exact coordinates.
        optimizer: ``gd()``/``usam()`` (Nesterov read from its options) or the names ``"gd"``/``"usam"``.
        lr, rho, momentum: values or symbols (default the symbols :data:`ETA`, :data:`RHO`, :data:`GAMMA`).

    Returns:
        ``[[I − ηD, −ηγI], [D, γI]]`` (heavy ball) or ``[[I − η(1+γ)D, −ηγ²I], [D, γI]]`` (Nesterov)
        with ``D = H`` (GD) or ``H + ρH²`` (USAM); for γ = 0 the top-left block is ``I − η(H + ρH²)``.

    Raises:
        NonDifferentiableError: for normalised SAM. NotAFixedPointError: ∇f ≠ 0 at the point.

    >>> import samdyn as sd
    >>> f = sd.landscapes.get("saddle")
    >>> exact_jacobian(f, (0, 0), "usam", momentum=0)[:2, :2]
    Matrix([
    [-4*eta*rho - 2*eta + 1,                      0],
    [                     0, -4*eta*rho + 2*eta + 1]])
    """
    name, nesterov = _opt_name(optimizer)
    H = _exact_hessian(landscape, point)
    d = H.shape[0]
    eta, rho_, gamma = (sp.sympify(x) if not isinstance(x, float) else sp.nsimplify(x, rational=True) for x in (lr, rho, momentum))
    D = _descent_jacobian(H, name, rho_)
    return sp.BlockMatrix(_block(D, sp.eye(d), eta, gamma, nesterov)).as_explicit().applyfunc(sp.expand)
