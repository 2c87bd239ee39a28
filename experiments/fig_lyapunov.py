"""The Lyapunov exponent of normalised SAM's chatter at Beale's saddle (0, 1): why float32 and float64
runs (or two float64 runs one ulp apart, or samdyn and torch) separate once SAM has stalled there.

Settings: Beale, official η = 1.25e-5, SAM ρ g/(‖g‖ + 1e-16), no momentum, float64 unless stated.
(a) The finite-time Lyapunov exponents (``stability.lyapunov_exponents``, QR method on the Jacobian of
SAM's step) along the orbit from (1e-3, 1.001), over ρ; the orbit's end distance to the saddle says
whether it stayed in the stall. (b) From a state on the stalled orbit (ρ = 0.5, after 2,000 steps from
(1e-3, 1.001)): the distance between the float64 run and (i) a float64 run started one ulp away in x,
(ii) a float32 run from the same state, over steps, against d₀·exp(λt) with λ from (a); the slope of
log-distance fitted over the growth phase (from 100 d₀ until the gap first reaches 1e-4 of the
orbit's extent) is compared with λ.

Writes ``fig_lyapunov.{pdf,png,json,npz}`` and ``fig_lyapunov_numbers.tex``.
Run time (2 cores): full ≈ 20 s; ``--quick`` (5,000-step exponents, coarse ρ grid) ≈ 8 s.
"""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np

import samdyn as sd
from samdyn import reference, stability

import _report

START = (1e-3, 1.001)  # next to the saddle (0, 1)
WARMUP = 2000          # steps to land on the stalled orbit before the separation experiment
HORIZON = 400          # steps of the separation experiment
SADDLE = np.asarray(reference.BEALE_SADDLE)


