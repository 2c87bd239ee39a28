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
# # 02 · Stability: is this saddle an attractor of SAM?
#
# `sd.stability` studies the optimizer's own update map T(w, v) = (w', v'), the function that
# `simulate` runs, with w the parameters and v the momentum buffer. It asks where a critical point
# attracts, for which (η, ρ, γ), and what normalised SAM does instead when its map is not
# differentiable.

# %%
import os

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.patches import Patch

import samdyn as sd
from samdyn import stability as st

SMOKE = os.environ.get("SAMDYN_NOTEBOOK_SMOKE") == "1"  # tests: coarse grids; a person: full size
N_GRID = 40 if SMOKE else 200  # phase-diagram resolution per axis
N_BASIN = 31 if SMOKE else 121  # basin-map starts per axis
plt.rcParams["figure.figsize"] = (12, 4)

f = sd.landscapes.get("beale")
saddle = next(cp for cp in f.critical_points() if cp.exact == (0, 1))
usam = sd.optim.usam()
print(saddle)

# %% [markdown]
# ## What is the Jacobian of USAM's map at Beale's saddle?
#
# Kim et al.'s Theorem 1: at a critical point, the w-block of USAM's Jacobian is I − η(H + ρH²).
# `jacobian` differentiates `optim`'s step with `jax.jacfwd`, and `exact_jacobian` builds the same
# matrix in sympy.

# %%
hp = sd.optim.hparams(lr=0.01, rho=0.05)
J = st.jacobian(usam, f, saddle, hp)  # (2d, 2d) over (w, v)
H = np.asarray(saddle.exact_hessian, dtype=float)
print("numeric w-block:\n", J[:2, :2])
print("I − η(H + ρH²) − numeric:", np.abs(np.eye(2) - 0.01 * (H + 0.05 * H @ H) - J[:2, :2]).max())
st.exact_jacobian(f, saddle, usam, momentum=0)[:2, :2]  # in the symbols η, ρ

# %% [markdown]
# ## Is this saddle an attractor of USAM above ρ* = 4/111?
#
# The negative eigenvalue λ = −111/4 of H gives a Jacobian eigenvalue 1 − η(λ + ρλ²). That eigenvalue
# falls below 1 once λ + ρλ² > 0, that is once ρ > ρ* = −1/λ.

# %%
rho_star = st.rho_threshold(f, saddle)
print("ρ* =", rho_star, "≈", float(rho_star))
for rho in (0.03, 0.05):
    c = st.classify(usam, f, saddle, sd.optim.hparams(lr=0.01, rho=rho))
    print(f"ρ = {rho}: {c.kind:9s} multipliers {np.round(c.eigenvalues.real, 4)}")

# %% [markdown]
# ## Phase diagrams, with their closed-form boundaries
#
# `phase_diagram` classifies the saddle over a whole (η, ρ, γ) grid in one vectorised call. The exact
# boundaries come from the Jury conditions: ρ = ρ*, and the edge η(λ + ρλ²) = 2(1 + γ) for λ = 111/4.
# With momentum γ the edge moves right. `attractor_region` gives the same region as sympy
# inequalities, and the last line counts how often the two agree on the grid.

# %%
lrs = np.linspace(1e-4, 0.12, N_GRID)
rhos = np.linspace(0.0, 0.15, N_GRID)
momenta = np.array([0.0, 0.9])
pd = st.phase_diagram(usam, f, saddle, lrs, rhos, momenta)
region = st.attractor_region(f, saddle, "usam")
L, R, G = np.meshgrid(lrs, rhos, momenta, indexing="ij")
print("grid points where the map and the exact region agree:", f"{np.mean((pd.kind == 0) == region.contains(L, R, G)):.2%}")

