"""The anchors of ``make bench`` (experiments/anchors.py) compute what samdyn computes.

The C kernel (skipped without gcc) and the numba kernel (skipped without numba) run samdyn's SAM
step: in float64 to rounding, in float32 within float32's accuracy of the float64 truth; their noisy
variants draw standard normals and, with the noise off, take samdyn's step on x² − y². The bound's
arithmetic is checked on a made-up machine table.
"""

import sys
from pathlib import Path

import jax
import numpy as np
import pytest
import scipy.stats

import samdyn as sd

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "experiments"))
import anchors  # noqa: E402

LR, RHO = 1e-4, 0.05
N = anchors.BLOCK + 37  # a full block and a partial one


def kernels(kind):
    k, note = anchors.c_kernels() if kind == "c" else anchors.numba_kernels()
    if k is None:
        pytest.skip(note)
    return k


def per_step_float32(steps, scale):
    """Two float32 ulps of ``scale`` per step: a step's rounding moves w by about one ulp of |w|."""
    return steps * 2 * float(np.spacing(np.float32(scale)))


@pytest.fixture(scope="module")
def starts():
    return np.random.default_rng(0).uniform([-2, -1], [2, 3], size=(N, 2))


@pytest.mark.parametrize("kind", ["c", "numba"])
def test_rosenbrock_kernel_is_samdyns_sam_step(kind, starts):
    k, f, opt, hp = kernels(kind), sd.landscapes.get("rosenbrock"), sd.optim.sam(), sd.optim.hparams(lr=LR, rho=RHO)
    steps = 20
    truth = sd.simulate(f, opt, hp, starts, steps).final
    # float64: the same update, different rounding order only (|w| <= 4, ulp 9e-16)
    np.testing.assert_allclose(k.sam_rosenbrock(starts, steps, LR, RHO, dtype=np.float64), truth, rtol=0, atol=1e-13)
    # float32: as close to the float64 truth as samdyn's own float32 run is held to
    ours32 = sd.simulate(f, opt, hp, starts, steps, dtype="float32").final
    k32 = k.sam_rosenbrock(starts, steps, LR, RHO)
    assert k32.dtype == np.float32
    tol = per_step_float32(steps, 4.0)
    assert np.abs(ours32 - truth).max() <= tol
    assert np.abs(k32 - truth).max() <= tol
    assert np.abs(k32 - truth).max() > 0  # really float32


@pytest.mark.parametrize("kind", ["c", "numba"])
def test_noisy_kernel_without_noise_is_samdyns_step_on_the_saddle(kind):
    k, steps, lr = kernels(kind), 50, 1e-3
    x0 = np.random.default_rng(1).uniform(-1, 1, size=(N, 2))
    ours = sd.simulate(sd.landscapes.get("saddle"), sd.optim.sam(), sd.optim.hparams(lr=lr, rho=RHO), x0, steps,
                       dtype="float32").final
    got = k.sam_saddle_noise(x0, steps, lr, RHO, std=0.0, seed=3)
    assert np.abs(got - ours).max() <= per_step_float32(steps, 1.2)  # |w| < 1.2 here


def test_c_normals_are_standard_normal():
    k = kernels("c")
    z = np.stack([np.concatenate(k.normals(seed=7, step=t, n=50_000)) for t in (1, 2)])  # (2 steps, 100_000)
    m = z.size
    flat = z.ravel()
    assert abs(flat.mean()) < 4 / np.sqrt(m)
    assert abs(flat.var() - 1) < 4 * np.sqrt(2 / m)
    assert abs((flat**4).mean() - 3) < 4 * np.sqrt(96 / m)  # Var z^4 = 105 - 9
    assert abs(np.corrcoef(z[0, :50_000], z[0, 50_000:])[0, 1]) < 4 / np.sqrt(50_000)  # a pair's two normals
    assert abs(np.corrcoef(z[0], z[1])[0, 1]) < 4 / np.sqrt(100_000)  # consecutive steps
    assert scipy.stats.kstest(flat, "norm").pvalue > 1e-3
    # a pure function of (seed, step, particle): any slice of particles gives the same draws
    np.testing.assert_array_equal(k.normals(7, 1, 100, first=200)[0], k.normals(7, 1, 300)[0][200:])


