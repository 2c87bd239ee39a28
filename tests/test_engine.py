"""The engine under simulate: a particle's bits belong to the particle (not to its chunk, device,
batch or grid), long runs stop on Ctrl-C with what they reached, and runaway input is refused."""

import os
import signal
import subprocess
import sys
import textwrap
import time

import jax
import numpy as np
import pytest

import samdyn as sd
from samdyn import engine

ROSEN = sd.landscapes.get("rosenbrock")
SAM = sd.optim.sam()
X0 = np.random.default_rng(0).uniform(-1.0, 1.0, size=(800, 2))
NOISES = {
    "gaussian-threefry": sd.noise.gaussian(std=0.3),
    "gaussian-fast": sd.noise.gaussian(std=0.3, sampler="fast"),
    "minibatch-fast": sd.noise.minibatch(3, sd.noise.centered_shifts(10, 2), sampler="fast"),
    "hessian": sd.noise.hessian(4),
}


def noisy(x0=X0, rho=0.05, **kwargs):
    args = dict(noise=NOISES["gaussian-threefry"], key=5, progress=False)
    args.update(kwargs)
    hp = sd.optim.hparams(lr=1e-4, rho=rho, momentum=0.5)
    return sd.simulate(ROSEN, SAM, hp, x0, 60, **args)


@pytest.mark.parametrize("noise_name", list(NOISES))
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_a_particles_bits_do_not_depend_on_the_chunk_size(noise_name, dtype):
    runs = [noisy(noise=NOISES[noise_name], dtype=dtype, chunk_size=c) for c in (1, 777, 4096)]
    assert [r.chunk_size for r in runs] == [1, 777, 800]  # 4096 is capped at the 800 particles
    assert np.all(np.isfinite(runs[0].final))
    for other in runs[1:]:
        np.testing.assert_array_equal(other.final, runs[0].final)


def test_a_subset_of_starts_reproduces_with_its_particle_ids():
    full = noisy(record="trajectory", every=20)
    pick = np.array([799, 3, 450, 4])
    part = noisy(x0=X0[pick], particle_ids=pick, record="trajectory", every=20)
    np.testing.assert_array_equal(part.trajectory, full.trajectory[pick])
    # without the ids the subset is numbered 0…3: other draws, so other paths
    assert not np.array_equal(noisy(x0=X0[pick]).final, full.final[pick])


def test_extending_the_grid_changes_no_settings_noise_and_settings_share_draws():
    base = noisy(x0=X0[:50], rho=[0.02, 0.05])
    more = noisy(x0=X0[:50], rho=[0.02, 0.03, 0.05])
    np.testing.assert_array_equal(more.final[[0, 2]], base.final)
    # common random numbers: two identical settings see identical noise, so identical paths …
    twin = noisy(x0=X0[:50], rho=[0.05, 0.05])
    np.testing.assert_array_equal(twin.final[0], twin.final[1])
    # … unless each setting asks for its own stream
    own = noisy(x0=X0[:50], rho=[0.05, 0.05], common_noise=False)
    assert not np.array_equal(own.final[0], own.final[1])


def test_stats_particles_follow_the_same_paths_whatever_the_chunk_size():
    spec = sd.particle_stats(radius=0.5)
    hp = sd.optim.hparams(lr=1e-2, rho=0.05)
    runs = [sd.simulate(sd.landscapes.get("saddle"), SAM, hp, [0.0, 0.0], 60, noise=NOISES["gaussian-fast"],
                        particles=300, stats=spec, every=10, chunk_size=c, progress=False) for c in (7, 128, 300)]
    for other in runs[1:]:
        np.testing.assert_array_equal(other.final, runs[0].final)
        np.testing.assert_array_equal(other.stats.exit_step, runs[0].stats.exit_step)
        np.testing.assert_array_equal(other.stats.count, runs[0].stats.count)


def test_chunk_size_is_capped_at_the_batch():
    run = sd.simulate(ROSEN, SAM, sd.optim.hparams(lr=1e-3), np.zeros((2, 2)), 5, chunk_size=10**9)
    assert run.chunk_size == 2


