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
:func:`from_expr` for a user's own expression. Expression strings are read by :func:`parse`, a
whitelist parser that builds the sympy expression itself: it never evaluates the text.

Non-smooth functions (``Abs``, ``sign``, ``Heaviside``, ``Max``, ``Min``) are allowed; their
derivatives hold almost everywhere: ``DiracDelta`` terms are dropped (taken as 0), and at a kink the
values are sympy's: d|x|/dx = sign(x) with sign(0) = 0, Heaviside(0) = 1/2, so
∂Max(x, y)/∂x = Heaviside(x − y) is 1/2 on the tie x = y.
"""

from __future__ import annotations

import ast
import builtins
import dataclasses
import fractions
import functools
import inspect
import keyword
import operator
import re
import unicodedata
from typing import Callable, Sequence

import jax.numpy as jnp
import numpy as np
import sympy as sp

from . import checks

__all__ = ["Landscape", "CriticalPoint", "from_expr", "parse", "get", "names", "register", "FUNCTIONS", "CONSTANTS"]

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


#: names the generated code may look up (NumPy / jax.numpy functions, builtins, lambdify's helpers);
#: a variable with one of these names is renamed in the compiled code so that it cannot shadow them.
_NAMESPACE = frozenset(dir(jnp)) | frozenset(dir(np)) | frozenset(dir(builtins)) | {
    "jax", "numpy", "builtins", "reduce", "select", "Abs", "I"}


def _lambdify(exprs, symbols, module):
    if any(str(s) in _NAMESPACE for s in symbols):  # e.g. a variable "e" or "select": rename it
        rename = {s: sp.Dummy(real=True) for s in symbols}
        exprs = [e.xreplace(rename) for e in exprs] if isinstance(exprs, list) else exprs.xreplace(rename)
        symbols = [rename[s] for s in symbols]
    return sp.lambdify(symbols, exprs, modules=module, cse=True)


def _almost_everywhere(expr):
    """Drop ``DiracDelta`` terms of a derivative (they vanish off a null set; see the module docstring)."""
    if not expr.has(sp.DiracDelta):
        return expr
    return expr.replace(lambda a: isinstance(a, sp.DiracDelta), lambda a: sp.S.Zero)


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
        """Exact gradient, a d×1 sympy Matrix (almost everywhere for non-smooth functions)."""
        return sp.Matrix([_almost_everywhere(sp.diff(self.expr, s)) for s in self.symbols])

    @functools.cached_property
    def hessian_expr(self) -> sp.Matrix:
        """Exact Hessian, a d×d sympy Matrix (almost everywhere for non-smooth functions)."""
        return sp.hessian(self.expr, self.symbols).applyfunc(_almost_everywhere)

    # ---- JAX -----------------------------------------------------------------------------------
    @functools.cached_property
    def _jax_fns(self):
        f = _lambdify(self.expr, self.symbols, "jax")
        g = _lambdify(list(self.grad_expr), self.symbols, "jax")
        h = _lambdify(list(self.hessian_expr), self.symbols, "jax")
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

    Raises:
        KeyError: ``name`` is not registered (the message lists the known names).
        TypeError, ValueError: a parameter the landscape does not take, or a bad value.

    >>> get("beale").critical_points()[0].kind
    'minimum'
    """
    checks.instance("get", "name", name, str, "the name of a registered landscape")
    if name not in _REGISTRY:
        raise KeyError(f"get: name must be a registered landscape (known: {', '.join(names())}), got {name!r}")
    signature = inspect.signature(_REGISTRY[name])
    if not any(p.kind is p.VAR_KEYWORD for p in signature.parameters.values()):
        for key, value in params.items():
            if key not in signature.parameters:
                known = ", ".join(signature.parameters) or "none"
                raise TypeError(f"get: params must be parameters of {name!r} ({known}), got {key}={checks.summary(value)}")
    frozen = tuple(sorted((k, _freeze(v)) for k, v in params.items()))
    return _build(name, frozen)


@functools.lru_cache(maxsize=None)
def _build(name, frozen_params):
    return _REGISTRY[name](**dict(frozen_params))


