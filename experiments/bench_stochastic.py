"""Benchmark: stochastic SAM, 10⁵ particles × 10³ steps on a 2-D landscape in float32.

Compares, in the same run, ``samdyn.simulate`` (one jitted ``lax.scan`` per chunk of particles,
particles on the last axis) with the same computation in vectorised NumPy (arrays of shape
(2, particles), the gradient lambdified from the same sympy expression, float32 throughout,
additive Gaussian noise shared by SAM's two gradients). Reports particle-steps per second (median
of ``--reps`` timed repetitions; JAX's compile time measured separately as first call − median),
and the stats mode (moments, MSD, ball exits and a loss histogram every 10 steps, inside the scan).
JAX runs both ``jax.random.normal`` (threefry) and ``noise.fast_normal`` (``sampler="fast"``), and
the exact-gradient step (no random numbers) for the cost breakdown. Also records the peak resident memory of a streaming-statistics run with 10⁶ particles.

Usage: python experiments/bench_stochastic.py [--particles 100000] [--steps 1000] [--reps 3]
Writes experiments/out/bench_stochastic/bench_stochastic.json. The memory target (10⁶ particles × 10⁴ steps):
python experiments/bench_stochastic.py --memory-only --memory-steps 10000
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import time

import numpy as np
import sympy as sp

import samdyn as sd
from samdyn import noise
from samdyn.streaming import particle_stats

from _paths import out_dir  # same folder

LANDSCAPE = "himmelblau"
LR, RHO, STD, EPS = 0.005, 0.05, 0.5, 1e-12
X0 = (0.5, 0.5)


def numpy_sam(f, particles: int, steps: int, seed: int = 0) -> np.ndarray:
    """Vectorised NumPy float32 SAM with additive noise (same draw for both gradients)."""
    gx, gy = (sp.lambdify(f.symbols, e, "numpy") for e in f.grad_expr)
    rng = np.random.default_rng(seed)
    w = np.empty((2, particles), dtype=np.float32)
    w[0], w[1] = X0
    lr, rho, std, eps = np.float32(LR), np.float32(RHO), np.float32(STD), np.float32(EPS)
    g = np.empty_like(w)
    for _ in range(steps):
        xi = rng.standard_normal((2, particles), dtype=np.float32) * std
        g[0], g[1] = gx(w[0], w[1]), gy(w[0], w[1])
        g += xi
        scale = rho / (np.sqrt(g[0] * g[0] + g[1] * g[1]) + eps)
        p = w + g * scale
        g[0], g[1] = gx(p[0], p[1]), gy(p[0], p[1])
        g += xi
        w -= lr * g
    return w


def timed(fn, reps):
    first = time.perf_counter()
    fn()
    first = time.perf_counter() - first
    times = []
    for _ in range(reps):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return first, statistics.median(times), times


def peak_rss_child(particles: int, steps: int) -> dict:
    """Peak RSS (MiB) of a fresh process running a streaming-statistics run."""
    code = (
        "import resource, time, numpy as np, samdyn as sd\n"
        "from samdyn import noise\nfrom samdyn.streaming import particle_stats\n"
        f"f = sd.landscapes.get({LANDSCAPE!r})\n"
        "spec = particle_stats(radius=1.0, loss_edges=np.linspace(0, 200, 65))\n"
        "base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss\n"
        "t = time.perf_counter()\n"
        f"run = sd.simulate(f, sd.optim.sam(), sd.optim.hparams(lr={LR}, rho={RHO}), list({X0}), {steps},"
        f" noise=noise.gaussian(std={STD}, sampler='fast'), particles={particles}, stats=spec, every=10, dtype='float32')\n"
        "print(base / 1024, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, time.perf_counter() - t)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.split()
    return {"particles": particles, "steps": steps, "every": 10, "rss_after_import_mib": float(out[0]),
            "peak_rss_mib": float(out[1]), "seconds": float(out[2])}


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--particles", type=int, default=100_000)
    ap.add_argument("--steps", type=int, default=1000)
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--chunk", type=int, default=4096)
    ap.add_argument("--memory-particles", type=int, default=1_000_000)
    ap.add_argument("--memory-steps", type=int, default=1000)
    ap.add_argument("--memory-only", action="store_true",
                    help="only the peak-RSS run; writes out/bench_stochastic/bench_stochastic_memory.json")
    args = ap.parse_args()
    if args.memory_only:
        memory = peak_rss_child(args.memory_particles, args.memory_steps)
        print(f"memory: {memory}")
        path = out_dir("bench_stochastic") / "bench_stochastic_memory.json"
        with open(path, "w") as fh:
            json.dump({**memory, "load_average_1_5_15min": os.getloadavg()}, fh, indent=2)
        return
    P, T = args.particles, args.steps
    f = sd.landscapes.get(LANDSCAPE)
    hp = sd.optim.hparams(lr=LR, rho=RHO, dtype="float32")
    models = {"threefry": noise.gaussian(std=STD), "fast": noise.gaussian(std=STD, sampler="fast")}
    x0 = np.broadcast_to(np.array(X0), (P, 2))
    opt = sd.optim.sam(eps=EPS)
    spec = particle_stats(radius=1.0, loss_edges=np.linspace(0, 200, 65))

    def jax_final(sampler):
        return lambda: sd.simulate(f, opt, hp, x0, T, noise=models[sampler], dtype="float32",
                                   chunk_size=args.chunk).final

    def jax_stats(sampler):
        return lambda: sd.simulate(f, opt, hp, list(X0), T, noise=models[sampler], dtype="float32",
                                   chunk_size=args.chunk, particles=P, stats=spec, every=10).stats

    def jax_exact():
        return sd.simulate(f, opt, hp, x0, T, dtype="float32", chunk_size=args.chunk).final

    def np_run():
        return numpy_sam(f, P, T)

    results = {}
    cases = [("numpy", np_run), ("jax_simulate", jax_final("threefry")), ("jax_stats", jax_stats("threefry")),
             ("jax_simulate_fast", jax_final("fast")), ("jax_stats_fast", jax_stats("fast")),
             ("jax_exact_gradient_no_rng", jax_exact)]
    for name, fn in cases:
        first, med, times = timed(fn, args.reps)
        results[name] = {
            "median_s": med, "times_s": times, "first_call_s": first,
            "compile_s": max(first - med, 0.0) if name != "numpy" else 0.0,
            "particle_steps_per_s": P * T / med,
        }
        print(f"{name:26s} median {med:8.3f} s  {P * T / med / 1e6:8.2f} M particle-steps/s  (first call {first:.2f} s)",
              flush=True)
    # the two implementations agree in distribution (different random streams): compare means
    wj, wn = np.asarray(jax_final("fast")()), numpy_sam(f, P, T).T
    agree = {"mean_jax": wj.mean(0).tolist(), "mean_numpy": wn.mean(0).tolist(),
             "std_jax": wj.std(0).tolist(), "std_numpy": wn.std(0).tolist()}
    base = results["numpy"]["particle_steps_per_s"]
    speedups = {k: v["particle_steps_per_s"] / base for k, v in results.items() if k != "numpy"}
    for k, v in speedups.items():
        print(f"speed-up vs numpy, {k}: {v:.2f}x")
    memory = peak_rss_child(args.memory_particles, args.memory_steps) if args.memory_particles else None
    if memory:
        print(f"memory: {memory}")
    out = {
        "benchmark": "stochastic SAM, additive Gaussian noise (shared draw), float32",
        "landscape": LANDSCAPE, "lr": LR, "rho": RHO, "noise_std": STD, "x0": X0,
        "particles": P, "steps": T, "reps": args.reps, "chunk_size": args.chunk,
        "results": results, "speedup_vs_numpy": speedups,
        "load_average_1_5_15min": os.getloadavg(),
        "target_speedup": 10.0, "distribution_check": agree, "memory": memory,
        "machine": {"cpus": os.cpu_count(), "platform": platform.platform(), "python": platform.python_version(),
                    "numpy": np.__version__, "jax": __import__("jax").__version__},
    }
    path = out_dir("bench_stochastic") / "bench_stochastic.json"
    with open(path, "w") as fh:
        json.dump(out, fh, indent=2)
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
