"""The SAM family (samdyn.optim variants) against peers and closed forms.

Oracles: optax.contrib.sam configured as the same algorithm, optax's Adam/AdamW, independent NumPy
iterations of each published rule (davda54/sam, Kwon et al.'s ASAM, GSAM's decomposition, projected
multi-step ascent), a float64 port of Kim et al.'s x² − y² demo in torch, exact schedules, dense
Hessians, the trust-region solution for the worst-case sharpness of a quadratic.
"""

import dataclasses
import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import scipy.optimize

import samdyn as sd
from samdyn import nets
from samdyn.optim import schedules

optax = pytest.importorskip("optax")
opt_mod = sd.optim

R = np.linalg.qr(np.random.default_rng(0).normal(size=(3, 3)))[0]
EIGS = (2.0, 0.5, -1.0)
H = R @ np.diag(EIGS) @ R.T
QUAD = sd.landscapes.get("quadratic", eigenvalues=EIGS, rotation=R)
X0 = np.array([0.3, -0.2, 0.5])


@functools.lru_cache(maxsize=None)
def _scan_program(opt, grad, steps):
    def run(w, hp):
        def body(carry, _):
            w, s = carry
            w, s, _ = opt.step(grad, w, s, hp)
            return (w, s), w

        return jax.lax.scan(body, (w, opt.init(w)), None, length=steps)[1]

    return jax.jit(run)


def scan_steps(opt, grad, w0, hp, steps):
    """w_1 … w_steps of opt.step in one jitted scan (float64; compiled once per optimizer, oracle and length)."""
    return jax.tree.map(np.asarray, _scan_program(opt, grad, steps)(w0, hp))


def numpy_run(step, w0, steps):
    w, out = np.array(w0, dtype=np.float64), []
    for _ in range(steps):
        w = step(w)
        out.append(w.copy())
    return np.array(out)


# a small MLP with a fixed batch: the "network" half of the peer comparisons
@pytest.fixture(scope="module")
def mlp_problem():
    data = nets.datasets.teacher_student(n_train=16, n_test=4, in_dim=3, out_dim=2, teacher="relu", noise_std=0.1,
                                         seed=1, cache=False)
    model = nets.mlp(3, (5,), 2, activation="tanh", task="regression")
    x, y = jnp.asarray(data.x_train, jnp.float64), jnp.asarray(data.y_train, jnp.float64)
    params = model.init(jax.random.PRNGKey(0), jnp.float64)

    def loss(p):
        return nets.loss_fn(model, p, x, y)

    return model, x, y, params, loss


def assert_trees_close(a, b, rtol, atol=0.0):
    jax.tree.map(lambda u, v: np.testing.assert_allclose(np.asarray(u), np.asarray(v), rtol=rtol, atol=atol), a, b)


# ---------------------------------------------------------------- optax peers


def optax_sam(outer, rho, sync_period=2, adv=None):
    adv = adv if adv is not None else optax.chain(optax.contrib.normalize(), optax.sgd(rho))
    return optax.contrib.sam(outer, adv, sync_period=sync_period)


def optax_pairs(tx, grad, w0, pairs, calls=2):
    """Parameters after every ``calls``-th update of an optax transformation (transparent SAM: 2 per step)."""
    def body(carry, _):
        w, s = carry
        for _ in range(calls):
            u, s = tx.update(grad(w), s, w)
            w = optax.apply_updates(w, u)
        return (w, s), w

    run = jax.jit(lambda w: jax.lax.scan(body, (w, tx.init(w)), None, length=pairs)[1])
    return jax.tree.map(np.asarray, run(w0))


@pytest.mark.parametrize("where", ["rosenbrock", "mlp"])
def test_sam_equals_optax_contrib_sam(where, mlp_problem):
    """Transparent mode, sync period 2, chain(normalize(), sgd(ρ)), outer sgd with momentum: 300 steps, 1e-12."""
    lr, rho, gamma, steps = 1e-3, 0.05, 0.9, 300
    if where == "rosenbrock":
        grad, w0 = sd.landscapes.get("rosenbrock").grad, jnp.array([-1.2, 1.0])
    else:
        *_, w0, loss = mlp_problem
        grad, lr = jax.grad(loss), 0.05
    ours = scan_steps(opt_mod.sam(eps=1e-300), grad, w0, opt_mod.hparams(lr=lr, rho=rho, momentum=gamma), steps)
    theirs = optax_pairs(optax_sam(optax.sgd(lr, momentum=gamma), rho), grad, w0, steps)
    assert_trees_close(ours, theirs, rtol=1e-12, atol=1e-14)
    moved = jax.tree.map(lambda a, b: np.max(np.abs(a[-1] - np.asarray(b))), ours, w0)
    assert max(jax.tree.leaves(moved)) > 1e-2                       # it went somewhere


def test_as_optax_in_a_plain_optax_loop_equals_samdyn_step(mlp_problem):
    *_, w_mlp, loss = mlp_problem
    _, tgrad, _, p0 = tree_quadratic()
    hp = opt_mod.hparams(lr=0.05, rho=0.05, momentum=0.9)
    for opt, grad, w0 in ((opt_mod.sam(), jax.grad(loss), w_mlp),
                          (opt_mod.sam(ascent_steps=2, rho_schedule=schedules.cosine(50)), tgrad, p0)):
        tx = opt_mod.as_optax(opt, hp)

        def body(carry, _):
            w, s = carry
            updates, s = tx.update(grad(w), s, w, grad_fn=grad)
            w = optax.apply_updates(w, updates)
            return (w, s), w

        theirs = jax.jit(lambda w: jax.lax.scan(body, (w, tx.init(w)), None, length=100)[1])(w0)
        ours = scan_steps(opt, grad, w0, hp, 100)
        assert_trees_close(ours, theirs, rtol=1e-12, atol=1e-14)


