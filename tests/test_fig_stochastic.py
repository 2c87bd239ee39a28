"""The stochastic figure scripts at --quick (each runs once per session through the ``figures``
fixture): their numbers against oracles — exact discrete-time moments, closed forms of the linear
map, monotonicity that theory predicts — with fixed seeds and bands of a few standard errors; the
network scripts structurally (shapes, ranges, seeds)."""

from __future__ import annotations

import numpy as np
import pytest

LR, LAM, B0 = 0.01, -1.0, 1.0


def _files(figures, name, stems):
    for stem in stems:
        for ext in (".pdf", ".png"):
            assert (figures.root / name / f"{stem}{ext}").stat().st_size > 0
    tex = (figures.root / name / f"{name}_numbers.tex").read_text()
    return tex


@pytest.fixture(scope="module")
def diffusion(figures):
    rec = figures("fig_diffusion")
    _files(figures, "fig_diffusion", ("fig_diffusion", "fig_diffusion_momentum"))
    return rec["numbers"]


def test_diffusion_monte_carlo_matches_exact_moments(diffusion):
    # E y² of USAM with the shared draw, every ρ and step, against linear_moments (max over ~1000
    # correlated points: 5 SE)
    assert diffusion["max_z_mc_vs_exact_msd"] < 5
    m = diffusion["momentum"]
    assert m["max_z_stationary"] < 4.5 and m["max_z_escape"] < 4.5


def test_diffusion_drift_is_theorem1_not_theorem2(diffusion):
    for key, d in diffusion["drift"].items():
        r = float(key)
        assert d["exact_fit"] == pytest.approx(LAM * (1 + r * LAM), abs=1e-8)   # the fit is exact on exact data
        assert abs(d["fit"] - d["theorem1"]) < 4 * d["se"], (key, d)
        if r == 0.5 or r > 1:             # where the two drifts differ by ≥ 0.25 (and in sign above 1)
            assert abs(d["fit"] - d["theorem2"]) > 6 * d["se"], (key, d)


def test_diffusion_t2_gap_coefficient(diffusion):
    g = diffusion["t2_gap"]
    rho = np.array(g["rho_abs_lambda"])
    meas, se = np.array(g["measured"]), np.array(g["se"])
    exact = np.array(g["exact_discrete_fit"])
    inner = rho > 0
    # Monte Carlo = exact discrete moments (same fit) within 4 SE at every ρ
    assert np.all(np.abs(meas - exact)[inner] < 4 * se[inner])
    # the discrete map's t² coefficient is (η/B)ρ|λ|³ (drift λ(1+ρλ)), up to O(η)
    assert np.allclose(exact[inner], (LR / B0 * rho * abs(LAM) ** 3)[inner], rtol=0.05)
    # and not the reported σ²'s (η/B)|λ|³ρ(2+ρλ), nor the printed 2ηρ|λ|³/B (checked where they differ)
    for r in (0.5, 3.0):
        i = int(np.argmin(np.abs(rho - r)))
        assert abs(meas[i] - g["reported_sigma2_exact"][i]) > 4 * se[i]
        assert abs(meas[i] - g["printed"][i]) > 4 * se[i]


def test_diffusion_shared_draw_first_order_gap_changes_sign_at_two(diffusion):
    a = diffusion["first_order_gap_shared_draw"]
    theory, exact = np.array(a["theory"]), np.array(a["exact_discrete_fit"])
    assert a["max_z_vs_exact"] < 4
    assert np.allclose(exact, theory, atol=0.05 * np.abs(theory).max())
    assert a["sign_change_rho_abs_lambda"] == pytest.approx(2.0, abs=0.1)


