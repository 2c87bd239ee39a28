"""MLP and CNN on MNIST-1D: final train loss and test accuracy over ρ × momentum γ × batch size B.

The small-scale analogue of Kim et al.'s ResNet-18/CIFAR-10 study: does SAM gain more from
momentum and small batches than SGD does? Every cell is trained by ``samdyn.nets.train`` with
``samdyn.optim.sam()`` (ρ = 0 is exactly SGD), all ρ × γ × seeds of one (model, B) in one
compiled, vmapped program. Same number of epochs for every B (so the same number of samples
seen), fixed learning rate η (the effective step η/(1−γ) grows with γ, as in a plain sweep).

Writes ``experiments/results/mnist1d_sweep.{npz,json}`` and ``experiments/figures/mnist1d_sweep.png``.

Usage: ``python experiments/mnist1d_sweep.py [--quick]``
"""

from __future__ import annotations

import argparse
import json
import pathlib
import time

import numpy as np

import samdyn as sd
from samdyn import nets

HERE = pathlib.Path(__file__).resolve().parent
RHOS = (0.0, 0.05, 0.2)
MOMENTA = (0.0, 0.5, 0.9, 0.95)
MODELS = {"mlp": lambda: nets.mlp(40, (100, 100), 10), "cnn": lambda: nets.cnn1d()}


def run(quick: bool):
    data = nets.datasets.mnist1d()
    n = len(data.x_train)
    batches = (25, 100) if quick else (16, 64, 256)
    epochs = 15 if quick else 20
    seeds = 1 if quick else 2
    lr = 0.02
    hp = sd.optim.hparams(lr=lr, rho=np.asarray(RHOS)[:, None], momentum=np.asarray(MOMENTA)[None, :])
    shape = (len(MODELS), len(batches), len(RHOS), len(MOMENTA), seeds)
    test_acc, train_loss, diverged = np.full(shape, np.nan), np.full(shape, np.nan), np.zeros(shape, bool)
    timing = {}
    for m, (name, build) in enumerate(MODELS.items()):
        for b, batch in enumerate(batches):
            steps = epochs * (n // batch)
            t0 = time.time()
            res = nets.train(build(), data, sd.optim.sam(), hp, steps, batch, key=0, seeds=seeds)
            timing[f"{name} B={batch}"] = round(time.time() - t0, 1)
            test_acc[m, b] = res.final("test_acc")
            train_loss[m, b] = np.where(res.diverged, np.nan, res.final("train_loss"))
            diverged[m, b] = res.diverged
            print(f"{name} B={batch} ({steps} steps, {res.diverged.size} runs): {timing[name + f' B={batch}']}s")
    acc = np.nanmean(np.where(diverged, np.nan, test_acc), axis=-1)
    loss = np.nanmean(train_loss, axis=-1)
    summary = {}
    for m, name in enumerate(MODELS):
        summary[name] = {}
        for b, batch in enumerate(batches):
            summary[name][f"B={batch}"] = {
                f"rho={r}": {"test_acc": [round(float(v), 4) for v in acc[m, b, j]],
                             "train_loss": [float(f"{v:.3g}") for v in loss[m, b, j]]} for j, r in enumerate(RHOS)}
        # SAM's gain over SGD (ρ = 0) at each (B, γ), best ρ > 0
        gain = np.nanmax(acc[m, :, 1:], axis=1) - acc[m, :, 0]
        summary[name]["sam_gain_over_sgd_test_acc"] = {f"B={B}": [round(float(v), 4) for v in gain[i]]
                                                       for i, B in enumerate(batches)}
    meta = {"rhos": RHOS, "momenta": MOMENTA, "batch_sizes": batches, "epochs": epochs, "lr": lr, "seeds": seeds,
            "n_train": n, "n_test": len(data.x_test), "optimizer": "samdyn.optim.sam() (rho=0 is SGD)",
            "dtype": "float32", "seconds": timing, "diverged_runs": int(diverged.sum()),
            "layout": "arrays (model, batch, rho, momentum, seed); lists in the summary run over momenta"}
    out = HERE / "results"
    np.savez(out / "mnist1d_sweep.npz", test_acc=test_acc, train_loss=train_loss, diverged=diverged, rhos=RHOS,
             momenta=MOMENTA, batch_sizes=batches, models=list(MODELS))
    (out / "mnist1d_sweep.json").write_text(json.dumps({"meta": meta, "summary": summary}, indent=1))
    plot(acc, batches)
    return summary


def plot(acc, batches):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(len(MODELS), len(batches), figsize=(3.2 * len(batches), 2.8 * len(MODELS)),
                             squeeze=False, sharey="row")
    for m, name in enumerate(MODELS):
        for b, batch in enumerate(batches):
            ax = axes[m, b]
            for j, rho in enumerate(RHOS):
                ax.plot(MOMENTA, 100 * acc[m, b, j], "o-", label=f"ρ={rho}" + (" (SGD)" if rho == 0 else ""))
            ax.set_title(f"{name}, B={batch}", fontsize=9)
            ax.set_xlabel("momentum γ")
            if b == 0:
                ax.set_ylabel("test accuracy (%)")
        axes[m, 0].legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(HERE / "figures" / "mnist1d_sweep.png", dpi=120, metadata={"Software": None})


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer batch sizes, epochs and seeds")
    args = parser.parse_args()
    print(json.dumps(run(args.quick), indent=1))
