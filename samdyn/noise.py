"""Gradient oracles for one step: how ``simulate`` turns a problem's exact gradient into a noisy one.

A noise model is any object with two methods:

* ``sample(ctr, params) -> draws`` — the randomness of one step for a cloud of particles at once
  (every array leaf carries the particle axis *last*). ``ctr`` is the step's :class:`Counter` (the
  step key and each particle's id); ``params`` is the particle cloud, a pytree whose leaves have
  shape ``(*leaf_shape, lanes)``. Draws come from :func:`normal` / :func:`randint`, elementwise
  functions of (seed, step, particle id, element): a particle's noise never depends on which
  other particles share its chunk.
* ``oracle(problem, draws) -> grad_fn`` — for *one* particle's ``draws`` (particle axis removed),
  the function ``params -> grads`` that the optimizer's ``step`` calls. SAM calls it twice per step;
  whether both calls see the same draw (the default in practice: one minibatch per step) or
  independent ones is the model's choice.

``simulate(problem, opt, hp, x0, steps, noise=None)`` uses the exact gradient. With noise, the
engine builds each step's :class:`Counter` from (seed, step, particle id), so a particle's draws are
the same for any chunk size, device count, subset of particles or enclosing grid.

Models (all validate their input on construction, before any compute):

* :func:`gaussian` — additive ``g̃(w) = ∇f(w) + ξ``, ``ξ ~ N(0, std² I)`` or ``N(0, cov)``;
* :func:`hessian` — state-dependent ``ξ ~ N(0, |H(x)| / B)`` at the point ``x`` where the gradient is
  taken (Kim et al. 2023's SDE model, after Xie et al. 2021: gradient-noise covariance ≈ H/B).
  H is indefinite at a saddle, so a covariance is made from it by ``psd="abs"`` (``|H| = V|Λ|Vᵀ``,
  the default), ``psd="clip"`` (``V max(Λ, 0) Vᵀ``), or ``at=point`` (the fixed ``|H(point)|/B``: the
  covariance *at* the critical point, which is what the linearised theory uses);
* :func:`minibatch` — a real finite sum ``f = (1/n) Σᵢ fᵢ``; each step draws a batch of ``B`` indices
  *without replacement* and the oracle is the batch mean ``(1/B) Σ_{i∈batch} ∇fᵢ``. Components are
  either linear shifts ``fᵢ(w) = f(w) + ξᵢᵀw`` with ``Σ ξᵢ = 0`` (pass ``shifts``; the batch noise is
  then additive with the exact covariance :meth:`Minibatch.cov`), or a :class:`FiniteSum` such as
  :func:`least_squares` (``fᵢ(w) = ½ (xᵢᵀw − yᵢ)²``, state-dependent noise).

Same or independent draws for SAM's two gradients: every model takes ``independent=False``. The
oracle counts its calls while the step is traced: the first call (ascent gradient) uses draw 0,
later calls use draw 1 when ``independent=True`` and draw 0 otherwise.
"""

from __future__ import annotations

import dataclasses
import functools
from typing import Any, Callable, NamedTuple, Protocol

import jax
import jax.flatten_util
import jax.numpy as jnp
import jax.scipy.special
import numpy as np
from jax.extend.random import threefry2x32_p

from . import checks

__all__ = [
    "NoiseModel",
    "exact_oracle",
    "Gaussian",
    "HessianNoise",
    "Minibatch",
    "FiniteSum",
    "gaussian",
    "hessian",
    "minibatch",
    "least_squares",
    "centered_shifts",
    "Counter",
    "counter",
    "step_key",
    "normal",
    "randint",
    "SAMPLERS",
]


class NoiseModel(Protocol):
    """The protocol a gradient-noise model follows (see the module docstring)."""

    def sample(self, ctr: Counter, params) -> Any:
        """Draws for one step, particle axis last on every leaf."""

    def oracle(self, problem, draws) -> Callable:
        """``params -> grads`` for one particle, given its draws."""


def exact_oracle(problem) -> Callable:
    """The noiseless oracle: the problem's exact gradient."""
    return problem.grad


