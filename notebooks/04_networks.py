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
# # 04 · Networks: the same step on a deep linear net and on MNIST-1D
#
# `nets.train` calls `optim`'s `step`, the very function `simulate` runs on the analytic landscapes,
# with the minibatch gradient as its oracle. SAM's two gradients share the batch. A grid of
# hyperparameters × seeds trains in one compiled, vmapped program. Do the saddle results of notebooks
# 02 and 03 carry over to networks?

# %%
import os

import matplotlib.pyplot as plt
import numpy as np

import samdyn as sd
from samdyn import nets

SMOKE = os.environ.get("SAMDYN_NOTEBOOK_SMOKE") == "1"  # tests: few steps and seeds; a person: full size
LINEAR = dict(steps=300, seeds=2, eval_every=10, hessian_every=50) if SMOKE else \
    dict(steps=1500, seeds=8, eval_every=10, hessian_every=100)
MNIST = dict(batches=(32,), epochs=1, seeds=1, hessian_samples=200) if SMOKE else \
    dict(batches=(16, 256), epochs=20, seeds=2, hessian_samples=1000)
plt.rcParams["figure.figsize"] = (12, 4)
sam = sd.optim.sam()  # ρ = 0 is exactly SGD: one optimizer, one compiled program for the whole grid

# %% [markdown]
# ## A saddle you can compute: the deep linear net
#
# The net f(x) = x W₁ W₂ is trained on a linear teacher with the loss ½‖f(x) − y‖². Its origin is a
# saddle, and at depth 2 the Hessian eigenvalues there are ±σᵢ(E[x yᵀ]) (and zeros). Does the dense
# Hessian agree?

# %%
data = nets.datasets.teacher_student(n_train=256, n_test=256, in_dim=8, out_dim=4, teacher="linear",
                                     noise_std=0.1, seed=0)
model = nets.deep_linear(8, 8, 4, depth=2, init_scale=1e-3)
origin = [np.zeros((8, 8)), np.zeros((8, 4))]
spectrum = sd.hessian.dense_eigvalsh(lambda p: nets.loss_fn(model, p, data.x_train, data.y_train), origin)
sigma = np.linalg.svd(data.x_train.T @ data.y_train / len(data.x_train), compute_uv=False)
print("σ(E[x yᵀ])               :", np.round(sigma, 4))
print("distinct Hessian eigenvalues:", np.unique(np.round(np.asarray(spectrum), 4)))

# %% [markdown]
# ## Does SAM keep the net at its saddle? Does momentum help?
#
# Every run starts at 10⁻³ from the origin. GD (ρ = 0) escapes, and it escapes faster with momentum.
# Normalised SAM takes a step of length ρ in parameter space. Once ρ is larger than ‖w‖, the ascent
# step jumps across the saddle, as on x² − y². We record ‖w‖ every 10 steps, and the extreme Hessian
# eigenvalues (Lanczos, both ends of the spectrum) every few records.

# %%
hp = sd.optim.hparams(lr=0.01, rho=np.array([0.0, 1e-2])[:, None], momentum=np.array([0.0, 0.9])[None, :])
res = nets.train(model, data, sam, hp, LINEAR["steps"], batch_size=8, seeds=LINEAR["seeds"],
                 eval_every=LINEAR["eval_every"], hessian_every=LINEAR["hessian_every"])
fig, (ax_norm, ax_eig) = plt.subplots(1, 2)
for i, rho in enumerate((0.0, 1e-2)):
    for j, gamma in enumerate((0.0, 0.9)):
        label = f"{'GD' if rho == 0 else f'SAM ρ={rho:g}'}, γ={gamma:g}"
        style = dict(color=f"C{i}", ls="-" if gamma == 0 else "--")
        ax_norm.semilogy(res.times, np.median(res.records["param_norm"][i, j], axis=0), label=label, **style)
        ax_eig.plot(res.hessian_times, np.median(res.eig_low[i, j, :, :, 0], axis=0), marker="v", label=label, **style)
ax_norm.set(xlabel="step t", ylabel="median ‖w_t‖ over seeds", title="leaving the origin")
ax_eig.axhline(-sigma[0], color="k", lw=0.8, ls=":", label="−σ₁ (at the origin)")
ax_eig.set(xlabel="step t", ylabel="smallest Hessian eigenvalue", title="negative curvature along the run")
ax_norm.legend(fontsize=8)
ax_eig.legend(fontsize=8)
plt.show()

