"""Saddle escape on networks whose origin is a saddle, over ρ × momentum γ × batch size B: the
network counterpart of Kim et al.'s Theorem 1 (SAM makes the saddle attract) and Theorem 3 (momentum
and small batches help it out).

Models (``samdyn.nets``): a depth-2 deep linear net 8-8-4 (strict saddle at 0, started at scale
1e-3) and the squared-activation toy of Ziyin et al. used by Kim et al. (two layers, one hidden
neuron, φ(z) = z², MSE; degenerate saddle at 0, started at 1e-2), both on teacher–student regression
(256 training samples, label noise 0.1), trained by ``nets.train`` with ``samdyn.optim.sam()``
(normalised SAM; ρ = 0 is exactly SGD on the same minibatches), float32. Escape = the first recorded
step with ‖w‖ > 0.3; a run that never leaves counts as not escaped.

``fig_nets_saddle`` (2 × 2): rows = models; left: fraction of seeds that escape vs ρ, right: median
final training loss vs ρ; colour and marker = momentum γ, solid = smallest B, dashed = largest B.

Run time on 2 CPU cores: ``--quick`` ≈ 20 s, full ≈ 3–4 min.
"""

from __future__ import annotations

import time
import warnings

import matplotlib.pyplot as plt
import numpy as np

import samdyn as sd
from samdyn import nets

import _report

MOMENTA = (0.0, 0.5, 0.9, 0.95)
RADIUS = 0.3
EVERY = 5

PROBLEMS = {
    # name: () -> (model, data, lr, rhos); ρ grids straddle the initial scale ‖w₀‖
    "deep_linear": lambda: (nets.deep_linear(8, 8, 4, depth=2, init_scale=1e-3),
                            nets.datasets.teacher_student(n_train=256, n_test=256, in_dim=8, out_dim=4,
                                                          teacher="linear", noise_std=0.1, seed=0),
                            0.01, (0.0, 1e-4, 1e-3, 1e-2)),
    "square_toy": lambda: (nets.square_toy(4, init_scale=1e-2),
                           nets.datasets.teacher_student(n_train=256, n_test=256, in_dim=4, out_dim=1,
                                                         teacher="square", noise_std=0.1, seed=0),
                           0.02, (0.0, 0.01, 0.03, 0.1)),
}
TITLES = {"deep_linear": "deep linear net (depth 2)", "square_toy": "φ(z) = z² toy (one neuron)"}


def escape_steps(times, param_norm, radius):
    """First recorded step with ‖w‖ > radius (NaN where never), shape = param_norm.shape[:-1]."""
    out = param_norm > radius
    first = np.argmax(out, axis=-1)
    return np.where(out.any(axis=-1), times[first], np.nan)


def run(quick: bool):
    batches = (8, 64) if quick else (8, 32, 256)
    seeds = 3 if quick else 8
    steps = 600 if quick else 3000
    results = {}
    warnings.filterwarnings("ignore", "All-NaN slice", RuntimeWarning)   # cells where every run diverged
    for name, build in PROBLEMS.items():
        model, data, lr, rhos = build()
        hp = sd.optim.hparams(lr=lr, rho=np.asarray(rhos)[:, None], momentum=np.asarray(MOMENTA)[None, :])
        esc = np.full((len(batches), len(rhos), len(MOMENTA), seeds), np.nan)
        final_loss = np.full_like(esc, np.nan)
        diverged = np.zeros(esc.shape, bool)
        for b, batch in enumerate(batches):
            t0 = time.perf_counter()
            res = nets.train(model, data, sd.optim.sam(), hp, steps, batch, key=0, seeds=seeds, eval_every=EVERY)
            esc[b] = escape_steps(res.times, res.records["param_norm"], RADIUS)
            final_loss[b] = np.where(res.diverged, np.nan, res.final("train_loss"))
            diverged[b] = res.diverged
            print(f"{name} B={batch}: {time.perf_counter() - t0:.1f}s, diverged {int(res.diverged.sum())}/{res.diverged.size}")
        results[name] = {"escape": esc, "final_loss": final_loss, "diverged": diverged, "rhos": rhos, "lr": lr,
                         "init_scale": dict(model.options)["init_scale"], "model": model.name}
    return results, {"batch_sizes": batches, "seeds": seeds, "steps": steps}


