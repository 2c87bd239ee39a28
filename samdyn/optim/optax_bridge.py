"""optax interop: a samdyn optimizer inside an optax loop, and an optax base optimizer under SAM's ascent.

* :func:`as_optax` — ``optim.as_optax(opt, hp)`` is an ``optax.GradientTransformationExtraArgs``
  whose ``update(grads, state, params, *, grad_fn)`` performs one whole samdyn step (optax's
  extra-args convention, as in ``optax.contrib.sam``'s opaque mode): ``grads`` is used as the
  gradient at ``params`` and ``grad_fn(p)`` is called for every other point; the returned updates
  are ``new_params − params``. The hyperparameters live in the state (``state.hp``, traced, so
  they can be changed between steps without recompiling, as with ``optax.inject_hyperparams``).
* :func:`from_optax` — ``optim.from_optax(optax.scale_by_adam())`` is SAM-Adam: SAM's ascent and
  descent gradient, then Adam's direction ``u`` and ``w ← w − η u`` with η = ``hp.lr`` (traced,
  schedulable). The base is an optax transformation *without* the learning rate
  (``optax.scale_by_adam()``, not ``optax.adam(η)``). AdamW is the same with
  ``decay="decoupled"`` and ``hp.weight_decay`` (``w ← w − η(u + λw)``, optax's and torch's AdamW);
  ``decay="descent"`` is Adam with an L2 term in its gradient (torch ``Adam(weight_decay=λ)``).

optax is imported only by :func:`as_optax` (an optional dependency: the ``optax`` extra).
"""

from __future__ import annotations

from typing import Any, Callable, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from .. import checks
from .core import HParams, Optimizer, gd, hparams, sam, usam
from .variants import LossOracle, MicroBatchOracle, asam, gsam, msam, xsam

__all__ = ["as_optax", "from_optax", "AsOptaxState", "Base"]

_RULES = {"gd": gd, "sam": sam, "usam": usam, "asam": asam, "msam": msam, "gsam": gsam, "xsam": xsam}


class Base(NamedTuple):
    """An optax transformation as a samdyn base optimizer (its ``name`` tags the optimizer's name)."""

    init: Callable
    update: Callable
    name: str


def from_optax(base, ascent: str = "sam", *, name: str = "optax", **options) -> Optimizer:
    """The samdyn rule ``ascent`` with the optax transformation ``base`` in place of SGD with momentum.

    Args:
        base: an optax ``GradientTransformation`` giving a descent direction without the learning
            rate, e.g. ``optax.scale_by_adam(b1, b2, eps)``; ``hp.lr`` (and ``lr_schedule``) scales it.
        ascent: ``"gd"`` (plain base optimizer), ``"sam"``, ``"usam"``, ``"asam"``, ``"msam"``,
            ``"gsam"`` or ``"xsam"``.
        name: tag in the optimizer's name (``"sam+adam"`` for ``name="adam"``).
        **options: the rule's options (``rho_schedule``, ``decay``, ``eps``, ``m`` for msam, …).

    Returns:
        An :class:`~samdyn.optim.Optimizer` whose state is an :class:`~samdyn.optim.OptaxState`.

    >>> import optax, jax.numpy as jnp
    >>> from samdyn.optim import hparams
    >>> opt = from_optax(optax.scale_by_adam(), "sam", name="adam")
    >>> w = jnp.array([1.0, -2.0])
    >>> w1, state, _ = opt.step(lambda w: w, w, opt.init(w), hparams(lr=0.1, rho=0.05))
    >>> opt.name, [round(float(x), 6) for x in w - w1]         # Adam's first step: η · sign(g)
    ('sam+adam', [0.1, -0.1])
    """
    if not (callable(getattr(base, "init", None)) and callable(getattr(base, "update", None))):
        checks.fail("from_optax", "base", "an optax GradientTransformation (e.g. optax.scale_by_adam())", base,
                    TypeError)
    checks.choice("from_optax", "ascent", ascent, tuple(_RULES))
    if not isinstance(name, str) or not name:
        checks.fail("from_optax", "name", "a non-empty string", name, TypeError)
    return _RULES[ascent](base=Base(base.init, base.update, name), **options)


