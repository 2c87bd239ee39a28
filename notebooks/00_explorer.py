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
# # 00 · Explorer: move a slider, watch SAM move
#
# Pick a landscape, an optimizer (GD, SAM, USAM), a learning rate η, a radius ρ, momentum γ, gradient
# noise and a start point. The trajectory is redrawn on the contour map, next to the loss and the cosine
# between SAM's two gradients.
#
# Does a new slider value recompile the program? It should not: η, ρ, γ and the start point are traced
# values (`sd.optim.hparams` is a pytree of arrays), so one compiled program serves every value. The
# notebook counts XLA compilations to show this. Without `ipywidgets` (the `samdyn[notebooks]` extra)
# you get a static figure instead.

# %%
import io
import os

import jax
import matplotlib.pyplot as plt
import numpy as np

import samdyn as sd  # import samdyn before any JAX computation: float64 and one CPU device per core

SMOKE = os.environ.get("SAMDYN_NOTEBOOK_SMOKE") == "1"  # tests: fewer slider moves; a person: a few more
plt.rcParams["figure.figsize"] = (13, 3.6)

try:
    import ipywidgets as widgets
    from IPython.display import display
except ImportError:  # no widgets: one static figure
    widgets = None

# %% [markdown]
# ## Counting compilations
#
# JAX reports every XLA compilation to its monitoring listeners. We count them from here on.

# %%
COMPILE_EVENT = "/jax/core/compile/backend_compile_duration"
compiles = {"count": 0}


def count_compiles(event, duration, **kwargs):
    if event == COMPILE_EVENT:
        compiles["count"] += 1


jax.monitoring.register_event_duration_secs_listener(count_compiles)

# %% [markdown]
# ## What a redraw runs
#
# One `sd.simulate` call. Without noise it runs one particle; with Gaussian noise it runs 8 noisy
# copies, and each copy gets its own draws.
#
# A noise model is a static part of the program, like the landscape. Each noise level is one object
# (`NOISE[std]`): the first time you pick a level it compiles once, and after that it is reused.
#
# The presets start Beale at (1, 2), with a step 32 times the official one and 3000 steps (about the
# same time η·t as Kim et al.'s 87,683 steps). There GD reaches the valley of the minimum (3, ½),
# SAM with ρ = 0.5 stalls at the saddle (0, 1), and with γ = 0.9 it gets out again.

# %%
PRESETS = {  # landscape: (start, learning rate)
    "beale": ((1.0, 2.0), 4e-4),
    "himmelblau": ((0.0, 0.0), 1e-3),
    "rosenbrock": ((-1.5, 2.0), 1e-3),
    "saddle": ((-3.0, -0.01), 1e-2),  # Kim et al.'s x² − y² run
    "six_hump_camel": ((0.5, 1.0), 1e-2),
}
OPTIMIZERS = {"gd": sd.optim.gd(), "sam": sd.optim.sam(), "usam": sd.optim.usam()}
STDS = (0.1, 0.3, 1.0, 3.0, 10.0)
NOISE = {std: sd.noise.gaussian(std=std) for std in STDS}
STEPS, EVERY, NOISY_PATHS = 3000, 10, 8


def simulate(s):
    """One run for the settings dict ``s`` (landscape, optimizer, lr, rho, momentum, noise, std, x, y)."""
    f = sd.landscapes.get(s["landscape"])
    noise = None if s["noise"] == "none" else NOISE[s["std"]]
    x0 = np.tile([s["x"], s["y"]], (1 if noise is None else NOISY_PATHS, 1))
    hp = sd.optim.hparams(lr=s["lr"], rho=s["rho"], momentum=s["momentum"])
    return sd.simulate(f, OPTIMIZERS[s["optimizer"]], hp, x0, STEPS, noise=noise, record="trajectory",
                       every=EVERY, observe=("loss", "cosine"), progress=False)


def draw(s):
    """Run and draw: the trajectories on the contour map, the loss and the cosine between SAM's gradients."""
    f = sd.landscapes.get(s["landscape"])
    run = simulate(s)
    fig, (ax_map, ax_loss, ax_cos) = plt.subplots(1, 3, width_ratios=(1.3, 1, 1))
    sd.plotting.contour(ax_map, f, resolution=120)
    fig.colorbar(ax_map.collections[0], ax=ax_map, label="log₁₀(f − min f + 10⁻³)")
    n = len(run.final)
    labels = [s["optimizer"].upper()] + ["_"] * (n - 1)  # one legend entry for the noisy copies
    sd.plotting.trajectories(ax_map, run.trajectory, labels, start=(s["x"], s["y"]), colors=["crimson"] * n)
    for i in range(n):
        ax_loss.semilogy(run.times, run.observables["loss"][i], color="C0", alpha=0.6,
                         label="f(w_t)" if i == 0 else None)
        ax_cos.plot(run.times, run.observables["cosine"][i], color="C1", alpha=0.6,
                    label="cos∠(∇f(w), ∇f(w + ε))" if i == 0 else None)
    ax_loss.set(xlabel="step t", ylabel="loss")
    ax_cos.set(xlabel="step t", ylabel="cosine", ylim=(-1.05, 1.05))
    ax_loss.legend(loc="upper right")
    ax_cos.legend(loc="lower left")
    noise = "no noise" if s["noise"] == "none" else f"noise std {s['std']:g}"
    diverged = f", {int(run.diverged.sum())} diverged" if run.diverged.any() else ""
    fig.suptitle(f"{s['landscape']}: {s['optimizer']} η={s['lr']:.3g} ρ={s['rho']:.3g} γ={s['momentum']:.2f}, "
                 f"{noise}{diverged} · XLA compilations so far: {compiles['count']}")
    fig.tight_layout()
    return fig


