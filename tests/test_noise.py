"""Noise oracles: exact structure (draw sharing, sampling without replacement) and moments against
closed forms, with fixed seeds and bands of a few standard errors."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import samdyn as sd
from samdyn import noise

Z_BAND = 4.5  # standard errors allowed in the statistical checks (fixed seeds)


def sample_cov_check(x, cov, mean=None):
    """|sample moments − exact| within Z_BAND standard errors, entrywise; x of shape (N, d)."""
    n = x.shape[0]
    mean = np.zeros(x.shape[1]) if mean is None else mean
    m = x.mean(axis=0)
    se_m = x.std(axis=0) / np.sqrt(n)
    assert np.all(np.abs(m - mean) <= Z_BAND * se_m + 1e-15), (m, mean, se_m)
    y = x - mean
    prod = y[:, :, None] * y[:, None, :]
    emp = prod.mean(axis=0)
    se = prod.std(axis=0) / np.sqrt(n)
    assert np.all(np.abs(emp - cov) <= Z_BAND * se + 1e-15), (emp, cov, se)


def oracle_noise(model, problem, point, lanes=20000, seed=0, calls=1):
    """Noise of the oracle at ``point`` for many lanes: array (lanes, calls, d)."""
    point = jnp.asarray(point, dtype=jnp.float64)
    x = jnp.broadcast_to(point[:, None], (point.shape[0], lanes))
    draws = model.sample(noise.counter(seed, 1, np.arange(lanes)), x)

    def lane(draw, w):
        fn = model.oracle(problem, draw)
        return jnp.stack([fn(w) - problem.grad(w) for _ in range(calls)])

    return np.asarray(jax.jit(jax.vmap(lane, in_axes=(-1, -1)))(draws, x))


SADDLE = sd.landscapes.get("saddle")  # x² − y², H = diag(2, −2)


# ---- bad input ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "make, match",
    [
        (lambda: noise.gaussian(std=-0.1), "std"),
        (lambda: noise.gaussian(), "exactly one"),
        (lambda: noise.gaussian(std=1.0, cov=np.eye(2)), "exactly one"),
        (lambda: noise.gaussian(cov=[[1.0, 2.0], [2.0, 1.0]]), "positive semi-definite"),
        (lambda: noise.gaussian(cov=[[1.0, 0.5], [0.0, 1.0]]), "symmetric"),
        (lambda: noise.hessian(0), "batch_size"),
        (lambda: noise.hessian(4, psd="nope"), "psd"),
        (lambda: noise.minibatch(11, noise.centered_shifts(10, 2)), "larger than"),
        (lambda: noise.minibatch(0, noise.centered_shifts(10, 2)), "positive integer"),
        (lambda: noise.minibatch(2.5, noise.centered_shifts(10, 2)), "positive integer"),
        (lambda: noise.minibatch(2, np.ones((10, 2))), "sum to zero"),
        (lambda: noise.minibatch(2), "exactly one"),
        (lambda: noise.minibatch(30, data=noise.least_squares(np.ones((20, 2)), np.ones(20))), "larger than"),
    ],
)
def test_bad_input_fails_early(make, match):
    with pytest.raises(ValueError, match=match):
        make()


def test_dimension_mismatch_fails_before_compute():
    hp = sd.optim.hparams(lr=0.1)
    with pytest.raises(ValueError, match="d = 2"):
        sd.simulate(SADDLE, sd.optim.gd(), hp, [0.0, 0.0], 5, noise=noise.gaussian(cov=np.eye(3)))
    with pytest.raises(ValueError, match="dimension 3"):
        sd.simulate(SADDLE, sd.optim.gd(), hp, [0.0, 0.0], 5, noise=noise.minibatch(2, noise.centered_shifts(5, 3)))


# ---- additive Gaussian -------------------------------------------------------------------------


def test_gaussian_covariance_and_factor():
    C = np.array([[1.0, 0.6], [0.6, 0.5]])
    m = noise.gaussian(cov=C)
    L = m.factor
    np.testing.assert_allclose(L @ L.T, C, atol=1e-14)
    xi = oracle_noise(m, SADDLE, [0.3, -0.2])[:, 0]
    sample_cov_check(xi, C)
    xi = oracle_noise(noise.gaussian(std=0.3), SADDLE, [0.3, -0.2], seed=1)[:, 0]
    sample_cov_check(xi, 0.09 * np.eye(2))


@pytest.mark.parametrize("independent", [False, True])
def test_same_or_independent_draw_across_two_calls(independent):
    m = noise.gaussian(std=1.0, independent=independent)
    xi = oracle_noise(m, SADDLE, [0.0, 0.0], lanes=4000, calls=3)
    if independent:
        assert not np.allclose(xi[:, 0], xi[:, 1])
        np.testing.assert_array_equal(xi[:, 1], xi[:, 2])  # all later calls share the second draw
        # independent: the cross-covariance of the two draws is zero (within SE)
        prod = xi[:, 0, 0] * xi[:, 1, 0]
        assert abs(prod.mean()) < Z_BAND * prod.std() / np.sqrt(prod.size)
    else:
        np.testing.assert_array_equal(xi[:, 0], xi[:, 1])


# ---- Hessian-shaped -----------------------------------------------------------------------------


def test_hessian_noise_covariance_is_abs_h_over_b_at_a_saddle():
    m = noise.hessian(4)
    xi = oracle_noise(m, SADDLE, [0.1, 0.2], seed=2)[:, 0]
    sample_cov_check(xi, np.diag([2.0, 2.0]) / 4)  # |diag(2, −2)| / 4
    np.testing.assert_allclose(m.covariance_at(SADDLE, [0.0, 0.0]), np.eye(2) / 2, atol=1e-14)


def test_hessian_noise_clip_has_no_noise_along_negative_curvature():
    xi = oracle_noise(noise.hessian(2, psd="clip"), SADDLE, [0.0, 0.0], lanes=1000)[:, 0]
    np.testing.assert_array_equal(xi[:, 1], 0.0)
    assert xi[:, 0].std() > 0.5


def test_hessian_noise_is_state_dependent_and_can_be_frozen():
    f = sd.landscapes.get("beale")
    p, q = np.array([0.0, 1.0]), np.array([1.0, 1.5])
    Hq = np.asarray(f.hessian(jnp.asarray(q)))
    lam, V = np.linalg.eigh(Hq)
    absHq = (V * np.abs(lam)) @ V.T
    xi = oracle_noise(noise.hessian(8), f, q, seed=3)[:, 0]
    sample_cov_check(xi, absHq / 8)
    frozen = noise.hessian(8, at=p)
    xi = oracle_noise(frozen, f, q, seed=3)[:, 0]
    sample_cov_check(xi, frozen.covariance_at(f, p))


# ---- finite sums and minibatches ---------------------------------------------------------------


def test_minibatch_draws_are_without_replacement_and_uniform():
    n, B, lanes = 7, 3, 20000
    m = noise.minibatch(B, noise.centered_shifts(n, 2))
    idx = np.asarray(m.sample(noise.counter(0, 1, np.arange(lanes)), jnp.zeros((2, lanes))))[0]  # (B, lanes)
    assert idx.shape == (B, lanes)
    srt = np.sort(idx, axis=0)
    assert np.all(np.diff(srt, axis=0) > 0)  # distinct within every batch
    freq = np.bincount(idx.ravel(), minlength=n) / lanes  # inclusion probability B/n each
    p = B / n
    assert np.all(np.abs(freq - p) <= Z_BAND * np.sqrt(p * (1 - p) / lanes))


@pytest.mark.parametrize("sampler", ["threefry", "fast"])
def test_minibatch_subsets_are_uniform(sampler):
    """Floyd's sampler: each of the C(6, 3) = 20 subsets has probability 1/20 (bands of 5 s.e.)."""
    n, B, lanes = 6, 3, 40_000
    m = noise.minibatch(B, noise.centered_shifts(n, 2, seed=0), sampler=sampler)
    idx = np.asarray(m.sample(noise.counter(11, 1, np.arange(lanes)), None))[0]  # (B, lanes)
    assert idx.min() >= 0 and idx.max() < n
    assert np.all(np.diff(np.sort(idx, axis=0), axis=0) > 0)  # B distinct components per lane
    codes = (1 << np.sort(idx, axis=0)).sum(axis=0)  # subset as a bit mask
    _, counts = np.unique(codes, return_counts=True)
    p = 1 / 20
    assert len(counts) == 20
    np.testing.assert_allclose(counts / lanes, p, atol=5 * np.sqrt(p * (1 - p) / lanes))