# ---- counter-based draws ----------------------------------------------------------------------


SAMPLERS = ("threefry", "fast")


class Counter(NamedTuple):
    """Where one step's randomness sits: the draws of a particle are a pure function of these.

    The engine builds one per step (see :mod:`samdyn.engine`); a noise model passes it to
    :func:`normal` / :func:`randint`, which hash it elementwise, so draws need no key splitting, fuse
    into the step, and do not depend on how particles are grouped into chunks or devices.

    Attributes:
        key: two uint32 words (scalars, or arrays broadcastable to the particle axis), derived from
            (seed, step) — and the setting, when settings do not share noise.
        particle: the particles' ids within their setting, uint32 of shape (lanes,).
    """

    key: Any
    particle: Any


def counter(seed: int, step: int, particle) -> Counter:
    """The :class:`Counter` of ``step`` (1-based) for particles ``particle`` under integer ``seed``.

    The step key is the Threefry-2x32 block cipher (Salmon et al. 2011; JAX's own PRNG) keyed by the
    seed's two 32-bit words, applied to the step's two words: distinct (seed, step) pairs give
    independent keys.

    >>> c = counter(0, 1, np.arange(3))
    >>> c.particle.dtype, len(c.key)
    (dtype('uint32'), 2)
    """
    seed_words = jnp.asarray([seed & 0xFFFFFFFF, (seed >> 32) & 0xFFFFFFFF], dtype=jnp.uint32)
    return Counter(step_key(seed_words, step), jnp.asarray(particle, dtype=jnp.uint32))


def step_key(seed_words, step, stream=None):
    """Two uint32 words keying step ``step`` (an integer, traced or not) of a run seeded ``seed_words``.

    ``stream`` (uint32, any shape) separates settings that must not share noise; the words then
    broadcast to its shape.
    """
    step = jnp.asarray(step)
    lo = step.astype(jnp.uint32)
    hi = (step >> 32).astype(jnp.uint32) if step.dtype.itemsize == 8 else jnp.zeros_like(lo)
    if stream is not None:
        hi = hi ^ _hash32(jnp.asarray(stream, jnp.uint32) + jnp.uint32(0x9E3779B9))
        lo = jnp.broadcast_to(lo, hi.shape)
    k0, k1 = _threefry(seed_words[0], seed_words[1], lo, hi)
    return (k0, k1)


def _threefry(k0, k1, x0, x1):
    """Threefry-2x32 (20 rounds) of the blocks (x0, x1) under key (k0, k1), elementwise with broadcasting."""
    shape = jnp.broadcast_shapes(jnp.shape(k0), jnp.shape(k1), jnp.shape(x0), jnp.shape(x1))
    args = [jnp.broadcast_to(jnp.asarray(a, jnp.uint32), shape) for a in (k0, k1, x0, x1)]
    return tuple(threefry2x32_p.bind(*args))


def _hash32(x):
    """lowbias32 (C. Wellons): a bijective, well-avalanched 32-bit integer hash."""
    x = x ^ (x >> 16)
    x = x * jnp.uint32(0x7FEB352D)
    x = x ^ (x >> 15)
    x = x * jnp.uint32(0x846CA68B)
    return x ^ (x >> 16)


def _bits(ctr: Counter, n: int, sampler: str):
    """Two uint32 words for each of ``n`` elements of every particle: arrays of shape (n, lanes).

    Element ``e`` of particle ``p`` is a pure function of (key, p, e). ``"threefry"``: Threefry-2x32
    of the block (p, e) under the step key. ``"fast"``: a double lowbias32 hash, about 3× cheaper,
    not cryptographic (two of 2³² outputs can coincide by chance).
    """
    p = ctr.particle[None, :]
    e = jnp.arange(n, dtype=jnp.uint32)[:, None]
    k0, k1 = (jnp.asarray(k, jnp.uint32) for k in ctr.key)
    if sampler == "threefry":
        return _threefry(k0, k1, p, e)
    a = _hash32(p ^ k0)
    c = e * jnp.uint32(2)
    return _hash32(_hash32(a ^ c) ^ k1), _hash32(_hash32(a ^ (c + jnp.uint32(1))) ^ k1)


