"""Benchmark of ``samdyn.nets.train``: SAM vs SGD step cost, vmapped seeds, and a PyTorch SAM.

Rows (medians over ``--repeats`` interleaved repetitions, after a warm-up that compiles):

1. ``sam_over_sgd``: time of a SAM run / time of an SGD run (same MLP 40→100→100→10, MNIST-1D,
   batch 128, momentum 0.9, float32, one run). Two gradient passes is the floor: target ≤ 2.1.
2. ``vmap16_over_sequential16``: throughput (run-steps per second) of 16 seeds trained in one vmapped
   call / 16 sequential single-seed calls of the same compiled program. Target ≥ 4. Reported for the
   MLP at batch 128 (with the single run's achieved GFLOP/s: where one run already saturates the
   cores, vmapping cannot multiply throughput) and for a small, overhead-bound net
   (``…_small``: the saddle study's depth-2 linear net, batch 8, ``10 × --steps`` steps per run).
3. ``samdyn_over_torch``: steps per second of samdyn's SAM / a PyTorch two-pass SAM (the
   davda54/sam recipe: ascend by ρ g/‖g‖, second forward–backward, restore, ``torch.optim.SGD``
   step) on the same MLP, batch, data and CPU, measured in the same run. "skipped" if torch is
   not installed (it is never a samdyn dependency).

Each timed samdyn call is a whole ``train`` call (host → device → host, one final evaluation),
so the per-step numbers include that fixed cost; ``--steps`` keeps it small.

Writes ``experiments/out/bench_nets/bench_nets.json``. Usage: ``python experiments/bench_nets.py``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import time

import jax

import samdyn as sd
from samdyn import nets

from _paths import out_dir  # same folder

BATCH, LR, RHO, MOMENTUM = 128, 0.05, 0.05, 0.9


def setup(model, steps: int, repeats: int) -> dict:
    """The shared record of an MNIST-1D MLP benchmark's settings and machine (also bench_variants)."""
    return {"model": model.name, "data": "mnist1d 4000 train", "batch_size": BATCH, "steps_per_run": steps,
            "repeats": repeats, "dtype": "float32", "lr": LR, "rho": RHO, "momentum": MOMENTUM,
            "jax": jax.__version__, "cpu_count": os.cpu_count(), "platform": platform.platform(),
            "load_avg_at_end": os.getloadavg()}


def timed(fn):
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


def torch_sam_seconds(data, steps: int, repeats: int, seed: int = 0):
    """Seconds per run of ``steps`` PyTorch SAM steps (median over repeats), or None without torch."""
    try:
        import torch
    except ImportError:
        return None
    torch.manual_seed(seed)
    x = torch.as_tensor(data.x_train, dtype=torch.float32)
    y = torch.as_tensor(data.y_train, dtype=torch.long)
    model = torch.nn.Sequential(torch.nn.Linear(40, 100), torch.nn.ReLU(), torch.nn.Linear(100, 100), torch.nn.ReLU(),
                                torch.nn.Linear(100, 10))
    opt = torch.optim.SGD(model.parameters(), lr=LR, momentum=MOMENTUM)
    params = list(model.parameters())
    loss_fn = torch.nn.CrossEntropyLoss()
    per_epoch = len(x) // BATCH

    def run():
        perm = None
        for t in range(steps):
            if t % per_epoch == 0:
                perm = torch.randperm(len(x))
            idx = perm[(t % per_epoch) * BATCH:(t % per_epoch + 1) * BATCH]
            xb, yb = x[idx], y[idx]
            loss_fn(model(xb), yb).backward()                       # first pass: g at w
            with torch.no_grad():
                norm = torch.norm(torch.stack([p.grad.norm(2) for p in params]), 2)
                scale = RHO / (norm + 1e-12)
                eps = [p.grad * scale for p in params]
                for p, e in zip(params, eps):
                    p.add_(e)
            opt.zero_grad()
            loss_fn(model(xb), yb).backward()                       # second pass: g at w + e
            with torch.no_grad():
                for p, e in zip(params, eps):
                    p.sub_(e)
            opt.step()
            opt.zero_grad()

    run()  # warm-up
    return [timed(run) for _ in range(repeats)], torch.__version__, torch.get_num_threads()


