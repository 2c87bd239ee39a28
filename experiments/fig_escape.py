"""Escape times from saddles over ρ × momentum γ × batch size B (Kim et al. 2023, Theorems 2–3):
survival curves and median-escape-time heatmaps.

The sweeps are ``experiments/sweeps/kim_escape_{saddle,quadratic3,beale}.toml`` (normalised SAM,
ρ = 0 is SGD, Hessian-shaped noise |H(w)|/B at the point where each gradient is taken, every particle
starting at the saddle; escaped = first step farther than the spec's radius). They run through
``samdyn.sweep`` into ``out/sweeps/kim_escape_<problem>`` at full size (the store ``samdyn sweep
experiments/sweeps/kim_escape_<problem>.toml`` makes from the repository root; a finished store is
only read) and into ``<quick root>/fig_escape/sweeps/`` with ``--quick`` (256 particles, a fifth of
the steps).

``fig_escape``: survival (fraction of particles not yet escaped) over steps, one panel per problem, at
the smallest B: colour and marker = ρ, solid γ = 0 / dashed γ = 0.9.
``fig_escape_heatmap``: median escape step (over all particles, never-escaped ones counted as +∞;
hatched "> T" where fewer than half escaped within T steps) over γ × B, rows = problems, columns = ρ.

Run time on 2 CPU cores: ``--quick`` ≈ 15 s, full ≈ 4–5 min (most of it Beale).
"""

from __future__ import annotations

import time
from pathlib import Path

import matplotlib.colors as mcolors
import matplotlib.pyplot as plt
import numpy as np

from samdyn import sweep

import _report

HERE = Path(__file__).resolve().parent
FULL_STORES = _report.REPO / "out" / "sweeps"
PROBLEMS = ("saddle", "quadratic3", "beale")
TITLES = {"saddle": "x² − y² (λ = ±2)", "quadratic3": "quadratic, λ = (1, 2, −1)", "beale": "Beale at (0, 1), λ = ±27.75"}


def escape_summary(ds) -> dict:
    """Median exit step (+∞ for never escaped; NaN when fewer than half escaped) and fraction escaped,
    arrays (ρ, γ, B)."""
    exit_step = ds.exit_step.transpose("rho", "momentum", "batch_size", "particle").values.astype(np.float64)
    escaped = exit_step >= 0
    median = np.median(np.where(escaped, exit_step, np.inf), axis=-1)
    return {"median_exit": np.where(np.isfinite(median), median, np.nan), "fraction_escaped": escaped.mean(axis=-1)}


def run_sweeps(quick: bool) -> dict:
    """Run or resume each sweep; returns name → (spec, dataset)."""
    stores = (_report.root(True) / "fig_escape" / "sweeps") if quick else FULL_STORES
    out = {}
    for name in PROBLEMS:
        path = HERE / "sweeps" / f"kim_escape_{name}.toml"
        overrides = []
        if quick:
            steps = sweep.load_spec(path).data["run"]["steps"] // 5
            overrides = ["run.particles=256", f"run.steps={steps}", f"run.every={max(1, steps // 100)}"]
        spec = sweep.load_spec(path, overrides)
        store = stores / f"kim_escape_{name}"
        print(sweep.run(spec, store, progress=False))
        out[name] = (spec, sweep.open(store).load(), store)
    return out


