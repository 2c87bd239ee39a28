"""Landscapes: compiled JAX derivatives vs sympy, critical points vs known values."""

import jax
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


# ---- expression strings: a whitelist parser that never evaluates -------------------------------

def test_from_expr_never_runs_code(tmp_path):
    """The classic sympify injection: refused at the call, and the command never runs."""
    target = tmp_path / "ran"
    for text in (f"__import__('os').system('touch {target}')", f"open('{target}', 'w')",
                 f"x + __import__('pathlib').Path('{target}').touch()"):
        with pytest.raises(ValueError, match=r"from_expr: expr must use only .*; got the call .* at column \d+"):
            sd.landscapes.from_expr(text, ["x"])
    assert not target.exists()


@pytest.mark.parametrize("text, match", [
    ("__import__", r"got the undeclared name '__import__' \(not in the symbols x, y\) at column 1$"),
    ("().__class__", r"got the attribute access '\(\)\.__class__' at column 1$"),
    ("x.__class__", r"got the attribute access 'x\.__class__' at column 1$"),
    ("y + (lambda: 1)()", r"got the call '\(lambda: 1\)\(\)' at column 5$"),
    ("lambda: x", r"got the lambda 'lambda: x' at column 1$"),
    ("x + z", r"got the undeclared name 'z' \(not in the symbols x, y\) at column 5$"),
    ("x^2", r"got the operator '\^' \(write \*\* for a power\) at column 2$"),
    ("(x) % y", r"got the operator '%' at column 5$"),
    ("x[0]", r"got the subscript 'x\[0\]' at column 1$"),
    ("sum([x for x in (1, 2)])", r"got the call 'sum\(.*\)' at column 1$"),
    ("exp([x for x in (y,)][0])", r"got the subscript .* at column 5$"),
    ("Heaviside(x, H0=1)", r"got the keyword argument 'H0=1' at column 14$"),
    ("x + 'a'", r"got the str constant \"'a'\" at column 5$"),
    ("x < y", r"got the comparison 'x < y' at column 1$"),
    ("exp(x, 2)", r"got 2 argument\(s\) where exp takes 1: 'exp\(x, 2\)' at column 1$"),
    ("Max(x)", r"got 1 argument\(s\) where Max takes at least 2"),
    ("cot(x)", r"got the call 'cot\(x\)' at column 1$"),
    ("2*exp", r"got the function without arguments 'exp' at column 3$"),
    ("9**9**9", r"got a number too large to hold exactly: '9\*\*9\*\*9'"),
    ("1e400*x", r"got a number too large for float64: '1e400' at column 1$"),
    ("x +", r"be a valid expression, got a syntax error"),
    ("", r"be a non-empty expression, got ''$"),
    ("  ", r"be a non-empty expression, got '  '$"),
])
def test_parser_refuses_everything_outside_the_whitelist(text, match):
    with pytest.raises(ValueError, match=r"^from_expr: expr must .*" + match):
        sd.landscapes.from_expr(text, ["x", "y"])


@pytest.mark.parametrize("symbols, match, error", [
    (["lambda"], r"symbols\[0\] must be a Python identifier that is not a keyword.*got 'lambda'", ValueError),
    (["x", "if"], r"symbols\[1\] must be a Python identifier .*got 'if'", ValueError),
    (["x y"], r"symbols\[0\] must be a Python identifier .*got 'x y'", ValueError),
    (["x", ""], r"symbols\[1\] must be a Python identifier .*got ''", ValueError),
    (["exp"], r"symbols\[0\] must be a Python identifier that is not .* a function .*got 'exp'", ValueError),
    (["x", "x"], r"symbols must be distinct names, got \['x', 'x'\]", ValueError),
    ("x, x", r"symbols must be distinct names", ValueError),
    ([], r"symbols must be at least one variable", ValueError),
    (" , ", r"symbols must be at least one variable", ValueError),
    (3, r"symbols must be a sequence of names or sympy Symbols", TypeError),
    ([1.5], r"symbols\[0\] must be a name or a sympy Symbol, got 1.5", TypeError),
])
def test_bad_symbols_are_refused(symbols, match, error):
    with pytest.raises(error, match="^from_expr: " + match):
        sd.landscapes.from_expr("1", symbols)