# %% [markdown]
# Runs that stay at the origin keep the Hessian's most negative eigenvalue near −σ₁. Runs that
# escape lose it: they have left the saddle.
#
# ## MNIST-1D: does SAM gain more from momentum and small batches than SGD?
#
# This is the small-scale analogue of Kim et al.'s ResNet-18 / CIFAR-10 study. An MLP is trained on
# MNIST-1D, which is generated locally by the `mnist1d` package and cached, never downloaded. Every
# batch size sees the same number of epochs. The Hessian's extreme eigenvalues are recorded at both
# ends of the spectrum: is there negative curvature along the way?

# %%
mnist = nets.datasets.mnist1d()
mlp = nets.mlp(40, (100, 100), 10)
rhos, momenta = np.array([0.0, 0.2]), np.array([0.0, 0.9])
grid = sd.optim.hparams(lr=0.02, rho=rhos[:, None], momentum=momenta[None, :])
results = {}
for batch in MNIST["batches"]:
    steps = MNIST["epochs"] * (len(mnist.x_train) // batch)
    every = max(1, steps // 10)
    results[batch] = nets.train(mlp, mnist, sam, grid, steps, batch, seeds=MNIST["seeds"], eval_every=every,
                                hessian_every=2 * every, hessian_samples=MNIST["hessian_samples"])
    print(f"B = {batch}: {steps} steps, test accuracy [ρ][γ] =", results[batch].final("test_acc").mean(-1).round(3).tolist())

# %%
first = results[MNIST["batches"][0]]
fig, (ax_acc, ax_eig, ax_gain) = plt.subplots(1, 3, figsize=(14, 4), layout="constrained")
for i, rho in enumerate(rhos):
    for j, gamma in enumerate(momenta):
        label = f"{'SGD' if rho == 0 else f'SAM ρ={rho:g}'}, γ={gamma:g}"
        style = dict(color=f"C{i}", ls="-" if gamma == 0 else "--")
        ax_acc.plot(first.times, first.records["test_acc"][i, j].mean(0), label=label, **style)
        ax_eig.plot(first.hessian_times, first.eig_high[i, j, :, :, 0].mean(0), marker="^", label=label, **style)
        ax_eig.plot(first.hessian_times, first.eig_low[i, j, :, :, 0].mean(0), marker="v", **style)
ax_acc.set(xlabel="step t", ylabel="test accuracy", title=f"MLP on MNIST-1D, B = {MNIST['batches'][0]}")
ax_eig.set_yscale("symlog", linthresh=0.1)
ax_eig.axhline(0, color="k", lw=0.8)
ax_eig.set(xlabel="step t", ylabel="Hessian eigenvalue", title="▲ largest and ▼ smallest eigenvalue")
for k, batch in enumerate(MNIST["batches"]):
    acc = results[batch].final("test_acc").mean(-1)  # (ρ, γ)
    ax_gain.bar(np.arange(len(momenta)) + 0.35 * k, 100 * (acc[1] - acc[0]), width=0.35, label=f"B = {batch}")
ax_gain.axhline(0, color="k", lw=0.8)
ax_gain.set(xticks=np.arange(len(momenta)) + 0.35 * (len(MNIST["batches"]) - 1) / 2,
            xticklabels=[f"γ = {g:g}" for g in momenta], ylabel="SAM − SGD test accuracy (points)",
            title="SAM's gain over SGD at the end")
for ax in (ax_acc, ax_eig, ax_gain):
    ax.legend(fontsize=7)
plt.show()

# %% [markdown]
# At full size (20 epochs, 2 seeds), SAM with ρ = 0.2 loses to SGD without momentum: about 5 points
# at B = 16. With γ = 0.9 at B = 16 it wins by about 7 points, and at B = 256 it does not win at all. So
# momentum and small batches are what make SAM pay off, as Kim et al. found on CIFAR-10. The smallest
# Hessian eigenvalue stays negative (about −0.1, against a largest of 1 to 10), so training keeps
# passing through negative curvature. `experiments/fig_mnist1d.py` runs the full study over more ρ,
# γ and B.
