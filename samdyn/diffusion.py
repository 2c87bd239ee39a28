"""Diffusion near a critical point: exact moments of the linearised stochastic map, Kim et al.'s
continuous-time model, SDE integration, and escape-time studies.

**The linear model.** Near a critical point ``w*`` with Hessian ``H`` write ``δ = w − w*``. A noisy
gradient is ``H δ + ξ`` with ``E ξ = 0``, ``Cov ξ = C`` (for additive Gaussian noise ``C`` = its
covariance; for Hessian-shaped noise ``C = |H|/B``; for the minibatch shift model the exact
``Minibatch.cov()``), fresh every step. Then GD / USAM with heavy-ball or Nesterov momentum is an
affine map of the augmented state ``s = (δ, v)`` (``v`` = momentum buffer)::

    s⁺ = M s + G (ξ₁, ξ₂),     ξ₂ = ξ₁ (same draw)  or  ξ₂ ⊥ ξ₁ (independent draws)

``M`` and ``G`` are not written by hand: they are the Jacobians of ``optim``'s own ``step`` (the
function ``simulate`` runs) with the oracle ``x ↦ H x + ξₖ``. The mean and covariance then obey
``m⁺ = M m`` and ``P⁺ = M P Mᵀ + Q`` with ``Q = G Σ_ξ Gᵀ``, ``Σ_ξ = [[C, C], [C, C]]`` (same) or
``diag(C, C)`` (independent); the stationary covariance, when ``M`` is stable, solves the discrete
Lyapunov equation ``P = M P Mᵀ + Q`` (``scipy.linalg.solve_discrete_lyapunov``). For USAM,
``G ξ`` contains ``ρ H ξ₁ + ξ₂``: with the same draw the noise entering the step has covariance
``(I + ρH) C (I + ρH)ᵀ``, with independent draws ``C + ρ² H C H`` — different diffusion.

**Normalised SAM is not linear** (its ascent is ``ρ g/‖g‖``). Its linear model here is USAM with
the normalisation frozen at a gradient scale ``ν``: ``ρ_eff = ρ / ν``. By default ``ν² = tr C =
E‖ξ‖²``, the mean squared gradient norm *at* the critical point, where the noise dominates the
gradient (then ``E[ξξᵀ]/ν²`` equals ``E[ξξᵀ/‖ξ‖²]`` for isotropic noise). Kim et al.'s Theorem 1
likewise analyses the unnormalised form ``∇L(w + ρ∇L(w))``. Pass ``grad_norm=`` to choose ``ν``.
How good the model is, measured (40 000 particles of the real normalised SAM from the saddle point
of ½(2x² − y²), η = 0.05, 30 steps; standard error of Var y ≈ 0.7 %; GD gives Var y = 0.1078
(C = 0.25 I) and 0.0431 (C = diag(1, 0.1))):

    =============  ====  ===========  ==========  ============
    noise C        ρ     draws        Var y (MC)  Var y model
    =============  ====  ===========  ==========  ============
    0.25 I         0.05  same         0.0853      0.0809
    0.25 I         0.05  independent  0.0966      0.0942
    0.25 I         0.2   same         0.0398      0.0321
    0.25 I         0.2   independent  0.0730      0.0673
    diag(1, 0.1)   0.05  same         0.0338      0.0356
    diag(1, 0.1)   0.2   same         0.0155      0.0195
    diag(1, 0.1)   0.2   independent  0.0289      0.0308
    =============  ====  ===========  ==========  ============

Right in sign and ordering, off by 2–25 %: the exact statements (tests) are for GD and USAM, and
for the real normalised SAM the tests check the ordering by Monte Carlo.

**Continuous time (Kim et al. 2023, Theorems 2–3, after Xie et al. 2021).** With ``t = kη`` (k steps)
and momentum ``γ`` the weak first-order SDE of the map along an eigendirection ``(λ, u)`` of H with
noise variance ``c = uᵀ C u`` is the Ornstein–Uhlenbeck process

    dx = −a x dt + s dW,   a = λ(1 + ρλ)/(1 − γ),   s² = η c_eff /(1 − γ)²,

``c_eff = (1 + ρλ)² c`` (same draw), ``(1 + ρ²λ²) c`` (independent draws), ``c`` (``sam_noise=
"descent"``: only the descent gradient is noisy, the paper's assumption); ``ρ = 0`` gives SGD. Its
variance is ``σ²(t) = s² (1 − e^{−2at}) / (2a)`` (``s² t`` when a = 0). With ``c = |λ|/B``
(Hessian noise) at a saddle direction λ < 0 and the paper's assumption, the small-t MSD gap is

    σ²_SGD(t) − σ²_SAM(t) = (η/B) ρ |λ|³ t² + O(t³)

(:func:`kim_msd_gap`). Kim et al. state ``2ηt²|λ|³ρ/B``: the factor 2 corresponds to a noise
covariance ``2|H|/B`` (diffusion matrix ``ηH/B`` instead of ``ηH/(2B)``); with the shared draw of
practice the gap is already first order in t, ``(η/B)(2ρλ² − ρ²|λ|³) t`` — the discrete map and the
paper's model differ here, and :func:`compare_with_paper` tabulates by how much. Theorem 3's
trends: the variance grows with ``1/B`` (through ``c``) and with momentum through ``1/(1 − γ)``.
As η → 0 the discrete covariance recursion converges to the OU variance at rate O(η) (tested).

**SDE integration**: :func:`sde` builds the drift and diffusion of the SGD / USAM / SAM SDEs on a
landscape (Compagnoni et al. 2023's USAM and SAM SDEs with the noise ``|H|/B``); :func:`euler_maruyama`
integrates them for many particles in one ``lax.scan``.

**Escape studies**: :func:`escape_times` runs ``simulate`` with streaming first-exit statistics for a
grid of ρ, momentum and batch sizes and returns survival curves and exit-time histograms.
"""