def test_symbols_string_is_split_on_spaces_and_commas():
    want = sd.landscapes.from_expr("x*y - y", ["x", "y"])
    for spec in ("x y", "x, y", " x,y "):
        f = sd.landscapes.from_expr("x*y - y", spec)
        assert f.symbols == want.symbols and f.expr == want.expr
    assert all(s.is_real for s in want.symbols)


def test_parse_reads_every_registry_expression_back_identically(landscape):
    """The printed registry expressions parse back to the very same sympy trees."""
    text = str(landscape.expr)
    for symbols in (landscape.symbols, [s.name for s in landscape.symbols]):
        parsed = sd.landscapes.parse(text, symbols)
        assert sp.srepr(parsed) == sp.srepr(landscape.expr)
    assert sd.landscapes.parse(text, landscape.symbols) == sp.sympify(text, locals={s.name: s for s in landscape.symbols})


def test_parse_reads_decimals_exactly_and_knows_its_constants():
    x, y = sp.symbols("x y", real=True)
    assert sd.landscapes.parse("0.1*x + 1.5e-3 - 2E2*y", "x y") == x / 10 + sp.Rational(3, 2000) - 200 * y
    assert sd.landscapes.parse("-pi*x**-2 + E", "x") == -sp.pi * x**-2 + sp.E
    assert sd.landscapes.parse("α*x", "α x") == sp.Symbol("α", real=True) * x


SMOOTH_EXPRESSIONS = [
    "exp(x) * log(y**2 + 1) + sqrt(x**2 + 2)",
    "sin(x)*cos(y) + tan(x/4)",
    "asin(x/4) + acos(y/4) + atan(x*y)",
    "sinh(x/2) + cosh(y/2) + tanh(x*y)",
    "asinh(x) + acosh(y**2 + 2) + atanh(x/4)",
    "pi*x**2 + E**y",
    "exp(e) + Heaviside(select)*select**2 + e*select",  # variables named like NumPy names must not shadow them in the compiled code
]
NONSMOOTH_EXPRESSIONS = [
    "Abs(x) + y**2",
    "Max(x, y)**2 + Min(x, 1)",
    "sign(x)*x**3 + Heaviside(y)*y**2",
    "Abs(x*y) + sqrt(x**2 + 1)",
]


@pytest.mark.parametrize("text", SMOOTH_EXPRESSIONS + NONSMOOTH_EXPRESSIONS)
def test_every_whitelisted_function_compiles_to_jax_and_numpy(text):
    """loss / grad / hessian (JAX, jitted, batched) and loss_numpy equal sympy's values at points off the kinks."""
    symbols = "e select" if "select" in text else "x y"
    f = sd.landscapes.from_expr(text, symbols)
    pts = np.array([[0.7, -1.3], [-0.45, 0.35]]).T
    for point in pts.T:
        sub = dict(zip(f.symbols, map(sp.Float, point)))
        assert abs(float(f.loss(jnp.asarray(point))) - float(f.expr.subs(sub).evalf(30))) < 1e-12 * max(1, abs(float(f.expr.subs(sub))))
        np.testing.assert_allclose(f.grad(jnp.asarray(point)), _sympy_at(list(f.grad_expr), f, point).ravel(), rtol=1e-12, atol=1e-13)
        np.testing.assert_allclose(f.hessian(jnp.asarray(point)), _sympy_at(f.hessian_expr, f, point), rtol=1e-12, atol=1e-13)
    np.testing.assert_allclose(jax.jit(f.grad)(jnp.asarray(pts)), f.grad(jnp.asarray(pts)), rtol=1e-14)
    np.testing.assert_allclose(f.loss_numpy(pts), f.loss(jnp.asarray(pts)), rtol=1e-14)


