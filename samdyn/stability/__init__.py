"""Stability of SAM as a map: Jacobians, fixed points, thresholds, 2-cycles, phase diagrams, basins.

The map studied is the optimizer's own ``step`` (``samdyn.optim``), the function that ``simulate``
runs, on the *full* state ``z = (w, v)`` — parameters ``w ∈ ℝᵈ`` and momentum buffer ``v ∈ ℝᵈ``::

    T(w, v) = (w', v'),   v' = γ v + d(w),   w' = w − η v'   (heavy ball; torch.optim.SGD)
                                             w' = w − η (d(w) + γ v')   (Nesterov)

with ``d(w) = ∇f(w)`` (GD), ``∇f(w + ρ∇f(w))`` (USAM) or ``∇f(w + ρ ∇f/‖∇f‖)`` (SAM). A fixed point
is ``(w*, 0)`` with ``d(w*) = 0`` (every critical point; for USAM/SAM also the rare points whose
perturbed point is critical).

One module per question; every public name is re-exported here (``sd.stability.classify``):

* :mod:`~samdyn.stability.jacobians` — what is the Jacobian of the map at a state, exactly (sympy)
  or by ``jax.jacfwd``, and what kind of fixed point is this? ``jacobian``, ``classify``,
  ``exact_jacobian``, ``Classification``, ``KINDS``, ``NotAFixedPointError``, ``NonDifferentiableError``.
* :mod:`~samdyn.stability.thresholds` — for which ρ does a saddle become an attractor, and where in
  (η, ρ, γ) is a critical point one, as exact inequalities? ``rho_threshold``, ``attractor_region``.
* :mod:`~samdyn.stability.cycles` — which periodic orbits does the map have (normalised SAM's
  2-cycle)? ``periodic_orbits``, ``sam_quadratic_cycle``.
* :mod:`~samdyn.stability.lyapunov` — do nearby orbits separate? ``lyapunov_exponents``.
* :mod:`~samdyn.stability.diagrams` — how does the kind change over an (η, ρ, γ) grid, and what is the
  largest stable curvature (edge of stability)? ``phase_diagram``, ``largest_stable_curvature``,
  ``usam_edge``, ``sam_edge``.
* :mod:`~samdyn.stability.attraction` — where do runs from a grid of starts end (basins of
  attraction)? ``basins``, ``Basins``. (Not a module ``basins``: that would shadow the function
  ``sd.stability.basins``.)

Imports flow one way: ``_common`` (shared private helpers) → ``jacobians`` → ``thresholds``,
``diagrams``; ``cycles``, ``lyapunov`` and ``attraction`` need only ``_common``.
"""

from .attraction import CYCLE, DIVERGED, UNSETTLED, Basins, basins
from .cycles import Orbit, QuadraticCycle, periodic_orbits, sam_quadratic_cycle
from .diagrams import PhaseDiagram, largest_stable_curvature, phase_diagram, sam_edge, usam_edge
from .jacobians import (
    ETA,
    GAMMA,
    KINDS,
    NON_DIFFERENTIABLE,
    RHO,
    Classification,
    NonDifferentiableError,
    NotAFixedPointError,
    classify,
    exact_jacobian,
    jacobian,
)
from .lyapunov import lyapunov_exponents
from .thresholds import Region, attractor_region, rho_threshold

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
