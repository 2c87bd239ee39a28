"""Benchmark samdyn.stability: a 256×256 (η, ρ) phase diagram and a 256×256 basin map (10⁴ steps).

Times are medians over ``--reps`` repetitions after a warm-up call. Compile time is reported
separately: for the phase diagram, first call − median; for the basin maps, first − second call on
one 4096-start chunk (the same compiled program the full grid then reuses). Baselines measured in the same run:

* phase diagram vs the scalar path (``classify`` in a Python loop) on a sample of grid points,
  extrapolated to the full grid;
* basin map vs the bare ``simulate`` of the same starts and steps (the assignment overhead).

Writes ``experiments/out/bench_stability/bench_stability.json``. Run: ``python experiments/bench_stability.py``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
from pathlib import Path

import jax
import numpy as np

import samdyn as sd
from samdyn import stability as st

import benchmarks  # noqa: E402  (same folder)
from _paths import out_dir  # noqa: E402


def timed(fn, reps):
    """(result, {first_s, median_s, compile_s}) with the harness's timing rule (``benchmarks.timed``)."""
    med, first, out = benchmarks.timed(fn, reps)
    return out, {"first_s": first, "median_s": med, "compile_s": max(first - med, 0.0)}


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--n", type=int, default=256, help="grid side")
    parser.add_argument("--steps", type=int, default=10_000)
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument("--out", default=str(out_dir("bench_stability") / "bench_stability.json"))
    args = parser.parse_args()

    f = sd.landscapes.get("beale")
    saddle = next(c for c in f.critical_points() if c.exact == (0, 1))
    rho_star = float(st.rho_threshold(f, saddle))
    n = args.n
    results = {
        "machine": {"cpus": os.cpu_count(), "platform": platform.platform(), "jax": jax.__version__, "devices": str(jax.devices())},
        "grid": n,
        "steps": args.steps,
    }

    # ---- phase diagram: USAM at Beale's saddle over (η, ρ) ------------------------------------
    lr = np.geomspace(1e-4, 0.1, n)
    rho = np.linspace(0.0, 4 * rho_star, n)
    for mom in (0.0, 0.9):
        pd, t = timed(lambda mom=mom: st.phase_diagram(sd.optim.usam(), f, saddle, lr, rho, mom), args.reps)
        t["attractor_fraction"] = float(np.mean(pd.kind == 0))
        results[f"phase_diagram_usam_momentum{mom}"] = t
        print(f"phase diagram {n}x{n} (γ={mom}): median {t['median_s']:.3f} s, compile {t['compile_s']:.2f} s")
    # baseline: scalar classify loop on 200 grid points
    rng = np.random.default_rng(0)
    idx = rng.integers(0, n, size=(200, 2))
    st.classify(sd.optim.usam(), f, saddle, sd.optim.hparams(lr=lr[0], rho=rho[0]))
    t0 = time.perf_counter()
    for i, j in idx:
        st.classify(sd.optim.usam(), f, saddle, sd.optim.hparams(lr=lr[i], rho=rho[j]))
    per_point = (time.perf_counter() - t0) / len(idx)
    results["classify_loop_per_point_s"] = per_point
    results["classify_loop_extrapolated_full_grid_s"] = per_point * n * n
    results["phase_diagram_speedup_vs_loop"] = per_point * n * n / results["phase_diagram_usam_momentum0.0"]["median_s"]
    print(f"classify loop: {per_point * 1e3:.2f} ms/point -> {per_point * n * n:.1f} s for the grid")

    # ---- basin map: SAM and GD on Beale from a 256×256 grid of starts ---------------------------
    xs = np.linspace(-4.5, 4.5, n)
    x0 = np.stack(np.meshgrid(xs, xs, indexing="ij"), axis=-1)
    for name, opt, hp, dtype in [
        ("sam_float64", sd.optim.sam(), sd.optim.hparams(lr=1e-3, rho=0.05), "float64"),
        ("sam_float32", sd.optim.sam(), sd.optim.hparams(lr=1e-3, rho=0.05), "float32"),
        ("gd_float64", sd.optim.gd(), sd.optim.hparams(lr=1e-3), "float64"),
    ]:
        # compile time: the chunk program is the same for any batch of >= 4096 starts (chunks of 4096),
        # so time a first and a second call on one chunk; the difference is the compile
        probe = x0.reshape(-1, 2)[:4096]
        t0 = time.perf_counter()
        st.basins(f, opt, hp, probe, args.steps, dtype=dtype)
        probe_first = time.perf_counter() - t0
        t0 = time.perf_counter()
        st.basins(f, opt, hp, probe, args.steps, dtype=dtype)
        probe_second = time.perf_counter() - t0
        b, t = timed(lambda opt=opt, hp=hp, dtype=dtype: st.basins(f, opt, hp, x0, args.steps, dtype=dtype), args.reps)
        t["compile_s"] = probe_first - probe_second
        _, tsim = timed(lambda opt=opt, hp=hp, dtype=dtype: sd.simulate(f, opt, hp, x0, args.steps, dtype=dtype), args.reps)
        labels, counts = np.unique(b.labels, return_counts=True)
        t["labels"] = {int(k): int(v) for k, v in zip(labels, counts)}
        t["cycling"] = int(b.cycling.sum())
        t["simulate_median_s"] = tsim["median_s"]
        t["assignment_overhead"] = t["median_s"] / tsim["median_s"] - 1
        t["particle_steps_per_s"] = n * n * args.steps / t["median_s"]
        results[f"basins_{name}"] = t
        print(f"basins {name} {n}x{n}, {args.steps} steps: median {t['median_s']:.2f} s (simulate {tsim['median_s']:.2f} s), "
              f"compile {t['compile_s']:.2f} s, labels {t['labels']}")

    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(results, indent=2, sort_keys=True))
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