def test_numba_sampler_is_the_c_sampler():
    c, nb = kernels("c"), kernels("numba")
    for a, b in zip(c.normals(11, 5, 10_000), nb.normals(11, 5, 10_000)):
        # same hash and Box-Muller; the C kernel's polynomial log vs libm's logf: a few float32 ulps
        np.testing.assert_allclose(b, a, rtol=0, atol=4e-6)
    x0 = np.random.default_rng(2).uniform(-1, 1, size=(N, 2))
    np.testing.assert_allclose(nb.sam_saddle_noise(x0, 20, 1e-3, RHO, 0.5, seed=4),
                               c.sam_saddle_noise(x0, 20, 1e-3, RHO, 0.5, seed=4), rtol=0, atol=per_step_float32(20, 1.2))


def test_c_noisy_sam_spreads_like_samdyns():
    k, n, steps, lr, std = kernels("c"), 20_000, 100, 1e-3, 0.5
    f, opt, hp = sd.landscapes.get("saddle"), sd.optim.sam(), sd.optim.hparams(lr=lr, rho=RHO)
    x0 = np.broadcast_to(np.array([0.3, 0.2]), (n, 2))
    ours = sd.simulate(f, opt, hp, x0, steps, noise=sd.noise.gaussian(std=std, sampler="fast"), dtype="float32").final
    got = k.sam_saddle_noise(x0, steps, lr, RHO, std, seed=1)
    for j in range(2):  # mean and spread of each coordinate, within 4 standard errors
        a, b = got[:, j].astype(float), ours[:, j].astype(float)
        assert abs(a.mean() - b.mean()) < 4 * np.sqrt((a.var() + b.var()) / n)
        assert abs(a.std() - b.std()) < 4 * np.sqrt((a.var() + b.var()) / (2 * n))
    assert got[:, 1].std() > 0.5 * lr * std * np.sqrt(steps)  # the noise is really there


def test_hardware_bound_arithmetic():
    core = anchors.VectorCore("made up", lanes=4, source="test", units={
        "divider": anchors.Unit(1, {"div": 2, "sqrt": 6}),
        "fma": anchors.Unit(2, {"mul": 1, "fma": 1}),
        "add": anchors.Unit(2, {"add": 1})})
    ops = {"sqrt": 1, "div": 1, "mul": 6, "fma": 6, "add": 4}
    bound, per_unit = anchors.hardware_bound(ops, core, n_cores=3, clock_hz=2e9)
    # divider: (6 + 2) / 4 = 2 cycles per particle-step; fma: 12 / 8 = 1.5; add: 4 / 8 = 0.5
    assert per_unit == pytest.approx({"divider": 3e9, "fma": 4e9, "add": 12e9})
    assert bound == pytest.approx(3e9)
    with pytest.raises(ValueError, match="exp"):
        anchors.hardware_bound({"exp": 1}, core, 1, 1e9)
    # Zen 3: 5 + 3 divider cycles per 8 particles and 16 multiply/FMA ops on 2 x 8 lanes, one cycle each
    zen3 = anchors.CPU_TABLE[("AuthenticAMD", 25)]
    bound, per_unit = anchors.hardware_bound(anchors.ROSENBROCK_SAM_OPS, zen3, n_cores=2, clock_hz=2.5e9)
    assert bound == pytest.approx(5e9)
    assert per_unit["fp divide/sqrt"] == pytest.approx(5e9) and per_unit["fp mul/FMA"] == pytest.approx(5e9)


def test_optax_sam_loop_takes_nets_train_steps():
    pytest.importorskip("optax")
    from samdyn import nets

    data = nets.datasets.teacher_student(256, 64, 8, 3, cache=False)
    model = nets.mlp(8, (16,), 3, task="regression")
    steps, batch, lr, rho, momentum = 12, 32, 0.05, 0.05, 0.9
    res = nets.train(model, data, sd.optim.sam(), sd.optim.hparams(lr=lr, rho=rho, momentum=momentum), steps, batch,
                     key=0, seeds=[0], dtype="float64")
    init_key, data_key, _ = nets.run_keys(0, 0)
    loop = anchors.optax_sam_loop(model, len(data.x_train), batch, steps, lr, rho, momentum)
    got = loop(init_key, data_key, np.asarray(data.x_train, np.float64), np.asarray(data.y_train, np.float64))
    for a, b in zip(jax.tree.leaves(res.params), jax.tree.leaves(got)):
        # optax normalises by |g|, samdyn by |g| + 1e-12: equal to float64 rounding
        np.testing.assert_allclose(np.asarray(a)[0], np.asarray(b), rtol=1e-10, atol=1e-12)
