"""Reference experiments from the literature, with the original settings, as library functions.

:func:`beale_trap` reproduces Kim, Park, Choi & Lee, "Stability Analysis of Sharpness-Aware
Minimization" (arXiv 2301.06308), Beale experiment, with the settings of the official code
(Harry24k/sam-saddle): start (1, 2), ``torch.optim.SGD(lr=1e-3/80, momentum=0)`` in float64, SAM's
normalisation ``‖g‖ + 1e-16``, GD (SAM with ρ = 0) run until the official stopping rule fires
(:func:`official_stop_step`, which gives 87 683 steps), then SAM with ρ ∈ {0.1, 0.5, 1.0} for the same
number of steps. GD heads for the minimum (3, 1/2); SAM with large ρ stalls at the saddle (0, 1).
"""

from __future__ import annotations

import dataclasses

import numpy as np

from . import checks, landscapes, optim
from .simulation import simulate

__all__ = ["BealeTrap", "beale_trap", "official_stop_step", "BEALE_LR", "BEALE_X0", "BEALE_RHOS", "BEALE_EPS"]

BEALE_X0 = (1.0, 2.0)
BEALE_LR = 1e-3 / 80
BEALE_RHOS = (0.0, 0.1, 0.5, 1.0)
BEALE_EPS = 1e-16
BEALE_SADDLE = (0.0, 1.0)
BEALE_MINIMUM = (3.0, 0.5)
#: distance to the saddle under which a run counts as trapped there.
TRAP_RADIUS = 1e-2


def official_stop_step(
    trajectory,
    loss_before,
    target,
    *,
    pos_tol=0.15,
    pos_stall_tol=0.55,
    pos_stall_window=500,
    pos_stall_eps=1e-5,
    loss_patience=80,
    loss_rtol=1e-8,
) -> int:
    """Number of steps after which the official runner's ``until_converged`` loop stops.

    The official loop (``sam_stability/optim/runner.py``) appends ``w_{t+1}`` after step ``t`` and
    stops after the first step at which (i) ‖w − target‖ < ``pos_tol``, or (ii) ‖w − target‖ <
    ``pos_stall_tol`` and every move in the last ``pos_stall_window`` points is < ``pos_stall_eps``,
    or (iii) the relative change of the loss (taken *before* each step) stayed below ``loss_rtol``
    for ``loss_patience`` consecutive steps.

    Args:
        trajectory: ``w_1 … w_T``, shape (T, d).
        loss_before: f(w_0) … f(w_{T−1}), shape (T,).
        target: the minimum the rule measures distances to, shape (d,).

    Returns:
        The step count (1 … T); ``T`` when no rule fires.
    """
    first = _first_stop(trajectory, loss_before, target, pos_tol=pos_tol, pos_stall_tol=pos_stall_tol,
                        pos_stall_window=pos_stall_window, pos_stall_eps=pos_stall_eps,
                        loss_patience=loss_patience, loss_rtol=loss_rtol)
    return len(trajectory) if first is None else first


def _first_stop(trajectory, loss_before, target, *, pos_tol, pos_stall_tol, pos_stall_window, pos_stall_eps,
                loss_patience, loss_rtol):
    """The step after which one of :func:`official_stop_step`'s rules fires, or None when none does."""
    traj = np.asarray(trajectory, dtype=np.float64)
    loss = np.asarray(loss_before, dtype=np.float64)
    n = len(traj)
    dist = np.linalg.norm(traj - np.asarray(target, dtype=np.float64), axis=1)
    stops = [np.flatnonzero(dist < pos_tol)]
    if n >= pos_stall_window:
        moves = np.linalg.norm(np.diff(traj, axis=0), axis=1)
        window_max = np.lib.stride_tricks.sliding_window_view(moves, pos_stall_window - 1).max(axis=1)
        t = np.arange(pos_stall_window - 1, n)
        stops.append(t[(dist[t] < pos_stall_tol) & (window_max < pos_stall_eps)])
    rel = np.abs(np.diff(loss)) / (np.abs(loss[:-1]) + 1e-12)  # rel[t-1]: change at loop index t
    small = np.concatenate([[False], rel < loss_rtol])
    idx = np.arange(n)
    streak = idx - np.maximum.accumulate(np.where(small, -1, idx))  # consecutive small changes ending at t
    stops.append(np.flatnonzero(streak >= loss_patience))
    first = min((int(s[0]) for s in stops if len(s)), default=None)
    return None if first is None else first + 1


