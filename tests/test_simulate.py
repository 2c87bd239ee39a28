"""simulate: batching, chunking, recording, divergence flags, compile reuse, input checks."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import samdyn as sd

BEALE = sd.landscapes.get("beale")
SAM = sd.optim.sam()
X0S = np.array([[1.0, 2.0], [0.5, 0.5], [-1.0, 1.5], [2.0, -0.5]])


def test_batch_shape_and_each_entry_equals_a_single_run():
    hp = sd.optim.hparams(lr=[[1e-3], [2e-3]], rho=[0.0, 0.1, 0.3], momentum=0.5)
    run = sd.simulate(BEALE, SAM, hp, X0S, 50)
    assert run.batch_shape == (2, 3, 4) and run.final.shape == (2, 3, 4, 2) and run.diverged.shape == (2, 3, 4)
    single = sd.simulate(BEALE, SAM, sd.optim.hparams(lr=2e-3, rho=0.1, momentum=0.5), X0S[3], 50)
    np.testing.assert_array_equal(run.final[1, 1, 3], single.final)
    np.testing.assert_array_equal(run.hp.rho[1, 2], 0.3)


def test_same_chunk_size_gives_the_same_bits_whatever_the_batch():
    """A particle's result depends on (seed, chunk size), not on how many particles share the call."""
    hp = sd.optim.hparams(lr=1e-3, rho=0.2)
    more = np.concatenate([X0S, X0S[::-1] + 0.3])
    few = sd.simulate(BEALE, SAM, hp, X0S, 40, record="trajectory", observe=("loss",), chunk_size=3)
    many = sd.simulate(BEALE, SAM, hp, more, 40, record="trajectory", observe=("loss",), chunk_size=3)
    assert few.chunk_size == 3
    np.testing.assert_array_equal(many.trajectory[:4], few.trajectory)
    np.testing.assert_array_equal(many.observables["loss"][:4], few.observables["loss"])
    # Another chunk size is another compiled program, padded to the same vector blocks: the same bits.
    whole = sd.simulate(BEALE, SAM, hp, X0S, 40, record="trajectory", observe=("loss",))
    np.testing.assert_array_equal(whole.trajectory, few.trajectory)


def test_every_subsamples_and_observables_are_what_they_say():
    hp = sd.optim.hparams(lr=1e-3, rho=0.2)
    full = sd.simulate(BEALE, SAM, hp, X0S, 23, record="trajectory", observe=("loss", "grad_norm", "cosine", "distance"), reference=[3.0, 0.5])
    sub = sd.simulate(BEALE, SAM, hp, X0S, 23, record="trajectory", every=5, observe=("loss",))
    np.testing.assert_array_equal(sub.times, [5, 10, 15, 20])
    np.testing.assert_array_equal(sub.trajectory, full.trajectory[:, 4::5][:, :4])
    np.testing.assert_array_equal(sub.final, full.final)
    traj = full.trajectory  # (4, 23, 2): w_1 .. w_23
    np.testing.assert_allclose(full.observables["loss"], BEALE.loss(np.moveaxis(traj, -1, 0)), rtol=1e-13)
    np.testing.assert_allclose(full.observables["distance"], np.linalg.norm(traj - [3.0, 0.5], axis=-1), rtol=1e-13)
    previous = np.concatenate([X0S[:, None], traj[:, :-1]], axis=1)  # w_0 .. w_22
    np.testing.assert_allclose(full.observables["grad_norm"], np.linalg.norm(BEALE.grad(np.moveaxis(previous, -1, 0)), axis=0), rtol=1e-13)
    assert np.all(np.abs(full.observables["cosine"]) <= 1 + 1e-12)


def test_custom_observable_and_plain_loss_function():
    def loss(w):
        return 0.5 * jnp.sum(w**2)

    run = sd.simulate(loss, sd.optim.gd(), sd.optim.hparams(lr=0.25), [[1.0, -2.0]], 4, observe={"x": lambda w, info: w[0]})
    np.testing.assert_allclose(run.final, [[0.75**4, -2 * 0.75**4]], rtol=1e-15)
    np.testing.assert_allclose(run.observables["x"], [[0.75, 0.75**2, 0.75**3, 0.75**4]], rtol=1e-15)


