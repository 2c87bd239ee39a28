"""The ``samdyn`` command (``python -m samdyn``): thin wrappers over library functions.

``samdyn demo [--out DIR] [--max-steps N]`` — Kim et al.'s Beale saddle trap with the official
settings: prints where GD and SAM (ρ = 0.1, 0.5, 1.0) end and whether they are trapped at the saddle
(0, 1), and writes ``beale_trap.png`` (contours and trajectories) and ``beale_trap.npz`` to DIR.
``samdyn --version`` prints the version.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import samdyn  # for samdyn.__version__, read when the command runs
from samdyn import checks

__all__ = ["main"]


def _demo(args) -> int:
    import matplotlib.pyplot as plt
    import numpy as np

    from . import landscapes, plotting, reference

    t0 = time.perf_counter()
    result = reference.beale_trap(max_steps=args.max_steps)
    elapsed = time.perf_counter() - t0
    print(result.table(budget="--max-steps"))
    print(f"(simulated {len(result.rhos)} runs x {args.max_steps} steps in {elapsed:.2f} s, compile included)")

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(
        out / "beale_trap.npz", rhos=result.rhos, steps=result.steps, trajectories=result.trajectories,
        loss=result.loss, cosine=result.cosine,
    )
    fig, (ax, ax_cos) = plt.subplots(1, 2, figsize=(12, 4.8), gridspec_kw={"width_ratios": [1.25, 1]})
    plotting.contour(ax, landscapes.get("beale"), domain=((-1.5, 3.7), (-0.5, 2.7)))
    labels = ["GD" if r == 0 else f"SAM ρ={r:g}" for r in result.rhos]
    plotting.trajectories(ax, result.trajectories, labels, start=reference.BEALE_X0)
    ax.set_title(f"Beale: {result.steps} steps, lr = 1e-3/80")
    steps = np.arange(1, result.steps + 1)
    for label, cos in zip(labels, result.cosine):
        ax_cos.plot(steps[::20], cos[::20], ".", markersize=1.5, label=label)
    ax_cos.set_xscale("log")
    ax_cos.set_xlabel("step")
    ax_cos.set_ylabel("cos(∇L(w), ∇L(w + ε))")
    ax_cos.set_title("cosine between SAM's two gradients (every 20th step)")
    ax_cos.legend(loc="lower left", markerscale=8)
    path = plotting.save(fig, out / "beale_trap.png")
    print(f"wrote {path} and {out / 'beale_trap.npz'}")
    return 0



def main(argv=None) -> int:
    """Entry point of the ``samdyn`` command."""
    parser = argparse.ArgumentParser(prog="samdyn", description=__doc__.splitlines()[0])
    parser.add_argument("--version", action="version", version=f"samdyn {samdyn.__version__}")
    sub = parser.add_subparsers(dest="command", required=True)
    demo = sub.add_parser("demo", help="Kim et al.'s Beale saddle trap (official settings)")
    demo.add_argument("--out", default="out/demo", help="folder for the figure and data (default out/demo)")
    demo.add_argument("--max-steps", type=checks.cli_positive_int, default=100_000,
                      help="step budget for GD's stopping rule (default 100000; the rule fires at 87683)")
    demo.set_defaults(func=_demo)
    from .sweep.cli import register as register_sweep

    register_sweep(sub)
    args = parser.parse_args(argv)
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