def test_as_optax_reuses_the_given_gradient_and_needs_grad_fn():
    calls = []
    tx = opt_mod.as_optax(opt_mod.sam(), opt_mod.hparams(lr=0.1, rho=0.1))
    w = jnp.array([1.0, 2.0])

    def grad_fn(p):
        calls.append(1)
        return 2 * p

    updates, _ = tx.update(2 * w, tx.init(w), w, grad_fn=grad_fn)
    assert len(calls) == 1                                           # only the perturbed point
    gd_tx = opt_mod.as_optax(opt_mod.gd(), {"lr": 0.25})
    updates, _ = gd_tx.update(2 * w, gd_tx.init(w), w)               # GD needs no grad_fn
    np.testing.assert_allclose(updates, -0.5 * w)
    with pytest.raises(ValueError, match="grad_fn"):
        tx.update(2 * w, tx.init(w), w)


def test_where_optax_misbehaves_samdyn_does_not():
    beale = sd.landscapes.get("beale")
    saddle = jnp.array([0.0, 1.0])                                   # exact critical point: ∇f = 0
    hp = opt_mod.hparams(lr=0.01, rho=0.5)
    # 1. a zero gradient: optax's normalize() divides by ‖g‖ = 0
    theirs = optax_pairs(optax_sam(optax.sgd(0.01), 0.5), beale.grad, saddle, 3)
    assert np.all(np.isnan(theirs[-1]))
    np.testing.assert_array_equal(scan_steps(opt_mod.sam(), beale.grad, saddle, hp, 3)[-1], saddle)
    # 2. a schedule on ρ: optax resets the adversarial optimizer (and its schedule's count) every sync
    grad, w0 = QUAD.grad, jnp.asarray(X0)
    sched = optax.linear_schedule(0.5, 0.0, 10)
    tx = optax_sam(optax.sgd(0.01), None, adv=optax.chain(optax.contrib.normalize(), optax.sgd(sched)))
    w, s, radii = w0, tx.init(w0), []
    for _ in range(6):
        u, s = tx.update(grad(w), s, w)
        radii.append(float(jnp.linalg.norm(u)))                       # the ascent step
        w = optax.apply_updates(w, u)
        u, s = tx.update(grad(w), s, w)
        w = optax.apply_updates(w, u)
    np.testing.assert_allclose(radii, 0.5, rtol=1e-12)                # never advances
    opt = opt_mod.sam(rho_schedule=schedules.linear(10))
    w, s = w0, opt.init(w0)
    ours = []
    for _ in range(6):
        w_before = w
        w, s, info = opt.step(grad, w, s, hp)
        ours.append(float(jnp.linalg.norm(info.perturbed - w_before)))
    np.testing.assert_allclose(ours, 0.5 * (1 - np.arange(6) / 10), rtol=1e-10)
    # 3. one ascent per descent in optax (sync_period = 1) undoes the previous step
    tx1 = optax_sam(optax.sgd(0.1), 0.1, sync_period=1)
    w_prev, s = w0, tx1.init(w0)
    u, s = tx1.update(grad(w_prev), s, w_prev)
    w = optax.apply_updates(w_prev, u)
    u, s = tx1.update(grad(w), s, w)
    w_next = optax.apply_updates(w, u)
    np.testing.assert_allclose(w_next, w_prev - 0.1 * grad(w), rtol=1e-12)   # the step from w_prev, not w
    ours = scan_steps(opt_mod.sam(ascent_steps=1), grad, w0, opt_mod.hparams(lr=0.1, rho=0.1), 2)
    e = 0.1 * grad(ours[0]) / (np.linalg.norm(grad(ours[0])) + 1e-12)
    np.testing.assert_allclose(ours[1], ours[0] - 0.1 * H @ (ours[0] + e), rtol=1e-13)


def test_from_optax_adam_adamw_and_sam_adam_equal_optax():
    lr, rho, lam, steps = 1e-2, 0.05, 0.1, 100
    adam = optax.scale_by_adam()
    _, tgrad, _, p0 = tree_quadratic()
    plain = scan_steps(opt_mod.from_optax(adam, "gd", name="adam"), tgrad, p0, opt_mod.hparams(lr=lr), steps)
    assert_trees_close(plain, optax_pairs(optax.adam(lr), tgrad, p0, steps, calls=1), rtol=1e-12, atol=1e-14)
    adamw = opt_mod.from_optax(adam, "gd", name="adamw", decay="decoupled")
    ours = scan_steps(adamw, tgrad, p0, opt_mod.hparams(lr=lr, weight_decay=lam), steps)
    assert_trees_close(ours, optax_pairs(optax.adamw(lr, weight_decay=lam), tgrad, p0, steps, calls=1), rtol=1e-12,
                       atol=1e-14)
    sam_adam = opt_mod.from_optax(adam, "sam", name="adam", eps=1e-300)
    assert sam_adam.name == "sam+adam"
    ours = scan_steps(sam_adam, tgrad, p0, opt_mod.hparams(lr=lr, rho=rho), steps)
    assert_trees_close(ours, optax_pairs(optax_sam(optax.adam(lr), rho), tgrad, p0, steps), rtol=1e-12, atol=1e-14)
    state = sam_adam.init(p0)
    _, state, _ = sam_adam.step(tgrad, p0, state, opt_mod.hparams(lr=lr, rho=rho))
    assert_trees_close(state.momentum, state.base.mu, rtol=0)     # momentum reads Adam's first moment


# ---------------------------------------------------------------- each variant's own oracle


def test_asam_eta0_all_leaves_equals_davda54_adaptive():
    """davda54/sam adaptive=True: e = ρ w² g / (‖ |w| g ‖ + 1e-12), on a quadratic (NumPy)."""
    lr, rho = 0.05, 0.3

    def step(w):
        g = H @ w
        e = rho * w**2 * g / (np.linalg.norm(np.abs(w) * g) + 1e-12)
        return w - lr * H @ (w + e)

    run = sd.simulate(QUAD, opt_mod.asam(), opt_mod.hparams(lr=lr, rho=rho, asam_eta=0.0), X0, 60,
                      record="trajectory")
    np.testing.assert_allclose(run.trajectory, numpy_run(step, X0, 60), rtol=1e-12, atol=1e-15)


