"""Gradient oracles for one step: how ``simulate`` turns a problem's exact gradient into a noisy one.

A noise model is any object with two methods:

* ``sample(key, params, lanes) -> draws`` — the randomness of one step for ``lanes`` particles at
  once (one vectorised draw; every array leaf carries the particle axis *last*). ``params`` is the
  particle cloud, a pytree whose leaves have shape ``(*leaf_shape, lanes)``.
* ``oracle(problem, draws) -> grad_fn`` — for *one* particle's ``draws`` (particle axis removed),
  the function ``params -> grads`` that the optimizer's ``step`` calls. SAM calls it twice per step;
  whether both calls see the same draw (the default in practice: one minibatch per step) or
  independent ones is the model's choice.

``simulate(problem, opt, hp, x0, steps, noise=None)`` uses the exact gradient. Keys come from
``fold_in(fold_in(PRNGKey(seed), chunk_index), step)`` so a spec gives the same bits on any
executor, with the chunk size recorded in the run.
"""

from __future__ import annotations

from typing import Any, Callable, Protocol

__all__ = ["NoiseModel", "exact_oracle"]


class NoiseModel(Protocol):
    """The protocol a gradient-noise model follows (see the module docstring)."""

    def sample(self, key, params, lanes: int) -> Any:
        """Draws for one step, particle axis last on every leaf."""

    def oracle(self, problem, draws) -> Callable:
        """``params -> grads`` for one particle, given its draws."""


def exact_oracle(problem) -> Callable:
    """The noiseless oracle: the problem's exact gradient."""
    return problem.grad