def _sincos_half(h):
    """sin h, cos h for |h| ≤ π/2 (Taylor to degree 13/12: error < 6e-8, below float32 resolution)."""
    h2 = h * h
    s = h * (1 + h2 * (-1 / 6 + h2 * (1 / 120 + h2 * (-1 / 5040 + h2 * (1 / 362880 + h2 * (-1 / 39916800 + h2 * (1 / 6227020800)))))))
    c = 1 + h2 * (-1 / 2 + h2 * (1 / 24 + h2 * (-1 / 720 + h2 * (1 / 40320 + h2 * (-1 / 3628800 + h2 * (1 / 479001600))))))
    return s, c


def _open_unit(bits, dtype):
    """uint32 -> uniform on (0, 1) from the top 24 bits (exactly representable in float32)."""
    return ((bits >> 8).astype(dtype) + 0.5) * (1.0 / 16777216.0)


def normal(ctr: Counter, shape, dtype=jnp.float32, sampler: str = "threefry"):
    """Standard normals of shape ``(*shape, lanes)``: element ``i`` of particle ``p`` depends only on
    (key, p, i), never on the other particles.

    ``"threefry"``: a uniform on (−1, 1) from 24 (float32) or 53 (float64) random bits, mapped by
    √2·erfinv, the transform of ``jax.random.normal``. ``"fast"``: Box–Muller on two 24-bit
    uniforms from the fast hash, with a polynomial sine/cosine (no libm calls), about 4× faster on
    CPU; tested for moments, independence and normality like the other.

    >>> z = normal(counter(0, 1, np.arange(5)), (2, 3))
    >>> z.shape, str(z.dtype)
    ((2, 3, 5), 'float32')
    """
    m = int(np.prod(shape))
    dtype = jnp.dtype(dtype)
    if sampler == "fast":
        b0, b1 = _bits(ctr, (m + 1) // 2, "fast")
        u1 = _open_unit(b0, dtype)
        h = ((b1 >> 8).astype(dtype) * (1.0 / 16777216.0) - 0.5) * np.pi  # half angle in [−π/2, π/2)
        sn, cs = _sincos_half(h)
        r = jnp.sqrt(-2.0 * jnp.log(u1))
        z = jnp.concatenate([r * (2 * sn * cs), r * (cs * cs - sn * sn)])
    else:
        if dtype == jnp.float64:
            b0, b1 = _bits(ctr, m, "threefry")
            u = ((b0 >> 11).astype(dtype) * 2.0**32 + b1.astype(dtype) + 0.5) * 2.0**-52 - 1.0  # 53 bits
        else:
            b0, b1 = _bits(ctr, (m + 1) // 2, "threefry")
            u = _open_unit(jnp.concatenate([b0, b1]), dtype) * 2.0 - 1.0
        z = np.sqrt(2.0).astype(dtype) * jax.scipy.special.erfinv(u)
    return z[:m].reshape(tuple(shape) + (ctr.particle.shape[0],))


def randint(ctr: Counter, shape, high, sampler: str = "threefry"):
    """Integers uniform on [0, high) of shape ``(*shape, lanes)`` (Lemire's multiply-shift).

    ``high`` is an int or an int array broadcastable to ``(*shape, 1)``; each value's probability is
    within high / 2³² of 1/high.

    >>> bool(jnp.all(randint(counter(0, 1, np.arange(100)), (10,), 7) < 7))
    True
    """
    m = int(np.prod(shape))
    b0, _ = _bits(ctr, m, sampler)
    h = b0.reshape(tuple(shape) + (-1,)).astype(jnp.uint64)
    return ((h * jnp.asarray(high, dtype=jnp.uint64)) >> jnp.uint64(32)).astype(jnp.int32)


def _check_sampler(sampler, who):
    return checks.choice(who, "sampler", sampler, SAMPLERS)


def _lane_size(params):
    """(D, dtype): the number of scalars per particle in a cloud whose leaves are (*shape, lanes).

    Draws are one array of shape (k, D, lanes) whatever the cloud's layout (a (d, lanes) array or a
    tuple of d (lanes,) arrays), so the same model works with every simulator layout.
    """
    leaves = jax.tree.leaves(params)
    if not leaves:
        raise TypeError("noise: the particle cloud has no array leaves")
    return sum(int(np.prod(leaf.shape[:-1])) for leaf in leaves), leaves[0].dtype


def _add_flat(g, n):
    """g + n for a gradient pytree g of one particle and a flat noise vector n of its total size."""
    if isinstance(g, (jax.Array, np.ndarray)):
        return g + n.reshape(g.shape).astype(g.dtype)
    flat, unravel = jax.flatten_util.ravel_pytree(g)
    return unravel(flat + n.astype(flat.dtype))


def _n_draws(independent: bool) -> int:
    return 2 if independent else 1


def _counting(pick: Callable[[int], Callable]) -> Callable:
    """A grad_fn whose k-th call (0-based, counted at trace time) is ``pick(k)(params)``."""
    calls = [0]

    def grad_fn(params):
        k = calls[0]
        calls[0] += 1
        return pick(k)(params)

    return grad_fn


def _draw_index(k: int, independent: bool) -> int:
    return min(k, 1) if independent else 0


def _hessian_of(problem) -> Callable:
    if hasattr(problem, "hessian"):
        return problem.hessian
    return jax.hessian(problem.loss)


def _psd_sqrt(H, psd: str):
    """Symmetric square root of |H| (``"abs"``) or of its positive part (``"clip"``); H of shape (d, d)."""
    lam, V = jnp.linalg.eigh((H + H.T) / 2)
    lam = jnp.abs(lam) if psd == "abs" else jnp.maximum(lam, 0.0)
    return (V * jnp.sqrt(lam)[None, :]) @ V.T


def _check_matrix_psd(cov, who: str) -> np.ndarray:
    cov = np.asarray(cov, dtype=np.float64)
    if cov.ndim != 2 or cov.shape[0] != cov.shape[1] or cov.shape[0] == 0:
        raise ValueError(f"{who}: cov must be a square (d, d) matrix, got shape {cov.shape}")
    if not np.all(np.isfinite(cov)):
        raise ValueError(f"{who}: cov must be finite")
    if not np.allclose(cov, cov.T, rtol=1e-10, atol=1e-12 * max(1.0, np.abs(cov).max())):
        raise ValueError(f"{who}: cov must be symmetric")
    lam = np.linalg.eigvalsh(cov)
    if lam[0] < -1e-10 * max(1.0, abs(lam[-1])):
        raise ValueError(f"{who}: cov must be positive semi-definite, smallest eigenvalue is {lam[0]:.3g}")
    return cov


# ---- additive Gaussian ------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True, eq=False)
class Gaussian:
    """Additive Gaussian gradient noise (see :func:`gaussian`). Hashes by identity."""

    std: float | np.ndarray | None
    cov: np.ndarray | None
    independent: bool = False
    sampler: str = "threefry"

    @property
    def factor(self) -> np.ndarray | None:
        """A matrix L with L Lᵀ = cov (symmetric square root; works for singular cov)."""
        if self.cov is None:
            return None
        lam, V = np.linalg.eigh(self.cov)
        return (V * np.sqrt(np.maximum(lam, 0.0))) @ V.T

    def covariance(self, d: int) -> np.ndarray:
        """The (d, d) covariance of one gradient's noise."""
        if self.cov is not None:
            if self.cov.shape != (d, d):
                raise ValueError(f"gaussian: cov is {self.cov.shape}, the problem has d = {d}")
            return self.cov
        if np.ndim(self.std) == 1 and len(self.std) != d:
            raise ValueError(f"gaussian: std has {len(self.std)} entries (one per coordinate), the problem has d = {d}")
        return np.diag(np.broadcast_to(np.square(self.std), (d,)))

    def check(self, problem, d: int):
        """Fail early when the covariance does not fit the problem's dimension."""
        self.covariance(d)

    def sample(self, ctr, params):
        D, dtype = _lane_size(params)
        return normal(ctr, (_n_draws(self.independent), D), dtype, self.sampler)

    def oracle(self, problem, draws):
        L = self.factor

        def pick(k):
            z = draws[_draw_index(k, self.independent)]  # (D,)
            xi = jnp.asarray(L, dtype=z.dtype) @ z if L is not None else jnp.asarray(self.std, dtype=z.dtype) * z
            return lambda params: _add_flat(problem.grad(params), xi)

        return _counting(pick)


def gaussian(std=None, cov=None, *, independent: bool = False, sampler: str = "threefry") -> Gaussian:
    """Additive Gaussian noise: ``g̃(w) = ∇f(w) + ξ``, ξ ~ N(0, std² I) or N(0, cov), fresh each step.

    Args:
        std: standard deviation (≥ 0) in gradient units: one number (isotropic), or one per
            coordinate (shape (d,): the covariance is diag(std²)).
        cov: a (d, d) positive semi-definite covariance (give exactly one of ``std``, ``cov``).
        independent: SAM's two gradients get independent draws (default: the same ξ enters both).
        sampler: ``"threefry"`` (Threefry bits, erfinv) or ``"fast"`` (hash + Box–Muller, ~4× faster
            on CPU; for throughput runs); see :func:`normal`.

    >>> m = gaussian(std=0.1)
    >>> m.covariance(2).tolist()
    [[0.010000000000000002, 0.0], [0.0, 0.010000000000000002]]
    """
    if (std is None) == (cov is None):
        raise ValueError("gaussian: give exactly one of std= or cov=")
    sampler = _check_sampler(sampler, "gaussian")
    independent = checks.boolean("gaussian", "independent", independent)
    if std is not None:
        arr = checks.array("gaussian", "std", std, ndim=(0, 1))
        if arr.size == 0 or np.any(arr < 0):
            checks.fail("gaussian", "std", "finite and >= 0 (one number, or one per coordinate)", std)
        return Gaussian(float(arr) if arr.ndim == 0 else arr, None, independent, sampler)
    return Gaussian(None, _check_matrix_psd(cov, "gaussian"), independent, sampler)


# ---- Hessian-shaped (Kim et al.) ----------------------------------------------------------------


@dataclasses.dataclass(frozen=True, eq=False)
class HessianNoise:
    """State-dependent Gaussian noise with covariance |H(x)|/B (see :func:`hessian`)."""

    batch_size: float
    psd: str = "abs"
    at: np.ndarray | None = None
    independent: bool = False
    sampler: str = "threefry"

    def check(self, problem, d: int):
        if self.at is not None and self.at.shape != (d,):
            raise ValueError(f"hessian: at= has shape {self.at.shape}, the problem has d = {d}")

    def covariance_at(self, problem, point) -> np.ndarray:
        """The (d, d) noise covariance |H(point)|/B (or its positive part for ``psd="clip"``)."""
        with jax.ensure_compile_time_eval():
            H = _hessian_of(problem)(jnp.asarray(point, dtype=jnp.float64))
            S = np.asarray(_psd_sqrt(jnp.asarray(H), self.psd))
        return S @ S / self.batch_size

    def sample(self, ctr, params):
        D, dtype = _lane_size(params)
        return normal(ctr, (_n_draws(self.independent), D), dtype, self.sampler)

    def oracle(self, problem, draws):
        hess = _hessian_of(problem)
        scale = float(1.0 / np.sqrt(self.batch_size))  # a Python float: weakly typed, keeps float32 runs float32
        fixed = None
        if self.at is not None:
            with jax.ensure_compile_time_eval():  # a constant, also when the oracle is built under jit
                fixed = np.asarray(_psd_sqrt(jnp.asarray(hess(jnp.asarray(self.at))), self.psd))

        def pick(k):
            z = draws[_draw_index(k, self.independent)]

            def grad_fn(x):
                S = jnp.asarray(fixed, dtype=x.dtype) if fixed is not None else _psd_sqrt(hess(x), self.psd)
                return problem.grad(x) + scale * (S @ z)

            return grad_fn

        return _counting(pick)


def hessian(batch_size, *, psd: str = "abs", at=None, independent: bool = False, sampler: str = "threefry") -> HessianNoise:
    """Hessian-shaped noise: ``g̃(x) = ∇f(x) + S(x) z / √B``, z ~ N(0, I), ``S = |H(x)|^{1/2}``.

    The covariance is ``|H(x)|/B`` at the point where the gradient is evaluated (for SAM's second
    gradient: the perturbed point). This is the gradient-noise model behind Kim et al.'s SDE
    (covariance ≈ Hessian over batch size). At a saddle H is indefinite, so:

    * ``psd="abs"`` (default): ``|H| = V |Λ| Vᵀ`` — every curvature direction is noisy, with the
      magnitude of its eigenvalue (the escape direction of a saddle included);
    * ``psd="clip"``: ``V max(Λ, 0) Vᵀ`` — no noise along negative curvature;
    * ``at=point``: freeze the covariance at ``|H(point)|/B`` (additive noise; the linear model of
      :func:`samdyn.diffusion.linear_moments` uses exactly this at the critical point).

    Args:
        batch_size: B > 0 (a real number; the covariance scales as 1/B).
        psd: ``"abs"`` or ``"clip"``.
        at: optional point of shape (d,).
        independent: independent draws for SAM's two gradients (default: shared draw).
        sampler: ``"threefry"`` or ``"fast"`` (see :func:`gaussian`).
    """
    B = float(batch_size) if not isinstance(batch_size, bool) else float("nan")
    if not np.isfinite(B) or B <= 0:
        raise ValueError(f"hessian: batch_size must be a positive number, got {batch_size!r}")
    if psd not in ("abs", "clip"):
        raise ValueError(f"hessian: psd must be 'abs' or 'clip', got {psd!r}")
    if at is not None:
        at = np.asarray(at, dtype=np.float64)
        if at.ndim != 1 or not np.all(np.isfinite(at)):
            raise ValueError(f"hessian: at= must be a finite point of shape (d,), got {at!r}")
    return HessianNoise(B, psd, at, checks.boolean("hessian", "independent", independent), _check_sampler(sampler, "hessian"))


# ---- finite sums and minibatches ---------------------------------------------------------------


@dataclasses.dataclass(frozen=True, eq=False)
class FiniteSum:
    """A loss written as the mean of ``n`` components, ``f(w) = (1/n) Σᵢ fᵢ(w)``.

    ``loss``/``grad``/``hessian`` follow the landscape convention (coordinate axis first, a single
    point has shape (d,)); ``batch_grad(w, idx)`` is ``(1/B) Σ_{i ∈ idx} ∇fᵢ(w)`` for one point
    ``w`` of shape (d,) and indices ``idx`` of shape (B,).

    Attributes:
        name: label.
        n: number of components.
        dim: d.
        component_grad: ``(w (d,), i) -> ∇fᵢ(w) (d,)``.
        component_loss: ``(w (d,), i) -> fᵢ(w)``.
    """

    name: str
    n: int
    dim: int
    component_grad: Callable
    component_loss: Callable

    def _all(self, fn, x):
        idx = jnp.arange(self.n)
        if x.ndim == 1:
            return jnp.mean(jax.vmap(lambda i: fn(x, i))(idx), axis=0)
        flat = x.reshape(x.shape[0], -1)
        out = jax.vmap(lambda w: jnp.mean(jax.vmap(lambda i: fn(w, i))(idx), axis=0), in_axes=1, out_axes=-1)(flat)
        return out.reshape(out.shape[:-1] + x.shape[1:])

    def loss(self, x):
        """f(x) = mean of the components; x of shape (d, *batch)."""
        return self._all(self.component_loss, jnp.asarray(x))

    def grad(self, x):
        """∇f(x), shape (d, *batch)."""
        return self._all(self.component_grad, jnp.asarray(x))

    def hessian(self, x):
        """∇²f(x) for one point x of shape (d,)."""
        return jax.hessian(self.loss)(jnp.asarray(x))

    def batch_grad(self, w, idx):
        """(1/B) Σ_{i ∈ idx} ∇fᵢ(w) for w of shape (d,), idx of shape (B,)."""
        return jnp.mean(jax.vmap(lambda i: self.component_grad(w, i))(idx), axis=0)


def least_squares(X, y, *, name: str = "least_squares") -> FiniteSum:
    """Least squares as a finite sum: ``fᵢ(w) = ½ (xᵢᵀ w − yᵢ)²``, ``f = (1/n) Σ fᵢ``.

    Args:
        X: data, shape (n, d). y: targets, shape (n,).

    >>> fs = least_squares([[1.0, 0.0], [0.0, 2.0]], [1.0, 2.0])
    >>> fs.grad(jnp.zeros(2)).tolist()
    [-0.5, -2.0]
    """
    X = np.asarray(X, dtype=np.float64)
    y = np.asarray(y, dtype=np.float64)
    if X.ndim != 2 or X.shape[0] == 0 or y.shape != (X.shape[0],):
        raise ValueError(f"least_squares: need X of shape (n, d) and y of shape (n,), got {X.shape}, {y.shape}")
    if not (np.all(np.isfinite(X)) and np.all(np.isfinite(y))):
        raise ValueError("least_squares: X and y must be finite")
    Xj, yj = jnp.asarray(X), jnp.asarray(y)

    def component_grad(w, i):
        x = Xj[i].astype(w.dtype)
        return x * (x @ w - yj[i].astype(w.dtype))

    def component_loss(w, i):
        x = Xj[i].astype(w.dtype)
        return 0.5 * (x @ w - yj[i].astype(w.dtype)) ** 2

    return FiniteSum(name, X.shape[0], X.shape[1], component_grad, component_loss)


def centered_shifts(n: int, d: int, std: float = 1.0, seed: int = 0) -> np.ndarray:
    """``n`` Gaussian shift vectors of dimension ``d``, re-centred so that ``Σ ξᵢ = 0`` (to rounding).

    >>> bool(abs(centered_shifts(10, 2).sum(axis=0)).max() < 1e-12)
    True
    """
    xi = np.random.default_rng(seed).normal(scale=std, size=(n, d))
    return xi - xi.mean(axis=0)


@dataclasses.dataclass(frozen=True, eq=False)
class Minibatch:
    """Finite-sum minibatch noise (see :func:`minibatch`)."""

    batch_size: int
    n: int
    shifts: np.ndarray | None
    data: FiniteSum | None
    independent: bool = False
    sampler: str = "threefry"

    def cov(self) -> np.ndarray:
        """Exact covariance of the batch-mean shift (shift model): ``(n − B)/(B (n − 1)) · S``.

        ``S = (1/n) Σ ξᵢ ξᵢᵀ``; the factor is the without-replacement (finite population) correction.
        """
        if self.shifts is None:
            raise ValueError("minibatch: cov() is exact only for the shift model (additive noise)")
        S = self.shifts.T @ self.shifts / self.n
        B, n = self.batch_size, self.n
        return S * ((n - B) / (B * (n - 1))) if n > 1 else 0.0 * S

    def check(self, problem, d: int):
        dim = self.shifts.shape[1] if self.shifts is not None else self.data.dim
        if dim != d:
            raise ValueError(f"minibatch: components have dimension {dim}, the problem has d = {d}")

    def sample(self, ctr, params=None):
        """A uniformly random B-subset of {0 … n−1} per lane: indices of shape (k, B, lanes).

        Floyd's algorithm: for j = n−B … n−1 draw t uniform in [0, j]; keep t unless it was
        already chosen, else keep j. Every B-subset is equally likely; it costs B random integers
        and O(B²) comparisons per lane (vectorised over lanes), where ranking n uniforms would cost n
        draws and a sort. The order inside a batch is not uniform, which no oracle uses (a batch
        enters only through its mean).
        """
        k, n, B = _n_draws(self.independent), self.n, self.batch_size
        highs = np.arange(n - B, n, dtype=np.int64)[:, None, None] + 1  # t_i uniform on [0, n − B + i]
        draws = randint(ctr, (B, k), highs, self.sampler)
        chosen = []
        for i, j in enumerate(range(n - B, n)):
            t = draws[i]
            if chosen:
                taken = functools.reduce(jnp.logical_or, [t == c for c in chosen])
                t = jnp.where(taken, jnp.int32(j), t)
            chosen.append(t)
        return jnp.stack(chosen, axis=1)  # (k, B, lanes)

    def oracle(self, problem, draws):
        if self.shifts is not None:
            shifts = jnp.asarray(self.shifts)

            def pick(k):
                idx = draws[_draw_index(k, self.independent)]

                def grad_fn(w):
                    return problem.grad(w) + jnp.mean(shifts[idx], axis=0).astype(w.dtype)

                return grad_fn
        else:
            data = self.data

            def pick(k):
                idx = draws[_draw_index(k, self.independent)]
                return lambda w: data.batch_grad(w, idx)

        return _counting(pick)


def minibatch(batch_size: int, shifts=None, *, data: FiniteSum | None = None, independent: bool = False,
              sampler: str = "threefry") -> Minibatch:
    """Minibatch gradients of a finite sum, batches of ``batch_size`` drawn without replacement each step.

    Give exactly one of:

    * ``shifts`` (n, d) with ``Σ ξᵢ = 0``: components ``fᵢ(w) = f(w) + ξᵢᵀ w`` of the problem ``f``
      passed to ``simulate``; the oracle is ``∇f(w) + mean_{i∈batch} ξᵢ``;
    * ``data``: a :class:`FiniteSum` (e.g. :func:`least_squares`); the oracle is its batch mean
      gradient (pass the same FiniteSum as ``simulate``'s problem for the full loss).

    Args:
        batch_size: B, an integer in [1, n].
        independent: SAM's two gradients use two independent batches (default: one shared batch).
        sampler: ``"threefry"`` or ``"fast"`` (the fast hash, several times faster on CPU); see
            :func:`randint`.

    >>> m = minibatch(2, centered_shifts(4, 2))
    >>> m.cov().shape
    (2, 2)
    """
    if (shifts is None) == (data is None):
        raise ValueError("minibatch: give exactly one of shifts= (n, d) or data= (a FiniteSum)")
    if isinstance(batch_size, bool) or not isinstance(batch_size, (int, np.integer)) or batch_size < 1:
        raise ValueError(f"minibatch: batch_size must be a positive integer, got {batch_size!r}")
    if shifts is not None:
        shifts = np.asarray(shifts, dtype=np.float64)
        if shifts.ndim != 2 or shifts.shape[0] == 0:
            raise ValueError(f"minibatch: shifts must have shape (n, d), got {shifts.shape}")
        if not np.all(np.isfinite(shifts)):
            raise ValueError("minibatch: shifts must be finite")
        total = np.abs(shifts.sum(axis=0)).max()
        if total > 1e-9 * max(1.0, np.abs(shifts).sum()):
            raise ValueError(
                f"minibatch: shifts must sum to zero (so that the components average to f); |Σ ξᵢ| = {total:.3g}."
                " Use noise.centered_shifts or subtract the mean."
            )
        n = shifts.shape[0]
    else:
        if not isinstance(data, FiniteSum):
            raise TypeError(f"minibatch: data must be a FiniteSum (e.g. noise.least_squares(X, y)), got {data!r}")
        n = data.n
    if batch_size > n:
        raise ValueError(f"minibatch: batch_size {batch_size} is larger than the number of components n = {n}")
    return Minibatch(int(batch_size), n, shifts, data, checks.boolean("minibatch", "independent", independent),
                     _check_sampler(sampler, "minibatch"))
