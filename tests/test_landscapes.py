"""Landscapes: compiled JAX derivatives vs sympy, critical points vs known values."""

import jax.numpy as jnp
import numpy as np
import pytest
import sympy as sp

import samdyn as sd

REGISTRY = [(name, {}) for name in sd.landscapes.names() if name != "quadratic"] + [
    ("quadratic", {"eigenvalues": (3, -1, 2, -5)}),
    ("quadratic", {"eigenvalues": (2, -1), "rotation": ((0.6, -0.8), (0.8, 0.6))}),
    ("rosenbrock", {"a": 2, "b": 50}),
]


@pytest.fixture(params=REGISTRY, ids=lambda p: f"{p[0]}{p[1] or ''}")
def landscape(request):
    name, params = request.param
    return sd.landscapes.get(name, **params)


def _sympy_at(exprs, landscape, point):
    return np.array(sp.Matrix(exprs).subs(dict(zip(landscape.symbols, map(sp.Float, point)))).evalf(30), dtype=float)


def test_derivatives_match_sympy(landscape):
    rng = np.random.default_rng(0)
    lo, hi = np.array(landscape.domain).T
    for point in rng.uniform(lo, hi, size=(5, landscape.dim)):
        x = jnp.asarray(point)
        np.testing.assert_allclose(float(landscape.loss(x)), float(landscape.expr.subs(dict(zip(landscape.symbols, point)))), rtol=1e-12)
        np.testing.assert_allclose(landscape.grad(x), _sympy_at(list(landscape.grad_expr), landscape, point).ravel(), rtol=1e-11, atol=1e-11)
        np.testing.assert_allclose(landscape.hessian(x), _sympy_at(landscape.hessian_expr, landscape, point), rtol=1e-11, atol=1e-11)


def test_batched_layout_matches_pointwise(landscape):
    """Coordinate axis first, batch trailing: (d, *batch)."""
    rng = np.random.default_rng(1)
    pts = rng.normal(size=(landscape.dim, 3, 4))
    g = landscape.grad(pts)
    h = landscape.hessian(pts)
    assert g.shape == (landscape.dim, 3, 4) and h.shape == (landscape.dim, landscape.dim, 3, 4)
    np.testing.assert_allclose(g[:, 2, 1], landscape.grad(pts[:, 2, 1]), rtol=1e-14)
    np.testing.assert_allclose(h[..., 0, 3], landscape.hessian(pts[:, 0, 3]), rtol=1e-14)
    np.testing.assert_allclose(landscape.loss(pts)[1, 2], landscape.loss(pts[:, 1, 2]), rtol=1e-14)


def test_critical_points_have_zero_gradient_and_stated_eigenvalues(landscape):
    cps = landscape.critical_points()
    assert cps
    for cp in cps:
        assert np.linalg.norm(landscape.grad(jnp.asarray(cp.point))) < 1e-8 * max(1.0, abs(cp.value))
        eig = np.linalg.eigvalsh(np.asarray(landscape.hessian(jnp.asarray(cp.point))))
        np.testing.assert_allclose(cp.eigenvalues, eig, rtol=1e-9, atol=1e-9)
        assert cp.index == int(np.sum(eig < -1e-9 * max(1, np.abs(eig).max())))
        if cp.exact is not None:
            grad = landscape.grad_expr.subs(dict(zip(landscape.symbols, cp.exact)))
            assert all(sp.simplify(g) == 0 for g in grad)


def test_beale_saddle_is_exact():
    beale = sd.landscapes.get("beale")
    saddle = [cp for cp in beale.critical_points() if cp.exact == (0, 1)]
    assert len(saddle) == 1
    (cp,) = saddle
    assert cp.kind == "saddle" and cp.index == 1
    assert sp.Rational(cp.value) == sp.Rational("14.203125") and cp.value == 14.203125
    assert sorted(cp.exact_hessian.eigenvals()) == [sp.Rational(-111, 4), sp.Rational(111, 4)]
    np.testing.assert_array_equal(cp.eigenvalues, [-27.75, 27.75])
    minimum = beale.critical_points()[0]
    assert minimum.exact == (3, sp.Rational(1, 2)) and minimum.kind == "minimum" and minimum.value == 0


