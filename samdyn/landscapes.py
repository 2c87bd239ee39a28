"""Analytic test functions: sympy expressions compiled to JAX, with exact derivatives and critical points.

A :class:`Landscape` holds a sympy expression in ``d`` symbols and compiles it (``sympy.lambdify``
onto ``jax.numpy``, common subexpressions eliminated) into

* ``loss(x)``    — ``x`` of shape ``(d, *batch)`` → shape ``batch`` (a scalar for one point),
* ``grad(x)``    — → shape ``(d, *batch)``,
* ``hessian(x)`` — → shape ``(d, d, *batch)``,

all from the *exact* symbolic derivatives (``grad_expr``, ``hessian_expr``). The coordinate axis
comes first so that a cloud of points can keep its particle axis last and contiguous; for a single
point ``x`` has shape ``(d,)`` and the functions are ordinary JAX functions (jit, vmap, grad).

``critical_points()`` lists every critical point in the landscape's ``domain`` with its value,
Hessian eigenvalues, Morse index and kind (minimum / saddle / maximum / degenerate). Points are exact
when sympy can give them: quadratic landscapes are solved as linear systems, and every numerically
found point is tried as a rational (``nsimplify``) and kept exact when the gradient vanishes there
*symbolically*. Otherwise they come from a vectorised Newton search on ∇f = 0 from a grid of starts,
deduplicated and polished to machine precision.

Registry: :func:`get` (``get("beale")``, ``get("rosenbrock", a=1, b=100)``), :func:`names`,
:func:`from_expr` for a user's own expression.
"""

from __future__ import annotations

import dataclasses
import functools
from typing import Callable, Sequence

import jax.numpy as jnp
import numpy as np
import sympy as sp

__all__ = ["Landscape", "CriticalPoint", "from_expr", "get", "names", "register"]

#: |eigenvalue| below this (relative to the largest |eigenvalue|, or absolute when all are tiny)
#: counts as zero when a critical point is classified.
EIG_RTOL = 1e-9


@dataclasses.dataclass(frozen=True, eq=False)
class CriticalPoint:
    """A point where ∇f = 0.

    Attributes:
        point: location, float64 array of shape (d,).
        value: f(point).
        eigenvalues: Hessian eigenvalues, ascending, float64 array of shape (d,).
        index: Morse index, the number of negative eigenvalues.
        kind: "minimum", "saddle", "maximum" or "degenerate" (a zero eigenvalue).
        exact: the location as sympy numbers when known exactly, else None.
        exact_hessian: the Hessian there as a sympy Matrix when ``exact`` is known, else None.
    """

    point: np.ndarray
    value: float
    eigenvalues: np.ndarray
    index: int
    kind: str
    exact: tuple | None = None
    exact_hessian: sp.Matrix | None = None

    def __repr__(self) -> str:
        where = self.exact if self.exact is not None else tuple(round(float(v), 6) for v in self.point)
        eigs = ", ".join(f"{e:.6g}" for e in self.eigenvalues)
        return f"CriticalPoint({self.kind} at {where}, value={self.value:.6g}, eigenvalues=[{eigs}])"


def _lambdify(exprs, symbols, module):
    return sp.lambdify(symbols, exprs, modules=module, cse=True)


def _stack_entries(entries, like):
    """Stack lambdified entries (arrays or Python constants) into one array shaped like ``like``."""
    return jnp.stack([jnp.broadcast_to(jnp.asarray(e, dtype=like.dtype), like.shape) for e in entries])


