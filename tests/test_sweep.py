"""samdyn.sweep: a sweep equals the direct calls it stands for, bit for bit, however it is chunked,
interrupted (SIGKILL) or spread over Dask workers; bad specs fail before any compute, naming the key."""

import copy
import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import xarray as xr

import samdyn as sd
from samdyn import nets, sweep
from samdyn.sweep import cli as sweep_cli, spec as spec_mod

ROOT = Path(__file__).resolve().parents[1]


def landscape_spec(**sections):
    """A small deterministic Beale sweep; ``sections`` replace or extend its tables."""
    base = {
        "problem": {"landscape": "beale"},
        "optimizer": {"name": ["gd", "sam"]},
        "grid": {"lr": [1e-3, 0.5], "rho": [0.0, 0.25, 0.5], "momentum": [0.0, 0.9]},
        "run": {"x0": [[1.0, 2.0], [0.5, 1.5], [-0.5, 0.8]], "steps": 300, "every": 100,
                "observables": ["loss", "cosine", "trajectory"]},
    }
    for name, table in sections.items():
        base[name] = {**base.get(name, {}), **table}
    return base


def stats_spec(**sections):
    base = {
        "problem": {"landscape": "saddle"},
        "optimizer": {"name": "sam"},
        "noise": {"kind": "hessian"},
        "grid": {"lr": 0.01, "rho": [0.0, 0.2], "momentum": [0.0, 0.9], "batch_size": [4.0, 32.0], "seed": [0, 3]},
        "run": {"x0": [0.0, 0.0], "particles": 40, "chunk_size": 16, "steps": 120, "every": 30,
                "observables": ["msd", "escaped", "exit_step", "mean", "cov", "width", "count"], "radius": 0.3},
    }
    for name, table in sections.items():
        base[name] = {**base.get(name, {}), **table}
    return base


def identical(a: xr.Dataset, b: xr.Dataset, *, nan_bits: bool = True):
    """Same dims, coords, attrs and values, and every array byte-for-byte equal.

    ``nan_bits=False`` compares NaNs by position only: the sign of a NaN made by a diverging run
    (inf − inf) depends on the vector lane count XLA compiled for, and IEEE gives it no meaning.
    """
    a, b = a.load(), b.load()
    xr.testing.assert_identical(a, b)
    for name in list(a.data_vars) + list(a.coords):
        x, y = np.asarray(a[name].values), np.asarray(b[name].values)
        if x.dtype.kind in "fiub":
            if not nan_bits and x.dtype.kind == "f":
                assert np.array_equal(np.isnan(x), np.isnan(y)), name
                x, y = np.where(np.isnan(x), np.nan, x), np.where(np.isnan(y), np.nan, y)
            assert x.dtype == y.dtype and x.tobytes() == y.tobytes(), name


def chunked(spec_dict, chunk):
    out = copy.deepcopy(spec_dict)
    out["run"]["chunk"] = chunk
    return out


def all_chunks(spec):
    p = sweep.make_plan(spec)
    return xr.combine_by_coords([sweep.run_chunk(spec, c) for c in range(p.n_chunks)]) if p.n_chunks > 1 \
        else sweep.run_chunk(spec, 0)


# ---- the unit of work equals the direct calls ----------------------------------------------------


def test_deterministic_sweep_equals_direct_simulate_for_any_chunking(tmp_path):
    spec_dict = landscape_spec()
    whole = sweep.load_spec(spec_dict)
    assert sweep.make_plan(whole).n_chunks == 2  # optimizer is static: one chunk per optimizer
    sweep.run(whole, tmp_path / "whole", progress=False)
    ref = sweep.open(tmp_path / "whole").load()
    assert dict(ref.sizes) == {"optimizer": 2, "lr": 2, "rho": 3, "momentum": 2, "start": 3, "step": 3, "coord": 2}
    for chunk in (1, 4, 7):
        spec = sweep.load_spec(chunked(spec_dict, chunk))
        sweep.run(spec, tmp_path / f"c{chunk}", progress=False)
        got = sweep.open(tmp_path / f"c{chunk}").load()
        assert got.attrs["n_chunks"] > 2
        identical(got.drop_attrs(), ref.drop_attrs(), nan_bits=False)
    # sampled points against simulate itself (same lane count: 16, see samdyn.sweep.plan)
    f = sd.landscapes.get("beale")
    rng = np.random.default_rng(0)
    for _ in range(4):
        o, i, j, k = rng.integers(2), rng.integers(2), rng.integers(3), rng.integers(2)
        sel = ref.isel(optimizer=o, lr=i, rho=j, momentum=k)
        opt = sd.optim.sam() if ref.optimizer.values[o] == "sam" else sd.optim.gd()
        hp = sd.optim.hparams(lr=float(sel.lr), rho=float(sel.rho), momentum=float(sel.momentum))
        run = sd.simulate(f, opt, hp, np.asarray(spec_dict["run"]["x0"]), 300, record="trajectory", every=100,
                          observe=("loss", "cosine"), chunk_size=16)
        np.testing.assert_array_equal(sel.final.values, run.final)
        np.testing.assert_array_equal(sel.trajectory.values, run.trajectory)
        np.testing.assert_array_equal(sel.loss.values, run.observables["loss"])
        np.testing.assert_array_equal(sel.diverged_at.values, run.diverged_at)
    # lr = 0.5 blows up on Beale: flagged per run, and the sweep went on
    assert ref.diverged.sel(lr=0.5).any() and not ref.diverged.sel(lr=1e-3).any()
    assert ((ref.diverged_at > 0) == ref.diverged).all() and (ref.diverged_at.where(~ref.diverged) == -1).any()


