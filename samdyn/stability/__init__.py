"""Stability of SAM as a map: Jacobians, fixed points, thresholds, 2-cycles, phase diagrams, basins.

The map studied is the optimizer's own ``step`` (``samdyn.optim``), the function that ``simulate``
runs, on the *full* state ``z = (w, v)`` — parameters ``w ∈ ℝᵈ`` and momentum buffer ``v ∈ ℝᵈ``::

    T(w, v) = (w', v'),   v' = γ v + d(w),   w' = w − η v'   (heavy ball; torch.optim.SGD)
                                             w' = w − η (d(w) + γ v')   (Nesterov)

with ``d(w) = ∇f(w)`` (GD), ``∇f(w + ρ∇f(w))`` (USAM) or ``∇f(w + ρ ∇f/‖∇f‖)`` (SAM). A fixed point
is ``(w*, 0)`` with ``d(w*) = 0`` (every critical point; for USAM/SAM also the rare points whose
perturbed point is critical). At a critical point, with ``D = ∂d/∂w``:

* GD: ``D = H``; USAM: ``D = H + ρH²`` (chain rule through ``w + ρ∇f``), so without momentum
  ``∂w'/∂w = I − η(H + ρH²)`` (Kim et al. 2023, Theorem 1);
* heavy ball: ``J = [[I − ηD, −ηγI], [D, γI]]``; Nesterov: ``J = [[I − η(1+γ)D, −ηγ²I], [D, γI]]``;
* normalised SAM is *not differentiable* at a critical point (``g/‖g‖``): :func:`classify` says so
  (kind ``"non-differentiable"``) and the dynamics there are 2-cycles (:func:`periodic_orbits`,
  :func:`sam_quadratic_cycle`).

With ``γ = 0`` the buffer is a slave variable (``w'`` does not depend on ``v``): the full Jacobian's
eigenvalues are those of the d×d parameter block plus d zeros, and classification uses the d×d block.

Kinds (from the eigenvalue moduli |μ| of the Jacobian at a fixed point, or of ``DTᵖ`` on a p-cycle):
``"attractor"`` all |μ| < 1; ``"repeller"`` all |μ| > 1; ``"saddle"`` some in, some out;
``"non-hyperbolic"`` some |μ| within ``tol`` of 1.

Thresholds: USAM makes a saddle an attractor when ρ > −1/λ for *every* negative Hessian eigenvalue
λ, i.e. ρ > ρ* = −1/λ₋ with λ₋ the negative eigenvalue closest to zero (for an index-1 saddle, the
only one — "−1/λ_min" in Kim et al.), and 0 < η(λᵢ + ρλᵢ²) < 2 for all i. :func:`rho_threshold`
gives ρ* exactly (sympy); :func:`attractor_region` the full region in (η, ρ, γ) from the Jury
conditions of each 2×2 eigen-block.
"""

from __future__ import annotations

import dataclasses
import functools
import math
import jax
import jax.numpy as jnp
import numpy as np
import sympy as sp

from .landscapes import CriticalPoint, Landscape
from .optim import HParams, Optimizer, OptState, hparams as make_hparams, usam as _usam
from .simulation import _as_problem, simulate

__all__ = [
    "KINDS",
    "NON_DIFFERENTIABLE",
    "ETA",
    "RHO",
    "GAMMA",
    "NotAFixedPointError",
    "NonDifferentiableError",
    "Classification",
    "Orbit",
    "PhaseDiagram",
    "Basins",
    "Region",
    "jacobian",
    "classify",
    "exact_jacobian",
    "rho_threshold",
    "attractor_region",
    "periodic_orbits",
    "sam_quadratic_cycle",
    "lyapunov_exponents",
    "phase_diagram",
    "largest_stable_curvature",
    "usam_edge",
    "sam_edge",
    "basins",
]

#: Kinds of a hyperbolic / non-hyperbolic fixed point or cycle; ``PhaseDiagram.kind`` codes index it.
KINDS = ("attractor", "saddle", "repeller", "non-hyperbolic")
#: The kind :func:`classify` gives normalised SAM at a critical point.
NON_DIFFERENTIABLE = "non-differentiable"
#: Exact symbols used by :func:`exact_jacobian` and :func:`attractor_region`.
ETA, RHO, GAMMA = sp.symbols("eta rho gamma", positive=True)

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
    return _as_problem(problem, d)


def _is_sam(optimizer) -> bool:
    return optimizer.name == "sam"


def _eps(optimizer) -> float:
    return float(dict(optimizer.options).get("eps", 0.0))


def _nesterov(optimizer) -> bool:
    return bool(dict(optimizer.options).get("nesterov", False))


