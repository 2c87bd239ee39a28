"""Update rules as pure ``(init, step)`` pairs on any pytree: GD, SAM, USAM, with momentum.

An :class:`Optimizer` is a NamedTuple of two pure functions (the optax convention):

* ``init(params) -> state`` — the momentum buffer, zeros shaped like ``params``;
* ``step(grad_fn, params, state, hp) -> (params, state, info)`` — one update.

``grad_fn(params) -> grads`` is the gradient oracle *for this step*: the exact gradient of a
landscape, or one minibatch (then SAM's two gradient evaluations use the same batch, as in
practice). ``hp`` is an :class:`HParams` pytree of arrays, so learning rate, ρ and momentum are
traced values: changing them never recompiles, and a grid of them can be ``vmap``-ed.
Static choices — normalised or unnormalised ascent, Nesterov or heavy ball, the ``eps`` of the
normalisation — are fixed when the optimizer is built.

The update, for one step from ``w`` with ``g = grad_fn(w)``:

* GD:   ``d = g``
* SAM:  ``d = grad_fn(w + e)`` with ``e = g · (ρ / (‖g‖ + eps))`` (Foret et al. 2021; ``‖·‖``
  is the global L2 norm over all leaves; a zero gradient gives ``e = 0`` and so GD's step)
* USAM: ``d = grad_fn(w + ρ g)`` (Andriushchenko & Flammarion 2022)

then heavy-ball momentum with ``torch.optim.SGD`` semantics (dampening 0)::

    v ← γ v + d          (v starts at 0, so the first v equals d, as in torch)
    w ← w − η v          (heavy ball)      or      w ← w − η (d + γ v)   (Nesterov)

``info`` (:class:`StepInfo`) reports, at no extra gradient cost, ``grad_norm`` = ‖g‖ at ``w``,
``perturbed`` = the point where the descent gradient was taken (``w`` for GD) and ``cosine`` =
cos∠(g, d) between SAM's two gradients (1 for GD; 0 when a gradient vanishes).
"""

from __future__ import annotations

import functools
from typing import Any, Callable, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