def test_stats_sweep_equals_direct_simulate_for_any_chunking(tmp_path):
    spec_dict = stats_spec()
    ref = all_chunks(sweep.load_spec(spec_dict))
    for chunk in (1, 3):
        got = all_chunks(sweep.load_spec(chunked(spec_dict, chunk)))
        identical(got, ref)
    f = sd.landscapes.get("saddle")
    lam, V = np.linalg.eigh(np.asarray(f.hessian(np.zeros(2))))
    for b, s, r, g in ((4.0, 0, 0.2, 0.9), (32.0, 3, 0.0, 0.0)):
        run = sd.simulate(f, sd.optim.sam(), sd.optim.hparams(lr=0.01, rho=r, momentum=g), [0.0, 0.0], 120,
                          noise=sd.noise.hessian(b), key=s, particles=40, chunk_size=16, every=30,
                          stats=sd.particle_stats(radius=0.3))
        sel = ref.sel(batch_size=b, seed=s, rho=r, momentum=g)
        st = run.stats
        np.testing.assert_array_equal(sel.msd.values, st.msd)
        np.testing.assert_array_equal(sel.escaped.values, st.fraction_exited)
        np.testing.assert_array_equal(sel.exit_step.values, st.exit_step)
        np.testing.assert_array_equal(sel["mean"].values, st.mean)
        np.testing.assert_array_equal(sel["cov"].values, st.cov)
        np.testing.assert_array_equal(sel.width.values, st.width(V))
        np.testing.assert_array_equal(sel["count"].values, st.count)
        assert int(sel.n_diverged) == int(run.diverged.sum())
    np.testing.assert_array_equal(ref.eigenvalue.values, lam)
    # the seed axis is simulate's key: different seeds, different draws
    assert not np.array_equal(ref.msd.sel(seed=0).values, ref.msd.sel(seed=3).values)


def test_noisy_trajectory_sweep_equals_for_any_chunking():
    spec_dict = landscape_spec(noise={"kind": "gaussian", "std": 0.5}, optimizer={"name": "sam"},
                               grid={"lr": 1e-3, "rho": [0.0, 0.25, 0.5], "momentum": 0.9, "seed": [0, 1]})
    ref = all_chunks(sweep.load_spec(spec_dict))
    one_start = sweep.load_spec(chunked(spec_dict, 1))
    assert sweep.make_plan(one_start).block == (1, 1, 1)  # chunks cut the starts too
    identical(all_chunks(one_start), ref)
    f = sd.landscapes.get("beale")
    x0 = np.asarray(spec_dict["run"]["x0"])
    # rho as a 1-element grid, as in the sweep: with noise, simulate's program for all-scalar
    # hyperparameters differs from the general one in the last bits (measured: 1.8e-15)
    hp = sd.optim.hparams(lr=1e-3, rho=[0.25], momentum=0.9)
    run = sd.simulate(f, sd.optim.sam(), hp, x0, 300, noise=sd.noise.gaussian(std=0.5), key=1, record="trajectory",
                      every=100, chunk_size=16)
    np.testing.assert_array_equal(ref.trajectory.sel(rho=0.25, seed=1).values, run.trajectory[0])
    # the last start alone, with its id, draws what it drew among all three
    last = sd.simulate(f, sd.optim.sam(), hp, x0[2:], 300, noise=sd.noise.gaussian(std=0.5), key=1,
                       record="trajectory", every=100, chunk_size=16, particle_ids=[2])
    np.testing.assert_array_equal(last.trajectory[0], run.trajectory[0, 2:])
    assert not np.array_equal(ref.trajectory.sel(seed=0).values, ref.trajectory.sel(seed=1).values)


