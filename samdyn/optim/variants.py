"""The SAM family on one interface: ASAM, m-sharpness SAM, GSAM and XSAM, and the oracles they need.

Every factory returns an :class:`~samdyn.optim.Optimizer` — a pure ``(init, step)`` pair with
traced hyperparameters — and takes the options shared by all of ``samdyn.optim`` (``nesterov``,
``base``, ``lr_schedule``, ``rho_schedule``, ``decay``; see :mod:`samdyn.optim.core`). With
``hp.rho = 0`` each one is its base optimizer.

* :func:`asam` — Kwon et al. 2021: ``e = ρ T² g / (‖T g‖ + eps)`` with ``T = |w| + η_a``
  (``hp.asam_eta``) elementwise on the selected leaves and ``T = 1`` on the others. Kwon et al.'s
  official code selects the leaves named "weight" (biases excluded) and adds 1e-16 to the norm;
  davda54/sam's ``adaptive=True`` uses ``T = |w|`` (η_a = 0) on every leaf and 1e-12.
* :func:`msam` — m-sharpness (Foret et al. 2021; Andriushchenko & Flammarion 2022): the batch is
  cut into micro-batches of ``m`` samples, each gets its own perturbation
  ``e_j = ρ g_j/(‖g_j‖ + eps)``, and the descent gradients ``grad_j(w + e_j)`` are averaged. Its
  oracle has a micro-batch axis (:class:`MicroBatchOracle`; :func:`batch_oracle` builds it).
* :func:`gsam` — Zhuang et al. 2022 ("surrogate gap guided SAM"): with ``g_p = grad(w + e)``,
  ``d = g_p − α g_⊥``, where ``g_⊥ = g − (g·g_p/‖g_p‖²) g_p`` is the part of the gradient at ``w``
  orthogonal to ``g_p`` (α = ``hp.gsam_alpha``; α = 0 is SAM). The official code divides by
  ``(‖g_p‖‖g‖ + eps)(‖g_p‖ + eps)`` instead of ‖g_p‖²: the same up to O(eps/‖g‖); here α = 0 and
  ρ = 0 give SAM and GD exactly. Its ρ schedule tied to the learning rate is
  ``schedules.tied``.
* :func:`xsam` — Chen & Zhou, "Revisiting Sharpness-Aware Minimization: A More Faithful and
  Effective Implementation" (arXiv 2603.10048); see its docstring for exactly what is implemented.
"""

from __future__ import annotations

import functools
from typing import Callable

import jax
import jax.numpy as jnp
import numpy as np

from .. import checks
from .core import (Ctx, Direction, Optimizer, build, cosine, multi_step_perturbation, normalized,
                   perturbation_direction, safe_div, shared, tree_add, tree_norm, tree_scale, tree_vdot)

__all__ = ["asam", "msam", "gsam", "xsam", "LossOracle", "MicroBatchOracle", "batch_oracle"]


# ---- oracles ------------------------------------------------------------------------------------


class LossOracle:
    """A gradient oracle that can also evaluate the loss: ``oracle(p)`` is ``∇loss(p)``, ``oracle.loss(p)`` the loss.

    Every optimizer accepts it as ``grad_fn``; :func:`xsam` with ``search_every`` needs it (the
    search compares loss values). ``nets.train`` passes one.
    """

    def __init__(self, loss: Callable):
        self.loss = loss
        self._grad = jax.grad(loss)

    def __call__(self, params):
        return self._grad(params)


class MicroBatchOracle:
    """The oracle of :func:`msam`: per-micro-batch gradients, each at its own point.

    ``oracle(P)`` takes parameters whose leaves have a leading axis of size ``k`` (one point per
    micro-batch) or 1 (the same point for all) and returns the gradients of the ``k`` micro-batch
    losses, stacked on a leading axis of size ``k``.

    Args:
        loss: ``loss(params, *batch) -> scalar``, the mean loss on the given samples.
        batch: arrays whose leading axis holds the samples (``B = k·m`` of them).
        m: micro-batch size; ``B`` must be a multiple of ``m``.
    """

    def __init__(self, loss: Callable, batch: tuple, m: int):
        sizes = {np.shape(b)[0] for b in batch}
        if len(sizes) != 1:
            checks.fail("MicroBatchOracle", "batch", "arrays with the same number of samples", [np.shape(b) for b in batch])
        size = sizes.pop()
        if size % m:
            checks.fail("MicroBatchOracle", "m", f"a divisor of the batch size {size}", m)
        self.k, self.m = size // m, m
        self.micro = tuple(jnp.reshape(b, (self.k, m) + tuple(np.shape(b)[1:])) for b in batch)
        grad = jax.grad(loss)
        self._grad = jax.vmap(grad, in_axes=(0,) + (0,) * len(batch))
        # one point for all (leading axis 1): the forward pass and the back-propagated activations
        # run on the whole batch at once, only the weight gradients are per micro-batch
        self._grad_shared = jax.vmap(grad, in_axes=(None,) + (0,) * len(batch))

    def __call__(self, params):
        if all(np.shape(x)[0] == 1 for x in jax.tree.leaves(params)):
            return self._grad_shared(jax.tree.map(lambda x: x[0], params), *self.micro)
        stacked = jax.tree.map(lambda x: jnp.broadcast_to(x, (self.k,) + x.shape[1:]), params)
        return self._grad(stacked, *self.micro)


