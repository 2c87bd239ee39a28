"""Argument checks shared by every public entry point, with one message style.

Every check runs on the host, before any compute, and raises with a message of the form::

    <where>: <name> must be <what was expected>, got <summary of the value>

``where`` is the public function the user called (``"simulate"``, ``"hparams"``, …), ``name`` the
parameter. Values in messages are summarised (:func:`summary`): a long array never floods a
traceback.

>>> integer("simulate", "steps", 10)
10
>>> integer("simulate", "steps", 0, low=1)
Traceback (most recent call last):
...
ValueError: simulate: steps must be an integer >= 1, got 0
"""

from __future__ import annotations

import math
from typing import Any, Iterable, Sequence

import numpy as np

__all__ = [
    "summary",
    "fail",
    "integer",
    "real",
    "boolean",
    "choice",
    "array",
    "instance",
    "function",
    "cli_positive_int",
]

_MAX_REPR = 80


def summary(value: Any, limit: int = _MAX_REPR) -> str:
    """A short description of ``value`` for messages and reprs (arrays by shape, dtype and range).

    >>> summary(np.zeros((1000, 2)))
    'array of shape (1000, 2), float64, values in [0, 0]'
    >>> summary("x" * 200)[:20]
    "'xxxxxxxxxxxxxxxxxxx"
    """
    if isinstance(value, np.ndarray) or type(value).__module__.startswith(("jax", "jaxlib")):
        try:
            arr = np.asarray(value)
        except Exception:  # a tracer: say what it is, not its contents
            return f"{type(value).__name__} of shape {getattr(value, 'shape', '?')}"
        if arr.size <= 6:
            return repr(arr.tolist())
        text = f"array of shape {arr.shape}, {arr.dtype}"
        if arr.dtype.kind in "fiub":
            finite = arr[np.isfinite(arr)] if arr.dtype.kind == "f" else arr
            if finite.size:
                text += f", values in [{finite.min():.4g}, {finite.max():.4g}]"
            if finite.size < arr.size:
                text += f", {arr.size - finite.size} non-finite"
        return text
    if isinstance(value, (list, tuple)) and len(value) > 6:
        return f"{type(value).__name__} of {len(value)} items starting {summary(list(value[:3]), limit)[:-1]}, …]"
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def fail(where: str, name: str, expected: str, value: Any, error: type = ValueError):
    """Raise ``error`` with the house message; never returns."""
    raise error(f"{where}: {name} must be {expected}, got {summary(value)}")


def integer(where: str, name: str, value: Any, *, low: int | None = None, high: int | None = None) -> int:
    """A Python/NumPy integer (never a bool or a float) within ``[low, high]``; returns ``int``."""
    expected = "an integer" + (f" >= {low}" if low is not None else "") + (f" and <= {high}" if high is not None else "")
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, np.integer)):
        fail(where, name, expected, value, TypeError if not isinstance(value, (float, np.floating)) else ValueError)
    if (low is not None and value < low) or (high is not None and value > high):
        fail(where, name, expected, value)
    return int(value)


def real(where: str, name: str, value: Any, *, low: float | None = None, high: float | None = None,
         low_open: bool = False, high_open: bool = False) -> float:
    """A finite real number within the stated bounds (``low_open``: strictly above ``low``)."""
    parts = ["a finite real number"]
    if low is not None:
        parts.append(f"{'>' if low_open else '>='} {low:g}")
    if high is not None:
        parts.append(f"{'<' if high_open else '<='} {high:g}")
    expected = " ".join(parts[:1]) + ("" if len(parts) == 1 else " " + " and ".join(parts[1:]))
    if isinstance(value, (bool, np.bool_, str, bytes)) or np.ndim(value) != 0:
        fail(where, name, expected, value, TypeError)
    try:
        x = float(value)
    except (TypeError, ValueError):
        fail(where, name, expected, value, TypeError)
    if not math.isfinite(x):
        fail(where, name, expected, value)
    if low is not None and (x <= low if low_open else x < low):
        fail(where, name, expected, value)
    if high is not None and (x >= high if high_open else x > high):
        fail(where, name, expected, value)
    return x


def boolean(where: str, name: str, value: Any) -> bool:
    """``True`` or ``False`` exactly (a string such as ``"no"`` is refused, not read as truthy)."""
    if not isinstance(value, (bool, np.bool_)):
        fail(where, name, "True or False", value, TypeError)
    return bool(value)


def choice(where: str, name: str, value: Any, options: Iterable) -> Any:
    """One of ``options`` (compared with ``==``; unhashable values are refused too)."""
    options = tuple(options)
    try:
        ok = any(value == o and type(value) is type(o) for o in options)
    except Exception:
        ok = False
    if not ok:
        fail(where, name, "one of " + ", ".join(repr(o) for o in options), value)
    return value


def array(where: str, name: str, value: Any, *, shape: Sequence[int | None] | None = None,
          ndim: int | Sequence[int] | None = None, finite: bool = True, dtype=np.float64) -> np.ndarray:
    """A real array of the given ``shape`` (``None`` entries match any length) or ``ndim``.

    >>> array("f", "x0", [1, 2], shape=(None,)).tolist()
    [1.0, 2.0]
    """
    what = "a real array"
    if shape is not None:
        what += " of shape (" + ", ".join("n" if s is None else str(s) for s in shape) + ("," if len(shape) == 1 else "") + ")"
    elif ndim is not None:
        what += f" with {ndim} dimension(s)" if isinstance(ndim, int) else f" with one of {tuple(ndim)} dimensions"
    if finite:
        what = "a finite" + what[1:]
    if isinstance(value, (str, bytes)):
        fail(where, name, what, value, TypeError)
    try:
        arr = np.asarray(value, dtype=dtype)
    except (TypeError, ValueError):
        fail(where, name, what, value, TypeError)
    if shape is not None and (arr.ndim != len(shape) or any(s is not None and s != a for s, a in zip(shape, arr.shape))):
        fail(where, name, what, arr)
    if ndim is not None and arr.ndim not in ((ndim,) if isinstance(ndim, int) else tuple(ndim)):
        fail(where, name, what, arr)
    if finite and arr.dtype.kind == "f" and not np.all(np.isfinite(arr)):
        fail(where, name, what, arr)
    return arr


def instance(where: str, name: str, value: Any, cls, expected: str) -> Any:
    """``isinstance(value, cls)``; ``expected`` says what to pass (e.g. ``"sd.optim.sam() or gd()"``)."""
    if not isinstance(value, cls):
        fail(where, name, expected, value, TypeError)
    return value


def function(where: str, name: str, value: Any, expected: str = "callable") -> Any:
    """A callable."""
    if not callable(value):
        fail(where, name, expected, value, TypeError)
    return value


def cli_positive_int(text: str) -> int:
    """An ``argparse`` type: an integer >= 1 (argparse turns the error into a usage message, exit 2).

    >>> cli_positive_int("3")
    3
    """
    import argparse

    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be an integer >= 1, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be an integer >= 1, got {value}")
    return value
