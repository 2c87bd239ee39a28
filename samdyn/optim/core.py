"""Update rules as pure ``(init, step)`` pairs on any pytree: GD, SAM, USAM, and the machinery of the variants.

An :class:`Optimizer` is a NamedTuple of two pure functions (the optax convention):

* ``init(params) -> state`` — the momentum buffer, zeros shaped like ``params`` (plus a step
  counter when a schedule or a search needs one);
* ``step(grad_fn, params, state, hp) -> (params, state, info)`` — one update.

``grad_fn(params) -> grads`` is the gradient oracle *for this step*: the exact gradient of a
landscape, or one minibatch (then SAM's gradient evaluations use the same batch, as in
practice). Every step evaluates ``grad_fn`` at ``params`` first (``msam``: with a leading micro-batch axis). ``hp`` is an :class:`HParams` pytree of
arrays, so learning rate, ρ, momentum and the variants' coefficients are traced values: changing
them never recompiles, and a grid of them can be ``vmap``-ed. Static choices — normalised or
unnormalised ascent, Nesterov or heavy ball, the ``eps`` of the normalisation, schedules, the base
optimizer, where weight decay goes — are fixed when the optimizer is built.

The update, for one step from ``w`` with ``g = grad_fn(w)``:

* GD:   ``d = g``
* SAM:  ``d = grad_fn(w + e)`` with ``e = g · (ρ / (‖g‖ + eps))`` (Foret et al. 2021; ``‖·‖``
  is the global L2 norm over all leaves; a zero gradient gives ``e = 0`` and so GD's step)
* USAM: ``d = grad_fn(w + ρ g)`` (Andriushchenko & Flammarion 2022)

then heavy-ball momentum with ``torch.optim.SGD`` semantics (dampening 0)::

    v ← γ v + d          (v starts at 0, so the first v equals d, as in torch)
    w ← w − η v          (heavy ball)      or      w ← w − η (d + γ v)   (Nesterov)

or, with ``base=`` an optax transformation (see :func:`samdyn.optim.from_optax`),
``u, s ← base.update(d, s, w)`` and ``w ← w − η u``.

Options shared by every factory (keyword-only, static):

* ``lr_schedule``, ``rho_schedule`` — :mod:`samdyn.optim.schedules`; η_t = ``hp.lr · s(t)``,
  ρ_t = ``hp.rho · s(t)``, ``t`` = the counter in ``state.count`` (0 at the first step).
* ``decay`` — where ``hp.weight_decay`` (λ) enters, since peers differ; ``None`` (default): λ is
  not used. ``"loss"``: coupled *before the ascent* — λw is added to every gradient, at ``w`` and
  at ``w + e`` (SAM on ``L + λ‖w‖²/2``). ``"descent"``: coupled *at the descent only* —
  ``d ← d + λw`` before momentum (``torch.optim.SGD(weight_decay=λ)`` under davda54/sam's SAM).
  ``"decoupled"``: ``w ← w − η_t(u + λw)`` outside the momentum/base (SGDW, optax/torch AdamW).
* ``nesterov`` — Nesterov momentum (SGD base only).
* ``base`` — ``None`` (SGD with ``hp.momentum``) or an optax ``GradientTransformation`` that
  maps gradients to a descent direction *without* the learning rate (``optax.scale_by_adam()``);
  then ``hp.momentum`` is not used.

The optimizer's ``name`` says which map it is: ``"gd"``, ``"sam"``, ``"usam"``, … exactly the
plain rule with the SGD base; any other static choice appends a tag (``"sam+k3"``,
``"sam+adam+sched"``), so code that models a named rule (``stability``, ``diffusion``) never
mistakes a variant for it.

``info`` (:class:`StepInfo`) reports, at no extra gradient cost, ``grad_norm`` = ‖g‖ at ``w``,
``perturbed`` = the point where the descent gradient was taken (``w`` for GD), ``cosine`` =
cos∠(g, g(w + e)) between SAM's two gradients (1 for GD; 0 when a gradient vanishes) and
``radius`` = ‖e‖/‖g‖, the step's effective USAM radius (ρ_t for USAM, ρ_t/(‖g‖ + eps) for SAM, 0
for GD and at a zero gradient). Unused fields cost nothing inside a jitted program.
"""

from __future__ import annotations

import functools
from typing import Any, Callable, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from .. import checks
from .schedules import Schedule