def _exact(value):
    """A sympy number: ints, fractions and sympy values exactly, floats as their shortest decimal."""
    if isinstance(value, sp.Basic):
        return value
    if isinstance(value, (int, np.integer)):
        return sp.Integer(int(value))
    if isinstance(value, fractions.Fraction):
        return sp.Rational(value.numerator, value.denominator)
    return sp.Rational(repr(float(value)))


def _real_param(where: str, name: str, value):
    """A finite real registry parameter, kept exact (see :func:`_exact`)."""
    checks.real(where, name, value)
    return _exact(value)


# ---- expression strings: a whitelist parser ------------------------------------------------------

#: Functions an expression string may call: name → (sympy function, fewest arguments, most
#: arguments or None for any number).
FUNCTIONS: dict[str, tuple] = {
    **{name: (getattr(sp, name), 1, 1) for name in (
        "exp", "log", "sqrt", "sin", "cos", "tan", "asin", "acos", "atan",
        "sinh", "cosh", "tanh", "asinh", "acosh", "atanh", "Abs", "sign", "Heaviside")},
    "Max": (sp.Max, 2, None),
    "Min": (sp.Min, 2, None),
}
#: Named constants an expression string may use.
CONSTANTS: dict[str, sp.Expr] = {"pi": sp.pi, "E": sp.E}

_ALLOWED = ("numbers, the declared symbols, + - * / ** (not ^), parentheses, the constants pi, E and calls of "
            + ", ".join(FUNCTIONS))
_BINARY = {ast.Add: operator.add, ast.Sub: operator.sub, ast.Mult: operator.mul, ast.Div: operator.truediv}
_UNARY = {ast.UAdd: operator.pos, ast.USub: operator.neg}
_KINDS = {
    ast.Attribute: "attribute access", ast.Subscript: "subscript", ast.Lambda: "lambda",
    ast.ListComp: "comprehension", ast.SetComp: "comprehension", ast.DictComp: "comprehension",
    ast.GeneratorExp: "comprehension", ast.Compare: "comparison", ast.BoolOp: "boolean operator",
    ast.IfExp: "conditional expression", ast.Tuple: "tuple", ast.List: "list", ast.Set: "set",
    ast.Dict: "dict", ast.NamedExpr: "assignment", ast.JoinedStr: "f-string", ast.Starred: "starred argument",
}
#: a number**number whose exact value would need more bits than this is refused (no 9**9**9 hang)
_MAX_POWER_BITS = 100_000


def _symbol_list(where: str, symbols) -> tuple:
    """``symbols`` as sympy Symbols: names (real symbols) or Symbols; a string is split on spaces / commas."""
    if isinstance(symbols, str):
        items = [s for s in re.split(r"[\s,]+", symbols) if s]
    elif isinstance(symbols, sp.Symbol):
        items = [symbols]
    elif isinstance(symbols, bytes) or not isinstance(symbols, Sequence):
        checks.fail(where, "symbols", "a sequence of names or sympy Symbols (or one string of names)", symbols, TypeError)
    else:
        items = list(symbols)
    if not items:
        checks.fail(where, "symbols", "at least one variable", symbols)
    out = []
    for i, item in enumerate(items):
        if not isinstance(item, (str, sp.Symbol)):
            checks.fail(where, f"symbols[{i}]", "a name or a sympy Symbol", item, TypeError)
        text = item if isinstance(item, str) else item.name
        if not text.isidentifier() or keyword.iskeyword(text) or text in FUNCTIONS or text in CONSTANTS:
            checks.fail(where, f"symbols[{i}]", "a Python identifier that is not a keyword, a function or a "
                        "constant of the expression language", item)
        out.append(sp.Symbol(text, real=True) if isinstance(item, str) else item)
    names_ = [unicodedata.normalize("NFKC", s.name) for s in out]
    if len(set(names_)) != len(names_):
        checks.fail(where, "symbols", "distinct names", [s.name for s in out])
    return tuple(out)