from __future__ import annotations

import dataclasses
import math
import warnings
from typing import Callable

import jax
import jax.numpy as jnp
import numpy as np
import scipy.linalg

from . import noise as noise_mod
from .optim import HParams, Optimizer, OptState, hparams as make_hparams, usam

__all__ = [
    "LinearMoments",
    "linear_maps",
    "linear_moments",
    "ou_variance",
    "kim_variance",
    "kim_msd_gap",
    "compare_with_paper",
    "sde",
    "euler_maruyama",
    "escape_times",
]


@dataclasses.dataclass(frozen=True)
class LinearMoments:
    """Exact moments of the linearised stochastic map.

    Attributes:
        mean: E δ_k for k = 0..steps, shape (steps + 1, d) (δ = w − w*).
        cov: Cov δ_k, shape (steps + 1, d, d).
        msd: E‖δ_k‖², shape (steps + 1,).
        M: the (2d, 2d) transition matrix of (δ, v).
        Q: the (2d, 2d) covariance added each step.
        stationary: the stationary (d, d) covariance of δ, or None when M is not stable
            (spectral radius ≥ 1).
        spectral_radius: of M.
        rho_eff: the USAM radius the model used (ρ/ν for normalised SAM).
    """

    mean: np.ndarray
    cov: np.ndarray
    msd: np.ndarray
    M: np.ndarray
    Q: np.ndarray
    stationary: np.ndarray | None
    spectral_radius: float
    rho_eff: float


def _scalar_hp(hp) -> tuple[float, float, float]:
    if isinstance(hp, dict):
        hp = make_hparams(**hp)
    if not isinstance(hp, HParams):
        raise TypeError(f"linear_moments: hp must be sd.optim.hparams(...) or a dict, got {hp!r}")
    vals = []
    for name, leaf in zip(("lr", "rho", "momentum"), hp):
        a = np.asarray(leaf, dtype=np.float64)
        if a.size != 1:
            raise ValueError(f"linear_moments: {name} must be a single value, got shape {a.shape}")
        vals.append(float(a.reshape(())))
    return tuple(vals)