def _central(fn, point, h=1e-6):
    cols = [(np.asarray(fn(point + h * e)) - np.asarray(fn(point - h * e))) / (2 * h) for e in np.eye(point.size)]
    return np.stack(cols, axis=-1)


@pytest.mark.parametrize("text", NONSMOOTH_EXPRESSIONS)
def test_nonsmooth_derivatives_equal_finite_differences_off_the_kinks(text):
    f = sd.landscapes.from_expr(text, "x y")
    rng = np.random.default_rng(5)
    kinks = lambda p: min(abs(p[0]), abs(p[1]), abs(p[0] - p[1]), abs(p[0] - 1))  # noqa: E731
    points = [p for p in rng.uniform(-2.5, 2.5, size=(40, 2)) if kinks(p) > 1e-2][:8]
    for p in points:
        np.testing.assert_allclose(f.grad(jnp.asarray(p)), _central(f.loss, p), rtol=1e-7, atol=1e-8)
        np.testing.assert_allclose(f.hessian(jnp.asarray(p)), _central(f.grad, p), rtol=1e-7, atol=1e-7)


def test_nonsmooth_derivatives_at_the_kinks_follow_the_stated_convention():
    """d|x|/dx = sign(x), sign(0) = 0; Heaviside(0) = 1/2; DiracDelta terms dropped (0)."""
    f = sd.landscapes.from_expr("Abs(x) + y**2", "x y")
    assert not any(e.has(sp.DiracDelta) for e in f.hessian_expr)
    np.testing.assert_array_equal(f.grad(jnp.array([0.0, 0.5])), [0.0, 1.0])
    np.testing.assert_array_equal(f.hessian(jnp.array([0.0, 0.5])), [[0.0, 0.0], [0.0, 2.0]])
    np.testing.assert_array_equal(f.grad(jnp.array([-2.0, 0.5])), [-1.0, 1.0])
    g = sd.landscapes.from_expr("Max(x, y)**2", "x y")  # tie x = y: ∂/∂x = 2 Max · Heaviside(0) = Max
    np.testing.assert_array_equal(g.grad(jnp.array([0.5, 0.5])), [0.5, 0.5])
    np.testing.assert_array_equal(g.hessian(jnp.array([0.5, 0.5])), [[0.5, 0.5], [0.5, 0.5]])
    h = sd.landscapes.from_expr("sign(x)*x**3 + Heaviside(y)*y**2", "x y")
    np.testing.assert_array_equal(h.grad(jnp.zeros(2)), [0.0, 0.0])
    np.testing.assert_array_equal(h.hessian(jnp.zeros(2)), [[0.0, 0.0], [0.0, 1.0]])
    (cp,) = f.critical_points()  # the kink minimum, degenerate for the almost-everywhere Hessian
    assert cp.exact == (0, 0) and cp.kind == "degenerate" and list(cp.eigenvalues) == [0.0, 2.0]


def test_expressions_that_cannot_compile_fail_at_construction():
    x = sp.Symbol("x")  # not real: d|x|/dx involves re, im and Derivative
    with pytest.raises(ValueError, match=r"from_expr: expr must be built from .*\(the gradient contains Derivative, im, re; "
                                         r"declare sympy Symbols real=True\), got Abs\(x\)"):
        sd.landscapes.from_expr(sp.Abs(x), [x])
    xr = sp.Symbol("x", real=True)
    with pytest.raises(ValueError, match=r"the expression contains floor\), got x\*\*2 \+ floor\(x\)"):
        sd.landscapes.from_expr(sp.floor(xr) + xr**2, [xr])
    with pytest.raises(TypeError, match=r"from_expr: expr must be a string or a sympy expression, got 3"):
        sd.landscapes.from_expr(3, "x")
    f = sd.landscapes.from_expr(sp.Abs(xr) + xr**2, [xr])  # real symbols: fine
    np.testing.assert_array_equal(f.grad(jnp.array([-1.0])), [-3.0])