@pytest.mark.parametrize("sampler", ["threefry", "fast"])
def test_minibatch_shift_noise_has_the_finite_population_covariance(sampler):
    n, B = 6, 3
    shifts = noise.centered_shifts(n, 2, std=1.0, seed=4)
    m = noise.minibatch(B, shifts, sampler=sampler)
    C = m.cov()
    S = shifts.T @ shifts / n
    np.testing.assert_allclose(C, S * (n - B) / (B * (n - 1)), rtol=1e-14)
    xi = oracle_noise(m, SADDLE, [0.2, 0.1], seed=5)[:, 0]
    sample_cov_check(xi, C)
    # with replacement the covariance would be S / B: 5/3 of C here, far outside the band
    assert np.all(np.abs(np.diag(S / B - C)) > 10 * np.diag(C) * np.sqrt(2 / xi.shape[0]))
    # the full batch has no noise at all
    xi_full = oracle_noise(noise.minibatch(n, shifts), SADDLE, [0.2, 0.1], lanes=50)[:, 0]
    np.testing.assert_allclose(xi_full, 0.0, atol=1e-14)


def test_least_squares_finite_sum():
    rng = np.random.default_rng(0)
    X, y = rng.normal(size=(9, 2)), rng.normal(size=9)
    fs = noise.least_squares(X, y)
    w = np.array([0.3, -0.7])
    np.testing.assert_allclose(fs.grad(jnp.asarray(w)), X.T @ (X @ w - y) / 9, rtol=1e-12)
    np.testing.assert_allclose(fs.loss(jnp.asarray(w)), 0.5 * np.mean((X @ w - y) ** 2), rtol=1e-12)
    np.testing.assert_allclose(fs.hessian(jnp.asarray(w)), X.T @ X / 9, rtol=1e-12)
    wb = np.stack([w, 2 * w], axis=1)  # coordinate-first batch
    np.testing.assert_allclose(fs.grad(jnp.asarray(wb))[:, 1], X.T @ (X @ (2 * w) - y) / 9, rtol=1e-12)
    # the minibatch oracle is unbiased and its covariance is the finite-population one
    B = 4
    xi = oracle_noise(noise.minibatch(B, data=fs), fs, w, seed=6)[:, 0]
    G = X * (X @ w - y)[:, None]  # per-sample gradients
    Gc = G - G.mean(axis=0)
    sample_cov_check(xi, Gc.T @ Gc / 9 * (9 - B) / (B * 8))


