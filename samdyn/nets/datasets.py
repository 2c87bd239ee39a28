"""Offline datasets, generated or loaded locally and cached on disk: MNIST-1D, digits, teacher–student.

Every loader returns a :class:`Dataset` of NumPy arrays. Nothing here touches the network:

* :func:`mnist1d` runs ``mnist1d.data.make_dataset`` (Greydanus 2020) locally — never the
  package's download path. ``make_dataset`` reseeds NumPy's and Python's global random generators;
  their states are saved and restored around it.
* :func:`digits` is scikit-learn's bundled 8×8 digits (``load_digits``, shipped with the package).
* :func:`teacher_student` is synthetic regression: ``x ~ N(0, I)``, ``y = teacher(x) + σ ε``.

Generated data is cached as ``.npz`` under ``$SAMDYN_CACHE`` (default ``~/.cache/samdyn``), in a
file keyed by a hash of the generation arguments; ``cache=False`` skips the cache.
"""

from __future__ import annotations

import hashlib
import json
import os
import pathlib
import random
from typing import Callable, NamedTuple

import numpy as np

__all__ = ["Dataset", "cache_dir", "mnist1d", "digits", "teacher_student", "TEACHERS"]


class Dataset(NamedTuple):
    """A train/test split as NumPy arrays.

    Attributes:
        x_train, x_test: inputs, shape ``(N, *in_shape)``, float32.
        y_train, y_test: integer labels ``(N,)`` (classification) or targets ``(N, out_dim)``
            (regression, float32).
        task: ``"classification"`` or ``"regression"``.
        n_classes: number of classes (0 for regression).
        name: label.
        args: the generation arguments (a dict).
    """

    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    task: str
    n_classes: int
    name: str
    args: dict


def cache_dir() -> pathlib.Path:
    """The cache folder: ``$SAMDYN_CACHE`` or ``~/.cache/samdyn``."""
    return pathlib.Path(os.environ.get("SAMDYN_CACHE") or pathlib.Path.home() / ".cache" / "samdyn")


_FIELDS = ("x_train", "y_train", "x_test", "y_test")


def _cached(name: str, args: dict, make: Callable[[], dict], cache: bool) -> dict:
    """Arrays from the cache file keyed by ``(name, args)``, generating and saving them if absent."""
    if not cache:
        return make()
    key = hashlib.sha256(json.dumps([name, args], sort_keys=True).encode()).hexdigest()[:16]
    path = cache_dir() / f"{name}-{key}.npz"
    if path.exists():
        with np.load(path) as f:
            return {k: f[k] for k in _FIELDS}
    arrays = make()
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(f".{os.getpid()}.tmp.npz")
    np.savez(tmp, **arrays)
    os.replace(tmp, path)
    return arrays


def mnist1d(num_samples: int = 5000, train_split: float = 0.8, seed: int = 42, *, cache: bool = True,
            **overrides) -> Dataset:
    """MNIST-1D generated locally with ``mnist1d.data.make_dataset`` (inputs ``(N, 40)``, 10 classes).

    The defaults are the package's (``get_dataset_args()``): 5000 samples, 4000 train / 1000 test,
    the published benchmark split on which an MLP reaches ≈ 68 % and a CNN ≈ 94 % test accuracy.

    Args:
        num_samples: total samples (a multiple of 10 keeps classes balanced).
        train_split: fraction used for training, in (0, 1).
        seed: the generator's seed.
        cache: read / write the on-disk cache.
        **overrides: any other field of ``mnist1d.data.get_dataset_args()`` (e.g. ``shuffle_seq``).
    """
    try:
        from mnist1d.data import get_dataset_args, make_dataset
    except ImportError as err:  # pragma: no cover - depends on the environment
        raise ImportError("samdyn.nets.datasets.mnist1d needs the `mnist1d` package: pip install mnist1d") from err
    defaults = get_dataset_args(as_dict=True)
    unknown = set(overrides) - set(defaults) | ({"url"} & set(overrides))
    if unknown:
        raise ValueError(f"mnist1d: unknown argument(s) {sorted(unknown)}; expected some of "
                         f"{sorted(set(defaults) - {'url', 'num_samples', 'train_split', 'seed'})}")
    if isinstance(num_samples, bool) or not isinstance(num_samples, int) or num_samples < 10:
        raise ValueError(f"mnist1d: num_samples must be an int >= 10, got {num_samples!r}")
    if not 0 < train_split < 1:
        raise ValueError(f"mnist1d: train_split must be in (0, 1), got {train_split!r}")
    args = {k: v for k, v in defaults.items() if k != "url"}
    args.update(overrides, num_samples=num_samples, train_split=train_split, seed=int(seed))

    def make():
        from mnist1d.utils import ObjectView

        np_state, py_state = np.random.get_state(), random.getstate()
        try:
            data = make_dataset(ObjectView(dict(args)))
        finally:
            np.random.set_state(np_state)
            random.setstate(py_state)
        return {"x_train": data["x"].astype(np.float32), "y_train": data["y"].astype(np.int32),
                "x_test": data["x_test"].astype(np.float32), "y_test": data["y_test"].astype(np.int32)}

    arrays = _cached("mnist1d", args, make, cache)
    return Dataset(**arrays, task="classification", n_classes=10, name="mnist1d", args=args)


