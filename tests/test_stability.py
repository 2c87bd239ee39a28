"""Oracles for samdyn.stability: exact Jacobians (sympy), Kim et al.'s Theorem 1, Jury regions, simulated
runs on both sides of the threshold, the closed-form SAM 2-cycle, closed-form edges, basins."""

import numpy as np
import pytest
import sympy as sp

import samdyn as sd
from samdyn import plotting
from samdyn import stability as st

BEALE = sd.landscapes.get("beale")
SADDLE = sd.landscapes.get("saddle")  # x² − y²


def _cp(landscape, exact):
    return next(c for c in landscape.critical_points() if c.exact == tuple(sp.sympify(v) for v in exact))


BEALE_SADDLE = _cp(BEALE, (0, 1))
BEALE_MIN = _cp(BEALE, (3, sp.Rational(1, 2)))
XY_SADDLE = SADDLE.critical_points()[0]


# ---- 1. numeric Jacobian (jacfwd of optim's step) = exact Jacobian (sympy) ----------------------

@pytest.mark.parametrize(
    "landscape, cp",
    [(BEALE, BEALE_SADDLE), (BEALE, BEALE_MIN), (SADDLE, XY_SADDLE)],
    ids=["beale-saddle", "beale-min", "x2-y2"],
)
@pytest.mark.parametrize("opt_name", ["gd", "usam", "gd-nesterov", "usam-nesterov"])
@pytest.mark.parametrize("hp", [(sp.Rational(1, 100), sp.Rational(3, 40), 0), (sp.Rational(1, 200), sp.Rational(1, 20), sp.Rational(9, 10))], ids=["no-momentum", "momentum"])
def test_numeric_jacobian_equals_exact(landscape, cp, opt_name, hp):
    base, _, nest = opt_name.partition("-")
    opt = getattr(sd.optim, base)(nesterov=bool(nest))
    eta, rho, gamma = hp
    J = st.jacobian(opt, landscape, cp.point, sd.optim.hparams(lr=float(eta), rho=float(rho), momentum=float(gamma)))
    exact = st.exact_jacobian(landscape, cp, opt, lr=eta, rho=rho, momentum=gamma)
    E = np.array(exact.evalf(30).tolist(), dtype=np.float64)
    d = landscape.dim
    assert J.shape == E.shape == (2 * d, 2 * d)
    np.testing.assert_allclose(J, E, rtol=0, atol=1e-10 * max(1.0, np.abs(E).max()))
    if gamma == 0 and not nest:  # the parameter block is Kim et al.'s I − η(H + ρH²), from the float Hessian
        H = np.asarray(landscape.hessian(cp.point))
        D = H if base == "gd" else H + float(rho) * H @ H
        np.testing.assert_allclose(J[:d, :d], np.eye(d) - float(eta) * D, rtol=0, atol=1e-12 * max(1.0, np.abs(D).max()))


def test_exact_jacobian_symbolic_form():
    J = st.exact_jacobian(SADDLE, (0, 0), sd.optim.usam())
    eta, rho, gamma = st.ETA, st.RHO, st.GAMMA
    H = sp.diag(2, -2)
    expected = sp.BlockMatrix([[sp.eye(2) - eta * (H + rho * H**2), -eta * gamma * sp.eye(2)], [H + rho * H**2, gamma * sp.eye(2)]]).as_explicit()
    assert sp.simplify(J - expected) == sp.zeros(4, 4)


# ---- 2. exact thresholds --------------------------------------------------------------------------

def test_rho_threshold_exact():
    assert st.rho_threshold(BEALE, (0, 1)) == sp.Rational(4, 111)
    assert st.rho_threshold(BEALE, BEALE_SADDLE) == sp.Rational(4, 111)
    assert st.rho_threshold(SADDLE, XY_SADDLE) == sp.Rational(1, 2)
    q = sd.landscapes.get("quadratic", eigenvalues=(3, sp.Rational(-1, 2), -2))
    # the negative eigenvalue closest to 0 decides: −1/(−1/2) = 2 (not −1/(−2) = 1/2)
    assert st.rho_threshold(q, (0, 0, 0)) == 2


# ---- 3. Theorem 1 of Kim et al. on random quadratics with saddles -------------------------------

def _random_saddle(rng, d):
    n_neg = rng.integers(1, d)
    signs = np.array([-1.0] * n_neg + [1.0] * (d - n_neg))
    lam = signs * rng.uniform(0.5, 3.0, d)
    Q, _ = np.linalg.qr(rng.standard_normal((d, d)))
    return lam, Q @ np.diag(lam) @ Q.T


