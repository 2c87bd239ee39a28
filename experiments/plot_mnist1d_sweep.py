"""MLP and CNN on MNIST-1D over ρ × momentum γ × batch size B: run the sweeps, summarise, plot.

The small-scale analogue of Kim et al.'s ResNet-18/CIFAR-10 study: does SAM gain more from momentum
and small batches than SGD does? The sweeps are ``experiments/sweeps/mnist1d_{mlp,cnn}.toml``
(``samdyn.nets.train`` with ``samdyn.optim.sam()``, ρ = 0 is exactly SGD; the same number of
epochs for every B; fixed η). This script runs or resumes each into ``out/sweeps/mnist1d_<model>``
(the store ``samdyn sweep experiments/sweeps/mnist1d_<model>.toml`` makes from the repository root;
a finished store is only read), then writes to ``experiments/out/mnist1d_sweep/``:

* ``mnist1d_sweep.json`` — per model and B: test accuracy and train loss over momenta for each ρ
  (means over seeds, diverged runs left out) and SAM's gain over SGD (best ρ > 0 minus ρ = 0);
* ``mnist1d_sweep.png`` — test accuracy against γ, one curve per ρ, per model and B.

Usage: ``python experiments/plot_mnist1d_sweep.py [--quick] [--set KEY=VALUE …] [--workers N]``.
``--quick``: B ∈ {25, 100}, 15 epochs, one seed; ``--set`` passes overrides to both specs (e.g.
``--set grid.batch_size=256`` for one batch size). Stores and outputs of such runs get a suffix
(``.quick``, a hash of the overrides). Full run: about 3–4 min on 2 CPU cores.
"""

from __future__ import annotations

import argparse
import hashlib
import json
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from samdyn import plotting, sweep  # noqa: E402

from _paths import out_dir  # noqa: E402

HERE = Path(__file__).resolve().parent
STORES = HERE.parent / "out" / "sweeps"
MODELS = ("mlp", "cnn")
QUICK = ["grid.batch_size=[25, 100]", "run.epochs=15", "grid.seed=0"]


def summarise(ds) -> dict:
    """Test accuracy and train loss per B and ρ (lists over momenta), SAM's gain over SGD per B."""
    ok = ~ds.diverged
    acc = ds.test_acc.isel(epoch=-1).where(ok)
    loss = ds.train_loss.isel(epoch=-1).where(ok)
    if "seed" in acc.dims:
        acc, loss = acc.mean("seed"), loss.mean("seed")
    out = {}
    for b in ds.batch_size.values:
        out[f"B={b}"] = {f"rho={r}": {"test_acc": [round(float(v), 4) for v in acc.sel(batch_size=b, rho=r).values],
                                       "train_loss": [float(f"{v:.3g}") for v in loss.sel(batch_size=b, rho=r).values]}
                         for r in ds.rho.values}
    gain = acc.isel(rho=slice(1, None)).max("rho") - acc.isel(rho=0)
    out["sam_gain_over_sgd_test_acc"] = {f"B={b}": [round(float(v), 4) for v in gain.sel(batch_size=b).values]
                                         for b in ds.batch_size.values}
    return out


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="B in {25, 100}, 15 epochs, one seed")
    ap.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="override both specs")
    ap.add_argument("--models", default=",".join(MODELS), help="comma-separated subset of mlp,cnn")
    ap.add_argument("--workers", type=int, help="run the sweeps on a local Dask cluster of N processes")
    args = ap.parse_args(argv)
    out = out_dir("mnist1d_sweep")
    overrides = (QUICK if args.quick else []) + args.set
    tag = ("." + hashlib.sha256("\n".join(overrides).encode()).hexdigest()[:8]) if args.set else ""
    tag = (".quick" if args.quick else "") + tag
    executor = sweep.Dask(workers=args.workers) if args.workers else None
    models = [m for m in args.models.split(",") if m]
    results, summary = {}, {}
    for name in models:
        spec = sweep.load_spec(HERE / "sweeps" / f"mnist1d_{name}.toml", overrides)
        store = STORES / f"mnist1d_{name}{tag}"
        print(sweep.run(spec, store, executor=executor))
        ds = sweep.open(store).load()
        if "batch_size" not in ds.dims:  # one batch size (e.g. --set grid.batch_size=256): keep the layout
            ds = ds.expand_dims(batch_size=[dict(spec.grid)["batch_size"]])
        results[name] = ds
        summary[name] = summarise(ds)
    meta = {"overrides": overrides, "stores": {m: f"out/sweeps/mnist1d_{m}{tag}" for m in models},
            "optimizer": "samdyn.optim.sam() (rho=0 is SGD)",
            "diverged_runs": {m: int(results[m].diverged.sum()) for m in models},
            "layout": "lists in the summary run over momenta; means over seeds"}
    (out / f"mnist1d_sweep{tag}.json").write_text(json.dumps({"meta": meta, "summary": summary}, indent=1))
    n_b = max(r.sizes["batch_size"] for r in results.values())
    fig, axes = plt.subplots(len(models), n_b, figsize=(3.4 * n_b, 3 * len(models)), squeeze=False, sharey="row")
    for m, name in enumerate(models):
        ds = results[name]
        for b, batch in enumerate(ds.batch_size.values):
            acc = (100 * ds.test_acc.isel(epoch=-1).sel(batch_size=batch).where(~ds.diverged.sel(batch_size=batch)))
            acc.attrs = {"long_name": "test accuracy", "units": "%"}
            ax = plotting.curves(acc, x="momentum", hue="rho", ax=axes[m, b], marker="o")
            ax.set_title(f"{name}, B = {batch}" + (", mean over seeds" if "seed" in acc.dims else ""), fontsize=9)
    fig.tight_layout()
    path = plotting.save(fig, out / f"mnist1d_sweep{tag}.png")
    print(json.dumps(summary, indent=1))
    print(f"wrote {out / f'mnist1d_sweep{tag}.json'} and {path}")
    return summary


if __name__ == "__main__":
    main()
