"""Update rules as pure ``(init, step)`` pairs on any pytree: GD, SAM, USAM and the SAM family.

* :mod:`~samdyn.optim.core` — :class:`HParams`, :class:`OptState`, :class:`StepInfo`,
  :class:`Optimizer`, :func:`hparams`, :func:`gd`, :func:`sam` (``ascent_steps=``, ``norm=``,
  ``accumulate=``), :func:`usam`; the options every factory shares (momentum or an optax base,
  schedules, weight-decay placement).
* :mod:`~samdyn.optim.variants` — :func:`asam`, :func:`msam`, :func:`gsam`, :func:`xsam` and their
  oracles (:class:`LossOracle`, :class:`MicroBatchOracle`, :func:`batch_oracle`).
* :mod:`~samdyn.optim.schedules` — ρ and learning-rate schedules on the step counter.
* :mod:`~samdyn.optim.optax_bridge` — :func:`as_optax` (a samdyn optimizer in an optax loop) and
  :func:`from_optax` (an optax base such as Adam under SAM's ascent).
* :mod:`~samdyn.optim.sharpness` — λ_max, the Hessian trace (Hutchinson), worst-case and
  m-sharpness.
"""

from . import core, optax_bridge, schedules, sharpness, variants
from .core import (HParams, Optimizer, OptaxState, OptState, StepInfo, gd, hparams, sam, tree_norm, tree_vdot,
                   usam)
from .optax_bridge import as_optax, from_optax
from .sharpness import hessian_trace, lambda_max, m_sharpness, worst_case_sharpness
from .variants import LossOracle, MicroBatchOracle, asam, batch_oracle, gsam, msam, xsam

__all__ = [
    "HParams", "OptState", "OptaxState", "StepInfo", "Optimizer", "hparams", "gd", "sam", "usam", "tree_norm",
    "tree_vdot", "asam", "msam", "gsam", "xsam", "LossOracle", "MicroBatchOracle", "batch_oracle", "schedules",
    "as_optax", "from_optax", "lambda_max", "hessian_trace", "worst_case_sharpness", "m_sharpness",
    "core", "variants", "optax_bridge", "sharpness",
]