# ---- the map and its Jacobian -------------------------------------------------------------------


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


def _prepare(optimizer, loss, point, hp, state):
    """Validated inputs of a map analysis: point w (d,), momentum v (d,), scalar hp, problem, programs."""
    _check_opt(optimizer)
    w = _point_array(point)
    v = _state_array(state, w.size)
    problem = _problem(loss, w.size)
    return w, v, _scalar_hp(hp), problem, _compiled(optimizer, problem)


def _guard_sam(optimizer, fns, w, what="jacobian"):
    if _is_sam(optimizer):
        gn = float(fns["grad_norm"](jnp.asarray(w)))
        if gn <= 1e3 * _eps(optimizer):
            raise NonDifferentiableError(f"{what}: ‖∇f(w)‖ = {gn:.3g}; {_SAM_NOTE}")


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


def _exact_eigenvalues(H: sp.Matrix) -> list:
    eig = []
    for lam, mult in H.eigenvals().items():
        eig.extend([sp.nsimplify(sp.simplify(lam))] * mult)
    return eig


def _sign(x) -> int:
    if x.is_zero:
        return 0
    if x.is_negative:
        return -1
    if x.is_positive:
        return 1
    val = sp.N(x, 50)
    return 0 if val == 0 else (1 if val > 0 else -1)


def rho_threshold(landscape: Landscape, point) -> sp.Expr:
    """Exact USAM attractor threshold ρ* = −1/λ₋ of a saddle (a sympy number).

    λ₋ is the negative Hessian eigenvalue closest to zero: USAM's Jacobian has eigenvalues
    1 − η(λ + ρλ²), and a negative λ stops repelling when λ + ρλ² > 0 ⟺ ρ > −1/λ; all of them do
    when ρ > −1/λ₋ (for an index-1 saddle λ₋ = λ_min, Kim et al. 2023, Theorem 1).

    Args:
        landscape: a Landscape.
        point: a ``CriticalPoint`` with an exact location, or exact coordinates.

    Raises:
        ValueError: no negative eigenvalue (a minimum needs no threshold) or a zero eigenvalue.

    >>> import samdyn as sd
    >>> rho_threshold(sd.landscapes.get("beale"), (0, 1))
    4/111
    """
    H = _exact_hessian(landscape, point)
    eig = _exact_eigenvalues(H)
    signs = [_sign(lam) for lam in eig]
    if 0 in signs:
        raise ValueError(f"rho_threshold: the Hessian is singular at {point!r} (eigenvalues {eig}); degenerate point")
    neg = [lam for lam, s in zip(eig, signs) if s < 0]
    if not neg:
        raise ValueError(f"rho_threshold: no negative Hessian eigenvalue at {point!r} (eigenvalues {eig}): not a saddle")
    closest = max(neg, key=lambda lam: sp.N(lam, 50))
    return sp.nsimplify(sp.simplify(-1 / closest))


@dataclasses.dataclass(frozen=True)
class Region:
    """Where a critical point is an attractor of the map, as exact inequalities.

    Attributes:
        conditions: a sympy ``And`` in :data:`ETA`, :data:`RHO`, :data:`GAMMA`.
        eigenvalues: the exact Hessian eigenvalues it was built from.
        optimizer, nesterov, momentum: what it describes (``momentum=False``: γ = 0, no GAMMA).
    """

    conditions: sp.Basic
    eigenvalues: tuple
    optimizer: str
    nesterov: bool
    momentum: bool

    def contains(self, lr, rho=0.0, momentum=0.0) -> np.ndarray:
        """Evaluate the conditions on NumPy arrays of (η, ρ, γ) (broadcast); a bool array."""
        fn = sp.lambdify((ETA, RHO, GAMMA), self.conditions, "numpy")
        lr, rho, momentum = np.broadcast_arrays(*(np.asarray(a, dtype=np.float64) for a in (lr, rho, momentum)))
        return np.broadcast_to(np.asarray(fn(lr, rho, momentum), dtype=bool), lr.shape)