def batch_oracle(opt: Optimizer, loss: Callable, *batch):
    """The oracle ``opt`` wants for one minibatch: a :class:`MicroBatchOracle` for :func:`msam`,
    otherwise a :class:`LossOracle` of ``p ↦ loss(p, *batch)``.

    >>> import jax.numpy as jnp
    >>> o = batch_oracle(msam(2), lambda p, x: jnp.mean((x * p) ** 2), jnp.arange(4.0))
    >>> o(jnp.ones(())[None]).shape   # 2 micro-batches of 2 samples, a scalar parameter each
    (2,)
    """
    m = dict(opt.options).get("micro_batch")
    if m is not None:
        return MicroBatchOracle(loss, batch, m)
    return LossOracle(lambda p: loss(p, *batch))


# ---- ASAM ---------------------------------------------------------------------------------------


def _leaf_mask(params, leaves):
    """Which leaves ASAM scales: every leaf (``"all"``), leaves with ≥ 2 dimensions (``"weights"``) or ``leaves(path, x)``."""
    if leaves == "all":
        return jax.tree.map(lambda x: True, params)
    if leaves == "weights":
        return jax.tree.map(lambda x: jnp.ndim(x) >= 2, params)
    return jax.tree_util.tree_map_with_path(lambda path, x: bool(leaves(path, x)), params)


@functools.lru_cache(maxsize=None, typed=True)  # typed: nesterov=1 is validated, not served as True
def asam(*, leaves="all", eps: float = 1e-12, nesterov: bool = False, base=None, lr_schedule=None,
         rho_schedule=None, decay=None) -> Optimizer:
    """Adaptive SAM (Kwon et al. 2021): ``e = ρ T² g / (‖T g‖ + eps)``, ``T = |w| + η_a`` on the selected leaves.

    Args:
        leaves: which leaves get ``T = |w| + hp.asam_eta``; the others get ``T = 1`` (plain SAM's
            perturbation there). ``"all"`` (davda54/sam's ``adaptive=True``, with η_a = 0),
            ``"weights"`` (leaves with ≥ 2 dimensions: the matrices of dense and conv layers,
            i.e. Kwon et al.'s "weight" parameters without the biases), or a function
            ``(key_path, leaf) -> bool`` on ``jax.tree_util`` key paths.
        eps: added to ‖T g‖ (Kwon et al.: 1e-16; davda54/sam: 1e-12).
        nesterov, base, lr_schedule, rho_schedule, decay: see :mod:`samdyn.optim.core`.

    >>> import jax.numpy as jnp
    >>> from samdyn.optim import hparams
    >>> opt = asam()                          # hp.asam_eta = 0: the elementwise scale is |w|
    >>> w = jnp.array([1.0, 2.0])
    >>> _, _, info = opt.step(lambda w: w, w, opt.init(w), hparams(lr=0.1, rho=1.0, asam_eta=0.0))
    >>> [round(float(x), 4) for x in info.perturbed - w]    # T² g / ‖T g‖ = w³ / ‖w²‖
    [0.2425, 1.9403]
    """
    if not (leaves in ("all", "weights") or callable(leaves)):
        checks.fail("asam", "leaves", "'all', 'weights' or a function (key_path, leaf) -> bool", leaves)
    eps = normalized("asam", eps)
    common = shared("asam", nesterov, base, lr_schedule, rho_schedule, decay)

    def rule(ctx: Ctx):
        mask = _leaf_mask(ctx.params, leaves)
        t = jax.tree.map(lambda on, w: jnp.abs(w) + ctx.hp.asam_eta if on else None, mask, ctx.params)
        tg = jax.tree.map(lambda ti, gi: gi if ti is None else ti * gi, t, ctx.g, is_leaf=lambda x: x is None)
        scale = ctx.rho / (tree_norm(tg) + eps)
        e = jax.tree.map(lambda ti, x: scale * (x if ti is None else ti * x), t, tg, is_leaf=lambda x: x is None)
        return perturbation_direction(ctx, e, tree_norm(e))

    name = "asam" if leaves == "all" else f"asam+{leaves if isinstance(leaves, str) else 'selected'}"
    return build(name, rule, (("eps", eps), ("leaves", leaves)), **common)


