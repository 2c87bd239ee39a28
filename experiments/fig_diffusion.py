"""Kim et al.'s Theorems 2–3 measured: the width along a saddle's escape direction over time, Monte
Carlo against samdyn's exact discrete-time moments and Kim et al.'s continuous forms (as reported).

Setting: the escape direction of a saddle, Hessian eigenvalue λ = −1 (the directions of a diagonal H
with noise |H|/B decouple exactly for SGD/USAM, so a 1-D quadratic is that direction), USAM (the
theory's unnormalised SAM; ρ = 0 is SGD), lr η = 0.01, gradient noise of variance |λ|/B, every particle
starting at the saddle, float64, seed 0. Monte Carlo: ``sd.simulate`` in streaming-statistics mode
(settings share draws); standard errors from the 16 per-chunk sums (batch means; jackknife for the
drift fits). One Theorem 2 run carries two copies of the direction: y₀ where SAM's two gradients
share one draw (practice, ``linear_moments``' default) and y₁ where only the descent gradient is
noisy (Kim et al.'s assumption; exact moments from ``linear_maps`` with the ascent noise removed).
The batch-size run carries one direction per B (independent draws across B).

``fig_diffusion`` (2 × 2):
  (a) E y² over time for ρ|λ| ∈ {0, 0.5, 1.5, 2.5}: Monte Carlo, exact discrete, Kim et al.'s σ²(t);
  (b) the fitted drift a of the discrete map (y⁺ = (1 − ηa) y + noise) vs ρ|λ|, against λ(1 + ρλ)
      (Theorem 1, the map's Jacobian) and λ(1 + ρλ)² (Theorem 2's σ²);
  (c) the t² coefficient of the gap E y²_SGD − E y²_SAM with noise on the descent gradient only (the
      paper's assumption) vs ρ|λ|, against (η/B)ρ|λ|³, (η/B)|λ|³ρ(2 + ρλ) and the printed 2ηρ|λ|³/B;
  (d) the first-order (t) coefficient of that gap when SAM's two gradients share one draw (practice),
      against (η|λ|²/B) ρ (2 − ρ|λ|): the sign change at ρ|λ| = 2.
``fig_diffusion_momentum`` (1 × 3), Theorem 3:
  (a) B · E y² after 100 steps vs B for SGD, USAM and normalised SAM (saddle x²/2 − y²/2);
  (b) E y² after 100 steps vs momentum γ for SGD and USAM;
  (c) the stationary width E x² along the positive direction λ = +1 vs 1 − γ, with Theorem 3's Δ_SAM
      (as reported) and the slopes (1 − γ)⁻¹ and (1 − γ)⁻³.

Run time on 2 CPU cores: ``--quick`` ≈ 15 s, full ≈ 2–3 min.
"""

from __future__ import annotations

import time

import jax
import jax.numpy as jnp
import matplotlib.pyplot as plt
import numpy as np
import scipy.optimize

import samdyn as sd
from samdyn import diffusion

import _report

LR = 0.01
LAM = -1.0            # escape direction
B0 = 1.0              # batch size of the Theorem 2 runs (noise variance |λ|/B)
RHO_GRID = np.round(np.arange(0.0, 3.01, 0.25), 2)   # ρ|λ| (|λ| = 1)
RHO_SHOW = (0.0, 0.5, 1.5, 2.5)
GAP_STEPS = 50        # the gap's polynomial fit uses t = kη ≤ 0.5
FIT_DEGREE = 4        # gap(t) = Σ_{j=1..4} c_j t^j
RHO_USAM = 0.5        # Theorem 3 panels: USAM radius
RHO_SAM = 0.05        # normalised SAM radius (B panel)
K_FIXED = 100         # steps at which panels (a), (b) of the momentum figure read E y²
CHUNKS = 16


class AscentMaskedNoise:
    """Additive Gaussian gradient noise, std ``std`` per coordinate, one draw per step: the descent
    gradient gets all of it, the ascent gradient (USAM/SAM's first call) only the coordinates where
    ``ascent_mask`` is 1. Mask 1: SAM's two gradients share the draw (practice); mask 0: the ascent
    gradient is exact (Kim et al.'s assumption). A ``samdyn.noise`` model (``sample``/``oracle``) on
    the library's counter-based draws."""

    def __init__(self, std, ascent_mask):
        self.std = np.asarray(std, dtype=np.float64)
        self.mask = np.asarray(ascent_mask, dtype=np.float64)

    def sample(self, ctr, params):
        leaves = jax.tree.leaves(params)
        d = sum(int(np.prod(leaf.shape[:-1])) for leaf in leaves)
        return sd.noise.normal(ctr, (d,), leaves[0].dtype)

    def oracle(self, problem, draws):
        calls = [0]

        def grad_fn(x):
            scale = self.std * (self.mask if calls[0] == 0 else 1.0)
            calls[0] += 1
            return problem.grad(x) + jnp.asarray(scale, dtype=x.dtype) * draws

        return grad_fn


