"""Kim et al.'s Theorem 1 (a saddle becomes an attractor of USAM when ρ > −1/λ): USAM at Beale's saddle
just below and above ρ* = 4/111, the (η, ρ) and (η, ρ, γ) phase diagrams with the exact boundaries,
basins of GD vs SAM, and SAM's edge of stability and 2-cycles against their closed forms.

Three figures:

* ``fig_theorem1``: (a) USAM from (0, 1) + 1e-4·(v₋ + v₊)/√2 at η = 0.01, ρ = 0.9ρ* and 1.1ρ*:
  distance to the saddle over steps, with the linear prediction |1 − η(λ₋ + ρλ₋²)|ᵗ; (b–d) the kind of
  the saddle under USAM (heavy-ball momentum γ = 0, 0.5, 0.9) over (η, ρ) from the map's Jacobian
  (``stability.phase_diagram``), with the exact boundaries ρ = ρ* and η(λ± + ρλ±²) = 2(1 + γ) drawn over
  it; the cells are compared with ``stability.attractor_region`` (sympy, Jury conditions).
* ``fig_theorem1_basins``: where GD and normalised SAM end from a grid of starts on Himmelblau
  (η = 0.005, SAM ρ = 0.3) and Beale (η = 1e-3, SAM ρ = 0.5) (``stability.basins``, float64).
* ``fig_theorem1_edges``: (a) the largest stable curvature from the map (``largest_stable_curvature``)
  vs the closed forms ``usam_edge`` (ηλ(1 + ρλ) = 2(1 + γ)) and ``sam_edge`` (Long & Bartlett);
  (b) normalised SAM's 2-cycle amplitude on ½(λ₁x² + λ₂y²), λ = (2, −2), found by Newton's method on
  T²(z) − z (``periodic_orbits``) vs a = ηλρ/(2 − ηλ) (Bartlett, Long & Bousquet).

Writes the three figures (PDF + PNG), ``fig_theorem1.{json,npz}`` and ``fig_theorem1_numbers.tex``.
Run time (2 cores): full ≈ 60 s; ``--quick`` (coarser grids, fewer steps) ≈ 15 s.
"""

from __future__ import annotations

from matplotlib.colors import ListedColormap
from matplotlib.patches import Patch
import matplotlib.pyplot as plt
import numpy as np
import jax.numpy as jnp

import samdyn as sd
from samdyn import stability as st

import _report

GAMMAS = (0.0, 0.5, 0.9)
KIND_COLORS = [plt.get_cmap("cividis")(x) for x in (0.95, 0.55, 0.15, 0.0)]  # attractor light → non-hyperbolic dark


def usam_near_saddle(f, saddle, rho_star, lr, steps):
    """USAM from the saddle + 1e-4 (v₋ + v₊)/√2 for ρ = 0.9ρ*, 1.1ρ*: distances, predicted factors, eigenvalues."""
    lam, vec = np.linalg.eigh(np.asarray(f.hessian(jnp.asarray(saddle))))
    x0 = saddle + 1e-4 * (vec[:, 0] + vec[:, 1]) / np.sqrt(2)
    rhos = np.array([0.9, 1.1]) * rho_star
    run = sd.simulate(f, sd.optim.usam(), sd.optim.hparams(lr=lr, rho=rhos), x0, steps, record="trajectory",
                      progress=False)
    dist = np.linalg.norm(np.concatenate([np.broadcast_to(x0, (2, 1, 2)), run.trajectory], axis=1) - saddle, axis=-1)
    factor = np.abs(1 - lr * (lam[0] + rhos * lam[0] ** 2))  # along v₋ (the slower direction near ρ*)
    return rhos, dist, factor, lam, x0


def phase_boundaries(lam, rho, gamma):
    """η on the exact edges η(λ + ρλ²) = 2(1 + γ) for each eigenvalue λ (NaN where λ + ρλ² ≤ 0)."""
    out = []
    for l in lam:
        D = l + rho * l**2
        out.append(np.where(D > 0, 2 * (1 + gamma) / np.where(D > 0, D, 1), np.nan))
    return out