def tiny_nets_spec(**run):
    return {
        "problem": {"model": "mlp", "model_args": {"widths": [6]}, "dataset": "teacher_student",
                    "dataset_args": {"n_train": 64, "n_test": 32, "in_dim": 3}},
        "optimizer": {"name": "sam"},
        "grid": {"lr": 0.05, "rho": [0.0, 0.05, 0.1], "momentum": [0.0, 0.9], "batch_size": [8, 16], "seed": [0, 1]},
        "run": {"steps": 24, "every": 8, "dtype": "float64", "observables": ["train_loss", "test_loss", "distance"],
                **run},
    }


def test_nets_sweep_equals_direct_train():
    spec = sweep.load_spec(tiny_nets_spec(chunk=8))
    p = sweep.make_plan(spec)
    assert p.dims == ("batch_size", "rho", "momentum", "seed") and p.block == (1, 2, 2, 2) and p.n_chunks == 4
    got = all_chunks(spec)
    data = nets.datasets.teacher_student(n_train=64, n_test=32, in_dim=3)
    model = nets.mlp(3, (6,), 1, task="regression")
    # the last rho block holds one rho: the sweep pads the call to the chunk's 8 runs (4 settings x 2 seeds)
    for b in (8, 16):
        res = nets.train(model, data, sd.optim.sam(), sd.optim.hparams(lr=0.05, rho=[0.1, 0.1, 0.1, 0.1],
                         momentum=[0.0, 0.9, 0.9, 0.9]), 24, b, seeds=[0, 1], eval_every=8, dtype="float64")
        sel = got.sel(batch_size=b, rho=0.1)
        for name in ("train_loss", "test_loss", "distance"):
            np.testing.assert_array_equal(sel[name].values, res.records[name][:2])
        np.testing.assert_array_equal(sel.step.values, res.times)
    # one call for everything: XLA's batched matmuls round differently for another run count, so the
    # whole-grid result agrees to float64 rounding (measured ~1e-16 relative), not bit for bit
    whole_dict = tiny_nets_spec()
    whole_dict["grid"]["batch_size"] = 16
    whole = all_chunks(sweep.load_spec(whole_dict))
    for name in ("train_loss", "test_loss", "distance"):
        np.testing.assert_allclose(whole[name].values, got[name].sel(batch_size=16).values, rtol=1e-12, atol=0)


# ---- the store: resume, refusal, provenance ------------------------------------------------------

KILL_TOML = """
name = "kill test"
[problem]
landscape = "saddle"
[optimizer]
name = "sam"
[noise]
kind = "gaussian"
std = 0.3
[grid]
lr = 0.01
rho = [0.0, 0.01, 0.02, 0.03, 0.04, 0.05, 0.06, 0.07, 0.08, 0.09, 0.1, 0.11,
       0.12, 0.13, 0.14, 0.15, 0.16, 0.17, 0.18, 0.19, 0.2, 0.21, 0.22, 0.23]
[run]
x0 = [0.0, 0.0]
particles = 1024
steps = 300
every = 50
chunk = 1
observables = ["msd", "escaped", "exit_step"]
"""


def cli_env():
    return {**os.environ, "PYTHONPATH": str(ROOT), "SAMDYN_CPU_DEVICES": "1", "MPLBACKEND": "Agg"}


def test_sigkill_mid_sweep_then_rerun_equals_uninterrupted(tmp_path, capsys):
    spec_path = tmp_path / "kill.toml"
    spec_path.write_text(KILL_TOML)
    store = tmp_path / "killed"
    cmd = [sys.executable, "-m", "samdyn", "sweep", str(spec_path), "--out", str(store), "--quiet"]
    proc = subprocess.Popen(cmd, env=cli_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 240
    while not list((store / "chunks").glob("*.json")) and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.005)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    finished = len(list((store / "chunks").glob("*.json")))
    assert 0 < finished < 24, finished
    assert not (store / "COMPLETE").exists()
    with pytest.raises(sweep.StoreError, match="unfinished"):
        sweep.open(store)
    partial = sweep.open(store, partial=True)
    assert int(partial.done.sum()) == finished and np.isnan(partial.msd.where(~partial.done)).all()

    # rerun (here, in-process: 2 JAX devices instead of the subprocess's 1; the bits do not care)
    assert sweep_cli_main(cmd[3:]) == 0
    assert f"{24 - finished} run now, {finished} already in the store" in capsys.readouterr().out
    sweep.run(spec_path, tmp_path / "clean", progress=False)  # uninterrupted
    identical(sweep.open(store), sweep.open(tmp_path / "clean"))