def test_least_squares_minibatch_sgd_converges_to_the_solution_region():
    rng = np.random.default_rng(1)
    X = rng.normal(size=(40, 2))
    w_star = np.array([1.0, -2.0])
    y = X @ w_star  # interpolation: every component is minimised at w*, so SGD noise vanishes there
    fs = noise.least_squares(X, y)
    run = sd.simulate(fs, sd.optim.sam(), sd.optim.hparams(lr=0.1, rho=0.01), np.zeros((64, 2)), 400,
                      noise=noise.minibatch(5, data=fs), key=0)
    assert np.abs(run.final - w_star).max() < 0.02


# ---- the fast sampler ----------------------------------------------------------------------------


@pytest.mark.parametrize("sampler", noise.SAMPLERS)
@pytest.mark.parametrize("dtype", [jnp.float32, jnp.float64])
def test_counter_normals_are_standard_normal_and_independent(sampler, dtype):
    """Draws over 100,001 particles: N(0, 1) (moments, Kolmogorov–Smirnov), elements, steps and
    particles uncorrelated, and the same counter gives the same bits."""
    import scipy.stats

    particles = np.arange(100_001)
    z = np.asarray(noise.normal(noise.counter(3, 7, particles), (2,), dtype, sampler), dtype=np.float64)
    assert z.shape == (2, particles.size)
    assert noise.normal(noise.counter(3, 7, particles[:5]), (2,), dtype, sampler).dtype == dtype
    sample_cov_check(z.T, np.eye(2))  # mean 0, unit variance, the two elements uncorrelated
    assert scipy.stats.kstest(z.ravel(), "norm").pvalue > 1e-3
    z_next = np.asarray(noise.normal(noise.counter(3, 8, particles), (2,), dtype, sampler), dtype=np.float64)
    z_seed = np.asarray(noise.normal(noise.counter(4, 7, particles), (2,), dtype, sampler), dtype=np.float64)
    for prod in (z[0] * z_next[0], z[0] * z_seed[0], z[0, 1:] * z[0, :-1]):  # next step, next seed, next particle
        assert abs(prod.mean()) < Z_BAND * prod.std() / np.sqrt(prod.size)
    again = noise.normal(noise.counter(3, 7, particles), (2,), dtype, sampler)
    np.testing.assert_array_equal(np.asarray(again, dtype=np.float64), z)
    # a particle's draws do not depend on which particles are drawn with it
    subset = particles[[5, 77_777, 3]]
    np.testing.assert_array_equal(np.asarray(noise.normal(noise.counter(3, 7, subset), (2,), dtype, sampler),
                                             dtype=np.float64), z[:, subset])
    with pytest.raises(ValueError, match="sampler"):
        noise.gaussian(std=1.0, sampler="mersenne")