@dataclasses.dataclass(frozen=True, eq=False)
class Landscape:
    """An analytic loss f: ℝᵈ → ℝ from a sympy expression.

    Attributes:
        name: registry name or a label.
        expr: the sympy expression.
        symbols: its variables, in coordinate order.
        domain: plotting / search box, one ``(low, high)`` per coordinate.
        params: the registry parameters it was built with (for labels).
        minimum_hint: optional known global minimiser (for plots, demos and distances).

    Compiled functions take ``x`` with the coordinate axis first: ``(d,)`` or ``(d, *batch)``.
    Instances hash by identity; :func:`get` caches them, so the same name and parameters give the
    same object and simulations compiled for it are reused.
    """

    name: str
    expr: sp.Expr
    symbols: tuple
    domain: tuple
    params: tuple = ()
    minimum_hint: tuple | None = None

    def __post_init__(self):
        if len(self.domain) != len(self.symbols):
            raise ValueError(f"{self.name}: domain has {len(self.domain)} intervals for {self.dim} variables")
        extra = self.expr.free_symbols - set(self.symbols)
        if extra:
            raise ValueError(f"{self.name}: expression has symbols {sorted(map(str, extra))} not in {self.symbols}")

    # ---- exact derivatives -------------------------------------------------------------------
    @property
    def dim(self) -> int:
        """Number of variables d."""
        return len(self.symbols)

    @functools.cached_property
    def grad_expr(self) -> sp.Matrix:
        """Exact gradient, a d×1 sympy Matrix."""
        return sp.Matrix([sp.diff(self.expr, s) for s in self.symbols])

    @functools.cached_property
    def hessian_expr(self) -> sp.Matrix:
        """Exact Hessian, a d×d sympy Matrix."""
        return sp.hessian(self.expr, self.symbols)

    # ---- JAX -----------------------------------------------------------------------------------
    @functools.cached_property
    def _jax_fns(self):
        f = _lambdify(self.expr, self.symbols, jnp)
        g = _lambdify(list(self.grad_expr), self.symbols, jnp)
        h = _lambdify(list(self.hessian_expr), self.symbols, jnp)
        return f, g, h

    def _check(self, x):
        x = jnp.asarray(x)
        if x.ndim == 0 or x.shape[0] != self.dim:
            raise ValueError(f"{self.name}: expected x with leading axis of size {self.dim}, got shape {x.shape}")
        return x

    def loss(self, x):
        """f(x) for ``x`` of shape (d, *batch); returns shape ``batch``."""
        x = self._check(x)
        value = self._jax_fns[0](*x)
        return jnp.broadcast_to(jnp.asarray(value, dtype=x.dtype), x.shape[1:])

    def grad(self, x):
        """∇f(x) for ``x`` of shape (d, *batch); returns shape (d, *batch)."""
        x = self._check(x)
        return _stack_entries(self._jax_fns[1](*x), x[0])

    def hessian(self, x):
        """∇²f(x) for ``x`` of shape (d, *batch); returns shape (d, d, *batch)."""
        x = self._check(x)
        flat = _stack_entries(self._jax_fns[2](*x), x[0])
        return flat.reshape((self.dim, self.dim) + x.shape[1:])

    # ---- NumPy float64 (critical points, plotting grids) -----------------------------------
    @functools.cached_property
    def _np_fns(self):
        f = _lambdify(self.expr, self.symbols, "numpy")
        g = _lambdify(list(self.grad_expr), self.symbols, "numpy")
        h = _lambdify(list(self.hessian_expr), self.symbols, "numpy")

        def vec(fn, like):
            return np.stack([np.broadcast_to(np.asarray(e, dtype=np.float64), like.shape) for e in fn])

        def loss(x):
            return np.broadcast_to(np.asarray(f(*x), dtype=np.float64), x.shape[1:])

        def grad(x):
            return vec(g(*x), x[0])

        def hess(x):
            return vec(h(*x), x[0]).reshape((self.dim, self.dim) + x.shape[1:])

        return loss, grad, hess

    def loss_numpy(self, x) -> np.ndarray:
        """f(x) in NumPy float64 for ``x`` of shape (d, *batch) (for plotting grids)."""
        return self._np_fns[0](np.asarray(x, dtype=np.float64))

    # ---- critical points -------------------------------------------------------------------
    def critical_points(self, *, starts_per_dim: int | None = None) -> tuple[CriticalPoint, ...]:
        """All critical points inside ``domain``, sorted by value then location.

        Args:
            starts_per_dim: grid resolution of the Newton starts (default 41 in 2-D, fewer in
                higher dimension; at most ~20 000 starts). Ignored for quadratic expressions,
                which are solved exactly.
        """
        cache = self.__dict__.setdefault("_critical_points_cache", {})
        if starts_per_dim not in cache:
            cache[starts_per_dim] = self._find_critical_points(starts_per_dim)
        return cache[starts_per_dim]

    def _find_critical_points(self, starts_per_dim):
        poly = sp.Poly(self.expr, *self.symbols) if self.expr.is_polynomial(*self.symbols) else None
        if poly is not None and poly.total_degree() <= 2:
            points = self._solve_linear()
        else:
            points = [self._rationalise(p) for p in self._newton_search(starts_per_dim)]
        found = [self._describe(p) for p in points]
        return tuple(sorted(found, key=lambda c: (round(c.value, 9), tuple(c.point))))

    def _solve_linear(self) -> list:
        """Exact critical points of a polynomial of degree ≤ 2 (a linear system)."""
        solutions = sp.linsolve(list(self.grad_expr), *self.symbols)
        points = []
        for sol in solutions:
            # A free symbol means a whole affine set of critical points: report one member.
            sol = tuple(sp.sympify(v).subs({s: 0 for s in self.symbols}) for v in sol)
            points.append(sol)
        return points

    def _newton_search(self, starts_per_dim) -> list[np.ndarray]:
        """Critical points from Newton's method on ∇f = 0 started on a grid over the domain."""
        d = self.dim
        n = starts_per_dim or max(3, min(41, int(round(20_000 ** (1 / d)))))
        lo = np.array([a for a, _ in self.domain], dtype=np.float64)
        hi = np.array([b for _, b in self.domain], dtype=np.float64)
        axes = [np.linspace(a, b, n) for a, b in zip(lo, hi)]
        x = np.stack([g.ravel() for g in np.meshgrid(*axes, indexing="ij")])  # (d, N)
        _, grad, hess = self._np_fns
        with np.errstate(all="ignore"):
            for _ in range(200):
                g = grad(x)
                H = np.moveaxis(hess(x), -1, 0)  # (N, d, d)
                step = _batched_solve(H, g.T)  # (N, d)
                x = x - step.T
                keep = np.all(np.isfinite(x), axis=0) & np.all(np.abs(x) < 1e6, axis=0)
                x = x[:, keep]
                if x.shape[1] == 0:
                    return []
            g = grad(x)
        scale = max(1.0, float(np.max(np.abs(hi - lo))))
        span = hi - lo
        inside = np.all((x >= lo[:, None] - 1e-9 * span[:, None]) & (x <= hi[:, None] + 1e-9 * span[:, None]), axis=0)
        gscale = np.maximum(1.0, np.abs(self.loss_numpy(x)))
        ok = inside & (np.linalg.norm(g, axis=0) < 1e-7 * gscale)
        cand = x[:, ok].T
        unique: list[np.ndarray] = []
        for p in cand[np.lexsort(cand.T[::-1])] if len(cand) else []:
            if not any(np.linalg.norm(p - q) < 1e-6 * scale for q in unique):
                unique.append(p)
        return unique

    def _rationalise(self, p: np.ndarray):
        """Exact sympy coordinates if a rational guess makes ∇f vanish symbolically, else ``p``."""
        guess = tuple(sp.nsimplify(float(v), tolerance=1e-8, rational=True) for v in p)
        if all(abs(float(g) - v) < 1e-6 * max(1.0, abs(v)) for g, v in zip(guess, p)):
            sub = dict(zip(self.symbols, guess))
            if all(sp.simplify(c.subs(sub)) == 0 for c in self.grad_expr):
                return guess
        return p

    def _describe(self, p) -> CriticalPoint:
        exact = tuple(p) if isinstance(p, tuple) else None
        point = np.array([float(v) for v in p], dtype=np.float64)
        x = point[:, None]
        if exact is not None:
            sub = dict(zip(self.symbols, exact))
            exact_h = self.hessian_expr.subs(sub)
            value = float(self.expr.subs(sub))
            eig = np.linalg.eigvalsh(np.array(exact_h.evalf(30), dtype=np.float64))
        else:
            exact_h = None
            value = float(self.loss_numpy(x)[0])
            eig = np.linalg.eigvalsh(self._np_fns[2](x)[..., 0])
        tol = EIG_RTOL * max(1.0, float(np.max(np.abs(eig))))
        if np.any(np.abs(eig) <= tol):
            kind = "degenerate"
        elif np.all(eig > 0):
            kind = "minimum"
        elif np.all(eig < 0):
            kind = "maximum"
        else:
            kind = "saddle"
        return CriticalPoint(point, value, eig, int(np.sum(eig < -tol)), kind, exact, exact_h)