def test_a_run_longer_than_an_hour_is_refused_with_the_numbers():
    with pytest.raises(ValueError, match=r"would take about .* particle-steps/s measured.*confirm=True"):
        sd.simulate(ROSEN, SAM, sd.optim.hparams(lr=1e-3), [0.5, 0.5], 10**12, progress=False)


def test_progress_bar_shows_steps_and_rate(capsys):
    sd.simulate(ROSEN, SAM, sd.optim.hparams(lr=1e-4), X0[:10], 3000, progress=True)
    err = capsys.readouterr().err
    assert "simulate" in err and "3.00k/3.00k" in err and "particle-steps/s" in err


def test_short_run_shows_no_automatic_bar(capsys):
    sd.simulate(ROSEN, SAM, sd.optim.hparams(lr=1e-4), X0[:10], 3000)  # well under a second, compiled
    assert capsys.readouterr().err == ""


@pytest.mark.parametrize("progress, eta, elapsed, shown", [
    (None, 30.0, 0.5, False),   # a compile made the first estimate long: wait until the run has lasted 1 s
    (None, 30.0, 1.5, True),
    (None, 1.5, 10.0, False),   # almost done: no bar
    (True, 0.0, 0.0, True),
    (False, 1e6, 1e6, False),
])
def test_automatic_bar_waits_for_a_second_of_run_and_two_to_go(progress, eta, elapsed, shown):
    assert engine._wants_bar(progress, eta, elapsed) is shown


INTERRUPT_SCRIPT = textwrap.dedent(
    """
    import sys
    import samdyn as sd
    from samdyn import engine
    args = (sd.landscapes.get("rosenbrock"), sd.optim.sam(), sd.optim.hparams(lr=1e-4, rho=0.05), [[0.5, 0.5]] * 64)
    sd.simulate(*args, 100, progress=False)  # compile first: the signal should meet a running loop
    print("READY", flush=True)
    try:
        sd.simulate(*args, 10**12, confirm=True, progress=False)
    except engine.Interrupted as stop:
        run = stop.partial
        print("STOPPED", stop.steps_done, run.steps, run.final.shape, run.diverged.any(), flush=True)
        print(stop, flush=True)
        sys.exit(0)
    """
)


def test_ctrl_c_stops_a_long_run_within_seconds_and_keeps_what_it_reached():
    """A 10¹² step run gets SIGINT after 3 s and exits within 5 s, reporting how far it got."""
    proc = subprocess.Popen([sys.executable, "-c", INTERRUPT_SCRIPT], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, cwd=os.path.dirname(os.path.dirname(__file__)),
                            env={**os.environ, "PYTHONPATH": os.path.dirname(os.path.dirname(__file__))})
    try:
        assert proc.stdout.readline().strip() == "READY"  # imported; the run starts now
        time.sleep(3)
        proc.send_signal(signal.SIGINT)
        sent = time.monotonic()
        out, err = proc.communicate(timeout=5)
        assert time.monotonic() - sent < 5
    finally:
        proc.kill()
    assert proc.returncode == 0, err
    line = out.splitlines()[0].split()
    steps_done = int(line[1])
    assert line[0] == "STOPPED" and steps_done > 0 and int(line[2]) == steps_done
    assert "stopped by Ctrl-C after" in out and "of 1000000000000 steps" in out


def test_float64_with_x64_switched_off_is_refused():
    jax.config.update("jax_enable_x64", False)
    try:
        with pytest.raises(ValueError, match="dtype='float64' needs JAX's x64 mode"):
            sd.simulate(ROSEN, SAM, sd.optim.hparams(lr=1e-3, dtype=np.float32), [0.5, 0.5], 5)
    finally:
        jax.config.update("jax_enable_x64", True)


