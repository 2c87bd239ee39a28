"""``make figures``: run every figure script of the reproduction report, in order, and print the wall
time of each and the total.

Run: ``python experiments/figures.py [--quick] [--only NAME ...]``. Each script runs in its own
process (``python experiments/<name>.py [--quick]``), so one's JAX state never leaks into the next; a
failing script stops the run with its exit status. The times are also written to
``<root>/figures_times.json`` (root: see ``_report.root``).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

import _report

HERE = Path(__file__).resolve().parent

#: The report's figure scripts, in the order of ``paper/main.tex``.
FIGURES = (
    "fig_beale",         # Beale at the official settings: GD vs SAM, cosine, perturbed points, ρ scan
    "fig_saddle_xy",     # x² − y²: GD escapes, SAM captured, USAM around ρ = −1/λ
    "fig_theorem1",      # USAM at Beale's saddle around ρ* = 4/111, phase diagrams, basins, edges, 2-cycles
    "fig_lyapunov",      # Lyapunov exponent of SAM's chatter at Beale's saddle
    "fig_findings",      # beyond the paper: higher-index saddles, USAM's extra fixed points, SAM's 2-cycle trap
    "fig_diffusion",     # Theorems 2-3: MSD / width over time, Monte Carlo vs exact vs continuous forms
    "fig_escape",        # escape-time survival curves and median heatmaps over γ × B
    "fig_nets_saddle",   # saddle escape of the deep linear net and the squared-activation toy
    "fig_mnist1d",       # MNIST-1D accuracy over ρ × γ × B, MLP and CNN, seed spread
)


def run(names, quick: bool) -> dict[str, float]:
    """Run each script; returns name → wall seconds. Exits with the first failing script's status."""
    times = {}
    for name in names:
        cmd = [sys.executable, str(HERE / f"{name}.py")] + (["--quick"] if quick else [])
        start = time.perf_counter()
        proc = subprocess.run(cmd, cwd=_report.REPO)
        times[name] = time.perf_counter() - start
        print(f"{name:<18} {times[name]:8.1f} s", flush=True)
        if proc.returncode != 0:
            print(f"figures: {name} failed (exit {proc.returncode})", file=sys.stderr)
            sys.exit(proc.returncode)
    return times


def main(argv=None):
    parser = argparse.ArgumentParser(description="Run every figure script of the reproduction report.")
    parser.add_argument("--quick", action="store_true", help="CI size (each script's --quick)")
    parser.add_argument("--only", nargs="+", choices=FIGURES, metavar="NAME", help="run only these scripts")
    args = parser.parse_args(argv)
    names = args.only or FIGURES
    times = run(names, args.quick)
    total = sum(times.values())
    print(f"{'total':<18} {total:8.1f} s  ({len(times)} scripts, {'quick' if args.quick else 'full size'})")
    out = _report.root(args.quick)
    out.mkdir(parents=True, exist_ok=True)
    record = {"quick": args.quick, "seconds": times, "total_seconds": total, "versions": _report.versions()}
    if not args.only:
        (out / "figures_times.json").write_text(json.dumps(record, indent=2, sort_keys=True) + "\n")


if __name__ == "__main__":
    main()