def digits(test_fraction: float = 0.25, seed: int = 0) -> Dataset:
    """scikit-learn's bundled 8×8 digits (1797 images, inputs ``(N, 64)`` scaled to [0, 1]).

    The split is a seeded permutation (no download, nothing to cache).
    """
    try:
        from sklearn.datasets import load_digits
    except ImportError as err:  # pragma: no cover
        raise ImportError("samdyn.nets.datasets.digits needs scikit-learn: pip install scikit-learn") from err
    if not 0 < test_fraction < 1:
        raise ValueError(f"digits: test_fraction must be in (0, 1), got {test_fraction!r}")
    bunch = load_digits()
    x = (bunch.data / 16.0).astype(np.float32)
    y = bunch.target.astype(np.int32)
    order = np.random.default_rng(seed).permutation(len(y))
    n_test = int(round(test_fraction * len(y)))
    test, train = order[:n_test], order[n_test:]
    return Dataset(x[train], y[train], x[test], y[test], "classification", 10, "digits",
                   {"test_fraction": test_fraction, "seed": seed})


def _linear_teacher(rng, x, in_dim, out_dim):
    a = rng.standard_normal((in_dim, out_dim)) / np.sqrt(in_dim)
    return x @ a


def _square_teacher(rng, x, in_dim, out_dim):
    u = rng.standard_normal((in_dim, out_dim)) / np.sqrt(in_dim)
    return (x @ u) ** 2


def _relu_teacher(rng, x, in_dim, out_dim, hidden=32):
    w1 = rng.standard_normal((in_dim, hidden)) / np.sqrt(in_dim)
    w2 = rng.standard_normal((hidden, out_dim)) / np.sqrt(hidden)
    return np.maximum(x @ w1, 0) @ w2


#: Teachers for :func:`teacher_student`: ``name -> fn(rng, x, in_dim, out_dim) -> y``.
TEACHERS: dict[str, Callable] = {"linear": _linear_teacher, "square": _square_teacher, "relu": _relu_teacher}


def teacher_student(n_train: int = 512, n_test: int = 512, in_dim: int = 8, out_dim: int = 1,
                    teacher: str = "linear", noise_std: float = 0.0, seed: int = 0, *,
                    cache: bool = True) -> Dataset:
    """Synthetic regression: ``x ~ N(0, I_in_dim)``, ``y = teacher(x) + noise_std · ε``.

    Teachers (:data:`TEACHERS`): ``"linear"`` ``x A`` with ``A ~ N(0, 1/in_dim)``; ``"square"``
    ``(x U)²`` elementwise (the target of :func:`samdyn.nets.square_toy`); ``"relu"`` a random
    one-hidden-layer ReLU net (32 units). Teacher weights and data come from ``seed``.
    """
    for name, value in (("n_train", n_train), ("n_test", n_test), ("in_dim", in_dim), ("out_dim", out_dim)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ValueError(f"teacher_student: {name} must be a positive int, got {value!r}")
    if teacher not in TEACHERS:
        raise ValueError(f"teacher_student: unknown teacher {teacher!r}; expected one of {sorted(TEACHERS)}")
    if not noise_std >= 0:
        raise ValueError(f"teacher_student: noise_std must be >= 0, got {noise_std!r}")
    args = {"n_train": n_train, "n_test": n_test, "in_dim": in_dim, "out_dim": out_dim, "teacher": teacher,
            "noise_std": float(noise_std), "seed": int(seed)}

    def make():
        rng = np.random.default_rng(seed)
        x = rng.standard_normal((n_train + n_test, in_dim))
        y = TEACHERS[teacher](rng, x, in_dim, out_dim) + noise_std * rng.standard_normal((n_train + n_test, out_dim))
        x, y = x.astype(np.float32), y.astype(np.float32)
        return {"x_train": x[:n_train], "y_train": y[:n_train], "x_test": x[n_train:], "y_test": y[n_train:]}

    arrays = _cached("teacher_student", args, make, cache)
    return Dataset(**arrays, task="regression", n_classes=0, name=f"teacher-student-{teacher}", args=args)