class AsOptaxState(NamedTuple):
    """State of :func:`as_optax`: the samdyn optimizer's state and the hyperparameters (traced)."""

    inner: Any
    hp: HParams


class _Reusing(LossOracle):
    """A loss oracle that returns the known gradient at the step's own point."""

    def __init__(self, loss, params, grads):
        super().__init__(loss)
        self.params, self.grads = params, grads

    def __call__(self, p):
        return self.grads if p is self.params else super().__call__(p)


def as_optax(opt: Optimizer, hp):
    """A samdyn optimizer as an ``optax.GradientTransformationExtraArgs`` (one whole step per ``update``).

    Args:
        opt: any ``samdyn.optim`` optimizer.
        hp: scalar :func:`~samdyn.optim.hparams` (or a dict of its arguments); cast to the
            parameters' dtype by ``init`` and kept in ``state.hp``.

    Returns:
        ``GradientTransformationExtraArgs(init, update)`` with
        ``update(grads, state, params, *, grad_fn=None) -> (updates, state)``. ``grad_fn(p)``
        (the gradient of the same minibatch's loss) is required when ``opt`` evaluates gradients
        away from ``params`` (every ascent rule); a :class:`~samdyn.optim.LossOracle` or
        :class:`~samdyn.optim.MicroBatchOracle` is passed on as such (``xsam`` search, ``msam``).

    >>> import optax, jax, jax.numpy as jnp
    >>> from samdyn.optim import sam, hparams
    >>> tx = as_optax(sam(), hparams(lr=0.1, rho=0.05))
    >>> loss = lambda w: jnp.sum(w ** 2)
    >>> w = jnp.array([1.0, 2.0]); state = tx.init(w)
    >>> updates, state = tx.update(jax.grad(loss)(w), state, w, grad_fn=jax.grad(loss))
    >>> [round(float(x), 4) for x in optax.apply_updates(w, updates)]
    [0.7955, 1.5911]
    """
    import optax

    checks.instance("as_optax", "opt", opt, Optimizer, "a samdyn.optim optimizer (sam(), gd(), …)")
    if isinstance(hp, dict):
        hp = hparams(**hp)
    checks.instance("as_optax", "hp", hp, HParams, "samdyn.optim.hparams(...)")
    hp = hparams(*(np.asarray(leaf) for leaf in hp))
    for field, leaf in zip(HParams._fields, hp):
        if np.ndim(leaf) != 0:
            checks.fail("as_optax", f"hp.{field}", "a scalar (one optimizer per transformation)", leaf)

    def init(params):
        floats = [x for x in jax.tree.leaves(params) if jnp.issubdtype(jnp.asarray(x).dtype, jnp.floating)]
        dtype = jnp.result_type(*floats) if floats else jnp.result_type(float)
        return AsOptaxState(opt.init(params), HParams(*(jnp.asarray(leaf, dtype) for leaf in hp)))

    def update(updates, state, params=None, *, grad_fn=None, **extra_args):
        del extra_args
        if params is None:
            raise ValueError("as_optax: update needs params (the step evaluates gradients around them)")
        if isinstance(grad_fn, MicroBatchOracle):
            oracle = grad_fn
        elif isinstance(grad_fn, LossOracle):
            oracle = _Reusing(grad_fn.loss, params, updates)
        else:
            def oracle(p):
                if p is params:
                    return updates
                if grad_fn is None:
                    raise ValueError(f"as_optax: {opt.name} evaluates the gradient away from params: pass "
                                     "update(..., grad_fn=jax.grad(loss_of_the_same_batch))")
                return grad_fn(p)
        new_params, inner, _ = opt.step(oracle, params, state.inner, state.hp)
        return jax.tree.map(jnp.subtract, new_params, params), AsOptaxState(inner, state.hp)

    return optax.GradientTransformationExtraArgs(init, update)