__all__ = [
    "HParams",
    "OptState",
    "OptaxState",
    "StepInfo",
    "Optimizer",
    "hparams",
    "gd",
    "sam",
    "usam",
    "tree_norm",
    "tree_vdot",
]

Params = Any
GradFn = Callable[[Params], Params]


class HParams(NamedTuple):
    """Hyperparameters as a pytree of arrays (traced, vmappable; no recompiles when they change).

    Attributes:
        lr: learning rate η > 0.
        rho: perturbation radius ρ ≥ 0 (ignored by GD). For SAM it is a distance in parameter
            space; for USAM a multiplier of the gradient.
        momentum: heavy-ball coefficient γ ∈ [0, 1) (SGD base only).
        weight_decay: λ ≥ 0, used by optimizers built with ``decay=`` (default 0).
        asam_eta: ASAM's η_a ≥ 0 in ``T_w = |w| + η_a`` (default 0.01, Kwon et al.'s).
        gsam_alpha: GSAM's α ≥ 0 (default 0: SAM).
        xsam_alpha: XSAM's fixed interpolation α ≥ 0 (default 1: SAM's direction).

    Leaves may be arrays of any mutually broadcastable shapes: ``simulate`` runs the
    broadcast grid (e.g. ``lr=η``, ``rho=[0.1, 0.5, 1.0]`` is a batch of three). Each rule reads
    only the fields it needs.
    """

    lr: Any
    rho: Any = 0.0
    momentum: Any = 0.0
    weight_decay: Any = 0.0
    asam_eta: Any = 0.01
    gsam_alpha: Any = 0.0
    xsam_alpha: Any = 1.0


class OptState(NamedTuple):
    """State of an optimizer with the SGD base.

    Attributes:
        momentum: the momentum buffer ``v``, a pytree shaped like the parameters.
        count: the step counter (an int32 scalar; a ``(lanes,)`` array when vmapped) for optimizers
            with a schedule or a periodic search; ``None`` otherwise (no leaf). A missing counter
            reads as 0: ``OptState(v)`` is a valid state of every optimizer, at step 0.
        extra: a variant's own state (XSAM's searched α), else ``None``.
    """

    momentum: Any
    count: Any = None
    extra: Any = None


class OptaxState(NamedTuple):
    """State of an optimizer whose base is an optax transformation (:func:`samdyn.optim.from_optax`).

    Attributes:
        base: the optax transformation's state.
        count, extra: as in :class:`OptState`.

    ``state.momentum`` (a property, for code that reads the momentum of any optimizer) is the
    base's first moment — the ``mu`` of ``scale_by_adam``-like states or the ``trace`` of
    ``optax.trace`` — and ``None`` if the base keeps none (e.g. ``scale_by_rms``).
    """

    base: Any
    count: Any = None
    extra: Any = None

    @property
    def momentum(self):
        def find(node):
            for field in ("mu", "trace"):
                if hasattr(node, field) and hasattr(node, "_fields"):
                    return getattr(node, field)
            if isinstance(node, (tuple, list)):
                for child in node:
                    found = find(child)
                    if found is not None:
                        return found
            return None

        return find(self.base)


class StepInfo(NamedTuple):
    """Diagnostics of one step, computed from the step's own gradients.

    Attributes:
        grad_norm: ‖g‖, global L2 norm of the gradient at the current point (scalar).
        perturbed: the point where the descent gradient was evaluated (pytree like params).
        cosine: cosine between the ascent gradient g and the gradient at the perturbed point
            (scalar in [-1, 1]; 1 for GD; 0 when either gradient is exactly zero).
        radius: ‖e‖/‖g‖, the effective USAM radius of the step (0 for GD or when g = 0).
    """

    grad_norm: Any
    perturbed: Any
    cosine: Any
    radius: Any = None


class Optimizer(NamedTuple):
    """A pure update rule: ``init(params) -> state``, ``step(grad_fn, params, state, hp)``.

    ``name`` and ``options`` describe the static choices (for labels, caching and the
    symbolic analysis in ``samdyn.stability``).
    """

    init: Callable[[Params], OptState]
    step: Callable[[GradFn, Params, OptState, HParams], tuple[Params, OptState, StepInfo]]
    name: str
    options: tuple = ()