def _check_sym(A, name, d=None):
    A = np.asarray(A, dtype=np.float64)
    if A.ndim != 2 or A.shape[0] != A.shape[1] or (d is not None and A.shape[0] != d):
        raise ValueError(f"linear_moments: {name} must be a square ({d or 'd'}, {d or 'd'}) matrix, got {A.shape}")
    if not np.all(np.isfinite(A)):
        raise ValueError(f"linear_moments: {name} must be finite")
    if not np.allclose(A, A.T, atol=1e-12 * max(1.0, np.abs(A).max())):
        raise ValueError(f"linear_moments: {name} must be symmetric")
    return (A + A.T) / 2


def linear_maps(opt: Optimizer, hessian, hp, *, grad_norm=None, noise_cov=None):
    """The Jacobians ``M`` (2d×2d) and ``G`` (2d×2d, columns for ξ₁ then ξ₂) of ``opt.step`` on the
    linear oracle ``x ↦ H x + ξₖ`` (k-th oracle call), and the USAM radius used.

    For normalised SAM the step is replaced by USAM with ``ρ/ν`` (module docstring); ``ν`` is
    ``grad_norm`` or ``sqrt(tr noise_cov)``.
    """
    if not isinstance(opt, Optimizer):
        raise TypeError(f"linear_maps: opt must be an Optimizer, got {opt!r}")
    H = _check_sym(hessian, "hessian")
    d = H.shape[0]
    lr, rho, mom = _scalar_hp(hp)
    opts = dict(opt.options)
    rho_eff = rho
    lin_opt = opt
    if opt.name == "sam":
        if grad_norm is None:
            if noise_cov is None:
                raise ValueError("linear_maps: normalised SAM needs grad_norm= (or a noise_cov to take ν² = tr C)")
            grad_norm = math.sqrt(float(np.trace(noise_cov)))
        if not (np.isfinite(grad_norm) and grad_norm > 0):
            raise ValueError(f"linear_maps: the SAM normalisation scale must be > 0, got {grad_norm!r}")
        rho_eff = rho / grad_norm
        lin_opt = usam(nesterov=opts.get("nesterov", False))
    elif opt.name not in ("gd", "usam"):
        raise ValueError(f"linear_maps: no linear model for optimizer {opt.name!r} (gd, sam, usam)")
    hp_lin = HParams(jnp.float64(lr), jnp.float64(rho_eff), jnp.float64(mom))
    Hj = jnp.asarray(H)

    def F(w, v, xi1, xi2):
        xis = (xi1, xi2)
        calls = [0]

        def grad_fn(x):
            k = min(calls[0], 1)
            calls[0] += 1
            return Hj @ x + xis[k]

        w2, st, _ = lin_opt.step(grad_fn, w, OptState(v), hp_lin)
        return jnp.concatenate([w2, st.momentum])

    # the map is affine: its Jacobian is the same everywhere (evaluate away from 0, where norms are smooth)
    p = jnp.linspace(0.3, 0.7, d)
    J = jax.jacfwd(F, argnums=(0, 1, 2, 3))(p, 0.5 * p, 0.1 * p, -0.2 * p)
    M = np.concatenate([np.asarray(J[0]), np.asarray(J[1])], axis=1)
    G = np.concatenate([np.asarray(J[2]), np.asarray(J[3])], axis=1)
    return M, G, rho_eff


