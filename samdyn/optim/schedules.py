"""Schedules for ρ and the learning rate: multipliers of ``hp.rho`` / ``hp.lr`` as functions of the step.

A schedule is a small frozen dataclass (hashable, so the optimizer that carries it is cached and
compiled once) whose call ``s(count)`` returns a factor; the optimizer uses ``hp.lr · s_lr(count)``
and ``hp.rho · s_rho(count)``, with ``count`` the step counter in its state (0 at the first step,
the convention of optax's schedules). The *scale* stays a traced hyperparameter (``hp.lr``,
``hp.rho``: a grid of them compiles once); the *shape* (length, end value, warm-up) is static.

* :func:`constant` — 1.
* :func:`linear` — from 1 to ``end`` over ``steps``, after an optional linear warm-up from 0.
* :func:`cosine` — ``end + (1 − end)(1 + cos(π τ))/2`` with ``τ`` the fraction of ``steps`` done
  after the warm-up.
* :func:`tied` — GSAM's proportional rule (Zhuang et al. 2022, their ``ProportionScheduler``):
  ``(ρ_t − ρ_min)/(ρ_max − ρ_min) = (η_t − η_min)/(η_max − η_min)`` with ``ρ_max = hp.rho``,
  ``ρ_min = floor · hp.rho``, ``η_max = hp.lr`` and ``η_min = end · hp.lr`` of the given learning-rate
  schedule. If that schedule is constant, ρ is constant too (as in GSAM).

A scheduled optimizer's map depends on the step: ``T_t``. ``samdyn.stability`` builds the state
``OptState(v)`` without a counter, which reads as ``count = 0``: its Jacobians and classifications are
those of ``T_0``; the map at step t is the unscheduled map with ``ρ_t``, ``η_t`` (pass those as ``hp``).

After ``steps`` the factor stays at ``end``. Warm-up, as in GSAM's ``SchedulerBase``: factor
``count / warmup`` for ``count < warmup``, then the decay over ``[warmup, steps]``.

>>> s = cosine(100, end=0.1)
>>> [round(float(s(t)), 6) for t in (0, 50, 100, 1000)]
[1.0, 0.55, 0.1, 0.1]
>>> rho = tied(linear(100, end=0.0), floor=0.5)
>>> [round(float(rho(t)), 6) for t in (0, 50, 100)]
[1.0, 0.75, 0.5]
"""

from __future__ import annotations

import dataclasses
import math

import jax.numpy as jnp

from .. import checks

__all__ = ["Schedule", "constant", "linear", "cosine", "tied"]


@dataclasses.dataclass(frozen=True)
class Schedule:
    """A multiplier ``s(count)`` of a hyperparameter; build it with the functions of this module.

    Attributes:
        kind: ``"constant"``, ``"linear"``, ``"cosine"`` or ``"tied"``.
        steps: steps until the factor reaches ``end`` (counted from 0, warm-up included).
        end: the final factor.
        warmup: steps of linear warm-up from 0 to 1.
        floor: ``tied`` only: ρ_min / ρ_max.
        lr: ``tied`` only: the learning-rate schedule that ρ follows.
    """

    kind: str
    steps: int = 1
    end: float = 1.0
    warmup: int = 0
    floor: float = 0.0
    lr: "Schedule | None" = None

    def __call__(self, count):
        """The factor at step ``count`` (an int or an int array; returns a float array)."""
        t = jnp.asarray(count).astype(jnp.result_type(float))
        if self.kind == "constant":
            return jnp.ones_like(t)
        if self.kind == "tied":
            lo = self.lr.end
            if self.lr.kind == "constant" or lo == 1.0:
                return jnp.ones_like(t)
            return self.floor + (1.0 - self.floor) * (self.lr(count) - lo) / (1.0 - lo)
        span = max(self.steps - self.warmup, 1)
        tau = jnp.clip((t - self.warmup) / span, 0.0, 1.0)
        if self.kind == "linear":
            decay = 1.0 + (self.end - 1.0) * tau
        else:
            decay = self.end + (1.0 - self.end) * 0.5 * (1.0 + jnp.cos(math.pi * tau))
        if self.warmup:
            return jnp.where(t < self.warmup, t / self.warmup, decay)
        return decay


def constant() -> Schedule:
    """The factor 1 at every step."""
    return Schedule("constant")


def _shape(where, steps, end, warmup):
    steps = checks.integer(where, "steps", steps, low=1)
    end = checks.real(where, "end", end, low=0.0)
    warmup = checks.integer(where, "warmup", warmup, low=0, high=steps - 1)
    return steps, end, warmup


def linear(steps: int, end: float = 0.0, *, warmup: int = 0) -> Schedule:
    """Linear from 1 (at ``count = warmup``) to ``end`` (at ``count = steps``), then ``end``.

    Args:
        steps: steps until the end value (≥ 1).
        end: final factor (≥ 0).
        warmup: steps of linear warm-up from 0 (``0 ≤ warmup < steps``).
    """
    return Schedule("linear", *_shape("schedules.linear", steps, end, warmup))


def cosine(steps: int, end: float = 0.0, *, warmup: int = 0) -> Schedule:
    """Cosine from 1 (at ``count = warmup``) to ``end`` (at ``count = steps``), then ``end``."""
    return Schedule("cosine", *_shape("schedules.cosine", steps, end, warmup))


def tied(lr_schedule: Schedule, floor: float = 0.0) -> Schedule:
    """ρ proportional to the learning rate, as GSAM's ``ProportionScheduler``.

    Args:
        lr_schedule: the optimizer's learning-rate schedule (its ``end`` is η_min / η_max).
        floor: ρ_min / ρ_max in [0, 1].

    Returns:
        ``s(t) = floor + (1 − floor)(s_lr(t) − end)/(1 − end)`` (1 when ``lr_schedule`` is constant).
    """
    checks.instance("schedules.tied", "lr_schedule", lr_schedule, Schedule, "a samdyn.optim.schedules schedule")
    if lr_schedule.kind == "tied":
        checks.fail("schedules.tied", "lr_schedule", "a learning-rate schedule (not another tied one)", lr_schedule)
    floor = checks.real("schedules.tied", "floor", floor, low=0.0, high=1.0)
    return Schedule("tied", lr_schedule.steps, floor, lr_schedule.warmup, floor, lr_schedule)
