"""Sweep benchmarks (issue 12), rows 7 of ``make bench``: bookkeeping, memory, Dask.

* 7a. ``samdyn.sweep.run`` (in-process, store written) of 10⁴ (ρ, γ) configurations × 10³ steps ×
  64 initial points on a 2-D landscape, against one direct ``simulate`` call over the same grid
  (target: ≤ 1.15×, i.e. bookkeeping, writing and merging ≤ 15 %).
* 7b. Peak RSS of a sweep whose full result is 10× its chunk budget, against one of 1× (each in a
  fresh process): flat memory means about the same peak.
* 7c. Dask with 2 local workers against in-process, on a warm cluster (workers started and
  compiled before timing), and the per-chunk overhead in ms from a sweep of many tiny chunks.

``python experiments/bench_sweep.py [--quick]`` prints the rows; ``benchmarks.py`` calls
:func:`bench_sweep_rows`.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

import samdyn as sd
from samdyn import sweep

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent


def grid_spec(n_cfg: int, steps: int, n_pts: int, chunk=None) -> dict:
    """The grid of ``benchmarks.bench_grid``: SAM on the saddle, ρ × γ, ``n_pts`` starts, float32."""
    rng = np.random.default_rng(1)
    n_rho = int(np.sqrt(n_cfg))
    return {
        "problem": {"landscape": "saddle"}, "optimizer": {"name": "sam"},
        "grid": {"lr": 1e-3, "rho": np.linspace(0.0, 0.5, n_rho).tolist(),
                 "momentum": np.linspace(0.0, 0.95, n_cfg // n_rho).tolist()},
        "run": {"x0": rng.normal(scale=0.1, size=(n_pts, 2)).tolist(), "steps": steps, "dtype": "float32",
                "chunk": chunk},
    }


def timed_sweep(spec, executor=None) -> float:
    folder = Path(tempfile.mkdtemp(prefix="samdyn-bench-"))
    try:
        t0 = time.perf_counter()
        sweep.run(spec, folder / "store", executor=executor, progress=False)
        return time.perf_counter() - t0
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def bench_bookkeeping(reps: int, quick: bool):
    n_cfg, steps, n_pts = (400, 200, 64) if quick else (10_000, 1_000, 64)
    spec = sweep.load_spec(grid_spec(n_cfg, steps, n_pts))
    grid = dict(spec.grid)
    hp = sd.optim.hparams(lr=1e-3, rho=np.asarray(grid["rho"])[:, None], momentum=np.asarray(grid["momentum"])[None, :])
    x0 = np.asarray(spec.data["run"]["x0"]["points"])
    f, opt = sd.landscapes.get("saddle"), sd.optim.sam()

    def direct():
        return sd.simulate(f, opt, hp, x0, steps, dtype="float32")

    direct()
    timed_sweep(spec)  # warm-up: compile
    ours = float(np.median([timed_sweep(spec) for _ in range(reps)]))
    base = float(np.median([_time(direct) for _ in range(reps)]))
    p = sweep.make_plan(spec)
    return {"configs": len(grid["rho"]) * len(grid["momentum"]), "steps": steps, "points": n_pts, "sweep_s": ours,
            "simulate_s": base, "ratio": ours / base, "chunks": p.n_chunks, "lanes": p.lanes}


def _time(fn) -> float:
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


MEMORY_SCRIPT = """
import json, resource, sys, tempfile, time
from samdyn import sweep
spec = json.loads(sys.argv[1])
with tempfile.TemporaryDirectory() as d:
    t0 = time.perf_counter()
    sweep.run(spec, d + "/store", progress=False)
    seconds = time.perf_counter() - t0