def attractor_region(landscape: Landscape, point, optimizer="usam", *, momentum: bool = True) -> Region:
    """The (η, ρ, γ) region where a critical point is an attractor, as exact sympy inequalities.

    In the Hessian's eigenbasis the map splits into one 2×2 block per eigenvalue λ (1×1 without
    momentum), built from the same :func:`exact_jacobian` blocks with ``D = λ(1 + ρλ)`` (USAM) or λ
    (GD). A block ``M`` is stable iff the Jury conditions hold for ``μ² − tr(M) μ + det(M)``:
    ``|det M| < 1``, ``1 − tr M + det M > 0``, ``1 + tr M + det M > 0``. For heavy ball this is
    ``0 < ηD < 2(1 + γ)`` (γ < 1); for Nesterov ``0 < ηD < 2(1 + γ)/(1 + 2γ)``.

    Args:
        landscape, point: as for :func:`rho_threshold`.
        optimizer: ``gd()``/``usam()`` or ``"gd"``/``"usam"``.
        momentum: include γ (True) or set γ = 0 (False).

    >>> import samdyn as sd
    >>> r = attractor_region(sd.landscapes.get("saddle"), (0, 0), "usam", momentum=False)
    >>> bool(r.contains(0.1, 0.6)), bool(r.contains(0.1, 0.4))
    (True, False)
    """
    name, nesterov = _opt_name(optimizer)
    H = _exact_hessian(landscape, point)
    eig = _exact_eigenvalues(H)
    conds = []
    for lam in dict.fromkeys(eig):
        D = _descent_jacobian(sp.Matrix([[lam]]), name, RHO)[0, 0]
        if momentum:
            (a, b), (c, e) = _block(D, 1, ETA, GAMMA, nesterov)
            tr, det = sp.expand(a + e), sp.expand(a * e - b * c)
            conds += [det < 1, det > -1, sp.expand(1 - tr + det) > 0, sp.expand(1 + tr + det) > 0]
        else:
            m = sp.expand(1 - ETA * D)
            conds += [m < 1, m > -1]
    if momentum:
        conds.append(GAMMA < 1)
    return Region(sp.And(*conds), tuple(eig), name, nesterov, momentum)


# ---- periodic orbits -----------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class Orbit:
    """A periodic orbit of the map.

    Attributes:
        points: parameters along the orbit, shape (period, d), starting at the lexicographically
            smallest point.
        momenta: the buffer along the orbit, shape (period, d).
        multipliers: eigenvalues of D(Tᵖ) at the orbit (complex, decreasing modulus; the d×d
            parameter block when γ = 0).
        spectral_radius: max |multiplier|.
        kind: one of :data:`KINDS` ("attractor" = a stable cycle).
        residual: ‖Tᵖ(z) − z‖ at the returned state.
    """

    points: np.ndarray
    momenta: np.ndarray
    multipliers: np.ndarray
    spectral_radius: float
    kind: str
    residual: float

    @property
    def period(self) -> int:
        return self.points.shape[0]


@functools.lru_cache(maxsize=32)
def _newton_program(optimizer, problem, period, iterations):
    T = _map(optimizer, problem)

    def Tp(z, hp):
        for _ in range(period):
            z = T(z, hp)
        return z

    DTp = jax.jacfwd(Tp)

    def solve(z0, hp):
        eye = jnp.eye(z0.shape[0], dtype=z0.dtype)

        steps = 0.5 ** jnp.arange(24, dtype=z0.dtype)

        def residual(z):
            r = jnp.linalg.norm(Tp(z, hp) - z)
            return jnp.where(jnp.isfinite(r), r, jnp.inf)

        def body(_, z):
            # Newton direction with a backtracking line search on ‖Tᵖ(z) − z‖ (all 24 step sizes
            # evaluated at once; the best is taken if it improves, else z stays)
            F = Tp(z, hp) - z
            dz = jnp.linalg.solve(DTp(z, hp) - eye, F)
            cand = z[None, :] - steps[:, None] * dz[None, :]
            r = jax.vmap(residual)(cand)
            best = jnp.argmin(r)
            better = (r[best] < residual(z)) & jnp.all(jnp.isfinite(dz))
            return jnp.where(better, cand[best], z)

        z = jax.lax.fori_loop(0, iterations, body, z0)
        return z, jnp.linalg.norm(Tp(z, hp) - z)

    return jax.jit(jax.vmap(solve, in_axes=(0, None))), jax.jit(DTp), jax.jit(T)


