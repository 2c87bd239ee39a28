"""Escape times from saddles over ρ × momentum × batch size (Kim et al. 2023): run the sweeps, plot.

The sweeps are ``experiments/sweeps/kim_escape_{saddle,quadratic3,beale}.toml`` (normalised SAM,
ρ = 0 is SGD, Hessian-shaped noise |H(w)|/B, every particle starting at the saddle). This script
runs or resumes each one into ``out/sweeps/kim_escape_<problem>`` — the store ``samdyn sweep
experiments/sweeps/kim_escape_<problem>.toml`` makes from the repository root; a finished store is
only read — then writes to ``experiments/out/escape_times/``:

* ``escape_times.json`` — per problem: median exit step (over all particles, never-escaped ones
  counted as +∞: NaN when fewer than half escaped) and fraction escaped, as [ρ][momentum][B]; and
  the exact linear model's variance along the escape direction after min(steps, 200) steps
  (``samdyn.diffusion.linear_moments``), the quantity of Kim et al.'s Theorems 2–3;
* ``escape_times.png`` — survival curves (fraction not escaped) at the smallest B.

Usage: ``python experiments/plot_escape_times.py [--quick] [--workers N]`` (``--quick``: 256
particles and a fifth of the steps; stores and outputs get a ``.quick`` suffix). Full run: about
4–5 min on 2 CPU cores, most of it Beale.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

import samdyn as sd  # noqa: E402
from samdyn import diffusion, plotting, sweep  # noqa: E402

from _paths import out_dir  # noqa: E402

HERE = Path(__file__).resolve().parent
STORES = HERE.parent / "out" / "sweeps"
PROBLEMS = ("saddle", "quadratic3", "beale")


def escape_summary(ds) -> dict:
    """Median exit step and fraction escaped per (ρ, momentum, B), as in ``diffusion.escape_times``."""
    exit_step = ds.exit_step.transpose("rho", "momentum", "batch_size", "particle").values.astype(np.float64)
    escaped = exit_step >= 0
    median = np.median(np.where(escaped, exit_step, np.inf), axis=-1)
    return {"median_exit": np.where(np.isfinite(median), median, np.nan), "fraction_escaped": escaped.mean(axis=-1)}


def linear_escape_variance(ds, spec) -> np.ndarray:
    """Exact linear-model variance along the escape direction after min(steps, 200) steps, [ρ][γ][B]."""
    f = sweep.spec.setup(spec).problem
    point = np.asarray(spec.data["run"]["x0"]["point"])
    H = np.asarray(f.hessian(point), dtype=np.float64)
    lam, V = np.linalg.eigh(H)
    abs_h = (V * np.abs(lam)) @ V.T
    lr = dict(spec.grid)["lr"]
    steps = min(spec.data["run"]["steps"], 200)
    out = np.zeros((ds.sizes["rho"], ds.sizes["momentum"], ds.sizes["batch_size"]))
    for i, r in enumerate(ds.rho.values):
        for j, g in enumerate(ds.momentum.values):
            for k, b in enumerate(ds.batch_size.values):
                lm = diffusion.linear_moments(sd.optim.sam(), H, abs_h / b, sd.optim.hparams(lr=lr, rho=r, momentum=g),
                                              steps)
                out[i, j, k] = V[:, 0] @ lm.cov[-1] @ V[:, 0]
    return out


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="256 particles, a fifth of the steps (smoke run)")
    ap.add_argument("--workers", type=int, help="run the sweeps on a local Dask cluster of N processes")
    args = ap.parse_args(argv)
    out, tag = out_dir("escape_times"), ".quick" if args.quick else ""
    executor = sweep.Dask(workers=args.workers) if args.workers else None
    summary, results = {}, {}
    for name in PROBLEMS:
        path = HERE / "sweeps" / f"kim_escape_{name}.toml"
        overrides = []
        if args.quick:
            steps = sweep.load_spec(path).data["run"]["steps"] // 5
            overrides = ["run.particles=256", f"run.steps={steps}", f"run.every={max(1, steps // 100)}"]
        spec = sweep.load_spec(path, overrides)
        store = STORES / f"kim_escape_{name}{tag}"
        print(sweep.run(spec, store, executor=executor))
        ds = sweep.open(store).load()
        stats = escape_summary(ds)
        results[name] = ds
        summary[name] = {
            "store": f"out/sweeps/kim_escape_{name}{tag}", "point": spec.data["run"]["x0"]["point"], "lr": dict(spec.grid)["lr"],
            "radius": spec.data["run"]["radius"], "steps": spec.data["run"]["steps"],
            "particles": spec.data["run"]["particles"], "rho": ds.rho.values.tolist(),
            "momentum": ds.momentum.values.tolist(), "batch_size": ds.batch_size.values.tolist(),
            "median_exit_step[rho][momentum][batch]": np.round(stats["median_exit"], 1).tolist(),
            "fraction_escaped[rho][momentum][batch]": np.round(stats["fraction_escaped"], 4).tolist(),
            "linear_model_escape_variance_after_200_steps": linear_escape_variance(ds, spec).tolist(),
            "diverged_settings": int(ds.diverged.sum()),
        }
        print(f"{name}: median exit steps [rho][momentum][batch] =\n{np.round(stats['median_exit'], 1)}")
    (out / f"escape_times{tag}.json").write_text(json.dumps(summary, indent=2))
    fig, axes = plt.subplots(1, len(PROBLEMS), figsize=(5 * len(PROBLEMS), 3.8))
    for ax, name in zip(axes, PROBLEMS):
        ds = results[name].isel(batch_size=0)
        for g, style in zip(ds.momentum.values, ("-", "--")):
            ax.set_prop_cycle(None)  # one colour per ρ, one line style per γ
            survival = 1 - ds.escaped.sel(momentum=g)
            survival.attrs = {"long_name": "fraction not escaped", "units": "fraction"}
            plotting.curves(survival, x="step", hue="rho", ax=ax, linestyle=style)
        ax.set_title(f"{name}: B = {float(ds.batch_size):g}; solid γ = 0, dashed γ = {ds.momentum.values[-1]:g}",
                     fontsize=9)
    fig.tight_layout()
    path = plotting.save(fig, out / f"escape_times{tag}.png")
    print(f"wrote {out / f'escape_times{tag}.json'} and {path}")
    return summary


if __name__ == "__main__":
    main()