def test_unmarked_chunk_is_never_read_as_done_and_is_rewritten(tmp_path):
    spec = sweep.load_spec(chunked(stats_spec(), 2))
    sweep.run(spec, tmp_path / "s", progress=False)
    before = sweep.open(tmp_path / "s").load()
    # as if killed after writing chunk 3's data but before its marker
    (tmp_path / "s" / "chunks" / "3.json").unlink()
    (tmp_path / "s" / "COMPLETE").unlink()
    partial = sweep.open(tmp_path / "s", partial=True)
    region = sweep.make_plan(spec).slices(3)
    mask = np.ones(partial.done.shape, bool)
    mask[region] = False
    np.testing.assert_array_equal(partial.done.values, mask)
    assert np.isnan(partial.msd.values[region]).all() and not np.isnan(partial.msd.values[mask]).any()
    # chunks made by other code are not mixed with this code's (a finished store is read by anyone)
    meta_path = tmp_path / "s" / "spec.json"
    meta = json.loads(meta_path.read_text())
    meta_path.write_text(json.dumps({**meta, "made_by": {**meta["made_by"], "samdyn_version": "0.0.1"}}))
    with pytest.raises(sweep.StoreError, match="finishing it would mix their bits"):
        sweep.run(spec, tmp_path / "s", progress=False)
    meta_path.write_text(json.dumps(meta))
    summary = sweep.run(spec, tmp_path / "s", progress=False)
    assert summary.ran == 1 and (tmp_path / "s" / "COMPLETE").exists()
    identical(sweep.open(tmp_path / "s"), before)


def test_store_refuses_another_spec_and_records_provenance(tmp_path):
    spec = sweep.load_spec(landscape_spec(optimizer={"name": "gd"}, grid={"lr": [1e-3, 2e-3], "rho": 0.0,
                                                                         "momentum": 0.0}))
    sweep.run(spec, tmp_path / "s", progress=False)
    other = sweep.load_spec(landscape_spec(optimizer={"name": "gd"}, grid={"lr": [1e-3, 3e-3], "rho": 0.0,
                                                                          "momentum": 0.0}))
    with pytest.raises(sweep.StoreError, match="holds another spec"):
        sweep.run(other, tmp_path / "s", progress=False)
    # formatting is not a different spec: the same values in another order of keys run fine
    same = json.loads(json.dumps(landscape_spec(optimizer={"name": "gd"}, grid={"lr": [1e-3, 2e-3], "rho": 0.0,
                                                                                "momentum": 0.0})))
    same["run"] = dict(reversed(list(same["run"].items())))
    assert sweep.run(same, tmp_path / "s", progress=False).ran == 0
    ds = sweep.open(tmp_path / "s")
    import jax

    assert ds.attrs["spec_json"] == spec.text and ds.attrs["spec_hash"] == spec.hash
    assert ds.attrs["samdyn_version"] == sd.__version__ and ds.attrs["jax_version"] == jax.__version__
    assert re.fullmatch(r"[0-9a-f]{40}|unknown", ds.attrs["git_commit"])
    assert ds.attrs["jax_backend"] == jax.default_backend() and ds.attrs["dtype"] == "float64"
    assert ds.attrs["seed"] == 0 and ds.attrs["chunk"] == sweep.make_plan(spec).chunk
    assert ds.lr.attrs["long_name"] == "learning rate η" and ds.step.attrs["units"] == "steps"
    np.testing.assert_array_equal(ds.x0.values, np.asarray(landscape_spec()["run"]["x0"]))


# ---- Dask ----------------------------------------------------------------------------------------


DASK_SPEC = {
    "problem": {"landscape": "saddle"}, "optimizer": {"name": "sam"}, "noise": {"kind": "gaussian", "std": 0.3},
    "grid": {"lr": 0.01, "rho": [0.0, 0.05, 0.1, 0.2], "momentum": 0.9, "seed": [0, 1, 2, 3]},
    "run": {"x0": [0.0, 0.0], "particles": 256, "steps": 200, "every": 50, "chunk": 2,
            "observables": ["msd", "exit_step"], "radius": 0.5},
}  # 4 seeds x 2 rho blocks = 8 chunks, one compiled program


@pytest.fixture(scope="module")
def in_process_store(tmp_path_factory):
    pytest.importorskip("distributed")
    store = tmp_path_factory.mktemp("dask") / "local"
    sweep.run(DASK_SPEC, store, progress=False)
    return store


def test_dask_local_cluster_equals_in_process(tmp_path, capsys, in_process_store):
    spec_path = tmp_path / "d.toml"
    spec_path.write_text(_toml(DASK_SPEC))
    assert sweep_cli_main(["sweep", str(spec_path), "--out", str(tmp_path / "dask"), "--workers", "2", "--quiet"]) == 0
    assert "done: 8 chunks (8 run now" in capsys.readouterr().out
    hosts = {json.loads(p.read_text())["host"] for p in (tmp_path / "dask" / "chunks").glob("*.json")}
    assert len(hosts) == 1  # the client writes every chunk itself
    got, want = sweep.open(tmp_path / "dask"), sweep.open(in_process_store)
    assert got.attrs.pop("spec_toml") and not want.attrs.pop("spec_toml")  # from a file vs from a dict
    identical(got, want)