@pytest.mark.parametrize("d", range(2, 11))
def test_kim_theorem1_random_quadratics(d):
    rng = np.random.default_rng(100 + d)
    lam, H = _random_saddle(rng, d)
    loss = lambda x: 0.5 * x @ (H @ x)  # noqa: E731  a plain loss function: classify accepts it
    rho_star = max(-1.0 / l for l in lam if l < 0)
    opt, seen = sd.optim.usam(), {"attractor": 0, "other": 0}
    for _ in range(40):
        rho = rho_star * (1 + rng.choice([-1, 1]) * rng.uniform(0.03, 0.6))
        D = lam + rho * lam**2
        eta = rng.uniform(0.3, 1.3) * 2 / np.max(D)
        # stay off the exact boundaries: ρ|λᵢ| = 1 for every negative λᵢ, and η max D = 2
        if np.min(np.abs(rho * np.abs(lam[lam < 0]) - 1)) < 0.02 or abs(eta * np.max(D) / 2 - 1) < 0.02:
            continue
        predicted = rho > rho_star and np.all((eta * D > 0) & (eta * D < 2))
        c = st.classify(opt, loss, np.zeros(d), sd.optim.hparams(lr=eta, rho=rho))
        assert (c.kind == "attractor") == predicted, (lam, eta, rho, c)
        np.testing.assert_allclose(np.sort(c.eigenvalues.real), np.sort(1 - eta * D), atol=1e-12)
        seen["attractor" if predicted else "other"] += 1
    assert seen["attractor"] >= 3 and seen["other"] >= 3, seen


# ---- 4. exact attractor regions (Jury) = numeric phase diagrams ----------------------------------

@pytest.mark.parametrize("landscape, cp", [(BEALE, BEALE_SADDLE), (SADDLE, XY_SADDLE), (BEALE, BEALE_MIN)], ids=["beale-saddle", "x2-y2", "beale-min"])
@pytest.mark.parametrize("opt", [sd.optim.usam(), sd.optim.usam(nesterov=True), sd.optim.gd()], ids=["usam", "usam-nesterov", "gd"])
def test_attractor_region_matches_phase_diagram(landscape, cp, opt):
    lam_max = float(np.max(np.abs(cp.eigenvalues)))
    rho_star = 1.0 / float(np.min(np.abs(cp.eigenvalues)))
    rho = np.linspace(0.0, 2.5, 21) * rho_star
    scale = lam_max if opt.name == "gd" else lam_max * (1 + rho_star * lam_max)
    lr = np.linspace(0.02, 5.0, 23) / scale
    mom = np.array([0.0, 0.3, 0.8])
    pd = st.phase_diagram(opt, landscape, cp, lr, rho, mom)
    region = st.attractor_region(landscape, cp, opt, momentum=True)
    L, R, G = np.meshgrid(lr, rho, mom, indexing="ij")
    inside = region.contains(L, R, G)
    clear = np.abs(pd.spectral_radius - 1) > 1e-6
    assert clear.mean() > 0.9
    np.testing.assert_array_equal(pd.kind_names()[clear] == "attractor", inside[clear])
    assert (~inside[clear]).any()
    assert inside[clear].any() == (opt.name != "gd" or cp.kind == "minimum")  # GD never attracts to a saddle
    # γ = 0: the momentum-free region agrees too
    region0 = st.attractor_region(landscape, cp, opt, momentum=False)
    np.testing.assert_array_equal(region0.contains(L[..., 0], R[..., 0])[clear[..., 0]], inside[..., 0][clear[..., 0]])


def test_jury_conditions_reduce_to_the_closed_forms():
    """Heavy ball: 1 − tr + det = ηD and 1 + tr + det = 2(1 + γ) − ηD; Nesterov: 2(1 + γ) − ηD(1 + 2γ)."""
    eta, rho, gamma = st.ETA, st.RHO, st.GAMMA
    for nest, upper in ((False, 2 * (1 + gamma) - eta * (2 + 4 * rho)), (True, 2 * (1 + gamma) - eta * (2 + 4 * rho) * (1 + 2 * gamma))):
        J = st.exact_jacobian(SADDLE, (0, 0), sd.optim.usam(nesterov=nest))
        block = J.extract([0, 2], [0, 2])  # the x-coordinate block: λ = 2, D = 2 + 4ρ
        tr, det = block.trace(), block.det()
        assert sp.expand(1 - tr + det - eta * (2 + 4 * rho)) == 0
        assert sp.expand(1 + tr + det - upper) == 0


