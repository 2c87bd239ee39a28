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
# # 01 · Quickstart: where does SAM go?
#
# This notebook covers landscapes and their critical points, GD, SAM and USAM on Beale's function, the
# saddle that traps SAM (Kim et al. 2023), and how one compiled program runs a whole grid of starts and
# hyperparameters.

# %%
import os
import subprocess
import sys

import jax
import matplotlib.pyplot as plt
import numpy as np

import samdyn as sd  # first, before any JAX computation: it turns on float64 and one CPU device per core

SMOKE = os.environ.get("SAMDYN_NOTEBOOK_SMOKE") == "1"  # tests: small grids; a person: full size
GRID = 16 if SMOKE else 64  # starts per axis in the batched run
plt.rcParams["figure.figsize"] = (13, 3.8)
print(f"float64: {jax.config.jax_enable_x64}, JAX devices: {jax.devices()}")

# %% [markdown]
# ## What does a landscape know about itself?
#
# A landscape is a sympy expression compiled to JAX. It has exact derivatives, and its critical
# points come with their Hessian eigenvalues. These are exact where sympy can find them.

# %%
f = sd.landscapes.get("beale")
print("f(x, y) =", f.expr)
for cp in f.critical_points():
    print(cp)
saddle = next(cp for cp in f.critical_points() if cp.exact == (0, 1))
saddle.exact_hessian  # eigenvalues ±111/4 = ±27.75

# %% [markdown]
# ## Does SAM stall at Beale's saddle?
#
# This is Kim et al.'s official run: start (1, 2), η = 1.25·10⁻⁵, float64, 87,683 steps (the step at
# which the official code stops GD). Normalised SAM with ρ = 0 is exactly GD (the ascent step is
# zero), so GD and three SAM radii are one batch of four, run by one compiled program.
#
# A long run shows a progress bar, and Ctrl-C stops it within about a second. It then raises
# `sd.engine.Interrupted`, whose `.partial` is the run so far.

# %%
rhos = np.array([0.0, 0.1, 0.5, 1.0])
hp = sd.optim.hparams(lr=1.25e-5, rho=rhos)
try:
    beale = sd.simulate(f, sd.optim.sam(), hp, x0=[1.0, 2.0], steps=87_683, record="trajectory", every=100,
                        observe=("loss", "cosine"), progress=True)
except sd.engine.Interrupted as stop:  # Ctrl-C: keep what was computed
    beale = stop.partial
labels = ["GD" if r == 0 else f"SAM ρ={r:g}" for r in rhos]
for label, end in zip(labels, beale.final):
    print(f"{label:>10}: ends at ({end[0]:+.4f}, {end[1]:+.4f}), distance to the saddle {np.linalg.norm(end - (0, 1)):.1e}")

# %%
fig, (ax_map, ax_loss, ax_cos) = plt.subplots(1, 3, width_ratios=(1.3, 1, 1))
sd.plotting.contour(ax_map, f, domain=((-0.5, 3.5), (-0.5, 2.5)))
fig.colorbar(ax_map.collections[0], ax=ax_map, label="log₁₀(f − min f + 10⁻³)")
sd.plotting.trajectories(ax_map, beale.trajectory, labels, start=(1.0, 2.0))
for i, label in enumerate(labels):
    ax_loss.plot(beale.times, beale.observables["loss"][i], label=label)
    ax_cos.plot(beale.times, beale.observables["cosine"][i], label=label, lw=0.8)
ax_loss.axhline(saddle.value, color="k", ls=":", lw=1, label="f(0, 1)")
ax_loss.set(xlabel="step t", ylabel="loss f(w_t)", yscale="log")
ax_cos.set(xlabel="step t", ylabel="cos∠(∇f(w), ∇f(w + ε))")
ax_loss.legend()
ax_cos.legend()
fig.tight_layout()
plt.show()

# %% [markdown]
# GD and SAM with ρ = 0.1 head for the minimum (3, ½), while SAM with ρ ≥ 0.5 stalls at the saddle.
# There its two gradients point in opposite directions (the cosine swings to −1). SAM oscillates
# around the saddle instead of leaving it.
#
# ## And USAM?
#
# Unnormalised SAM ascends by ρ∇f. Theory (notebook 02) says Beale's saddle becomes an attractor of
# USAM once ρ > ρ* = 4/111 ≈ 0.036. We start next to the saddle, at (0.1, 1.1), with radii on both
# sides of ρ*.

# %%
usam_rhos = np.array([0.02, 0.03, 0.04, 0.05])
usam = sd.simulate(f, sd.optim.usam(), sd.optim.hparams(lr=1.25e-5, rho=usam_rhos), x0=[0.1, 1.1], steps=87_683,
                   record="trajectory", every=100, observe=("loss",))
