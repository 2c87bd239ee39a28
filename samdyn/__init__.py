"""samdyn: Sharpness-Aware Minimization as a dynamical system.

Importing samdyn turns on JAX's float64 support (``jax_enable_x64``): analysis and tests run in
float64, and a simulation picks its own precision with ``dtype=`` (float32 for throughput).

>>> import samdyn as sd
>>> f = sd.landscapes.get("beale")
>>> run = sd.simulate(f, sd.optim.sam(), sd.optim.hparams(lr=1.25e-5, rho=0.5), x0=[1.0, 2.0], steps=100)
>>> run.final.shape
(2,)
"""

import jax

jax.config.update("jax_enable_x64", True)

from . import diffusion, landscapes, noise, optim, stability, streaming  # noqa: E402
from .simulation import Run, simulate  # noqa: E402
from .streaming import ParticleStats, particle_stats  # noqa: E402

__all__ = [
    "diffusion", "landscapes", "noise", "optim", "stability", "streaming",
    "simulate", "Run", "particle_stats", "ParticleStats",
]
__version__ = "0.1.0"