def test_asam_weights_only_equals_kwon_official_rule():
    """Kwon et al.'s code: T = |w| + η on "weight" leaves, biases unscaled, ‖·‖ + 1e-16."""
    rng = np.random.default_rng(3)
    A = rng.normal(size=(6, 6))
    Hb = A @ A.T / 6 - 0.3 * np.eye(6)
    lr, rho, eta = 0.05, 0.2, 0.01

    def grad_tree(p):
        g = jnp.asarray(Hb) @ jnp.concatenate([p["weight"].ravel(), p["bias"]])
        return {"bias": g[4:], "weight": g[:4].reshape(2, 2)}

    def step(v):
        g = Hb @ v
        t = np.concatenate([np.abs(v[:4]) + eta, np.ones(2)])
        e = rho * t**2 * g / (np.linalg.norm(t * g) + 1e-16)
        return v - lr * Hb @ (v + e)

    v0 = rng.normal(size=6)
    p0 = {"bias": jnp.asarray(v0[4:]), "weight": jnp.asarray(v0[:4].reshape(2, 2))}
    ours = scan_steps(opt_mod.asam(leaves="weights", eps=1e-16), grad_tree, p0,
                      opt_mod.hparams(lr=lr, rho=rho, asam_eta=eta), 40)
    flat = np.concatenate([ours["weight"].reshape(40, 4), ours["bias"]], axis=1)
    np.testing.assert_allclose(flat, numpy_run(step, v0, 40), rtol=1e-12, atol=1e-15)
    by_path = opt_mod.asam(leaves=lambda path, x: path[0].key == "weight", eps=1e-16)
    again = scan_steps(by_path, grad_tree, p0, opt_mod.hparams(lr=lr, rho=rho, asam_eta=eta), 40)
    assert_trees_close(again, ours, rtol=0)


def test_msam_and_schedules_under_nets_train_equal_a_loop_of_sam_steps():
    """nets.train builds msam's micro-batch oracle (m = batch: SAM) and the schedules advance with its steps."""
    data = nets.datasets.teacher_student(n_train=12, n_test=4, in_dim=3, out_dim=2, teacher="relu", noise_std=0.1,
                                         seed=3, cache=False)
    model = nets.mlp(3, (4,), 2, activation="tanh", task="regression")
    sched = dict(lr_schedule=schedules.linear(6, 0.1), rho_schedule=schedules.cosine(6))
    hp = opt_mod.hparams(lr=0.1, rho=0.05, momentum=0.9)
    res = nets.train(model, data, opt_mod.msam(6, **sched), hp, 6, 6, seeds=[0], dtype="float64")
    init_key, data_key, _ = nets.run_keys(0, 0)
    x, y = jnp.asarray(data.x_train, jnp.float64), jnp.asarray(data.y_train, jnp.float64)
    finals = []
    for opt in (opt_mod.sam(**sched), opt_mod.sam()):               # the loop oracle of test_nets, in a scan
        def body(carry, t, opt=opt):
            idx = nets.minibatch_indices(data_key, t, 12, 6)
            p, s, _ = opt.step(jax.grad(lambda q: nets.loss_fn(model, q, x[idx], y[idx])), *carry, hp)
            return (p, s), None

        p0 = model.init(init_key, jnp.float64)
        finals.append(jax.jit(lambda p: jax.lax.scan(body, (p, opt.init(p)), jnp.arange(6))[0][0])(p0))
    assert res.optimizer == "msam6+sched"
    assert_trees_close(jax.tree.map(lambda a: a[0], res.params), finals[0], rtol=1e-12, atol=1e-15)
    assert not np.allclose(finals[0][0]["w"], finals[1][0]["w"], rtol=1e-6)      # the schedules did something


def test_msam_equals_a_per_micro_batch_loop():
    """m = 2 of a batch of 6: three perturbations, averaged descent gradients (a Python loop per micro-batch)."""
    data = nets.datasets.teacher_student(n_train=12, n_test=4, in_dim=3, out_dim=2, teacher="relu", noise_std=0.1,
                                         seed=3, cache=False)
    model = nets.mlp(3, (4,), 2, activation="tanh", task="regression")
    hp = opt_mod.hparams(lr=0.1, rho=0.05, momentum=0.9)
    x, y = jnp.asarray(data.x_train[:6], jnp.float64), jnp.asarray(data.y_train[:6], jnp.float64)
    p = model.init(jax.random.PRNGKey(1), jnp.float64)

    def g_of(q, j):
        return jax.grad(lambda r: nets.loss_fn(model, r, x[2 * j:2 * j + 2], y[2 * j:2 * j + 2]))(q)

    @jax.jit
    def loop(p):
        ds = []
        for j in range(3):
            gj = g_of(p, j)
            e = jax.tree.map(lambda a: 0.05 * a / (opt_mod.tree_norm(gj) + 1e-12), gj)
            ds.append(g_of(jax.tree.map(jnp.add, p, e), j))
        g_mean = jax.tree.map(lambda *g: sum(g) / 3, *(g_of(p, j) for j in range(3)))
        return jax.tree.map(lambda w, *d: w - 0.1 * sum(d) / 3, p, *ds), opt_mod.tree_norm(g_mean)

    expected, g_norm = loop(p)
    opt = opt_mod.msam(2)
    oracle = opt_mod.batch_oracle(opt, lambda q, xs, ys: nets.loss_fn(model, q, xs, ys), x, y)
    got, _, info = jax.jit(lambda q: opt.step(oracle, q, opt.init(q), hp))(p)
    assert_trees_close(got, expected, rtol=1e-13, atol=1e-15)
    np.testing.assert_allclose(info.grad_norm, g_norm, rtol=1e-13)


def test_micro_batch_oracle_at_one_point_and_the_micro_batch_reductions():
    """The shared-point path (leading axis 1) equals k copies of the point; the halving mean and the
    matrix-vector norms equal jnp.mean and a vmapped norm (k = 1; 3 and 7 keep a remainder when halved)."""
    from samdyn.optim import variants

    model = nets.mlp(3, (4,), 2, activation="tanh", task="regression")
    p = model.init(jax.random.PRNGKey(2), jnp.float64)
    rng = np.random.default_rng(3)
    x, y = rng.normal(size=(6, 3)), rng.normal(size=(6, 2))
    oracle = opt_mod.MicroBatchOracle(lambda q, xs, ys: nets.loss_fn(model, q, xs, ys), (x, y), 2)
    shared, copies = jax.jit(lambda q: (oracle(jax.tree.map(lambda a: a[None], q)),
                                        oracle(jax.tree.map(lambda a: jnp.broadcast_to(a, (3,) + a.shape), q))))(p)
    assert_trees_close(shared, copies, rtol=1e-14, atol=1e-16)

    @jax.jit
    def both_ways(tree):
        return ((variants._mean_over_micro_batches(tree), jax.tree.map(lambda t: jnp.mean(t, axis=0), tree)),
                (variants._norms_per_micro_batch(tree), jax.vmap(opt_mod.tree_norm)(tree)))

    for k in (1, 3, 4, 7):
        tree = {"a": rng.normal(size=(k, 3, 4)), "b": rng.normal(size=(k,))}
        (mean, reference_mean), (norms, reference_norms) = both_ways(tree)
        assert_trees_close(mean, reference_mean, rtol=1e-14, atol=1e-15)
        np.testing.assert_allclose(norms, reference_norms, rtol=1e-14)


