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
# # 03 · Diffusion and escape: how wide does noise spread SAM?
#
# Near a saddle, gradient noise pushes particles along the escape direction. Kim et al. (2023,
# Theorems 2–3) say SAM's spread there is narrower than SGD's, that it scales as 1/B, and that
# momentum widens it. Here we run many noisy particles with statistics computed inside the scan, and
# compare them with the exact moments of the linearised map and with the paper's continuous-time
# forms. Then we ask whether momentum helps SAM escape.

# %%
import os

import matplotlib.pyplot as plt
import numpy as np

import samdyn as sd
from samdyn import diffusion as df

SMOKE = os.environ.get("SAMDYN_NOTEBOOK_SMOKE") == "1"  # tests: few particles; a person: full size
PARTICLES = 2_000 if SMOKE else 40_000  # per setting, for the moment checks
ESCAPE_PARTICLES, ESCAPE_STEPS = (128, 600) if SMOKE else (2048, 3000)
BATCHES = (4.0,) if SMOKE else (4.0, 32.0)  # one compiled program per batch size
plt.rcParams["figure.figsize"] = (12, 4)

# %% [markdown]
# ## Which noise models are there?
#
# A noise model turns the exact gradient into one stochastic gradient per step. It can be additive
# Gaussian noise, Hessian-shaped noise |H|/B (Kim et al.'s model), or a real minibatch of a finite sum.
# SAM's two gradients share each step's draw, as they do in practice. Take the saddle of
# f = x² − y²/2 (H = diag(2, −1)) and look at the covariance C of one stochastic gradient under each
# model:

# %%
q = sd.landscapes.get("quadratic", eigenvalues=(2.0, -1.0))
H = np.diag([2.0, -1.0])
models = {
    "gaussian(std=0.5)": sd.noise.gaussian(std=0.5).covariance(2),
    "hessian(B=8) at 0": sd.noise.hessian(8).covariance_at(q, [0.0, 0.0]),
    "minibatch(B=4 of 32)": sd.noise.minibatch(4, sd.noise.centered_shifts(32, 2, std=1.0)).cov(),
}
for name, C in models.items():
    print(f"{name:>22}: C = {np.round(C, 4).tolist()}")

# %% [markdown]
# ## How wide does noise spread SAM along the escape direction?
#
# Every particle starts at the saddle. `particle_stats` accumulates the mean, the covariance and the
# mean squared displacement inside the scan, so nothing of size particles × steps is stored. We take
# USAM, for which the linearised map is exact on a quadratic with additive noise. Since ρ = 0 is SGD,
# SGD and two radii run in one call. The noise uses `sampler="fast"`, a counter hash that is about 4×
# faster than Threefry on CPU and is tested for moments and normality.
#
# `linear_moments` gives the exact mean and covariance of every step. Its matrices are Jacobians of
# `optim`'s own step. Does the Monte Carlo variance agree with it within its standard error,
# σ²·√(2/(P − 1))?

# %%
noise = sd.noise.gaussian(std=0.5, sampler="fast")
C = noise.covariance(2)
steps = 30
rhos = np.array([0.0, 0.2, 0.5])
cloud = sd.simulate(q, sd.optim.usam(), sd.optim.hparams(lr=0.05, rho=rhos), [0.0, 0.0], steps, noise=noise,
                    particles=PARTICLES, stats=sd.particle_stats(reference=[0.0, 0.0]), key=1)
times = cloud.stats.times
var_mc = cloud.stats.cov[:, :, 1, 1]  # (ρ, T): variance along y, the escape direction
fig, ax = plt.subplots(figsize=(6.5, 4))
worst = 0.0
for i, rho in enumerate(rhos):
    exact = df.linear_moments(sd.optim.usam(), H, C, sd.optim.hparams(lr=0.05, rho=rho), steps).cov[times, 1, 1]
    se = exact * np.sqrt(2 / (PARTICLES - 1))
    worst = max(worst, np.max(np.abs(var_mc[i] - exact) / se))
    line, = ax.plot(times, exact, lw=1, label=f"{'SGD' if rho == 0 else f'USAM ρ={rho:g}'}: exact")
    ax.errorbar(times[::3], var_mc[i, ::3], yerr=2 * se[::3], fmt="o", ms=3, color=line.get_color(),
                label=f"{'SGD' if rho == 0 else f'USAM ρ={rho:g}'}: {PARTICLES} particles ± 2 s.e.")
ax.set(xlabel="step t", ylabel="Var y", title="spread along the escape direction")
ax.legend(fontsize=8)
plt.show()
print(f"largest |Monte Carlo − exact| over all steps and radii: {worst:.1f} standard errors")