def main(steps: int, repeats: int):
    data = nets.datasets.mnist1d()
    model = nets.mlp(40, (100, 100), 10)
    hp = sd.optim.hparams(lr=LR, rho=RHO, momentum=MOMENTUM)

    def run(opt, seeds=(0,), n=steps):
        res = nets.train(model, data, opt, hp, n, BATCH, key=0, seeds=list(seeds))
        jax.block_until_ready(res.params)

    sam, sgd = sd.optim.sam(), sd.optim.gd()
    for opt in (sam, sgd):
        run(opt)                                                     # compile
    run(sam, seeds=range(16))
    t_sam, t_sgd, t_vmap, t_seq = [], [], [], []
    for _ in range(repeats):                                         # interleaved: load drifts hit all rows
        t_sam.append(timed(lambda: run(sam)))
        t_sgd.append(timed(lambda: run(sgd)))
        t_vmap.append(timed(lambda: run(sam, seeds=range(16))))
        t_seq.append(timed(lambda: [run(sam, seeds=[s]) for s in range(16)]))
    med = statistics.median
    rows = {
        "sam_over_sgd": {"ratio": med(t_sam) / med(t_sgd), "target": "<= 2.1",
                         "sam_ms_per_step": 1e3 * med(t_sam) / steps, "sgd_ms_per_step": 1e3 * med(t_sgd) / steps},
        "vmap16_over_sequential16": {"ratio": med(t_seq) / med(t_vmap), "target": ">= 4",
                                     "vmapped_s": med(t_vmap), "sequential_s": med(t_seq),
                                     "vmapped_run_steps_per_s": 16 * steps / med(t_vmap),
                                     "sequential_run_steps_per_s": 16 * steps / med(t_seq)},
    }
    # where vmapping pays: a small, overhead-bound net (the saddle study's deep linear net, batch 8)
    small, small_data = nets.deep_linear(8, 8, 4), nets.datasets.teacher_student(256, 256, 8, 4, noise_std=0.1)

    def run_small(seeds):
        res = nets.train(small, small_data, sam, hp, 10 * steps, 8, key=0, seeds=list(seeds))
        jax.block_until_ready(res.params)

    run_small([0])
    run_small(range(16))
    t_vs, t_ss = [], []
    for _ in range(repeats):
        t_vs.append(timed(lambda: run_small(range(16))))
        t_ss.append(timed(lambda: [run_small([s]) for s in range(16)]))
    rows["vmap16_over_sequential16_small"] = {
        "ratio": med(t_ss) / med(t_vs), "target": ">= 4", "model": small.name, "batch_size": 8,
        "steps_per_run": 10 * steps,
        "vmapped_s": med(t_vs), "sequential_s": med(t_ss)}
    # a single MLP run's arithmetic rate: 2 gradients × (forward + backward ≈ 3 forward) × 2 flop/MAC
    macs = 40 * 100 + 100 * 100 + 100 * 10
    rows["vmap16_over_sequential16"]["single_run_sam_gflops"] = 2 * 3 * 2 * BATCH * macs / (med(t_sam) / steps) / 1e9
    torch_out = torch_sam_seconds(data, steps, repeats)
    if torch_out is None:
        rows["samdyn_over_torch"] = "skipped"
    else:
        t_torch, version, threads = torch_out
        rows["samdyn_over_torch"] = {"ratio": med(t_torch) / med(t_sam), "target": "> 1 (samdyn faster)",
                                     "samdyn_ms_per_step": 1e3 * med(t_sam) / steps,
                                     "torch_ms_per_step": 1e3 * med(t_torch) / steps,
                                     "torch_version": version, "torch_threads": threads}
    out = {
        "rows": rows,
        "setup": setup(model, steps, repeats),
        "raw_seconds": {"sam": t_sam, "sgd": t_sgd, "vmap16": t_vmap, "seq16": t_seq,
                        "torch": None if torch_out is None else torch_out[0]},
    }
    (out_dir("bench_nets") / "bench_nets.json").write_text(json.dumps(out, indent=1))
    return out


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=1000)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    print(json.dumps(main(args.steps, args.repeats)["rows"], indent=1))