@pytest.mark.parametrize("dtype, overflow_step", [("float64", 1024), ("float32", 128)])
def test_divergence_is_flagged_not_fatal(dtype, overflow_step):
    """GD on f = x²/2 with lr 3 doubles |x| each step: 2^t overflows exactly at the float's max exponent."""
    quad = sd.landscapes.get("quadratic", eigenvalues=(1,))
    run = sd.simulate(quad, sd.optim.gd(), sd.optim.hparams(lr=[0.5, 3.0]), [1.0], 1500, dtype=dtype,
                      divergence_bound=float("inf"))
    np.testing.assert_array_equal(run.diverged, [False, True])
    np.testing.assert_array_equal(run.diverged_at, [-1, overflow_step])
    assert run.final[0, 0] == 0.5**1500 and run.final.dtype == np.dtype(dtype)


@pytest.mark.parametrize("bound, first_step", [(1e12, 40), (1e82, 273), (2.0**40, 41)])
def test_blow_up_bound_flags_finite_runaways(bound, first_step):
    """|x_t| = 2^t exactly (GD, lr 3 on x²/2): flagged at the first t with 2^t > bound, while finite."""
    quad = sd.landscapes.get("quadratic", eigenvalues=(1,))
    run = sd.simulate(quad, sd.optim.gd(), sd.optim.hparams(lr=3.0), [1.0], 300, divergence_bound=bound)
    assert run.diverged_at == first_step == int(np.floor(np.log2(bound))) + 1
    assert abs(run.final[0]) == 2.0**300  # finite, and still running after the flag


def test_float32_run_is_float32_and_close_to_float64():
    hp = sd.optim.hparams(lr=1e-3, rho=0.1)
    r32 = sd.simulate(BEALE, SAM, hp, X0S, 200, dtype="float32")
    r64 = sd.simulate(BEALE, SAM, hp, X0S, 200)
    assert r32.final.dtype == np.float32 and r32.dtype == "float32" and r64.final.dtype == np.float64
    np.testing.assert_allclose(r32.final, r64.final, rtol=1e-4, atol=1e-5)


def test_new_hyperparameter_values_compile_nothing():
    events = []

    def listener(name, duration, **kwargs):
        if name in ("/jax/core/compile/backend_compile_duration", "/jax/core/compile/jaxpr_trace_duration"):
            events.append(name)

    hp1 = sd.optim.hparams(lr=[1e-3, 2e-3], rho=[0.1, 0.2], momentum=0.0)
    hp2 = sd.optim.hparams(lr=[5e-4, 1e-4], rho=[0.7, 0.9], momentum=0.0)  # γ 0 -> non-0 is another program (test_engine)
    first = sd.simulate(BEALE, sd.optim.sam(), hp1, X0S, 30, observe=("loss",))
    jax.monitoring.register_event_duration_secs_listener(listener)
    try:
        second = sd.simulate(BEALE, sd.optim.sam(), hp2, X0S + 0.1, 30, observe=("loss",))
    finally:
        jax.monitoring.unregister_event_duration_listener(listener)
    assert events == []
    assert not np.array_equal(first.final, second.final)


@pytest.mark.parametrize(
    "kwargs, error, message",
    [
        ({"x0": [1.0, 2.0, 3.0]}, ValueError, "x0 has 3 coordinates"),
        ({"x0": [np.nan, 1.0]}, ValueError, "x0 must be finite"),
        ({"steps": 0}, ValueError, "steps must be an integer >= 1"),
        ({"steps": 10.5}, ValueError, "steps must be an integer"),
        ({"record": "everything"}, ValueError, "record must be"),
        ({"every": 20}, ValueError, "every=20 exceeds steps=10"),
        ({"observe": ("energy",)}, ValueError, "unknown observable 'energy'"),
        ({"observe": ("distance",)}, ValueError, "needs reference"),
        ({"dtype": "float16"}, ValueError, "dtype must be"),
        ({"chunk_size": 0}, ValueError, "chunk_size must be"),
        ({"hp": {"lr": -1.0}}, ValueError, "lr must be > 0"),
        ({"hp": sd.optim.HParams(lr=0.1, rho=-0.5)}, ValueError, "rho must be >= 0"),  # built by hand
        ({"opt": "sam"}, TypeError, "opt must be an Optimizer"),
        ({"problem": 42}, TypeError, "problem must be"),
    ],
)
def test_bad_input_fails_before_compute(kwargs, error, message):
    args = {"problem": BEALE, "opt": SAM, "hp": sd.optim.hparams(lr=1e-3), "x0": [1.0, 2.0], "steps": 10}
    args.update(kwargs)
    with pytest.raises(error, match=message):
        sd.simulate(args.pop("problem"), args.pop("opt"), args.pop("hp"), args.pop("x0"), args.pop("steps"), **args)


def test_oversized_recording_is_refused():
    with pytest.raises(ValueError, match="raise every="):
        sd.simulate(BEALE, SAM, sd.optim.hparams(lr=1e-3), np.zeros((100_000, 2)), 10_000, record="trajectory")