def test_multi_step_ascent_k1_is_sam_and_k3_matches_projected_ascent():
    hp = opt_mod.hparams(lr=0.05, rho=0.4, momentum=0.5)
    grad, w0 = QUAD.grad, jnp.asarray(X0)
    np.testing.assert_array_equal(scan_steps(opt_mod.sam(ascent_steps=1), grad, w0, hp, 30),
                                  scan_steps(opt_mod.sam(), grad, w0, hp, 30))
    lr, rho, gamma, eps = 0.05, 0.4, 0.5, 1e-12

    def step_factory():
        v = np.zeros(3)

        def step(w):
            nonlocal v
            e = np.zeros(3)
            for i in range(3):
                g = H @ (w + e)
                e = e + rho * g / (np.linalg.norm(g) + eps)
                if i:
                    e = e * min(1.0, rho / np.linalg.norm(e))
            v = gamma * v + H @ (w + e)
            return w - lr * v

        return step

    ours = scan_steps(opt_mod.sam(ascent_steps=3), grad, w0, hp, 30)
    np.testing.assert_allclose(ours, numpy_run(step_factory(), X0, 30), rtol=1e-12, atol=1e-15)


@functools.cache
def tree_quadratic(seed=4):
    """A 4-D quadratic with one negative eigenvalue, its parameters split into two leaves of 2."""
    A = np.random.default_rng(seed).normal(size=(4, 4))
    H4 = A @ A.T / 4 - 0.2 * np.eye(4)

    def grad_tree(p):
        g = jnp.asarray(H4) @ jnp.concatenate([p["a"], p["b"]])
        return {"a": g[:2], "b": g[2:]}

    v0 = np.array([0.3, -0.2, 0.5, 0.1])
    return H4, grad_tree, v0, {"a": jnp.asarray(v0[:2]), "b": jnp.asarray(v0[2:])}


def test_layer_wise_normalisation_normalises_each_leaf():
    lr, rho = 0.05, 0.3
    H4, grad_tree, v0, p0 = tree_quadratic()

    def step(w):
        g = H4 @ w
        e = np.concatenate([rho * g[:2] / (np.linalg.norm(g[:2]) + 1e-12), rho * g[2:] / (np.linalg.norm(g[2:]) + 1e-12)])
        return w - lr * H4 @ (w + e)

    ours = scan_steps(opt_mod.sam(norm="layer"), grad_tree, p0, opt_mod.hparams(lr=lr, rho=rho), 40)
    np.testing.assert_allclose(np.concatenate([ours["a"], ours["b"]], axis=1), numpy_run(step, v0, 40), rtol=1e-12)


def test_gsam_alpha0_is_sam_and_alpha_follows_the_decomposition():
    lr, rho, alpha = 0.05, 0.3, 0.4
    grad, w0 = QUAD.grad, jnp.asarray(X0)
    hp0 = opt_mod.hparams(lr=lr, rho=rho, momentum=0.9)
    np.testing.assert_array_equal(scan_steps(opt_mod.gsam(), grad, w0, hp0, 40), scan_steps(opt_mod.sam(), grad, w0, hp0, 40))

    def step(w):
        g = H @ w
        gp = H @ (w + rho * g / (np.linalg.norm(g) + 1e-12))
        return w - lr * (gp - alpha * (g - (g @ gp) / (gp @ gp) * gp))

    ours = scan_steps(opt_mod.gsam(), grad, w0, opt_mod.hparams(lr=lr, rho=rho, gsam_alpha=alpha), 40)
    np.testing.assert_allclose(ours, numpy_run(step, X0, 40), rtol=1e-12, atol=1e-15)


def test_xsam_sam_end_equals_sam_and_alpha0_descends_along_the_ascent():
    beale = sd.landscapes.get("beale")
    hp = opt_mod.hparams(lr=1e-3, rho=0.1, momentum=0.5, xsam_alpha=1.0)
    for k in (1, 2):
        np.testing.assert_allclose(scan_steps(opt_mod.xsam(ascent_steps=k), beale.grad, jnp.array([1.0, 1.5]), hp, 200),
                                   scan_steps(opt_mod.sam(ascent_steps=k), beale.grad, jnp.array([1.0, 1.5]), hp, 200),
                                   rtol=1e-14)
    lr, rho = 0.05, 0.3

    def step(w):                                                     # α = 0: ‖g_k‖ · e/‖e‖
        g = H @ w
        e = rho * g / (np.linalg.norm(g) + 1e-12)
        return w - lr * np.linalg.norm(H @ (w + e)) * e / np.linalg.norm(e)

    ours = scan_steps(opt_mod.xsam(), QUAD.grad, jnp.asarray(X0), opt_mod.hparams(lr=lr, rho=rho, xsam_alpha=0.0), 30)
    np.testing.assert_allclose(ours, numpy_run(step, X0, 30), rtol=1e-12, atol=1e-15)


