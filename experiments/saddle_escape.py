"""Saddle escape on networks whose origin is a saddle: GD vs SAM over ρ, momentum γ and batch size.

Models (``samdyn.nets``): a depth-2 deep linear net (strict saddle at 0) and Kim et al.'s
one-hidden-unit φ(z) = z² toy (degenerate saddle at 0), both started at small initialisation,
trained on teacher–student regression with ``samdyn.optim.sam()`` (ρ = 0 is exactly GD: the
ascent step is zero, the descent gradient is taken on the same batch). Escape time = first
recorded step at which ‖w_t‖ exceeds ``radius`` (leaving the origin's neighbourhood); runs that
never leave within the horizon count as censored (reported as the fraction escaped).

Writes ``experiments/out/saddle_escape/saddle_escape.{npz,json,png}``.

Usage: ``python experiments/saddle_escape.py [--quick]``
"""

from __future__ import annotations

import argparse
import json
import time
import warnings

import numpy as np

import samdyn as sd
from samdyn import nets

from _paths import out_dir  # same folder

MOMENTA = (0.0, 0.5, 0.9, 0.95)

PROBLEMS = {
    # name: () -> (model, data, lr, radius, rhos); ρ grids straddle the initial scale ‖w₀‖
    "deep_linear": lambda: (nets.deep_linear(8, 8, 4, depth=2, init_scale=1e-3),
                            nets.datasets.teacher_student(n_train=256, n_test=256, in_dim=8, out_dim=4,
                                                          teacher="linear", noise_std=0.1, seed=0),
                            0.01, 0.3, (0.0, 1e-4, 1e-3, 1e-2)),
    "square_toy": lambda: (nets.square_toy(4, init_scale=1e-2),
                           nets.datasets.teacher_student(n_train=256, n_test=256, in_dim=4, out_dim=1,
                                                         teacher="square", noise_std=0.1, seed=0),
                           0.02, 0.3, (0.0, 0.01, 0.03, 0.1)),
}


def escape_steps(times, param_norm, radius):
    """First recorded step with ‖w‖ > radius (NaN where never), shape = param_norm.shape[:-1]."""
    out = param_norm > radius
    first = np.argmax(out, axis=-1)
    return np.where(out.any(axis=-1), times[first], np.nan)


def run(quick: bool):
    batches = (8, 64) if quick else (8, 32, 256)
    seeds = 4 if quick else 8
    steps = 1500 if quick else 3000
    every = 5
    results, summary = {}, {}
    warnings.filterwarnings("ignore", "All-NaN slice", RuntimeWarning)   # cells where every run diverged
    for name, build in PROBLEMS.items():
        model, data, lr, radius, RHOS = build()
        hp = sd.optim.hparams(lr=lr, rho=np.asarray(RHOS)[:, None], momentum=np.asarray(MOMENTA)[None, :])
        esc = np.full((len(batches), len(RHOS), len(MOMENTA), seeds), np.nan)
        final_loss = np.full_like(esc, np.nan)
        diverged = np.zeros(esc.shape, bool)
        for b, batch in enumerate(batches):
            t0 = time.time()
            res = nets.train(model, data, sd.optim.sam(), hp, steps, batch, key=0, seeds=seeds, eval_every=every)
            esc[b] = escape_steps(res.times, res.records["param_norm"], radius)
            final_loss[b] = np.where(res.diverged, np.nan, res.final("train_loss"))
            diverged[b] = res.diverged
            print(f"{name} B={batch}: {time.time() - t0:.1f}s, diverged {int(res.diverged.sum())}/{res.diverged.size}")
        results[name] = {"escape": esc, "final_loss": final_loss, "diverged": diverged, "rhos": RHOS}
        frac = np.mean(np.isfinite(esc), axis=-1)
        med = np.nanmedian(np.where(np.isfinite(esc), esc, np.inf), axis=-1)  # censored runs count as ∞
        summary[name] = {
            "model": model.name, "lr": lr, "rhos": RHOS, "radius": radius, "init_scale": dict(model.options)["init_scale"],
            "median_escape_step": {f"B={B}": {f"rho={r}": {f"gamma={g}": (None if not np.isfinite(med[i, j, k]) else float(med[i, j, k]))
                                                          for k, g in enumerate(MOMENTA)} for j, r in enumerate(RHOS)}
                                   for i, B in enumerate(batches)},
            "fraction_diverged": float(diverged.mean()),
            "median_final_train_loss": {f"B={B}": {f"rho={r}": [float(v) for v in np.nanmedian(final_loss[i, j], -1)]
                                                   for j, r in enumerate(RHOS)} for i, B in enumerate(batches)},
            "fraction_escaped": {f"B={B}": {f"rho={r}": [float(v) for v in frac[i, j]] for j, r in enumerate(RHOS)}
                                 for i, B in enumerate(batches)},
        }
    meta = {"momenta": MOMENTA, "batch_sizes": batches, "seeds": seeds, "steps": steps,
            "record_every": every, "optimizer": "samdyn.optim.sam() (rho=0 is GD)", "dtype": "float32"}
    out = out_dir("saddle_escape")
    np.savez(out / "saddle_escape.npz", **{f"{n}_{k}": v for n, d in results.items() for k, v in d.items()},
             momenta=MOMENTA, batch_sizes=batches)
    (out / "saddle_escape.json").write_text(json.dumps({"meta": meta, "summary": summary}, indent=1))
    plot(results, batches, steps)
    return summary


def plot(results, batches, steps):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(len(results), len(batches), figsize=(3.2 * len(batches), 2.8 * len(results)),
                             squeeze=False, sharey="row")
    for r, (name, d) in enumerate(results.items()):
        esc = np.where(np.isfinite(d["escape"]), d["escape"], np.inf)
        med = np.median(esc, axis=-1)
        for b, batch in enumerate(batches):
            ax = axes[r, b]
            for j, rho in enumerate(d["rhos"]):
                y = np.where(np.isfinite(med[b, j]), med[b, j], steps * 1.05)
                ax.plot(MOMENTA, y, "o-", label=f"ρ={rho}" + (" (GD)" if rho == 0 else ""))
            ax.axhline(steps, color="0.7", lw=0.8, ls="--")
            ax.set_title(f"{name}, B={batch}", fontsize=9)
            ax.set_xlabel("momentum γ")
            if b == 0:
                ax.set_ylabel("median escape step")
        axes[r, 0].legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(out_dir("saddle_escape") / "saddle_escape.png", dpi=120, metadata={"Software": None})


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer batch sizes, seeds and steps")
    args = parser.parse_args()
    s = run(args.quick)
    for name, v in s.items():
        print(name, "(median escape step per γ =", MOMENTA, "; None = not within the horizon)")
        for b, per_rho in v["median_escape_step"].items():
            for r, per_g in per_rho.items():
                print(f"  {b:6s} {r:11s}", list(per_g.values()), "escaped:", v["fraction_escaped"][b][r])