def linear_moments(opt: Optimizer, hessian, noise_cov, hp, steps: int, *, x0=None, independent: bool = False,
                   grad_norm=None, v0=None) -> LinearMoments:
    """Exact per-step mean and covariance of the linearised stochastic map near a critical point.

    Args:
        opt: ``gd()``, ``usam()`` or ``sam()`` (with their momentum kind); normalised SAM uses the
            frozen-normalisation model (module docstring).
        hessian: H at the critical point, (d, d) symmetric (may be indefinite).
        noise_cov: C, the (d, d) PSD covariance of one stochastic gradient's noise (e.g.
            ``noise.gaussian(...).covariance(d)``, ``|H|/B``, ``noise.minibatch(...).cov()``).
        hp: scalar hyperparameters (``hparams(lr=…, rho=…, momentum=…)``).
        steps: number of steps k (≥ 0).
        x0: initial displacement δ₀ = w₀ − w* (default 0); deterministic.
        independent: SAM/USAM's two gradients see independent noise (default: the same draw).
        grad_norm: ν for normalised SAM (default sqrt(tr C)).
        v0: initial momentum buffer (default 0, as ``optim``).

    Returns:
        :class:`LinearMoments`.

    >>> import samdyn as sd, numpy as np
    >>> lm = linear_moments(sd.optim.gd(), np.eye(1), np.eye(1), sd.optim.hparams(lr=0.5), 50)
    >>> round(float(lm.stationary[0, 0]), 6)   # η²/(1 − (1 − η)²) = 1/3
    0.333333
    """
    H = _check_sym(hessian, "hessian")
    d = H.shape[0]
    C = np.asarray(noise_cov, dtype=np.float64)
    C = _check_sym(C, "noise_cov", d)
    if np.linalg.eigvalsh(C)[0] < -1e-12 * max(1.0, np.abs(C).max()):
        raise ValueError("linear_moments: noise_cov must be positive semi-definite")
    if isinstance(steps, bool) or not isinstance(steps, (int, np.integer)) or steps < 0:
        raise ValueError(f"linear_moments: steps must be an integer >= 0, got {steps!r}")
    x0 = np.zeros(d) if x0 is None else np.asarray(x0, dtype=np.float64)
    v0 = np.zeros(d) if v0 is None else np.asarray(v0, dtype=np.float64)
    if x0.shape != (d,) or v0.shape != (d,):
        raise ValueError(f"linear_moments: x0 and v0 must have shape ({d},)")
    M, G, rho_eff = linear_maps(opt, H, hp, grad_norm=grad_norm, noise_cov=C)
    Z = np.zeros_like(C)
    Sxi = np.block([[C, Z], [Z, C]]) if independent else np.block([[C, C], [C, C]])
    Q = G @ Sxi @ G.T
    Q = (Q + Q.T) / 2
    m = np.concatenate([x0, v0])
    P = np.zeros((2 * d, 2 * d))
    means, covs = [m[:d].copy()], [P[:d, :d].copy()]
    for _ in range(steps):
        m = M @ m
        P = M @ P @ M.T + Q
        means.append(m[:d].copy())
        covs.append(P[:d, :d].copy())
    means, covs = np.array(means), np.array(covs)
    radius = float(np.max(np.abs(np.linalg.eigvals(M))))
    stationary = None
    if radius < 1:
        S = scipy.linalg.solve_discrete_lyapunov(M, Q)
        stationary = ((S + S.T) / 2)[:d, :d]
    msd = np.einsum("kii->k", covs) + np.sum(means**2, axis=1)
    return LinearMoments(means, covs, msd, M, Q, stationary, radius, rho_eff)


# ---- continuous time ---------------------------------------------------------------------------


def ou_variance(a, s2, t):
    """Variance at time t of dx = −a x dt + s dW from a fixed start: s² (1 − e^{−2at}) / (2a).

    Vectorised; the a → 0 limit s² t is taken smoothly (``expm1``).
    """
    a, s2, t = np.broadcast_arrays(*(np.asarray(v, dtype=np.float64) for v in (a, s2, t)))
    x = -2.0 * a * t
    small = np.abs(x) < 1e-8
    ratio = np.where(small, t * (1 + x / 2), -np.expm1(x) / np.where(small, 1.0, 2.0 * a))
    return s2 * ratio