print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss, seconds)
"""


def bench_memory(quick: bool):
    """Peak RSS (MiB) of sweeps whose result is 1× and 10× the chunk budget, each in a fresh process."""
    steps, every, n_pts = (200, 2, 2_000) if quick else (1_000, 2, 20_000)
    per_chunk = n_pts * (steps // every) * 2 * 4  # one rho value: the trajectory of every start
    out = {"chunk_result_mib": per_chunk / 2**20}
    for n_rho in (1, 10):
        spec = {
            "problem": {"landscape": "saddle"}, "optimizer": {"name": "sam"},
            "grid": {"lr": 1e-3, "rho": np.linspace(0, 0.5, n_rho).tolist() if n_rho > 1 else 0.1},
            "run": {"x0": {"grid": [int(np.sqrt(n_pts)), n_pts // int(np.sqrt(n_pts))],
                           "domain": [[-0.5, 0.5], [-0.5, 0.5]]},
                    "steps": steps, "every": every, "dtype": "float32", "observables": ["trajectory"],
                    "chunk": n_pts},
        }
        env = {**os.environ, "PYTHONPATH": str(ROOT), "SAMDYN_CPU_DEVICES": "1"}
        proc = subprocess.run([sys.executable, "-c", MEMORY_SCRIPT, json.dumps(spec)], capture_output=True, text=True,
                              env=env, check=True)
        rss, seconds = proc.stdout.split()[-2:]
        out[f"peak_rss_mib_{n_rho}x"], out[f"seconds_{n_rho}x"] = int(rss) / 1024, float(seconds)
    return out


def bench_dask(quick: bool):
    """Warm 2-worker LocalCluster vs in-process: the same sweep, and a sweep of many tiny chunks."""
    from distributed import Client, LocalCluster

    particles, steps = (256, 200) if quick else (4096, 1000)
    spec = sweep.load_spec({
        "problem": {"landscape": "saddle"}, "optimizer": {"name": "sam"}, "noise": {"kind": "gaussian", "std": 0.3},
        "grid": {"lr": 0.01, "rho": np.linspace(0, 0.2, 16).tolist(), "momentum": 0.9},
        "run": {"x0": [0.0, 0.0], "particles": particles, "steps": steps, "chunk": 1, "observables": ["msd"]},
    })
    tiny = sweep.load_spec({
        "problem": {"landscape": "saddle"}, "optimizer": {"name": "gd"},
        "grid": {"lr": 0.01, "rho": np.linspace(0, 0.2, 64).tolist()},
        "run": {"x0": [0.1, 0.1], "steps": 1, "chunk": 1},
    })
    env = {"SAMDYN_CPU_DEVICES": "1", "PYTHONPATH": str(ROOT)}
    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True, host="127.0.0.1", dashboard_address=None,
                      worker_dashboard_address=None, env=env) as cluster, Client(cluster):
        executor = sweep.Dask(scheduler=cluster.scheduler_address)
        for s in (spec, tiny):  # warm: every worker compiles both programs
            timed_sweep(s, executor)
            timed_sweep(s, executor)
        dask_s, dask_tiny = timed_sweep(spec, executor), timed_sweep(tiny, executor)
    timed_sweep(spec)
    timed_sweep(tiny)
    local_s, local_tiny = timed_sweep(spec), timed_sweep(tiny)
    n_tiny = sweep.make_plan(tiny).n_chunks
    return {"chunks": sweep.make_plan(spec).n_chunks, "dask_s": dask_s, "in_process_s": local_s,
            "ratio": dask_s / local_s, "tiny_chunks": n_tiny, "dask_ms_per_chunk": 1e3 * dask_tiny / n_tiny,
            "in_process_ms_per_chunk": 1e3 * local_tiny / n_tiny,
            "dask_overhead_ms_per_chunk": 1e3 * (dask_tiny - local_tiny) / n_tiny}


def bench_sweep_rows(reps: int, quick: bool, row) -> list:
    """The sweep rows of ``make bench``, made with ``benchmarks.row``."""
    b = bench_bookkeeping(max(1, reps // 2), quick)
    rows = [row(f"7. samdyn sweep vs one simulate: {b['configs']} (rho, gamma) x {b['steps']} steps x {b['points']} starts",
                b["sweep_s"], "one direct simulate over the grid", b["simulate_s"], target=1.15, at_most=True,
                work=b["configs"] * b["points"] * b["steps"],
                note=f"{b['chunks']} chunk(s), {b['lanes']} lanes; store written")]
    m = bench_memory(quick)
    rows.append(row(f"7. sweep whose result is 10x its chunk budget ({m['chunk_result_mib']:.0f} MiB per chunk)",
                    m["seconds_10x"], "-", None,
                    note=f"peak RSS {m['peak_rss_mib_10x']:.0f} MiB vs {m['peak_rss_mib_1x']:.0f} MiB for a 1x result"))
    try:
        d = bench_dask(quick)
    except ImportError:
        rows.append(row("7. Dask 2 local workers vs in-process", float("nan"), "in-process", None,
                        note="skipped: dask[distributed] not installed"))
        return rows
    rows.append(row(f"7. Dask 2 local workers vs in-process ({d['chunks']} chunks, warm cluster)", d["dask_s"],
                    "in-process", d["in_process_s"], at_most=True,
                    note=f"overhead {d['dask_overhead_ms_per_chunk']:.1f} ms/chunk ({d['tiny_chunks']} tiny chunks: "
                         f"{d['dask_ms_per_chunk']:.1f} vs {d['in_process_ms_per_chunk']:.1f} ms)"))
    return rows


if __name__ == "__main__":
    sys.path.insert(0, str(HERE))
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--reps", type=int, default=3)
    args = parser.parse_args()
    from benchmarks import row

    for r in bench_sweep_rows(args.reps, args.quick, row):
        print(json.dumps(r))