fig, (ax_map, ax_dist) = plt.subplots(1, 2)
sd.plotting.contour(ax_map, f, domain=((-0.2, 2.5), (-0.2, 1.4)))
fig.colorbar(ax_map.collections[0], ax=ax_map, label="log₁₀(f − min f + 10⁻³)")
usam_labels = [f"USAM ρ={r:g}" for r in usam_rhos]
sd.plotting.trajectories(ax_map, usam.trajectory, usam_labels, start=(0.1, 1.1))
for i, label in enumerate(usam_labels):
    ax_dist.semilogy(usam.times, np.linalg.norm(usam.trajectory[i] - (0, 1), axis=-1), label=label)
ax_dist.set(xlabel="step t", ylabel="distance to the saddle (0, 1)")
ax_dist.legend()
fig.tight_layout()
plt.show()

# %% [markdown]
# Below ρ*, USAM leaves the saddle. Above it, USAM converges to the saddle, as the theory says.
#
# ## A grid of starts × a grid of ρ, in one call
#
# Hyperparameter leaves broadcast to a grid. `simulate` runs every start under every setting, and
# results come back with the batch axes first. Where does SAM end from each start, for each ρ?

# %%
xs, ys = np.linspace(-1.0, 4.0, GRID), np.linspace(-1.0, 2.5, GRID)
starts = np.stack(np.meshgrid(xs, ys, indexing="ij"), axis=-1)  # (GRID, GRID, 2)
grid_rhos = np.array([0.0, 0.1, 0.5, 1.0])
grid = sd.simulate(f, sd.optim.sam(), sd.optim.hparams(lr=4e-4, rho=grid_rhos), starts, 3000)
print("final:", grid.final.shape, "= (ρ, x start, y start, coordinate);", grid.diverged.sum(), "runs diverged")
distance = np.where(grid.diverged, np.nan, np.linalg.norm(grid.final - (0.0, 1.0), axis=-1))
fig, axes = plt.subplots(1, len(grid_rhos), sharey=True)
for ax, r, dist in zip(axes, grid_rhos, distance):
    image = ax.imshow(np.log10(dist).T, origin="lower", extent=(xs[0], xs[-1], ys[0], ys[-1]), cmap="magma",
                      vmin=-4, vmax=1, interpolation="nearest", aspect="auto")
    ax.set(title=f"ρ={r:g}: {np.mean(dist < 1e-2):.0%} trapped", xlabel="start x")
axes[0].set_ylabel("start y")
fig.colorbar(image, ax=axes, label="log₁₀ ‖w_T − (0, 1)‖ (white: diverged)")
plt.show()

# %% [markdown]
# Dark means the run ended at the saddle. As ρ grows, the trapped region grows, and some starts with
# large ρ diverge.
#
# ## New values, same program
#
# η, ρ and γ are traced arrays, so new values reuse the compiled program. JAX's monitoring hook counts
# the XLA compilations of a second grid with other values (same shapes):

# %%
compilations = []


def on_event(event, duration, **kwargs):
    if event == "/jax/core/compile/backend_compile_duration":
        compilations.append(duration)


jax.monitoring.register_event_duration_secs_listener(on_event)
try:
    again = sd.simulate(f, sd.optim.sam(), sd.optim.hparams(lr=3e-4, rho=np.array([0.05, 0.2, 0.3, 0.7])),
                        starts + 0.01, 3000)
finally:
    jax.monitoring.unregister_event_duration_listener(on_event)
print(f"XLA compilations for the second grid: {len(compilations)}")

# %% [markdown]
# ## Your own function
#
# `from_expr` parses a string with a whitelist (it is never evaluated). Its critical points are found
# the same way as for the registry's landscapes.

# %%
g = sd.landscapes.from_expr("(x**2 - 1)**2 + y**2 - x*y/2", ["x", "y"], domain=[(-2, 2), (-2, 2)])
for cp in g.critical_points():
    print(cp)
fig, ax = plt.subplots(figsize=(5, 3.8))
sd.plotting.contour(ax, g)
fig.colorbar(ax.collections[0], ax=ax, label="log₁₀(g − min g + 10⁻³)")
ax.set_title("★ minima, × saddles")
plt.show()

# %% [markdown]
# ## Import samdyn first
#
# samdyn sets two JAX options when it is imported: float64, and one CPU device per core. JAX accepts
# the device count only before its first computation. If a notebook has already run JAX code, samdyn
# still works: it turns float64 on and warns once, saying what it could not set and how to get it. It
# never changes precision silently. This is what such a kernel prints (run here in a fresh Python):

# %%
late = subprocess.run([sys.executable, "-c", "import jax.numpy as jnp; jnp.ones(2).sum(); import samdyn"],
                      capture_output=True, text=True, env={**os.environ, "PYTHONWARNINGS": "default"})
print(late.stderr.strip())