lam = 111 / 4
fig, axes = plt.subplots(1, 2, sharey=True)
for k, (ax, gamma) in enumerate(zip(axes, momenta)):
    sd.plotting.phase_diagram(ax, pd, momentum_index=k)
    r = rhos[rhos > 0]
    ax.plot(2 * (1 + gamma) / (lam + r * lam**2), r, "k--", lw=1.2, label="η(λ + ρλ²) = 2(1 + γ)")
    ax.axhline(float(rho_star), color="w", lw=1.2, ls=":", label=f"ρ* = {rho_star}")
    ax.set(xlim=(lrs[0], lrs[-1]), ylim=(rhos[0], rhos[-1]), title=f"USAM at Beale's saddle, γ = {gamma:g}")
    ax.legend(loc="upper right")
bar = fig.colorbar(axes[0].collections[0], ax=axes, ticks=range(len(st.KINDS)))
bar.ax.set_yticklabels(st.KINDS)
plt.show()

# %% [markdown]
# ## What does normalised SAM do at a saddle?
#
# SAM's ascent step ρ∇f/‖∇f‖ has no derivative where ∇f = 0, so `classify` says so instead of returning
# a Jacobian. Near a critical point, SAM bounces between two points. On x² − y² the bouncing is a
# 2-cycle ±a·e_x with a = ηλρ/(2 − ηλ) (Bartlett, Long & Bousquet). The cycle is stable iff ηλ < 1, for
# every ρ. Does SAM on Kim et al.'s x² − y² run (from (−3, −0.01), η = 0.01, 500 steps) find it?

# %%
s = sd.landscapes.get("saddle")
sam_hp = sd.optim.hparams(lr=0.01, rho=0.5)
print("classify:", st.classify(sd.optim.sam(), s, (0.0, 0.0), sam_hp).kind)
cycle = st.sam_quadratic_cycle((2.0, -2.0), 0, lr=0.01, rho=0.5)
print(f"closed form: a = {cycle.amplitude:.6g}, {cycle.kind}, multipliers of T² {cycle.multipliers}")
run = sd.simulate(s, sd.optim.sam(), sam_hp, [-3.0, -0.01], 500, record="trajectory")
print("last three points:", run.trajectory[-3:].round(6).tolist())

fig, (ax_x, ax_y) = plt.subplots(1, 2)
ax_x.semilogy(run.times, np.abs(run.trajectory[:, 0]), label="|x_t|")
ax_x.axhline(cycle.amplitude, color="k", ls="--", lw=1, label="a = ηλρ/(2 − ηλ)")
ax_x.set(xlabel="step t", ylabel="|x|", title="SAM ρ = 0.5 on x² − y², from (−3, −0.01)")
ax_y.semilogy(run.times, np.abs(run.trajectory[:, 1]), label="|y_t|")
ax_y.set(xlabel="step t", ylabel="|y| (the escape direction)")
ax_x.legend()
ax_y.legend()
plt.show()

# %% [markdown]
# |x| settles at a, alternating in sign: the cycle ±a·e_x. |y|, the direction along which GD would
# escape, shrinks geometrically. On landscapes without a closed form, `st.periodic_orbits` finds such
# cycles, and their multipliers, by Newton's method on Tᵖ(z) = z.

# %% [markdown]
# ## Edges of stability
#
# What is the sharpest minimum, of curvature λ, that a method can settle in? The answer comes from
# the map itself: bisect λ on the spectral radius of `jacobian` for ½λx². The closed forms are
# ηλ(1 + ρλ) = 2(1 + γ) for USAM (Dai, Ahn & Sra; ρ = 0 is GD's 2/η) and Long & Bartlett's SAM-edge
# (USAM's edge with ρ/‖∇f‖).

# %%
etas = np.geomspace(1e-3, 1.0, 25)
fig, ax = plt.subplots(figsize=(6.5, 4))
for rho, gamma, label in [(0.0, 0.0, "GD"), (0.05, 0.0, "USAM ρ=0.05"), (0.05, 0.9, "USAM ρ=0.05, γ=0.9")]:
    line, = ax.loglog(etas, st.usam_edge(etas, rho, gamma), lw=1, label=label + " (closed form)")
    ax.loglog(etas, st.largest_stable_curvature(usam, etas, rho, gamma), "o", ms=3, color=line.get_color())