# ---- 5. simulated runs agree with the classification on both sides of ρ* -------------------------

@pytest.mark.parametrize("landscape, cp, lr", [(BEALE, BEALE_SADDLE, 0.01), (SADDLE, XY_SADDLE, 0.1)], ids=["beale", "x2-y2"])
def test_simulation_agrees_with_classification_across_threshold(landscape, cp, lr):
    rho_star = float(st.rho_threshold(landscape, cp))
    rng = np.random.default_rng(7)
    starts = cp.point + 1e-3 * rng.standard_normal((8, 2))
    rhos = np.array([0.98, 1.02]) * rho_star
    kinds = [st.classify(sd.optim.usam(), landscape, cp, sd.optim.hparams(lr=lr, rho=r)).kind for r in rhos]
    assert kinds == ["saddle", "attractor"]
    run = sd.simulate(landscape, sd.optim.usam(), sd.optim.hparams(lr=lr, rho=rhos), starts, 8000)
    dist = np.linalg.norm(run.final - cp.point, axis=-1)
    assert not run.diverged[1].any() and np.all(dist[1] < 1e-8)  # above ρ*: every run converges to it
    # below ρ*: every run leaves the saddle (its start was ~1e-3 away) ...
    assert np.all(run.diverged[0] | (dist[0] > 1e-2))
    # ... to a minimum, to infinity, or to a USAM-only fixed point w° ≠ critical with w° + ρ∇f(w°) = saddle
    # (born from the saddle as ρ crosses ρ*); such a point is itself a fixed point of the map: classify it
    hp = sd.optim.hparams(lr=lr, rho=rhos[0])
    for w, div in zip(run.final[0], run.diverged[0]):
        if div or np.linalg.norm(w) > 1e3 or any(np.linalg.norm(w - c.point) < 1e-8 for c in landscape.critical_points() if c.kind == "minimum"):
            continue
        g = np.asarray(landscape.grad(w))
        assert np.linalg.norm(g) > 0.1 and np.linalg.norm(w + rhos[0] * g - cp.point) < 1e-10
        assert st.classify(sd.optim.usam(), landscape, w, hp).kind == "attractor"


def test_normalised_sam_at_x2_minus_y2_is_a_stable_two_cycle():
    """SAM at the saddle: no Jacobian; a stable 2-cycle ±a·e_x that Kim et al.'s demo run falls into."""
    hp = sd.optim.hparams(lr=0.01, rho=0.5)
    c = st.classify(sd.optim.sam(), SADDLE, XY_SADDLE, hp)
    assert c.kind == st.NON_DIFFERENTIABLE and c.eigenvalues is None and "periodic_orbits" in c.note
    closed = st.sam_quadratic_cycle([2.0, -2.0], 0, 0.01, 0.5, eps=sd.optim.sam().options[0][1])
    run = sd.simulate(SADDLE, sd.optim.sam(), hp, [-3.0, -0.01], 3000, record="trajectory", every=1)
    np.testing.assert_allclose(np.abs(run.trajectory[-2:, 0]), closed.amplitude, rtol=1e-12)
    assert np.all(np.abs(run.trajectory[-2:, 1]) < 1e-12)
    assert run.trajectory[-1, 0] == pytest.approx(-run.trajectory[-2, 0], rel=1e-12)
    assert closed.kind == "attractor"


# ---- 6. periodic orbits: normalised SAM's 2-cycle on quadratics (closed form) --------------------

@pytest.mark.parametrize("k", [0, 1, 2])
@pytest.mark.parametrize("lr, rho", [(0.1, 0.5), (0.3, 0.05)])
def test_sam_two_cycle_matches_closed_form(k, lr, rho):
    lam = [3.0, 1.0, -2.0]
    opt = sd.optim.sam()
    eps = dict(opt.options)["eps"]
    f = sd.landscapes.get("quadratic", eigenvalues=(3, 1, -2))
    closed = st.sam_quadratic_cycle(lam, k, lr, rho, eps=eps)
    e = np.eye(3)[k]
    starts = closed.amplitude * np.array([1.05, -0.9])[:, None] * e[None] + 1e-3 * closed.amplitude * np.eye(3)[(k + 1) % 3]
    orbits = st.periodic_orbits(opt, f, sd.optim.hparams(lr=lr, rho=rho), starts)
    along = [o for o in orbits if np.allclose(np.abs(o.points) @ (1 - e), 0, atol=1e-12)]
    assert len(along) == 1
    o = along[0]
    np.testing.assert_allclose(np.sort(o.points[:, k]), [-closed.amplitude, closed.amplitude], rtol=1e-12)
    np.testing.assert_allclose(np.sort(o.multipliers.real), np.sort(closed.multipliers), rtol=0, atol=1e-10)
    assert np.all(o.multipliers.imag == 0) and o.kind == closed.kind