def periodic_orbits(
    optimizer: Optimizer,
    loss,
    hp,
    starts,
    *,
    period: int = 2,
    momenta=None,
    iterations: int = 60,
    tol: float = 1e-9,
    unit_tol: float = 1e-9,
) -> tuple[Orbit, ...]:
    """Periodic orbits of the map by Newton's method on Tᵖ(z) − z from several starts.

    Damped Newton (backtracking on ‖Tᵖ(z) − z‖) runs on the full state z = (w, v), vectorised over the starts. Converged solutions
    (‖Tᵖ(z) − z‖ ≤ tol·max(1, ‖z‖)) of minimal period < ``period`` (e.g. fixed points) are dropped,
    duplicates (the same orbit from another start or phase) merged. Normalised SAM is differentiable
    on its cycles (∇f ≠ 0 there), so this is how its behaviour near a critical point is analysed.

    Args:
        optimizer: any optimizer. loss: a Landscape or a loss function of ``(d,)``.
        hp: scalar hparams. starts: initial parameters, shape (n, d).
        period: p ≥ 2. momenta: initial buffers (n, d) (default 0 with momentum; d(w) when γ = 0,
            where the buffer is slaved to w).
        iterations: Newton steps. tol: convergence tolerance. unit_tol: |μ| − 1 margin for "non-hyperbolic".

    Returns:
        The distinct orbits found (possibly none), as :class:`Orbit`.

    >>> import samdyn as sd
    >>> f = sd.landscapes.get("quadratic", eigenvalues=(2, 1))
    >>> orb = periodic_orbits(sd.optim.sam(), f, sd.optim.hparams(lr=0.1, rho=0.5), [[0.05, 0.0]])
    >>> orb[0].points[:, 0].round(6).tolist(), orb[0].kind   # ±ηλρ/(2 − ηλ) along the top direction
    ([-0.055556, 0.055556], 'attractor')
    """
    _check_opt(optimizer)
    if isinstance(period, bool) or not isinstance(period, int) or period < 2:
        raise ValueError(f"periodic_orbits: period must be an integer >= 2, got {period!r}")
    starts = np.asarray(starts, dtype=np.float64)
    if starts.ndim == 1:
        starts = starts[None]
    if starts.ndim != 2 or starts.shape[0] == 0:
        raise ValueError(f"periodic_orbits: starts must have shape (n, d), got {starts.shape}")
    if not np.all(np.isfinite(starts)):
        raise ValueError("periodic_orbits: starts must be finite")
    n, d = starts.shape
    hp = _scalar_hp(hp)
    problem = _problem(loss, d)
    solve, DTp, T = _newton_program(optimizer, problem, period, iterations)
    if momenta is None:  # v = 0 with momentum; without, v is slaved: v = d(w) (the descent direction)
        momenta = np.zeros_like(starts)
        if float(hp.momentum) == 0.0:
            momenta = np.stack([np.asarray(T(jnp.asarray(np.concatenate([s, np.zeros(d)])), hp))[d:] for s in starts])
    momenta = np.broadcast_to(np.asarray(momenta, dtype=np.float64), starts.shape)
    z0 = jnp.asarray(np.concatenate([starts, momenta], axis=1))
    z, res = (np.asarray(a) for a in solve(z0, hp))
    reduced = float(hp.momentum) == 0.0
    orbits: list[Orbit] = []
    for zi, ri in zip(z, res):
        scale = max(1.0, float(np.linalg.norm(zi)))
        if not (np.isfinite(ri) and ri <= tol * scale):
            continue
        pts = [zi]
        for _ in range(period - 1):
            pts.append(np.asarray(T(jnp.asarray(pts[-1]), hp)))
        pts = np.stack(pts)
        # minimal period: drop if T^k(z) = z for a divisor k < p
        if any(period % k == 0 and np.linalg.norm(pts[k] - pts[0]) <= 1e3 * tol * scale for k in range(1, period)):
            continue
        if any(min(np.linalg.norm(o_pt - pts[0]) for o_pt in np.concatenate([o.points, o.momenta], axis=1)) <= 1e-6 * scale for o in orbits):
            continue
        if _is_sam(optimizer) and any(float(np.linalg.norm(problem.grad(jnp.asarray(p[:d])))) <= 1e3 * _eps(optimizer) for p in pts):
            continue  # passes through a critical point: not differentiable there
        first = int(np.lexsort(pts[:, :d].T[::-1])[0])
        pts = np.roll(pts, -first, axis=0)
        M = np.asarray(DTp(jnp.asarray(pts[0]), hp))
        eig = _sorted_eigs(M[:d, :d] if reduced else M)
        mod = np.abs(eig)
        orbits.append(Orbit(pts[:, :d], pts[:, d:], eig, float(mod.max()), _kind_from_moduli(mod, unit_tol), float(ri)))
    return tuple(orbits)


@dataclasses.dataclass(frozen=True)
class QuadraticCycle:
    """Closed form of normalised SAM's 2-cycle on f = ½ Σ λᵢ xᵢ² along coordinate k (no momentum).

    Attributes:
        amplitude: a, the cycle is {+a e_k, −a e_k}.
        multipliers: eigenvalues of D(T²) on the cycle, shape (d,), in coordinate order.
        spectral_radius: max |multiplier|.
        kind: one of :data:`KINDS`.
    """

    amplitude: float
    multipliers: np.ndarray
    spectral_radius: float
    kind: str