@dataclasses.dataclass(frozen=True)
class BealeTrap:
    """Result of :func:`beale_trap`; row ``i`` belongs to ``rhos[i]`` (ρ = 0 is GD).

    Attributes:
        steps: the common number of steps: GD's official stopping step, or the ``max_steps`` budget
            when the rule did not fire within it (see ``official``).
        rhos: (4,) radii.
        trajectories: ``w_1 … w_steps``, shape (4, steps, 2).
        loss: f(w_t) at the same times, shape (4, steps).
        cosine: cosine between SAM's two gradients of step t, shape (4, steps).
        final: end points, shape (4, 2).
        dist_saddle, dist_minimum: distances of the end points to (0, 1) and (3, 1/2), shape (4,).
        trapped: ``dist_saddle < TRAP_RADIUS``, shape (4,).
        official: whether GD's official stopping rule fired within ``max_steps`` (else the runs
            stop at ``max_steps``).
    """

    steps: int
    rhos: np.ndarray
    trajectories: np.ndarray
    loss: np.ndarray
    cosine: np.ndarray
    final: np.ndarray
    dist_saddle: np.ndarray
    dist_minimum: np.ndarray
    trapped: np.ndarray
    official: bool = True

    def table(self, budget: str = "max_steps") -> str:
        """A plain-text table of the end points; ``budget`` names the step limit in the header."""
        steps = (f"{self.steps} steps (GD's official stopping step)" if self.official
                 else f"limited to {self.steps} steps by {budget} (GD's official stopping rule did not fire)")
        lines = [f"Beale, start {BEALE_X0}, lr {BEALE_LR:g}, {steps}",
                 f"{'run':>10} {'x':>12} {'y':>12} {'loss':>11} {'|w-(0,1)|':>11} {'|w-(3,.5)|':>11}  cos range (last 1000)  at saddle?"]
        for i, rho in enumerate(self.rhos):
            name = "GD" if rho == 0 else f"SAM {rho:g}"
            cos = self.cosine[i, -1000:]
            x, y = self.final[i]
            lines.append(
                f"{name:>10} {x:12.6f} {y:12.6f} {self.loss[i, -1]:11.4e} {self.dist_saddle[i]:11.3e} "
                f"{self.dist_minimum[i]:11.3e}  [{cos.min():+.3f}, {cos.max():+.3f}]      {'TRAPPED' if self.trapped[i] else 'no'}"
            )
        return "\n".join(lines)


def beale_trap(max_steps: int = 100_000, rhos=BEALE_RHOS) -> BealeTrap:
    """Kim et al.'s Beale experiment with the official code's settings (see module docstring).

    All runs go in one batched simulation of ``max_steps`` steps; GD's stopping step is then found
    with :func:`official_stop_step` and every run is cut there (the same steps for all, as in the
    official code). If the rule does not fire within ``max_steps``, the runs stop there and the
    result says so (``official=False``). ``rhos`` must contain 0 (GD).
    """
    max_steps = checks.integer("beale_trap", "max_steps", max_steps, low=1)
    rhos = np.asarray(rhos, dtype=np.float64)
    if not np.any(rhos == 0):
        raise ValueError("beale_trap: rhos must include 0 (GD sets the number of steps)")
    f = landscapes.get("beale")
    run = simulate(
        f, optim.sam(eps=BEALE_EPS), optim.hparams(lr=BEALE_LR, rho=rhos), BEALE_X0, max_steps,
        record="trajectory", observe=("loss", "cosine"),
    )
    gd = int(np.flatnonzero(rhos == 0)[0])
    loss0 = float(f.loss(np.asarray(BEALE_X0)))
    loss_before = np.concatenate([[loss0], run.observables["loss"][gd, :-1]])
    fired = _first_stop(run.trajectory[gd], loss_before, BEALE_MINIMUM, **official_stop_step.__kwdefaults__)
    steps = max_steps if fired is None else fired
    traj = run.trajectory[:, :steps]
    final = traj[:, -1]
    dist_saddle = np.linalg.norm(final - np.asarray(BEALE_SADDLE), axis=1)
    return BealeTrap(
        steps=steps,
        rhos=rhos,
        trajectories=traj,
        loss=run.observables["loss"][:, :steps],
        cosine=run.observables["cosine"][:, :steps],
        final=final,
        dist_saddle=dist_saddle,
        dist_minimum=np.linalg.norm(final - np.asarray(BEALE_MINIMUM), axis=1),
        trapped=dist_saddle < TRAP_RADIUS,
        official=fired is not None,
    )