def test_diffusion_batch_scaling(diffusion):
    s = diffusion["batch_scaling"]["spread"]
    # B · E y² is independent of B for SGD and USAM (χ² against a constant, 99.9 % quantile)
    from scipy.stats import chi2
    for name in ("sgd", "usam"):
        assert s[name]["chi2"] < chi2.ppf(0.999, s[name]["dof"]), (name, s[name])
    # normalised SAM: not (ρ/‖g‖ grows with √B); the Monte Carlo moves the way the frozen-norm model does
    mc = np.array(diffusion["batch_scaling"]["B_times_var_mc"]["sam"])
    model = np.array(diffusion["batch_scaling"]["B_times_var_exact"]["sam"])
    assert s["sam"]["chi2"] > chi2.ppf(0.999, s["sam"]["dof"])
    assert np.sign(mc[-1, 0] - mc[0, 0]) == np.sign(model[-1] - model[0])


def test_diffusion_momentum_exponent(diffusion):
    e = diffusion["momentum"]["exponent_near_gamma_1"]
    assert e["exact_sgd"] == pytest.approx(1.0, abs=0.02)
    assert e["exact_usam"] == pytest.approx(1.0, abs=0.02)
    assert e["kim_theorem3"] == pytest.approx(1.0, abs=0.02)   # not 3: the first term's (1 − γ)⁻³ cancels
    assert e["mc_usam"] == pytest.approx(1.0, abs=0.15)


def test_escape_medians_monotone(figures):
    rec = figures("fig_escape")
    tex = _files(figures, "fig_escape", ("fig_escape", "fig_escape_heatmap"))
    assert r"\newcommand{\escBealeMedianSGD}" in tex
    for name, p in rec["numbers"]["problems"].items():
        med = np.array(p["median_exit_step[rho][momentum][batch]"], dtype=float)   # NaN: < half escaped
        med = np.where(np.isnan(med), np.inf, med)
        frac = np.array(p["fraction_escaped[rho][momentum][batch]"])
        assert med.shape == frac.shape == (3, 2, 2) and p["particles"] == 256
        assert np.all((frac >= 0) & (frac <= 1))
        # theory (Theorems 1-3): larger ρ narrows the escape direction's spread -> slower; momentum
        # widens it -> faster; larger B means less noise -> slower
        assert np.all(med[1:] >= med[:-1]), name                 # (∞ ≥ ∞ holds; np.diff would give NaN)
        assert np.all(med[:, 1:] <= med[:, :-1]), name
        assert np.all(med[:, :, 1:] >= med[:, :, :-1]), name
        assert np.all(np.diff(frac, axis=0) <= 0) and np.all(np.diff(frac, axis=1) >= 0), name


def test_nets_saddle_structure(figures):
    rec = figures("fig_nets_saddle")
    _files(figures, "fig_nets_saddle", ("fig_nets_saddle",))
    s = rec["numbers"]["settings"]
    assert s["seeds"] == 3 and list(s["batch_sizes"]) == [8, 64] and rec["quick"]
    for name, m in rec["numbers"]["models"].items():
        frac = np.array(m["fraction_escaped[B][rho][gamma]"])
        assert frac.shape == (2, 4, 4) and np.all((frac >= 0) & (frac <= 1))
        # fractions are counts over 3 seeds
        assert np.allclose(frac * 3, np.round(frac * 3))
    lin = np.array(rec["numbers"]["models"]["deep_linear"]["fraction_escaped[B][rho][gamma]"])
    assert np.all(lin[:, 0] == 1)       # SGD leaves the strict saddle from 1e-3 in every seed
    assert np.all(lin[:, -1] == 0)      # SAM with ρ = 1e-2 ≫ ‖w₀‖ stays: the saddle attracts


def test_mnist1d_structure(figures):
    rec = figures("fig_mnist1d")
    _files(figures, "fig_mnist1d", ("fig_mnist1d",))
    n = rec["numbers"]
    assert "CIFAR-10" in n["mapping_to_kim2023"]
    for name in ("mlp", "cnn"):
        m = n["models"][name]
        acc = np.array(m["test_acc_mean[rho][momentum][batch]"], dtype=float)
        assert acc.shape == (3, 2, 2) and len(m["seeds"]) == 2
        assert np.all((acc >= 0) & (acc <= 1))
        assert np.nanmax(acc) > 0.2        # above chance (10 classes) after two epochs
        assert np.all(np.array(m["test_acc_seed_range[rho][momentum][batch]"], dtype=float) >= 0)