def test_numpy_loss_and_string_arguments_get_clear_errors():
    def numpy_loss(w):
        return np.sum(np.asarray(w) ** 2)

    with pytest.raises(TypeError, match="write it with jax.numpy"):
        sd.simulate(numpy_loss, SAM, sd.optim.hparams(lr=1e-3), [0.5, 0.5], 5)
    with pytest.raises(TypeError, match=r"simulate: noise must be None or a noise model.*got 'gaussian'"):
        sd.simulate(ROSEN, SAM, sd.optim.hparams(lr=1e-3), [0.5, 0.5], 5, noise="gaussian")
    with pytest.raises(TypeError, match=r"simulate: opt must be an Optimizer.*got 'sam'"):
        sd.simulate(ROSEN, "sam", sd.optim.hparams(lr=1e-3), [0.5, 0.5], 5)
    with pytest.raises(TypeError, match=r"simulate: common_noise must be True or False, got 'no'"):
        sd.simulate(ROSEN, SAM, sd.optim.hparams(lr=1e-3), [0.5, 0.5], 5, common_noise="no")
    with pytest.raises(ValueError, match=r"simulate: particle_ids must be integers"):
        sd.simulate(ROSEN, SAM, sd.optim.hparams(lr=1e-3), X0[:3], 5, particle_ids=[0, 1])


def test_reprs_are_summaries():
    run = sd.simulate(ROSEN, SAM, sd.optim.hparams(lr=1e-4), X0, 3, record="trajectory")
    text = repr(run)
    assert len(text) < 1500 and "array of shape (800, 3, 2)" in text


# ---- the specialised program (issue 11): the same bits as the general one --------------------


def engine_run(hp_leaves, specialise, noise=None, steps=300, problem=ROSEN):
    x = X0[:100]
    chunks = [sd.engine.Chunk(x[i:i + 50], sd.optim.HParams(*(leaf if np.ndim(leaf) == 0 else leaf[i:i + 50]
                                                              for leaf in hp_leaves)),
                              np.arange(i, i + 50), np.zeros(50), {}) for i in (0, 50)]
    prog = engine.Program(problem, SAM, noise, engine.EndState())
    out = engine.run(prog, chunks, steps=steps, every=1, seed=3, lanes=50, dtype="float64", specialise=specialise)
    return np.concatenate([c["final"] for c in out.chunks], axis=1), np.concatenate([c["momentum"] for c in out.chunks], axis=1)


@pytest.mark.parametrize("problem", [ROSEN, sd.landscapes.get("saddle")], ids=["rosenbrock", "saddle"])
@pytest.mark.parametrize("momentum", [0.0, 0.7])
@pytest.mark.parametrize("noise", [None, NOISES["gaussian-fast"], NOISES["gaussian-threefry"]])
def test_specialised_program_gives_the_general_programs_bits(problem, momentum, noise):
    """No momentum buffer at γ = 0: same arithmetic, same bits (the end state and the final momentum
    buffer, which at γ = 0 is the last step's direction), and a hyperparameter given as one number
    gives the bits of the same value given per particle."""
    scalars = (1e-4, 0.05, momentum)
    per_lane = tuple(np.full(100, v) for v in scalars)
    general = engine_run(per_lane, specialise=False, noise=noise, problem=problem)
    for leaves in (scalars, per_lane):
        special = engine_run(leaves, specialise=True, noise=noise, problem=problem)
        np.testing.assert_array_equal(special[0], general[0])
        np.testing.assert_array_equal(special[1], general[1])


def test_zero_momentum_switch_is_the_only_recompile():
    events = []

    def listener(name, duration, **kwargs):
        if name in ("/jax/core/compile/backend_compile_duration", "/jax/core/compile/jaxpr_trace_duration"):
            events.append(name)

    def go(momentum, rho):
        return sd.simulate(ROSEN, SAM, sd.optim.hparams(lr=1e-4, rho=rho, momentum=momentum), X0[:8], 7)

    go(0.0, 0.1), go(0.5, 0.1)  # both programs compiled
    jax.monitoring.register_event_duration_secs_listener(listener)
    try:
        go(0.0, 0.3), go(0.9, 0.2), go(0.0, 0.05)
    finally:
        jax.monitoring.unregister_event_duration_listener(listener)
    assert events == []