def test_fast_sampler_in_simulate_matches_the_exact_linear_moments():
    from samdyn import diffusion

    H = np.diag([2.0, -1.0])
    C = np.array([[1.0, 0.3], [0.3, 0.5]])
    f = sd.landscapes.get("quadratic", eigenvalues=(2, -1))
    hp = sd.optim.hparams(lr=0.05, rho=0.3, momentum=0.5)
    run = sd.simulate(f, sd.optim.usam(), hp, np.zeros((20000, 2)), 30, noise=noise.gaussian(cov=C, sampler="fast"), key=4)
    lm = diffusion.linear_moments(sd.optim.usam(), H, C, hp, 30)
    sample_cov_check(run.final, lm.cov[-1])


@pytest.mark.parametrize("make", [lambda: noise.gaussian(cov=[[1.0, 0.4], [0.4, 0.5]]), lambda: noise.hessian(3),
                                  lambda: noise.minibatch(2, noise.centered_shifts(5, 2))])
def test_draws_do_not_depend_on_the_cloud_layout(make):
    """A (d, lanes) array and a tuple of d (lanes,) arrays (the per-coordinate layout) get the same draws."""
    m = make()
    x = jnp.asarray(np.random.default_rng(0).normal(size=(2, 16)))
    ctr = noise.counter(9, 1, np.arange(16))
    a, b = m.sample(ctr, x), m.sample(ctr, (x[0], x[1]))
    np.testing.assert_array_equal(a, b)
    g = jax.vmap(lambda dr, w: m.oracle(SADDLE, dr)(w), in_axes=(-1, -1))(a, x)
    assert g.shape == (16, 2) and np.all(np.isfinite(np.asarray(g)))


def test_per_coordinate_std_is_a_diagonal_covariance_and_checked_against_d():
    m = noise.gaussian(std=[0.1, 2.0])
    np.testing.assert_array_equal(m.covariance(2), np.diag(np.square([0.1, 2.0])))
    sample_cov_check(oracle_noise(m, SADDLE, [0.3, -0.2])[:, 0], np.diag([0.01, 4.0]))
    with pytest.raises(ValueError, match=r"gaussian: std has 3 entries \(one per coordinate\), the problem has d = 2"):
        sd.simulate(SADDLE, sd.optim.gd(), sd.optim.hparams(lr=0.1), [0.0, 0.0], 3, noise=noise.gaussian(std=[1, 2, 3]))
    with pytest.raises(ValueError, match=r"gaussian: std must be finite and >= 0"):
        noise.gaussian(std=[0.1, -1.0])
    with pytest.raises(TypeError, match=r"gaussian: independent must be True or False, got 'yes'"):
        noise.gaussian(std=0.1, independent="yes")


def test_stats_width_checks_the_directions_shape():
    run = sd.simulate(SADDLE, sd.optim.gd(), sd.optim.hparams(lr=0.1), [0.0, 0.0], 4, noise=noise.gaussian(std=0.1),
                      particles=64, stats=sd.particle_stats(), every=2)
    assert run.stats.width(np.eye(2)).shape == (2, 2)
    with pytest.raises(ValueError, match=r"ParticleStats.width: directions must be a \(2, k\) matrix"):
        run.stats.width(np.eye(3))
    with pytest.raises(ValueError, match=r"ParticleStats.width: directions must be non-zero columns"):
        run.stats.width(np.zeros((2, 1)))
    assert len(repr(run.stats)) < 2000