def test_xsam_search_picks_the_worst_probe_and_keeps_it():
    lr, rho = 0.05, 0.3
    loss = lambda w: 0.5 * w @ jnp.asarray(H) @ w                    # noqa: E731
    oracle = opt_mod.LossOracle(loss)
    opt = opt_mod.xsam(search_every=2, alpha_max=2.0, alphas=9)
    w, s = jnp.asarray(X0), opt.init(jnp.asarray(X0))
    grid = np.linspace(0, 2, 9)
    hp = opt_mod.hparams(lr=lr, rho=rho)
    for t in range(4):
        wn = np.asarray(w)
        g = H @ wn
        e = rho * g / (np.linalg.norm(g) + 1e-12)
        gk = H @ (wn + e)
        v0, v1 = e / np.linalg.norm(e), gk / np.linalg.norm(gk)
        th = np.arccos(np.clip(v0 @ v1, -1, 1))

        def u(a):
            return (np.sin((1 - a) * th) * v0 + np.sin(a * th) * v1) / np.sin(th)

        if t % 2 == 0:
            alpha = grid[np.argmax([0.5 * (wn + rho * u(a)) @ H @ (wn + rho * u(a)) for a in grid])]
        expected = wn - lr * np.linalg.norm(gk) * u(alpha)
        w, s, _ = opt.step(oracle, w, s, hp)
        assert float(s.extra) == pytest.approx(alpha, abs=0) and int(s.count) == t + 1
        np.testing.assert_allclose(w, expected, rtol=1e-12)
    with pytest.raises(TypeError, match="LossOracle"):
        opt.step(QUAD.grad, w, s, hp)


ZERO_RHO = [opt_mod.sam(), opt_mod.usam(), opt_mod.asam(), opt_mod.sam(ascent_steps=3), opt_mod.sam(norm="layer"),
            opt_mod.gsam(), opt_mod.xsam(), opt_mod.xsam(ascent_steps=2), opt_mod.sam(nesterov=True)]


@pytest.mark.parametrize("opt", ZERO_RHO, ids=[o.name + ("-nesterov" if dict(o.options)["nesterov"] else "")
                                               for o in ZERO_RHO])
def test_rho_zero_is_the_base_optimizer(opt):
    _, grad, _, p0 = tree_quadratic()
    hp = opt_mod.hparams(lr=0.1, rho=0.0, momentum=0.9, gsam_alpha=0.3, xsam_alpha=0.4)
    base = opt_mod.gd(nesterov=dict(opt.options)["nesterov"])
    assert_trees_close(scan_steps(opt, grad, p0, hp, 10), scan_steps(base, grad, p0, hp, 10), rtol=1e-14, atol=1e-16)


def test_rho_zero_is_the_base_for_msam_and_an_adam_base():
    x = jnp.linspace(-1, 1, 8)[:, None] * jnp.array([[1.0, -0.5]])
    y = jnp.sin(3 * x[:, 0])

    def loss(p, xs, ys):
        return jnp.mean((jnp.tanh(xs @ p["w"]) @ p["v"] - ys) ** 2)

    p = {"w": jnp.array([[0.3, -0.2, 0.1], [0.5, 0.4, -0.3]]), "v": jnp.array([0.2, -0.1, 0.3])}
    hp = opt_mod.hparams(lr=0.1, rho=0.0, momentum=0.9)
    msam = opt_mod.msam(2)
    got = jax.jit(lambda q: msam.step(opt_mod.batch_oracle(msam, loss, x, y), q, msam.init(q), hp)[0])(p)
    ref = jax.jit(lambda q: opt_mod.gd().step(jax.grad(lambda r: loss(r, x, y)), q, opt_mod.gd().init(q), hp)[0])(p)
    assert_trees_close(got, ref, rtol=1e-14, atol=1e-16)
    adam = optax.scale_by_adam()
    grad = jax.grad(lambda q: loss(q, x, y))
    assert_trees_close(scan_steps(opt_mod.from_optax(adam, "sam"), grad, p, hp, 10),
                       scan_steps(opt_mod.from_optax(adam, "gd"), grad, p, hp, 10), rtol=1e-14, atol=1e-16)


def test_accumulated_gradient_equals_kim_et_al_saddle_demo():
    """Kim et al.'s official x² − y² demo (gradients not zeroed between SAM's passes), ported to float64 torch."""
    torch = pytest.importorskip("torch")
    lr, rho, steps = 0.01, 0.5, 500
    x = torch.tensor(-3.0, dtype=torch.float64, requires_grad=True)
    y = torch.tensor(-0.01, dtype=torch.float64, requires_grad=True)
    opt = torch.optim.SGD([x, y], lr=lr, momentum=0.0)
    path = []
    for _ in range(steps):                                           # the demo's get_trajectory, verbatim logic
        (x**2 - y**2).backward()
        with torch.no_grad():
            xg, yg = x.grad.clone(), y.grad.clone()
            norm = torch.norm(torch.stack([xg, yg]), p=2)
            xe, ye = rho / norm * xg, rho / norm * yg
            x.add_(xe)
            y.add_(ye)
        (x**2 - y**2).backward()
        opt.step()
        with torch.no_grad():
            x.sub_(xe)
            y.sub_(ye)
            path.append([float(x), float(y)])
        x.grad.zero_()
        y.grad.zero_()
    saddle = sd.landscapes.get("saddle")
    hp = opt_mod.hparams(lr=lr, rho=rho)
    run = scan_steps(opt_mod.sam(accumulate=True, eps=1e-300), saddle.grad, jnp.array([-3.0, -0.01]), hp, steps)
    np.testing.assert_allclose(run, np.array(path), rtol=1e-12, atol=1e-14)
    plain = scan_steps(opt_mod.sam(eps=1e-300), saddle.grad, jnp.array([-3.0, -0.01]), hp, steps)
    assert np.max(np.abs(plain - run)) > 0.1              # a different map, shown not hidden


# ---------------------------------------------------------------- weight decay placements


