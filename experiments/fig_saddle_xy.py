"""Kim et al.'s x² − y² demo: GD escapes the saddle, normalised SAM is captured, USAM below / at / above
ρ* = −1/λ = 0.5.

Settings (Harry24k/sam-saddle): f = x² − y² (Hessian eigenvalues 2, −2), start (−3, −0.01), lr 0.01,
500 steps, float32, no momentum. Runs: GD; normalised SAM ρ = 0.5 (ρ g/(‖g‖ + 1e-12)); the official
demo's variant that does not zero the gradients between SAM's passes (descends along
∇f(w) + ∇f(w + e), ``sam(accumulate=True)``); USAM ρ ∈ {0.4, 0.5, 0.6}. On this quadratic USAM and GD
are linear: y_t = (1 − η(λ + ρλ²))ᵗ y₀ with λ = −2, so ρ = 0.5 is the marginal case (factor exactly 1)
and the figure draws these closed forms; SAM ends on its 2-cycle ±a·e_x, a = ηλρ/(2 − ηλ) (λ = 2).

Panels: (a) paths near the saddle on the contour; (b) |y_t| (the escape direction) over t with the
closed forms; (c) distance to the saddle ‖w_t‖ over t. Writes ``fig_saddle_xy.{pdf,png,json,npz}`` and
``fig_saddle_xy_numbers.tex``.

Run time (2 cores): full ≈ 8 s; ``--quick`` is the same run (500 steps are already seconds).
"""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np

import samdyn as sd
from samdyn import plotting, stability

import _report

X0 = (-3.0, -0.01)
LR = 0.01
STEPS = 500
LAM = (2.0, -2.0)  # Hessian eigenvalues of x² − y² (x, y)
RUNS = (  # (label, optimizer, ρ)
    ("GD", sd.optim.gd(), 0.0),
    ("SAM ρ = 0.5", sd.optim.sam(), 0.5),
    ("SAM ρ = 0.5, grads not zeroed (official demo)", sd.optim.sam(accumulate=True), 0.5),
    ("USAM ρ = 0.4 (< ρ*)", sd.optim.usam(), 0.4),
    ("USAM ρ = 0.5 (= ρ*)", sd.optim.usam(), 0.5),
    ("USAM ρ = 0.6 (> ρ*)", sd.optim.usam(), 0.6),
)


def linear_factor(lam, rho, lr=LR):
    """Per-step factor 1 − η(λ + ρλ²) of GD (ρ = 0) and USAM along an eigendirection with eigenvalue λ."""
    return 1 - lr * (lam + rho * lam**2)