def plot(study, results, meta):
    fig, axes = plt.subplots(len(results), 2, figsize=(_report.TEXT_WIDTH, 4.6), squeeze=False)
    batches = meta["batch_sizes"]
    for row, (name, d) in enumerate(results.items()):
        x = np.arange(len(d["rhos"]))
        frac = np.mean(np.isfinite(d["escape"]), axis=-1)            # (B, ρ, γ)
        loss = np.nanmedian(d["final_loss"], axis=-1)
        for k, g in enumerate(MOMENTA):
            for b, ls in ((0, "-"), (len(batches) - 1, "--")):
                lab = f"γ = {g:g}" if b == 0 else None
                axes[row, 0].plot(x, frac[b, :, k], color=f"C{k}", marker="osD^"[k], linestyle=ls, label=lab)
                axes[row, 1].plot(x, loss[b, :, k], color=f"C{k}", marker="osD^"[k], linestyle=ls)
        for a in axes[row]:
            a.set_xticks(x, [f"{r:g}" for r in d["rhos"]])
            a.set_xlabel("SAM radius ρ (ρ = 0: SGD)")
        axes[row, 0].set_ylabel("fraction of seeds escaped")
        axes[row, 0].set_ylim(-0.05, 1.05)
        axes[row, 1].set_ylabel("median final train loss (MSE)")
        axes[row, 1].set_yscale("log")
        axes[row, 0].set_title(f"{TITLES[name]}: escaped by step {meta['steps']}")
        axes[row, 1].set_title(f"{TITLES[name]}: final loss")
    handles, labels = axes[0, 0].get_legend_handles_labels()
    handles += [plt.Line2D([], [], color="0.3", linestyle="-", marker=""),
                plt.Line2D([], [], color="0.3", linestyle="--", marker="")]
    labels += [f"B = {batches[0]}", f"B = {batches[-1]}"]
    fig.legend(handles, labels, loc="lower center", ncol=6, frameon=False)
    fig.suptitle(f"Saddle escape of small networks under SAM ({meta['seeds']} seeds per cell, ‖w‖ > {RADIUS} "
                 "= escaped)", fontsize=8)
    fig.tight_layout(rect=(0, 0.05, 1, 1))
    study.figure(fig)


def main(argv=None):
    args = _report.cli(__doc__, argv)
    study = _report.Study("fig_nets_saddle", args.quick)
    start = time.perf_counter()
    results, meta = run(args.quick)
    plot(study, results, meta)
    record, macros = {}, {}
    num = _report.num
    words = {"deep_linear": "Linear", "square_toy": "Square"}
    for name, d in results.items():
        frac = np.mean(np.isfinite(d["escape"]), axis=-1)                       # (B, ρ, γ)
        med = np.median(np.where(np.isfinite(d["escape"]), d["escape"], np.inf), axis=-1)
        loss = np.nanmedian(d["final_loss"], axis=-1)
        record[name] = {
            "model": d["model"], "lr": d["lr"], "rhos": d["rhos"], "init_scale": d["init_scale"],
            "fraction_escaped[B][rho][gamma]": frac,
            "median_escape_step[B][rho][gamma]": np.where(np.isfinite(med), med, None).tolist(),
            "median_final_train_loss[B][rho][gamma]": loss,
            "fraction_diverged": float(d["diverged"].mean()),
            "fraction_diverged[B][rho][gamma]": d["diverged"].mean(axis=-1),  # a diverged run counts as escaped
        }
        w = words[name]
        macros[f"nets{w}RhoMax"] = num(d["rhos"][-1])
        macros[f"nets{w}EscSGD"] = num(100 * frac[0, 0, 0])              # smallest B, γ = 0
        macros[f"nets{w}EscSAM"] = num(100 * frac[0, -1, 0])             # largest ρ
        macros[f"nets{w}EscSAMMomentum"] = num(100 * frac[0, -1, -1])    # largest ρ, largest γ
        macros[f"nets{w}EscSAMLargeB"] = num(100 * frac[-1, -1, 0])
        macros[f"nets{w}LossSGD"] = num(loss[0, 0, 0])
        macros[f"nets{w}LossSAM"] = num(loss[0, -1, 0])
        macros[f"nets{w}LossSAMMomentum"] = num(loss[0, -1, -1])
        macros[f"nets{w}MedianSGD"] = num(med[0, 0, 0]) if np.isfinite(med[0, 0, 0]) else f"$>{meta['steps']}$"
    macros.update({"netsSeeds": str(meta["seeds"]), "netsSteps": str(meta["steps"]),
                   "netsBSmall": str(meta["batch_sizes"][0]), "netsBLarge": str(meta["batch_sizes"][-1]),
                   "netsGammaMax": num(MOMENTA[-1]), "netsRadius": num(RADIUS)})
    values = {"settings": {**meta, "momenta": MOMENTA, "radius": RADIUS, "record_every": EVERY, "dtype": "float32",
                           "optimizer": "samdyn.optim.sam() (normalised; rho = 0 is SGD on the same minibatches)",
                           "data": "teacher_student n_train=256, noise_std=0.1, seed=0", "key": 0},
              "models": record, "seconds": round(time.perf_counter() - start, 1)}
    study.numbers(values, macros)
    for name, r in record.items():
        print(name, "fraction escaped [B][rho][gamma]:\n", np.round(r["fraction_escaped[B][rho][gamma]"], 3))


if __name__ == "__main__":
    main()