def test_weight_decay_placements():
    lr, rho, gamma, lam = 0.05, 0.3, 0.8, 0.2
    hp = opt_mod.hparams(lr=lr, rho=rho, momentum=gamma, weight_decay=lam)
    # "loss": SAM on L + λ‖w‖²/2, i.e. the quadratic with H + λI
    shifted = sd.landscapes.get("quadratic", eigenvalues=tuple(np.add(EIGS, lam)), rotation=R)
    w0 = jnp.asarray(X0)
    np.testing.assert_allclose(scan_steps(opt_mod.sam(decay="loss"), QUAD.grad, w0, hp, 50),
                               scan_steps(opt_mod.sam(), shifted.grad, w0, hp, 50), rtol=1e-12, atol=1e-15)

    def sgd(placement):
        v = np.zeros(3)

        def step(w):
            nonlocal v
            g = H @ w
            d = H @ (w + rho * g / (np.linalg.norm(g) + 1e-12))
            v = gamma * v + d + (lam * w if placement == "descent" else 0)
            return w - lr * (v + (lam * w if placement == "decoupled" else 0))

        return step

    for placement in ("descent", "decoupled"):
        run = scan_steps(opt_mod.sam(decay=placement), QUAD.grad, w0, hp, 50)
        np.testing.assert_allclose(run, numpy_run(sgd(placement), X0, 50), rtol=1e-12, atol=1e-15)
    none = scan_steps(opt_mod.sam(), QUAD.grad, w0, hp, 50)                   # decay=None: λ is not used
    np.testing.assert_array_equal(none, scan_steps(opt_mod.sam(), QUAD.grad, w0, hp._replace(weight_decay=0.0), 50))


# ---------------------------------------------------------------- schedules


def test_schedules_closed_forms():
    t = np.arange(0, 130)
    np.testing.assert_allclose(schedules.linear(100, 0.2)(t), np.where(t < 100, 1 - 0.8 * t / 100, 0.2), rtol=1e-15)
    cos = schedules.cosine(100, 0.1, warmup=20)(t)
    tau = np.clip((t - 20) / 80, 0, 1)
    np.testing.assert_allclose(cos, np.where(t < 20, t / 20, 0.1 + 0.9 * 0.5 * (1 + np.cos(np.pi * tau))), rtol=1e-14)
    np.testing.assert_array_equal(schedules.constant()(t), 1.0)
    # GSAM's ProportionScheduler: (ρ − ρ_min)/(ρ_max − ρ_min) = (η − η_min)/(η_max − η_min)
    lr_s = schedules.cosine(100, 0.05)
    eta_max, rho_max, rho_min = 0.1, 0.04, 0.01
    eta = eta_max * lr_s(t)
    rho = rho_min + (rho_max - rho_min) * (eta - 0.05 * eta_max) / (eta_max - 0.05 * eta_max)
    np.testing.assert_allclose(rho_max * schedules.tied(lr_s, rho_min / rho_max)(t), rho, rtol=1e-13)
    np.testing.assert_array_equal(schedules.tied(schedules.constant(), 0.3)(t), 1.0)


def test_scheduled_rho_advances_under_the_engine_layout():
    """The engine's layout: init and step vmapped over a trailing particle axis (a (lanes,) counter)."""
    beale = sd.landscapes.get("beale")
    opt = opt_mod.sam(rho_schedule=schedules.linear(40, 0.0))
    hp = opt_mod.hparams(lr=1e-3, rho=0.5)
    x0 = jnp.array([[1.0, 0.5, -1.0], [1.5, 0.2, 1.0]])                   # (d, lanes)
    state = jax.vmap(opt.init, in_axes=-1, out_axes=-1)(x0)
    assert state.count.shape == (3,)
    step = jax.jit(jax.vmap(lambda w, s: opt.step(beale.grad, w, s, hp)[:2], in_axes=(-1, -1), out_axes=-1))
    w = x0
    for _ in range(50):
        w, state = step(w, state)
    np.testing.assert_array_equal(state.count, 50)
    for lane in range(3):
        ref = scan_steps(opt, beale.grad, x0[:, lane], hp, 50)[-1]
        np.testing.assert_allclose(w[:, lane], ref, rtol=1e-13)
    unscheduled = scan_steps(opt_mod.sam(), beale.grad, x0[:, 0], hp, 50)[-1]
    assert not np.allclose(unscheduled, w[:, 0], rtol=1e-8)


def test_scheduled_rho_advances_under_simulate():
    beale = sd.landscapes.get("beale")
    opt = opt_mod.sam(rho_schedule=schedules.linear(40, 0.0))
    hp = opt_mod.hparams(lr=1e-3, rho=0.5)
    run = sd.simulate(beale, opt, hp, [1.0, 1.5], 50)
    np.testing.assert_allclose(run.final, scan_steps(opt, beale.grad, jnp.array([1.0, 1.5]), hp, 50)[-1], rtol=1e-13)


def test_new_variant_hyperparameters_compile_nothing():
    events = []

    def listener(name, duration, **kwargs):
        if name in ("/jax/core/compile/backend_compile_duration", "/jax/core/compile/jaxpr_trace_duration"):
            events.append(name)

    beale, x0 = sd.landscapes.get("beale"), np.array([[1.0, 2.0], [0.5, 1.0]])
    opt = opt_mod.gsam(decay="descent")
    first = sd.simulate(beale, opt, opt_mod.hparams(lr=1e-3, rho=[0.1, 0.2], gsam_alpha=0.1, weight_decay=0.0), x0, 30)
    jax.monitoring.register_event_duration_secs_listener(listener)
    try:
        second = sd.simulate(beale, opt, opt_mod.hparams(lr=2e-3, rho=[0.3, 0.1], gsam_alpha=0.5, weight_decay=0.1),
                             x0, 30)
    finally:
        jax.monitoring.unregister_event_duration_listener(listener)
    assert events == []
    assert not np.array_equal(first.final, second.final)


# ---------------------------------------------------------------- stability of the variants' maps


def test_stability_jacobian_of_a_scheduled_rho_is_the_map_at_count_zero():
    """stability differentiates opt.step on (w, v); the state it builds has no counter, which reads as step 0."""
    st = sd.stability
    saddle = sd.landscapes.get("saddle")
    Hs = np.diag([2.0, -2.0])
    lr, rho = 0.1, 1.0
    hp = opt_mod.hparams(lr=lr, rho=rho)
    starts_at_one = opt_mod.usam(rho_schedule=schedules.cosine(100, 0.0))
    warmup = opt_mod.usam(rho_schedule=schedules.linear(100, warmup=10))      # ρ_0 = 0: GD's map
    J = st.jacobian(starts_at_one, saddle, [0.0, 0.0], hp)
    np.testing.assert_allclose(J[:2, :2], np.eye(2) - lr * (Hs + rho * Hs @ Hs), atol=1e-14)
    np.testing.assert_allclose(st.jacobian(warmup, saddle, [0.0, 0.0], hp)[:2, :2], np.eye(2) - lr * Hs, atol=1e-14)
    assert st.classify(starts_at_one, saddle, [0.0, 0.0], hp).kind == "attractor"   # ρ > −1/λ = 0.5
    assert st.classify(warmup, saddle, [0.0, 0.0], hp).kind == "saddle"