def test_dask_worker_killed_mid_sweep_is_survived(tmp_path, in_process_store):
    executor = sweep.Dask(workers=2)
    killed = {}

    def kill_a_worker(chunk_id):
        if not killed:
            addr, pid = sorted(executor.client.run(os.getpid).items())[0]
            os.kill(pid, signal.SIGKILL)
            killed.update(addr=addr, pid=pid, after=chunk_id)

    summary = sweep.run(DASK_SPEC, tmp_path / "dask", executor=executor, on_chunk=kill_a_worker, progress=False)
    assert killed and summary.ran == summary.chunks == 8
    identical(sweep.open(tmp_path / "dask"), sweep.open(in_process_store))


# ---- the command line -----------------------------------------------------------------------------


def sweep_cli_main(argv):
    from samdyn import cli

    return cli.main(argv)


def _toml(data: dict) -> str:
    """A minimal TOML writer for the test specs (tables of scalars and lists)."""
    def value(v):
        if isinstance(v, bool):
            return "true" if v else "false"
        if isinstance(v, str):
            return json.dumps(v)
        if isinstance(v, list):
            return "[" + ", ".join(value(x) for x in v) + "]"
        if isinstance(v, dict):
            return "{" + ", ".join(f"{k} = {value(x)}" for k, x in v.items()) + "}"
        return repr(v)

    lines = []
    for section, table in data.items():
        lines.append(f"[{section}]")
        lines.extend(f"{k} = {value(v)}" for k, v in table.items())
    return "\n".join(lines) + "\n"


def test_cli_runs_resumes_refuses_and_shows(tmp_path, capsys, monkeypatch):
    spec_path = tmp_path / "s.toml"
    spec_path.write_text(_toml(chunked(stats_spec(), 4)))
    store = tmp_path / "store"
    assert sweep_cli_main(["sweep", str(spec_path), "--dry-run"]) == 0
    out = capsys.readouterr().out
    assert "grid: batch_size 2 (static) × seed 2 (static) × rho 2 × momentum 2 = 16 settings" in out
    assert "chunks: 4 of up to 4 settings" in out and "memory:" in out and "time:" in out
    assert not Path("out/sweeps/s").exists() and not store.exists()

    assert sweep_cli_main(["sweep", str(spec_path), "--out", str(store), "--quiet"]) == 0
    out = capsys.readouterr().out
    diverged = int(sweep.open(store)["diverged"].sum())
    assert "done: 4 chunks (4 run now, 0 already in the store), 16 settings" in out
    assert f"diverged: {diverged} of 16 runs" in out and f"store: {store}" in out
    assert sweep_cli_main(["sweep", str(spec_path), "--out", str(store), "--quiet"]) == 0
    assert "(0 run now, 4 already in the store)" in capsys.readouterr().out

    assert sweep_cli_main(["sweep", str(spec_path), "--out", str(store), "--set", "run.steps=60", "--quiet"]) == 2
    assert "holds another spec" in capsys.readouterr().err
    assert sweep_cli_main(["sweep", str(spec_path), "--out", str(tmp_path / "x"), "--set", "grid.rho=[]"]) == 2
    assert "sweep spec: grid.rho must be a number or a non-empty list" in capsys.readouterr().err
    assert not (tmp_path / "x").exists()
    assert sweep_cli_main(["sweep", str(tmp_path / "missing.toml")]) == 2

    def broken(spec, chunk_id):
        raise RuntimeError("simulated failure")

    monkeypatch.setattr(sweep.executors, "run_chunk", broken)
    assert sweep_cli_main(["sweep", str(spec_path), "--out", str(tmp_path / "y"), "--quiet"]) == 1
    assert "failed: RuntimeError: simulated failure" in capsys.readouterr().err
    with pytest.raises(SystemExit) as err:
        sweep_cli_main(["sweep", str(spec_path), "--workers", "0"])
    assert err.value.code == 2

    assert sweep_cli_main(["show", str(store)]) == 0
    out = capsys.readouterr().out
    assert "4 of 4 chunks done (complete)" in out and "dimensions: batch_size 2, seed 2, rho 2, momentum 2" in out
    assert "spec_hash:" in out and f"diverged: {diverged} of 16 finished runs" in out
    assert sweep_cli_main(["show", str(tmp_path / "nothing")]) == 2


# ---- validation: before any compute, naming the key ---------------------------------------------


def _set(path, value):
    def edit(d):
        *head, last = path.split(".")
        table = d
        for part in head:
            table = table.setdefault(part, {})
        if value is DELETE:
            table.pop(last, None)
        else:
            table[last] = value
    return edit