def kind_legend(ax, codes, loc="upper right"):
    names = {0: "attractor", 1: "saddle", 2: "repeller", 3: "non-hyperbolic"}
    ax.legend(handles=[Patch(facecolor=KIND_COLORS[c], edgecolor="k", label=names[c]) for c in sorted(codes)],
              loc=loc, fontsize=6, framealpha=0.9)


def basin_panel(ax, b, extent, title):
    """Basin map with one legend entry per outcome that occurs (critical points by kind and location)."""
    labels = np.asarray(b.labels)
    codes = [st.CYCLE, st.UNSETTLED, st.DIVERGED] + list(range(len(b.critical_points)))  # same colour per outcome
    palette = plt.get_cmap("viridis")(np.linspace(0, 1, len(codes)))
    outcomes = np.unique(labels)
    ax.imshow((np.searchsorted(codes, labels)).T, origin="lower", extent=extent, cmap=ListedColormap(palette),
              vmin=-0.5, vmax=len(codes) - 0.5, interpolation="nearest", aspect="auto")
    names = {st.CYCLE: "cycle away from critical points", st.UNSETTLED: "unsettled", st.DIVERGED: "diverged"}
    names.update({i: f"{c.kind} ({c.point[0]:.2f}, {c.point[1]:.2f})" for i, c in enumerate(b.critical_points)})
    frac = {int(o): float(np.mean(labels == o)) for o in outcomes}
    handles = [Patch(facecolor=palette[codes.index(int(o))], edgecolor="k", label=f"{names[int(o)]}: {frac[int(o)]:.1%}")
               for o in outcomes]
    for c in b.critical_points:
        ax.plot(*c.point, "*" if c.kind == "minimum" else ("x" if c.kind == "saddle" else "^"), color="w",
                markeredgecolor="k", ms=6 if c.kind == "minimum" else 5, mew=1.0 if c.kind == "saddle" else 0.5)
    ax.set(xlim=extent[:2], ylim=extent[2:], xlabel="x₀ (dimensionless)", ylabel="y₀ (dimensionless)", title=title)
    ax.legend(handles=handles, loc="upper center", bbox_to_anchor=(0.5, -0.2), fontsize=5.5, ncol=2, frameon=False)
    return frac