__all__ = [
    "HParams",
    "OptState",
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
        momentum: heavy-ball coefficient γ ∈ [0, 1).

    Leaves may be arrays of any mutually broadcastable shapes: ``simulate`` runs the
    broadcast grid (e.g. ``lr=η``, ``rho=[0.1, 0.5, 1.0]`` is a batch of three).
    """

    lr: Any
    rho: Any = 0.0
    momentum: Any = 0.0


class OptState(NamedTuple):
    """Optimizer state: the momentum buffer ``v``, a pytree shaped like the parameters."""

    momentum: Any


class StepInfo(NamedTuple):
    """Diagnostics of one step, computed from the step's own gradients.

    Attributes:
        grad_norm: ‖g‖, global L2 norm of the gradient at the current point (scalar).
        perturbed: the point where the descent gradient was evaluated (pytree like params).
        cosine: cosine between the ascent gradient g and the descent gradient (scalar in
            [-1, 1]; 1 for GD; 0 when either gradient is exactly zero).
    """

    grad_norm: Any
    perturbed: Any
    cosine: Any


class Optimizer(NamedTuple):
    """A pure update rule: ``init(params) -> state``, ``step(grad_fn, params, state, hp)``.

    ``name`` and ``options`` describe the static choices (for labels, caching and the
    symbolic analysis in ``samdyn.stability``).
    """

    init: Callable[[Params], OptState]
    step: Callable[[GradFn, Params, OptState, HParams], tuple[Params, OptState, StepInfo]]
    name: str
    options: tuple = ()


def hparams(lr, rho=0.0, momentum=0.0, *, dtype=None) -> HParams:
    """Validate hyperparameter values and pack them as an :class:`HParams` pytree of arrays.

    Values may be scalars or arrays (a grid); they are checked on the host, before any
    compute: ``lr`` finite and > 0, ``rho`` finite and ≥ 0, ``momentum`` in [0, 1), and the
    shapes mutually broadcastable.

    Args:
        lr: learning rate(s).
        rho: SAM/USAM radius (or radii).
        momentum: heavy-ball coefficient(s).
        dtype: array dtype (default: float64 when x64 is on, which ``import samdyn`` enables).

    Returns:
        HParams with ``jnp`` array leaves.

    >>> hp = hparams(lr=0.01, rho=[0.1, 0.5])
    >>> hp.rho.shape
    (2,)
    """
    values = {"lr": lr, "rho": rho, "momentum": momentum}
    arrays = {}
    for name, value in values.items():
        try:
            arr = np.asarray(value, dtype=np.float64)
        except (TypeError, ValueError) as err:
            raise TypeError(f"hparams: {name} must be a real number or array, got {value!r}") from err
        if arr.size == 0:
            raise ValueError(f"hparams: {name} is empty; give at least one value")
        if not np.all(np.isfinite(arr)):
            raise ValueError(f"hparams: {name} must be finite, got {value!r}")
        arrays[name] = arr
    if np.any(arrays["lr"] <= 0):
        raise ValueError(f"hparams: lr must be > 0, got {lr!r}")
    if np.any(arrays["rho"] < 0):
        raise ValueError(f"hparams: rho must be >= 0, got {rho!r}")
    if np.any((arrays["momentum"] < 0) | (arrays["momentum"] >= 1)):
        raise ValueError(f"hparams: momentum must be in [0, 1), got {momentum!r}")
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


def _cosine(a, b):
    """cos∠(a, b) over pytrees, 0 when either is exactly zero (never NaN)."""
    dot = tree_vdot(a, b)
    denom = tree_norm(a) * tree_norm(b)
    safe = jnp.where(denom > 0, denom, 1.0)
    return jnp.where(denom > 0, dot / safe, 0.0)


def _init(params) -> OptState:
    return OptState(momentum=jax.tree.map(jnp.zeros_like, params))


def _apply_momentum(direction, params, state: OptState, hp: HParams, nesterov: bool):
    """torch.optim.SGD update (dampening 0): v ← γv + d; w ← w − η·(v or d + γv)."""
    buf = jax.tree.map(lambda v, d: hp.momentum * v + d, state.momentum, direction)
    if nesterov:
        update = jax.tree.map(lambda d, v: d + hp.momentum * v, direction, buf)
    else:
        update = buf
    new_params = jax.tree.map(lambda w, u: w - hp.lr * u, params, update)
    return new_params, OptState(momentum=buf)


def _make(name: str, ascent: Callable | None, nesterov: bool, options: tuple) -> Optimizer:
    """Build an Optimizer from an ascent rule ``ascent(g, grad_norm, hp) -> e`` (None for GD)."""

    def step(grad_fn: GradFn, params, state: OptState, hp: HParams):
        g = grad_fn(params)
        grad_norm = tree_norm(g)
        if ascent is None:
            perturbed, descent, cosine = params, g, jnp.ones_like(grad_norm)
        else:
            e = ascent(g, grad_norm, hp)
            perturbed = jax.tree.map(jnp.add, params, e)
            descent = grad_fn(perturbed)
            cosine = _cosine(g, descent)
        new_params, new_state = _apply_momentum(descent, params, state, hp, nesterov)
        return new_params, new_state, StepInfo(grad_norm, perturbed, cosine)

    return Optimizer(init=_init, step=step, name=name, options=options)


@functools.cache
def gd(*, nesterov: bool = False) -> Optimizer:
    """Gradient descent with heavy-ball (or Nesterov) momentum ``hp.momentum``; ignores ``hp.rho``.

    >>> import jax.numpy as jnp
    >>> opt = gd()
    >>> w, s, info = opt.step(lambda w: 2 * w, jnp.ones(2), opt.init(jnp.ones(2)), hparams(lr=0.25))
    >>> w.tolist()
    [0.5, 0.5]
    """
    return _make("gd", None, nesterov, (("nesterov", nesterov),))


@functools.cache
def sam(*, eps: float = 1e-12, nesterov: bool = False) -> Optimizer:
    """Normalised SAM: descend with the gradient at ``w + ρ g / (‖g‖ + eps)``.

    Args:
        eps: added to the global gradient norm, so a zero gradient gives GD's step, never NaN.
            1e-12 as in davda54/sam and optax; Kim et al.'s official code uses 1e-16.
        nesterov: Nesterov instead of heavy-ball momentum.
    """
    if not eps > 0:
        raise ValueError(f"sam: eps must be > 0, got {eps!r}")

    def ascent(g, grad_norm, hp):
        scale = hp.rho / (grad_norm + eps)
        return jax.tree.map(lambda x: x * scale, g)

    return _make("sam", ascent, nesterov, (("eps", eps), ("nesterov", nesterov)))


@functools.cache
def usam(*, nesterov: bool = False) -> Optimizer:
    """Unnormalised SAM: descend with the gradient at ``w + ρ g``."""

    def ascent(g, grad_norm, hp):
        return jax.tree.map(lambda x: hp.rho * x, g)

    return _make("usam", ascent, nesterov, (("nesterov", nesterov),))
