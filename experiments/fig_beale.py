"""Kim et al.'s Beale experiment at the official settings: GD vs normalised SAM on the contour, the
cosine between SAM's two gradients, the perturbed points alternating across the saddle, and a ρ scan
locating the stall boundary.

Settings (Harry24k/sam-saddle): start (1, 2), lr 1e-3/80 = 1.25e-5, float64, SAM's perturbation
ρ g/(‖g‖ + 1e-16), no momentum; GD runs until the official stopping rule fires (87,683 steps) and
every SAM run as many (``samdyn.reference.beale_trap``, equal to the official-style torch loop, see
``tests/test_reference.py``). The ρ scan runs the same map for ρ ∈ [0, 1] (step 0.01), then refines
the bracket of the stall boundary (step 5e-4); a run has stalled when it ends within 1e-2 of (0, 1).

Panels: (a) paths on the contour; (b) cos∠(∇f(w_t), ∇f(w_t + e_t)) over t for ρ = 0.5;
(c) the perturbed points w_t + e_t for t = 5000…5007; (d) final distance to the saddle vs ρ.
Writes ``fig_beale.{pdf,png,json,npz}`` and ``fig_beale_numbers.tex``.

Run time (2 cores): full ≈ 25 s; ``--quick`` (10,000 steps, coarse ρ grid) ≈ 10 s.
"""

from __future__ import annotations

from matplotlib import patheffects
import matplotlib.pyplot as plt
import numpy as np

import samdyn as sd
from samdyn import plotting, reference

import _report

SADDLE = np.asarray(reference.BEALE_SADDLE)
MINIMUM = np.asarray(reference.BEALE_MINIMUM)
COS_AT = 2000                      # Kim et al.: cosine ≈ −0.8 near t = 2000
PERTURBED = np.arange(5000, 5008)  # Kim et al.: w^p at t = 5000…5007 alternate across the saddle


def perturbed_points(f, w, rho, eps=reference.BEALE_EPS):
    """SAM's perturbed points w + ρ∇f(w)/(‖∇f(w)‖ + eps) for each row of ``w`` (shape (n, 2))."""
    g = np.stack([np.asarray(f.grad(wi)) for wi in w])
    return w + rho * g / (np.linalg.norm(g, axis=1, keepdims=True) + eps)


def rho_scan(f, rhos, steps):
    """Final distance to the saddle (0, 1) of SAM from (1, 2) after ``steps`` steps, for each ρ."""
    run = sd.simulate(f, sd.optim.sam(eps=reference.BEALE_EPS), sd.optim.hparams(lr=reference.BEALE_LR, rho=rhos),
                      reference.BEALE_X0, steps, progress=False)
    return np.linalg.norm(run.final - SADDLE, axis=-1)


def stall_boundary(rhos, dist):
    """(ρ_lo, ρ_hi): the largest ρ that did not stall and the smallest ρ from which every larger ρ stalls."""
    stalled = dist < reference.TRAP_RADIUS
    tail = np.flatnonzero(~stalled)
    hi = 0 if len(tail) == 0 else tail[-1] + 1
    if hi >= len(rhos):
        raise RuntimeError("fig_beale: the largest ρ of the scan did not stall")
    return float(rhos[hi - 1]) if hi > 0 else float("nan"), float(rhos[hi])


