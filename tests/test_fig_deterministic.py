"""The deterministic figure scripts (Beale, x² − y², Theorem 1, Lyapunov) at --quick: their numbers
against closed forms and exact thresholds, and their files."""

from fractions import Fraction

import numpy as np
import pytest

EPS32 = float(np.finfo(np.float32).eps)


def _files(figures, name, stems=()):
    folder = figures.root / name
    for stem in (name, *stems):
        for suffix in (".pdf", ".png"):
            assert (folder / f"{stem}{suffix}").stat().st_size > 1000, f"{stem}{suffix}"
    assert (folder / f"{name}.json").exists()
    tex = (folder / f"{name}_numbers.tex").read_text()
    assert tex.count(r"\newcommand") >= 5
    return tex


def test_fig_beale(figures):
    rec = figures("fig_beale")
    tex = _files(figures, "fig_beale")
    n = rec["numbers"]
    s = n["settings"]
    assert s["lr"] == 1e-3 / 80 and s["dtype"] == "float64" and s["rhos"] == [0.0, 0.1, 0.5, 1.0]
    assert rec["quick"] and s["steps"] == 10_000 and not s["official_stop_rule_fired"]
    # SAM ρ = 0.5, 1.0 stall at (0, 1); GD and ρ = 0.1 do not
    assert n["dist_saddle"][2] < 1e-3 and n["dist_saddle"][3] < 1e-3
    assert min(n["dist_saddle"][:2]) > 1.0
    # Kim et al.: cos ≈ −0.8 near t = 2000
    assert -0.9 < n["cos_at_2000"] < -0.7
    # the perturbed points alternate across the saddle at x ≈ ±ρ (the step is ρ g/‖g‖, g ∥ (1, 1) or (−1, −1))
    wp = np.asarray(n["perturbed_points"])
    assert np.all(np.sign(wp[:, 0]) == [1, -1] * 4) and np.allclose(np.abs(wp[:, 0]), 0.5, atol=1e-3)
    assert 0.25 < n["stall_rho_lo"] < n["stall_rho_hi"] < 0.35
    assert r"\newcommand{\bealeStallRho}" in tex


def test_fig_saddle_xy(figures):
    rec = figures("fig_saddle_xy")
    _files(figures, "fig_saddle_xy")
    n = rec["numbers"]
    assert n["settings"]["dtype"] == "float32" and n["settings"]["steps"] == 500
    final = n["final"]
    # GD: y_500 = (1 + 2η)^500 y₀, to float32 rounding accumulated over 500 steps
    closed = (1 + 2 * 0.01) ** 500 * -0.01
    assert n["gd_y500"] == pytest.approx(closed, rel=500 * EPS32)
    assert abs(n["gd_y500"] - (-199.6)) < 0.05
    # USAM is linear here: y_t = (1 − η(λ + ρλ²))^t y₀, λ = −2; ρ = ρ* = 0.5 keeps y₀ exactly
    for rho, key in ((0.4, "USAM ρ = 0.4 (< ρ*)"), (0.5, "USAM ρ = 0.5 (= ρ*)"), (0.6, "USAM ρ = 0.6 (> ρ*)")):
        factor = 1 - 0.01 * (-2 + 4 * rho)
        assert final[key][1] == pytest.approx(-0.01 * factor**500, rel=500 * EPS32)
    # normalised SAM is captured on its 2-cycle ±a e_x, a = ηλρ/(2 − ηλ) = 0.01/1.98
    assert n["sam_dist"] < 1e-2 and n["sam_acc_dist"] < 1e-2
    assert n["sam_dist"] == pytest.approx(0.01 / 1.98, rel=1e-4)
    assert n["sam_cycle_amplitude"] == pytest.approx(0.01 / 1.98, rel=1e-12)


def test_fig_theorem1(figures):
    rec = figures("fig_theorem1")
    tex = _files(figures, "fig_theorem1", stems=("fig_theorem1_basins", "fig_theorem1_edges"))
    n = rec["numbers"]
    assert Fraction(n["rho_star"]) == Fraction(4, 111) and r"\newcommand{\thmoneRhoStar}{\ensuremath{4/111}}" in tex
    assert np.allclose(n["eigenvalues"], [-27.75, 27.75], rtol=1e-12)
    # the map's classification equals the exact (sympy) attractor region on every cell
    assert n["phase"]["disagreeing_cells"] == 0 and n["phase"]["cells"] > 1000
    # edges and 2-cycles equal the closed forms to the library tests' tolerance
    assert n["edge_max_rel_err"] < 1e-10
    assert n["cycle_max_rel_err"] < 1e-10 and n["cycles_found"] == n["cycles_total"]
    # just above ρ* USAM converges to the saddle at the linear rate; just below it leaves
    path = n["path"]
    assert path["final_dist"][1] < 1e-4 * path["predicted_factor"][1] ** (path["steps"] / 2)
    assert path["final_dist"][0] > 1e-2 and path["predicted_factor"][0] > 1 > path["predicted_factor"][1]
    # GD never ends at a saddle on these grids; SAM does on both landscapes
    b = n["basins"]
    assert b["himmelblau_gd"]["at_saddle"] == 0 and b["beale_gd"]["at_saddle"] == 0
    assert b["himmelblau_sam"]["at_saddle"] > 0.01 and b["beale_sam"]["at_saddle"] > 0.01


def test_fig_lyapunov(figures):
    rec = figures("fig_lyapunov")
    _files(figures, "fig_lyapunov")
    n = rec["numbers"]
    assert n["lambda_half"] > 0.05 and n["lambda_one"] > 0.05
    exps = np.asarray(n["exponents"])
    assert np.all(exps[np.asarray(n["stalled"]), 0] > 0)
    # the 1-ulp float64 gap grows at a rate of the order of the exponent, and saturates at the orbit's extent
    assert 0.3 * n["lambda_half"] < n["fit_slope"] < 2 * n["lambda_half"]
    assert n["float32_saturation_step"] < 200