DELETE = object()
BAD = [
    (landscape_spec, _set("grid.gamma", [0.1]), r"unknown key grid\.gamma in grid; expected one of: lr, rho"),
    (landscape_spec, _set("noise.stdd", 1.0), r"unknown key noise\.stdd"),
    (landscape_spec, _set("extra", {}), r"unknown key extra in the top level"),
    (landscape_spec, _set("run.observables", ["msd"]), r"unknown observable 'msd'.*particle statistics need run\.particles"),
    (stats_spec, _set("run.observables", ["loss"]), r"unknown observable 'loss' .* for a stats run"),
    (landscape_spec, _set("grid.rho", []), r"sweep spec: grid\.rho must be a number or a non-empty list"),
    (landscape_spec, _set("grid.rho", [0.1, 0.1]), r"grid\.rho must be a list of distinct values"),
    (landscape_spec, _set("grid.lr", [1e-3, -1.0]), r"grid\.lr\[1\] must be a finite real number > 0, got -1\.0"),
    (landscape_spec, _set("grid.momentum", 1.0), r"grid\.momentum must be a finite real number >= 0 and < 1"),
    (landscape_spec, _set("run.steps", 0), r"sweep spec: run\.steps must be an integer >= 1, got 0"),
    (landscape_spec, _set("run.every", 1000), r"run\.every must be <= run\.steps = 300"),
    (landscape_spec, _set("run.dtype", "float16"), r"run\.dtype must be one of 'float32', 'float64'"),
    (landscape_spec, _set("run.x0", [1.0, 2.0, 3.0]), r"run\.x0 must be a point with 2 coordinates"),
    (landscape_spec, _set("optimizer.name", "adam"), r"optimizer\.name must be one of 'gd', 'sam', 'usam'"),
    (landscape_spec, _set("run.particles", 100), r"run\.particles needs noise"),
    (landscape_spec, _set("grid.seed", [0, 1]), r"grid\.seed is an axis but the run has no noise"),
    (stats_spec, _set("grid.batch_size", DELETE), r"noise\.kind = 'hessian' needs grid\.batch_size"),
    (stats_spec, _set("noise", {"kind": "minibatch", "n": 8}), r"grid\.batch_size\[0\] must be an integer >= 1, got 4\.0"),
    (lambda: stats_spec(grid={"batch_size": [4, 16]}), _set("noise", {"kind": "minibatch", "n": 8}),
     r"grid\.batch_size must be <= noise\.n = 8"),
    (tiny_nets_spec, _set("grid.batch_size", [8, 100]), r"grid\.batch_size must be <= the training set size \(64"),
    (tiny_nets_spec, _set("run.particles", 4), r"run\.particles does not apply to a network"),
    (tiny_nets_spec, _set("run.observables", ["msd"]), r"unknown observable 'msd' .* known: train_loss"),
    (tiny_nets_spec, _set("problem.model_args", {"in_dim": 3}), r"unknown key problem\.model_args\.in_dim"),
    (landscape_spec, _set("problem.landscape", "nope"), r"problem\.landscape must be one of"),
    (landscape_spec, _set("problem.params", {"a": 1}), r"problem\.params: .*"),
    (landscape_spec, _set("problem.expr", "x**2"), r"problem\.landscape and problem\.expr exclude each other"),
    (landscape_spec, _set("run.observables", ["distance"]), r"'distance' needs run\.reference"),
    (stats_spec, _set("run.observables", ["crossed"]), r"need run\.level"),
    (landscape_spec, _set("run", DELETE), r"the \[run\] table is missing"),
    (stats_spec, _set("noise.psd", "sqrt"), r"noise\.psd must be one of 'abs', 'clip'"),
    (stats_spec, _set("noise.std", 1.0), r"noise\.std does not apply to noise\.kind = 'hessian'"),
]


@pytest.mark.parametrize("make, edit, message", BAD, ids=[m for _, _, m in BAD])
def test_bad_spec_fails_before_compute_naming_the_key(make, edit, message, monkeypatch):
    def no_compute(*args, **kwargs):
        raise AssertionError("computed before validating")

    monkeypatch.setattr(sweep.work, "simulate", no_compute)
    monkeypatch.setattr(sweep.work.nets, "train", no_compute)
    data = make()
    edit(data)
    with pytest.raises(sweep.SpecError, match=message):
        sweep.load_spec(data)