def kim_variance(lam, noise_var, t, *, lr, rho=0.0, momentum=0.0, sam_noise="same"):
    """σ²(t) along an eigendirection in the continuous-time model (module docstring).

    Args:
        lam: Hessian eigenvalue(s) λ (negative at a saddle's escape direction).
        noise_var: c = uᵀ C u, the gradient-noise variance along the direction (|λ|/B for Hessian
            noise).
        t: time(s) in units of η·steps.
        lr: η. rho: ρ (USAM radius; 0 for SGD). momentum: γ (heavy ball, first-order model).
        sam_noise: ``"same"`` (one draw for both gradients), ``"independent"`` or ``"descent"``
            (only the descent gradient is noisy, as in Kim et al.).

    Returns:
        σ²(t), broadcast over the inputs.
    """
    lam = np.asarray(lam, dtype=np.float64)
    if sam_noise == "same":
        factor = (1 + rho * lam) ** 2
    elif sam_noise == "independent":
        factor = 1 + (rho * lam) ** 2
    elif sam_noise == "descent":
        factor = np.ones_like(lam)
    else:
        raise ValueError(f"kim_variance: sam_noise must be 'same', 'independent' or 'descent', got {sam_noise!r}")
    if not 0 <= momentum < 1:
        raise ValueError(f"kim_variance: momentum must be in [0, 1), got {momentum!r}")
    a = lam * (1 + rho * lam) / (1 - momentum)
    s2 = lr * factor * np.asarray(noise_var, dtype=np.float64) / (1 - momentum) ** 2
    return ou_variance(a, s2, t)


def kim_msd_gap(lam, batch_size, t, *, lr, rho, exact: bool = True, sam_noise="descent"):
    """σ²_SGD(t) − σ²_SAM(t) along λ with Hessian noise c = |λ|/B.

    ``exact=False`` returns the leading small-t term under the paper's assumption
    (``sam_noise="descent"``): ``(η/B) ρ |λ|³ t²`` (Kim et al. print twice this; module docstring).
    """
    lam = np.asarray(lam, dtype=np.float64)
    c = np.abs(lam) / batch_size
    if not exact:
        if sam_noise != "descent":
            raise ValueError("kim_msd_gap: the small-t t² form holds for sam_noise='descent'")
        return lr * rho * np.abs(lam) ** 3 * np.asarray(t, dtype=np.float64) ** 2 / batch_size
    return kim_variance(lam, c, t, lr=lr) - kim_variance(lam, c, t, lr=lr, rho=rho, sam_noise=sam_noise)


def compare_with_paper(lam=-1.0, batch_size=8, lr=0.01, rho=0.05, times=(0.05, 0.1, 0.2, 0.5)):
    """A table (list of dicts) of the SGD − SAM variance gap along λ at several t = kη:
    the exact discrete linear map (USAM, same draw, Hessian noise |H|/B), the OU model with the
    same draw, the OU model with the paper's assumption (descent noise only), its t² term and
    Kim et al.'s printed ``2ηt²|λ|³ρ/B``.
    """
    H = np.array([[lam]])
    C = np.abs(H) / batch_size
    rows = []
    for t in times:
        k = int(round(t / lr))
        hp_sam = make_hparams(lr=lr, rho=rho)
        hp_sgd = make_hparams(lr=lr)
        disc = (linear_moments(usam(), H, C, hp_sgd, k).cov[-1, 0, 0]
                - linear_moments(usam(), H, C, hp_sam, k).cov[-1, 0, 0])
        rows.append({
            "t": k * lr,
            "discrete_same_draw": float(disc),
            "ou_same_draw": float(kim_msd_gap(lam, batch_size, k * lr, lr=lr, rho=rho, sam_noise="same")),
            "ou_descent_only": float(kim_msd_gap(lam, batch_size, k * lr, lr=lr, rho=rho)),
            "t2_term": float(kim_msd_gap(lam, batch_size, k * lr, lr=lr, rho=rho, exact=False)),
            "paper_printed": float(2 * lr * (k * lr) ** 2 * abs(lam) ** 3 * rho / batch_size),
        })
    return rows


# ---- SDE integration -----------------------------------------------------------------------------