# %% [markdown]
# ## The explorer
#
# Move the sliders. When you pick another landscape, the start point and η jump to its preset. The
# title shows how many XLA compilations the kernel has done so far.

# %%
DEFAULTS = dict(landscape="beale", optimizer="sam", lr=4e-4, rho=0.5, momentum=0.0, noise="none", std=1.0,
                x=1.0, y=2.0)

if widgets is not None:
    controls = dict(
        landscape=widgets.Dropdown(options=list(PRESETS), description="landscape"),
        optimizer=widgets.Dropdown(options=list(OPTIMIZERS), description="optimizer"),
        lr=widgets.FloatLogSlider(base=10, min=-5, max=-1, step=0.05, description="η", readout_format=".2e"),
        rho=widgets.FloatLogSlider(base=10, min=-3, max=0.5, step=0.05, description="ρ", readout_format=".3f"),
        momentum=widgets.FloatSlider(min=0.0, max=0.99, step=0.01, description="γ"),
        noise=widgets.Dropdown(options=["none", "gaussian"], description="noise"),
        std=widgets.SelectionSlider(options=STDS, description="noise std"),
        x=widgets.FloatSlider(min=-4.5, max=4.5, step=0.05, description="start x"),
        y=widgets.FloatSlider(min=-4.5, max=4.5, step=0.05, description="start y"),
    )
    for name, control in controls.items():
        control.value = DEFAULTS[name]
    figure_area = widgets.Image(format="png")  # each redraw replaces its PNG: no flicker
    quiet = {"on": False}  # set while several controls change together

    def redraw(change=None):
        if quiet["on"]:
            return
        fig = draw({name: control.value for name, control in controls.items()})
        png = io.BytesIO()
        fig.savefig(png, format="png")
        plt.close(fig)
        figure_area.value = png.getvalue()

    def new_landscape(change):
        f = sd.landscapes.get(change["new"])
        (x, y), lr = PRESETS[change["new"]]
        quiet["on"] = True
        for axis, value, (low, high) in ((controls["x"], x, f.domain[0]), (controls["y"], y, f.domain[1])):
            axis.min, axis.max = min(low, axis.min), max(high, axis.max)  # widen first, so the value fits
            axis.value = value
            axis.min, axis.max = low, high
        controls["lr"].value = lr
        quiet["on"] = False
        redraw()

    for name, control in controls.items():
        control.observe(new_landscape if name == "landscape" else redraw, names="value")
    rows = [["landscape", "optimizer", "noise"], ["lr", "rho", "momentum"], ["x", "y", "std"]]
    display(widgets.VBox([widgets.HBox([controls[n] for n in row]) for row in rows] + [figure_area]))
    redraw()
else:
    draw(DEFAULTS)
    plt.show()

# %% [markdown]
# ## Does moving a slider recompile?
#
# The next cell sets slider values from code, as a user would by hand, and counts the compilations.
# Without widgets it redraws with the same values instead.
#
# There is one documented exception. At γ = 0 samdyn runs a program specialised to skip the momentum
# buffer, so the first time γ leaves 0 one more program is compiled (once per landscape, optimizer and
# noise level). We let that happen first, then move every kind of slider, γ back to 0 included.

# %%
settings = dict(DEFAULTS)


def move(**changes):
    """Set controls as a user would (each change redraws); without widgets, redraw with the new values."""
    if widgets is not None:
        for name, value in changes.items():
            controls[name].value = value
    else:
        if "landscape" in changes:  # the preset start and η, as the dropdown does
            (settings["x"], settings["y"]), settings["lr"] = PRESETS[changes["landscape"]]
        settings.update(changes)
        plt.close(draw(settings))


move(momentum=0.9)  # γ leaves 0: the general program is compiled once
before = compiles["count"]
moves = [dict(lr=2e-4), dict(rho=0.1), dict(momentum=0.5), dict(x=0.5), dict(y=1.5), dict(momentum=0.0)]
if not SMOKE:  # a person watching gets a few more
    moves += [dict(rho=1.0), dict(lr=6e-4), dict(x=1.0, y=2.0)]
for change in moves:
    move(**change)
new = compiles["count"] - before
print(f"{len(moves)} slider moves after the first γ > 0: {new} new compilations (total {compiles['count']})")
assert new == 0, f"moving a slider recompiled {new} time(s)"

# %% [markdown]
# Zero new compilations: a new η, ρ, γ or start point reuses the compiled program. A new landscape,
# optimizer or noise level is a new program, compiled once. Switching to the saddle x² − y² and back:

# %%
before = compiles["count"]
move(landscape="saddle")
to_saddle = compiles["count"] - before
move(landscape="beale")
back = compiles["count"] - before - to_saddle
print(f"to x² − y²: {to_saddle} new compilations (its init and step programs); back to Beale: {back}")
assert to_saddle > 0 and back == 0