def main():
    args = _report.cli(__doc__)
    study = _report.Study("fig_saddle_xy", args.quick)
    f = sd.landscapes.get("saddle")
    paths = {}
    for label, opt, rho in RUNS:
        run = sd.simulate(f, opt, sd.optim.hparams(lr=LR, rho=rho), X0, STEPS, record="trajectory", dtype="float32",
                          progress=False)
        paths[label] = np.concatenate([np.asarray(X0, dtype=np.float32)[None], run.trajectory]).astype(np.float64)
    t = np.arange(STEPS + 1)
    cycle = stability.sam_quadratic_cycle(LAM, 0, LR, 0.5, eps=dict(sd.optim.sam().options)["eps"])

    fig, axes = plt.subplots(1, 3, figsize=(_report.TEXT_WIDTH, 2.9), gridspec_kw={"width_ratios": [1.15, 1, 1]})
    ax_a, ax_b, ax_c = axes
    plotting.contour(ax_a, f, domain=((-3.3, 1.0), (-1.2, 1.2)), levels=25, resolution=200, log=False, cmap="cividis")
    cbar = fig.colorbar(ax_a.collections[0], ax=ax_a, pad=0.02)
    cbar.set_label("f(x, y) = x² − y²")
    cycler = plt.rcParams["axes.prop_cycle"].by_key()
    styles = [dict(color=c, ls=ls, marker=m) for c, ls, m in zip(cycler["color"], cycler["linestyle"], cycler["marker"])]
    styles[0]["color"] = "#FFFFFF"  # GD in white on the contour (black outline below)
    for (label, _, _), st in zip(RUNS, styles):
        p = paths[label]
        ax_a.plot(p[:, 0], p[:, 1], lw=1.2, markevery=[-1], markeredgecolor="k", ms=4, label=label, **st,
                  path_effects=_outline() if st["color"] == "#FFFFFF" else None)
    ax_a.set(xlabel="x (dimensionless)", ylabel="y (dimensionless)", title="(a) paths from (−3, −0.01)")

    styles[0]["color"] = "#000000"
    for (label, _, rho), st in zip(RUNS, styles):
        y = np.abs(paths[label][:, 1])
        ax_b.semilogy(t, np.maximum(y, 1e-30), lw=1.2, markevery=50, ms=3, label=label, **st)
    for rho in (0.0, 0.4, 0.5, 0.6):
        ax_b.semilogy(t, 0.01 * np.abs(linear_factor(LAM[1], rho)) ** t, color="0.5", lw=3, alpha=0.35, zorder=0, marker="")
    ax_b.semilogy([], [], color="0.5", lw=3, alpha=0.35, marker="", label=r"closed form $|1 - \eta(\lambda + \rho\lambda^2)|^t\,|y_0|$")
    ax_b.set(xlabel="step t", ylabel="|y_t| (dimensionless)", ylim=(1e-14, 1e3),
             title="(b) escape direction y, λ = −2")

    for (label, _, _), st in zip(RUNS, styles):
        ax_c.semilogy(t, np.linalg.norm(paths[label], axis=1), lw=1.2, markevery=50, ms=3, **st)
    ax_c.axhline(cycle.amplitude, color="0.35", lw=1.6, ls=(0, (1, 1)), zorder=0,
                 label=f"SAM's 2-cycle amplitude ηλρ/(2 − ηλ) = {cycle.amplitude:.4f}")
    ax_c.set(xlabel="step t", ylabel=r"$\|w_t - 0\|$ (dimensionless)", ylim=(1e-3, 1e3),
             title="(c) distance to the saddle")
    handles, labels = (a + b for a, b in zip(ax_b.get_legend_handles_labels(), ax_c.get_legend_handles_labels()))
    fig.legend(handles, labels, loc="lower center", ncol=2, fontsize=6, bbox_to_anchor=(0.5, -0.02), frameon=False)
    fig.suptitle("x² − y², η = 0.01, float32: GD escapes, SAM is captured, USAM switches at ρ* = −1/λ = 0.5",
                 fontsize=9)
    fig.tight_layout(rect=(0, 0.13, 1, 1))
    study.figure(fig)

    final = {label: paths[label][-1] for label, _, _ in RUNS}
    closed = {rho: float(np.float64(X0[1]) * linear_factor(LAM[1], rho) ** STEPS) for rho in (0.0, 0.4, 0.5, 0.6)}
    np.savez_compressed(study.path(".npz"), steps=t, labels=np.array([r[0] for r in RUNS]),
                        paths=np.stack([paths[r[0]] for r in RUNS]))
    gd, sam, sam_acc, u04, u05, u06 = (final[r[0]] for r in RUNS)
    values = {
        "settings": {"x0": X0, "lr": LR, "steps": STEPS, "dtype": "float32", "eigenvalues": LAM,
                     "runs": [(label, opt.name, dict(opt.options), rho) for label, opt, rho in RUNS]},
        "final": final, "closed_form_y": {str(k): v for k, v in closed.items()},
        "gd_y500": gd[1], "sam_dist": np.linalg.norm(sam), "sam_acc_dist": np.linalg.norm(sam_acc),
        "sam_cycle_amplitude": cycle.amplitude, "sam_cycle_kind": cycle.kind,
        "usam_y500": {"0.4": u04[1], "0.5": u05[1], "0.6": u06[1]},
        "rho_star": 0.5,
    }
    macros = {
        "xyGdYFinal": _report.num(gd[1], 5),
        "xyGdYClosed": _report.num(closed[0.0], 5),
        "xySamDist": _report.num(np.linalg.norm(sam)),
        "xySamAccDist": _report.num(np.linalg.norm(sam_acc)),
        "xySamCycleAmp": _report.num(cycle.amplitude),
        "xyUsamBelowY": _report.num(u04[1]),
        "xyUsamBelowYClosed": _report.num(closed[0.4]),
        "xyUsamAtY": _report.num(u05[1]),
        "xyUsamAboveY": _report.num(u06[1]),
        "xyUsamAboveYClosed": _report.num(closed[0.6]),
        "xyRhoStar": "0.5",
    }
    study.numbers(values, macros)
    for label in final:
        print(f"{label:<48} w_500 = {final[label]}")


def _outline():
    from matplotlib import patheffects

    return [patheffects.withStroke(linewidth=2.4, foreground="k")]


if __name__ == "__main__":
    main()