def test_bad_toml_and_the_readme_example_as_written(tmp_path):
    with pytest.raises(sweep.SpecError, match="not valid TOML"):
        sweep.loads_spec("[grid\nlr = 1")
    readme = (ROOT / "README.md").read_text()
    block = readme[readme.index("## Sweeps"):]
    example = re.search(r"```toml\n(.*?)```", block, re.S).group(1)
    (tmp_path / "example.toml").write_text(example)
    sweep.run(tmp_path / "example.toml", tmp_path / "store", progress=False)
    ds = sweep.open(tmp_path / "store")
    assert ds.msd.dims == ("seed", "rho", "momentum", "step") and ds.escaped.shape == (2, 4, 3, 100)
    run = sd.simulate(sd.landscapes.get("saddle"), sd.optim.sam(), sd.optim.hparams(lr=0.01, rho=0.1, momentum=0.9),
                      [0.0, 0.0], 500, noise=sd.noise.gaussian(std=0.1), key=1, particles=256, every=5,
                      stats=sd.particle_stats(radius=1.0), dtype="float32")
    np.testing.assert_array_equal(ds.msd.sel(seed=1, rho=0.1, momentum=0.9).values, run.stats.msd)
    np.testing.assert_array_equal(ds.escaped.sel(seed=1, rho=0.1, momentum=0.9).values, run.stats.fraction_exited)


# ---- reading results: plot helpers ----------------------------------------------------------------


def labelled():
    rng = np.random.default_rng(0)
    ds = xr.Dataset(
        {"msd": (("optimizer", "rho", "momentum", "seed", "step"), rng.random((2, 3, 2, 4, 5)),
                 {"long_name": "mean squared displacement", "units": "(parameter units)²"}),
         "diverged": (("optimizer", "rho", "momentum", "seed"), rng.random((2, 3, 2, 4)) > 0.5)},
        coords={"optimizer": ("optimizer", ["gd", "sam"]), "rho": ("rho", [0.0, 0.1, 0.2], {"long_name": "ρ"}),
                "momentum": ("momentum", [0.0, 0.9], {"long_name": "momentum γ"}),
                "step": ("step", np.arange(1, 6) * 10, {"long_name": "step", "units": "steps"})})
    return ds


def test_heatmap_reduces_the_other_axes_and_labels_everything():
    from samdyn import plotting

    ds = labelled()
    ax = plotting.heatmap(ds.isel(step=-1), var="msd", x="rho", y="momentum")
    want = ds.msd.isel(step=-1).mean(("optimizer", "seed")).transpose("momentum", "rho").values
    np.testing.assert_allclose(np.asarray(ax.collections[0].get_array()).reshape(want.shape), want, rtol=1e-15)
    assert ax.get_xlabel() == "ρ" and ax.get_ylabel() == "momentum γ"
    colorbar = ax.figure.axes[-1]
    assert colorbar.get_ylabel() == "mean squared displacement [(parameter units)²]"
    assert ax.get_title() == "mean over optimizer, seed"
    # quantiles, strings on an axis, booleans as fractions
    ax = plotting.heatmap(ds.diverged, x="optimizer", y="rho", reduce=0.5)
    want = ds.diverged.astype(float).quantile(0.5, dim=("momentum", "seed")).transpose("rho", "optimizer").values
    np.testing.assert_allclose(np.asarray(ax.collections[0].get_array()).reshape(want.shape), want)
    assert [t.get_text() for t in ax.get_xticklabels()] == ["gd", "sam"]
    with pytest.raises(ValueError, match="heatmap: x must be a dimension of msd"):
        plotting.heatmap(ds, var="msd", x="lr", y="rho")
    with pytest.raises(ValueError, match="heatmap: var must be the variable to plot, one of msd, diverged"):
        plotting.heatmap(ds, x="rho", y="momentum")
    with pytest.raises(ValueError, match="heatmap: reduce must be one of 'mean'"):
        plotting.heatmap(ds.msd, x="rho", y="momentum", reduce="mode")


def test_curves_draw_one_line_per_hue_with_a_quantile_band():
    from samdyn import plotting

    ds = labelled()
    ax = plotting.curves(ds.msd.sel(optimizer="sam"), x="step", hue="rho", reduce="median", band=(0.25, 0.75))
    med = ds.msd.sel(optimizer="sam").median(("momentum", "seed")).transpose("step", "rho")
    assert len(ax.lines) == 3 and len(ax.collections) == 3
    for i, line in enumerate(ax.lines):
        np.testing.assert_array_equal(line.get_xdata(), ds.step.values)
        np.testing.assert_allclose(line.get_ydata(), med.values[:, i])
    assert [t.get_text() for t in ax.get_legend().get_texts()] == ["ρ = 0", "ρ = 0.1", "ρ = 0.2"]
    assert ax.get_xlabel() == "step [steps]" and ax.get_ylabel().startswith("mean squared displacement [")
    with pytest.raises(ValueError, match="curves: band must be two quantiles"):
        plotting.curves(ds.msd, x="step", band=(0.9, 0.1))