# ---- m-sharpness --------------------------------------------------------------------------------


@functools.lru_cache(maxsize=None, typed=True)  # typed: nesterov=1 is validated, not served as True
def msam(m: int, *, eps: float = 1e-12, nesterov: bool = False, base=None, lr_schedule=None, rho_schedule=None,
         decay=None) -> Optimizer:
    """SAM with the perturbation computed per micro-batch of ``m`` samples, descent gradients averaged.

    ``d = mean_j grad_j(w + e_j)``, ``e_j = ρ g_j / (‖g_j‖ + eps)``, ``g_j = grad_j(w)`` on the
    ``j``-th of the ``k = B/m`` micro-batches. With ``m = B`` it is SAM. ``grad_fn`` must be a
    :class:`MicroBatchOracle` (``nets.train`` builds it; :func:`batch_oracle` for your own loops).
    ``StepInfo``: ``grad_norm`` of the mean gradient, ``perturbed = w + mean_j e_j``, ``cosine``
    between the mean gradient at ``w`` and the mean descent gradient.

    Args:
        m: micro-batch size (a divisor of the batch size).
        eps, nesterov, base, lr_schedule, rho_schedule, decay: as in :func:`samdyn.optim.sam`.
    """
    m = checks.integer("msam", "m", m, low=1)
    eps = normalized("msam", eps)
    common = shared("msam", nesterov, base, lr_schedule, rho_schedule, decay)

    def first(grad, grad_fn, params):
        if not isinstance(grad_fn, MicroBatchOracle):
            checks.fail("msam", "grad_fn", "a samdyn.optim.MicroBatchOracle (see batch_oracle)", grad_fn, TypeError)
        G = grad(jax.tree.map(lambda x: x[None], params))       # (k, ...): per micro-batch, at w
        return G, _mean_over_micro_batches(G)

    def rule(ctx: Ctx):
        norms = _norms_per_micro_batch(ctx.g)
        scale = ctx.rho / (norms + eps)
        E = jax.tree.map(lambda x: x * scale.reshape((-1,) + (1,) * (x.ndim - 1)), ctx.g)
        D = ctx.grad(jax.tree.map(lambda w, e: w[None] + e, ctx.params, E))
        g, d, e = (_mean_over_micro_batches(t) for t in (ctx.g, D, E))
        return Direction(d, tree_add(ctx.params, e), cosine(g, d), tree_norm(e), ctx.extra)

    return build(f"msam{m}", rule, (("eps", eps), ("micro_batch", m)), first=first, **common)


# Reductions over the micro-batch axis. jnp.mean(axis=0) and a vmapped norm lower, on XLA:CPU, to
# library reduce kernels that took longer than a layer's matmul on the MNIST-1D MLP (80 µs for a
# (4, 100, 100) mean); halving the axis with elementwise adds and a matrix-vector product for the
# squared norms do not (ARCHITECTURE.md, "m-SAM's cost").


def _mean_over_micro_batches(tree):
    """Leaf-wise mean over the leading (micro-batch) axis by pairwise halving (elementwise adds)."""
    def mean(x):
        k, total = x.shape[0], x
        while total.shape[0] > 1:
            half = total.shape[0] // 2
            folded = total[:half] + total[half:2 * half]
            total = folded if total.shape[0] % 2 == 0 else jnp.concatenate([folded, total[2 * half:]])
        return total[0] / k

    return jax.tree.map(mean, tree)


def _norms_per_micro_batch(tree):
    """The global L2 norm of each of the ``k`` slices along the leading axis, shape ``(k,)``."""
    def squares(x):
        flat = jnp.square(x.reshape(x.shape[0], -1))
        return flat @ jnp.ones(flat.shape[1], x.dtype)

    return jnp.sqrt(functools.reduce(jnp.add, [squares(x) for x in jax.tree.leaves(tree)]))


# ---- GSAM ---------------------------------------------------------------------------------------


