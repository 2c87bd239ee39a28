"""Update rules against closed forms, an independent NumPy iteration and torch.optim.SGD."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import samdyn as sd

R = np.linalg.qr(np.random.default_rng(0).normal(size=(3, 3)))[0]
EIGS = (2.0, 0.5, -1.0)
H = R @ np.diag(EIGS) @ R.T
QUAD = sd.landscapes.get("quadratic", eigenvalues=EIGS, rotation=R)
X0 = np.array([0.3, -0.2, 0.5])
STEPS = 60


def _powers(M, z0, steps):
    """z_1 … z_steps of z_{t+1} = M z_t."""
    out, z = [], z0
    for _ in range(steps):
        z = M @ z
        out.append(z)
    return np.array(out)


def _run(opt, **hp):
    return sd.simulate(QUAD, opt, sd.optim.hparams(**hp), X0, STEPS, record="trajectory")


def test_gd_is_matrix_power():
    lr = 0.1
    expected = _powers(np.eye(3) - lr * H, X0, STEPS)
    np.testing.assert_allclose(_run(sd.optim.gd(), lr=lr).trajectory, expected, rtol=1e-12, atol=1e-15)


def test_usam_is_matrix_power():
    lr, rho = 0.1, 0.3
    expected = _powers(np.eye(3) - lr * H @ (np.eye(3) + rho * H), X0, STEPS)
    np.testing.assert_allclose(_run(sd.optim.usam(), lr=lr, rho=rho).trajectory, expected, rtol=1e-12, atol=1e-15)


@pytest.mark.parametrize("nesterov", [False, True])
@pytest.mark.parametrize("which", ["gd", "usam"])
def test_momentum_is_companion_matrix_power(which, nesterov):
    """Heavy ball: v' = γv + Aw, w' = (I − ηA)w − ηγv; Nesterov: w' = (I − η(1+γ)A)w − ηγ²v."""
    lr, rho, gamma = 0.05, 0.2, 0.8
    A = H if which == "gd" else H @ (np.eye(3) + rho * H)
    I = np.eye(3)
    if nesterov:
        M = np.block([[I - lr * (1 + gamma) * A, -lr * gamma**2 * I], [A, gamma * I]])
    else:
        M = np.block([[I - lr * A, -lr * gamma * I], [A, gamma * I]])
    expected = _powers(M, np.concatenate([X0, np.zeros(3)]), STEPS)
    opt = getattr(sd.optim, which)(nesterov=nesterov)
    run = _run(opt, lr=lr, rho=rho, momentum=gamma)
    np.testing.assert_allclose(run.trajectory, expected[:, :3], rtol=1e-11, atol=1e-14)
    np.testing.assert_allclose(run.final_momentum, expected[-1, 3:], rtol=1e-11, atol=1e-14)


def test_sam_matches_independent_numpy_iteration():
    lr, rho, eps = 0.05, 0.4, 1e-12
    w, expected = X0.copy(), []
    for _ in range(STEPS):
        g = H @ w
        e = g * (rho / (np.linalg.norm(g) + eps))
        w = w - lr * (H @ (w + e))
        expected.append(w)
    np.testing.assert_allclose(_run(sd.optim.sam(eps=eps), lr=lr, rho=rho).trajectory, np.array(expected), rtol=1e-12, atol=1e-15)


def test_step_info_is_exact():
    opt, w = sd.optim.sam(), jnp.asarray(X0)
    hp = sd.optim.hparams(lr=0.1, rho=0.5)
    _, _, info = opt.step(QUAD.grad, w, opt.init(w), hp)
    g = H @ X0
    e = 0.5 * g / (np.linalg.norm(g) + 1e-12)
    g2 = H @ (X0 + e)
    np.testing.assert_allclose(info.grad_norm, np.linalg.norm(g), rtol=1e-14)
    np.testing.assert_allclose(info.perturbed, X0 + e, rtol=1e-14)
    np.testing.assert_allclose(info.cosine, g @ g2 / np.linalg.norm(g) / np.linalg.norm(g2), rtol=1e-13)
    _, _, gd_info = sd.optim.gd().step(QUAD.grad, w, opt.init(w), hp)
    assert float(gd_info.cosine) == 1.0 and np.array_equal(gd_info.perturbed, w)