def test_bartlett_long_bousquet_amplitude():
    # a = ηλ₁ρ/(2 − ηλ₁) at eps = 0, as stated by Bartlett, Long & Bousquet
    c = st.sam_quadratic_cycle([4.0, 1.0], 0, lr=0.2, rho=0.3)
    assert c.amplitude == pytest.approx(0.2 * 4 * 0.3 / (2 - 0.8), rel=1e-15)


def test_sam_cycle_on_beale_saddle_approaches_quadratic_closed_form():
    """At Beale's saddle the cycle converges to the quadratic prediction as ρ → 0 with error O(ρ)."""
    eta, v1 = 0.01, np.array([1.0, 1.0]) / np.sqrt(2)  # v1: eigenvector of H = [[0, 111/4], [111/4, 0]] for +27.75
    errs = []
    for rho in (1e-2, 1e-3):
        closed = st.sam_quadratic_cycle([27.75, -27.75], 0, eta, rho, eps=1e-12)
        starts = BEALE_SADDLE.point + closed.amplitude * np.array([[1.0], [1.2]]) * v1
        orbits = st.periodic_orbits(sd.optim.sam(), BEALE, sd.optim.hparams(lr=eta, rho=rho), starts)
        assert len(orbits) == 1 and orbits[0].kind == "attractor"  # the stall mechanism: a stable cycle at the saddle
        half = (orbits[0].points[1] - orbits[0].points[0]) / 2
        errs.append(max(abs(abs(half @ v1) / closed.amplitude - 1), np.max(np.abs(np.sort(orbits[0].multipliers.real) - np.sort(closed.multipliers)))))
    assert errs[1] < 0.2 * errs[0] and errs[1] < 1e-3, errs


# ---- 7. edges of stability --------------------------------------------------------------------------

def test_largest_stable_curvature_matches_closed_forms():
    lr = np.array([1e-3, 1e-2, 0.1])[:, None, None]
    rho = np.array([0.0, 0.05, 0.5])[None, :, None]
    mom = np.array([0.0, 0.5, 0.9])[None, None, :]
    for nest in (False, True):
        num = st.largest_stable_curvature(sd.optim.usam(nesterov=nest), lr, rho, mom)
        np.testing.assert_allclose(num, st.usam_edge(lr, rho, mom, nesterov=nest), rtol=1e-10)
    num = st.largest_stable_curvature(sd.optim.gd(), lr, 0.0, mom)
    np.testing.assert_allclose(num, np.broadcast_to(2 * (1 + mom) / lr, num.shape), rtol=1e-10)
    # Dai et al.: ηλ(1 + ρλ) = 2 at the edge
    lam = st.usam_edge(0.01, 0.5)
    assert 0.01 * lam * (1 + 0.5 * lam) == pytest.approx(2, rel=1e-13)
    # Long & Bartlett's SAM-edge: USAM with ρ/‖g‖, below 2/η and → 2/η as ‖g‖ grows
    g = np.array([1e-2, 1.0, 1e4])
    sam = st.largest_stable_curvature(sd.optim.sam(), 0.01, 0.05, grad_norm=g)
    np.testing.assert_allclose(sam, st.sam_edge(0.01, 0.05, g), rtol=1e-10)
    expected = g / (2 * 0.05) * (np.sqrt(1 + 8 * 0.05 / (0.01 * g)) - 1)
    np.testing.assert_allclose(sam, expected, rtol=1e-8)
    assert np.all(np.diff(sam) > 0) and sam[-1] < 200 and sam[-1] > 199
    with pytest.raises(st.NonDifferentiableError):
        st.largest_stable_curvature(sd.optim.sam(), 0.01, 0.05)


# ---- 8. basins -----------------------------------------------------------------------------------------

