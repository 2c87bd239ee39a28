"""Sweep specs: a TOML file (or the same as a dict) → a validated, immutable :class:`Spec`.

A spec names the problem, the optimizer, the noise, the grid and what to run and keep::

    [problem]
    landscape = "saddle"          # or expr = "x**2 - y**2", symbols = ["x", "y"]; or model + dataset

    [optimizer]
    name = "sam"                  # a list is an axis: ["gd", "sam"]

    [noise]
    kind = "gaussian"             # none | gaussian | hessian | minibatch
    std = 0.1

    [grid]                        # a list is an axis; a scalar is fixed
    rho = [0.0, 0.05, 0.1, 0.2]
    momentum = [0.0, 0.5, 0.9]
    lr = 0.01
    seed = [0, 1]

    [run]
    x0 = [0.0, 0.0]
    particles = 256
    steps = 500
    observables = ["msd", "escaped"]
    dtype = "float32"

Everything is checked here, on the host, before any compute; a bad value raises :class:`SpecError`
naming its key (``sweep spec: grid.rho must be …, got …``). Values are data: nothing in a spec is
evaluated (a landscape expression goes through :func:`samdyn.landscapes.from_expr`).

The spec is kept as canonical JSON text (defaults filled in, numbers normalised), so equal specs
have equal :attr:`Spec.hash` whatever their formatting; a store refuses a spec with another hash.
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import inspect
import json
import math
from pathlib import Path
from typing import Any, Mapping

import numpy as np

from .. import checks, landscapes, nets, noise as noise_mod, optim

try:  # Python 3.11+
    import tomllib
except ModuleNotFoundError:  # pragma: no cover - Python 3.10
    import tomli as tomllib

__all__ = ["Spec", "SpecError", "load", "loads", "override", "Setup", "setup", "starts",
           "TRAJECTORY_OBSERVABLES", "STATS_OBSERVABLES", "NETS_OBSERVABLES"]

WHERE = "sweep spec"

#: Observables of a deterministic (or one-particle noisy) landscape run, recorded every ``every`` steps.
TRAJECTORY_OBSERVABLES = ("loss", "distance", "grad_norm", "cosine", "trajectory")
#: Statistics of a many-particle run (``run.particles``), see :class:`samdyn.streaming.ParticleStats`.
STATS_OBSERVABLES = ("msd", "mean", "cov", "width", "escaped", "exit_step", "crossed", "cross_step",
                     "loss_quantiles", "count", "final")
#: Records of a network run (:data:`samdyn.nets.RECORDS`).
NETS_OBSERVABLES = tuple(nets.RECORDS)

OPTIMIZERS = {"gd": optim.gd, "sam": optim.sam, "usam": optim.usam}
NOISE_KINDS = ("none", "gaussian", "hessian", "minibatch")
MODELS = {"mlp": nets.mlp, "cnn1d": nets.cnn1d, "deep_linear": nets.deep_linear, "square_toy": nets.square_toy}
DATASETS = {"mnist1d": nets.datasets.mnist1d, "digits": nets.datasets.digits,
            "teacher_student": nets.datasets.teacher_student}
#: Arguments each model takes from the dataset (the spec cannot set them).
MODEL_FROM_DATA = {"mlp": ("in_dim", "out_dim", "task"), "cnn1d": ("in_len", "out_dim"),
                   "deep_linear": ("in_dim", "out_dim"), "square_toy": ("in_dim",)}

SECTIONS = {
    "": ("name", "description", "problem", "optimizer", "noise", "grid", "run"),
    "problem": ("landscape", "params", "expr", "symbols", "domain", "model", "model_args", "dataset", "dataset_args"),
    "optimizer": ("name", "nesterov", "eps"),
    "noise": ("kind", "std", "cov", "psd", "at", "n", "shift_std", "shift_seed", "independent", "sampler"),
    "grid": ("lr", "rho", "momentum", "batch_size", "seed", "x0"),
    "run": ("x0", "steps", "epochs", "every", "particles", "observables", "dtype", "chunk", "chunk_size",
            "reference", "radius", "level", "loss_edges", "quantiles", "eval_samples", "monitor"),
}
DEFAULT_RADIUS = 1.0
DEFAULT_QUANTILES = (0.1, 0.5, 0.9)


class SpecError(ValueError):
    """A spec that cannot run: the message names the key and what was expected."""


def _fail(key: str, expected: str, value: Any):
    checks.fail(WHERE, key, expected, value, SpecError)


def _checked(fn, *args, **kwargs):
    """Run a ``samdyn.checks`` check and turn its error into a :class:`SpecError`."""
    try:
        return fn(WHERE, *args, **kwargs)
    except (TypeError, ValueError) as err:
        raise SpecError(str(err)) from None


def _library(key: str, fn, *args, **kwargs):
    """Build a library object; its own validation error becomes a SpecError naming ``key``."""
    try:
        return fn(*args, **kwargs)
    except (TypeError, ValueError, KeyError) as err:
        msg = err.args[0] if isinstance(err, KeyError) and err.args else err
        raise SpecError(f"{WHERE}: {key}: {msg}") from None


def _known_keys(section: str, table: Mapping):
    where = section or "the top level"
    if not isinstance(table, Mapping):
        _fail(section, "a table", table)
    for key in table:
        if key not in SECTIONS[section]:
            full = f"{section}.{key}" if section else key
            raise SpecError(f"{WHERE}: unknown key {full} in {where}; expected one of: {', '.join(SECTIONS[section])}")


# ---- the Spec ------------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class Spec:
    """A validated sweep spec, immutable: canonical JSON ``text`` and the TOML ``source`` it came from.

    Attributes:
        text: canonical JSON (sorted keys, defaults filled in, the grid as ordered ``[key, value]``
            pairs); equal specs have equal text.
        source: the TOML text as written (or None for a dict).
    """

    text: str
    source: str | None = dataclasses.field(default=None, compare=False)

    @functools.cached_property
    def data(self) -> dict:
        """The canonical spec as a dict (a fresh parse of :attr:`text`; do not mutate)."""
        return json.loads(self.text)

    @property
    def hash(self) -> str:
        """SHA-256 of the canonical text (hex)."""
        return hashlib.sha256(self.text.encode()).hexdigest()

    @property
    def kind(self) -> str:
        """``"landscape"`` or ``"nets"``."""
        return "nets" if "model" in self.data["problem"] else "landscape"

    @property
    def mode(self) -> str:
        """``"trajectory"`` (one particle per setting), ``"stats"`` (many particles) or ``"nets"``."""
        if self.kind == "nets":
            return "nets"
        return "stats" if self.data["run"]["particles"] is not None else "trajectory"

    @property
    def grid(self) -> list:
        """``[(key, value), …]`` in spec order; a list value is an axis."""
        return [tuple(item) for item in self.data["grid"]]


def load(source, overrides=()) -> Spec:
    """A :class:`Spec` from a TOML file path, a dict, or a Spec (returned as is).

    Args:
        source: the spec.
        overrides: ``"section.key=VALUE"`` assignments applied first (see :func:`override`).

    >>> spec = load({"problem": {"landscape": "saddle"}, "optimizer": {"name": "gd"},
    ...              "grid": {"lr": 0.1}, "run": {"x0": [1.0, 0.5], "steps": 10}})
    >>> spec.mode, len(spec.hash)
    ('trajectory', 64)
    """
    overrides = list(overrides)
    if isinstance(source, Spec) and not overrides:
        return source
    if isinstance(source, Spec):
        source = source.data
    if isinstance(source, Mapping):
        return _normalise(override(source, overrides), None)
    if isinstance(source, (str, Path)):
        path = Path(source)
        if not path.is_file():
            raise SpecError(f"{WHERE}: no such file {str(path)!r}")
        text = path.read_text()
        if not overrides:
            return loads(text)
        text += "".join(f"\n# --set {item}" for item in overrides) + "\n"
        return _normalise(override(_parse(text), overrides), text)
    raise SpecError(f"{WHERE}: expected a TOML file path or a dict, got {checks.summary(source)}")


def _parse(text: str) -> dict:
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as err:
        raise SpecError(f"{WHERE}: not valid TOML: {err}") from None


def loads(text: str) -> Spec:
    """A :class:`Spec` from TOML text."""
    return _normalise(_parse(text), text)


def override(data: Mapping, assignments) -> dict:
    """Apply ``"section.key=VALUE"`` assignments to a spec dict; VALUE is read as a TOML value.

    >>> override({"run": {"steps": 10}}, ["run.steps=20", "run.dtype='float32'"])["run"]
    {'steps': 20, 'dtype': 'float32'}
    """
    out = _plain(data)
    for item in assignments:
        key, sep, value = item.partition("=")
        path = key.strip().split(".")
        if not sep or not all(path):
            raise SpecError(f"{WHERE}: --set must look like section.key=VALUE, got {item!r}")
        try:
            parsed = tomllib.loads(f"v = {value.strip()}")["v"]
        except tomllib.TOMLDecodeError:
            parsed = value.strip()  # a bare word is a string
        table = out
        for part in path[:-1]:
            table = table.setdefault(part, {})
            if not isinstance(table, dict):
                raise SpecError(f"{WHERE}: --set {key}: {part} is not a table")
        table[path[-1]] = parsed
    return out


# ---- normalisation -------------------------------------------------------------------------------


def _plain(value):
    """A deep copy with NumPy arrays and tuples as lists and NumPy scalars as Python ones (a dict spec
    written in Python may hold them; TOML never does)."""
    if isinstance(value, Mapping):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, (np.ndarray, np.generic)):
        return value.tolist()
    return value


def _number_list(key, value, check, **bounds):
    """A scalar (fixed) or a non-empty list of distinct values (an axis), each checked."""
    if isinstance(value, list):
        if not value:
            _fail(key, "a number or a non-empty list of numbers", value)
        out = [_checked(check, f"{key}[{i}]", v, **bounds) for i, v in enumerate(value)]
        if len(set(out)) != len(out):
            _fail(key, "a list of distinct values", value)
        return out
    return _checked(check, key, value, **bounds)


def _point(key, value, d=None):
    arr = _checked(checks.array, key, value, shape=(None,) if d is None else (d,))
    if arr.size == 0:
        _fail(key, "a non-empty point", value)
    return [float(v) for v in arr]


def _landscape(problem: Mapping):
    if "landscape" in problem and "expr" in problem:
        raise SpecError(f"{WHERE}: problem.landscape and problem.expr exclude each other; give one")
    if "landscape" in problem:
        name = problem["landscape"]
        _checked(checks.choice, "problem.landscape", name, landscapes.names())
        params = problem.get("params", {})
        if not isinstance(params, Mapping):
            _fail("problem.params", "a table of the landscape's parameters", params)
        for k in ("expr", "symbols", "domain"):
            if k in problem:
                raise SpecError(f"{WHERE}: problem.{k} goes with problem.expr, not problem.landscape")
        return {"landscape": name, "params": dict(params)}
    if "expr" not in problem:
        raise SpecError(f"{WHERE}: problem needs landscape = NAME, expr = \"...\", or model + dataset")
    expr, symbols = problem["expr"], problem.get("symbols")
    if not isinstance(expr, str):
        _fail("problem.expr", "a string", expr)
    if not (isinstance(symbols, list) and symbols and all(isinstance(s, str) for s in symbols)):
        _fail("problem.symbols", "a non-empty list of variable names", symbols)
    if "params" in problem:
        raise SpecError(f"{WHERE}: problem.params goes with problem.landscape, not problem.expr")
    out = {"expr": expr, "symbols": list(symbols), "domain": None}
    if "domain" in problem:
        dom = _checked(checks.array, "problem.domain", problem["domain"], shape=(len(symbols), 2))
        out["domain"] = dom.tolist()
    return out


def _network(problem: Mapping):
    for k in ("landscape", "params", "expr", "symbols", "domain"):
        if k in problem:
            raise SpecError(f"{WHERE}: problem.{k} cannot go with problem.model (a network problem)")
    model, dataset = problem.get("model"), problem.get("dataset")
    _checked(checks.choice, "problem.model", model, tuple(MODELS))
    _checked(checks.choice, "problem.dataset", dataset, tuple(DATASETS))
    out = {"model": model, "dataset": dataset}
    for key, fn, fixed in (("model_args", MODELS[model], MODEL_FROM_DATA[model]),
                           ("dataset_args", DATASETS[dataset], ("cache",))):
        args = problem.get(key, {})
        if not isinstance(args, Mapping):
            _fail(f"problem.{key}", "a table", args)
        params = inspect.signature(fn).parameters
        open_ended = any(p.kind is p.VAR_KEYWORD for p in params.values())
        for name in args:
            if name in fixed or (name not in params and not open_ended):
                allowed = [p for p in params if p not in fixed and params[p].kind is not params[p].VAR_KEYWORD]
                raise SpecError(f"{WHERE}: unknown key problem.{key}.{name}; expected one of: {', '.join(allowed)}")
        out[key] = dict(args)
    return out


def _x0(grid: Mapping, run: Mapping, d: int):
    if "x0" in grid and "x0" in run:
        raise SpecError(f"{WHERE}: give x0 once, in [grid] or in [run]")
    key = "grid.x0" if "x0" in grid else "run.x0"
    value = grid.get("x0", run.get("x0"))
    if value is None:
        raise SpecError(f"{WHERE}: run.x0 is missing: give a point, a list of points or a named set")
    if isinstance(value, Mapping):
        if set(value) <= {"grid", "domain"} and "grid" in value:
            n = value["grid"]
            n = [n] * d if not isinstance(n, list) else n
            if len(n) != d:
                _fail(f"{key}.grid", f"a count or a list of {d} counts", value["grid"])
            n = [_checked(checks.integer, f"{key}.grid", v, low=2) for v in n]
            dom = value.get("domain")
            if dom is not None:
                dom = _checked(checks.array, f"{key}.domain", dom, shape=(d, 2)).tolist()
                if any(a >= b for a, b in dom):
                    _fail(f"{key}.domain", "intervals [low, high] with low < high", value["domain"])
            return {"grid": n, "domain": dom}
        if set(value) == {"critical_points"}:
            kind = _checked(checks.choice, f"{key}.critical_points", value["critical_points"],
                            ("all", "minimum", "saddle", "maximum", "degenerate"))
            return {"critical_points": kind}
        raise SpecError(f"{WHERE}: {key} as a table must be {{grid = N, domain = ...}} or {{critical_points = KIND}},"
                        f" got keys {sorted(value)}")
    arr = _checked(checks.array, key, value, ndim=(1, 2))
    if arr.shape[-1] != d:
        _fail(key, f"a point with {d} coordinates (or a list of them)", value)
    if arr.ndim == 1:
        return {"point": arr.tolist()}
    if arr.shape[0] == 0:
        _fail(key, "a non-empty list of points", value)
    if len({tuple(p) for p in arr.tolist()}) != arr.shape[0]:
        _fail(key, "a list of distinct points", value)
    return {"points": arr.tolist()}


def _optimizer(opt: Mapping) -> dict:
    names = opt.get("name")
    names_list = names if isinstance(names, list) else [names]
    if not names_list or len(set(map(str, names_list))) != len(names_list):
        _fail("optimizer.name", "an optimizer name or a non-empty list of distinct names", names)
    for i, n in enumerate(names_list):
        _checked(checks.choice, "optimizer.name" if not isinstance(names, list) else f"optimizer.name[{i}]", n,
                 tuple(OPTIMIZERS))
    nesterov = _checked(checks.boolean, "optimizer.nesterov", opt.get("nesterov", False))
    eps = opt.get("eps")
    if eps is not None:
        if "sam" not in names_list:
            raise SpecError(f"{WHERE}: optimizer.eps is an option of 'sam' only")
        eps = _checked(checks.real, "optimizer.eps", eps, low=0, low_open=True)
    return {"name": names, "nesterov": nesterov, "eps": eps}


NOISE_KEYS = {"none": {"kind"}, "gaussian": {"kind", "std", "cov", "independent", "sampler"},
              "hessian": {"kind", "psd", "at", "independent", "sampler"},
              "minibatch": {"kind", "n", "shift_std", "shift_seed", "independent", "sampler"}}


def _noise(nz: Mapping, is_nets: bool) -> dict:
    kind = _checked(checks.choice, "noise.kind", nz.get("kind", "none"), NOISE_KINDS)
    if is_nets and kind != "none":
        raise SpecError(f"{WHERE}: noise.kind must be 'none' for a network (its minibatches are the noise), got {kind!r}")
    for key in nz:
        if key not in NOISE_KEYS[kind]:
            raise SpecError(f"{WHERE}: noise.{key} does not apply to noise.kind = {kind!r}; expected one of: "
                            f"{', '.join(sorted(NOISE_KEYS[kind]))}")
    noise: dict[str, Any] = {"kind": kind}
    if kind != "none":
        noise["independent"] = _checked(checks.boolean, "noise.independent", nz.get("independent", False))
        noise["sampler"] = _checked(checks.choice, "noise.sampler", nz.get("sampler", "threefry"), ("threefry", "fast"))
    if kind == "gaussian":
        if ("std" in nz) == ("cov" in nz):
            raise SpecError(f"{WHERE}: noise.kind = 'gaussian' needs exactly one of noise.std or noise.cov")
        noise["std"] = None if "std" not in nz else _checked(checks.real, "noise.std", nz["std"], low=0)
        noise["cov"] = None if "cov" not in nz else _checked(checks.array, "noise.cov", nz["cov"], ndim=2).tolist()
    elif kind == "hessian":
        noise["psd"] = _checked(checks.choice, "noise.psd", nz.get("psd", "abs"), ("abs", "clip"))
        noise["at"] = None if nz.get("at") is None else _point("noise.at", nz["at"])
    elif kind == "minibatch":
        if "n" not in nz:
            raise SpecError(f"{WHERE}: noise.kind = 'minibatch' needs noise.n, the number of components")
        noise["n"] = _checked(checks.integer, "noise.n", nz["n"], low=1)
        noise["shift_std"] = _checked(checks.real, "noise.shift_std", nz.get("shift_std", 1.0), low=0)
        noise["shift_seed"] = _checked(checks.integer, "noise.shift_seed", nz.get("shift_seed", 0), low=0)
    return noise


#: Bounds of each grid key: (check, keyword bounds).
GRID_CHECKS = {"lr": (checks.real, {"low": 0, "low_open": True}), "rho": (checks.real, {"low": 0}),
               "momentum": (checks.real, {"low": 0, "high": 1, "high_open": True}),
               "seed": (checks.integer, {"low": 0})}


def _grid(grid: Mapping, is_nets: bool, noise: dict) -> list:
    """``[[key, value], …]`` in spec order (``seed`` last if absent); a list value is an axis."""
    kind = noise["kind"]
    if "lr" not in grid:
        raise SpecError(f"{WHERE}: grid.lr is missing (a learning rate or a list of them)")
    items = []
    for key, value in grid.items():
        if key == "x0":
            continue
        if key == "batch_size":  # a count of samples for minibatches; a real B for the Gaussian models
            integral = is_nets or kind == "minibatch"
            check, bounds = (checks.integer, {"low": 1}) if integral else (checks.real, {"low": 0, "low_open": True})
        else:
            check, bounds = GRID_CHECKS[key]
        items.append([key, _number_list(f"grid.{key}", value, check, **bounds)])
    values = dict(items)
    if "seed" not in values:
        items.append(["seed", 0])
        values["seed"] = 0
    if "batch_size" in values and not is_nets and kind == "none":
        raise SpecError(f"{WHERE}: grid.batch_size needs noise (the noise's B) or a network (its minibatch size)")
    if kind in ("hessian", "minibatch") and "batch_size" not in values:
        raise SpecError(f"{WHERE}: noise.kind = {kind!r} needs grid.batch_size (B)")
    if is_nets and "batch_size" not in values:
        raise SpecError(f"{WHERE}: a network needs grid.batch_size (the minibatch size)")
    if kind == "minibatch" and max(np.atleast_1d(values["batch_size"])) > noise["n"]:
        _fail("grid.batch_size", f"<= noise.n = {noise['n']} (batches are drawn without replacement)",
              values["batch_size"])
    if not is_nets and kind == "none" and isinstance(values["seed"], list) and len(values["seed"]) > 1:
        raise SpecError(f"{WHERE}: grid.seed is an axis but the run has no noise: every seed would give the same result")
    return items


def _normalise(raw: Mapping, source: str | None) -> Spec:
    _known_keys("", raw)
    for section in ("problem", "optimizer", "grid", "run"):
        if section not in raw:
            raise SpecError(f"{WHERE}: the [{section}] table is missing")
    for section in ("problem", "optimizer", "noise", "grid", "run"):
        if section in raw:
            _known_keys(section, raw[section])
    problem_raw, grid, run = raw["problem"], raw["grid"], raw["run"]
    data: dict[str, Any] = {}
    for key in ("name", "description"):
        if raw.get(key) is not None and not isinstance(raw[key], str):
            _fail(key, "a string", raw[key])
        data[key] = raw.get(key)
    is_nets = "model" in problem_raw or "dataset" in problem_raw
    data["problem"] = _network(problem_raw) if is_nets else _landscape(problem_raw)
    data["optimizer"] = _optimizer(raw["optimizer"])
    data["noise"] = _noise(raw.get("noise", {}), is_nets)
    data["grid"] = _grid(grid, is_nets, data["noise"])
    data["run"] = _run(run, grid, data, is_nets, data["noise"]["kind"])
    spec = Spec(json.dumps(data, sort_keys=True, separators=(",", ":")), source)
    setup(spec)  # builds the problem, data and noise: their own checks run now, before any compute
    return spec


def _monitor(table, every: int, length: int, length_key: str) -> dict:
    """``run.monitor``: the saddle-trap monitor's settings (:class:`samdyn.nets.TrapMonitor`'s fields),
    ``every`` in the run's unit (steps or epochs) and a multiple of ``run.every``; defaults filled in."""
    if not isinstance(table, Mapping):
        _fail("run.monitor", "a table such as {every = 10, k = 1}", table)
    fields = [f.name for f in dataclasses.fields(nets.TrapMonitor)]
    unknown = sorted(set(table) - set(fields))
    if unknown:
        raise SpecError(f"{WHERE}: unknown key run.monitor.{unknown[0]}; known: {', '.join(fields)}")
    if "every" not in table:
        raise SpecError(f"{WHERE}: run.monitor needs every (records apart, in {length_key})")
    m_every = _checked(checks.integer, "run.monitor.every", table["every"], low=1)
    if m_every % every or m_every > length:
        _fail("run.monitor.every", f"a multiple of run.every = {every}, at most run.{length_key} = {length}", m_every)
    try:
        monitor = nets.TrapMonitor(**dict(table))
    except (TypeError, ValueError) as err:
        raise SpecError(f"{WHERE}: run.monitor: {err}") from None
    return dataclasses.asdict(monitor)