@pytest.mark.parametrize("opt", [opt_mod.asam(), opt_mod.sam(ascent_steps=3), opt_mod.sam(ascent_steps=2, norm="layer")],
                         ids=["asam", "sam+k3", "sam+k2+layer"])
def test_stability_jacobian_of_asam_and_multi_step_equals_finite_differences(opt):
    """Away from critical points the normalised maps are smooth: jacfwd through opt.step vs central differences."""
    st = sd.stability
    beale = sd.landscapes.get("beale")
    hp = opt_mod.hparams(lr=1e-3, rho=0.1, momentum=0.5, asam_eta=0.05)
    z0 = np.array([1.0, 1.5, 0.3, -0.2])
    J = st.jacobian(opt, beale, z0[:2], hp, state=z0[2:])

    def T(z):
        w, s, _ = opt.step(beale.grad, jnp.asarray(z[:2]), opt_mod.OptState(jnp.asarray(z[2:])), hp)
        return np.concatenate([np.asarray(w), np.asarray(s.momentum)])

    h = 1e-6
    fd = np.stack([(T(z0 + h * e) - T(z0 - h * e)) / (2 * h) for e in np.eye(4)], axis=1)
    np.testing.assert_allclose(J, fd, rtol=1e-6, atol=1e-8)
    assert st.classify(opt, beale, [3.0, 0.5], hp).kind == "non-differentiable" if opt.name == "sam" else True


# ---------------------------------------------------------------- sharpness measures


def test_sharpness_measures_against_dense_and_closed_forms(mlp_problem):
    model, x, y, params, _ = mlp_problem
    H4, _, v0, _ = tree_quadratic()
    quad4 = lambda v: 0.5 * v @ jnp.asarray(H4) @ v                 # noqa: E731
    np.testing.assert_allclose(opt_mod.lambda_max(quad4, jnp.asarray(v0), m=4), np.linalg.eigvalsh(H4)[-1], rtol=1e-12)
    # Hutchinson: exact for a diagonal Hessian; within 4 standard errors otherwise
    diag = jnp.array([3.0, -1.0, 0.5, 2.0])
    np.testing.assert_allclose(opt_mod.hessian_trace(lambda w: 0.5 * jnp.sum(diag * w**2), jnp.ones(4), samples=5),
                               float(jnp.sum(diag)), rtol=1e-14)
    se = np.sqrt(2 * (np.sum(H4**2) - np.sum(np.diag(H4) ** 2)) / 200)
    assert abs(float(opt_mod.hessian_trace(quad4, jnp.asarray(v0), samples=200, key=1)) - np.trace(H4)) < 4 * se
    # worst case over the ball on a quadratic: the trust-region solution e = (μI − H)⁻¹ g, ‖e‖ = ρ
    w, rho = X0, 0.3
    g = H @ w
    lam, V = np.linalg.eigh(H)
    gv = V.T @ g

    def radius(mu):
        return np.linalg.norm(gv / (mu - lam)) - rho

    mu = scipy.optimize.brentq(radius, lam[-1] + 1e-12, lam[-1] + 1e3)
    e = V @ (gv / (mu - lam))
    exact = g @ e + 0.5 * e @ H @ e
    got = opt_mod.worst_case_sharpness(QUAD.loss, jnp.asarray(w), rho, steps=200)
    np.testing.assert_allclose(got, exact, rtol=1e-8)
    at_saddle = opt_mod.worst_case_sharpness(QUAD.loss, jnp.zeros(3), rho, steps=300)
    np.testing.assert_allclose(at_saddle, 0.5 * rho**2 * max(EIGS), rtol=1e-8)
    # m-sharpness = mean of the micro-batches' worst cases; jittable and vmappable over ρ
    def ls(p, xs, ys):
        return nets.loss_fn(model, p, xs, ys)

    ms = jax.jit(jax.vmap(lambda r: opt_mod.m_sharpness(ls, params, (x, y), 4, r, steps=10)))(jnp.array([0.01, 0.05]))
    one = jax.jit(lambda xs, ys, r: opt_mod.worst_case_sharpness(lambda p: ls(p, xs, ys), params, r, steps=10))
    loop = [np.mean([float(one(x[i:i + 4], y[i:i + 4], r)) for i in range(0, 16, 4)]) for r in (0.01, 0.05)]
    np.testing.assert_allclose(ms, loop, rtol=1e-10)
    assert 0 < ms[0] < ms[1]


# ---------------------------------------------------------------- the saddle-trap monitor