def _batched_solve(H: np.ndarray, g: np.ndarray) -> np.ndarray:
    """Solve H_n s_n = g_n for each n; pseudo-inverse where H_n is singular (degenerate points)."""
    out = np.empty_like(g)
    cond = np.linalg.cond(H)
    regular = np.isfinite(cond) & (cond < 1e12)
    if np.any(regular):
        out[regular] = np.linalg.solve(H[regular], g[regular][..., None])[..., 0]
    if np.any(~regular):
        out[~regular] = np.einsum("nij,nj->ni", np.linalg.pinv(H[~regular]), g[~regular])
    return out


# ---- registry ----------------------------------------------------------------------------------

_REGISTRY: dict[str, Callable[..., Landscape]] = {}


def register(name: str):
    """Decorator: register a landscape factory under ``name`` (its keyword arguments are params)."""

    def deco(factory):
        _REGISTRY[name] = factory
        return factory

    return deco


def names() -> list[str]:
    """Names of the registered landscapes, sorted."""
    return sorted(_REGISTRY)


def _freeze(value):
    """Nested lists / arrays → nested tuples, so parameters can key the cache."""
    if isinstance(value, np.ndarray):
        value = value.tolist()
    if isinstance(value, (list, tuple)):
        return tuple(_freeze(v) for v in value)
    return value


