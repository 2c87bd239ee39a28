"""experiments/fig_findings.py at --quick size: its recorded numbers against oracles recomputed here
(eigenvalue rules, the fixed-point equation and the chain-rule Jacobian on Beale, the closed-form
2-cycle of normalised SAM), and its frozen-coordinate batching against the plain quadratic landscape."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

import samdyn as sd
from samdyn import stability as st

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "experiments"))
import fig_findings  # noqa: E402

NAME = "fig_findings"


@pytest.fixture(scope="module")
def record(figures):
    return figures(NAME)["numbers"]


def test_outputs_and_macros(figures, record):
    assert figures(NAME)["quick"] is True
    folder = figures.root / NAME
    for suffix in (".pdf", ".png", ".json", "_numbers.tex"):
        assert (folder / f"{NAME}{suffix}").stat().st_size > 0
    tex = (folder / f"{NAME}_numbers.tex").read_text()
    for macro in ("findRandMisKim", "findRandMisNear", "findUsamExtraCount", "findUsamAttrRadius", "findTrapAgree",
                  "findTrapSymBoundary"):
        assert f"\\newcommand{{\\{macro}}}" in tex


def _gap_points(rho, eigs):
    neg = np.asarray(eigs)[np.asarray(eigs) < 0]
    return int(np.sum((rho > -1 / neg.min()) & (rho <= -1 / neg.max())))


def test_nearest_zero_rule_is_the_classification_on_every_saddle(record):
    """phase_diagram's kind over ρ equals "ρ > −1/λ₋" (λ₋ the negative eigenvalue nearest 0), recomputed
    here from each saddle's eigenvalues, at every grid point of every sampled saddle and of the example."""
    rs = record["random_saddles"]
    rho = np.asarray(rs["rho"])
    # the step-size condition η(λ + ρλ²) < 2 never binds on this grid, so only ρ* decides
    top = max(max(abs(v) for v in s["eigenvalues"]) for s in rs["saddles"])
    assert rs["lr"] * (top + rho.max() * top**2) < 2
    for s in rs["saddles"]:
        eigs = np.asarray(s["eigenvalues"])
        assert np.sum(eigs < 0) >= 2 and np.sum(eigs > 0) >= 1   # index ≥ 2, still a saddle
        measured = np.array([ch == "A" for ch in s["attractor"]])
        np.testing.assert_array_equal(measured, rho > -1 / eigs[eigs < 0].max())
        assert s["mismatch_nearest_zero"] == 0
    assert rs["misclassified_nearest_zero"] == 0 and rs["cell_fraction_nearest_zero"] == 0
    ex = record["example"]
    assert ex["mismatch_nearest_zero"] == 0 and ex["rho_star_exact"] == "1" and ex["rho_kim"] == 0.25


def test_most_negative_rule_misclassifies_every_saddle(record):
    """By construction each sample has λ_min/λ₋ ≥ 2 and the log ρ grid steps by a ratio < 2, so the gap
    (−1/λ_min, −1/λ₋] holds at least one grid point, where the map is still a saddle but the
    "most negative eigenvalue" reading of Theorem 1 says attractor: it must miss every sample, exactly
    at the grid points of that gap."""
    rs = record["random_saddles"]
    rho = np.asarray(rs["rho"])
    assert rho[1] / rho[0] < 2
    for s in rs["saddles"]:
        neg = np.asarray(s["eigenvalues"])[np.asarray(s["eigenvalues"]) < 0]
        assert neg.min() / neg.max() >= 2
        assert s["mismatch_most_negative"] == _gap_points(rho, s["eigenvalues"]) >= 1
    assert rs["misclassified_most_negative"] == rs["count"] >= 1
    assert record["example"]["mismatch_most_negative"] == _gap_points(np.asarray(record["example"]["rho"]), (3, -1, -4))


