"""Exact symbolic thresholds and attractor regions (sympy).

USAM makes a saddle an attractor when ρ > −1/λ for *every* negative Hessian eigenvalue λ, i.e.
ρ > ρ* = −1/λ₋ with λ₋ the negative eigenvalue closest to zero (for an index-1 saddle, the only one —
"−1/λ_min" in Kim et al.), and 0 < η(λᵢ + ρλᵢ²) < 2 for all i. :func:`rho_threshold` gives ρ*
exactly (sympy); :func:`attractor_region` the full region in (η, ρ, γ) from the Jury conditions of
each 2×2 eigen-block.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import sympy as sp

from ..landscapes import Landscape
from ._common import _block, _descent_jacobian, _exact_hessian, _opt_name
from .jacobians import ETA, GAMMA, RHO

__all__ = ["Region", "rho_threshold", "attractor_region"]


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