def test_basins_double_well_and_sam_cycle():
    f = sd.landscapes.from_expr("(x**2 - 1)**2 + y**2", ["x", "y"], domain=[(-2, 2), (-2, 2)])
    cps = f.critical_points()
    idx = {tuple(np.round(c.point, 6)): i for i, c in enumerate(cps)}
    xs = np.array([-1.5, -0.7, -0.2, 0.0, 0.3, 1.2, 1.9])
    ys = np.array([-1.0, 0.0, 0.5])
    x0 = np.stack(np.meshgrid(xs, ys, indexing="ij"), axis=-1)
    b = st.basins(f, sd.optim.gd(), sd.optim.hparams(lr=0.05), x0, 2000)
    want = np.where(xs < 0, idx[(-1.0, 0.0)], np.where(xs > 0, idx[(1.0, 0.0)], idx[(0.0, 0.0)]))
    np.testing.assert_array_equal(b.labels, np.broadcast_to(want[:, None], b.labels.shape))
    assert not b.cycling.any() and np.all(b.period == 1)  # GD converges: fixed points
    # normalised SAM on x² − y² from the saddle's stable line y = 0: ends on the 2-cycle around the saddle
    starts = np.array([[[-3.0, 0.0], [2.0, 0.0], [1.0, 0.5]]])
    b = st.basins(SADDLE, sd.optim.sam(), sd.optim.hparams(lr=0.01, rho=0.5), starts, 3000)
    assert b.labels[0, :2].tolist() == [0, 0] and b.period[0, :2].tolist() == [2, 2]
    np.testing.assert_allclose(b.centre[0, :2], 0.0, atol=1e-12)  # the ±a·e_x cycle is centred on the saddle
    # from y0 = 0.5 the −y² direction wins long before x reaches the cycle: the run escapes past the
    # blow-up bound (1e12), still finite, and is labelled diverged
    assert b.labels[0, 2] == st.DIVERGED and not b.cycling[0, 2] and abs(b.final[0, 2, 1]) > 1e20


# ---- 9. bad input ---------------------------------------------------------------------------------------

def test_bad_input_is_refused_before_compute():
    hp = sd.optim.hparams(lr=0.01, rho=0.05)
    with pytest.raises(st.NotAFixedPointError, match="not a fixed point"):
        st.classify(sd.optim.usam(), BEALE, [0.5, 0.5], hp)
    with pytest.raises(st.NotAFixedPointError):
        st.classify(sd.optim.gd(), BEALE, BEALE_SADDLE, hp, state=[1e-3, 0.0])
    with pytest.raises(st.NotAFixedPointError):
        st.exact_jacobian(BEALE, (1, 1), "usam")
    with pytest.raises(st.NotAFixedPointError):
        st.phase_diagram(sd.optim.usam(), BEALE, [0.5, 0.5], [0.01], [0.1])
    with pytest.raises(st.NonDifferentiableError):
        st.jacobian(sd.optim.sam(), BEALE, BEALE_SADDLE, hp)
    with pytest.raises(st.NonDifferentiableError):
        st.exact_jacobian(BEALE, (0, 1), sd.optim.sam())
    with pytest.raises(st.NonDifferentiableError):
        st.phase_diagram(sd.optim.sam(), BEALE, BEALE_SADDLE, [0.01], [0.1])
    with pytest.raises(ValueError, match="not a saddle"):
        st.rho_threshold(BEALE, BEALE_MIN)
    with pytest.raises(ValueError, match="non-empty"):
        st.phase_diagram(sd.optim.usam(), BEALE, BEALE_SADDLE, [], [0.1])
    with pytest.raises(ValueError, match="lr must be > 0"):
        st.phase_diagram(sd.optim.usam(), BEALE, BEALE_SADDLE, [-0.1], [0.1])
    with pytest.raises(ValueError, match="coordinates"):
        st.classify(sd.optim.usam(), BEALE, [0.0, 1.0, 2.0], hp)
    with pytest.raises(ValueError, match="scalar"):
        st.classify(sd.optim.usam(), BEALE, BEALE_SADDLE, sd.optim.hparams(lr=[0.1, 0.2]))
    with pytest.raises(ValueError, match="period"):
        st.periodic_orbits(sd.optim.sam(), SADDLE, hp, [[1.0, 0.0]], period=1)
    # a SAM Jacobian away from critical points is fine (finite, the map is smooth there)
    assert np.all(np.isfinite(st.jacobian(sd.optim.sam(), BEALE, [0.5, 0.5], hp)))