# %% [markdown]
# The larger ρ, the narrower the spread along the escape direction, and the Monte Carlo agrees with
# the exact moments. For normalised SAM, `linear_moments` freezes ‖∇f‖ at √tr C. That model has the
# right ordering but is off by a few percent to a few tens of percent (see `samdyn.diffusion`).
#
# ## Kim et al.'s closed forms
#
# In continuous time, t = η·steps, the map along a direction with curvature λ is an Ornstein–Uhlenbeck
# process. Its variance `kim_variance` narrows with ρ, shrinks as 1/B, and widens with momentum
# through 1/(1 − γ) (here γ = 0.5 brings SAM ρ = 0.5 back to SGD's curve). With Hessian noise |λ|/B, Kim et al. print SGD's variance minus SAM's as 2ηt²|λ|³ρ/B. How
# does that compare with the model's own gap and its t² term?

# %%
t = np.geomspace(0.01, 2.0, 60)
lam, B, lr, rho = -1.0, 8, 0.01, 0.05
fig, (ax_var, ax_gap) = plt.subplots(1, 2)
for batch, style in ((8, "-"), (32, ":")):
    for r, gamma, color, width in ((0.0, 0.0, "C0", 4), (0.5, 0.0, "C1", 1.5), (0.5, 0.5, "C2", 1.5)):
        name = "SGD" if r == 0 else f"SAM ρ={r:g}" + (f", γ={gamma:g}" if gamma else "")
        ax_var.plot(t, df.kim_variance(lam, 1 / batch, t, lr=lr, rho=r, momentum=gamma), style, color=color,
                    lw=width, alpha=0.5 if r == 0 else 1, label=f"{name}, B={batch}")
ax_var.set(xlabel="time t = η·steps", ylabel="σ²(t) along λ = −1", yscale="log", title="the OU model")
ax_gap.loglog(t, df.kim_msd_gap(lam, B, t, lr=lr, rho=rho), label="model, only the descent gradient noisy")
ax_gap.loglog(t, df.kim_msd_gap(lam, B, t, lr=lr, rho=rho, exact=False), "--", label="its t² term (η/B)ρ|λ|³t²")
ax_gap.loglog(t, 2 * lr * t**2 * abs(lam) ** 3 * rho / B, ":", label="printed 2ηt²|λ|³ρ/B")
ax_gap.loglog(t, df.kim_msd_gap(lam, B, t, lr=lr, rho=rho, sam_noise="same"), label="model, shared draw (practice)")
ax_gap.set(xlabel="time t = η·steps", ylabel="σ²_SGD(t) − σ²_SAM(t)", title=f"the gap, B = {B}")
ax_var.legend(fontsize=7)
ax_gap.legend(fontsize=7)
plt.show()

# %% [markdown]
# The printed gap is twice the model's t² term. With the shared draw of practice, the gap is first
# order in t, and much larger at small t. `df.compare_with_paper()` tabulates these next to the exact
# discrete map.
#
# ## Does momentum help SAM escape? Does the batch size matter?
#
# Take Beale's saddle (0, 1), with Hessian-shaped noise |H(w)|/B. Every particle starts at the saddle,
# and it has escaped once it is 0.1 away. `particle_stats(radius=…)` records each particle's first exit
# step inside the scan. We use one call per batch size over a ρ × γ grid. `df.escape_times` wraps
# the same loop.

# %%
beale = sd.landscapes.get("beale")
esc_rhos, esc_momenta = np.array([0.0, 0.2]), np.array([0.0, 0.9])
grid = sd.optim.hparams(lr=1e-3, rho=esc_rhos[:, None], momentum=esc_momenta[None, :])
fig, axes = plt.subplots(1, len(BATCHES), sharey=True, squeeze=False)
for ax, batch in zip(axes[0], BATCHES):
    run = sd.simulate(beale, sd.optim.sam(), grid, [0.0, 1.0], ESCAPE_STEPS, noise=sd.noise.hessian(batch, sampler="fast"),
                      particles=ESCAPE_PARTICLES, every=ESCAPE_STEPS // 100, key=0,
                      stats=sd.particle_stats(reference=[0.0, 1.0], radius=0.1))
    inside = 1.0 - run.stats.fraction_exited  # (ρ, γ, T)
    for i, rho in enumerate(esc_rhos):
        for j, gamma in enumerate(esc_momenta):
            ax.plot(run.stats.times, inside[i, j], color=f"C{i}", ls="-" if gamma == 0 else "--",
                    label=f"{'SGD' if rho == 0 else f'SAM ρ={rho:g}'}, γ={gamma:g}: {1 - inside[i, j, -1]:.0%} escaped")
    ax.set(xlabel="step t", title=f"Beale's saddle, B = {batch:g}")
    ax.legend(fontsize=8)
axes[0, 0].set_ylabel("fraction still within 0.1 of the saddle")
plt.show()

# %% [markdown]
# SGD escapes. SAM with ρ = 0.2 and no momentum stays: its cycle around the saddle holds even
# against the noise. With γ = 0.9, SAM escapes, faster for small batches (more noise) than for large
# ones.
