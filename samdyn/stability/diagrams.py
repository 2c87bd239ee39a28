"""Phase diagrams over (η, ρ, γ) and edges of stability: the largest stable curvature from the map,
and the closed forms of USAM (Dai, Ahn & Sra 2023) and SAM (Long & Bartlett 2023)."""

from __future__ import annotations

import dataclasses
import functools

import jax
import jax.numpy as jnp
import numpy as np

from ..optim import HParams, Optimizer, OptState, hparams as make_hparams, usam as _usam
from ._common import (
    _SAM_NOTE,
    NonDifferentiableError,
    NotAFixedPointError,
    _check_opt,
    _compiled,
    _is_sam,
    _map,
    _nesterov,
    _point_array,
    _problem,
)
from .jacobians import KINDS

__all__ = ["PhaseDiagram", "phase_diagram", "largest_stable_curvature", "usam_edge", "sam_edge"]


@dataclasses.dataclass(frozen=True)
class PhaseDiagram:
    """Classification of one fixed point over a (η, ρ, γ) grid.

    Attributes:
        lr, rho, momentum: the grid axes (1-D arrays).
        spectral_radius: shape (len(lr), len(rho), len(momentum)).
        kind: int8 codes into :data:`KINDS`, same shape.
        point: the fixed point.
    """

    lr: np.ndarray
    rho: np.ndarray
    momentum: np.ndarray
    spectral_radius: np.ndarray
    kind: np.ndarray
    point: np.ndarray

    def kind_names(self) -> np.ndarray:
        """``kind`` as strings."""
        return np.asarray(KINDS, dtype=object)[self.kind]


def _kind_codes(mod, tol):
    """Vectorised :func:`_kind_from_moduli` over the last axis (codes into KINDS)."""
    on = jnp.any(jnp.abs(mod - 1.0) <= tol, axis=-1)
    inside = jnp.all(mod < 1.0, axis=-1)
    outside = jnp.all(mod > 1.0, axis=-1)
    return jnp.where(on, 3, jnp.where(inside, 0, jnp.where(outside, 2, 1))).astype(jnp.int8)


@functools.lru_cache(maxsize=32)
def _phase_program(optimizer, problem):
    jac = jax.jacfwd(_map(optimizer, problem))

    def one(z, lr, rho, mom, tol):
        d = z.shape[0] // 2
        J = jac(z, HParams(lr, rho, mom))
        mod_full = jnp.abs(jnp.linalg.eigvals(J))
        mod_w = jnp.abs(jnp.linalg.eigvals(J[:d, :d]))
        code = jnp.where(mom == 0.0, _kind_codes(mod_w, tol), _kind_codes(mod_full, tol))
        return jnp.max(mod_full), code

    return jax.jit(jax.vmap(one, in_axes=(None, 0, 0, 0, None)))


def _grid_axis(name, values):
    arr = np.atleast_1d(np.asarray(values, dtype=np.float64))
    if arr.ndim != 1 or arr.size == 0:
        raise ValueError(f"phase_diagram: {name} must be a non-empty 1-D grid, got shape {arr.shape}")
    if not np.all(np.isfinite(arr)):
        raise ValueError(f"phase_diagram: {name} must be finite")
    return arr