def test_start_grids_critical_points_and_expressions():
    spec = sweep.load_spec({
        "problem": {"expr": "x**2 - y**2 + x*y/4", "symbols": ["x", "y"]},
        "optimizer": {"name": "usam"},
        "grid": {"lr": 0.05, "rho": [0.0, 0.1], "x0": {"grid": [3, 2], "domain": [[-1, 1], [0.5, 1.0]]}},
        "run": {"steps": 7, "observables": ["loss"], "every": 7},
    })
    ds = sweep.run_chunk(spec, 0)
    assert ds.final.dims == ("rho", "x0_x", "x0_y", "coord")
    np.testing.assert_array_equal(ds.x0_x.values, [-1.0, 0.0, 1.0])
    np.testing.assert_array_equal(ds.x0_y.values, [0.5, 1.0])
    f = sd.landscapes.from_expr("x**2 - y**2 + x*y/4", ["x", "y"])
    starts = np.stack(np.meshgrid([-1.0, 0.0, 1.0], [0.5, 1.0], indexing="ij"), -1)
    run = sd.simulate(f, sd.optim.usam(), sd.optim.hparams(lr=0.05, rho=[0.0, 0.1]), starts, 7, observe=("loss",),
                      every=7, chunk_size=16)
    np.testing.assert_array_equal(ds.final.values, run.final)
    np.testing.assert_array_equal(ds.loss.values, run.observables["loss"])
    at_saddle = sweep.load_spec({"problem": {"expr": "x**2 - y**2 + x*y/4", "symbols": ["x", "y"]},
                                 "optimizer": {"name": "gd"}, "grid": {"lr": 1e-3},
                                 "run": {"x0": {"critical_points": "saddle"}, "steps": 3}})
    ds = sweep.run_chunk(at_saddle, 0)
    assert ds.sizes["start"] == 1 and (ds.final == ds.x0).all() and (ds.x0 == 0).all()  # it does not move


def test_nets_sweep_carries_the_trap_monitor():
    """Issue 13: the monitor's records and flag land in the dataset, equal to nets.train's own, for the
    deep linear net at its saddle (origin): USAM beyond −1/λ is captured, GD (ρ = 0) is not."""
    data_args = {"n_train": 64, "n_test": 8, "in_dim": 3, "out_dim": 2, "teacher": "linear", "noise_std": 0.0,
                 "seed": 0}
    spec = sweep.load_spec({
        "problem": {"model": "deep_linear", "model_args": {"hidden": 3, "depth": 2, "init_scale": 1e-3},
                    "dataset": "teacher_student", "dataset_args": data_args},
        "optimizer": {"name": "usam"},
        "grid": {"lr": 0.02, "rho": [0.0, 4.0], "batch_size": 64, "seed": [0, 1]},
        "run": {"steps": 300, "every": 100, "dtype": "float64", "monitor": {"every": 100, "k": 2, "m": 15}},
    })
    got = all_chunks(spec)
    assert got["monitor_lambda_min"].dims == ("rho", "seed", "monitor_step", "k")
    assert got["monitor_step"].values.tolist() == [100, 200, 300] and got["captured"].dims == ("rho", "seed")
    data = nets.datasets.teacher_student(**data_args)
    model = nets.deep_linear(3, 3, 2, depth=2, init_scale=1e-3)
    res = nets.train(model, data, sd.optim.usam(), sd.optim.hparams(lr=0.02, rho=[0.0, 4.0]), 300, 64, seeds=[0, 1],
                     eval_every=100, dtype="float64", monitor=nets.TrapMonitor(every=100, k=2, m=15))
    for name in nets.TrapMonitor(every=100).records:
        np.testing.assert_array_equal(got[f"monitor_{name}"].values, res.monitor[name])
    np.testing.assert_array_equal(got["captured"].values, res.captured)
    assert got["captured"].sel(rho=4.0).all() and not got["captured"].sel(rho=0.0).any()


def test_monitor_spec_errors_name_the_key():
    base = tiny_nets_spec()
    for monitor, pattern in [({"k": 1}, r"run.monitor needs every"), ({"every": 12}, r"run.monitor.every must be"),
                             ({"every": 8, "kk": 1}, r"unknown key run.monitor.kk"),
                             ({"every": 8, "k": 0}, r"run.monitor: TrapMonitor: k must be")]:
        bad = {**base, "run": {**base["run"], "monitor": monitor}}
        with pytest.raises(sweep.SpecError, match=pattern):
            sweep.load_spec(bad)
    landscape = {"problem": {"landscape": "saddle"}, "optimizer": {"name": "gd"}, "grid": {"lr": 0.1},
                 "run": {"x0": [1.0, 0.5], "steps": 10, "monitor": {"every": 5}}}
    with pytest.raises(sweep.SpecError, match=r"run.monitor applies to a network problem only"):
        sweep.load_spec(landscape)