def get(name: str, **params) -> Landscape:
    """The registered landscape ``name`` built with ``params`` (cached: same args, same object).

    >>> get("beale").critical_points()[0].kind
    'minimum'
    """
    if name not in _REGISTRY:
        raise KeyError(f"unknown landscape {name!r}; known: {', '.join(names())}")
    frozen = tuple(sorted((k, _freeze(v)) for k, v in params.items()))
    return _build(name, frozen)


@functools.lru_cache(maxsize=None)
def _build(name, frozen_params):
    return _REGISTRY[name](**dict(frozen_params))


def _exact(value):
    """A sympy number: ints and sympy values as they are, floats as their shortest decimal."""
    if isinstance(value, sp.Basic):
        return value
    if isinstance(value, (int, np.integer)):
        return sp.Integer(int(value))
    return sp.Rational(repr(float(value)))


def from_expr(expr, symbols: Sequence, *, name: str = "custom", domain=None, minimum_hint=None) -> Landscape:
    """A Landscape from the user's own sympy expression (or string) in ``symbols``.

    Args:
        expr: sympy expression or a string sympy can parse.
        symbols: the variables in coordinate order (sympy Symbols or their names).
        domain: ``(low, high)`` per variable for plots and the critical-point search
            (default (-3, 3) each).

    >>> lam = from_expr("x**2 + 3*y**2", ["x", "y"])
    >>> [c.kind for c in lam.critical_points()]
    ['minimum']
    """
    syms = tuple(sp.Symbol(s) if isinstance(s, str) else s for s in symbols)
    if len(set(syms)) != len(syms) or not syms:
        raise ValueError(f"from_expr: symbols must be distinct and non-empty, got {symbols!r}")
    local = {str(s): s for s in syms}
    e = sp.sympify(expr, locals=local) if isinstance(expr, str) else sp.sympify(expr)
    dom = tuple((float(a), float(b)) for a, b in (domain or [(-3.0, 3.0)] * len(syms)))
    for a, b in dom:
        if not a < b:
            raise ValueError(f"from_expr: each domain interval needs low < high, got {(a, b)}")
    return Landscape(name, e, syms, dom, (), minimum_hint)


def _xy():
    return sp.symbols("x y", real=True)