# (name, lower bound, bound is strict) for each field; all must be finite
_BOUNDS = {"lr": (0.0, True), "rho": (0.0, False), "momentum": (0.0, False), "weight_decay": (0.0, False),
           "asam_eta": (0.0, False), "gsam_alpha": (0.0, False), "xsam_alpha": (0.0, False)}


def hparams(lr, rho=0.0, momentum=0.0, weight_decay=0.0, asam_eta=0.01, gsam_alpha=0.0, xsam_alpha=1.0, *,
            dtype=None) -> HParams:
    """Validate hyperparameter values and pack them as an :class:`HParams` pytree of arrays.

    Values may be scalars or arrays (a grid); they are checked on the host, before any
    compute: ``lr`` finite and > 0, ``momentum`` in [0, 1), every other field finite and ≥ 0,
    and the shapes mutually broadcastable. ``hparams(*hp)`` round-trips any :class:`HParams`.

    Args:
        lr: learning rate(s).
        rho: SAM/USAM radius (or radii).
        momentum: heavy-ball coefficient(s).
        weight_decay: λ (used by optimizers built with ``decay=``).
        asam_eta: ASAM's η_a.
        gsam_alpha: GSAM's α.
        xsam_alpha: XSAM's fixed α.
        dtype: array dtype (default: float64 when x64 is on, which ``import samdyn`` enables).

    Returns:
        HParams with ``jnp`` array leaves.

    >>> hp = hparams(lr=0.01, rho=[0.1, 0.5])
    >>> hp.rho.shape
    (2,)
    """
    values = dict(zip(HParams._fields, (lr, rho, momentum, weight_decay, asam_eta, gsam_alpha, xsam_alpha)))
    arrays = {}
    for name, value in values.items():
        try:
            arr = np.asarray(value, dtype=np.float64)
        except (TypeError, ValueError) as err:
            raise TypeError(f"hparams: {name} must be a real number or array, got {checks.summary(value)}") from err
        if arr.size == 0:
            raise ValueError(f"hparams: {name} is empty; give at least one value")
        if not np.all(np.isfinite(arr)):
            raise ValueError(f"hparams: {name} must be finite, got {checks.summary(value)}")
        low, strict = _BOUNDS[name]
        if np.any(arr <= low) if strict else np.any(arr < low):
            raise ValueError(f"hparams: {name} must be {'>' if strict else '>='} {low:g}, got {checks.summary(value)}")
        arrays[name] = arr
    if np.any(arrays["momentum"] >= 1):
        raise ValueError(f"hparams: momentum must be in [0, 1), got {checks.summary(momentum)}")
    try:
        np.broadcast_shapes(*(a.shape for a in arrays.values()))
    except ValueError as err:
        shapes = {k: a.shape for k, a in arrays.items()}
        raise ValueError(f"hparams: shapes {shapes} do not broadcast together") from err
    dtype = dtype or jnp.result_type(float)
    return HParams(**{k: jnp.asarray(a, dtype=dtype) for k, a in arrays.items()})


def tree_vdot(a, b):
    """Sum over all leaves of ⟨a_leaf, b_leaf⟩ (a real scalar)."""
    # sum(x * y) rather than vdot: under vmap it stays an elementwise product and a reduction that
    # XLA fuses, where vdot would become a batched dot_general.
    leaves = jax.tree.leaves(jax.tree.map(lambda x, y: jnp.sum(x * y), a, b))
    return functools.reduce(jnp.add, leaves)


def tree_norm(tree):
    """Global L2 norm over all leaves of a pytree (a scalar)."""
    return jnp.sqrt(tree_vdot(tree, tree))


def tree_scale(tree, s):
    """Every leaf times the scalar ``s``."""
    return jax.tree.map(lambda x: x * s, tree)


def tree_add(a, b):
    return jax.tree.map(jnp.add, a, b)


def safe_div(num, den):
    """``num / den`` where ``den > 0``, else 0 (no NaN, also in derivatives)."""
    ok = den > 0
    return jnp.where(ok, num / jnp.where(ok, den, 1.0), 0.0)


def safe_norm(tree):
    """Global L2 norm whose derivative at 0 is 0 rather than NaN (for Jacobians through a step)."""
    sq = tree_vdot(tree, tree)
    ok = sq > 0
    return jnp.where(ok, jnp.sqrt(jnp.where(ok, sq, 1.0)), 0.0)


def cosine(a, b):
    """cos∠(a, b) over pytrees, 0 when either is exactly zero (never NaN)."""
    return safe_div(tree_vdot(a, b), tree_norm(a) * tree_norm(b))