def parse(expr: str, symbols, *, where: str = "parse") -> sp.Expr:
    """The sympy expression written in ``expr``, built node by node from Python's ``ast`` (never evaluated).

    Allowed: int and float literals (also ``1.5e-3``; a float is read exactly as its shortest
    decimal, ``0.1`` → 1/10, as the registry reads its parameters), the declared ``symbols``,
    unary ``+ -``, binary ``+ - * / **``, parentheses, the constants in :data:`CONSTANTS` and calls
    of the functions in :data:`FUNCTIONS` with positional arguments. ``^`` is refused rather than
    read as a power (in Python it is XOR); write ``**``. Everything else — attribute access,
    subscripts, strings, lambdas, comprehensions, keyword arguments, comparisons, undeclared names —
    raises a ``ValueError`` that names the offending token and its column (1-based).

    Args:
        expr: the expression, e.g. ``"(x - 1)**2 + 3*sin(y)"``.
        symbols: its variables: names (made real sympy Symbols), sympy Symbols, or one string of
            names separated by spaces or commas.
        where: the public function named in error messages.

    >>> parse("x**2 - 0.5*y + exp(-x)", "x y")
    x**2 - y/2 + exp(-x)
    >>> parse("x^2", ["x"])
    Traceback (most recent call last):
    ...
    ValueError: parse: expr must use only numbers, ...; got the operator '^' (write ** for a power) at column 2
    """
    syms = _symbol_list(where, symbols)
    if not isinstance(expr, str):
        checks.fail(where, "expr", "a string", expr, TypeError)
    if not expr.strip():
        checks.fail(where, "expr", "a non-empty expression", expr)
    table = {unicodedata.normalize("NFKC", s.name): s for s in syms}
    shift = len(expr) - len(expr.lstrip())  # columns refer to ``expr`` as given
    source = expr.strip()
    lines = source.split("\n")
    starts = np.cumsum([0] + [len(line) + 1 for line in lines])

    def offset(lineno, col_bytes):
        """ast's (line, UTF-8 byte column) → character offset into ``source``."""
        return int(starts[lineno - 1]) + len(lines[lineno - 1].encode()[:col_bytes].decode(errors="ignore"))

    def position(off):
        lineno = int(np.searchsorted(starts, off, side="right"))
        col = off - int(starts[lineno - 1]) + 1
        return f"column {col + shift}" if len(lines) == 1 else f"line {lineno}, column {col + (shift if lineno == 1 else 0)}"

    def refuse(what, token, off, note=""):
        raise ValueError(f"{where}: expr must use only {_ALLOWED}; got {what} {token!r}{note} at {position(off)}")

    def refuse_node(node, what, note=""):
        refuse(what, ast.get_source_segment(source, node), offset(node.lineno, node.col_offset), note)

    def walk(node):
        if isinstance(node, ast.Constant):
            value = node.value
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                refuse_node(node, f"the {type(value).__name__} constant")
            if isinstance(value, int):
                return sp.Integer(value)
            if not np.isfinite(value):
                refuse_node(node, "a number too large for float64:")
            return sp.Rational(repr(value))
        if isinstance(node, ast.Name):
            if node.id in table:
                return table[node.id]
            if node.id in CONSTANTS:
                return CONSTANTS[node.id]
            if node.id in FUNCTIONS:
                refuse_node(node, "the function without arguments")
            refuse_node(node, "the undeclared name", f" (not in the symbols {', '.join(table)})")
        if isinstance(node, ast.UnaryOp):
            if type(node.op) not in _UNARY:
                refuse_node(node, "the unary operator in")
            return _UNARY[type(node.op)](walk(node.operand))
        if isinstance(node, ast.BinOp):
            if isinstance(node.op, ast.Pow):
                base, exponent = walk(node.left), walk(node.right)
                if isinstance(base, sp.Rational) and isinstance(exponent, sp.Rational) and (
                        max(abs(base.p), abs(base.q)).bit_length() * abs(exponent) > _MAX_POWER_BITS):
                    refuse_node(node, "a number too large to hold exactly:")
                return base**exponent
            if type(node.op) in _BINARY:
                return _BINARY[type(node.op)](walk(node.left), walk(node.right))
            # name the operator itself: the text between the operands, without brackets
            a = offset(node.left.end_lineno, node.left.end_col_offset)
            between = source[a:offset(node.right.lineno, node.right.col_offset)]
            token = between.strip(" \t\n()")
            note = " (write ** for a power)" if isinstance(node.op, ast.BitXor) else ""
            refuse("the operator", token, a + between.index(token), note)
        if isinstance(node, ast.Call):
            if not isinstance(node.func, ast.Name) or node.func.id not in FUNCTIONS:
                refuse_node(node, "the call")
            if node.keywords:
                refuse_node(node.keywords[0], "the keyword argument")
            func, low, high = FUNCTIONS[node.func.id]
            for arg in node.args:
                if isinstance(arg, ast.Starred):
                    refuse_node(arg, "the starred argument")
            if len(node.args) < low or (high is not None and len(node.args) > high):
                takes = f"{low}" if low == high else f"at least {low}"
                refuse_node(node, f"{len(node.args)} argument(s) where {node.func.id} takes {takes}:")
            return func(*[walk(a) for a in node.args])
        refuse_node(node, "the " + _KINDS.get(type(node), type(node).__name__.lower()))

    try:
        tree = ast.parse(source, mode="eval")
    except SyntaxError as err:
        line = err.lineno or 1
        col = (err.offset or 1) + (shift if line == 1 else 0)
        place = f"column {col}" if len(lines) == 1 else f"line {line}, column {col}"
        raise ValueError(f"{where}: expr must be a valid expression, got a syntax error ({err.msg}) at {place} "
                         f"of {checks.summary(expr)}") from None
    except (RecursionError, MemoryError, ValueError) as err:
        raise ValueError(f"{where}: expr must be a valid expression, got {type(err).__name__} while reading "
                         f"{checks.summary(expr)}") from None
    try:
        return walk(tree.body)
    except RecursionError:
        raise ValueError(f"{where}: expr must be nested less deeply, got {checks.summary(expr)}") from None