def main():
    args = _report.cli(__doc__)
    study = _report.Study("fig_beale", args.quick)
    f = sd.landscapes.get("beale")
    max_steps = 10_000 if args.quick else 100_000
    trap = reference.beale_trap(max_steps=max_steps)
    steps = trap.steps
    i_half = int(np.flatnonzero(trap.rhos == 0.5)[0])

    # ρ scan: coarse grid, then the bracket of the boundary refined
    coarse = np.round(np.arange(0.0, 1.0 + 1e-9, 0.05 if args.quick else 0.01), 6)
    d_coarse = rho_scan(f, coarse, steps)
    lo, hi = stall_boundary(coarse, d_coarse)
    fine = np.round(np.arange(lo, hi + 1e-9, 0.0025 if args.quick else 0.0005), 6)
    d_fine = rho_scan(f, fine, steps)
    rhos, first = np.unique(np.concatenate([coarse, fine]), return_index=True)
    dist = np.concatenate([d_coarse, d_fine])[first]
    rho_lo, rho_hi = stall_boundary(rhos, dist)
    non_monotone = int(np.sum((dist < reference.TRAP_RADIUS) & (rhos < rho_lo)))

    wp = perturbed_points(f, trap.trajectories[i_half, PERTURBED - 1], 0.5)
    w_at = trap.trajectories[i_half, PERTURBED - 1]
    cos = trap.cosine[i_half]
    late = cos[COS_AT + 500: min(50_000, steps)]

    fig, axes = plt.subplots(2, 2, figsize=(_report.TEXT_WIDTH, 5.6))
    (ax_a, ax_b), (ax_c, ax_d) = axes

    plotting.contour(ax_a, f, domain=((-0.5, 3.5), (-0.25, 2.25)), levels=30, resolution=200, cmap="cividis")
    cbar = fig.colorbar(ax_a.collections[0], ax=ax_a, pad=0.02)
    cbar.set_label(r"$\log_{10}(f - f_{\min} + 10^{-3})$")
    colors = ["#FFFFFF", "#D55E00", "#000000", "#CC79A7"]
    styles = ["-", "--", "-.", ":"]
    markers = ["o", "s", "^", "v"]
    for k, rho in enumerate(trap.rhos):
        path = np.concatenate([np.asarray(reference.BEALE_X0)[None], trap.trajectories[k]])
        label = "GD" if rho == 0 else f"SAM ρ = {rho:g}"
        ax_a.plot(path[::50, 0], path[::50, 1], color=colors[k], ls=styles[k], lw=1.4, label=label,
                  marker=markers[k], markevery=[-1], markeredgecolor="k", markersize=5,
                  path_effects=[patheffects.withStroke(linewidth=2.4, foreground="k")] if k == 0 else None)
    ax_a.plot(*reference.BEALE_X0, "P", color="w", markeredgecolor="k", markersize=7, label="start (1, 2)")
    ax_a.set(xlabel="x (dimensionless)", ylabel="y (dimensionless)",
             title=f"(a) GD vs SAM, η = 1.25e-5, {steps:,} steps")
    ax_a.legend(loc="upper right", framealpha=0.9, fontsize=6)

    t = np.arange(1, steps + 1)
    shown = slice(0, min(50_000, steps))
    ax_b.plot(t[shown], cos[shown], lw=0.4, color="#0072B2", label="ρ = 0.5")
    ax_b.plot([COS_AT], [cos[COS_AT - 1]], "o", color="#D55E00", markeredgecolor="k",
              label=f"t = {COS_AT}: cos = {cos[COS_AT - 1]:.3f}")
    ax_b.axhline(0, color="k", lw=0.5, ls=":")
    ax_b.set_xscale("log")
    ax_b.set(xlabel="step t", ylabel=r"cos$\angle(\nabla f(w_t), \nabla f(w_t + e_t))$", ylim=(-1.05, 1.05),
             title="(b) cosine between SAM's two gradients, ρ = 0.5")
    ax_b.legend(loc="lower left", fontsize=6)

    ax_c.plot(wp[:, 0], wp[:, 1], "-", color="0.6", lw=0.6, zorder=1)
    ax_c.plot(wp[0::2, 0], wp[0::2, 1], "o", color="#0072B2", markeredgecolor="k", label="$w_t + e_t$, t even")
    ax_c.plot(wp[1::2, 0], wp[1::2, 1], "s", color="#D55E00", markeredgecolor="k", label="$w_t + e_t$, t odd")
    ax_c.plot(w_at[:, 0], w_at[:, 1], "x", color="k", label="$w_t$ (within 2e-4 of the saddle)")
    for parity, (dx, ha) in enumerate(((-8, "right"), (8, "left"))):  # even t at x ≈ +0.5, odd at −0.5
        ax_c.annotate("t = " + ", ".join(str(tt) for tt in PERTURBED[parity::2]), wp[parity::2].mean(axis=0),
                      textcoords="offset points", xytext=(dx, 0), ha=ha, va="center", fontsize=6)
    ax_c.set(xlabel="x (dimensionless)", ylabel="y (dimensionless)", xlim=(-0.75, 0.75), ylim=(0.965, 1.035),
             title="(c) perturbed points t = 5000…5007, ρ = 0.5")
    ax_c.legend(loc="lower right", fontsize=6)

    stalled = dist < reference.TRAP_RADIUS
    ax_d.semilogy(rhos[~stalled], dist[~stalled], "o", color="#D55E00", markeredgecolor="k", ms=3, label="escapes")
    ax_d.semilogy(rhos[stalled], dist[stalled], "s", color="#0072B2", markeredgecolor="k", ms=3, label="stalls (< 1e-2)")
    ax_d.axhline(reference.TRAP_RADIUS, color="k", lw=0.6, ls=":")
    ax_d.axvline(rho_hi, color="k", lw=0.8, ls="--", label=f"boundary ρ ≈ {rho_hi:.4g}")
    ax_d.axvline(0.35, color="0.5", lw=0.8, ls="-.", label="Kim et al.: ρ ≥ 0.35 stalls")
    ax_d.set(xlabel="ρ (dimensionless)", ylabel=r"$\|w_T - (0, 1)\|$ (dimensionless)",
             title=f"(d) final distance to the saddle, T = {steps:,}")
    ax_d.legend(loc="center right", fontsize=6)
    fig.suptitle("Beale, official settings: SAM with large ρ stalls at the saddle (0, 1)", fontsize=9)
    fig.tight_layout()
    study.figure(fig)

    np.savez_compressed(study.path(".npz"), rhos=trap.rhos, final=trap.final, cosine_half=cos[: min(50_000, steps)],
                        paths=trap.trajectories[:, ::100], perturbed=wp, w_perturbed_steps=w_at, scan_rho=rhos,
                        scan_dist=dist)
    gd, s01, s05, s10 = range(4)
    values = {
        "settings": {"x0": reference.BEALE_X0, "lr": reference.BEALE_LR, "eps": reference.BEALE_EPS, "dtype": "float64",
                     "rhos": trap.rhos, "steps": steps, "official_stop_rule_fired": trap.official,
                     "scan_coarse_step": float(coarse[1] - coarse[0]), "scan_fine_step": float(fine[1] - fine[0]),
                     "trap_radius": reference.TRAP_RADIUS},
        "final": trap.final, "dist_saddle": trap.dist_saddle, "dist_minimum": trap.dist_minimum,
        "cos_at_2000": cos[COS_AT - 1], "cos_late_range": [late.min(), late.max()] if len(late) else None,
        "perturbed_points": wp, "stall_rho_lo": rho_lo, "stall_rho_hi": rho_hi,
        "stalled_below_boundary": non_monotone,
    }
    macros = {
        "bealeSteps": f"{steps:,}".replace(",", "{,}"),
        "bealeGdDistMin": _report.num(trap.dist_minimum[gd]),
        "bealeSamPointOneDistMin": _report.num(trap.dist_minimum[s01]),
        "bealeSamHalfDistSaddle": _report.num(trap.dist_saddle[s05]),
        "bealeSamOneDistSaddle": _report.num(trap.dist_saddle[s10]),
        "bealeCosTwoThousand": _report.num(cos[COS_AT - 1]),
        "bealePerturbedAbsX": _report.num(np.mean(np.abs(wp[:, 0]))),
        "bealePerturbedYEven": _report.num(np.mean(wp[0::2, 1]), 4),
        "bealePerturbedYOdd": _report.num(np.mean(wp[1::2, 1]), 4),
        "bealeStallRhoLo": _report.num(rho_lo, 4),
        "bealeStallRho": _report.num(rho_hi, 4),
    }
    if len(late):
        macros["bealeCosLateMin"] = _report.num(late.min())
        macros["bealeCosLateMax"] = _report.num(late.max())
    study.numbers(values, macros)
    print(trap.table())
    print(f"stall boundary: ρ in ({rho_lo}, {rho_hi}]; cos at t={COS_AT}: {cos[COS_AT - 1]:.4f}")


if __name__ == "__main__":
    main()