# ---- the step, assembled from a direction rule, a base, weight decay and schedules --------------


class Ctx(NamedTuple):
    """What a direction rule sees: the oracle (weight decay of ``decay="loss"`` included), ``w``,
    ``g = grad(w)`` (stacked per micro-batch for msam), ‖g‖ (of the mean gradient), the
    hyperparameters, the scheduled ρ_t, the counter and the rule's state."""

    grad: Callable
    params: Any
    g: Any
    grad_norm: Any
    hp: HParams
    rho: Any
    count: Any
    extra: Any
    oracle: Any  # the ``grad_fn`` given to the step (its ``loss``, for rules that compare losses)


class Direction(NamedTuple):
    """A rule's result: descent direction ``d``, the perturbed point, cos∠(g, g_p), ``‖e‖`` and its new state."""

    d: Any
    perturbed: Any
    cosine: Any
    e_norm: Any
    extra: Any = None


def gd_direction(ctx: Ctx) -> Direction:
    one = jnp.ones_like(ctx.grad_norm)
    return Direction(ctx.g, ctx.params, one, jnp.zeros_like(ctx.grad_norm), ctx.extra)


def perturbation_direction(ctx: Ctx, e, e_norm, combine=None) -> Direction:
    """The descent gradient at ``w + e``; ``combine(g, g_p)`` turns it into the direction (default g_p)."""
    perturbed = tree_add(ctx.params, e)
    gp = ctx.grad(perturbed)
    d = gp if combine is None else combine(ctx.g, gp)
    return Direction(d, perturbed, cosine(ctx.g, gp), e_norm, ctx.extra)


def _sgd_base(direction, state, hp, nesterov):
    """torch.optim.SGD (dampening 0): v ← γv + d; the update u = v or d + γv (w ← w − η u)."""
    buf = jax.tree.map(lambda v, d: hp.momentum * v + d, state.momentum, direction)
    if nesterov:
        return jax.tree.map(lambda d, v: d + hp.momentum * v, direction, buf), buf
    return buf, buf


def build(name: str, rule: Callable[[Ctx], Direction], options: tuple, *, nesterov=False, base=None,
          lr_schedule=None, rho_schedule=None, decay=None, counted=False, init_extra=None, first=None) -> Optimizer:
    """An :class:`Optimizer` from a direction rule and the shared options (validated by the caller).

    Args:
        name: the rule's name; tags for non-default shared options are appended here.
        rule: ``Ctx -> Direction``.
        options: the rule's own static options (they come first in ``Optimizer.options``).
        counted: the rule needs the step counter (besides schedules).
        init_extra: ``params -> extra`` initial rule state (or None).
        first: ``(grad, grad_fn, params) -> (g, mean g)``, the first oracle call when it is not
            ``grad(params)`` (msam's micro-batch axis).
    """
    counted = counted or lr_schedule is not None or rho_schedule is not None
    tags = []
    if base is not None:
        tags.append(getattr(base, "name", None) or "optax")
    if decay is not None:
        tags.append(f"wd-{decay}")
    if lr_schedule is not None or rho_schedule is not None:
        tags.append("sched")
    full_name = "+".join([name, *tags])
    all_options = tuple(options) + (("nesterov", nesterov), ("base", base), ("lr_schedule", lr_schedule),
                                    ("rho_schedule", rho_schedule), ("decay", decay))

    def init(params):
        count = jnp.zeros((), jnp.int32) if counted else None
        extra = None if init_extra is None else init_extra(params)
        if base is None:
            return OptState(jax.tree.map(jnp.zeros_like, params), count, extra)
        return OptaxState(base.init(params), count, extra)

    def step(grad_fn: GradFn, params, state, hp: HParams):
        count = state.count if state.count is not None else jnp.zeros((), jnp.int32)
        lr = hp.lr if lr_schedule is None else hp.lr * lr_schedule(count).astype(jnp.asarray(hp.lr).dtype)
        rho = hp.rho if rho_schedule is None else hp.rho * rho_schedule(count).astype(jnp.asarray(hp.rho).dtype)
        if decay == "loss":
            def grad(p):
                return jax.tree.map(lambda gi, pi: gi + hp.weight_decay * pi, grad_fn(p), p)
        else:
            grad = grad_fn
        if first is None:
            g = g_mean = grad(params)
        else:
            g, g_mean = first(grad, grad_fn, params)
        grad_norm = tree_norm(g_mean)
        out = rule(Ctx(grad, params, g, grad_norm, hp, rho, count, state.extra, grad_fn))
        d = out.d
        if decay == "descent":
            d = jax.tree.map(lambda di, w: di + hp.weight_decay * w, d, params)
        new_count = count + 1 if counted else None
        if base is None:
            update, buf = _sgd_base(d, state, hp, nesterov)
            new_state = OptState(buf, new_count, out.extra)
        else:
            update, base_state = base.update(d, state.base, params)
            new_state = OptaxState(base_state, new_count, out.extra)
        if decay == "decoupled":
            update = jax.tree.map(lambda u, w: u + hp.weight_decay * w, update, params)
        new_params = jax.tree.map(lambda w, u: w - lr * u, params, update)
        radius = safe_div(out.e_norm, grad_norm)
        return new_params, new_state, StepInfo(grad_norm, out.perturbed, out.cosine, radius)

    return Optimizer(init=init, step=step, name=full_name, options=all_options)