def _check_compiles(where: str, land: "Landscape") -> None:
    """Refuse, at construction, an expression whose loss or derivatives JAX code cannot be printed for."""
    allowed = {f for f, _, _ in FUNCTIONS.values()}
    for label, exprs in (("the expression", [land.expr]), ("the gradient", land.grad_expr),
                         ("the Hessian", land.hessian_expr)):
        bad = sorted({type(a).__name__ for e in exprs
                      for a in e.atoms(sp.Function, sp.Max, sp.Min, sp.Derivative, sp.Subs) if type(a) not in allowed})
        if bad:
            hint = "; declare sympy Symbols real=True" if {"re", "im", "Derivative"} & set(bad) else ""
            checks.fail(where, "expr", f"built from {', '.join(FUNCTIONS)} ({label} contains {', '.join(bad)}{hint})",
                        land.expr)


def from_expr(expr, symbols, *, name: str = "custom", domain=None, minimum_hint=None) -> Landscape:
    """A Landscape from the user's own expression in ``symbols``.

    Args:
        expr: a string, read by :func:`parse` (a whitelist; never evaluated), or a sympy expression
            built from the functions in :data:`FUNCTIONS`.
        symbols: the variables in coordinate order: names (made real sympy Symbols), sympy Symbols,
            or one string of names separated by spaces or commas.
        name: a label.
        domain: ``(low, high)`` per variable for plots and the critical-point search
            (default (-3, 3) each), shape (d, 2).
        minimum_hint: a known global minimiser, shape (d,), or None.

    Non-smooth functions are differentiated almost everywhere (see the module docstring).

    >>> lam = from_expr("x**2 + 3*y**2", ["x", "y"])
    >>> [c.kind for c in lam.critical_points()]
    ['minimum']
    >>> from_expr("abs(x)", "x")
    Traceback (most recent call last):
    ...
    ValueError: from_expr: expr must use only numbers, ... got the call 'abs(x)' at column 1
    """
    syms = _symbol_list("from_expr", symbols)
    checks.instance("from_expr", "name", name, str, "a string")
    if isinstance(expr, str):
        e = parse(expr, syms, where="from_expr")
    elif isinstance(expr, sp.Expr):
        e = expr
    else:
        checks.fail("from_expr", "expr", "a string or a sympy expression", expr, TypeError)
    d = len(syms)
    dom = checks.array("from_expr", "domain", [(-3.0, 3.0)] * d if domain is None else domain, shape=(d, 2))
    if not np.all(dom[:, 0] < dom[:, 1]):
        checks.fail("from_expr", "domain", "one (low, high) interval per variable with low < high", dom)
    hint = None
    if minimum_hint is not None:
        hint = tuple(checks.array("from_expr", "minimum_hint", minimum_hint, shape=(d,)).tolist())
    extra = e.free_symbols - set(syms)
    if extra:
        checks.fail("from_expr", "expr", f"an expression in the symbols {', '.join(map(str, syms))}", e)
    land = Landscape(name, e, syms, tuple(map(tuple, dom.tolist())), (), hint)
    _check_compiles("from_expr", land)
    return land