ax.loglog(etas, st.sam_edge(etas, 0.05, 0.1), lw=1, label="SAM-edge ρ=0.05, ‖∇f‖=0.1 (closed form)")
ax.loglog(etas, st.largest_stable_curvature(sd.optim.sam(), etas, 0.05, grad_norm=0.1), "o", ms=3, color="C3")
ax.set(xlabel="learning rate η", ylabel="largest stable curvature λ", title="lines: closed forms; dots: from the map")
ax.legend(fontsize=8)
plt.show()

# %% [markdown]
# ## Is SAM's stall at Beale's saddle a cycle?
#
# At Beale's saddle, with the official η = 1.25·10⁻⁵ and ρ = 0.5, SAM does not settle on a 2-cycle.
# The finite-time Lyapunov exponent along its orbit is positive, so nearby orbits separate while the
# orbit stays within about 10⁻⁴ of the saddle. This is bounded chaos, and it is also why two
# implementations agree there only until rounding is amplified.

# %%
steps = 5_000 if SMOKE else 50_000
exponents, end = st.lyapunov_exponents(sd.optim.sam(), f, [1e-3, 1.001], sd.optim.hparams(lr=1.25e-5, rho=0.5), steps)
print(f"Lyapunov exponents over {steps} steps: {exponents.round(3)} per step; "
      f"end point {end[:2].round(5)}, {np.linalg.norm(end[:2] - (0, 1)):.1e} from the saddle")

# %% [markdown]
# ## Basins: where does each start end?
#
# `basins` runs `simulate` from a grid of starts. It then follows each end state for a few more
# steps, to find its period, and assigns the centre of the orbit to a critical point. The landscape
# is x² − y² + y⁴/4: a saddle at 0 between minima at y = ±√2. SAM with ρ = 0 is GD, in the same
# compiled program.

# %%
h = sd.landscapes.from_expr("x**2 - y**2 + y**4/4", ["x", "y"], domain=[(-2, 2), (-2, 2)])
xs, ys = np.linspace(-2, 2, N_BASIN), np.linspace(-0.6, 0.6, N_BASIN)
starts = np.stack(np.meshgrid(xs, ys, indexing="ij"), axis=-1)
fig, axes = plt.subplots(1, 2, sharey=True)
for ax, rho in zip(axes, (0.0, 0.5)):
    b = st.basins(h, sd.optim.sam(), sd.optim.hparams(lr=0.01, rho=rho), starts, 500 if SMOKE else 2000, tol=0.05)
    sd.plotting.basins(ax, b, extent=(xs[0], xs[-1], ys[0], ys[-1]))
    at_saddle = [i for i, c in enumerate(b.critical_points) if c.kind == "saddle"]
    ax.set(ylim=(ys[0], ys[-1]), title=f"{'GD' if rho == 0 else f'SAM ρ = {rho}'}: "
           f"{np.isin(b.labels, at_saddle).mean():.0%} of starts stall at the saddle")
    image = ax.images[0]
    found = np.unique(b.labels)
    names = {st.CYCLE: "cycle", st.UNSETTLED: "unsettled", st.DIVERGED: "diverged"}
    names.update({i: f"{c.kind} ({c.point[0]:.2g}, {c.point[1]:.2g})" for i, c in enumerate(b.critical_points)})
    ax.legend(handles=[Patch(color=image.cmap(image.norm(code)), label=names[code]) for code in found],
              loc="upper right", fontsize=8)
plt.show()

# %% [markdown]
# GD leaves the saddle for one of the two minima, except from the line y = 0, which is the saddle's
# stable manifold. SAM's 2-cycle around the saddle catches a band of starts around that line.