def sam_quadratic_cycle(eigenvalues, k: int, lr: float, rho: float, eps: float = 0.0, *, unit_tol: float = 1e-9) -> QuadraticCycle:
    """Normalised SAM's 2-cycle ±a e_k on the quadratic ½ Σ λᵢ xᵢ² (Bartlett, Long & Bousquet 2023).

    With T(w) = w − ηH(w + ρHw/(‖Hw‖ + eps)) and w = a e_k (a > 0), T(w) = −w gives
    ``a|λ_k| + eps = ηρλ_k²/(2 − ηλ_k)``, i.e. ``a = ηλ_kρ/(2 − ηλ_k)`` for λ_k > 0, eps = 0.
    DT is the same at both points and diagonal: along e_k ``1 − ηλ_k − ηρλ_k² eps/N²`` and along
    e_i ``1 − ηλᵢ − (2 − ηλ_k) λᵢ²/λ_k²`` (N = ‖Hw‖ + eps); the T² multipliers are their squares.
    Around a saddle (λ_k > 0, λ_j < 0) the cycle is stable iff all these have modulus < 1 — for
    a symmetric saddle (λ_j = −λ_k) the transverse factor is 2ηλ_k − 1: stable iff ηλ_k < 1, for
    every ρ. That stable cycle is how normalised SAM stalls at a saddle.

    Args:
        eigenvalues: λ₁…λ_d. k: index of the cycle's direction. lr, rho: η, ρ. eps: SAM's eps.

    Raises:
        ValueError: no such cycle (ηλ_k ≥ 2, λ_k = 0 or a ≤ 0).

    >>> c = sam_quadratic_cycle([2.0, -2.0], 0, lr=0.1, rho=0.5)
    >>> round(c.amplitude, 12), c.multipliers.round(12).tolist(), c.kind
    (0.055555555556, [0.64, 0.36], 'attractor')
    """
    lam = np.asarray(eigenvalues, dtype=np.float64)
    if lam.ndim != 1 or not 0 <= k < lam.size:
        raise ValueError(f"sam_quadratic_cycle: need 1-D eigenvalues and 0 <= k < {lam.size}, got k={k}")
    lk = lam[k]
    if lk == 0 or not 2 - lr * lk > 0:
        raise ValueError(f"sam_quadratic_cycle: no 2-cycle along λ_k = {lk} (need λ_k ≠ 0 and η λ_k < 2)")
    N = lr * rho * lk**2 / (2 - lr * lk)  # ‖Hw‖ + eps on the cycle
    a = (N - eps) / abs(lk)
    if not a > 0:
        raise ValueError(f"sam_quadratic_cycle: amplitude {a} ≤ 0 (eps too large for this ρ, η)")
    m = 1 - lr * lam - (2 - lr * lk) * lam**2 / lk**2
    m[k] = 1 - lr * lk - lr * rho * lk**2 * eps / N**2
    mult = m**2
    rad = float(np.max(np.abs(mult)))
    return QuadraticCycle(float(a), mult, rad, _kind_from_moduli(np.abs(mult), unit_tol))


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


# ---- phase diagrams and edges of stability ------------------------------------------------------


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
    lr_, rho_, mom_ = (np.asarray(a, dtype=np.float64) for a in hp)
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


# ---- basins of attraction -----------------------------------------------------------------------

#: Basin labels that are not critical-point indices.
DIVERGED, UNSETTLED, CYCLE = -1, -2, -3


@dataclasses.dataclass(frozen=True)
class Basins:
    """Where each run from a grid of starts ends.

    Attributes:
        labels: int array (start-grid shape): i ≥ 0 → the end state's *centre* is within ``tol`` of
            ``critical_points[i]`` (the end point itself for a fixed point; the mean of the orbit for a
            p-cycle, e.g. SAM's ±a·v₁ around a minimum or saddle; the mean of the next ``max_period``
            iterates otherwise); ``DIVERGED`` (−1); ``UNSETTLED`` (−2: not near any critical point and
            not periodic); ``CYCLE`` (−3: a p-cycle, p ≥ 2, away from every critical point).
        period: int array: the smallest p ≤ ``max_period`` with ‖Tᵖz − z‖ ≤ cycle_tol·max(1, ‖z‖)
            (1: a fixed point), 0 when none (still moving, or a longer / non-periodic oscillation).
        cycling: bool, ``period ≥ 2``.
        final: end points, shape (*grid, d).
        centre: the point used for the assignment, shape (*grid, d).
        critical_points: the landscape's critical points (label order).
        diverged: bool, the run became non-finite.
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