@register("quadratic")
def quadratic(eigenvalues=(1, -1), rotation=None) -> Landscape:
    """f(x) = ½ xᵀ H x with H = R diag(λ) Rᵀ in any dimension: a saddle of index #(λ < 0).

    Args:
        eigenvalues: λ₁…λ_d (ints or fractions stay exact; floats are read as their decimal).
        rotation: optional orthogonal d×d matrix R (default identity).
    """
    lam = [_exact(v) for v in eigenvalues]
    d = len(lam)
    if d == 0:
        raise ValueError("quadratic: give at least one eigenvalue")
    H = sp.diag(*lam)
    if rotation is not None:
        R = sp.Matrix(np.asarray(rotation, dtype=object).tolist()).applyfunc(_exact)
        if R.shape != (d, d):
            raise ValueError(f"quadratic: rotation must be {d}x{d}, got {R.shape}")
        if not np.allclose(np.array((R * R.T).evalf(), dtype=float), np.eye(d), atol=1e-9):
            raise ValueError("quadratic: rotation must be orthogonal (R Rᵀ = I)")
        H = R * H * R.T
    xs = sp.Matrix(sp.symbols(f"x1:{d + 1}", real=True))
    expr = sp.expand((xs.T * H * xs)[0] / 2)
    return Landscape("quadratic", expr, tuple(xs), ((-2.0, 2.0),) * d, (("eigenvalues", tuple(eigenvalues)),), (0.0,) * d)


@register("saddle")
def saddle(a=1, b=1) -> Landscape:
    """f = a x² − b y², the plain saddle (Kim et al.'s demo uses a = b = 1)."""
    x, y = _xy()
    return Landscape("saddle", _exact(a) * x**2 - _exact(b) * y**2, (x, y), ((-4.5, 4.5), (-4.5, 4.5)), (("a", a), ("b", b)))


@register("monkey_saddle")
def monkey_saddle() -> Landscape:
    """f = x³ − 3 x y², a degenerate saddle at the origin (zero Hessian)."""
    x, y = _xy()
    return Landscape("monkey_saddle", x**3 - 3 * x * y**2, (x, y), ((-2.0, 2.0), (-2.0, 2.0)))


@register("rosenbrock")
def rosenbrock(a=1, b=100) -> Landscape:
    """f = (a − x)² + b (y − x²)², minimum at (a, a²)."""
    x, y = _xy()
    a_, b_ = _exact(a), _exact(b)
    half = 2.0 * max(1.0, abs(float(a_)))  # (-2, 2) x (-1, 3) for a = 1, always holding (a, a²)
    return Landscape(
        "rosenbrock", (a_ - x) ** 2 + b_ * (y - x**2) ** 2, (x, y), ((-half, half), (-1.0, float(a_**2) + 2.0)),
        (("a", a), ("b", b)), (float(a_), float(a_**2)),
    )


@register("beale")
def beale() -> Landscape:
    """Beale: (3/2 − x + xy)² + (9/4 − x + xy²)² + (21/8 − x + xy³)²; minimum (3, 1/2), saddle (0, 1)."""
    x, y = _xy()
    c = [sp.Rational(3, 2), sp.Rational(9, 4), sp.Rational(21, 8)]
    expr = sum((ci - x + x * y ** (i + 1)) ** 2 for i, ci in enumerate(c))
    return Landscape("beale", expr, (x, y), ((-4.5, 4.5), (-4.5, 4.5)), (), (3.0, 0.5))


@register("himmelblau")
def himmelblau() -> Landscape:
    """Himmelblau: (x² + y − 11)² + (x + y² − 7)²; four minima, four saddles, one maximum."""
    x, y = _xy()
    return Landscape("himmelblau", (x**2 + y - 11) ** 2 + (x + y**2 - 7) ** 2, (x, y), ((-5.0, 5.0), (-5.0, 5.0)), (), (3.0, 2.0))


@register("six_hump_camel")
def six_hump_camel() -> Landscape:
    """Six-hump camel: (4 − 2.1x² + x⁴/3) x² + xy + (−4 + 4y²) y²; two global minima ≈ −1.0316."""
    x, y = _xy()
    expr = (4 - sp.Rational(21, 10) * x**2 + x**4 / 3) * x**2 + x * y + (-4 + 4 * y**2) * y**2
    return Landscape("six_hump_camel", expr, (x, y), ((-3.0, 3.0), (-2.0, 2.0)))