def test_trap_monitor_fires_for_usam_at_the_deep_linear_origin_and_not_for_gd():
    """Depth-2 linear net from 1e-3: the origin is a strict saddle (λ = ±σ(E[x yᵀ])); USAM with ρ > −1/λ stays."""
    data = nets.datasets.teacher_student(n_train=64, n_test=8, in_dim=3, out_dim=2, teacher="linear", noise_std=0.0,
                                         seed=0, cache=False)
    model = nets.deep_linear(3, 3, 2, depth=2, init_scale=1e-3)
    x, y = jnp.asarray(data.x_train), jnp.asarray(data.y_train)
    zeros = [jnp.zeros((3, 3)), jnp.zeros((3, 2))]
    eig = np.asarray(sd.hessian.dense_eigvalsh(lambda q: nets.loss_fn(model, q, x, y), zeros))
    lam_neg = eig[eig < -1e-9]
    rho = 4.0 / np.min(np.abs(lam_neg))                               # beyond −1/λ for every negative λ
    lr = 0.5 / (eig[-1] + rho * eig[-1] ** 2)
    mon = nets.TrapMonitor(every=100, k=2, m=15, grad_tol=1e-3, trace_samples=8, sharpness_steps=5)  # m = n: exact
    # one program for both: USAM at ρ = 0 is GD's map exactly (test_rho_zero_is_the_base_optimizer)
    both = nets.train(model, data, opt_mod.usam(), opt_mod.hparams(lr=lr, rho=[rho, 0.0]), 300, 64, seeds=[0, 1],
                      eval_every=100, monitor=mon, dtype="float64", hessian_samples=None)
    usam, gd = (dataclasses.replace(both, params=jax.tree.map(lambda a: a[i], both.params),
                                    monitor={k: v[i] for k, v in both.monitor.items()}, captured=both.captured[i])
                for i in (0, 1))
    assert usam.monitor_times.tolist() == [100, 200, 300] and usam.monitor["lambda_min"].shape == (2, 3, 2)
    assert usam.captured.all() and usam.monitor["captured"].all()
    np.testing.assert_allclose(usam.monitor["radius"], rho, rtol=1e-12)
    assert not gd.captured.any() and not gd.monitor["captured"].any()
    np.testing.assert_array_equal(gd.monitor["ratio"], 0.0)
    # the records are the dense Hessian's ends and the full gradient norm, at the recorded parameters
    for i, res in enumerate((usam, gd)):
        p = jax.tree.map(lambda a: jnp.asarray(a[1]), res.params)
        dense = sd.hessian.dense_eigvalsh(lambda q: nets.loss_fn(model, q, x, y), p)
        np.testing.assert_allclose(res.monitor["lambda_min"][1, -1], dense[:2], atol=1e-9)
        np.testing.assert_allclose(res.monitor["lambda_max"][1, -1], dense[-1], atol=1e-9)
        gn = opt_mod.tree_norm(jax.grad(lambda q: nets.loss_fn(model, q, x, y))(p))
        np.testing.assert_allclose(res.monitor["grad_norm"][1, -1], gn, rtol=1e-10, atol=1e-14)
        key = nets.run_keys(0, 1)[2]
        np.testing.assert_allclose(res.monitor["hessian_trace"][1, -1], opt_mod.hessian_trace(
            lambda q: nets.loss_fn(model, q, x, y), p, samples=8, key=key), rtol=1e-10)
        np.testing.assert_allclose(res.monitor["sharpness"][1, -1], opt_mod.worst_case_sharpness(
            lambda q: nets.loss_fn(model, q, x, y), p, both.hp.rho[i], steps=5, key=key), rtol=1e-8, atol=1e-15)


# ---------------------------------------------------------------- bad input


@pytest.mark.parametrize("build, error, match", [
    (lambda: opt_mod.gd(nesterov="no"), TypeError, "gd: nesterov must be True or False"),
    (lambda: opt_mod.sam(nesterov=1), TypeError, "nesterov must be True or False"),
    (lambda: opt_mod.sam(ascent_steps=0), ValueError, "ascent_steps must be an integer >= 1"),
    (lambda: opt_mod.sam(norm="per-layer"), ValueError, "norm must be one of 'global', 'layer'"),
    (lambda: opt_mod.sam(accumulate="yes"), TypeError, "accumulate must be True or False"),
    (lambda: opt_mod.usam(decay="l2"), ValueError, "decay must be one of 'loss', 'descent', 'decoupled'"),
    (lambda: opt_mod.sam(rho_schedule=0.5), TypeError, "rho_schedule must be None or a samdyn.optim.schedules"),
    (lambda: opt_mod.sam(base="adam"), TypeError, "base must be None or an optax GradientTransformation"),
    (lambda: opt_mod.sam(base=optax.scale_by_adam(), nesterov=True), ValueError, "nesterov must be False when base"),
    (lambda: opt_mod.asam(leaves=3), ValueError, "leaves must be 'all', 'weights' or a function"),
    (lambda: opt_mod.asam(eps=0.0), ValueError, "asam: eps must be > 0"),
    (lambda: opt_mod.msam(0), ValueError, "msam: m must be an integer >= 1"),
    (lambda: opt_mod.xsam(alphas=1), ValueError, "alphas must be an integer >= 2"),
    (lambda: opt_mod.xsam(search_every=0), ValueError, "search_every must be an integer >= 1"),
    (lambda: opt_mod.xsam(alpha_max=-1.0), ValueError, "alpha_max must be a finite real number > 0"),
    (lambda: schedules.linear(0), ValueError, "schedules.linear: steps must be an integer >= 1"),
    (lambda: schedules.cosine(10, warmup=10), ValueError, "warmup must be an integer >= 0 and <= 9"),
    (lambda: schedules.tied(0.1), TypeError, "lr_schedule must be a samdyn.optim.schedules schedule"),
    (lambda: opt_mod.from_optax("adam"), TypeError, "from_optax: base must be an optax GradientTransformation"),
    (lambda: opt_mod.from_optax(optax.scale_by_adam(), "lion"), ValueError, "ascent must be one of"),
    (lambda: opt_mod.as_optax(opt_mod.sam(), opt_mod.hparams(lr=[0.1, 0.2])), ValueError, r"hp.lr must be a scalar"),
    (lambda: opt_mod.as_optax("sam", {"lr": 0.1}), TypeError, "as_optax: opt must be a samdyn.optim optimizer"),
    (lambda: opt_mod.hparams(lr=0.1, weight_decay=-1.0), ValueError, "weight_decay must be >= 0"),
    (lambda: opt_mod.hparams(lr=0.1, asam_eta=float("nan")), ValueError, "asam_eta must be finite"),
    (lambda: nets.TrapMonitor(every=0), ValueError, "TrapMonitor: every must be an integer >= 1"),
])
def test_bad_options_fail_clearly(build, error, match):
    with pytest.raises(error, match=match):
        build()


def test_oracle_mismatches_fail_clearly():
    w = jnp.ones(2)
    opt = opt_mod.msam(2)
    with pytest.raises(TypeError, match="msam: grad_fn must be a samdyn.optim.MicroBatchOracle"):
        opt.step(lambda p: p, w, opt.init(w), opt_mod.hparams(lr=0.1, rho=0.1))
    data = nets.datasets.teacher_student(n_train=12, n_test=4, in_dim=3, out_dim=2, cache=False)
    with pytest.raises(ValueError, match="batch_size=5 must be a multiple of msam2's micro-batch size 2"):
        nets.train(nets.mlp(3, (4,), 2, task="regression"), data, opt, opt_mod.hparams(lr=0.1), 3, 5)