def test_himmelblau_has_four_minima_four_saddles_one_maximum():
    cps = sd.landscapes.get("himmelblau").critical_points()
    kinds = [cp.kind for cp in cps]
    assert (kinds.count("minimum"), kinds.count("saddle"), kinds.count("maximum")) == (4, 4, 1)
    assert all(abs(cp.value) < 1e-20 for cp in cps if cp.kind == "minimum")
    (top,) = [cp for cp in cps if cp.kind == "maximum"]
    np.testing.assert_allclose(top.point, [-0.270845, -0.923039], atol=1e-6)
    np.testing.assert_allclose(top.value, 181.617, atol=1e-3)


def test_six_hump_camel_known_structure():
    cps = sd.landscapes.get("six_hump_camel").critical_points()
    kinds = [cp.kind for cp in cps]
    assert (kinds.count("minimum"), kinds.count("saddle"), kinds.count("maximum")) == (6, 7, 2)
    np.testing.assert_allclose(cps[0].value, -1.0316284534898774, rtol=1e-12)
    np.testing.assert_allclose(np.abs(cps[0].point), [0.0898420131003, 0.7126564030207], rtol=1e-10)


def test_exact_points_of_simple_landscapes():
    (m,) = sd.landscapes.get("rosenbrock", a=2, b=50).critical_points()
    assert m.exact == (2, 4) and m.kind == "minimum"
    (s,) = sd.landscapes.get("saddle").critical_points()
    assert s.exact == (0, 0) and s.kind == "saddle" and list(s.eigenvalues) == [-2, 2]
    (ms,) = sd.landscapes.get("monkey_saddle").critical_points()
    assert ms.exact == (0, 0) and ms.kind == "degenerate"


@pytest.mark.parametrize("eigs", [(1, 2, 3), (-1, 2, -3, 4, 5), (-1, -2)])
def test_quadratic_index_and_kind(eigs):
    (cp,) = sd.landscapes.get("quadratic", eigenvalues=eigs).critical_points()
    assert cp.index == sum(e < 0 for e in eigs)
    assert cp.kind == {0: "minimum", len(eigs): "maximum"}.get(cp.index, "saddle")
    np.testing.assert_array_equal(cp.eigenvalues, sorted(eigs))


def test_rotated_quadratic_hessian():
    R = np.array([[0.6, -0.8], [0.8, 0.6]])
    f = sd.landscapes.get("quadratic", eigenvalues=(2, -1), rotation=R)
    np.testing.assert_allclose(f.hessian(jnp.zeros(2)), R @ np.diag([2.0, -1.0]) @ R.T, rtol=1e-14)


def test_from_expr_user_function():
    f = sd.landscapes.from_expr("(x - 1)**2 * (x + 1)**2 + y**2", ["x", "y"])
    kinds = sorted((cp.exact, cp.kind) for cp in f.critical_points())
    assert kinds == [((-1, 0), "minimum"), ((0, 0), "saddle"), ((1, 0), "minimum")]


def test_registry_is_cached_and_bad_names_fail():
    assert sd.landscapes.get("beale") is sd.landscapes.get("beale")
    assert sd.landscapes.get("quadratic", eigenvalues=[1, -1]) is sd.landscapes.get("quadratic", eigenvalues=(1, -1))
    with pytest.raises(KeyError, match="known: .*beale"):
        sd.landscapes.get("bael")
    with pytest.raises(ValueError, match="leading axis of size 2"):
        sd.landscapes.get("beale").loss(jnp.zeros(3))
    with pytest.raises(ValueError, match="orthogonal"):
        sd.landscapes.get("quadratic", eigenvalues=(1, 2), rotation=((1, 1), (0, 1)))
    with pytest.raises(ValueError, match="not in"):
        sd.landscapes.from_expr("x + z", ["x", "y"])
