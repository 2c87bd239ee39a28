"""Figures for samdyn.stability: USAM's phase diagram at Beale's saddle with the exact boundaries,
the largest stable curvature vs the closed forms, and a basin map of SAM vs GD on x² − y² + x⁴/4.

Writes ``experiments/out/fig_stability/fig_stability.png`` and ``fig_stability.json`` (the numbers drawn).
Run: ``python experiments/fig_stability.py`` (≈ 30 s on 2 cores).
"""

from __future__ import annotations

import json

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

import samdyn as sd  # noqa: E402
from samdyn import plotting  # noqa: E402
from samdyn import stability as st  # noqa: E402

from _paths import out_dir  # noqa: E402  (same folder)


def main():
    out = out_dir("fig_stability")
    fig, axes = plt.subplots(1, 3, figsize=(15, 4.5))
    summary = {}

    # (a) USAM at Beale's saddle (0, 1): kind over (η, ρ), with ρ* = 4/111 and η(λ + ρλ²) = 2
    f = sd.landscapes.get("beale")
    saddle = next(c for c in f.critical_points() if c.exact == (0, 1))
    rho_star = st.rho_threshold(f, saddle)
    lr = np.linspace(1e-4, 0.05, 200)
    rho = np.linspace(0.0, 0.15, 200)
    pd = st.phase_diagram(sd.optim.usam(), f, saddle, lr, rho)
    plotting.phase_diagram(axes[0], pd)
    lam = 27.75
    rr = rho[rho > 0]
    axes[0].plot(2 / (lam + rr * lam**2), rr, "k--", lw=1, label="η(λ + ρλ²) = 2")
    axes[0].axhline(float(rho_star), color="k", lw=1, ls=":", label=f"ρ* = {rho_star}")
    axes[0].set_xlim(lr[0], lr[-1])
    axes[0].set_ylim(rho[0], rho[-1])
    axes[0].legend(loc="upper right", fontsize=8)
    axes[0].set_title("USAM at Beale (0, 1): blue = attractor")
    summary["phase_attractor_fraction"] = float(np.mean(pd.kind == 0))
    summary["rho_star"] = str(rho_star)

    # (b) largest stable curvature vs η: from the map (markers) and closed forms (lines)
    etas = np.geomspace(1e-3, 1.0, 25)
    for opt, rho_, mom, label in [
        (sd.optim.gd(), 0.0, 0.0, "GD"),
        (sd.optim.usam(), 0.05, 0.0, "USAM ρ=0.05"),
        (sd.optim.usam(), 0.05, 0.9, "USAM ρ=0.05, γ=0.9"),
    ]:
        num = st.largest_stable_curvature(opt, etas, rho_, mom)
        closed = st.usam_edge(etas, rho_, mom)
        axes[1].loglog(etas, num, "o", ms=3)
        axes[1].loglog(etas, closed, "-", lw=1, label=label)
        summary[f"edge_max_rel_err_{label}"] = float(np.max(np.abs(num / closed - 1)))
    g = 0.1
    sam = st.largest_stable_curvature(sd.optim.sam(), etas, 0.05, grad_norm=g)
    axes[1].loglog(etas, sam, "s", ms=3)
    axes[1].loglog(etas, st.sam_edge(etas, 0.05, g), "-", lw=1, label=f"SAM-edge ρ=0.05, ‖g‖={g}")
    axes[1].set_xlabel("η")
    axes[1].set_ylabel("largest stable λ")
    axes[1].legend(fontsize=8)
    axes[1].set_title("edges of stability: map (markers) vs closed forms")

    # (c) basins on x² − y² + y⁴/4 (minima at y = ±√2, saddle at 0): SAM's 2-cycle traps the y = 0 line
    h = sd.landscapes.from_expr("x**2 - y**2 + y**4/4", ["x", "y"], domain=[(-2, 2), (-2, 2)])
    xs = np.linspace(-2, 2, 121)
    ys = np.linspace(-0.6, 0.6, 121)
    x0 = np.stack(np.meshgrid(xs, ys, indexing="ij"), axis=-1)
    b = st.basins(h, sd.optim.sam(), sd.optim.hparams(lr=0.01, rho=0.5), x0, 2000, tol=0.05)
    plotting.basins(axes[2], b, extent=(xs[0], xs[-1], ys[0], ys[-1]))
    axes[2].set_title("SAM basins near the saddle of x² − y² + y⁴/4")
    labels, counts = np.unique(b.labels, return_counts=True)
    summary["basins_labels"] = {int(k): int(v) for k, v in zip(labels, counts)}
    summary["basins_cycling"] = int(b.cycling.sum())
    summary["basins_periods"] = {int(k): int(v) for k, v in zip(*np.unique(b.period, return_counts=True))}
    summary["critical_points"] = [repr(c) for c in b.critical_points]

    fig.tight_layout()
    fig.savefig(out / "fig_stability.png", dpi=120, metadata={"Software": None})
    (out / "fig_stability.json").write_text(json.dumps(summary, indent=2, sort_keys=True))
    print(json.dumps(summary, indent=2))


if __name__ == "__main__":
    main()