def main():
    args = _report.cli(__doc__)
    study = _report.Study("fig_lyapunov", args.quick)
    f = sd.landscapes.get("beale")
    opt = sd.optim.sam(eps=reference.BEALE_EPS)
    lr = reference.BEALE_LR
    steps = 5000 if args.quick else 50_000
    rhos = np.round(np.arange(0.1, 1.0 + 1e-9, 0.1 if args.quick else 0.025), 6)
    exps, ends = [], []
    for rho in rhos:
        lyap, end = stability.lyapunov_exponents(opt, f, START, sd.optim.hparams(lr=lr, rho=rho), steps)
        exps.append(lyap)
        ends.append(np.linalg.norm(end[:2] - SADDLE))
    exps, ends = np.asarray(exps), np.asarray(ends)
    stalled = ends < reference.TRAP_RADIUS
    i_half = int(np.argmin(np.abs(rhos - 0.5)))
    i_one = int(np.argmin(np.abs(rhos - 1.0)))
    lam = float(exps[i_half, 0])

    hp = sd.optim.hparams(lr=lr, rho=0.5)
    w0 = sd.simulate(f, opt, hp, START, WARMUP, progress=False).final
    starts = np.stack([w0, [w0[0], np.nextafter(w0[1], np.inf)]])  # one ulp in y (≈ 2.2e-16 at y ≈ 1)
    r64 = sd.simulate(f, opt, hp, starts, HORIZON, record="trajectory", progress=False)
    r32 = sd.simulate(f, opt, hp, w0, HORIZON, record="trajectory", dtype="float32", progress=False)
    ref = np.concatenate([w0[None], r64.trajectory[0]])
    sep_ulp = np.linalg.norm(np.concatenate([starts[1][None], r64.trajectory[1]]) - ref, axis=1)
    sep_f32 = np.linalg.norm(np.concatenate([w0.astype(np.float32)[None], r32.trajectory]).astype(np.float64) - ref, axis=1)
    t = np.arange(HORIZON + 1)
    size = float(np.max(np.linalg.norm(ref - SADDLE, axis=1)))  # the stalled orbit's extent
    # growth phase: from 100× the initial ulp until the first time the gap reaches 1e-4 of the orbit's extent
    first = int(np.argmax(sep_ulp > 1e2 * sep_ulp[0]))
    last = int(np.argmax(sep_ulp > 1e-4 * size))
    fit = np.polyfit(t[first:last], np.log(sep_ulp[first:last]), 1)[0] if last - first > 5 else float("nan")
    saturate32 = int(np.argmax(sep_f32 > 0.5 * size))

    fig, (ax_a, ax_b) = plt.subplots(1, 2, figsize=(_report.TEXT_WIDTH, 2.9))
    ax_a.plot(rhos, exps[:, 0], "-o", color="#0072B2", ms=3, label="λ₁ (largest)")
    ax_a.plot(rhos, exps[:, 1], "--s", color="#D55E00", ms=3, label="λ₂")
    ax_a.plot(rhos[~stalled], exps[~stalled, 0], "x", color="k", ms=6, ls="", label="orbit left the saddle")
    ax_a.axhline(0, color="k", lw=0.6, ls=":", marker="")
    ax_a.set(xlabel="ρ (dimensionless)", ylabel="Lyapunov exponent (per step)",
             title=f"(a) exponents along SAM's orbit, {steps:,} steps")
    ax_a.legend(fontsize=6)

    ax_b.semilogy(t, np.maximum(sep_ulp, 1e-20), "-", color="#0072B2", marker="", label="float64, start 1 ulp away in y")
    ax_b.semilogy(t, np.maximum(sep_f32, 1e-20), "--", color="#D55E00", marker="", label="float32, same start")
    ax_b.semilogy(t, sep_ulp[0] * np.exp(lam * t), ":", color="k", lw=1.2, marker="",
                  label=f"d₀·exp(λ₁t), λ₁ = {lam:.3f} per step")
    ax_b.axhline(size, color="0.5", lw=0.8, ls="-.", marker="", label="extent of the stalled orbit")
    ax_b.set(xlabel="steps after landing on the stalled orbit", ylabel="distance to the float64 run (dimensionless)",
             ylim=(1e-20, 1e-2), title="(b) separation from the float64 run, ρ = 0.5")
    ax_b.legend(fontsize=6, loc="lower right")
    fig.suptitle("SAM's stall at Beale's saddle is chaotic: nearby runs separate like exp(λ₁t)", fontsize=9)
    fig.tight_layout()
    study.figure(fig)

    np.savez_compressed(study.path(".npz"), rhos=rhos, exponents=exps, end_dist=ends, steps=t, sep_ulp=sep_ulp,
                        sep_f32=sep_f32)
    values = {
        "settings": {"start": START, "lr": lr, "eps": reference.BEALE_EPS, "steps": steps, "rhos": rhos,
                     "dtype": "float64 (exponents); float32 vs float64 (separation)", "warmup": WARMUP,
                     "horizon": HORIZON},
        "exponents": exps, "end_dist": ends, "stalled": stalled, "lambda_half": lam,
        "lambda_one": exps[i_one, 0], "lambda2_half": exps[i_half, 1], "fit_slope": fit, "fit_window": [first, last],
        "orbit_extent": size, "float32_saturation_step": saturate32,
    }
    macros = {
        "lyapExponentHalf": _report.num(lam),
        "lyapExponentOne": _report.num(exps[i_one, 0]),
        "lyapSecondHalf": _report.num(exps[i_half, 1]),
        "lyapMinExponent": _report.num(exps[stalled, 0].min()),
        "lyapMaxExponent": _report.num(exps[stalled, 0].max()),
        "lyapFitSlope": _report.num(fit),
        "lyapDoubling": _report.num(np.log(2) / lam),
        "lyapOrbitExtent": _report.num(size),
        "lyapFloatSaturation": str(saturate32),
        "lyapSteps": f"{steps:,}".replace(",", "{,}"),
    }
    study.numbers(values, macros)
    print(f"λ₁(ρ=0.5) = {lam:.4f}, λ₁(ρ=1) = {exps[i_one, 0]:.4f}, fitted slope {fit:.4f} over steps {first}..{last}; "
          f"float32 run saturates after {saturate32} steps; stalled for ρ = {rhos[stalled]}")


if __name__ == "__main__":
    main()