@functools.lru_cache(maxsize=None, typed=True)  # typed: nesterov=1 is validated, not served as True
def gsam(*, eps: float = 1e-12, nesterov: bool = False, base=None, lr_schedule=None, rho_schedule=None,
         decay=None) -> Optimizer:
    """GSAM (Zhuang et al. 2022): ``d = g_p − α (g − (g·g_p/‖g_p‖²) g_p)``, α = ``hp.gsam_alpha``.

    ``g_p`` is the gradient at SAM's point ``w + ρ g/(‖g‖ + eps)``; the subtracted vector is the
    component of ``g`` orthogonal to ``g_p`` (0 when ``g_p = 0``), so the surrogate gap is
    descended without changing the perturbed loss to first order. α = 0 is SAM exactly. The
    paper ties ρ to the learning rate: ``rho_schedule=schedules.tied(lr_schedule, floor)``.

    Args:
        eps, nesterov, base, lr_schedule, rho_schedule, decay: as in :func:`samdyn.optim.sam`.
    """
    eps = normalized("gsam", eps)
    common = shared("gsam", nesterov, base, lr_schedule, rho_schedule, decay)

    def rule(ctx: Ctx):
        e = tree_scale(ctx.g, ctx.rho / (ctx.grad_norm + eps))

        def combine(g, gp):
            coef = safe_div(tree_vdot(g, gp), tree_vdot(gp, gp))
            return jax.tree.map(lambda a, b: b - ctx.hp.gsam_alpha * (a - coef * b), g, gp)

        return perturbation_direction(ctx, e, ctx.rho * ctx.grad_norm / (ctx.grad_norm + eps), combine)

    return build("gsam", rule, (("eps", eps),), **common)


# ---- XSAM ---------------------------------------------------------------------------------------


def _slerp_coefficients(cos_theta, alpha):
    """(a, b) with ``slerp(v0, v1; α) = a v0 + b v1`` for unit vectors at angle θ; the θ → 0 limit when sin θ < 1e-8."""
    theta = jnp.arccos(jnp.clip(cos_theta, -1.0, 1.0))
    sin = jnp.sin(theta)
    ok = sin >= 1e-8
    safe = jnp.where(ok, sin, 1.0)
    a = jnp.where(ok, jnp.sin((1.0 - alpha) * theta) / safe, 1.0 - alpha)
    b = jnp.where(ok, jnp.sin(alpha * theta) / safe, alpha)
    return a, b