def plot_survival(study, results):
    fig, axes = plt.subplots(1, len(PROBLEMS), figsize=(_report.TEXT_WIDTH, 2.5), sharey=True)
    colours, markers = ["C0", "C1", "C2"], ["", "o", "s"]
    for ax, name in zip(axes, PROBLEMS):
        ds = results[name][1].isel(batch_size=0)
        steps = ds.step.values
        for j, g in enumerate(ds.momentum.values):
            for i, r in enumerate(ds.rho.values):
                surv = 1 - ds.escaped.sel(momentum=g, rho=r).values
                ax.plot(steps, surv, color=colours[i % 3], marker=markers[i % 3], markevery=max(1, len(steps) // 8),
                        linestyle=("-", "--")[j % 2],
                        label=f"ρ = {r:g}" + (" (SGD)" if r == 0 else "") if j == 0 else None)
        ax.set_xlabel("step")
        ax.set_title(f"{TITLES[name]}\nB = {float(ds.batch_size):g}, η = {dict(results[name][0].grid)['lr']:g}")
        ax.set_ylim(-0.03, 1.03)
    axes[0].set_ylabel("fraction not escaped")
    handles, labels = axes[0].get_legend_handles_labels()
    g = results[PROBLEMS[0]][1].momentum.values
    handles += [plt.Line2D([], [], color="0.3", linestyle="-", marker=""),
                plt.Line2D([], [], color="0.3", linestyle="--", marker="")]
    labels += [f"γ = {g[0]:g}", f"γ = {g[-1]:g}"]
    fig.legend(handles, labels, loc="lower center", ncol=5, frameon=False, bbox_to_anchor=(0.5, -0.02))
    fig.suptitle("Escape from saddles under normalised SAM with |H|/B noise: survival curves", fontsize=8)
    fig.tight_layout(rect=(0, 0.08, 1, 1))
    study.figure(fig)


def plot_heatmaps(study, results, summary):
    n_rho = max(results[n][1].sizes["rho"] for n in PROBLEMS)
    fig, axes = plt.subplots(len(PROBLEMS), n_rho, figsize=(_report.TEXT_WIDTH, 5.2), squeeze=False)
    fig.subplots_adjust(hspace=0.3, wspace=0.25)
    for row, name in enumerate(PROBLEMS):
        spec, ds, _ = results[name]
        med = summary[name]["median_exit"]
        steps = spec.data["run"]["steps"]
        finite = med[np.isfinite(med)]
        norm = mcolors.LogNorm(vmin=max(finite.min(), 1) if finite.size else 1, vmax=steps)
        gam, bs = ds.momentum.values, ds.batch_size.values
        for col in range(n_rho):
            ax = axes[row, col]
            m = med[col]                                               # (γ, B)
            im = ax.imshow(np.where(np.isfinite(m), m, np.nan), cmap="cividis", norm=norm, origin="lower",
                           aspect="auto")
            for (gi, bi), v in np.ndenumerate(m):
                if np.isfinite(v):
                    ax.text(bi, gi, f"{v:.0f}", ha="center", va="center", fontsize=7,
                            color="white" if norm(v) < 0.5 else "black")
                else:
                    ax.add_patch(plt.Rectangle((bi - 0.5, gi - 0.5), 1, 1, facecolor="0.85", hatch="///",
                                               edgecolor="0.5", lw=0))
                    ax.text(bi, gi, f"> {steps}", ha="center", va="center", fontsize=7)
            ax.set_xticks(range(len(bs)), [f"{b:g}" for b in bs])
            ax.set_yticks(range(len(gam)), [f"{g:g}" for g in gam])
            if row == len(PROBLEMS) - 1:
                ax.set_xlabel("batch size B")
            if col == 0:
                ax.set_ylabel(f"{TITLES[name].split(',')[0].split(' at')[0]}\nmomentum γ")
            if row == 0:
                ax.set_title(f"ρ = {ds.rho.values[col]:g}" + (" (SGD)" if ds.rho.values[col] == 0 else ""))
        cb = fig.colorbar(im, ax=axes[row, :].tolist(), fraction=0.04, pad=0.02)
        cb.set_label("median escape (steps)")
    fig.suptitle("Median escape step from the saddle over momentum × batch size (rows: x² − y², "
                 "3-D quadratic, Beale)", fontsize=8)
    study.figure(fig, stem="fig_escape_heatmap")


def main(argv=None):
    args = _report.cli(__doc__, argv)
    study = _report.Study("fig_escape", args.quick)
    start = time.perf_counter()
    results = run_sweeps(args.quick)
    summary, record = {}, {}
    for name, (spec, ds, store) in results.items():
        stats = escape_summary(ds)
        summary[name] = stats
        run = spec.data["run"]
        record[name] = {
            "spec": f"experiments/sweeps/kim_escape_{name}.toml", "store": str(store.relative_to(_report.REPO))
            if store.is_relative_to(_report.REPO) else str(store),
            "point": run["x0"], "lr": dict(spec.grid)["lr"], "radius": run["radius"], "steps": run["steps"],
            "particles": run["particles"], "every": run["every"], "dtype": run["dtype"], "seed": dict(spec.grid)["seed"],
            "rho": ds.rho.values, "momentum": ds.momentum.values, "batch_size": ds.batch_size.values,
            "median_exit_step[rho][momentum][batch]": np.round(stats["median_exit"], 1),
            "fraction_escaped[rho][momentum][batch]": np.round(stats["fraction_escaped"], 4),
            "diverged_settings": int(ds.diverged.sum()),
        }
    plot_survival(study, results)
    plot_heatmaps(study, results, summary)
    num = _report.num
    macros = {}
    words = {"saddle": "Saddle", "quadratic3": "Quad", "beale": "Beale"}
    for name in PROBLEMS:
        med, frac = summary[name]["median_exit"], summary[name]["fraction_escaped"]
        w = words[name]
        steps = record[name]["steps"]
        txt = lambda v: num(v) if np.isfinite(v) else f"$>{steps}$"  # noqa: E731
        # [ρ][γ][B]: SGD and the largest ρ, γ = 0 and the largest γ, at the smallest B
        macros[f"esc{w}MedianSGD"] = txt(med[0, 0, 0])
        macros[f"esc{w}MedianSGDMomentum"] = txt(med[0, -1, 0])
        macros[f"esc{w}MedianSAM"] = txt(med[-1, 0, 0])
        macros[f"esc{w}MedianSAMMomentum"] = txt(med[-1, -1, 0])
        macros[f"esc{w}MedianSAMLargeB"] = txt(med[-1, 0, -1])
        macros[f"esc{w}MedianSAMMomentumLargeB"] = txt(med[-1, -1, -1])
        macros[f"esc{w}FracSAM"] = num(100 * frac[-1, 0, 0])
        macros[f"esc{w}FracSAMMomentum"] = num(100 * frac[-1, -1, 0])
        macros[f"esc{w}FracSAMMomentumLargeB"] = num(100 * frac[-1, -1, -1])
        macros[f"esc{w}Steps"] = str(steps)
    any_ds = results[PROBLEMS[0]][1]
    macros.update({"escRhoMax": num(any_ds.rho.values[-1]), "escGammaMax": num(any_ds.momentum.values[-1]),
                   "escBSmall": num(any_ds.batch_size.values[0]), "escBLarge": num(any_ds.batch_size.values[-1]),
                   "escParticles": str(record[PROBLEMS[0]]["particles"])})
    study.numbers({"problems": record, "optimizer": "samdyn.optim.sam() (normalised; rho = 0 is SGD)",
                   "noise": "hessian |H(w)|/B, SAM's two gradients share one draw",
                   "seconds": round(time.perf_counter() - start, 1)}, macros)
    for name in PROBLEMS:
        print(f"{name}: median exit [rho][momentum][batch] =\n{np.round(summary[name]['median_exit'], 1)}")


if __name__ == "__main__":
    main()
