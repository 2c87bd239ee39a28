"""samdyn.hessian against oracles: the dense Hessian (jax.hessian + eigvalsh) and closed forms."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import samdyn  # noqa: F401  (x64)
from samdyn import hessian, nets


@pytest.fixture(scope="module")
def small_net():
    """A tanh MLP (3 → 6 → 2, 38 params) at random weights on random regression data, float64.

    Its Hessian is indefinite (negative and positive eigenvalues), a fair test of both ends.
    """
    model = nets.mlp(3, (6,), 2, activation="tanh", task="regression")
    params = model.init(jax.random.PRNGKey(1), jnp.float64)
    params = jax.tree.map(lambda p: 2.0 * p, params)
    x = jax.random.normal(jax.random.PRNGKey(2), (20, 3))
    y = jax.random.normal(jax.random.PRNGKey(3), (20, 2))
    loss = lambda p: nets.loss_fn(model, p, x, y)  # noqa: E731
    return loss, params, np.asarray(hessian.dense_eigvalsh(loss, params))


@pytest.fixture(scope="module")
def mlp_147():
    """A larger tanh MLP (5 → 16 → 3, 147 params) on random data: the default Krylov size of the
    fixed mode (2k + 30 = 36 for k = 3) got its third-most-negative eigenvalue wrong by ~1e-4·‖H‖."""
    model = nets.mlp(5, (16,), 3, activation="tanh", task="regression")
    params = jax.tree.map(lambda p: 2.0 * p, model.init(jax.random.PRNGKey(1), jnp.float64))
    x = jax.random.normal(jax.random.PRNGKey(2), (40, 5))
    y = jax.random.normal(jax.random.PRNGKey(3), (40, 3))
    loss = lambda p: nets.loss_fn(model, p, x, y)  # noqa: E731
    return loss, params, np.asarray(hessian.dense_eigvalsh(loss, params))


def test_hvp_equals_dense_hessian_product(small_net):
    loss, params, _ = small_net
    flat, unravel = jax.flatten_util.ravel_pytree(params)
    v = jax.random.normal(jax.random.PRNGKey(4), flat.shape)
    got = jax.flatten_util.ravel_pytree(hessian.hvp(loss, params, unravel(v)))[0]
    dense = hessian.dense_hessian(loss, params)
    np.testing.assert_allclose(got, dense @ v, rtol=1e-12, atol=1e-12)


def test_spectrum_is_indefinite(small_net):
    *_, eigs = small_net
    assert eigs[0] < -1e-3 and eigs[-1] > 1e-3


@pytest.mark.parametrize("k", [1, 3])
def test_lanczos_full_krylov_equals_dense_ends(small_net, k):
    """m = n: the Ritz values are the whole spectrum; both ends to 1e-9 · ‖H‖."""
    loss, params, eigs = small_net
    lo, hi = hessian.extreme_eigs(loss, params, k, m=eigs.size)
    scale = np.abs(eigs).max()
    np.testing.assert_allclose(lo, eigs[:k], atol=1e-9 * scale, rtol=0)
    np.testing.assert_allclose(hi, eigs[::-1][:k], atol=1e-9 * scale, rtol=0)


def test_lanczos_default_krylov_converges_at_both_ends(small_net):
    """Default m (< n here): the extreme eigenvalues of both signs to 1e-6 · ‖H‖."""
    loss, params, eigs = small_net
    lo, hi = hessian.extreme_eigs(loss, params, 1, m=30)
    assert 30 < eigs.size
    scale = np.abs(eigs).max()
    assert abs(lo[0] - eigs[0]) < 1e-6 * scale
    assert abs(hi[0] - eigs[-1]) < 1e-6 * scale


def test_deep_linear_origin_is_a_strict_saddle_closed_form():
    """Depth-2 linear net at 0: Hessian eigenvalues ±σᵢ(C) with C = mean(x yᵀ), multiplicity = hidden.

    The Krylov space from one start vector is small here (few distinct eigenvalues), so this also
    exercises the restart on breakdown: no spurious Ritz values.
    """
    in_dim, hidden, out_dim = 4, 3, 2
    net = nets.deep_linear(in_dim, hidden, out_dim, depth=2)
    x = jax.random.normal(jax.random.PRNGKey(0), (50, in_dim))
    y = jax.random.normal(jax.random.PRNGKey(1), (50, out_dim))
    zero = [jnp.zeros((in_dim, hidden)), jnp.zeros((hidden, out_dim))]
    loss = lambda p: nets.loss_fn(net, p, x, y)  # noqa: E731
    sigma = np.linalg.svd(np.asarray(x.T @ y) / 50, compute_uv=False)
    n = in_dim * hidden + hidden * out_dim
    expected = np.sort(np.concatenate([np.repeat(sigma, hidden), -np.repeat(sigma, hidden),
                                       np.zeros(n - 2 * hidden * out_dim)]))
    np.testing.assert_allclose(hessian.dense_eigvalsh(loss, zero), expected, atol=1e-12)
    lo, hi = hessian.extreme_eigs(loss, zero, 4, m=n)
    np.testing.assert_allclose(lo, expected[:4], atol=1e-10)
    np.testing.assert_allclose(hi, expected[::-1][:4], atol=1e-10)
    lo, hi = hessian.extreme_eigs(loss, zero, 1, m=10)
    np.testing.assert_allclose([lo[0], hi[0]], [-sigma[0], sigma[0]], atol=1e-10)


def test_extreme_eigs_jits_and_vmaps(small_net):
    loss, params, eigs = small_net
    batch = jax.tree.map(lambda p: jnp.stack([p, 1.5 * p]), params)
    lo, hi = jax.jit(jax.vmap(lambda p: hessian.extreme_eigs(loss, p, 1, m=eigs.size)))(batch)
    second = hessian.dense_eigvalsh(loss, jax.tree.map(lambda p: 1.5 * p, params))
    np.testing.assert_allclose([lo[0, 0], hi[0, 0]], [eigs[0], eigs[-1]], atol=1e-9)
    np.testing.assert_allclose([lo[1, 0], hi[1, 0]], [second[0], second[-1]], atol=1e-9)


@pytest.mark.parametrize("k", [1, 3, 5])
def test_default_converges_k_eigenvalues_to_the_stated_tolerance(mlp_147, k):
    """Default (converged mode): every residual ≤ √eps·max|θ|, and both ends equal dense to √eps·‖H‖."""
    loss, params, eigs = mlp_147
    lo, hi, res_lo, res_hi = hessian.extreme_eigs(loss, params, k, residuals=True)
    tol, scale = np.sqrt(np.finfo(np.float64).eps), np.abs(eigs).max()
    assert lo.shape == hi.shape == res_lo.shape == res_hi.shape == (k,)
    assert max(res_lo.max(), res_hi.max()) <= tol * max(abs(lo[0]), abs(hi[0]))
    np.testing.assert_allclose(lo, eigs[:k], atol=tol * scale, rtol=0)
    np.testing.assert_allclose(hi, eigs[::-1][:k], atol=tol * scale, rtol=0)


def test_residuals_bound_the_errors_of_an_unconverged_run(mlp_147):
    """Fixed m = 20 (< n = 147): each Ritz value lies within its residual r of an eigenvalue, and
    within r²/gap when r < gap (gap: distance to the rest of the spectrum), so r is not underestimated."""
    loss, params, eigs = mlp_147
    lo, hi, res_lo, res_hi = hessian.extreme_eigs(loss, params, 3, m=20, residuals=True)
    theta, res = np.concatenate([lo, hi]), np.concatenate([res_lo, res_hi])
    assert res.max() > 1e-6 * np.abs(eigs).max()  # not converged: the bounds below have content
    for t, r in zip(theta, res):
        dist = np.sort(np.abs(eigs - t))
        assert dist[0] <= r * (1 + 1e-9)
        if r < dist[1]:
            assert dist[0] <= r**2 / dist[1] * (1 + 1e-6) + 1e-13


def test_old_default_krylov_size_was_not_converged(mlp_147):
    """What the converged mode fixes: 36 fixed steps miss the third-lowest eigenvalue, and say so."""
    loss, params, eigs = mlp_147
    lo, _, res_lo, _ = hessian.extreme_eigs(loss, params, 3, m=36, residuals=True)
    err = abs(lo[2] - eigs[2])
    assert err > 1e-6 * np.abs(eigs).max() and res_lo[2] >= err


def test_converged_mode_jits_and_vmaps(small_net):
    loss, params, eigs = small_net
    batch = jax.tree.map(lambda p: jnp.stack([p, 1.5 * p]), params)
    lo, hi, res_lo, res_hi = jax.jit(jax.vmap(lambda p: hessian.extreme_eigs(loss, p, 2, residuals=True)))(batch)
    second = np.asarray(hessian.dense_eigvalsh(loss, jax.tree.map(lambda p: 1.5 * p, params)))
    for i, e in enumerate([eigs, second]):
        np.testing.assert_allclose(lo[i], e[:2], atol=1e-8 * np.abs(e).max())
        np.testing.assert_allclose(hi[i], e[::-1][:2], atol=1e-8 * np.abs(e).max())
    assert res_lo.shape == res_hi.shape == (2, 2)


@pytest.mark.parametrize("kwargs, match", [({"k": 0}, "k must be"), ({"k": 1, "m": 1000}, "m <= n"),
                                           ({"k": 5, "m": 3}, "exceeds the Krylov"),
                                           ({"k": 1, "m": 2.5}, r"m must be an integer with 1 <= m <= n = 38, got 2.5"),
                                           ({"k": 1, "tol": 0.0}, r"tol must be a finite real number > 0, got 0.0"),
                                           ({"k": 1, "residuals": "yes"}, r"residuals must be True or False")])
def test_bad_input(small_net, kwargs, match):
    loss, params, _ = small_net
    with pytest.raises((TypeError, ValueError), match="^extreme_eigs: .*" + match):
        hessian.extreme_eigs(loss, params, **kwargs)
