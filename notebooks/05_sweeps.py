# ---
# jupyter:
#   jupytext:
#     formats: ipynb,py:percent
#     text_representation:
#       extension: .py
#       format_name: percent
#       format_version: '1.3'
#       jupytext_version: 1.19.6
#   kernelspec:
#     display_name: Python 3 (ipykernel)
#     language: python
#     name: python3
# ---

# %% [markdown]
# # 05 · Sweeps: a spec, a grid, a labelled result on disk
#
# A sweep answers one question over a grid of hyperparameters. Here the question is: where in
# (η, ρ, γ) does USAM, started next to Beale's saddle, converge to it? Notebook 02 gives the exact
# answer from the Jacobian: ρ > ρ* = 4/111 and η(λ + ρλ²) < 2(1 + γ). Does simulation find the same
# boundary?
#
# The sweep module (`samdyn.sweep`: TOML spec → labelled dataset on disk, `samdyn sweep`,
# `sweep.open`) has not landed yet. Until it does, the section marked **Run** does the same thing with
# one `simulate` call over the whole grid. The spec, the dataset's layout and the plots stay as
# they are.

# %%
import json
import os
import pathlib
import tempfile

import matplotlib.pyplot as plt
import numpy as np

import samdyn as sd

SMOKE = os.environ.get("SAMDYN_NOTEBOOK_SMOKE") == "1"  # tests: a coarse grid; a person: full size
N = 24 if SMOKE else 96  # grid points per axis
plt.rcParams["figure.figsize"] = (12, 4)

# %% [markdown]
# ## The spec
#
# A spec says what to run and over which axes: a landscape, an optimizer, a start, a number of
# steps, and one list of values per swept hyperparameter. Every combination is one run.

# %%
spec = {
    "name": "usam_beale_saddle",
    "landscape": "beale",
    "optimizer": "usam",
    "x0": [0.01, 1.01],  # next to the saddle (0, 1)
    "steps": 2000,
    "grid": {
        "lr": np.linspace(1e-3, 0.1, N).tolist(),
        "rho": np.linspace(0.0, 0.15, N).tolist(),
        "momentum": [0.0, 0.9],
    },
}
print(json.dumps({**spec, "grid": {k: f"{len(v)} values in [{min(v):g}, {max(v):g}]" for k, v in spec["grid"].items()}},
                 indent=1))

# %% [markdown]
# ## Run
#
# <!-- swap point: once samdyn.sweep has landed, replace run_sweep / open_sweep below by the sweep
#      module's runner and sweep.open (the spec above becomes its TOML file) -->
#
# The grid axes become broadcast hyperparameter leaves, so the whole grid is one batch of one
# compiled program. The result is saved with its coordinates and the spec, then read back.

# %%
OPTIMIZERS = {"gd": sd.optim.gd(), "sam": sd.optim.sam(), "usam": sd.optim.usam()}


def run_sweep(spec, path):
    """Run every grid point of ``spec`` in one simulate call; save end points and labels to ``path`` (.npz)."""
    f = sd.landscapes.get(spec["landscape"])
    dims = tuple(spec["grid"])  # ("lr", "rho", "momentum")
    axes = [np.asarray(spec["grid"][d]) for d in dims]
    leaves = {d: a.reshape([-1 if i == k else 1 for i in range(len(dims))]) for k, (d, a) in enumerate(zip(dims, axes))}
    run = sd.simulate(f, OPTIMIZERS[spec["optimizer"]], sd.optim.hparams(**leaves), spec["x0"], spec["steps"])
    np.savez(path, final=run.final, diverged=run.diverged, dims=np.array(dims), spec=json.dumps(spec),
             **{f"coord_{d}": a for d, a in zip(dims, axes)})
    return path


def open_sweep(path):
    """The saved sweep as a dict: variables with their dims, coordinates, and the spec."""
    with np.load(path) as z:
        dims = tuple(z["dims"].tolist())
        return {"dims": dims, "coords": {d: z[f"coord_{d}"] for d in dims}, "final": z["final"],
                "diverged": z["diverged"], "spec": json.loads(str(z["spec"]))}


out = pathlib.Path(tempfile.mkdtemp()) / f"{spec['name']}.npz"
ds = open_sweep(run_sweep(spec, out))
print("dims:", ds["dims"], "| final:", ds["final"].shape, "| diverged runs:", int(ds["diverged"].sum()))

# %% [markdown]
# ## Plot
#
# Colour shows the log distance of each end point from the saddle, and white marks diverged runs.
# The dashed lines are the exact boundaries from notebook 02.

# %%
lr, rho, momentum = (ds["coords"][d] for d in ("lr", "rho", "momentum"))
distance = np.where(ds["diverged"], np.nan, np.linalg.norm(ds["final"] - (0.0, 1.0), axis=-1))  # (lr, rho, γ)
lam = 111 / 4
rho_star = float(sd.stability.rho_threshold(sd.landscapes.get("beale"), (0, 1)))
fig, axes = plt.subplots(1, len(momentum), sharey=True)
for k, (ax, gamma) in enumerate(zip(axes, momentum)):
    mesh = ax.pcolormesh(lr, rho, np.log10(distance[:, :, k]).T, cmap="viridis_r", vmin=-8, vmax=0, shading="nearest")
    r = rho[rho > 0]
    ax.plot(2 * (1 + gamma) / (lam + r * lam**2), r, "k--", lw=1.2, label="η(λ + ρλ²) = 2(1 + γ)")
    ax.axhline(rho_star, color="k", ls=":", lw=1.2, label="ρ* = 4/111")
    ax.set(xlim=(lr[0], lr[-1]), ylim=(rho[0], rho[-1]), xlabel="learning rate η", title=f"USAM, γ = {gamma:g}")
    ax.legend(loc="upper right", fontsize=8)
axes[0].set_ylabel("ρ")
fig.colorbar(mesh, ax=axes, label=f"log₁₀ ‖w − (0, 1)‖ after {ds['spec']['steps']} steps")
plt.show()

# %%
fig, ax = plt.subplots(figsize=(6.5, 4))
for k, gamma in enumerate(momentum):
    ax.plot(rho, np.mean(distance[:, :, k] < 1e-6, axis=0), label=f"γ = {gamma:g}")
ax.axvline(rho_star, color="k", ls=":", label="ρ* = 4/111")
ax.set(xlabel="ρ", ylabel="fraction of η that converged (‖w − (0, 1)‖ < 10⁻⁶)",
       title="how much of the η axis is trapped")
ax.legend()
plt.show()

# %% [markdown]
# Above ρ* and left of the edge the runs converge to the saddle, and elsewhere they leave or diverge.
# The simulated boundary sits on the exact one. Near both boundaries convergence is slow (the
# multiplier is close to 1), so a finite run there ends between the two colours. Momentum moves the
# edge to larger η and traps more of the grid. With momentum, a band of runs inside the region
# diverges anyway: the saddle attracts, but the momentum transient from our start throws those runs
# out of its basin first. Linear stability says nothing about the size of the basin.