@pytest.mark.parametrize("make", [sd.optim.sam, sd.optim.usam, sd.optim.gd])
def test_zero_gradient_gives_gd_step_and_no_nan(make):
    beale = sd.landscapes.get("beale")
    saddle = jnp.array([0.0, 1.0])  # exact critical point: the gradient is exactly zero
    assert np.all(np.asarray(beale.grad(saddle)) == 0)
    opt, hp = make(), sd.optim.hparams(lr=0.1, rho=0.5, momentum=0.9)
    w, state, info = opt.step(beale.grad, saddle, opt.init(saddle), hp)
    np.testing.assert_array_equal(w, saddle)
    assert np.all(np.isfinite(w)) and float(info.grad_norm) == 0 and np.isfinite(float(info.cosine))
    run = sd.simulate(beale, opt, hp, [0.0, 1.0], 20)
    np.testing.assert_array_equal(run.final, [0.0, 1.0])
    assert not run.diverged


def test_pytree_params_use_the_global_norm():
    """A dict of leaves steps exactly like the concatenated vector."""
    Hj = jnp.asarray(H)

    def grad_vec(w):
        return Hj @ w

    def grad_tree(p):
        g = grad_vec(jnp.concatenate([p["a"], p["b"]]))
        return {"a": g[:1], "b": g[1:]}

    hp = sd.optim.hparams(lr=0.1, rho=0.3, momentum=0.5)
    for opt in (sd.optim.sam(), sd.optim.usam(nesterov=True)):
        w, tree = jnp.asarray(X0), {"a": jnp.asarray(X0[:1]), "b": jnp.asarray(X0[1:])}
        sw, st = opt.init(w), opt.init(tree)
        for _ in range(5):
            w, sw, iw = opt.step(grad_vec, w, sw, hp)
            tree, st, it = opt.step(grad_tree, tree, st, hp)
        np.testing.assert_allclose(jnp.concatenate([tree["a"], tree["b"]]), w, rtol=1e-14)
        np.testing.assert_allclose(it.cosine, iw.cosine, rtol=1e-14)


@pytest.mark.parametrize("nesterov", [False, True])
def test_momentum_agrees_with_torch_sgd(nesterov):
    torch = pytest.importorskip("torch")
    lr, gamma = 0.05, 0.9
    w = torch.tensor(X0, dtype=torch.float64, requires_grad=True)
    Ht = torch.tensor(H)
    opt = torch.optim.SGD([w], lr=lr, momentum=gamma, nesterov=nesterov)
    expected = []
    for _ in range(STEPS):
        opt.zero_grad()
        (0.5 * w @ Ht @ w).backward()
        opt.step()
        expected.append(w.detach().numpy().copy())
    run = _run(sd.optim.gd(nesterov=nesterov), lr=lr, momentum=gamma)
    np.testing.assert_allclose(run.trajectory, np.array(expected), rtol=1e-12, atol=1e-15)


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"lr": -0.1}, "lr must be > 0"),
        ({"lr": 0.0}, "lr must be > 0"),
        ({"lr": 0.1, "rho": -1.0}, "rho must be >= 0"),
        ({"lr": 0.1, "momentum": 1.0}, r"momentum must be in \[0, 1\)"),
        ({"lr": float("nan")}, "lr must be finite"),
        ({"lr": [0.1, 0.2], "rho": [0.1, 0.2, 0.3]}, "do not broadcast"),
        ({"lr": []}, "lr is empty"),
        ({"lr": "fast"}, "lr must be a real number"),
    ],
)
def test_bad_hparams_fail_clearly(kwargs, message):
    with pytest.raises((ValueError, TypeError), match=message):
        sd.optim.hparams(**kwargs)


def test_optimizers_are_cached_and_validated():
    assert sd.optim.sam() is sd.optim.sam() and sd.optim.sam(eps=1e-16) is not sd.optim.sam()
    with pytest.raises(ValueError, match="eps must be > 0"):
        sd.optim.sam(eps=0.0)
    hp = sd.optim.hparams(lr=0.1, rho=[0.1, 0.2])
    assert isinstance(hp, sd.optim.HParams) and len(jax.tree.leaves(hp)) == len(sd.optim.HParams._fields) == 7
    assert hp.rho.dtype == jnp.float64