def _sqrt_abs(H):
    lam, V = jnp.linalg.eigh((H + H.T) / 2)
    return (V * jnp.sqrt(jnp.abs(lam))[None, :]) @ V.T


def sde(problem, kind: str, *, lr, batch_size, rho=0.0, eps: float = 1e-12):
    """Drift and diffusion of the SGD / USAM / SAM SDEs on a landscape, time t = η·steps.

    * ``"sgd"``:  dX = −∇f dt + √(η/B) |H|^{1/2} dW
    * ``"usam"``: dX = −(∇f + ρ H∇f) dt + √(η/B) (I + ρH) |H|^{1/2} dW   (Compagnoni et al., USAM)
    * ``"sam"``:  dX = −(∇f + ρ H∇f/‖∇f‖) dt + √(η/B) (I + ρH/‖∇f‖) |H|^{1/2} dW   (SAM, their
      first-order model with the noise |H|/B of Kim et al.)

    Returns:
        ``(drift, diffusion)``: ``drift(x (d,)) -> (d,)``, ``diffusion(x) -> (d, d)`` (the matrix
        multiplying dW).
    """
    if kind not in ("sgd", "usam", "sam"):
        raise ValueError(f"sde: kind must be 'sgd', 'usam' or 'sam', got {kind!r}")
    if not (lr > 0 and batch_size > 0 and rho >= 0):
        raise ValueError("sde: need lr > 0, batch_size > 0, rho >= 0")
    hess = problem.hessian if hasattr(problem, "hessian") else jax.hessian(problem.loss)
    scale = math.sqrt(lr / batch_size)

    def drift(x):
        g = problem.grad(x)
        if kind == "sgd":
            return -g
        Hg = hess(x) @ g
        r = rho if kind == "usam" else rho / (jnp.linalg.norm(g) + eps)
        return -(g + r * Hg)

    def diffusion(x):
        H = hess(x)
        S = _sqrt_abs(H)
        if kind == "sgd":
            return scale * S
        r = rho if kind == "usam" else rho / (jnp.linalg.norm(problem.grad(x)) + eps)
        return scale * (jnp.eye(x.shape[0], dtype=x.dtype) + r * H) @ S

    return drift, diffusion


