"""Periodic orbits of the map: Newton's method on Tᵖ(z) − z, and normalised SAM's 2-cycle in closed form.

Normalised SAM is not differentiable at a critical point, but it is on its cycles (∇f ≠ 0 there): near
a minimum or a saddle it moves on the 2-cycle ±a·v₁, a = ηλ₁ρ/(2 − ηλ₁) (Bartlett, Long & Bousquet
2023), and a stable cycle is how it stalls at a saddle.
"""

from __future__ import annotations

import dataclasses
import functools

import jax
import jax.numpy as jnp
import numpy as np

from ..optim import Optimizer
from ._common import _check_opt, _eps, _is_sam, _kind_from_moduli, _map, _problem, _scalar_hp, _sorted_eigs

__all__ = ["Orbit", "QuadraticCycle", "periodic_orbits", "sam_quadratic_cycle"]


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