@pytest.mark.parametrize("kwargs, match", [
    ({"domain": [(-1, 1)]}, r"from_expr: domain must be a finite real array of shape \(2, 2\)"),
    ({"domain": [(-1, 1), (2, 2)]}, r"from_expr: domain must be one \(low, high\) interval per variable with low < high"),
    ({"domain": [(-1, np.inf), (0, 1)]}, r"from_expr: domain must be a finite real array"),
    ({"minimum_hint": [0.0]}, r"from_expr: minimum_hint must be a finite real array of shape \(2,\)"),
    ({"name": 3}, r"from_expr: name must be a string, got 3"),
])
def test_from_expr_bad_arguments(kwargs, match):
    with pytest.raises((TypeError, ValueError), match=match):
        sd.landscapes.from_expr("x*y", "x y", **kwargs)


# ---- registry parameters -----------------------------------------------------------------------

@pytest.mark.parametrize("name, params, error, match", [
    ("quadratic", {"eigenvalues": [np.nan, 1]}, ValueError, r"quadratic: eigenvalues must be a finite real array with 1 dimension"),
    ("quadratic", {"eigenvalues": []}, ValueError, r"quadratic: eigenvalues must be at least one finite real number"),
    ("quadratic", {"eigenvalues": "ab"}, TypeError, r"quadratic: eigenvalues must be a finite real array"),
    ("quadratic", {"eigenvalues": [[1, 2]]}, ValueError, r"quadratic: eigenvalues must be a finite real array with 1 dimension"),
    ("quadratic", {"eigenvalues": (1, 2), "rotation": np.eye(3)}, ValueError, r"quadratic: rotation must be a finite real array of shape \(2, 2\)"),
    ("quadratic", {"eigenvalues": (1, 2), "rotation": [[1, np.nan], [0, 1]]}, ValueError, r"quadratic: rotation must be a finite real array"),
    ("quadratic", {"eigenvalues": (1, 2), "rotation": ((1, 1), (0, 1))}, ValueError, r"quadratic: rotation must be orthogonal"),
    ("rosenbrock", {"a": "x"}, TypeError, r"rosenbrock: a must be a finite real number, got 'x'"),
    ("rosenbrock", {"b": np.inf}, ValueError, r"rosenbrock: b must be a finite real number, got inf"),
    ("saddle", {"a": np.nan}, ValueError, r"saddle: a must be a finite real number, got nan"),
    ("saddle", {"b": [1, 2]}, TypeError, r"saddle: b must be a finite real number"),
    ("nope", {}, KeyError, r"get: name must be a registered landscape \(known: beale, .*six_hump_camel\), got 'nope'"),
    ("beale", {"a": 1}, TypeError, r"get: params must be parameters of 'beale' \(none\), got a=1"),
    ("rosenbrock", {"c": 3}, TypeError, r"get: params must be parameters of 'rosenbrock' \(a, b\), got c=3"),
])
def test_bad_registry_parameters(name, params, error, match):
    with pytest.raises(error, match=match):
        sd.landscapes.get(name, **params)


def test_registry_parameters_stay_exact():
    f = sd.landscapes.get("quadratic", eigenvalues=(0.1, sp.Rational(1, 3)), rotation=((0.6, -0.8), (0.8, 0.6)))
    assert all(isinstance(c, sp.Rational) for c in f.expr.as_coefficients_dict().values())
    assert sorted(f.critical_points()[0].exact_hessian.eigenvals()) == [sp.Rational(1, 10), sp.Rational(1, 3)]
    with pytest.raises(TypeError, match=r"get: name must be the name of a registered landscape, got 3"):
        sd.landscapes.get(3)
