"""``make bench``: samdyn side by side with the baselines researchers use today, in one process run.

Every row times samdyn and a baseline in the same run (median of ``--reps`` repetitions after a
warm-up; compile time reported separately), prints a table and writes JSON with the machine
description to ``experiments/out/benchmarks/benchmarks.json``. Rows whose peer is missing (torch) say
"skipped". ``--quick`` shrinks every problem for a smoke test.

Rows (issue 6): 2-D particle throughput; the paper's Beale experiment vs an official-style torch
loop; hyperparameter grids through simulate's batching vs a Python loop; plus the rows that the
stochastic, stability, nets and sweep (``bench_sweep.py``) modules register in ``ROWS`` below.
Anchors (issue 11, ``anchors.py``): a blocked C kernel and a blocked numba kernel on the same particle workloads, the hardware bound of
the C kernel's instruction mix, and optax.contrib.sam in an ordinary training loop vs ``nets.train``;
a second table gives samdyn's rates as fractions of them.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import time
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np

import samdyn as sd

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from _paths import out_dir  # noqa: E402


def timed(fn, reps: int):
    """(median seconds over ``reps`` calls, seconds of the first call incl. compile, last result)."""
    t0 = time.perf_counter()
    out = fn()
    first = time.perf_counter() - t0
    times = []
    for _ in range(reps):
        t0 = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times), first, out


def row(group, ours_s, baseline, base_s, *, target=None, work=None, unit="particle-steps/s", compile_s=None, note="",
        at_most=False, anchor=None):
    """One table row: ratio = baseline time / samdyn time (a speed-up, higher is better).

    With ``at_most=True`` the ratio is samdyn time / baseline time and the target an upper bound
    (e.g. a SAM step costs at most 2.1 SGD steps). ``anchor``: a workload's rates for the anchors
    table (:func:`anchor_table`).
    """
    ratio = None if base_s is None else (ours_s / base_s if at_most else base_s / ours_s)
    meets = None if (ratio is None or target is None) else bool(ratio <= target if at_most else ratio >= target)
    return {
        "group": group, "samdyn_s": ours_s, "baseline": baseline, "baseline_s": base_s, "ratio": ratio,
        "target": target, "at_most": at_most, "meets_target": meets,
        "throughput": None if work is None else work / ours_s, "unit": unit if work else None,
        "compile_s": compile_s, "note": note, **({"anchor": anchor} if anchor else {}),
    }


def interleaved(fns: dict, reps: int):
    """Time several callables in the same run: a warm-up call each (its time, compile included, is
    ``first``), then ``reps`` rounds calling each in turn, so load drifts hit all of them alike.
    Returns ``({name: median s}, {name: first-call s}, {name: last result})``."""
    first, out, times = {}, {}, {k: [] for k in fns}
    for k, fn in fns.items():
        t0 = time.perf_counter()
        out[k] = fn()
        first[k] = time.perf_counter() - t0
    for _ in range(reps):
        for k, fn in fns.items():
            t0 = time.perf_counter()
            out[k] = fn()
            times[k].append(time.perf_counter() - t0)
    return {k: statistics.median(v) for k, v in times.items()}, first, out


# ---- 1. deterministic 2-D particle throughput ------------------------------------------------------

def rosenbrock_numpy(x, steps, lr, rho, eps=1e-12):
    """Normalised SAM on Rosenbrock (a=1, b=100), vectorised NumPy float32, particles last: x (2, N)."""
    x = x.astype(np.float32)
    lr, rho, eps = np.float32(lr), np.float32(rho), np.float32(eps)

    def grad(x):
        a = x[1] - x[0] * x[0]
        return np.stack([np.float32(-2) * (np.float32(1) - x[0]) - np.float32(400) * x[0] * a, np.float32(200) * a])

    for _ in range(steps):
        g = grad(x)
        e = g * (rho / (np.sqrt((g * g).sum(0)) + eps))
        x = x - lr * grad(x + e)
    return x


def bench_particles(reps, quick):
    n, steps = (10_000, 200) if quick else (100_000, 1_000)
    f, opt = sd.landscapes.get("rosenbrock"), sd.optim.sam()
    lr, rho = 1e-4, 0.05
    x0 = np.random.default_rng(0).uniform([-2, -1], [2, 3], size=(n, 2))
    hp = sd.optim.hparams(lr=lr, rho=rho)
    ours, first, run = timed(lambda: sd.simulate(f, opt, hp, x0, steps, dtype="float32"), reps)
    base, _, ref = timed(lambda: rosenbrock_numpy(x0.T, steps, lr, rho), max(1, reps // 2))
    # median, not max: a few particles sit where normalised SAM's ascent direction flips (g -> 0 in
    # the valley) and amplify rounding; float64 samdyn and float64 NumPy differ there just as much.
    agree = float(np.median(np.abs(run.final - ref.T)))

    hp32 = sd.optim.HParams(*(jnp.float32(v) for v in (lr, rho, 0.0)))

    def one(x):
        def body(carry, _):
            w, state = carry
            w, state, _ = opt.step(f.grad, w, state, hp32)
            return (w, state), None

        return jax.lax.scan(body, (x, opt.init(x)), None, length=steps)[0][0]

    naive = jax.jit(jax.vmap(one))
    xj = jnp.asarray(x0, jnp.float32)
    naive_s, _, _ = timed(lambda: naive(xj).block_until_ready(), reps)
    work = n * steps
    name = f"SAM on Rosenbrock, {n:.0e} particles x {steps} steps, float32"
    return [
        row(f"1. {name}", ours, "vectorised numpy", base, target=20, work=work, compile_s=first - ours,
            note=f"median |samdyn - numpy| = {agree:.1e}"),
        row(f"1. {name}", ours, "naive jax.vmap of a per-particle scan", naive_s, target=5, work=work),
    ]


# ---- 1, 3, 4. anchors (issue 11): a blocked C kernel, a blocked numba kernel, the hardware bound ----

def _anchor_kernels():
    import anchors

    (ck, c_note), (nk, nb_note) = anchors.c_kernels(), anchors.numba_kernels()
    return anchors, ck, c_note or ck.note, nk, nb_note or nk.note


def bench_anchors_rosenbrock(reps, quick):
    """Deterministic SAM on Rosenbrock (bench_particles' workload) vs the C and numba kernels and the bound."""
    anchors, ck, c_note, nk, nb_note = _anchor_kernels()
    n, steps = (10_000, 200) if quick else (100_000, 1_000)
    lr, rho = 1e-4, 0.05
    f, opt, hp = sd.landscapes.get("rosenbrock"), sd.optim.sam(), sd.optim.hparams(lr=lr, rho=rho)
    x0 = np.random.default_rng(0).uniform([-2, -1], [2, 3], size=(n, 2))
    fns = {"samdyn": lambda: sd.simulate(f, opt, hp, x0, steps, dtype="float32").final}
    if ck:
        fns["c"] = lambda: ck.sam_rosenbrock(x0, steps, lr, rho)
    if nk:
        fns["numba"] = lambda: nk.sam_rosenbrock(x0, steps, lr, rho)
    t, first, out = interleaved(fns, reps)
    work = n * steps
    rate = {k: work / v for k, v in t.items()}
    bound = anchors.machine_bound()
    on_cpu = jax.default_backend() == "cpu"

    def agree(k):
        # median, and the share of particles that normalised SAM's valley flips amplify (see row 1)
        d = np.abs(out[k] - out["samdyn"]).max(axis=1)
        return f"median |{k} - samdyn| = {np.median(d):.1e}, {np.mean(d > 1e-3):.1%} of particles > 1e-3"

    group = f"1. anchors: SAM on Rosenbrock, {n:.0e} particles x {steps} steps, float32"
    rows = [
        row(group, t["samdyn"], "blocked C kernel, OpenMP, exact sqrt/div", t.get("c"), target=0.5, work=work,
            compile_s=first["samdyn"] - t["samdyn"], note=f"{c_note}; {agree('c')}" if ck else c_note,
            anchor={"workload": "SAM, Rosenbrock", "samdyn": rate["samdyn"], "c": rate.get("c"), "numba": rate.get("numba"),
                    "bound": bound["bound"] if on_cpu else None, "bound_detail": bound}),
        row(group, t["samdyn"], "blocked numba kernel", t.get("numba"), work=work,
            note=f"{nb_note}; {agree('numba')}; numba's first call (compile or cache) {first['numba']:.1f}s" if nk else nb_note),
    ]
    if bound["bound"] is None or not on_cpu:
        why = bound["note"] if on_cpu else f"samdyn ran on {jax.default_backend()}; the bound is the CPU's"
        rows.append(row(group, t["samdyn"], "hardware bound", None, note=f"skipped: {why}"))
    else:
        units = ", ".join(f"{u} {r:.2g}/s" for u, r in bound["per_unit"].items())
        c_frac = f"; C kernel at {rate['c'] / bound['bound']:.2f} of it" if ck else ""
        rows.append(row(group, t["samdyn"],
                        f"hardware bound: {bound['cores']} cores x {bound['clock_hz'] / 1e9:.2f} GHz ({bound['clock_source']})",
                        work / bound["bound"], work=work,
                        note=f"{bound['ops']} per particle-step on {bound['core']['name']}: {units}{c_frac}"))
    return rows


def bench_anchors_noise(reps, quick):
    """Gaussian-noise SAM on x^2 - y^2 (fast sampler) vs samdyn's own noise-free rate and the kernels."""
    anchors, ck, c_note, nk, nb_note = _anchor_kernels()
    n, steps = (10_000, 200) if quick else (100_000, 1_000)
    lr, rho, std = 1e-3, 0.05, 0.5
    f, opt, hp = sd.landscapes.get("saddle"), sd.optim.sam(), sd.optim.hparams(lr=lr, rho=rho)
    x0 = np.random.default_rng(0).uniform(-1, 1, size=(n, 2))
    model = sd.noise.gaussian(std=std, sampler="fast")
    fns = {"samdyn": lambda: sd.simulate(f, opt, hp, x0, steps, noise=model, dtype="float32").final,
           "noise-free": lambda: sd.simulate(f, opt, hp, x0, steps, dtype="float32").final}
    if ck:
        fns["c"] = lambda: ck.sam_saddle_noise(x0, steps, lr, rho, std)
    if nk:
        fns["numba"] = lambda: nk.sam_saddle_noise(x0, steps, lr, rho, std)
    t, first, out = interleaved(fns, reps)
    work = n * steps
    rate = {k: work / v for k, v in t.items()}

    def agree(k):
        # different generators, same distribution: the noise's displacement from the noise-free run
        # (the kernels' noise-free step is samdyn's, see tests/test_bench_anchors.py) along y, the
        # escape direction; the std of a std over n particles has standard error about std / sqrt(2n)
        a, b = (out[j][:, 1] - out["noise-free"][:, 1] for j in (k, "samdyn"))
        z = abs(a.std() - b.std()) / np.sqrt(a.var() / (2 * n) + b.var() / (2 * n))
        return f"noise's spread in y: {k} {a.std():.4g}, samdyn {b.std():.4g} ({z:.1f} SE apart)"

    group = f"3. anchors: Gaussian-noise SAM on x^2 - y^2 (fast sampler), {n:.0e} particles x {steps} steps, float32"
    return [
        row(group, t["samdyn"], "samdyn noise-free, same landscape", t["noise-free"], target=0.5, work=work,
            compile_s=first["samdyn"] - t["samdyn"], note="ratio: noisy rate / noise-free rate",
            anchor={"workload": "noisy SAM, x^2 - y^2", "samdyn": rate["samdyn"], "c": rate.get("c"),
                    "numba": rate.get("numba"), "bound": None}),
        row(group, t["samdyn"], "blocked numba kernel, counter-hash normals", t.get("numba"), target=1, work=work,
            note=f"{nb_note}; {agree('numba')}" if nk else nb_note),
        row(group, t["samdyn"], "blocked C kernel, counter-hash normals", t.get("c"), work=work,
            note=f"{c_note}; {agree('c')}" if ck else c_note),
    ]


def bench_anchors_nets(reps, quick):
    """``nets.train`` SAM vs optax.contrib.sam in an ordinary jitted optax loop: same model, data, steps."""
    import anchors
    from samdyn import nets

    try:
        import optax  # noqa: F401
    except ImportError:
        return [row("4. nets.train SAM vs an optax.contrib.sam loop", float("nan"), "optax", None, note="skipped: optax not installed")]
    steps, batch, lr, rho, momentum = (20 if quick else 500), 128, 0.05, 0.05, 0.9
    data = nets.datasets.mnist1d()
    model = nets.mlp(40, (100, 100), 10)
    hp = sd.optim.hparams(lr=lr, rho=rho, momentum=momentum)
    loop = anchors.optax_sam_loop(model, len(data.x_train), batch, steps, lr, rho, momentum)
    init_key, data_key, _ = nets.run_keys(0, 0)
    x, y = jnp.asarray(data.x_train, jnp.float32), jnp.asarray(data.y_train, jnp.int32)
    fns = {"samdyn": lambda: jax.block_until_ready(nets.train(model, data, sd.optim.sam(), hp, steps, batch, key=0, seeds=[0]).params),
           "optax": lambda: jax.block_until_ready(loop(init_key, data_key, x, y))}
    t, _, out = interleaved(fns, max(1, reps))
    dev = max(float(np.abs(np.asarray(a)[0] - np.asarray(b)).max())
              for a, b in zip(jax.tree.leaves(out["samdyn"]), jax.tree.leaves(out["optax"])))
    return [row(f"4. nets.train SAM vs optax.contrib.sam loop (MNIST-1D MLP, batch {batch}, {steps} steps)",
                t["samdyn"] / steps, f"optax {optax.__version__} contrib.sam, jitted scan", t["optax"] / steps, target=1.0,
                note=f"per step; same init and batches: max |params diff| = {dev:.1e}; train's time includes its "
                     "host-to-device copy and final evaluation")]


# ---- 2. the paper's Beale experiment vs an official-style torch loop ------------------------------

def bench_beale(reps, quick):
    from samdyn import reference

    steps = 300 if quick else 2_000
    rhos = reference.BEALE_RHOS
    f = sd.landscapes.get("beale")
    hp = sd.optim.hparams(lr=reference.BEALE_LR, rho=rhos)
    opt = sd.optim.sam(eps=reference.BEALE_EPS)
    ours, first, run = timed(lambda: sd.simulate(f, opt, hp, reference.BEALE_X0, steps, record="trajectory"), reps)
    try:
        import peers
        import torch  # noqa: F401
    except ImportError:
        return [row("2. Beale, official settings", ours, "PyTorch eager (official style)", None, note="skipped: torch not installed")]
    t0 = time.perf_counter()
    ref = np.stack([peers.torch_beale_sam(rho, steps) for rho in rhos])
    base = time.perf_counter() - t0
    # ρ ≥ 0.5 orbits the saddle chaotically after ~600 steps (see README): compare before that.
    dev = max(float(np.abs(run.trajectory[:2] - ref[:2]).max()), float(np.abs(run.trajectory[:, :600] - ref[:, :600]).max()))
    return [row(f"2. Beale, official settings, 4 runs x {steps} steps, float64", ours, "PyTorch eager (official style)", base,
                target=100, work=4 * steps, unit="steps/s", compile_s=first - ours, note=f"max |samdyn - torch| = {dev:.1e}")]


# ---- 6. hyperparameter grids ------------------------------------------------------------------------

def bench_grid(reps, quick):
    n_cfg, steps, n_pts = (400, 200, 64) if quick else (10_000, 1_000, 64)
    loop_cfg = min(n_cfg, 200)  # the Python loop is timed on a subset and scaled to all configurations
    f, opt = sd.landscapes.get("saddle"), sd.optim.sam()
    rng = np.random.default_rng(1)
    x0 = rng.normal(scale=0.1, size=(n_pts, 2))
    rho = np.linspace(0.0, 0.5, int(np.sqrt(n_cfg)))
    gamma = np.linspace(0.0, 0.95, n_cfg // len(rho))
    hp = sd.optim.hparams(lr=1e-3, rho=rho[:, None], momentum=gamma[None, :])
    ours, first, _ = timed(lambda: sd.simulate(f, opt, hp, x0, steps, dtype="float32"), max(1, reps // 2))
    configs = [(r, g) for r in rho for g in gamma][:loop_cfg]

    def loop():
        for r, g in configs:
            sd.simulate(f, opt, sd.optim.hparams(lr=1e-3, rho=r, momentum=g), x0, steps, dtype="float32")

    loop_s, _, _ = timed(loop, 1)
    base = loop_s * len(rho) * len(gamma) / len(configs)
    return [row(f"6. {len(rho) * len(gamma)} (rho, gamma) configs x {steps} steps x {n_pts} particles", ours,
                "Python loop over configs, same compiled run", base, target=None, work=len(rho) * len(gamma) * n_pts * steps,
                compile_s=first - ours, note=f"loop timed on {len(configs)} configs, scaled")]


# ---- 3. stochastic throughput: minibatch-noise SAM ------------------------------------------------

def minibatch_sam_numpy(f, shifts, x0, steps, batch, lr, rho, seed=0, eps=1e-12):
    """Minibatch-noise SAM in vectorised NumPy float32: each particle draws B of n components without
    replacement per step (argpartition of uniforms), both gradients share the batch."""
    import sympy as sp

    gx, gy = (sp.lambdify(f.symbols, e, "numpy") for e in f.grad_expr)
    rng = np.random.default_rng(seed)
    w = np.array(x0, dtype=np.float32).T.copy()
    xs = shifts.astype(np.float32).T  # (2, n)
    lr, rho, eps = np.float32(lr), np.float32(rho), np.float32(eps)
    n, p = xs.shape[1], w.shape[1]
    for _ in range(steps):
        idx = np.argpartition(rng.random((p, n), dtype=np.float32), batch, axis=1)[:, :batch]
        shift = xs[:, idx].mean(-1)
        g = np.stack([gx(w[0], w[1]), gy(w[0], w[1])]) + shift
        e = g * (rho / (np.sqrt((g * g).sum(0)) + eps))
        q = w + e
        w = w - lr * (np.stack([gx(q[0], q[1]), gy(q[0], q[1])]) + shift)
    return w


def bench_stochastic(reps, quick):
    from samdyn import noise

    n_part, steps, np_steps = (10_000, 100, 20) if quick else (100_000, 1_000, 50)
    n, batch, lr, rho = 32, 4, 0.005, 0.05
    f = sd.landscapes.get("himmelblau")
    shifts = noise.centered_shifts(n, 2, std=1.0, seed=0)
    x0 = np.broadcast_to(np.array([0.5, 0.5]), (n_part, 2))
    hp = sd.optim.hparams(lr=lr, rho=rho)
    np_s, _, _ = timed(lambda: minibatch_sam_numpy(f, shifts, x0, np_steps, batch, lr, rho), 1)
    base = np_s * steps / np_steps  # NumPy's cost per step is constant: timed on fewer steps, scaled
    rows = []
    for sampler in ("fast", "threefry"):
        model = noise.minibatch(batch, shifts, sampler=sampler)
        ours, first, _ = timed(lambda m=model: sd.simulate(f, sd.optim.sam(), hp, x0, steps, noise=m, dtype="float32"),
                               max(1, reps // 2))
        rows.append(row(f"3. minibatch-noise SAM (B={batch} of n={n}, {sampler} sampler), {n_part:.0e} particles x {steps} steps",
                        ours, "vectorised numpy", base, target=10 if sampler == "fast" else None, work=n_part * steps,
                        compile_s=first - ours, note=f"numpy timed on {np_steps} steps, scaled"))
    return rows


# ---- 4. networks ------------------------------------------------------------------------------------

def bench_nets_rows(reps, quick):
    import bench_nets

    out = bench_nets.main(20 if quick else 100, max(1, reps // 2) if quick else reps)
    r, raw = out["rows"], out["raw_seconds"]
    med = statistics.median
    steps = out["setup"]["steps_per_run"]
    rows = [
        row("4. MNIST-1D MLP, batch 128: SAM step vs SGD step", med(raw["sam"]) / steps, "SGD step", med(raw["sgd"]) / steps,
            target=2.1, at_most=True, note="two gradient passes is the floor (2.0)"),
        row("4. 16 seeds vmapped vs 16 sequential runs (MLP)", med(raw["vmap16"]), "16 sequential runs", med(raw["seq16"]),
            target=4, note=f"one run already reaches {r['vmap16_over_sequential16'].get('single_run_sam_gflops', float('nan')):.0f} GFLOP/s"),
        row("4. 16 seeds vmapped vs 16 sequential runs (depth-2 linear net, batch 8)", r["vmap16_over_sequential16_small"]["vmapped_s"],
            "16 sequential runs", r["vmap16_over_sequential16_small"]["sequential_s"], target=4),
    ]
    torch_row = r["samdyn_over_torch"]
    if torch_row == "skipped":
        rows.append(row("4. samdyn SAM vs PyTorch two-pass SAM (MLP, batch 128)", med(raw["sam"]) / steps, "PyTorch SAM", None,
                        note="skipped: torch not installed"))
    else:
        rows.append(row("4. samdyn SAM vs PyTorch two-pass SAM (MLP, batch 128)", torch_row["samdyn_ms_per_step"] / 1e3,
                        f"PyTorch {torch_row['torch_version']} SAM", torch_row["torch_ms_per_step"] / 1e3, target=3,
                        note=f"{torch_row['torch_threads']} torch threads"))
    return rows


def bench_variants_rows(reps, quick):
    import bench_variants

    out = bench_variants.main(20 if quick else 200, max(1, reps // 2) if quick else reps, write=not quick)
    sgd = next(r for r in out["rows"] if r["variant"] == "SGD")["ms_per_step"] / 1e3
    return [row(f"4b. MNIST-1D MLP, batch 128: {r['variant']} step vs SGD step", r["ms_per_step"] / 1e3, "SGD step", sgd,
                target=round(1.1 * r["grad_evals"], 2), at_most=True,
                note=f"{r['grad_evals']:g} gradient evaluations; target 1.1 x that")
            for r in out["rows"] if r["variant"] != "SGD"]


# ---- 5. analysis ------------------------------------------------------------------------------------

def bench_analysis(reps, quick):
    from samdyn import hessian, nets, stability as st

    n = 64 if quick else 256
    f = sd.landscapes.get("beale")
    saddle = next(c for c in f.critical_points() if c.exact == (0, 1))
    lr = np.geomspace(1e-4, 0.1, n)
    rho = np.linspace(0.0, 4 * float(st.rho_threshold(f, saddle)), n)
    ours, first, _ = timed(lambda: st.phase_diagram(sd.optim.usam(), f, saddle, lr, rho, 0.0), reps)
    points = 50
    t0 = time.perf_counter()
    for i in range(points):
        st.classify(sd.optim.usam(), f, saddle, sd.optim.hparams(lr=lr[i % n], rho=rho[(7 * i) % n]))
    loop = (time.perf_counter() - t0) / points * n * n
    rows = [row(f"5. {n}x{n} (eta, rho) phase diagram, USAM at Beale's saddle", ours, "loop of classify()", loop,
                compile_s=first - ours, note=f"loop timed on {points} points, scaled")]
    steps = 1_000 if quick else 10_000
    xs = np.linspace(-4.5, 4.5, n)
    starts = np.stack(np.meshgrid(xs, xs, indexing="ij"), axis=-1)
    hp = sd.optim.hparams(lr=1e-3, rho=0.05)
    ours, first, _ = timed(lambda: st.basins(f, sd.optim.sam(), hp, starts, steps), max(1, reps // 2))
    rows.append(row(f"5. {n}x{n} basin map, SAM on Beale, {steps} steps, float64", ours, "-", None, work=n * n * steps,
                    compile_s=first - ours, note="end states assigned to critical points / cycles"))
    data = nets.datasets.mnist1d()
    model = nets.models.mlp(40, (32, 32), 10)
    params = model.init(jax.random.PRNGKey(0), jnp.float64)
    x, y = jnp.asarray(data.x_train[:512], jnp.float64), jnp.asarray(data.y_train[:512])

    def loss(p):
        return nets.models.loss_fn(model, p, x, y)

    ours, first, (low, high) = timed(lambda: jax.block_until_ready(hessian.extreme_eigs(loss, params, 5, m=80)), reps)
    dense, _, eigs = timed(lambda: np.asarray(hessian.dense_eigvalsh(loss, params)), max(1, reps // 2))
    err = max(float(np.max(np.abs(np.sort(np.asarray(low)) - eigs[:5]))), float(np.max(np.abs(np.sort(np.asarray(high)) - eigs[-5:]))))
    rows.append(row(f"5. Lanczos top/bottom-5 Hessian eigenvalues, MNIST-1D MLP ({eigs.size} params)", ours,
                    "dense jax.hessian + eigh", dense, compile_s=first - ours,
                    note=f"max |Lanczos - dense| = {err:.1e} (|lambda|max {np.abs(eigs).max():.2g})"))
    return rows


def bench_sweep(reps, quick):
    import bench_sweep as sweep_rows

    return sweep_rows.bench_sweep_rows(reps, quick, row)


ROWS = [bench_particles, bench_anchors_rosenbrock, bench_beale, bench_stochastic, bench_anchors_noise, bench_nets_rows,
        bench_anchors_nets, bench_variants_rows, bench_analysis, bench_grid, bench_sweep]


def machine() -> dict:
    cpu = platform.processor()
    try:
        cpu = next(line.split(":", 1)[1].strip() for line in open("/proc/cpuinfo") if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    return {
        "cpu": cpu, "cores": os.cpu_count(), "platform": platform.platform(), "python": platform.python_version(),
        "jax": jax.__version__, "numpy": np.__version__, "devices": [str(d) for d in jax.devices()],
        "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
    }


def table(rows) -> str:
    lines = [f"{'benchmark':<78} {'samdyn':>9} {'baseline':>10} {'ratio':>8} {'target':>7}  baseline / note"]
    for r in rows:
        base = ("skipped" if "skipped" in r["note"] else "-") if r["baseline_s"] is None else f"{r['baseline_s']:.3f}s"
        ratio = "-" if r["ratio"] is None else f"{r['ratio']:.1f}x"
        bound = "<=" if r["at_most"] else ">="
        target = "" if r["target"] is None else f"{bound}{r['target']}x" + ("" if r["meets_target"] is None else (" ok" if r["meets_target"] else " MISS"))
        thr = "" if r["throughput"] is None else f" [{r['throughput']:.3g} {r['unit']}]"
        lines.append(f"{r['group'][:78]:<78} {r['samdyn_s']:8.3f}s {base:>10} {ratio:>8} {target:>7}  {r['baseline']}; {r['note']}{thr}")
    return "\n".join(lines)


def anchor_table(rows) -> str:
    """samdyn's rate on each anchored workload as a fraction of the C kernel, numba and the bound."""
    def rate(v):
        return "-" if v is None else f"{v:.3g}"

    def frac(a, b):
        return "-" if a is None or b is None else f"{a / b:.2f}"

    lines = [f"{'anchors (particle-steps/s)':<26} {'samdyn':>9} {'C':>9} {'numba':>9} {'bound':>9} {'of C':>6} {'of numba':>8} {'of bound':>8}"]
    for a in (r["anchor"] for r in rows if "anchor" in r):
        lines.append(f"{a['workload']:<26} {rate(a['samdyn']):>9} {rate(a['c']):>9} {rate(a['numba']):>9} {rate(a['bound']):>9} "
                     f"{frac(a['samdyn'], a['c']):>6} {frac(a['samdyn'], a['numba']):>8} {frac(a['samdyn'], a['bound']):>8}")
    return "\n".join(lines) if len(lines) > 1 else ""


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reps", type=int, default=5)
    parser.add_argument("--quick", action="store_true", help="small problems (smoke test)")
    parser.add_argument("--only", default="", help="comma-separated row-function names")
    parser.add_argument("--out", default=str(out_dir("benchmarks") / "benchmarks.json"))
    args = parser.parse_args(argv)
    rows = []
    for bench in ROWS:
        if args.only and bench.__name__ not in args.only.split(","):
            continue
        print(f"running {bench.__name__} ...", flush=True)
        rows.extend(bench(args.reps, args.quick))
    print(table(rows))
    print(anchor_table(rows))
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({"machine": machine(), "quick": args.quick, "reps": args.reps, "rows": rows}, indent=2))
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