def _xy():
    return sp.symbols("x y", real=True)


@register("quadratic")
def quadratic(eigenvalues=(1, -1), rotation=None) -> Landscape:
    """f(x) = ½ xᵀ H x with H = R diag(λ) Rᵀ in any dimension: a saddle of index #(λ < 0).

    Args:
        eigenvalues: λ₁…λ_d, finite reals, shape (d,) (ints or fractions stay exact; floats are read
            as their decimal).
        rotation: optional orthogonal d×d matrix R (default identity), shape (d, d).
    """
    lam_ = checks.array("quadratic", "eigenvalues", eigenvalues, ndim=1)
    if lam_.size == 0:
        checks.fail("quadratic", "eigenvalues", "at least one finite real number", eigenvalues)
    lam = [_exact(v) for v in np.asarray(eigenvalues, dtype=object).ravel()]
    d = len(lam)
    H = sp.diag(*lam)
    if rotation is not None:
        R_ = checks.array("quadratic", "rotation", rotation, shape=(d, d))
        if not np.allclose(R_ @ R_.T, np.eye(d), atol=1e-9):
            checks.fail("quadratic", "rotation", "orthogonal (R Rᵀ = I to 1e-9)", R_)
        R = sp.Matrix([[_exact(v) for v in row] for row in np.asarray(rotation, dtype=object).tolist()])
        H = R * H * R.T
    xs = sp.Matrix(sp.symbols(f"x1:{d + 1}", real=True))
    expr = sp.expand((xs.T * H * xs)[0] / 2)
    return Landscape("quadratic", expr, tuple(xs), ((-2.0, 2.0),) * d, (("eigenvalues", tuple(eigenvalues)),), (0.0,) * d)


@register("saddle")
def saddle(a=1, b=1) -> Landscape:
    """f = a x² − b y², the plain saddle (Kim et al.'s demo uses a = b = 1); a, b finite reals."""
    a_, b_ = _real_param("saddle", "a", a), _real_param("saddle", "b", b)
    x, y = _xy()
    return Landscape("saddle", a_ * x**2 - b_ * y**2, (x, y), ((-4.5, 4.5), (-4.5, 4.5)), (("a", a), ("b", b)))


@register("monkey_saddle")
def monkey_saddle() -> Landscape:
    """f = x³ − 3 x y², a degenerate saddle at the origin (zero Hessian)."""
    x, y = _xy()
    return Landscape("monkey_saddle", x**3 - 3 * x * y**2, (x, y), ((-2.0, 2.0), (-2.0, 2.0)))


@register("rosenbrock")
def rosenbrock(a=1, b=100) -> Landscape:
    """f = (a − x)² + b (y − x²)², minimum at (a, a²); a, b finite reals."""
    a_, b_ = _real_param("rosenbrock", "a", a), _real_param("rosenbrock", "b", b)
    x, y = _xy()
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