# ---- 10. plot helpers draw what they are given -----------------------------------------------------

def test_plot_helpers_draw_the_data():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    pd = st.phase_diagram(sd.optim.usam(), SADDLE, XY_SADDLE, [0.05, 0.1, 0.2], [0.2, 0.4, 0.6, 0.8])
    fig, (a1, a2) = plt.subplots(1, 2)
    plotting.phase_diagram(a1, pd, curve=([0.05, 0.2], [0.5, 0.5]))
    np.testing.assert_array_equal(np.asarray(a1.collections[0].get_array()).reshape(4, 3), pd.kind[:, :, 0].T)
    b = st.basins(SADDLE, sd.optim.usam(), sd.optim.hparams(lr=0.1, rho=0.6), np.array([[[0.1, 0.1], [0.2, -0.1]]]), 500)
    plotting.basins(a2, b, extent=(0.1, 0.2, -0.1, 0.1))
    np.testing.assert_array_equal(a2.images[0].get_array(), b.labels.T)
    assert b.labels.tolist() == [[0, 0]]  # USAM above ρ* = 1/2: the saddle attracts
    plt.close(fig)


# ---- 11. Kim et al.'s Beale run: normalised SAM stalls at (0, 1), but not on a stable 2-cycle --------

def test_normalised_sam_stalls_at_beale_saddle_without_a_stable_two_cycle():
    x, y = BEALE.symbols
    r = sp.Symbol("r", real=True)
    # the ascent step from next to (0, 1) lands near (±ρ, 1), where Beale's gradient is exactly ±(111/4)ρ e_y:
    # every step kicks y back across the saddle (f is constant on the line y = 1)
    assert list(BEALE.grad_expr.subs({x: r, y: 1}).applyfunc(sp.expand)) == [0, sp.Rational(111, 4) * r]
    rhos = np.array([0.1, 0.5, 1.0])
    run = sd.simulate(BEALE, sd.optim.sam(), sd.optim.hparams(lr=1.25e-5, rho=rhos), [1.0, 2.0], 87_683)
    dist = np.linalg.norm(run.final - BEALE_SADDLE.point, axis=-1)
    assert dist[0] > 1.0  # ρ = 0.1 escapes towards the minimum (3, 1/2)
    assert np.all(dist[1:] < 5 * 1.25e-5 * 27.75 * rhos[1:])  # ρ = 0.5, 1: stalled within a few ηρλ of the saddle
    # the trapped motion is not a stable 2-cycle: nearby orbits separate at a positive finite-time Lyapunov
    # exponent (≈ 0.19 / step for ρ = 0.5), yet the orbit stays within a few ηρλ of the saddle: bounded chaos
    hp = sd.optim.hparams(lr=1.25e-5, rho=0.5)
    lyap, end = st.lyapunov_exponents(sd.optim.sam(), BEALE, run.final[1], hp, 2000, state=run.final_momentum[1])
    assert lyap[0] > 0.05 and lyap.sum() < 0
    assert np.linalg.norm(end[:2] - BEALE_SADDLE.point) < 5 * 1.25e-5 * 27.75 * 0.5


def test_lyapunov_exponents_of_linear_maps():
    """On a quadratic the map is linear: exponents are log|eigenvalues of J| exactly (GD and USAM, momentum)."""
    f = sd.landscapes.get("quadratic", eigenvalues=(2, -1, sp.Rational(1, 2)))
    hp = sd.optim.hparams(lr=0.1, rho=0.3, momentum=0.5)
    J = st.jacobian(sd.optim.usam(), f, np.zeros(3), hp)
    expected = np.sort(np.log(np.abs(np.linalg.eigvals(J))))
    errs = [np.max(np.abs(np.sort(st.lyapunov_exponents(sd.optim.usam(), f, [0.3, -0.2, 0.1], hp, T)[0]) - expected)) for T in (750, 3000)]
    assert errs[1] < 1e-3 and 3.5 < errs[0] / errs[1] < 4.5, errs  # the finite-time error decays as 1/T
    lyap0, _ = st.lyapunov_exponents(sd.optim.gd(), f, [0.3, -0.2, 0.1], sd.optim.hparams(lr=0.1), 200)
    np.testing.assert_allclose(np.sort(lyap0), np.sort(np.log(np.abs(1 - 0.1 * np.array([2.0, -1.0, 0.5])))), atol=1e-12)