def _run(run: Mapping, grid: Mapping, data: dict, is_nets: bool, kind: str) -> dict:
    out: dict[str, Any] = {}
    if is_nets:
        for k in ("x0", "particles", "chunk_size", "reference", "radius", "level", "loss_edges", "quantiles"):
            if k in run or (k == "x0" and "x0" in grid):
                raise SpecError(f"{WHERE}: run.{k} does not apply to a network problem")
    else:
        if {"eval_samples", "epochs", "monitor"} & set(run):
            k = next(k for k in ("eval_samples", "epochs", "monitor") if k in run)
            raise SpecError(f"{WHERE}: run.{k} applies to a network problem only")
    if ("steps" in run) == ("epochs" in run):
        raise SpecError(f"{WHERE}: give exactly one of run.steps" + (" or run.epochs" if is_nets else ""))
    length_key = "steps" if "steps" in run else "epochs"
    out["steps"] = _checked(checks.integer, "run.steps", run["steps"], low=1) if "steps" in run else None
    out["epochs"] = _checked(checks.integer, "run.epochs", run["epochs"], low=1) if "epochs" in run else None
    length = out["steps"] or out["epochs"]
    default_every = length if is_nets else max(1, length // 100)
    out["every"] = _checked(checks.integer, "run.every", run.get("every", default_every), low=1)
    if out["every"] > length:
        _fail("run.every", f"<= run.{length_key} = {length}", out["every"])
    out["dtype"] = _checked(checks.choice, "run.dtype", run.get("dtype", "float32" if is_nets else "float64"),
                            ("float32", "float64"))
    out["chunk"] = None if run.get("chunk") is None else _checked(checks.integer, "run.chunk", run["chunk"], low=1)
    particles = run.get("particles")
    if particles is not None:
        particles = _checked(checks.integer, "run.particles", particles, low=1)
        if kind == "none":
            raise SpecError(f"{WHERE}: run.particles needs noise (a [noise] table with kind other than 'none'):"
                            " particles of a deterministic run would all be identical")
    out["particles"] = particles
    if "chunk_size" in run and particles is None:
        raise SpecError(f"{WHERE}: run.chunk_size (particles per compiled call) needs run.particles")
    out["chunk_size"] = None if run.get("chunk_size") is None else _checked(
        checks.integer, "run.chunk_size", run["chunk_size"], low=1)
    mode = "nets" if is_nets else ("stats" if particles is not None else "trajectory")
    known = {"nets": NETS_OBSERVABLES, "stats": STATS_OBSERVABLES, "trajectory": TRAJECTORY_OBSERVABLES}[mode]
    default_obs = {"nets": ["train_loss", "test_acc"], "stats": ["msd"], "trajectory": []}[mode]
    obs = run.get("observables", default_obs)
    if not isinstance(obs, list) or not all(isinstance(o, str) for o in obs):
        _fail("run.observables", "a list of names", obs)
    for o in obs:
        if o not in known:
            hint = {"trajectory": " (particle statistics need run.particles)", "stats": "", "nets": ""}[mode]
            raise SpecError(f"{WHERE}: unknown observable {o!r} in run.observables for a {mode} run{hint};"
                            f" known: {', '.join(known)}")
    if len(set(obs)) != len(obs):
        _fail("run.observables", "a list of distinct names", obs)
    out["observables"] = list(obs)
    if is_nets:
        out["eval_samples"] = None if run.get("eval_samples") is None else _checked(
            checks.integer, "run.eval_samples", run["eval_samples"], low=1)
        if run.get("monitor") is not None:  # absent stays absent: existing specs keep their hash
            out["monitor"] = _monitor(run["monitor"], out["every"], length, length_key)
        return out

    problem = _build_landscape(data["problem"])
    d = problem.dim
    out["x0"] = _x0(grid, run, d)
    out["reference"] = None if run.get("reference") is None else _point("run.reference", run["reference"], d)
    out["radius"] = (_checked(checks.real, "run.radius", run.get("radius", DEFAULT_RADIUS), low=0, low_open=True)
                     if {"escaped", "exit_step"} & set(obs) else None)
    out["level"] = None
    if {"crossed", "cross_step"} & set(obs):
        if "level" not in run:
            raise SpecError(f"{WHERE}: the observables crossed / cross_step need run.level (a loss level)")
        out["level"] = _checked(checks.real, "run.level", run["level"])
    out["loss_edges"] = out["quantiles"] = None
    if "loss_quantiles" in obs:
        edges = run.get("loss_edges")
        if isinstance(edges, Mapping):
            if set(edges) != {"start", "stop", "num"}:
                _fail("run.loss_edges", "a list of edges or {start, stop, num}", edges)
            num = _checked(checks.integer, "run.loss_edges.num", edges["num"], low=2)
            lo = _checked(checks.real, "run.loss_edges.start", edges["start"])
            hi = _checked(checks.real, "run.loss_edges.stop", edges["stop"], low=lo, low_open=True)
            edges = np.linspace(lo, hi, num).tolist()
        arr = _checked(checks.array, "run.loss_edges", edges, shape=(None,))
        if arr.size < 2 or np.any(np.diff(arr) <= 0):
            _fail("run.loss_edges", "a strictly increasing list of >= 2 edges", edges)
        out["loss_edges"] = arr.tolist()
        q = _checked(checks.array, "run.quantiles", run.get("quantiles", list(DEFAULT_QUANTILES)), shape=(None,))
        if q.size == 0 or np.any((q < 0) | (q > 1)):
            _fail("run.quantiles", "a non-empty list of numbers in [0, 1]", run.get("quantiles"))
        out["quantiles"] = q.tolist()
    if "distance" in obs and out["reference"] is None:
        raise SpecError(f"{WHERE}: the observable 'distance' needs run.reference (a point)")
    if "width" in obs and out["reference"] is None and "point" not in out["x0"]:
        raise SpecError(f"{WHERE}: the observable 'width' (along the Hessian's eigenvectors) needs run.reference"
                        " or a single x0 point")
    return out


# ---- the objects a spec names --------------------------------------------------------------------


def _freeze(value):
    """Lists → tuples (hashable arguments for the library's cached constructors)."""
    if isinstance(value, list):
        return tuple(_freeze(v) for v in value)
    if isinstance(value, dict):
        return {k: _freeze(v) for k, v in value.items()}
    return value


def _build_landscape(problem: dict):
    if "landscape" in problem:
        return _library("problem.params", landscapes.get, problem["landscape"], **_freeze(problem["params"]))
    return _cached_expr(problem["expr"], tuple(problem["symbols"]), _freeze(problem["domain"]))


@functools.lru_cache(maxsize=32)
def _cached_expr(expr, symbols, domain):
    return _library("problem.expr", landscapes.from_expr, expr, list(symbols), domain=domain)


@dataclasses.dataclass(frozen=True, eq=False)
class Setup:
    """The library objects a spec names (built once per spec and process, see :func:`setup`).

    Attributes:
        problem: the Landscape (landscape specs) or None.
        model, data: the network and its Dataset (network specs) or None.
        dim: parameters per particle (landscapes) or None.
        n_train: training-set size (networks) or None.
    """

    spec: Spec
    problem: Any
    model: Any
    data: Any
    dim: int | None
    n_train: int | None

    def optimizer(self, name: str) -> optim.Optimizer:
        """The optimizer ``name`` with the spec's static options (cached by ``samdyn.optim``)."""
        opt = self.spec.data["optimizer"]
        kwargs = {"nesterov": opt["nesterov"]}
        if name == "sam" and opt["eps"] is not None:
            kwargs["eps"] = opt["eps"]
        return OPTIMIZERS[name](**kwargs)

    def noise(self, batch_size=None):
        """The noise model for batch size ``batch_size`` (None when the spec has no noise); cached
        by its parameters, so every chunk of a group — and every spec with the same noise — reuses
        one compiled program."""
        nz = self.spec.data["noise"]
        return _noise_model(json.dumps(nz, sort_keys=True), batch_size, self.dim)


@functools.lru_cache(maxsize=256)
def _noise_model(noise_json: str, batch_size, d: int):
    nz = json.loads(noise_json)
    kind = nz["kind"]
    if kind == "none":
        return None
    common = {"independent": nz["independent"], "sampler": nz["sampler"]}
    if kind == "gaussian":
        scale = 1.0 if batch_size is None else 1.0 / float(batch_size)  # a B-sample mean: covariance / B
        if nz["std"] is not None:
            return _library("noise.std", noise_mod.gaussian, std=nz["std"] * math.sqrt(scale), **common)
        return _library("noise.cov", noise_mod.gaussian, cov=np.asarray(nz["cov"]) * scale, **common)
    if kind == "hessian":
        return _library("noise", noise_mod.hessian, batch_size, psd=nz["psd"], at=nz["at"], **common)
    shifts = noise_mod.centered_shifts(nz["n"], d, std=nz["shift_std"], seed=nz["shift_seed"])
    return _library("noise", noise_mod.minibatch, int(batch_size), shifts, **common)


@functools.lru_cache(maxsize=32)
def setup(spec: Spec) -> Setup:
    """Build (and so validate) the problem, network, data and noise that ``spec`` names; cached."""
    problem = spec.data["problem"]
    if spec.kind == "landscape":
        f = _build_landscape(problem)
        s = Setup(spec, f, None, None, f.dim, None)
        grid = dict(spec.grid)
        x0 = spec.data["run"]["x0"]
        if "critical_points" in x0 and not _critical_starts(f, x0["critical_points"]):
            _fail("run.x0.critical_points", "a kind of critical point the landscape has", x0["critical_points"])
        nz = spec.data["noise"]
        if nz["kind"] == "gaussian" and nz["cov"] is not None and np.shape(nz["cov"]) != (f.dim, f.dim):
            _fail("noise.cov", f"a {f.dim}x{f.dim} matrix", np.asarray(nz["cov"]))
        if nz["kind"] == "hessian" and nz["at"] is not None and len(nz["at"]) != f.dim:
            _fail("noise.at", f"a point with {f.dim} coordinates", nz["at"])
        for b in np.atleast_1d(grid.get("batch_size", [None])).tolist():
            s.noise(b)
        return s
    data = _library("problem.dataset_args", DATASETS[problem["dataset"]], **_freeze(problem["dataset_args"]))
    inferred = {"in_dim": int(np.prod(data.x_train.shape[1:])), "in_len": int(data.x_train.shape[1]),
                "out_dim": data.n_classes if data.task == "classification" else int(np.prod(data.y_train.shape[1:])),
                "task": data.task}
    kwargs = {k: inferred[k] for k in MODEL_FROM_DATA[problem["model"]]}
    model = _library("problem.model_args", MODELS[problem["model"]], **kwargs, **_freeze(problem["model_args"]))
    if model.task != data.task:
        raise SpecError(f"{WHERE}: problem.model {problem['model']!r} is for {model.task}, "
                        f"problem.dataset {problem['dataset']!r} is {data.task}")
    n_train = len(data.x_train)
    batch = dict(spec.grid)["batch_size"]
    if max(np.atleast_1d(batch)) > n_train:
        _fail("grid.batch_size", f"<= the training set size ({n_train} samples)", batch)
    run = spec.data["run"]
    if run["eval_samples"] is not None and run["eval_samples"] > n_train:
        _fail("run.eval_samples", f"<= the training set size ({n_train} samples)", run["eval_samples"])
    return Setup(spec, None, model, data, None, n_train)


def _critical_starts(f, kind: str):
    return [c for c in f.critical_points() if kind == "all" or c.kind == kind]


def starts(spec: Spec):
    """The initial points of a landscape spec: ``(axes, points)``.

    ``axes`` is a list of ``(dim name, coordinate values)`` (empty for one point) and ``points`` an
    array of shape ``(*axis sizes, d)``.
    """
    s = setup(spec)
    x0 = spec.data["run"]["x0"]
    if "point" in x0:
        return [], np.asarray(x0["point"], dtype=np.float64)
    if "points" in x0:
        pts = np.asarray(x0["points"], dtype=np.float64)
        return [("start", np.arange(len(pts)))], pts
    if "critical_points" in x0:
        pts = np.asarray([c.point for c in _critical_starts(s.problem, x0["critical_points"])], dtype=np.float64)
        return [("start", np.arange(len(pts)))], pts
    dom = x0["domain"] or s.problem.domain
    values = [np.linspace(lo, hi, n) for (lo, hi), n in zip(dom, x0["grid"])]
    names = [f"x0_{sym}" for sym in s.problem.symbols]
    return list(zip(names, values)), np.stack(np.meshgrid(*values, indexing="ij"), axis=-1)
