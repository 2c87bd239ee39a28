"""Benchmark of the SAM family: each variant's step time relative to SGD on the MNIST-1D MLP, batch 128.

For every variant: the median time of a ``nets.train`` run of ``--steps`` steps (one seed, float32,
the MLP 40→100→100→10, momentum 0.9), divided by SGD's, next to its number of gradient evaluations
per step (forward passes of the XSAM search counted as 1/3 of a gradient). The target: the ratio
within 10 % of (gradient evaluations) — a variant should cost its gradients and nothing more.
Repetitions are interleaved (load drifts hit every row) after a warm-up that compiles.

Writes ``experiments/out/bench_variants/bench_variants.json``. Usage:
``python experiments/bench_variants.py [--steps 1000] [--repeats 5]``; ``make bench`` runs it through
``benchmarks.py``.
"""

from __future__ import annotations

import argparse
import json
import statistics

import jax

import samdyn as sd
from samdyn import nets

from _paths import out_dir  # same folder
from bench_nets import BATCH, LR, MOMENTUM, RHO, setup, timed  # the same MLP benchmark set-up


def variants():
    """(label, optimizer, gradient evaluations per step)."""
    import optax

    o = sd.optim
    search = 11
    return [
        ("SGD", o.gd(), 1.0),
        ("SAM", o.sam(), 2.0),
        ("USAM", o.usam(), 2.0),
        ("ASAM (all leaves)", o.asam(), 2.0),
        ("SAM layer-wise", o.sam(norm="layer"), 2.0),
        ("SAM, 2 ascent steps", o.sam(ascent_steps=2), 3.0),
        ("m-SAM, m = 32", o.msam(32), 2.0),
        ("GSAM", o.gsam(), 2.0),
        ("XSAM, fixed alpha", o.xsam(), 2.0),
        (f"XSAM, search every 10 ({search} probes)", o.xsam(search_every=10, alphas=search), 2.0 + search / 3),
        ("SAM, cosine rho schedule", o.sam(rho_schedule=o.schedules.cosine(10_000)), 2.0),
        ("SAM, decoupled weight decay", o.sam(decay="decoupled"), 2.0),
        ("Adam", o.from_optax(optax.scale_by_adam(), "gd", name="adam"), 1.0),
        ("SAM-Adam", o.from_optax(optax.scale_by_adam(), "sam", name="adam"), 2.0),
    ]


def main(steps: int, repeats: int, write: bool = True):
    data = nets.datasets.mnist1d()
    model = nets.mlp(40, (100, 100), 10)
    hp = sd.optim.hparams(lr=LR, rho=RHO, momentum=MOMENTUM, weight_decay=5e-4)
    rows = variants()

    def run(opt):
        res = nets.train(model, data, opt, hp, steps, BATCH, key=0, seeds=[0])
        jax.block_until_ready(res.params)

    compile_s = {label: timed(lambda: run(opt)) for label, opt, _ in rows}
    times = {label: [] for label, _, _ in rows}
    for _ in range(repeats):
        for label, opt, _ in rows:
            times[label].append(timed(lambda: run(opt)))
    sgd = statistics.median(times["SGD"])
    table = []
    for label, opt, evals in rows:
        t = statistics.median(times[label])
        table.append({"variant": label, "optimizer": opt.name, "ms_per_step": 1e3 * t / steps, "ratio_to_sgd": t / sgd,
                      "grad_evals": evals, "ratio_per_eval": t / sgd / evals, "target": "ratio <= 1.1 x grad_evals",
                      "meets_target": bool(t / sgd <= 1.1 * evals), "first_call_s": compile_s[label]})
    out = {"rows": table, "setup": setup(model, steps, repeats), "raw_seconds": times}
    if write:
        (out_dir("bench_variants") / "bench_variants.json").write_text(json.dumps(out, indent=1))
    return out


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=1000)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    for r in main(args.steps, args.repeats)["rows"]:
        print(f"{r['variant']:<40} {r['ms_per_step']:8.3f} ms/step  {r['ratio_to_sgd']:5.2f}x SGD  "
              f"{r['grad_evals']:4.1f} grads  {'ok' if r['meets_target'] else 'MISS'}")
