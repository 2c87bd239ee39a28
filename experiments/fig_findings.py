"""Findings beyond Kim et al. (2023): higher-index saddles, USAM's extra fixed points, and the
normalised-SAM 2-cycle trap criterion.

Draws ``fig_findings.{pdf,png}``, six panels:

(a) an index-2 saddle ½(3x² − y² − 4z²): USAM's multipliers 1 − η(λ + ρλ²) over ρ, the spectral
    radius and kind from ``stability.phase_diagram``, and the two readings of Theorem 1's threshold
    (−1/λ_min, Kim et al.; −1/λ₋ for the negative eigenvalue nearest 0, ``rho_threshold``);
(b) random rotated index-≥2 saddles (``landscapes.quadratic``): the ρ at which ``phase_diagram`` first
    says "attractor" against each reading's predicted threshold;
(c) Beale near its saddle (0, 1) at ρ = 0.9 ρ* (ρ* = 4/111): USAM's extra fixed points
    (w + ρ∇f(w) = (0, 1), found by Newton from a grid of starts, classified by ``classify``) and USAM
    runs from a ring around the saddle, some caught by the extra attractor;
(d) the same extra fixed points over ρ/ρ*: a saddle-node pair born below ρ*, whose attracting branch
    merges into the saddle at ρ*;
(e) normalised SAM on ½(λ₊x² + λ₋y²): where its 2-cycle ±a e_x is stable (``sam_quadratic_cycle``,
    closed form) over (ηλ₊, λ₋/λ₊), with the outcome of ``simulate`` from a start near the saddle
    in every cell (captured on the cycle; stalled off it, bounded near the saddle; escaped);
(f) the symmetric saddle λ₋ = −λ₊: the cycle's closed-form spectral radius over ηλ₊ and the simulated
    outcome on a fine grid (boundary ηλ₊ = 1, for every ρ).

Numbers: ``fig_findings.json`` (settings, per-saddle thresholds, fixed points, trap grid) and
``fig_findings_numbers.tex`` (macros ``\\find…``). Run: ``python experiments/fig_findings.py [--quick]``
(about 20 s quick, 85 s full on 2 CPU cores; most of the full run compiles one ``phase_diagram``
per random saddle).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import matplotlib.pyplot as plt
import numpy as np
from matplotlib.lines import Line2D
from matplotlib.patches import Patch
from scipy.stats import special_ortho_group

import _report
import samdyn as sd
from samdyn import stability as st

#: Sizes: quick (CI, seconds) and full.
SIZES = {
    True: dict(saddles=2, rho_points=24, beale_starts=15, branch_rhos=6, ring=8, trap_lr=24, trap_ratio=16,
               trap_steps=4000, sym_points=80, sym_steps=8000, background=(60, 45)),
    False: dict(saddles=60, rho_points=48, beale_starts=41, branch_rhos=41, ring=16, trap_lr=60, trap_ratio=40,
                trap_steps=20000, sym_points=400, sym_steps=40000, background=(300, 225)),
}

# ---- (a, b) higher-index saddles --------------------------------------------------------------------
EXAMPLE_EIGS = (3, -1, -4)     # index 2: Kim's reading −1/λ_min = 1/4, the map's threshold −1/λ₋ = 1
EXAMPLE_LR = 0.05
RAND_LR = 0.005                # η(λ + ρλ²) ≤ 0.005·(5 + 10·25) < 2 on the whole grid: only ρ* decides
RAND_RHO = (0.1, 10.0)         # log grid; its step ratio is < RAND_GAP, so every gap holds a grid point
RAND_MAG = (0.2, 5.0)          # |λ| log-uniform in this range
RAND_GAP = 2.0                 # sampled saddles have λ_min / λ₋ ≥ RAND_GAP (the two readings differ)
SEED = 20230116

# ---- (c, d) USAM's extra fixed points on Beale -------------------------------------------------------
BEALE_LR = 0.01
BEALE_RHO_FRAC = 0.9           # ρ = 0.9 ρ*: below Theorem 1's threshold
BEALE_WINDOW = ((-1.5, 1.5), (0.0, 2.5))   # Newton starts (x range, y range)
BEALE_RING = 0.05              # USAM runs start on a circle of this radius around (0, 1)
BEALE_STEPS = 8000
BRANCH_FRACS = (0.8, 1.0)      # ρ/ρ* range of panel (d)

# ---- (e, f) normalised SAM's 2-cycle trap -------------------------------------------------------------
TRAP_RHO = 1.0                 # the outcome depends on (ηλ₊, λ₋/λ₊) only: ρ scales space (start ∝ ρ)
TRAP_START = (1e-2, 1e-3)      # × ρ: near the saddle, slightly off both axes
TRAP_RATIO = (-3.0, -0.05)     # λ₋/λ₊ range (λ₊ = 1)
TRAP_BAND = 0.1                # cells with |spectral radius − 1| < TRAP_BAND are left out of the agreement
CAPTURE_TOL = 1e-8             # on the cycle: |y| and ||x| − a| below this (× ρ)
ESCAPE = 1e3                   # escaped: |w| above this (× ρ) or diverged
OUTCOMES = ("on the cycle", "stalled off the cycle", "escaped")
TRAP_STYLES = (("o", "#0072B2"), ("^", "#E69F00"), ("x", "#D55E00"))   # marker, colour per outcome


def main():
    args = _report.cli(__doc__)
    jax.config.update("jax_enable_x64", True)
    study = _report.Study("fig_findings", args.quick)
    size = SIZES[args.quick]
    example = higher_index_example()
    random_saddles = random_higher_index(size)
    extra = usam_extra_fixed_points(size)
    trap = sam_trap(size)

    fig, axes = plt.subplots(3, 2, figsize=(_report.TEXT_WIDTH, 8.6), constrained_layout=True)
    draw_example(axes[0, 0], example)
    draw_random(axes[0, 1], random_saddles)
    draw_beale(axes[1, 0], extra)
    draw_branch(axes[1, 1], extra)
    draw_trap(axes[2, 0], trap, size["background"])
    draw_symmetric(axes[2, 1], trap)
    fig.suptitle("Beyond Kim et al.: higher-index saddles (a, b); USAM's extra fixed points on Beale (c, d); "
                 "normalised SAM's 2-cycle trap (e, f)", fontsize=8)
    study.figure(fig)

    values = {"settings": settings(size), "example": _drop(example, "spectral_radius", "kind"),
              "random_saddles": random_saddles, "usam_extra": _drop(extra, "runs"),
              "trap": _drop(trap, "sym_radius", "sym_outcome", "sym_lr")}
    study.numbers(values, macros(example, random_saddles, extra, trap))


def _drop(record, *keys):
    """``record`` without the arrays only the figure needs (the JSON keeps the headline record)."""
    return {k: v for k, v in record.items() if k not in keys}


def settings(size):
    return dict(size, example_eigenvalues=EXAMPLE_EIGS, example_lr=EXAMPLE_LR, rand_lr=RAND_LR, rand_rho=RAND_RHO,
                rand_mag=RAND_MAG, rand_gap=RAND_GAP, seed=SEED, beale_lr=BEALE_LR, beale_rho_frac=BEALE_RHO_FRAC,
                beale_window=BEALE_WINDOW, beale_ring=BEALE_RING, beale_steps=BEALE_STEPS, branch_fracs=BRANCH_FRACS,
                trap_rho=TRAP_RHO, trap_start=TRAP_START, trap_ratio=TRAP_RATIO, trap_band=TRAP_BAND,
                capture_tol=CAPTURE_TOL, escape=ESCAPE, sam_eps=_sam_eps(), dtype="float64")


# ==== (a, b) higher-index saddles ======================================================================

def _rules(eigs, rho, lr):
    """Both readings of Theorem 1 on a ρ grid: attractor iff every multiplier 1 − η(λ + ρλ²) has
    |·| < 1 in the directions the reading checks. "most negative": ρ > −1/λ_min; "nearest 0":
    ρ > −1/λ₋. Both also require η(λ + ρλ²) < 2 for every λ (never binding on our grids)."""
    eigs = np.asarray(eigs, dtype=float)
    neg = eigs[eigs < 0]
    upper = np.all(lr * (eigs[None] + rho[:, None] * eigs[None] ** 2) < 2, axis=1)
    return {"most_negative": (rho > -1 / neg.min()) & upper, "nearest_zero": (rho > -1 / neg.max()) & upper}


def higher_index_example():
    f = sd.landscapes.get("quadratic", eigenvalues=EXAMPLE_EIGS)
    rho = np.linspace(0.0, 1.5, 301)
    pd = st.phase_diagram(sd.optim.usam(), f, np.zeros(3), [EXAMPLE_LR], rho)
    kind = pd.kind[0, :, 0]
    attractor = kind == 0
    rules = _rules(EXAMPLE_EIGS, rho, EXAMPLE_LR)
    return {
        "eigenvalues": EXAMPLE_EIGS, "lr": EXAMPLE_LR, "rho": rho, "spectral_radius": pd.spectral_radius[0, :, 0],
        "kind": kind, "rho_star_exact": str(st.rho_threshold(f, np.zeros(3))),
        "rho_star": float(st.rho_threshold(f, np.zeros(3))), "rho_kim": -1 / min(EXAMPLE_EIGS),
        "rho_onset": float(rho[attractor.argmax()]) if attractor.any() else float("nan"),
        "mismatch_most_negative": int(np.sum(rules["most_negative"] != attractor)),
        "mismatch_nearest_zero": int(np.sum(rules["nearest_zero"] != attractor)),
    }


def _sample_saddle(rng):
    """A random index-≥2 saddle: d ∈ {3, 4, 5}, index k ∈ [2, d − 1], |λ| log-uniform in RAND_MAG, the
    negative magnitudes spread by at least RAND_GAP (resampled until so), a random rotation."""
    d = int(rng.integers(3, 6))
    k = int(rng.integers(2, d))
    while True:
        neg = np.exp(rng.uniform(*np.log(RAND_MAG), k))
        if neg.max() / neg.min() >= RAND_GAP:
            break
    pos = np.exp(rng.uniform(*np.log(RAND_MAG), d - k))
    eigs = np.round(np.concatenate([pos, -neg]), 6)   # six decimals: exact rationals in the landscape
    rot = special_ortho_group.rvs(d, random_state=rng)
    return eigs, rot


def random_higher_index(size):
    rng = np.random.default_rng(SEED)
    rho = np.geomspace(*RAND_RHO, size["rho_points"])
    assert rho[1] / rho[0] < RAND_GAP  # every saddle's gap (−1/λ_min, −1/λ₋) holds a grid point
    records = []
    for _ in range(size["saddles"]):
        eigs, rot = _sample_saddle(rng)
        f = sd.landscapes.get("quadratic", eigenvalues=tuple(eigs.tolist()), rotation=rot)
        pd = st.phase_diagram(sd.optim.usam(), f, np.zeros(eigs.size), [RAND_LR], rho)
        attractor = pd.kind[0, :, 0] == 0
        rules = _rules(eigs, rho, RAND_LR)
        neg = eigs[eigs < 0]
        records.append({
            "eigenvalues": eigs, "rho_kim": -1 / neg.min(), "rho_nearest": -1 / neg.max(),
            "rho_onset": float(rho[attractor.argmax()]) if attractor.any() else float("nan"),
            "attractor": "".join("A" if a else "." for a in attractor),
            "mismatch_most_negative": int(np.sum(rules["most_negative"] != attractor)),
            "mismatch_nearest_zero": int(np.sum(rules["nearest_zero"] != attractor)),
        })
    mis_kim = [r["mismatch_most_negative"] for r in records]
    mis_near = [r["mismatch_nearest_zero"] for r in records]
    return {
        "rho": rho, "lr": RAND_LR, "saddles": records, "count": len(records),
        "misclassified_most_negative": int(np.sum(np.asarray(mis_kim) > 0)),
        "misclassified_nearest_zero": int(np.sum(np.asarray(mis_near) > 0)),
        "cell_fraction_most_negative": float(np.sum(mis_kim) / (len(records) * rho.size)),
        "cell_fraction_nearest_zero": float(np.sum(mis_near) / (len(records) * rho.size)),
    }


# ==== (c, d) USAM's extra fixed points on Beale ==========================================================

def _newton_program(f):
    """Newton on F(w) = w + ρ∇f(w) − c (Jacobian I + ρH(w)), vectorised over starts and ρ.

    ``stability.periodic_orbits`` looks for orbits of period ≥ 2 and drops fixed points, so USAM's
    fixed points are found here, from their defining equation; ``classify`` then checks each one."""

    def solve(w, c, rho):
        def body(_, w):
            step = jnp.linalg.solve(jnp.eye(2) + rho * f.hessian(w), w + rho * f.grad(w) - c)
            return w - step

        w = jax.lax.fori_loop(0, 60, body, w)
        return w, jnp.linalg.norm(w + rho * f.grad(w) - c)

    return jax.jit(jax.vmap(jax.vmap(solve, in_axes=(0, None, None)), in_axes=(None, None, 0)))


def _distinct(points, residuals, c, tol=1e-12):
    """Converged solutions other than c itself, duplicates merged, sorted by x."""
    found = []
    for w, r in zip(points, residuals):
        if np.isfinite(r) and r < tol and np.linalg.norm(w - c) > 1e-6 and all(np.linalg.norm(w - u) > 1e-8 for u in found):
            found.append(w)
    return sorted(found, key=lambda w: tuple(w))


def usam_extra_fixed_points(size):
    f = sd.landscapes.get("beale")
    saddle = next(c for c in f.critical_points() if c.exact == (0, 1))
    c = np.asarray(saddle.point, dtype=float)
    rho_star = float(st.rho_threshold(f, saddle))
    rho = BEALE_RHO_FRAC * rho_star
    (x0, x1), (y0, y1) = BEALE_WINDOW
    n = size["beale_starts"]
    starts = np.stack(np.meshgrid(np.linspace(x0, x1, n), np.linspace(y0, y1, n)), -1).reshape(-1, 2)
    fracs = np.unique(np.concatenate([np.linspace(*BRANCH_FRACS, size["branch_rhos"]), [BEALE_RHO_FRAC]]))
    solve = _newton_program(f)
    w, res = (np.asarray(a) for a in solve(jnp.asarray(starts), jnp.asarray(c), jnp.asarray(fracs * rho_star)))
    usam = sd.optim.usam()
    branch = []
    for i, frac in enumerate(fracs):
        hp = sd.optim.hparams(lr=BEALE_LR, rho=frac * rho_star)
        for p in _distinct(w[i], res[i], c):
            k = st.classify(usam, f, p, hp)
            branch.append({"rho_frac": float(frac), "point": p, "kind": k.kind, "spectral_radius": k.spectral_radius,
                           "residual": float(np.linalg.norm(p + frac * rho_star * np.asarray(f.grad(p)) - c)),
                           "grad_norm": float(np.linalg.norm(np.asarray(f.grad(p))))})
    at_rho = [b for b in branch if b["rho_frac"] == BEALE_RHO_FRAC]
    attracting = [b for b in at_rho if b["kind"] == "attractor"]
    # USAM from a ring around the saddle, at ρ = 0.9 ρ*
    angles = 2 * np.pi * np.arange(size["ring"]) / size["ring"]
    ring = c + BEALE_RING * np.stack([np.cos(angles), np.sin(angles)], -1)
    every = 10
    run = sd.simulate(f, usam, sd.optim.hparams(lr=BEALE_LR, rho=rho), ring, BEALE_STEPS, record="trajectory", every=every)
    caught = np.zeros(len(ring), dtype=bool)
    if attracting:
        caught = np.linalg.norm(run.final - attracting[0]["point"], axis=-1) < 1e-6
    first_frac = min((b["rho_frac"] for b in branch), default=float("nan"))
    below = fracs[fracs < first_frac]
    return {
        "rho_star": rho_star, "rho": rho, "rho_frac": BEALE_RHO_FRAC, "lr": BEALE_LR, "saddle": c,
        "points": at_rho, "count": len(at_rho), "attractor": attracting[0] if attracting else None,
        "branch": branch, "born_between": [float(below.max()) if below.size else float("nan"), first_frac],
        "ring": ring, "runs": np.concatenate([ring[:, None], run.trajectory], axis=1), "caught": caught,
        "caught_count": int(caught.sum()), "ring_count": len(ring),
    }


# ==== (e, f) normalised SAM's 2-cycle trap ===============================================================

class SaddleRatio:
    """½(x² + r y²) with the ratio r = λ₋/λ₊ carried as a third coordinate whose gradient is held at 0.

    The frozen coordinate adds nothing to ‖g‖, so SAM's (x, y) dynamics are exactly those on
    ``landscapes.quadratic((1, r))``; carrying r in the state lets one compiled ``simulate`` run the
    whole (ηλ₊, r) grid (η batched as a hyperparameter, r as the start's third coordinate).
    """

    dim = 3
    name = "saddle_ratio"

    @staticmethod
    def loss(w):
        return 0.5 * (w[0] ** 2 + w[2] * w[1] ** 2)

    @staticmethod
    def grad(w):
        return jnp.stack([w[0], w[2] * w[1], jnp.zeros_like(w[2])])


def _sam_eps():
    return float(dict(sd.optim.sam().options)["eps"])


def _closed_form(lr, ratio):
    """Closed-form 2-cycle of normalised SAM on ½(x² + r y²) along x: (stable, spectral radius, amplitude)."""
    cyc = [[st.sam_quadratic_cycle([1.0, r], 0, float(x), TRAP_RHO, eps=_sam_eps()) for r in ratio] for x in lr]
    stable = np.array([[c.kind == "attractor" for c in row] for row in cyc])
    radius = np.array([[c.spectral_radius for c in row] for row in cyc])
    amplitude = np.array([[c.amplitude for c in row] for row in cyc])
    return stable, radius, amplitude


def _outcome(final, diverged, amplitude):
    """0: on the cycle ±a e_x; 1: bounded but off it (stalled); 2: escaped."""
    x, y = np.abs(final[..., 0]), np.abs(final[..., 1])
    cycle = (y < CAPTURE_TOL * TRAP_RHO) & (np.abs(x - amplitude) < CAPTURE_TOL * TRAP_RHO)
    escaped = diverged | ~np.all(np.abs(final[..., :2]) <= ESCAPE * TRAP_RHO, axis=-1)
    return np.where(cycle, 0, np.where(escaped, 2, 1))


def _simulate_trap(lr, ratio, steps, chunk):
    """SAM from the start near the saddle for every (η, r) (λ₊ = 1): a Run of batch shape (len(lr), len(ratio)).
    ``chunk``: particles per compiled call, the same for every call so that one program serves them all."""
    x0 = np.stack([np.full(ratio.size, TRAP_START[0] * TRAP_RHO), np.full(ratio.size, TRAP_START[1] * TRAP_RHO), ratio], -1)
    return sd.simulate(SaddleRatio(), sd.optim.sam(), sd.optim.hparams(lr=lr, rho=TRAP_RHO), x0, steps, chunk_size=chunk)


def sam_trap(size):
    lr = np.linspace(0.0, 2.0, size["trap_lr"] + 2)[1:-1]          # ηλ₊ in (0, 2): the cycle exists
    ratio = np.linspace(*TRAP_RATIO, size["trap_ratio"])
    stable, radius, amplitude = _closed_form(lr, ratio)
    chunk = size["sym_points"]
    run = _simulate_trap(lr, ratio, size["trap_steps"], chunk)
    outcome = _outcome(run.final, run.diverged, amplitude)
    away = np.abs(radius - 1) >= TRAP_BAND
    agree = (outcome == 0) == stable
    # symmetric saddle: a fine cut through ηλ₊ = 1
    sym_lr = np.linspace(0.5, 1.5, size["sym_points"])
    sym_stable, sym_radius, sym_amp = _closed_form(sym_lr, np.array([-1.0]))
    sym_run = _simulate_trap(sym_lr, np.array([-1.0]), size["sym_steps"], chunk)
    sym_out = _outcome(sym_run.final, sym_run.diverged, sym_amp)[:, 0]
    captured = sym_lr[sym_out == 0]
    boundary = float(captured.max() + 0.5 * (sym_lr[1] - sym_lr[0])) if captured.size else float("nan")
    return {
        "lr": lr, "ratio": ratio,
        "outcome": ["".join("cso"[o] for o in row) for row in outcome.T],   # rows: ratio; c/s/o = cycle/stalled/escaped
        "outcome_codes": dict(enumerate(OUTCOMES)), "steps": size["trap_steps"],
        "cells": int(outcome.size), "cells_away": int(away.sum()),
        "agreement_away": float(agree[away].mean()), "agreement_all": float(agree.mean()),
        "disagree_away": int((~agree & away).sum()),
        "stalled_off_cycle": int((outcome == 1).sum()),
        "sym_lr": sym_lr, "sym_radius": sym_radius[:, 0], "sym_outcome": sym_out,
        "sym_outcome_text": "".join("cso"[o] for o in sym_out),
        "sym_boundary": boundary, "sym_steps": size["sym_steps"],
        "sym_agreement": float(np.mean((sym_out == 0) == sym_stable[:, 0])),
    }


# ==== drawing ===============================================================================================

def _shade(ax, x, mask, label, color="0.85"):
    """Shade the x-intervals where ``mask`` holds."""
    edges = np.flatnonzero(np.diff(np.concatenate([[0], mask.astype(int), [0]])))
    for lo, hi in zip(edges[::2], edges[1::2]):
        ax.axvspan(x[lo], x[min(hi, x.size - 1)], color=color, lw=0, label=label if lo == edges[0] else None)


def draw_example(ax, ex):
    rho, lr = ex["rho"], ex["lr"]
    _shade(ax, rho, ex["kind"] == 0, "attractor (phase_diagram)")
    for lam in ex["eigenvalues"]:
        ax.plot(rho, 1 - lr * (lam + rho * lam**2), label=f"1 − η(λ + ρλ²), λ = {lam}", markevery=25)
    ax.plot(rho[::10], ex["spectral_radius"][::10], "k.", ms=3, ls="", label="spectral radius (phase_diagram)")
    ax.axhline(1, color="0.6", lw=0.6)
    for x, text, color in ((ex["rho_kim"], "−1/λ_min", "0.35"), (ex["rho_star"], "−1/λ₋ = ρ*", "k")):
        ax.axvline(x, color=color, ls=":", lw=1)
        ax.text(x, 1.22, " " + text, fontsize=6, color=color, va="top")
    ax.set(xlabel="ρ (USAM perturbation radius)", ylabel="multiplier of USAM's map", ylim=(-0.05, 1.25),
           xlim=(rho[0], rho[-1]), title="(a) index-2 saddle ½(3x² − y² − 4z²), USAM, η = 0.05:\n"
           "an attractor only once ρ > −1/λ₋ (nearest 0)")
    ax.legend(fontsize=5.5, loc="lower left", framealpha=0.9)


def draw_random(ax, rs):
    rec = rs["saddles"]
    near = np.array([r["rho_nearest"] for r in rec])
    kim = np.array([r["rho_kim"] for r in rec])
    onset = np.array([r["rho_onset"] for r in rec])
    lim = np.array(RAND_RHO)
    step = rs["rho"][1] / rs["rho"][0]
    ax.fill_between(lim, lim, lim * step, color="0.85", lw=0, label="within one ρ-grid step above")
    ax.plot(lim, lim, "k-", lw=0.8, marker="", label="onset = prediction")
    ax.plot(near, onset, "o", color="#0072B2", ms=3.5, mfc="none", ls="", label="prediction −1/λ₋ (nearest 0)")
    ax.plot(kim, onset, "s", color="#D55E00", ms=3, ls="", label="prediction −1/λ_min (most negative)")
    ax.set(xscale="log", yscale="log", xlim=lim, ylim=lim, xlabel="predicted threshold ρ",
           ylabel="measured onset ρ (first attractor)",
           title=f"(b) {rs['count']} random rotated saddles of index ≥ 2,\nUSAM, η = {rs['lr']}: phase_diagram vs rules")
    ax.legend(fontsize=5.5, loc="lower right", framealpha=0.9)


def _beale_contour(ax, window):
    f = sd.landscapes.get("beale")
    (x0, x1), (y0, y1) = window
    X, Y = np.meshgrid(np.linspace(x0, x1, 200), np.linspace(y0, y1, 200))
    Z = np.asarray(jax.vmap(f.loss)(jnp.asarray(np.stack([X.ravel(), Y.ravel()], -1)))).reshape(X.shape)
    return ax.contour(X, Y, Z, levels=np.linspace(12, 17, 11), cmap="cividis", linewidths=0.6)


def draw_beale(ax, ex):
    window = ((-0.65, 0.3), (0.7, 1.65))
    cs = _beale_contour(ax, window)
    plt.colorbar(cs, ax=ax, label="Beale f(w)", pad=0.02, fraction=0.05)
    for traj, caught in zip(ex["runs"], ex["caught"]):
        ax.plot(traj[:, 0], traj[:, 1], color="#009E73" if caught else "#CC79A7", ls="-" if caught else "--",
                marker="", lw=0.8)
    ax.plot(*ex["saddle"], "kx", ms=6, mew=1.5, ls="")
    for p in ex["points"]:
        filled = p["kind"] == "attractor"
        ax.plot(*p["point"], "o" if filled else "s", color="k", mfc="k" if filled else "w", ms=5, ls="", zorder=5)
    ax.set(xlim=window[0], ylim=window[1], xlabel="x", ylabel="y",
           title=f"(c) USAM on Beale below Theorem 1's threshold:\nρ = {ex['rho_frac']} ρ* = {ex['rho']:.4f}, "
                 f"η = {ex['lr']}, runs from |w − (0, 1)| = {BEALE_RING}")
    handles = [Line2D([], [], color="k", marker="x", ls="", ms=5, label="saddle (0, 1)"),
               Line2D([], [], color="k", marker="o", ls="", ms=4, label="USAM-only fixed point: attractor"),
               Line2D([], [], color="k", marker="s", mfc="w", ls="", ms=4, label="USAM-only fixed point: saddle"),
               Line2D([], [], color="#009E73", label=f"run caught by it ({ex['caught_count']}/{ex['ring_count']})"),
               Line2D([], [], color="#CC79A7", ls="--", label="run escaped")]
    ax.legend(handles=handles, fontsize=5.5, loc="lower left", framealpha=0.9)


def draw_branch(ax, ex):
    for kind, marker, mfc in (("attractor", "o", "k"), ("saddle", "s", "w"), ("non-hyperbolic", "D", "0.5"),
                              ("repeller", "^", "w")):
        pts = [b for b in ex["branch"] if b["kind"] == kind]
        if pts:
            ax.plot([b["rho_frac"] for b in pts], [np.linalg.norm(b["point"] - ex["saddle"]) for b in pts], marker,
                    color="k", mfc=mfc, ms=3.5, ls="", label=f"USAM-only fixed point: {kind}")
    ax.axvline(1.0, color="k", ls=":", lw=1)
    ax.text(0.995, 0.45, "ρ* = 4/111", ha="right", va="center", fontsize=6, transform=ax.get_xaxis_transform())
    ax.axvline(ex["rho_frac"], color="0.5", ls="--", lw=0.8, label="ρ of panel (c)")
    ax.set(xlabel="ρ / ρ*", ylabel="distance from the saddle (0, 1)", xlim=BRANCH_FRACS, ylim=(0, None),
           title="(d) fixed points with w + ρ∇f(w) = (0, 1), w ≠ (0, 1):\nborn in pairs below ρ*, η = "
                 f"{ex['lr']}")
    ax.legend(fontsize=5.5, loc="lower left", framealpha=0.9)


def draw_trap(ax, tr, background):
    lr, ratio = tr["lr"], tr["ratio"]
    xs = np.linspace(0, 2, background[0] + 2)[1:-1]
    ys = np.linspace(*TRAP_RATIO, background[1])
    stable = _closed_form(xs, ys)[0].T.astype(float)
    ax.contourf(xs, ys, stable, levels=[0.5, 1.5], colors=["0.85"])
    ax.contour(xs, ys, stable, levels=[0.5], colors="k", linewidths=0.8)
    out = np.array([["cso".index(ch) for ch in row] for row in tr["outcome"]]).T   # (lr, ratio)
    L, R = np.meshgrid(lr, ratio, indexing="ij")
    for code, (marker, color) in enumerate(TRAP_STYLES):
        m = out == code
        ax.scatter(L[m], R[m], marker=marker, s=5, c=color, linewidths=0.6, label=f"simulated: {OUTCOMES[code]}")
    ax.set(xlim=(0, 2), ylim=TRAP_RATIO, xlabel="ηλ₊ (step size × positive curvature)", ylabel="λ₋ / λ₊",
           title="(e) normalised SAM on ½(λ₊x² + λ₋y²) from near the saddle:\n"
                 "where is the 2-cycle ±a·e_x stable (any ρ)?")
    handles = [Patch(facecolor="0.85", edgecolor="k", lw=0.8, label="cycle stable (closed form)")] + \
        ax.get_legend_handles_labels()[0]
    ax.legend(handles=handles, fontsize=5.5, loc="upper center", bbox_to_anchor=(0.5, -0.2), ncol=2, frameon=False)


def draw_symmetric(ax, tr):
    lr, rad, out = tr["sym_lr"], tr["sym_radius"], tr["sym_outcome"]
    ax.plot(lr, rad, "k-", marker="", label="closed form: spectral radius of DT² on the cycle")
    ax.axhline(1, color="0.6", lw=0.6)
    stride = max(1, lr.size // 80)
    for code, (marker, color) in enumerate(TRAP_STYLES):
        m = (out == code) & (np.arange(lr.size) % stride == 0)
        if m.any():
            ax.plot(lr[m], rad[m], marker, color=color, ms=3, ls="", label=f"simulated: {OUTCOMES[code]}")
    ax.axvline(tr["sym_boundary"], color="k", ls=":", lw=1)
    ax.text(tr["sym_boundary"], 2.6, f"measured edge\nηλ₊ = {tr['sym_boundary']:.3f} ", fontsize=6, ha="right", va="top")
    ax.set(xlabel="ηλ₊ (λ₋ = −λ₊)", ylabel="spectral radius of DT²", xlim=(lr[0], lr[-1]), ylim=(0, 4),
           title=f"(f) symmetric saddle, {tr['sym_steps']} steps:\ncaptured on the cycle iff ηλ₊ < 1")
    ax.legend(fontsize=5.5, loc="upper left", framealpha=0.9)


# ==== macros ================================================================================================

def macros(ex, rs, extra, tr):
    num = _report.num
    m = {
        "findExRhoKim": num(ex["rho_kim"]), "findExRhoStar": num(ex["rho_star"]),
        "findExMismatchKim": str(ex["mismatch_most_negative"]), "findExMismatchNear": str(ex["mismatch_nearest_zero"]),
        "findRandCount": str(rs["count"]), "findRandRhoPoints": str(rs["rho"].size),
        "findRandMisKim": str(rs["misclassified_most_negative"]),
        "findRandMisNear": str(rs["misclassified_nearest_zero"]),
        "findRandCellFracKim": num(rs["cell_fraction_most_negative"]),
        "findRandCellFracNear": num(rs["cell_fraction_nearest_zero"]),
        "findUsamRho": num(extra["rho"]), "findUsamRhoFrac": num(extra["rho_frac"]), "findUsamLr": num(extra["lr"]),
        "findUsamExtraCount": str(extra["count"]),
        "findUsamCaught": str(extra["caught_count"]), "findUsamRuns": str(extra["ring_count"]),
        "findUsamBornLo": num(extra["born_between"][0]), "findUsamBornHi": num(extra["born_between"][1]),
        "findTrapAgree": num(tr["agreement_away"]), "findTrapAgreeAll": num(tr["agreement_all"]),
        "findTrapBand": num(TRAP_BAND), "findTrapCellsAway": str(tr["cells_away"]), "findTrapCells": str(tr["cells"]),
        "findTrapStalled": str(tr["stalled_off_cycle"]), "findTrapDisagree": str(tr["disagree_away"]),
        "findTrapSteps": str(tr["steps"]), "findTrapSymSteps": str(tr["sym_steps"]), "findTrapSymBoundary": num(tr["sym_boundary"], 4),
    }
    a = extra["attractor"]
    if a is not None:
        m |= {"findUsamAttrX": num(a["point"][0]), "findUsamAttrY": num(a["point"][1]),
              "findUsamAttrRadius": num(a["spectral_radius"], 4)}
    return m


if __name__ == "__main__":
    main()