def euler_maruyama(drift: Callable, diffusion: Callable, x0, dt: float, steps: int, *, particles: int = 1,
                   key: int = 0, every: int = 1):
    """Euler–Maruyama ``X⁺ = X + b(X) dt + σ(X) √dt z`` for many particles in one ``lax.scan``.

    Args:
        drift, diffusion: per-particle functions of x (d,) (see :func:`sde`).
        x0: start, (d,). dt: step > 0. steps: number of steps. particles: number of paths.
        key: integer seed. every: record every ``every`` steps.

    Returns:
        ``(times (T,), paths (T, particles, d))`` with T = steps // every, times in units of t.
    """
    x0 = np.asarray(x0, dtype=np.float64)
    if x0.ndim != 1 or not np.all(np.isfinite(x0)):
        raise ValueError("euler_maruyama: x0 must be a finite point of shape (d,)")
    if not dt > 0 or steps < 1 or particles < 1 or every < 1 or every > steps:
        raise ValueError("euler_maruyama: need dt > 0 and 1 <= every <= steps, particles >= 1")
    b = jax.vmap(drift)
    s = jax.vmap(diffusion)
    sq = math.sqrt(dt)

    @jax.jit
    def run(x, k):
        def one(x, kk):
            z = jax.random.normal(kk, x.shape, dtype=x.dtype)
            return x + b(x) * dt + sq * jnp.einsum("pij,pj->pi", s(x), z)

        def block(x, kb):
            x = jax.lax.fori_loop(0, every, lambda i, x: one(x, jax.random.fold_in(kb, i)), x)
            return x, x

        keys = jax.random.split(k, steps // every)
        return jax.lax.scan(block, x, keys)[1]

    xs = jnp.broadcast_to(jnp.asarray(x0), (particles, x0.shape[0]))
    paths = run(xs, jax.random.PRNGKey(key))
    return dt * every * np.arange(1, steps // every + 1), np.asarray(paths)


# ---- escape studies -------------------------------------------------------------------------------


def escape_times(problem, opt: Optimizer, point, *, radius: float, lr: float, rho=(0.0,), momentum=(0.0,),
                 batch_size=(1.0,), noise_kind: str = "hessian", noise_scale: float = 1.0, steps: int = 1000,
                 particles: int = 4096, every: int = 1, start=None, key: int = 0, dtype: str = "float64",
                 chunk_size: int | None = None, independent: bool = False) -> dict:
    """Escape-time distributions from a critical point for a grid of ρ × momentum × batch size.

    Every particle starts at ``start`` (default: the critical point ``point``) and runs ``opt`` with
    noise of batch size B: ``noise_kind="hessian"`` (covariance |H(x)|/B at the evaluation point)
    or ``"isotropic"`` (``noise_scale² / B · I``). A particle has escaped once ``‖w − point‖ > radius``
    (checked every step). All settings share the same random numbers (chunk keys), which sharpens
    the comparison.

    Returns:
        A dict of NumPy arrays ready to plot: ``rho`` (R,), ``momentum`` (M,), ``batch_size`` (Bn,),
        ``times`` (T,) and, with shape (R, M, Bn, …): ``survival`` (…, T) = fraction still inside,
        ``exit_step`` (…, particles) = first exit step (−1: never), ``median_exit`` (over all
        particles, never-escaped ones counted as +∞; NaN when fewer than half escaped),
        ``mean_exit`` (conditional on escaping; NaN if none did), ``fraction_escaped``,
        ``msd`` (…, T) = E‖w − point‖².
    """
    from .simulation import simulate
    from .streaming import particle_stats

    rho = np.atleast_1d(np.asarray(rho, dtype=np.float64))
    momentum = np.atleast_1d(np.asarray(momentum, dtype=np.float64))
    batches = np.atleast_1d(np.asarray(batch_size, dtype=np.float64))
    if np.any(batches <= 0):
        raise ValueError("escape_times: batch sizes must be > 0")
    point = np.asarray(point, dtype=np.float64)
    start = point if start is None else np.asarray(start, dtype=np.float64)
    hp = make_hparams(lr=lr, rho=rho[:, None], momentum=momentum[None, :])
    spec = particle_stats(reference=point, radius=radius)
    out = {"survival": [], "exit_step": [], "msd": []}
    for B in batches:
        if noise_kind == "hessian":
            model = noise_mod.hessian(B, independent=independent)
        elif noise_kind == "isotropic":
            model = noise_mod.gaussian(std=noise_scale / math.sqrt(B), independent=independent)
        else:
            raise ValueError(f"escape_times: noise_kind must be 'hessian' or 'isotropic', got {noise_kind!r}")
        run = simulate(problem, opt, hp, start, steps, noise=model, key=key, particles=particles,
                       stats=spec, every=every, dtype=dtype, chunk_size=chunk_size)
        st = run.stats
        out["survival"].append(1.0 - st.fraction_exited)
        out["exit_step"].append(st.exit_step)
        out["msd"].append(st.msd)
        times = st.times
    res = {k: np.stack(v, axis=2) for k, v in out.items()}
    ex = res["exit_step"].astype(np.float64)
    escaped = ex >= 0
    res["fraction_escaped"] = escaped.mean(axis=-1)
    # the median over all particles, never-escaped ones counting as +∞ (NaN when fewer than half escaped)
    med = np.median(np.where(escaped, ex, np.inf), axis=-1)
    res["median_exit"] = np.where(np.isfinite(med), med, np.nan)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # settings where nobody escaped
        res["mean_exit"] = np.nanmean(np.where(escaped, ex, np.nan), axis=-1)
    res.update(rho=rho, momentum=momentum, batch_size=batches, times=times)
    return res