def phase_diagram(optimizer: Optimizer, loss, point, lr, rho, momentum=0.0, *, tol: float = 1e-9, fixed_tol: float = 1e-8) -> PhaseDiagram:
    """Classify a critical point over a grid of (η, ρ, γ), vectorised (one vmapped Jacobian + eigvals).

    Args:
        optimizer: ``gd()`` or ``usam()`` (normalised SAM is not differentiable at a critical point:
            NonDifferentiableError; see :func:`periodic_orbits`).
        loss: a Landscape or a loss function. point: a critical point (shape (d,) or CriticalPoint).
        lr, rho, momentum: 1-D grids (scalars allowed); validated as by ``hparams``.
        tol: |μ| within tol of 1 is non-hyperbolic. fixed_tol: ‖∇f(point)‖ allowed.

    Returns:
        A :class:`PhaseDiagram` with arrays of shape (len(lr), len(rho), len(momentum)).

    >>> import samdyn as sd
    >>> pd = phase_diagram(sd.optim.usam(), sd.landscapes.get("saddle"), [0, 0], [0.1], [0.4, 0.6])
    >>> pd.kind_names()[0, :, 0].tolist()
    ['saddle', 'attractor']
    """
    _check_opt(optimizer)
    w = _point_array(point)
    lr, rho, momentum = (_grid_axis(n, v) for n, v in (("lr", lr), ("rho", rho), ("momentum", momentum)))
    make_hparams(lr=lr, rho=rho[:, None], momentum=momentum[:, None, None])  # validates ranges
    problem = _problem(loss, w.size)
    fns = _compiled(optimizer, problem)
    gn = float(fns["grad_norm"](jnp.asarray(w)))
    if gn > fixed_tol:
        raise NotAFixedPointError(f"phase_diagram: ‖∇f(point)‖ = {gn:.3g} > {fixed_tol:g}; pass a critical point")
    if _is_sam(optimizer):
        raise NonDifferentiableError(f"phase_diagram: {_SAM_NOTE}")
    L, R, G = np.meshgrid(lr, rho, momentum, indexing="ij")
    z = jnp.asarray(np.concatenate([w, np.zeros_like(w)]))
    rad, code = _phase_program(optimizer, problem)(z, jnp.asarray(L.ravel()), jnp.asarray(R.ravel()), jnp.asarray(G.ravel()), tol)
    shape = L.shape
    return PhaseDiagram(lr, rho, momentum, np.asarray(rad).reshape(shape), np.asarray(code).reshape(shape), w)


@functools.lru_cache(maxsize=16)
def _curvature_program(optimizer, iterations):
    def stable(lam, lr, rho, mom):
        grad = lambda x: lam * x  # noqa: E731  ∇(½λx²), λ traced: no recompiles

        def T(z, hp):
            w, s, _ = optimizer.step(grad, z[:1], OptState(z[1:]), hp)
            return jnp.concatenate([w, s.momentum])

        J = jax.jacfwd(T)(jnp.zeros(2, dtype=jnp.float64), HParams(lr, rho, mom))
        rad = jnp.where(mom == 0.0, jnp.abs(J[0, 0]), jnp.max(jnp.abs(jnp.linalg.eigvals(J))))
        return rad < 1.0

    def edge(lr, rho, mom, hi):
        def body(_, bounds):
            lo, up = bounds
            mid = 0.5 * (lo + up)
            ok = stable(mid, lr, rho, mom)
            return jnp.where(ok, mid, lo), jnp.where(ok, up, mid)

        lo, up = jax.lax.fori_loop(0, iterations, body, (jnp.zeros_like(hi), hi))
        return jnp.where(stable(hi, lr, rho, mom), jnp.inf, 0.5 * (lo + up))

    return jax.jit(jax.vmap(edge))