def exact_second_moment(opt, H, C, hp, steps, *, descent_only=False):
    """E δδᵀ of the linear map at k = 0..steps, (steps + 1, d, d): ``linear_moments`` (shared draw), or
    its matrices with the ascent gradient's noise removed (descent-only)."""
    if not descent_only:
        return diffusion.linear_moments(opt, H, C, hp, steps).cov
    M, G, _ = diffusion.linear_maps(opt, H, hp, noise_cov=C)
    d = H.shape[0]
    Z = np.zeros((d, d))
    Q = G @ np.block([[Z, Z], [Z, C]]) @ G.T
    P = np.zeros_like(M)
    out = [P[:d, :d].copy()]
    for _ in range(steps):
        P = M @ P @ M.T + Q
        out.append(P[:d, :d].copy())
    return np.array(out)


def chunk_second_moment(stats, coord=0):
    """Per-chunk E y² estimates (batch means), shape (*S, C, T)."""
    n = stats.particles / stats.s2_chunks.shape[-4]
    return stats.s2_chunks[..., coord, coord] / n


def mc(problem, opt, hp, steps, noise, particles, key=0):
    """Streaming-statistics Monte Carlo from the origin; returns ParticleStats (times 1..steps)."""
    d = len(problem.symbols)
    run = sd.simulate(problem, opt, hp, np.zeros(d), steps, noise=noise, key=key, particles=particles,
                      stats=sd.streaming.particle_stats(reference=np.zeros(d)), every=1,
                      chunk_size=particles // CHUNKS, progress=False)
    assert int(run.stats.count.min()) == particles, "a particle diverged"
    return run.stats


def mean_se(chunks, axis=-2):
    """Mean and standard error over the chunk axis."""
    c = chunks.shape[axis]
    return chunks.mean(axis), chunks.std(axis, ddof=1) / np.sqrt(c)


def poly_coefficients(times, gap, degree=FIT_DEGREE):
    """Least-squares c_1..c_degree of gap(t) = Σ c_j t^j (no constant: the gap is 0 at t = 0)."""
    X = np.stack([times**j for j in range(1, degree + 1)], axis=-1)
    return np.linalg.lstsq(X, gap, rcond=None)[0]


def geometric_model(k, log_q, a):
    """log E y²_k for y⁺ = (1 − ηa) y + noise of variance q from 0: q Σ_{j<k} (1 − ηa)^{2j}."""
    two_log_r = 2 * np.log1p(-LR * a)
    return log_q + np.log(np.expm1(k * two_log_r) / np.expm1(two_log_r))


def fit_drift(k, msd):
    """The drift a of E y²_k = q Σ_{j<k} (1 − ηa)^{2j}, fitted on log E y² (least squares)."""
    p0 = (np.log(msd[0]), -0.3)
    popt, _ = scipy.optimize.curve_fit(geometric_model, k, np.log(msd), p0=p0, maxfev=20000)
    return popt[1]


def kim_sigma2(lam, t, rho, B, lr=LR):
    """Kim et al.'s σ²(t) as reported: η|λ|/(2Bλ(1+ρλ)²) [1 − exp(−2λ(1+ρλ)² t)]."""
    a = lam * (1 + rho * lam) ** 2
    return lr * abs(lam) / B * (-np.expm1(-2 * a * t)) / (2 * a)


def kim_theorem3(lam, t, rho, gamma, B, lr=LR):
    """Kim et al.'s Theorem 3 Δ_SAM as reported (C₁…C₄ as printed)."""
    C1, C2 = lr**2 * abs(lam) / 2, lr / t
    C3 = lr * abs(lam) / (2 * lam * (1 + rho * lam) ** 2)
    C4 = 2 * lam * (1 + rho * lam) ** 2 * t
    g = 1 - np.asarray(gamma, dtype=np.float64)
    return C1 * (1 - np.exp(-C2 * g)) ** 2 / (g**3 * B) + C3 * (1 - np.exp(-C4 / g)) / (g * B)


def slope(x, y):
    """Least-squares slope of log y against log x."""
    return float(np.polyfit(np.log(x), np.log(y), 1)[0])


def theorem2(quick):
    """Runs and measurements of the Theorem 2 figure."""
    P = 2**14 if quick else 2**16
    steps = 80 if quick else 300
    # two copies of the escape direction in one run: y₀ with the shared draw, y₁ with descent-only noise
    f = sd.landscapes.get("quadratic", eigenvalues=[LAM, LAM])
    H, C = np.array([[LAM]]), np.array([[abs(LAM) / B0]])
    hp = sd.optim.hparams(lr=LR, rho=RHO_GRID)
    usam = sd.optim.usam()
    run = mc(f, usam, hp, steps, AscentMaskedNoise(np.sqrt(abs(LAM) / B0), [1.0, 0.0]), P)
    k = np.arange(steps + 1)
    t = k * LR
    # per chunk E y² at k = 1..steps, (R, C, T)
    ch_shared, ch_desc = chunk_second_moment(run, 0), chunk_second_moment(run, 1)[..., :GAP_STEPS]
    exact_shared = np.array([exact_second_moment(usam, H, C, sd.optim.hparams(lr=LR, rho=r), steps)[:, 0, 0]
                             for r in RHO_GRID])
    exact_desc = np.array([exact_second_moment(usam, H, C, sd.optim.hparams(lr=LR, rho=r), GAP_STEPS,
                                               descent_only=True)[:, 0, 0] for r in RHO_GRID])
    mc_mean, mc_se = mean_se(ch_shared)
    # ρ|λ| = 1: the shared draw cancels the noise exactly (E y² = 0 up to rounding): no z there
    z_msd = np.abs(mc_mean - exact_shared[:, 1:])[RHO_GRID != 1] / mc_se[RHO_GRID != 1]

    # (b) drift: fit on the shared-draw MC (skip ρ|λ| = 1, where the shared draw cancels the noise)
    kk = k[1:]
    drift = {}
    for i, r in enumerate(RHO_GRID):
        if abs(r * abs(LAM) - 1) < 1e-9:
            continue
        full = fit_drift(kk, mc_mean[i])
        jack = np.array([fit_drift(kk, np.delete(ch_shared[i], c, axis=0).mean(0)) for c in range(CHUNKS)])
        se = np.sqrt((CHUNKS - 1) / CHUNKS * np.sum((jack - jack.mean()) ** 2))
        drift[float(r)] = {"fit": float(full), "se": float(se), "exact_fit": float(fit_drift(kk, exact_shared[i, 1:])),
                           "theorem1": LAM * (1 + r * LAM), "theorem2": LAM * (1 + r * LAM) ** 2}

    # (c), (d): gap coefficients, per chunk (CRN: SGD is the ρ = 0 row of the same draws)
    tg = t[1:GAP_STEPS + 1]
    gap_desc = ch_desc[:1] - ch_desc                       # (R, C, GAP_STEPS)
    gap_shared = ch_shared[:1, :, :GAP_STEPS] - ch_shared[:, :, :GAP_STEPS]
    coef_desc = poly_coefficients(tg, np.moveaxis(gap_desc, -1, 0).reshape(GAP_STEPS, -1)).reshape(FIT_DEGREE, len(RHO_GRID), CHUNKS)
    coef_shared = poly_coefficients(tg, np.moveaxis(gap_shared, -1, 0).reshape(GAP_STEPS, -1)).reshape(FIT_DEGREE, len(RHO_GRID), CHUNKS)
    beta, beta_se = mean_se(coef_desc[1], axis=-1)
    alpha, alpha_se = mean_se(coef_shared[0], axis=-1)
    beta_exact = poly_coefficients(tg, (exact_desc[:1, 1:] - exact_desc[:, 1:]).T)[1]
    alpha_exact = poly_coefficients(tg, (exact_shared[:1, 1:GAP_STEPS + 1] - exact_shared[:, 1:GAP_STEPS + 1]).T)[0]
    r_abs = RHO_GRID * abs(LAM)
    beta_discrete = LR / B0 * RHO_GRID * abs(LAM) ** 3
    beta_reported_exact = LR / B0 * abs(LAM) ** 3 * RHO_GRID * (2 + RHO_GRID * LAM)
    beta_printed = 2 * LR / B0 * abs(LAM) ** 3 * RHO_GRID
    alpha_theory = LR * abs(LAM) ** 2 / B0 * RHO_GRID * (2 - r_abs)
    # where the measured first-order coefficient changes sign (linear interpolation)
    s = np.where((alpha[:-1] > 0) & (alpha[1:] <= 0))[0]
    i = int(s[0])
    crossing = float(r_abs[i] + alpha[i] * (r_abs[i + 1] - r_abs[i]) / (alpha[i] - alpha[i + 1]))
    inner = RHO_GRID > 0
    return {
        "particles": P, "steps": steps, "t": t, "k": k, "mc_mean": mc_mean, "mc_se": mc_se,
        "exact": exact_shared, "max_z_msd": float(z_msd.max()), "drift": drift,
        "beta": beta, "beta_se": beta_se, "beta_exact_fit": beta_exact, "beta_discrete": beta_discrete,
        "beta_reported_exact": beta_reported_exact, "beta_printed": beta_printed,
        "alpha": alpha, "alpha_se": alpha_se, "alpha_exact_fit": alpha_exact, "alpha_theory": alpha_theory,
        "sign_change": crossing,
        "max_z_beta_vs_exact": float(np.max(np.abs(beta - beta_exact)[inner] / beta_se[inner])),
        "min_z_beta_vs_reported": float(np.min(np.abs(beta - beta_reported_exact)[inner & (r_abs != 1)]
                                               / beta_se[inner & (r_abs != 1)])),
        "max_z_alpha_vs_exact": float(np.max(np.abs(alpha - alpha_exact)[inner] / alpha_se[inner])),
    }


def theorem3(quick):
    """Runs and measurements of the momentum / batch-size figure."""
    P = 2**13 if quick else 2**15
    batches = np.array([1.0, 16.0]) if quick else np.array([1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0])
    gammas = np.array([0.0, 0.5, 0.9, 0.95]) if quick else np.array([0.0, 0.5, 0.8, 0.9, 0.95, 0.98, 0.99])
    stat_steps = 400 if quick else 1500
    # USAM / SGD: one escape direction per batch size in one run (coordinates decouple for USAM on a
    # diagonal H; noise variance |λ|/B_i along coordinate i, independent across coordinates)
    nb = len(batches)
    hpg = sd.optim.hparams(lr=LR, rho=np.array([0.0, RHO_USAM])[:, None], momentum=gammas[None, :])
    multi = sd.landscapes.get("quadratic", eigenvalues=[-1] * nb)
    st_b = mc(multi, sd.optim.usam(), hpg, K_FIXED, sd.noise.gaussian(std=1 / np.sqrt(batches)), P)
    ch_b = np.stack([chunk_second_moment(st_b, i)[..., -1] for i in range(nb)], axis=-2)   # (2, G, nb, C)
    # normalised SAM couples the directions through ‖g‖: the real saddle x²/2 − y²/2, one run per B
    saddle = sd.landscapes.get("quadratic", eigenvalues=[1, -1])
    H2 = np.diag([1.0, -1.0])
    ch_sam = np.stack([chunk_second_moment(mc(saddle, sd.optim.sam(), sd.optim.hparams(lr=LR, rho=RHO_SAM),
                                              K_FIXED, sd.noise.hessian(B), P, key=j), 1)[..., -1]
                       for j, B in enumerate(batches)])                                       # (nb, C)
    up = sd.landscapes.get("quadratic", eigenvalues=[1])
    st_up = mc(up, sd.optim.usam(), hpg, stat_steps, sd.noise.hessian(B0), P // 4)
    # exact: per (ρ, γ) at B = 1 (the moments are linear in C = 1/B)
    up_exact = np.zeros((2, len(gammas)))
    down_exact = np.zeros((2, len(gammas)))
    for i, r in enumerate((0.0, RHO_USAM)):
        for g, gam in enumerate(gammas):
            hp = sd.optim.hparams(lr=LR, rho=r, momentum=gam)
            up_exact[i, g] = diffusion.linear_moments(sd.optim.usam(), np.eye(1), np.eye(1), hp, 0).stationary[0, 0]
            down_exact[i, g] = diffusion.linear_moments(sd.optim.usam(), -np.eye(1), np.eye(1), hp, K_FIXED).cov[-1, 0, 0]
    sam_exact = np.array([B * diffusion.linear_moments(sd.optim.sam(), H2, np.abs(H2) / B,
                                                       sd.optim.hparams(lr=LR, rho=RHO_SAM), K_FIXED).cov[-1, 1, 1]
                          for B in batches])
    b_mc, b_exact = {}, {}
    for name, c, ex in (("sgd", batches[:, None] * ch_b[0, 0], np.full(nb, down_exact[0, 0])),
                        ("usam", batches[:, None] * ch_b[1, 0], np.full(nb, down_exact[1, 0])),
                        ("sam", batches[:, None] * ch_sam, sam_exact)):
        b_mc[name] = np.stack(mean_se(c, axis=-1), axis=-1)                                  # (nb, 2)
        b_exact[name] = ex

    def b_spread(name):  # chi² of B·Var against its weighted mean, and the relative spread max/min − 1
        m, se = b_mc[name][:, 0], b_mc[name][:, 1]
        w = 1 / se**2
        mean = np.sum(w * m) / np.sum(w)
        return {"chi2": float(np.sum(w * (m - mean) ** 2)), "dof": len(m) - 1,
                "relative_spread": float(m.max() / m.min() - 1), "weighted_mean": float(mean)}

    # stationary width: average the last quarter of the records (all stationary by then)
    up_m, up_se = mean_se(chunk_second_moment(st_up)[..., -stat_steps // 4:].mean(-1), axis=-1)
    down_m, down_se = mean_se(ch_b[:, :, 0], axis=-1)                                         # B = batches[0]
    near1 = gammas >= 0.9
    kim = kim_theorem3(1.0, stat_steps * LR, RHO_USAM, gammas, B0)
    return {
        "particles": P, "batches": batches, "gammas": gammas, "stat_steps": stat_steps,
        "b_mc": b_mc, "b_exact": b_exact, "b_spread": {k: b_spread(k) for k in b_mc},
        "up_mc": up_m, "up_se": up_se, "up_exact": up_exact, "down_mc": down_m, "down_se": down_se,
        "down_exact": down_exact, "kim_delta": kim,
        "gamma_exponent": {"exact_sgd": -slope(1 - gammas[near1], up_exact[0, near1]),
                           "exact_usam": -slope(1 - gammas[near1], up_exact[1, near1]),
                           "mc_usam": -slope(1 - gammas[near1], up_m[1, near1]),
                           "kim_theorem3": -slope(1 - gammas[near1], kim[near1])},
        "z_up": float(np.max(np.abs(up_m - up_exact) / up_se)),
        "z_down": float(np.max(np.abs(down_m - down_exact) / down_se)),
    }


def plot_theorem2(study, r):
    fig, ax = plt.subplots(2, 2, figsize=(_report.TEXT_WIDTH, 5.4))
    a = ax[0, 0]
    t = r["t"]
    for j, rho in enumerate(RHO_SHOW):
        i = int(np.argmin(np.abs(RHO_GRID - rho)))
        colour = f"C{j}"
        a.plot(t[1:], r["exact"][i, 1:], color=colour, linestyle="-", marker="", label=f"ρ|λ| = {rho:g}")
        sub = slice(r["steps"] // 12 - 1, None, r["steps"] // 12)
        a.errorbar(t[1:][sub], r["mc_mean"][i][sub], yerr=2 * r["mc_se"][i][sub], color=colour, linestyle="none",
                   marker="os^vD"[j % 5], markersize=3.5, markerfacecolor="none")
        a.plot(t[1:], kim_sigma2(LAM, t[1:], rho, B0), color=colour, linestyle=":", marker="")
    a.set_yscale("log")
    a.set_xlabel("time t = ηk (steps × η, dimensionless)")
    a.set_ylabel("E y² along the escape direction")
    a.set_title("(a) width over time: exact (solid), Monte Carlo ±2 SE\n(markers), Kim et al.'s σ²(t) (dotted; 0.5, 1.5 coincide)")
    a.legend(loc="upper left", ncol=2, frameon=False)

    a = ax[0, 1]
    rr = np.linspace(0, 3, 200)
    a.plot(rr, LAM * (1 + rr * LAM), marker="", label="λ(1 + ρλ) (Theorem 1)")
    a.plot(rr, LAM * (1 + rr * LAM) ** 2, marker="", label="λ(1 + ρλ)² (Theorem 2's σ²)")
    xs = np.array(list(r["drift"]))
    a.errorbar(xs, [v["fit"] for v in r["drift"].values()], yerr=[2 * v["se"] for v in r["drift"].values()],
               color="C2", linestyle="none", marker="s", markersize=3.5, label="fitted to Monte Carlo (±2 SE)")
    a.axhline(0, color="0.6", lw=0.6, marker="")
    a.set_xlabel("ρ|λ| (dimensionless)")
    a.set_ylabel("drift a (y⁺ = (1 − ηa) y + noise)")
    a.set_title("(b) drift of the discrete map: a > 0 contracts\n(the saddle attracts)")
    a.legend(frameon=False, loc="lower left")

    a = ax[1, 0]
    a.plot(RHO_GRID, r["beta_discrete"], label="(η/B)ρ|λ|³ (drift λ(1+ρλ))")
    a.plot(RHO_GRID, r["beta_reported_exact"], label="(η/B)|λ|³ρ(2+ρλ) (Kim σ², exact)")
    a.plot(RHO_GRID, r["beta_printed"], label="2ηρ|λ|³/B (Kim, printed)")
    a.errorbar(RHO_GRID, r["beta"], yerr=2 * r["beta_se"], color="C3", linestyle="none", marker="^",
               markersize=3.5, label="Monte Carlo (±2 SE)")
    a.axhline(0, color="0.6", lw=0.6, marker="")
    a.set_xlabel("ρ|λ| (dimensionless)")
    a.set_ylabel("t² coefficient of E y²_SGD − E y²_SAM")
    a.set_title("(c) the t² gap, noise on the descent gradient only")
    a.legend(frameon=False, loc="upper left")

    a = ax[1, 1]
    a.plot(RHO_GRID, r["alpha_theory"], label="(η|λ|²/B) ρ(2 − ρ|λ|)")
    a.errorbar(RHO_GRID, r["alpha"], yerr=2 * r["alpha_se"], color="C1", linestyle="none", marker="o",
               markersize=3.5, label="Monte Carlo (±2 SE)")
    a.axhline(0, color="0.6", lw=0.6, marker="")
    a.axvline(r["sign_change"], color="0.6", lw=0.6, linestyle="--", marker="")
    a.set_xlabel("ρ|λ| (dimensionless)")
    a.set_ylabel("t coefficient of E y²_SGD − E y²_SAM")
    a.set_title(f"(d) one shared draw: first-order gap,\nsign change at ρ|λ| = {r['sign_change']:.3f}")
    a.legend(frameon=False, loc="lower left")
    fig.suptitle(f"USAM near a saddle (λ = {LAM:g}, η = {LR:g}, B = {B0:g}, |H|/B noise, "
                 f"{r['particles']} particles)", fontsize=8)
    fig.tight_layout()
    study.figure(fig)


def plot_theorem3(study, r):
    fig, ax = plt.subplots(1, 3, figsize=(_report.TEXT_WIDTH, 3.0))
    a = ax[0]
    labels = {"sgd": "SGD", "usam": f"USAM ρ = {RHO_USAM:g}", "sam": f"SAM ρ = {RHO_SAM:g}"}
    for j, name in enumerate(("sgd", "usam", "sam")):
        m = r["b_mc"][name]
        a.plot(r["batches"], r["b_exact"][name], color=f"C{j}", linestyle="-" if name != "sam" else "--", marker="")
        a.errorbar(r["batches"], m[:, 0], yerr=2 * m[:, 1], color=f"C{j}", linestyle="none", marker="os^"[j],
                   markersize=3.5, markerfacecolor="none", label=labels[name])
    a.set_xscale("log", base=2)
    a.set_yscale("log")
    a.set_xlabel("batch size B")
    a.set_ylabel(f"B · E y² after {K_FIXED} steps")
    a.set_title("(a) batch size, γ = 0 (lines exact;\nSAM dashed: frozen-norm model)")
    a.legend(frameon=False, fontsize=6, loc="center right")

    a = ax[1]
    g = r["gammas"]
    for i, name in enumerate(("SGD", f"USAM ρ = {RHO_USAM:g}")):
        a.plot(1 - g, r["down_exact"][i], color=f"C{i}", linestyle="-", marker="")
        a.errorbar(1 - g, r["down_mc"][i], yerr=2 * r["down_se"][i], color=f"C{i}", linestyle="none",
                   marker="os"[i], markersize=3.5, markerfacecolor="none", label=name)
    a.set_xscale("log")
    a.set_yscale("log")
    a.invert_xaxis()
    a.set_xlabel("1 − γ (γ = momentum)")
    a.set_ylabel(f"E y² after {K_FIXED} steps (λ = −1)")
    a.set_title("(b) escape direction, B = 1: momentum\nwidens (lines exact, markers MC)")
    a.legend(frameon=False, fontsize=6)

    a = ax[2]
    for i, name in enumerate(("SGD", f"USAM ρ = {RHO_USAM:g}")):
        a.plot(1 - g, r["up_exact"][i], color=f"C{i}", linestyle="-", marker="")
        a.errorbar(1 - g, r["up_mc"][i], yerr=2 * r["up_se"][i], color=f"C{i}", linestyle="none",
                   marker="os"[i], markersize=3.5, markerfacecolor="none", label=name)
    a.plot(1 - g, r["kim_delta"], color="C2", linestyle="-.", marker="", label="Kim Δ_SAM (Thm 3)")
    ref = r["up_exact"][0, -1]
    a.plot(1 - g, ref * ((1 - g) / (1 - g[-1])) ** -1.0, color="C4", linestyle=(0, (5, 1, 1, 1)), marker="",
           label="∝ (1 − γ)⁻¹")
    a.plot(1 - g, ref * ((1 - g) / (1 - g[-1])) ** -3.0, color="C5", linestyle=(0, (1, 1)), marker="",
           label="∝ (1 − γ)⁻³")
    a.set_xscale("log")
    a.set_yscale("log")
    a.set_ylim(r["up_exact"].min() / 3, r["up_exact"].max() * 300)
    a.invert_xaxis()
    a.set_xlabel("1 − γ (γ = momentum)")
    a.set_ylabel("stationary E x² (λ = +1)")
    a.set_title("(c) stationary width, B = 1,\nvs momentum (lines exact)")
    a.legend(frameon=False, fontsize=6, loc="upper left")
    fig.suptitle(f"Theorem 3: batch size and momentum (η = {LR:g}, |H|/B noise, {r['particles']} particles)",
                 fontsize=8)
    fig.tight_layout()
    study.figure(fig, stem="fig_diffusion_momentum")


def main(argv=None):
    args = _report.cli(__doc__, argv)
    study = _report.Study("fig_diffusion", args.quick)
    start = time.perf_counter()
    r2 = theorem2(args.quick)
    r3 = theorem3(args.quick)
    plot_theorem2(study, r2)
    plot_theorem3(study, r3)
    num = _report.num
    i_half, i_three = int(np.argmin(np.abs(RHO_GRID - 0.5))), int(np.argmin(np.abs(RHO_GRID - 3.0)))
    d = r2["drift"]
    spread = r3["b_spread"]
    expo = r3["gamma_exponent"]
    values = {
        "settings": {"lr": LR, "lambda": LAM, "batch_size": B0, "rho_abs_lambda_grid": RHO_GRID,
                     "optimizer": "usam (rho = 0: SGD); normalised sam in the batch panel", "dtype": "float64",
                     "noise": "hessian |H|/B, SAM's two gradients share one draw; descent-only for the t^2 gap",
                     "particles_theorem2": r2["particles"], "steps_theorem2": r2["steps"],
                     "gap_fit": f"polynomial of degree {FIT_DEGREE} without constant on t <= {GAP_STEPS * LR}",
                     "particles_theorem3": r3["particles"], "batch_sizes": r3["batches"], "momenta": r3["gammas"],
                     "rho_usam": RHO_USAM, "rho_sam": RHO_SAM, "steps_fixed": K_FIXED,
                     "steps_stationary": r3["stat_steps"], "chunks_for_standard_errors": CHUNKS, "seed": 0},
        "max_z_mc_vs_exact_msd": r2["max_z_msd"],
        "drift": {str(k): v for k, v in d.items()},
        "t2_gap": {"rho_abs_lambda": RHO_GRID, "measured": r2["beta"], "se": r2["beta_se"],
                   "exact_discrete_fit": r2["beta_exact_fit"], "eta_rho_lam3_over_B": r2["beta_discrete"],
                   "reported_sigma2_exact": r2["beta_reported_exact"], "printed": r2["beta_printed"],
                   "max_z_vs_exact": r2["max_z_beta_vs_exact"], "min_z_vs_reported": r2["min_z_beta_vs_reported"]},
        "first_order_gap_shared_draw": {"measured": r2["alpha"], "se": r2["alpha_se"],
                                        "exact_discrete_fit": r2["alpha_exact_fit"], "theory": r2["alpha_theory"],
                                        "sign_change_rho_abs_lambda": r2["sign_change"],
                                        "max_z_vs_exact": r2["max_z_alpha_vs_exact"]},
        "batch_scaling": {"B_times_var_mc": {k: v for k, v in r3["b_mc"].items()}, "B_times_var_exact": r3["b_exact"],
                          "spread": spread},
        "momentum": {"stationary_var_mc": r3["up_mc"], "stationary_var_se": r3["up_se"],
                     "stationary_var_exact": r3["up_exact"], "escape_var_mc": r3["down_mc"],
                     "escape_var_se": r3["down_se"], "escape_var_exact": r3["down_exact"],
                     "kim_theorem3_delta": r3["kim_delta"], "exponent_near_gamma_1": expo,
                     "max_z_stationary": r3["z_up"], "max_z_escape": r3["z_down"]},
        "seconds": round(time.perf_counter() - start, 1),
    }
    macros = {
        "diffLr": num(LR), "diffLambda": num(LAM), "diffParticles": str(r2["particles"]),
        "diffSteps": str(r2["steps"]), "diffMaxZ": num(r2["max_z_msd"], 2),
        "diffDriftFitHalf": num(d[0.5]["fit"]), "diffDriftSeHalf": num(d[0.5]["se"], 2),
        "diffDriftThmOneHalf": num(d[0.5]["theorem1"]), "diffDriftThmTwoHalf": num(d[0.5]["theorem2"]),
        "diffDriftFitTwoHalf": num(d[2.5]["fit"]), "diffDriftSeTwoHalf": num(d[2.5]["se"], 2),
        "diffDriftThmOneTwoHalf": num(d[2.5]["theorem1"]), "diffDriftThmTwoTwoHalf": num(d[2.5]["theorem2"]),
        "diffGapHalf": num(r2["beta"][i_half]), "diffGapSeHalf": num(r2["beta_se"][i_half], 2),
        "diffGapDiscreteHalf": num(r2["beta_discrete"][i_half]),
        "diffGapReportedHalf": num(r2["beta_reported_exact"][i_half]),
        "diffGapPrintedHalf": num(r2["beta_printed"][i_half]),
        "diffGapThree": num(r2["beta"][i_three]), "diffGapSeThree": num(r2["beta_se"][i_three], 2),
        "diffGapDiscreteThree": num(r2["beta_discrete"][i_three]),
        "diffGapReportedThree": num(r2["beta_reported_exact"][i_three]),
        "diffGapPrintedThree": num(r2["beta_printed"][i_three]),
        "diffGapRatioPrinted": num(r2["beta"][i_half] / r2["beta_printed"][i_half]),
        "diffGapMaxZ": num(r2["max_z_beta_vs_exact"], 2), "diffGapMinZReported": num(r2["min_z_beta_vs_reported"], 2),
        "diffSignChange": num(r2["sign_change"]),
        "diffBSpreadSGD": num(100 * spread["sgd"]["relative_spread"], 2),
        "diffBSpreadUSAM": num(100 * spread["usam"]["relative_spread"], 2),
        "diffBChiUSAM": num(spread["usam"]["chi2"], 2), "diffBDof": str(spread["usam"]["dof"]),
        "diffBRatioSAM": num(r3["b_mc"]["sam"][-1, 0] / r3["b_mc"]["sam"][0, 0]),
        "diffGammaExpExact": num(expo["exact_usam"]), "diffGammaExpMC": num(expo["mc_usam"]),
        "diffGammaExpKim": num(expo["kim_theorem3"]),
        "diffEscapeMomentumRatio": num(r3["down_exact"][0, list(r3["gammas"]).index(0.9)] / r3["down_exact"][0, 0]),
    }
    study.numbers(values, macros)
    print(f"fig_diffusion: {values['seconds']} s; drift fits {[(k, round(v['fit'], 4)) for k, v in d.items()]}; "
          f"t² gap max z {r2['max_z_beta_vs_exact']:.2f}; sign change {r2['sign_change']:.3f}; exponents {expo}")


if __name__ == "__main__":
    main()