@functools.lru_cache(maxsize=None, typed=True)  # typed: nesterov=1 is validated, not served as True
def xsam(*, ascent_steps: int = 1, search_every: int | None = None, alpha_max: float = 1.0, alphas: int = 11,
         search_radius: float = 1.0, eps: float = 1e-12, nesterov: bool = False, base=None, lr_schedule=None,
         rho_schedule=None, decay=None) -> Optimizer:
    """XSAM (Chen & Zhou, arXiv 2603.10048): descend along an explicit estimate of the direction of the maximum.

    What is implemented (the update of a public PyTorch ``XSAM`` class that matches the paper's
    description — ascent, then spherical interpolation between the ascent direction and the
    gradient at the ascent point, with α found by probing losses in their plane; the paper's own
    listing could not be checked here):

    1. ascent: ``e`` from ``ascent_steps`` = k projected normalised steps in the ρ-ball
       (k = 1: SAM's ``e``), then ``g_k = grad(w + e)``;
    2. ``v₀ = e/‖e‖``, ``v₁ = g_k/‖g_k‖``, ``θ = arccos(v₀·v₁)``;
    3. ``d = ‖g_k‖ · slerp(v₀, v₁; α) = ‖g_k‖ (sin((1−α)θ) v₀ + sin(αθ) v₁)/sin θ`` — α = 1 is
       SAM's direction ``g_k``, α = 0 the ascent direction with ``g_k``'s length;
    4. α: ``hp.xsam_alpha`` (fixed), or, with ``search_every = N``, every N steps (at counts
       0, N, 2N, …) the α of the grid ``linspace(0, alpha_max, alphas)`` whose probe point
       ``w + r · slerp(v₀, v₁; α)`` has the largest loss, ``r = search_radius · ρ_t``; kept in
       ``state.extra`` between searches and used from the step that found it.

    Assumed or changed (stated so results can be compared): the reference probes at a separate
    radius ρ_max (here ``search_radius · ρ``), starts its arg-max at loss 0 (here a plain
    arg-max, first maximum on ties), takes unprojected ascent steps of length ρ when k > 1 (here
    projected onto the ρ-ball, as :func:`samdyn.optim.sam`), and uses ``(v₀ + v₁)/2`` when
    sin θ < 1e-8 (here the θ → 0 limit ``(1−α) v₀ + α v₁``, so α = 1 is SAM exactly). When
    ``e = 0`` or ``g_k = 0`` the step is SAM's (``d = g_k``). The search needs losses:
    ``grad_fn`` must be a :class:`LossOracle` (``nets.train`` passes one); under ``vmap`` with a
    batched counter (``nets.train``'s runs) the search's ``alphas`` loss evaluations run every step.

    Args:
        ascent_steps: k ≥ 1.
        search_every: None (fixed α = ``hp.xsam_alpha``) or the search period N ≥ 1.
        alpha_max, alphas: the search grid (``alpha_max`` > 0, ``alphas`` ≥ 2 points).
        search_radius: probe radius as a multiple of ρ_t (> 0).
        eps, nesterov, base, lr_schedule, rho_schedule, decay: as in :func:`samdyn.optim.sam`.
    """
    ascent_steps = checks.integer("xsam", "ascent_steps", ascent_steps, low=1)
    if search_every is not None:
        search_every = checks.integer("xsam", "search_every", search_every, low=1)
    alpha_max = checks.real("xsam", "alpha_max", alpha_max, low=0.0, low_open=True)
    alphas = checks.integer("xsam", "alphas", alphas, low=2)
    search_radius = checks.real("xsam", "search_radius", search_radius, low=0.0, low_open=True)
    eps = normalized("xsam", eps)
    common = shared("xsam", nesterov, base, lr_schedule, rho_schedule, decay)
    grid = np.linspace(0.0, alpha_max, alphas)

    def search(ctx: Ctx, e, e_norm, gk, gk_norm, cos_theta, decay_coef):
        if not isinstance(ctx.oracle, LossOracle):
            checks.fail("xsam", "grad_fn", "a samdyn.optim.LossOracle when search_every is set (the search "
                        "compares losses)", ctx.oracle, TypeError)
        r = search_radius * ctx.rho
        v0 = tree_scale(e, safe_div(1.0, e_norm))
        v1 = tree_scale(gk, safe_div(1.0, gk_norm))

        def probe(alpha):
            a, b = _slerp_coefficients(cos_theta, alpha)
            p = jax.tree.map(lambda w, x, y: w + r * (a * x + b * y), ctx.params, v0, v1)
            return ctx.oracle.loss(p) + 0.5 * decay_coef * tree_vdot(p, p)

        losses = jax.vmap(probe)(jnp.asarray(grid, dtype=gk_norm.dtype))
        return jnp.asarray(grid, dtype=gk_norm.dtype)[jnp.argmax(losses)]

    def rule(ctx: Ctx):
        e, e_norm = multi_step_perturbation(ctx, eps, "global", ascent_steps)
        perturbed = tree_add(ctx.params, e)
        gk = ctx.grad(perturbed)
        gk_norm = tree_norm(gk)
        cos_theta = safe_div(tree_vdot(e, gk), e_norm * gk_norm)
        if search_every is None:
            alpha, extra = ctx.hp.xsam_alpha, ctx.extra
        else:
            decay_coef = ctx.hp.weight_decay if common["decay"] == "loss" else 0.0
            due = ctx.count % search_every == 0
            alpha = jax.lax.cond(due, lambda: search(ctx, e, e_norm, gk, gk_norm, cos_theta, decay_coef),
                                 lambda: ctx.extra)
            extra = alpha
        a, b = _slerp_coefficients(cos_theta, alpha)
        degenerate = (e_norm == 0) | (gk_norm == 0)
        a = jnp.where(degenerate, 0.0, a * safe_div(gk_norm, e_norm))
        b = jnp.where(degenerate, 1.0, b)
        d = jax.tree.map(lambda x, y: a * x + b * y, e, gk)
        return Direction(d, perturbed, cosine(ctx.g, gk), e_norm, extra)

    def init_extra(params):
        return jnp.ones((), jax.tree.leaves(params)[0].dtype) if search_every is not None else None

    tags = [f"k{ascent_steps}"] * (ascent_steps > 1) + [f"search{search_every}"] * (search_every is not None)
    options = (("eps", eps), ("ascent_steps", ascent_steps), ("search_every", search_every),
               ("alpha_max", alpha_max), ("alphas", alphas), ("search_radius", search_radius))
    return build("+".join(["xsam", *tags]), rule, options, counted=search_every is not None,
                 init_extra=init_extra if search_every is not None else None, **common)
