"""Escape-time distributions from saddles as functions of ρ, momentum and batch size (Kim et al. 2023).

For each problem — the saddle x² − y², a 3-D quadratic with one negative eigenvalue, and Beale's
saddle (0, 1) (Hessian eigenvalues ±27.75) — every particle starts at the saddle and runs
normalised SAM (ρ = 0 is SGD) with Hessian-shaped gradient noise |H(x)|/B; a particle has escaped
once it is farther than ``radius`` from the saddle. ``samdyn.diffusion.escape_times`` streams the
first-exit steps inside the scan. Alongside, the exact linear model (``linear_moments``) gives the
variance along the escape direction after ``--steps`` steps, the quantity Kim et al.'s Theorems 2–3
are about.

Writes ``experiments/results/escape_times.npz`` (arrays per problem, ready to plot),
``escape_times.json`` (median exit steps and fractions escaped) and ``escape_times.png``.

Usage: python experiments/escape_times.py [--particles 4096] [--quick]
"""

from __future__ import annotations

import argparse
import json
import os
import time

import numpy as np

import samdyn as sd
from samdyn import diffusion as df

PROBLEMS = {
    # name: (landscape, saddle point, lr, radius, rho grid, steps)
    "saddle": (lambda: sd.landscapes.get("saddle"), (0.0, 0.0), 0.01, 1.0, (0.0, 0.05, 0.2), 1500),
    "quadratic3": (lambda: sd.landscapes.get("quadratic", eigenvalues=(1, 2, -1)), (0.0, 0.0, 0.0), 0.01, 1.0,
                   (0.0, 0.05, 0.2), 1500),
    "beale": (lambda: sd.landscapes.get("beale"), (0.0, 1.0), 1e-3, 0.1, (0.0, 0.05, 0.2), 3000),
}
MOMENTUM = (0.0, 0.9)
BATCH = (4.0, 32.0)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--particles", type=int, default=4096)
    ap.add_argument("--quick", action="store_true", help="fewer particles and steps (smoke run)")
    ap.add_argument("--out", default=os.path.join(os.path.dirname(__file__), "results"))
    args = ap.parse_args()
    os.makedirs(args.out, exist_ok=True)
    arrays, summary = {}, {}
    for name, (make, point, lr, radius, rhos, steps) in PROBLEMS.items():
        if args.quick:
            steps = steps // 5
        f = make()
        t = time.perf_counter()
        res = df.escape_times(f, sd.optim.sam(), point, radius=radius, lr=lr, rho=rhos, momentum=MOMENTUM,
                              batch_size=BATCH, steps=steps, particles=256 if args.quick else args.particles,
                              every=max(1, steps // 100), key=0)
        elapsed = time.perf_counter() - t
        # the exact linear model: variance along the escape direction after `steps` steps
        Hs = np.asarray(f.hessian(np.asarray(point)), dtype=np.float64)
        lam, V = np.linalg.eigh(Hs)
        absH = (V * np.abs(lam)) @ V.T
        lin = np.zeros((len(rhos), len(MOMENTUM), len(BATCH)))
        for i, r in enumerate(rhos):
            for j, g in enumerate(MOMENTUM):
                for k, B in enumerate(BATCH):
                    lm = df.linear_moments(sd.optim.sam(), Hs, absH / B, sd.optim.hparams(lr=lr, rho=r, momentum=g),
                                           min(steps, 200))
                    lin[i, j, k] = V[:, 0] @ lm.cov[-1] @ V[:, 0]
        for key, val in res.items():
            arrays[f"{name}/{key}"] = val
        arrays[f"{name}/linear_escape_variance_200_steps"] = lin
        summary[name] = {
            "point": point, "lr": lr, "radius": radius, "steps": steps, "rho": list(rhos), "momentum": list(MOMENTUM),
            "batch_size": list(BATCH), "median_exit_step[rho][momentum][batch]": np.round(res["median_exit"], 1).tolist(),
            "fraction_escaped[rho][momentum][batch]": np.round(res["fraction_escaped"], 4).tolist(),
            "linear_model_escape_variance_after_200_steps": lin.tolist(), "seconds": round(elapsed, 2),
        }
        print(f"{name}: {elapsed:.1f} s; median exit steps [rho][momentum][batch] =\n{np.round(res['median_exit'], 1)}")
    np.savez_compressed(os.path.join(args.out, "escape_times.npz"), **arrays)
    with open(os.path.join(args.out, "escape_times.json"), "w") as fh:
        json.dump(summary, fh, indent=2)
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        fig, axes = plt.subplots(1, len(PROBLEMS), figsize=(5 * len(PROBLEMS), 3.6))
        for ax, name in zip(axes, PROBLEMS):
            times, surv, rhos = arrays[f"{name}/times"], arrays[f"{name}/survival"], arrays[f"{name}/rho"]
            for i, r in enumerate(rhos):
                for j, g in enumerate(MOMENTUM):
                    ax.plot(times, surv[i, j, 0], color=f"C{i}", ls="-" if j == 0 else "--",
                            label=f"ρ={r:g}, γ={g:g}")
            ax.set(title=f"{name}: B={BATCH[0]:g}", xlabel="step", ylabel="fraction not escaped")
        axes[0].legend(fontsize=7)
        fig.tight_layout()
        fig.savefig(os.path.join(args.out, "escape_times.png"), dpi=120)
    except ImportError:  # pragma: no cover
        pass
    print(f"wrote {args.out}/escape_times.npz, escape_times.json, escape_times.png")


if __name__ == "__main__":
    main()