def main():
    args = _report.cli(__doc__)
    quick = args.quick
    study = _report.Study("fig_theorem1", quick)
    beale = sd.landscapes.get("beale")
    saddle_cp = next(c for c in beale.critical_points() if c.exact == (0, 1))
    saddle = np.asarray(saddle_cp.point)
    rho_star = st.rho_threshold(beale, saddle_cp)
    rho_star_f = float(rho_star)
    values, macros = {}, {}

    # ---- figure 1: USAM around ρ*, phase diagrams over (η, ρ, γ) --------------------------------------
    lr_path, steps_path = 0.01, (1000 if quick else 3000)
    rhos_path, dist, factor, lam, x0 = usam_near_saddle(beale, saddle, rho_star_f, lr_path, steps_path)
    n = 60 if quick else 240
    lrs = np.linspace(2e-4, 0.06, n)
    rhos = np.linspace(0.0, 0.12, n)
    pd = st.phase_diagram(sd.optim.usam(), beale, saddle_cp, lrs, rhos, GAMMAS)
    region = st.attractor_region(beale, saddle_cp, "usam", momentum=True)
    L, R, G = np.meshgrid(lrs, rhos, GAMMAS, indexing="ij")
    exact = region.contains(L, R, G)
    disagree = (pd.kind == 0) != exact
    values.update(rho_star=str(rho_star), rho_star_float=rho_star_f, eigenvalues=lam,
                  path={"lr": lr_path, "steps": steps_path, "rhos": rhos_path, "x0": x0, "final_dist": dist[:, -1],
                        "predicted_factor": factor},
                  phase={"lr": [lrs[0], lrs[-1], n], "rho": [rhos[0], rhos[-1], n], "gamma": GAMMAS,
                         "disagreeing_cells": int(disagree.sum()), "cells": int(disagree.size),
                         "attractor_fraction": [float(np.mean(pd.kind[..., k] == 0)) for k in range(len(GAMMAS))]})

    fig, axes = plt.subplots(2, 2, figsize=(_report.TEXT_WIDTH, 5.4))
    ax = axes[0, 0]
    t = np.arange(steps_path + 1)
    for k, (rho, style) in enumerate(zip(rhos_path, ("-", "--"))):
        word = "below" if rho < rho_star_f else "above"
        ax.semilogy(t, dist[k], ls=style, color=("#D55E00", "#0072B2")[k], marker=("o", "s")[k], markevery=steps_path // 6,
                    label=f"USAM ρ = {rho / rho_star_f:.1f}ρ* ({word})")
        ax.semilogy(t, 1e-4 * factor[k] ** t, color="0.5", lw=3, alpha=0.35, zorder=0, marker="")
    ax.semilogy([], [], color="0.5", lw=3, alpha=0.35, marker="", label=r"linear: $|1 - \eta(\lambda_- + \rho\lambda_-^2)|^t \cdot 10^{-4}$")
    ax.set(xlabel="step t", ylabel=r"$\|w_t - (0, 1)\|$ (dimensionless)", ylim=(1e-7, 10),
           title=f"(a) USAM at Beale's saddle, η = {lr_path}, ρ* = 4/111")
    ax.legend(fontsize=6, loc="upper left")
    for k, (gamma, ax) in enumerate(zip(GAMMAS, axes.ravel()[1:])):
        ax.pcolormesh(lrs, rhos, pd.kind[:, :, k].T, cmap=ListedColormap(KIND_COLORS), vmin=-0.5, vmax=3.5,
                      shading="nearest", rasterized=True)
        rr = np.linspace(rhos[0], rhos[-1], 400)
        eta_minus, eta_plus = phase_boundaries(lam, rr, gamma)
        ax.axhline(rho_star_f, color="k", ls="--", lw=1, label="ρ = ρ* = 4/111")
        ax.plot(eta_plus, rr, color="k", ls="-", lw=1, marker="", label=r"$\eta(\lambda_+ + \rho\lambda_+^2) = 2(1+\gamma)$")
        ax.plot(eta_minus, rr, color="k", ls=":", lw=1.2, marker="", label=r"$\eta(\lambda_- + \rho\lambda_-^2) = 2(1+\gamma)$")
        ax.set(xlim=(lrs[0], lrs[-1]), ylim=(rhos[0], rhos[-1]), xlabel="learning rate η (dimensionless)",
               ylabel="ρ (dimensionless)", title=f"({'bcd'[k]}) kind of (0, 1) under USAM, γ = {gamma}")
        if k == 0:
            first = ax.legend(fontsize=5.5, loc="upper right", framealpha=0.9)
            ax.add_artist(first)
        if k == 1:
            kind_legend(ax, np.unique(pd.kind), loc="upper right")
    fig.suptitle("Theorem 1: USAM makes Beale's saddle (λ = ±27.75) an attractor for ρ > ρ* = 4/111", fontsize=9)
    fig.tight_layout()
    study.figure(fig)

    # ---- figure 2: basins of GD vs SAM ----------------------------------------------------------------
    m = 41 if quick else 121
    setups = (("himmelblau", 0.005, 0.3, ((-5, 5), (-5, 5)), 1000 if quick else 3000, 0.25),
              ("beale", 1e-3, 0.5, ((-2, 4.5), (-2, 3)), 5000 if quick else 30_000, 0.25))
    fig, axes = plt.subplots(2, 2, figsize=(_report.TEXT_WIDTH, 6.6))
    values["basins"] = {}
    for row, (name, lr, rho, dom, steps, tol) in enumerate(setups):
        f = sd.landscapes.get(name)
        xs, ys = np.linspace(*dom[0], m), np.linspace(*dom[1], m)
        starts = np.stack(np.meshgrid(xs, ys, indexing="ij"), axis=-1)
        for col, (opt, r, label) in enumerate(((sd.optim.gd(), 0.0, "GD"), (sd.optim.sam(), rho, f"SAM ρ = {rho}"))):
            b = st.basins(f, opt, sd.optim.hparams(lr=lr, rho=r), starts, steps, tol=tol)
            frac = basin_panel(axes[row, col], b, (xs[0], xs[-1], ys[0], ys[-1]),
                               f"({'abcd'[2 * row + col]}) {name.capitalize()}, {label}, η = {lr:g}, {steps:,} steps")
            saddles = [i for i, c in enumerate(b.critical_points) if c.kind == "saddle"]
            at_saddle = float(np.isin(b.labels, saddles).mean())
            values["basins"][f"{name}_{label.split()[0].lower()}"] = {
                "lr": lr, "rho": r, "steps": steps, "grid": m, "tol": tol, "domain": dom, "dtype": "float64",
                "fractions": {str(k): v for k, v in frac.items()}, "at_saddle": at_saddle}
    fig.suptitle("Basins of attraction: normalised SAM stalls at saddles from sets of starts where GD does not",
                 fontsize=9)
    fig.tight_layout()
    study.figure(fig, stem="fig_theorem1_basins")

    # ---- figure 3: edges of stability and 2-cycles vs closed forms ------------------------------------
    etas = np.geomspace(1e-3, 1.0, 13 if quick else 25)
    edge_runs = ((sd.optim.gd(), 0.0, 0.0, None, "GD: 2/η"),
                 (sd.optim.usam(), 0.05, 0.0, None, "USAM ρ = 0.05"),
                 (sd.optim.usam(), 0.05, 0.9, None, "USAM ρ = 0.05, γ = 0.9"),
                 (sd.optim.sam(), 0.05, 0.0, 0.1, "SAM ρ = 0.05, ‖∇f‖ = 0.1 (SAM-edge)"))
    fig, (ax_e, ax_c) = plt.subplots(1, 2, figsize=(_report.TEXT_WIDTH, 2.9))
    colors = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    edge_err = 0.0
    for k, (opt, rho, gamma, gn, label) in enumerate(edge_runs):
        mapped = st.largest_stable_curvature(opt, etas, rho, gamma, grad_norm=gn)
        closed = st.usam_edge(etas, rho, gamma) if gn is None else st.sam_edge(etas, rho, gn, gamma)
        edge_err = max(edge_err, float(np.max(np.abs(mapped / closed - 1))))
        ax_e.loglog(etas, closed, color=colors[k], ls=("-", "--", "-.", ":")[k], lw=1, marker="", label=label)
        ax_e.loglog(etas, mapped, ("o", "s", "^", "v")[k], color=colors[k], ms=4, mfc="none", ls="")
    ax_e.plot([], [], "o", color="0.3", ms=4, mfc="none", ls="", label="from the map (bisection on the Jacobian)")
    ax_e.set(xlabel="learning rate η (dimensionless)", ylabel="largest stable curvature λ (dimensionless)",
             title="(a) edges of stability: map vs closed forms")
    ax_e.legend(fontsize=5.5)

    quad = sd.landscapes.get("quadratic", eigenvalues=(2, -2))
    eps = dict(sd.optim.sam().options)["eps"]
    cyc_etas = np.linspace(0.02, 0.9, 12 if quick else 30)
    cycle_err, cycle_rows = 0.0, []
    for k, rho in enumerate((0.05, 0.2, 0.5)):
        closed = np.array([st.sam_quadratic_cycle([2.0, -2.0], 0, e, rho, eps=eps).amplitude for e in cyc_etas])
        found = np.full_like(closed, np.nan)
        for i, e in enumerate(cyc_etas):
            orbits = st.periodic_orbits(sd.optim.sam(), quad, sd.optim.hparams(lr=e, rho=rho),
                                        [[1.3 * closed[i], 0.0]])
            if orbits:
                found[i] = np.max(np.abs(orbits[0].points[:, 0]))
        cycle_err = max(cycle_err, float(np.nanmax(np.abs(found / closed - 1))))
        cycle_rows.append({"rho": rho, "eta": cyc_etas, "closed": closed, "newton": found})
        ax_c.semilogy(cyc_etas, closed, color=colors[k], ls=("-", "--", "-.")[k], lw=1, marker="", label=f"a = ηλρ/(2 − ηλ), ρ = {rho}")
        ax_c.semilogy(cyc_etas, found, ("o", "s", "^")[k], color=colors[k], ms=4, mfc="none", ls="")
    ax_c.plot([], [], "o", color="0.3", ms=4, mfc="none", ls="", label="Newton on T²(z) − z")
    ax_c.axvline(0.5, color="0.5", lw=0.8, ls=":", marker="", label="ηλ = 1: stable (left) / unstable")
    ax_c.set(xlabel="learning rate η (dimensionless)", ylabel="2-cycle amplitude a (dimensionless)",
             title="(b) SAM's 2-cycle ±a·e₁ on x² − y²")
    ax_c.legend(fontsize=5.5)
    fig.suptitle("Edges of stability and SAM's 2-cycle: computed from the map (markers) vs closed forms (lines)",
                 fontsize=9)
    fig.tight_layout()
    study.figure(fig, stem="fig_theorem1_edges")
    n_found = sum(int(np.sum(np.isfinite(r["newton"]))) for r in cycle_rows)
    values.update(edge_max_rel_err=edge_err, edge_etas=etas, cycle_max_rel_err=cycle_err,
                  cycles=cycle_rows, cycles_found=n_found, cycles_total=sum(len(r["eta"]) for r in cycle_rows))
    np.savez_compressed(study.path(".npz"), phase_lr=lrs, phase_rho=rhos, phase_gamma=np.asarray(GAMMAS),
                        phase_kind=pd.kind, phase_radius=pd.spectral_radius, path_dist=dist)

    bas = values["basins"]
    macros.update(
        thmoneRhoStar=r"\ensuremath{4/111}", thmoneRhoStarDec=_report.num(rho_star_f, 4),
        thmoneLambda=_report.num(lam[1], 4),
        thmonePathLr=_report.num(lr_path), thmonePathSteps=f"{steps_path:,}".replace(",", "{,}"),
        thmoneBelowFinal=_report.num(dist[0, -1]), thmoneAboveFinal=_report.num(dist[1, -1]),
        thmoneBelowFactor=_report.num(factor[0], 5), thmoneAboveFactor=_report.num(factor[1], 5),
        thmonePhaseCells=f"{disagree.size:,}".replace(",", "{,}"), thmonePhaseDisagree=str(int(disagree.sum())),
        thmoneEdgeErr=_report.num(edge_err, 2), thmoneCycleErr=_report.num(cycle_err, 2),
        thmoneCyclesFound=str(n_found),
        thmoneHimGdSaddle=_report.num(100 * bas["himmelblau_gd"]["at_saddle"], 2),
        thmoneHimSamSaddle=_report.num(100 * bas["himmelblau_sam"]["at_saddle"], 2),
        thmoneBealeGdSaddle=_report.num(100 * bas["beale_gd"]["at_saddle"], 2),
        thmoneBealeSamSaddle=_report.num(100 * bas["beale_sam"]["at_saddle"], 2),
    )
    study.numbers(values, macros)
    print(f"ρ* = {rho_star}; phase cells disagreeing with the exact region: {int(disagree.sum())}/{disagree.size}; "
          f"edge rel err {edge_err:.2e}; cycle rel err {cycle_err:.2e} ({n_found} cycles)")
    print({k: (v["at_saddle"], v["fractions"]) for k, v in bas.items()})


if __name__ == "__main__":
    main()