def shared(where: str, nesterov, base, lr_schedule, rho_schedule, decay) -> dict:
    """Validate the options every factory shares (before any compute)."""
    checks.boolean(where, "nesterov", nesterov)
    if base is not None and not (callable(getattr(base, "init", None)) and callable(getattr(base, "update", None))):
        checks.fail(where, "base", "None or an optax GradientTransformation (e.g. optax.scale_by_adam())", base,
                    TypeError)
    if base is not None and nesterov:
        checks.fail(where, "nesterov", "False when base= is given (the base does its own momentum)", nesterov)
    for name, s in (("lr_schedule", lr_schedule), ("rho_schedule", rho_schedule)):
        if s is not None:
            checks.instance(where, name, s, Schedule, "None or a samdyn.optim.schedules schedule")
    if decay is not None:
        checks.choice(where, "decay", decay, ("loss", "descent", "decoupled"))
    return dict(nesterov=bool(nesterov), base=base, lr_schedule=lr_schedule, rho_schedule=rho_schedule, decay=decay)


def normalized(where: str, eps) -> float:
    """The ``eps`` of a normalised ascent: a finite real number > 0."""
    eps = checks.real(where, "eps", eps)
    if eps <= 0:
        checks.fail(where, "eps", "> 0", eps)
    return eps


# ---- the three classical rules ------------------------------------------------------------------


@functools.lru_cache(maxsize=None, typed=True)  # typed: nesterov=1 is validated, not served as True
def gd(*, nesterov: bool = False, base=None, lr_schedule=None, decay=None) -> Optimizer:
    """Gradient descent with heavy-ball (or Nesterov) momentum ``hp.momentum``; ignores ``hp.rho``.

    Args: see the module docstring (``nesterov``, ``base``, ``lr_schedule``, ``decay``).

    >>> import jax.numpy as jnp
    >>> opt = gd()
    >>> w, s, info = opt.step(lambda w: 2 * w, jnp.ones(2), opt.init(jnp.ones(2)), hparams(lr=0.25))
    >>> w.tolist()
    [0.5, 0.5]
    """
    common = shared("gd", nesterov, base, lr_schedule, None, decay)
    return build("gd", gd_direction, (), **common)


def sam_perturbation(ctx: Ctx, eps, norm="global"):
    """``e = ρ g/(‖g‖ + eps)`` (global norm) or per leaf ``ρ g_l/(‖g_l‖ + eps)`` (``norm="layer"``)."""
    if norm == "global":
        e = tree_scale(ctx.g, ctx.rho / (ctx.grad_norm + eps))
        return e, ctx.rho * ctx.grad_norm / (ctx.grad_norm + eps)
    e = jax.tree.map(lambda x: x * (ctx.rho / (jnp.sqrt(jnp.sum(x * x)) + eps)), ctx.g)
    return e, tree_norm(e)


def _project(e, rho, norm):
    """Projection onto the ball ‖e‖ ≤ ρ (global) or onto ‖e_l‖ ≤ ρ for every leaf (layer)."""
    def shrink(x, n):
        return x * jnp.where(n > rho, safe_div(rho, n), 1.0)

    if norm == "global":
        n = safe_norm(e)
        return jax.tree.map(lambda x: shrink(x, n), e)
    return jax.tree.map(lambda x: shrink(x, safe_norm(x)), e)