def largest_stable_curvature(optimizer: Optimizer, lr, rho=0.0, momentum=0.0, *, grad_norm=None, lam_max: float = 1e12, iterations: int = 200) -> np.ndarray:
    """Largest curvature λ > 0 at which a minimum of f = ½λx² is an attractor of the map.

    Computed *from the map*: bisection on λ of "spectral radius of ``jacobian`` < 1" for the 1-D
    quadratic, vectorised over the broadcast (η, ρ, γ) grid. Compare with :func:`usam_edge`
    (Dai et al. 2023: ηλ(1 + ρλ) < 2; heavy ball 2(1 + γ)).

    Normalised SAM's map is not differentiable at the minimum; Long & Bartlett (2023) linearise it with
    the gradient norm frozen, which is USAM's map with ρ/‖g‖. Pass ``grad_norm=‖g‖`` to get that
    SAM-edge from USAM's map (compare :func:`sam_edge`).

    Args:
        optimizer: ``gd()``, ``usam()`` or ``sam()`` (with ``grad_norm``).
        lr, rho, momentum: broadcastable arrays. grad_norm: for SAM, ‖∇f‖ > 0 (broadcastable).
        lam_max: search bound (``inf`` returned when still stable there).

    Returns:
        Array of the broadcast shape.

    >>> import samdyn as sd
    >>> lam = largest_stable_curvature(sd.optim.usam(), 0.1, 0.5)   # 0.1 λ (1 + 0.5 λ) = 2: λ = √41 − 1
    >>> abs(float(lam) - (41 ** 0.5 - 1)) < 1e-12
    True
    """
    _check_opt(optimizer)
    hp = make_hparams(lr=lr, rho=rho, momentum=momentum)
    lr_, rho_, mom_ = (np.asarray(a, dtype=np.float64) for a in (hp.lr, hp.rho, hp.momentum))
    if _is_sam(optimizer):
        if grad_norm is None:
            raise NonDifferentiableError(
                "largest_stable_curvature: normalised SAM's map is not differentiable at a minimum; pass grad_norm= "
                "for Long & Bartlett's frozen-gradient-norm linearisation (USAM's map with rho/grad_norm)"
            )
        gnorm = np.asarray(grad_norm, dtype=np.float64)
        if not np.all(gnorm > 0):
            raise ValueError("largest_stable_curvature: grad_norm must be > 0")
        rho_ = rho_ / gnorm
        optimizer = _usam(nesterov=_nesterov(optimizer))
    shape = np.broadcast_shapes(lr_.shape, rho_.shape, mom_.shape)
    args = [jnp.asarray(np.broadcast_to(a, shape).ravel()) for a in (lr_, rho_, mom_)]
    hi = jnp.full(args[0].shape, float(lam_max))
    out = _curvature_program(optimizer, iterations)(*args, hi)
    return np.asarray(out).reshape(shape)


def usam_edge(lr, rho, momentum=0.0, *, nesterov: bool = False) -> np.ndarray:
    """Closed-form largest stable curvature of USAM: the root of ηλ(1 + ρλ) = c.

    ``c = 2`` (Dai, Ahn & Sra 2023), ``2(1 + γ)`` with heavy-ball momentum, ``2(1+γ)/(1+2γ)`` with
    Nesterov (Jury conditions, see :func:`attractor_region`). ρ = 0 gives GD's c/η.
    """
    lr, rho, momentum = np.broadcast_arrays(*(np.asarray(a, dtype=np.float64) for a in (lr, rho, momentum)))
    c = 2 * (1 + momentum) / (1 + 2 * momentum) if nesterov else 2 * (1 + momentum)
    with np.errstate(divide="ignore", invalid="ignore"):
        # (sqrt(1 + 4ρc/η) − 1)/(2ρ), written without cancellation (and valid at ρ = 0)
        root = 2 * (c / lr) / (1 + np.sqrt(1 + 4 * rho * c / lr))
    return root


def sam_edge(lr, rho, grad_norm, momentum=0.0, *, nesterov: bool = False) -> np.ndarray:
    """Long & Bartlett's (2023) SAM-edge: USAM's edge with ρ replaced by ρ/‖∇f‖.

    ``λ = (‖g‖/(2ρ)) (sqrt(1 + 8ρ/(η‖g‖)) − 1)`` without momentum: below GD's 2/η and tending to it
    as ‖g‖ grows (documented from the paper's statement that the SAM-edge depends on ‖g‖ and comes
    from the same quadratic-approximation calculation as GD's 2/η).
    """
    return usam_edge(lr, np.asarray(rho, dtype=np.float64) / np.asarray(grad_norm, dtype=np.float64), momentum, nesterov=nesterov)
