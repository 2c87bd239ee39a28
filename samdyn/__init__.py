"""samdyn: Sharpness-Aware Minimization as a dynamical system.

Importing samdyn turns on JAX's float64 support (``jax_enable_x64``): analysis and tests run in
float64, and a simulation picks its own precision with ``dtype=`` (float32 for throughput). If JAX
has not started yet, it also asks for one CPU device per core, over which ``simulate`` spreads its
chunks (``SAMDYN_CPU_DEVICES=1`` turns that off).

>>> import samdyn as sd
>>> f = sd.landscapes.get("beale")
>>> run = sd.simulate(f, sd.optim.sam(), sd.optim.hparams(lr=1.25e-5, rho=0.5), x0=[1.0, 2.0], steps=100)
>>> run.final.shape
(2,)
"""

import os

import jax

jax.config.update("jax_enable_x64", True)


def _use_all_cores() -> None:
    """One JAX CPU device per usable core, so ``simulate`` can run chunks on all of them.

    Only before JAX's backends start and when the user has not chosen a count (``XLA_FLAGS``'s
    ``--xla_force_host_platform_device_count`` or ``jax_num_cpu_devices``); ``SAMDYN_CPU_DEVICES=n``
    overrides the count. Everything else still runs on device 0.
    """
    if "xla_force_host_platform_device_count" in os.environ.get("XLA_FLAGS", ""):
        return
    if jax.config.values.get("jax_num_cpu_devices", -1) != -1:
        return
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    try:
        jax.config.update("jax_num_cpu_devices", int(os.environ.get("SAMDYN_CPU_DEVICES", cores)))
    except RuntimeError:  # backends already started: keep what they have
        pass


_use_all_cores()

from . import diffusion, hessian, landscapes, nets, noise, optim, stability, streaming  # noqa: E402
from .simulation import Run, simulate  # noqa: E402
from .streaming import ParticleStats, particle_stats  # noqa: E402

__all__ = [
    "diffusion", "hessian", "landscapes", "nets", "noise", "optim", "stability", "streaming",
    "simulate", "Run", "particle_stats", "ParticleStats",
]
__version__ = "0.1.0"