def test_usam_extra_fixed_points_on_beale(record):
    """Each extra fixed point solves w + ρ∇f(w) = (0, 1) to 1e-10, is not a critical point, and its
    spectral radius equals that of the chain-rule Jacobian I − ηH(0, 1)(I + ρH(w)); the attracting one
    catches at least one USAM run started near the saddle, below Theorem 1's ρ*."""
    ex = record["usam_extra"]
    f = sd.landscapes.get("beale")
    c = np.array([0.0, 1.0])
    assert ex["rho"] < ex["rho_star"] == pytest.approx(4 / 111, rel=1e-15)
    assert ex["count"] >= 2 and sum(p["kind"] == "attractor" for p in ex["points"]) == 1
    for p in ex["branch"]:
        w, rho = np.asarray(p["point"]), p["rho_frac"] * ex["rho_star"]
        g = np.asarray(f.grad(w))
        assert np.linalg.norm(w + rho * g - c) < 1e-10
        assert np.linalg.norm(g) > 1e-2 and np.linalg.norm(w - c) > 1e-6
        J = np.eye(2) - ex["lr"] * np.asarray(f.hessian(c)) @ (np.eye(2) + rho * np.asarray(f.hessian(w)))
        assert np.abs(np.linalg.eigvals(J)).max() == pytest.approx(p["spectral_radius"], abs=1e-10)
    a = ex["attractor"]
    assert a["spectral_radius"] < 1
    assert st.classify(sd.optim.usam(), f, a["point"], sd.optim.hparams(lr=ex["lr"], rho=ex["rho"])).kind == "attractor"
    assert ex["caught_count"] >= 1
    lo, hi = ex["born_between"]
    assert lo < hi < 1   # the pair exists over [hi, 1) and not at lo: born below ρ*


def test_trap_closed_form_agrees_with_simulation_away_from_the_boundary(record):
    """Outcome "on the cycle" ⟺ the closed form says stable, on ≥ 95 % of the cells whose T² spectral
    radius is at least TRAP_BAND = 0.1 from 1 (recomputed here from sam_quadratic_cycle). Within the band
    the contraction or growth per two steps is under 10 %, so a finite run may not settle to 1e-8 or
    leave: those cells say nothing about the criterion. The misses left are starts outside the
    cycle's basin (large ηλ₊ and |λ₋/λ₊|), which a local criterion does not speak to."""
    tr = record["trap"]
    eps = float(dict(sd.optim.sam().options)["eps"])
    on_cycle, stable, away = [], [], []
    for j, row in enumerate(tr["outcome"]):
        for i, ch in enumerate(row):
            cyc = st.sam_quadratic_cycle([1.0, tr["ratio"][j]], 0, tr["lr"][i], 1.0, eps=eps)
            on_cycle.append(ch == "c")
            stable.append(cyc.kind == "attractor")
            away.append(abs(cyc.spectral_radius - 1) >= fig_findings.TRAP_BAND)
    on_cycle, stable, away = map(np.asarray, (on_cycle, stable, away))
    agreement = np.mean(on_cycle[away] == stable[away])
    assert agreement >= 0.95
    assert agreement == pytest.approx(tr["agreement_away"], abs=1e-15)
    assert stable.any() and (~stable).any()   # the grid crosses the boundary


def test_symmetric_saddle_trapped_iff_step_below_one_over_curvature(record):
    """λ₋ = −λ₊: the transverse multiplier is 2ηλ₊ − 1, so the cycle is stable iff ηλ₊ < 1. The run is
    captured at every ηλ₊ ≤ 0.95 and never above 1; the measured edge lies in (0.95, 1]."""
    tr = record["trap"]
    lr = np.linspace(0.5, 1.5, len(tr["sym_outcome_text"]))
    captured = np.array([ch == "c" for ch in tr["sym_outcome_text"]])
    assert captured[lr <= 0.95].all() and not captured[lr > 1].any()
    assert 0.95 < tr["sym_boundary"] <= 1.0 + 1e-12


def test_frozen_ratio_coordinate_is_the_plain_quadratic():
    """The (ηλ₊, λ₋/λ₊) grid runs as one program by carrying r = λ₋/λ₊ as a third coordinate with zero
    gradient: its (x, y) path must equal SAM's on landscapes.quadratic((1, r)) to rounding."""
    lr = np.array([0.3, 0.9, 1.4])
    for r in (-0.5, -2.0):
        run = fig_findings._simulate_trap(lr, np.array([r]), 300, 3)
        plain = sd.simulate(sd.landscapes.get("quadratic", eigenvalues=(1, r)), sd.optim.sam(),
                            sd.optim.hparams(lr=lr, rho=fig_findings.TRAP_RHO), np.array(fig_findings.TRAP_START), 300)
        np.testing.assert_allclose(run.final[:, 0, :2], plain.final, rtol=1e-12, atol=1e-14)
        assert np.all(run.final[:, 0, 2] == r)