def multi_step_perturbation(ctx: Ctx, eps, norm, steps):
    """k projected ascent steps in the ρ-ball: ``e ← Π(e + ρ ĝ(w + e))`` from ``e = 0``, ĝ normalised.

    The first step is SAM's perturbation (no projection needed: ‖e‖ < ρ); each later one takes
    one more gradient.
    """
    e, e_norm = sam_perturbation(ctx, eps, norm)
    for _ in range(steps - 1):
        gi = ctx.grad(tree_add(ctx.params, e))
        step_ctx = ctx._replace(g=gi, grad_norm=tree_norm(gi))
        e = _project(tree_add(e, sam_perturbation(step_ctx, eps, norm)[0]), ctx.rho, norm)
        e_norm = tree_norm(e)
    return e, e_norm


@functools.lru_cache(maxsize=None, typed=True)  # typed: nesterov=1 is validated, not served as True
def sam(*, eps: float = 1e-12, nesterov: bool = False, ascent_steps: int = 1, norm: str = "global",
        accumulate: bool = False, base=None, lr_schedule=None, rho_schedule=None, decay=None) -> Optimizer:
    """Normalised SAM: descend with the gradient at ``w + ρ g / (‖g‖ + eps)``.

    Args:
        eps: added to the gradient norm, so a zero gradient gives GD's step, never NaN. 1e-12 as
            in davda54/sam; Kim et al.'s official code uses 1e-16; optax's ``contrib.normalize``
            divides by the norm with no eps (a zero gradient gives NaN there).
        nesterov: Nesterov instead of heavy-ball momentum.
        ascent_steps: k ≥ 1 projected ascent steps in the ρ-ball (:func:`multi_step_perturbation`);
            k + 1 gradient evaluations per step. k = 1 is SAM.
        norm: ``"global"`` (one norm over all leaves, Foret et al.) or ``"layer"`` (each leaf
            normalised, and projected, on its own).
        accumulate: descend with ``g + grad(w + e)`` instead of ``grad(w + e)``: the update of
            code that does not zero the gradients between SAM's two backward passes — popular
            tutorials and the official x² − y² demo of Kim et al. (``sam_stability/saddle/demo.py``).
            A different map (SAM's direction plus GD's), offered so its dynamics can be shown.
        base, lr_schedule, rho_schedule, decay: see the module docstring.
    """
    eps = normalized("sam", eps)
    ascent_steps = checks.integer("sam", "ascent_steps", ascent_steps, low=1)
    checks.choice("sam", "norm", norm, ("global", "layer"))
    checks.boolean("sam", "accumulate", accumulate)
    common = shared("sam", nesterov, base, lr_schedule, rho_schedule, decay)
    combine = (lambda g, gp: tree_add(g, gp)) if accumulate else None

    def rule(ctx):
        e, e_norm = multi_step_perturbation(ctx, eps, norm, ascent_steps)
        return perturbation_direction(ctx, e, e_norm, combine)

    tags = [f"k{ascent_steps}"] * (ascent_steps > 1) + ["layer"] * (norm == "layer") + ["acc"] * accumulate
    options = (("eps", eps), ("ascent_steps", ascent_steps), ("norm", norm), ("accumulate", bool(accumulate)))
    return build("+".join(["sam", *tags]), rule, options, **common)


@functools.lru_cache(maxsize=None, typed=True)  # typed: nesterov=1 is validated, not served as True
def usam(*, nesterov: bool = False, accumulate: bool = False, base=None, lr_schedule=None, rho_schedule=None,
         decay=None) -> Optimizer:
    """Unnormalised SAM: descend with the gradient at ``w + ρ g``.

    Args:
        accumulate: descend with ``g + grad(w + ρ g)`` (see :func:`sam`).
        nesterov, base, lr_schedule, rho_schedule, decay: see the module docstring.
    """
    checks.boolean("usam", "accumulate", accumulate)
    common = shared("usam", nesterov, base, lr_schedule, rho_schedule, decay)
    combine = (lambda g, gp: tree_add(g, gp)) if accumulate else None

    def rule(ctx):
        e = tree_scale(ctx.g, ctx.rho)
        return perturbation_direction(ctx, e, jnp.abs(ctx.rho) * ctx.grad_norm, combine)

    return build("usam+acc" if accumulate else "usam", rule, (("accumulate", bool(accumulate)),), **common)
