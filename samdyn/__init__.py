"""samdyn: Sharpness-Aware Minimization as a dynamical system.

Importing samdyn turns on JAX's float64 support (``jax_enable_x64``): analysis and tests run in
float64, and a simulation picks its own precision with ``dtype=`` (float32 for throughput). If JAX
has not started yet, it also asks for one CPU device per core, over which ``simulate`` spreads its
chunks (``SAMDYN_CPU_DEVICES=1`` turns that off). Imported after JAX was already used (a notebook
that ran JAX first), it warns once, saying what it changed and what it could not set.

>>> import samdyn as sd
>>> f = sd.landscapes.get("beale")
>>> run = sd.simulate(f, sd.optim.sam(), sd.optim.hparams(lr=1.25e-5, rho=0.5), x0=[1.0, 2.0], steps=100)
>>> run.final.shape
(2,)
"""

import os
import warnings

import jax


def _configure_jax() -> None:
    """float64 on, and one JAX CPU device per usable core so ``simulate`` can run chunks on all of them.

    The device count can only be set before JAX's backends start, and only when the user has not
    chosen one (``XLA_FLAGS``' ``--xla_force_host_platform_device_count`` or ``jax_num_cpu_devices``);
    ``SAMDYN_CPU_DEVICES=n`` overrides it. When JAX was already in use (the usual notebook order),
    samdyn warns once, saying what it changed and what it could not set.
    """
    in_use = _jax_was_in_use()
    changed, missed = [], []
    if not jax.config.jax_enable_x64:
        jax.config.update("jax_enable_x64", True)
        changed.append("turned on JAX's float64 mode (jax_enable_x64): arrays created from now on default to "
                       "float64 (simulate(dtype='float32') still runs in float32)")
    user_chose = ("xla_force_host_platform_device_count" in os.environ.get("XLA_FLAGS", "")
                  or jax.config.values.get("jax_num_cpu_devices", -1) != -1)
    if not user_chose:
        cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
        wanted = int(os.environ.get("SAMDYN_CPU_DEVICES", cores))
        try:
            jax.config.update("jax_num_cpu_devices", wanted)
        except RuntimeError:  # backends already started: keep what they have
            if wanted > 1 and jax.default_backend() == "cpu" and len(jax.local_devices()) < wanted:
                missed.append(f"could not ask for one JAX CPU device per core ({wanted}): JAX had already started "
                              f"with {len(jax.local_devices())}, so simulate uses that many cores; import samdyn "
                              "before any JAX computation (first cell of the notebook) to use all of them")
    if (changed or missed) and in_use:
        warnings.warn("import samdyn after JAX was already in use: " + "; ".join(changed + missed), stacklevel=3)


def _jax_was_in_use() -> bool:
    """True when JAX's backends had started before samdyn was imported (JAX then refuses a new CPU
    device count; the probe restores the setting it tried)."""
    current = jax.config.values.get("jax_num_cpu_devices", -1)
    try:
        jax.config.update("jax_num_cpu_devices", current + 1)
    except RuntimeError:
        return True
    jax.config.update("jax_num_cpu_devices", current)
    return False


_configure_jax()

from . import (  # noqa: E402
    checks, diffusion, engine, hessian, landscapes, nets, noise, optim, plotting, reference, stability, streaming,
)
from .simulation import Run, simulate  # noqa: E402
from .streaming import ParticleStats, particle_stats  # noqa: E402

__all__ = [
    "checks", "diffusion", "engine", "hessian", "landscapes", "nets", "noise", "optim", "plotting", "reference",
    "stability", "streaming", "simulate", "Run", "particle_stats", "ParticleStats",
]
__version__ = "0.1.0"


def __getattr__(name):
    """``sd.sweep`` on first use (it brings xarray and zarr, which plain simulations do not need)."""
    if name == "sweep":
        import importlib

        return importlib.import_module(".sweep", __name__)
    raise AttributeError(f"module 'samdyn' has no attribute {name!r}")
