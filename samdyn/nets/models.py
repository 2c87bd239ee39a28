"""Small neural networks in pure JAX: parameters are pytrees, a model is ``(init, apply)``.

A :class:`Model` is a NamedTuple (hashable, so compiled training programs are cached per model):

* ``init(key, dtype) -> params`` — a pytree of arrays;
* ``apply(params, x) -> outputs`` — ``x`` of shape ``(N, *in_shape)``, outputs ``(N, out_dim)``;
* ``task`` — ``"classification"`` (softmax cross-entropy on integer labels) or ``"regression"``
  (mean squared error, ``½‖f(x) − y‖²`` averaged over samples); see :func:`loss_fn`.

The constructors are cached (same arguments → the same object), like ``samdyn.optim``'s.
No neural-network library is used: the models are a few lines each, and plain pytrees keep the
parameters directly usable by ``samdyn.optim`` and ``samdyn.hessian``.

Models with a known saddle at the origin (all parameters zero):

* :func:`square_toy` — ``f(x) = v · (wᵀx)²`` (one hidden unit with φ(z) = z², the toy of Kim et
  al. 2023 after Ziyin et al.). The gradient vanishes at the origin and the loss there is a
  degenerate (third-order) saddle: ``L(v, w) = L(0) − 2 v E[(wᵀx)² y] + O(v², ‖w‖⁴ v²)``.
* :func:`deep_linear` — ``f(x) = x W₁ ⋯ W_L``; for depth 2 the origin is a strict saddle whose
  Hessian has eigenvalues ``±σᵢ(E[x yᵀ])`` (each with multiplicity ``hidden``) and zeros; for
  depth ≥ 3 it is degenerate. Both start at small initialisation (``init_scale``).
"""

from __future__ import annotations

import functools
import math
from typing import Callable, NamedTuple

import jax
import jax.numpy as jnp

__all__ = ["Model", "ACTIVATIONS", "mlp", "cnn1d", "conv1d", "square_toy", "deep_linear", "loss_fn", "accuracy", "loss_from_outputs",
           "accuracy_from_outputs"]

#: Activation functions by name.
ACTIVATIONS: dict[str, Callable] = {
    "relu": jax.nn.relu,
    "tanh": jnp.tanh,
    "gelu": jax.nn.gelu,
    "sigmoid": jax.nn.sigmoid,
    "elu": jax.nn.elu,
    "softplus": jax.nn.softplus,
    "square": jnp.square,
    "identity": lambda z: z,
}

TASKS = ("classification", "regression")


class Model(NamedTuple):
    """A network: ``init(key, dtype) -> params``, ``apply(params, x) -> (N, out_dim)``.

    Attributes:
        init: parameter initialiser.
        apply: forward pass on a batch, ``x`` of shape ``(N, *in_shape)``.
        task: ``"classification"`` or ``"regression"``.
        in_shape: shape of one input, e.g. ``(40,)``.
        out_dim: number of outputs (classes for classification).
        name: label.
        options: the constructor's arguments (for labels and caching).
    """

    init: Callable
    apply: Callable
    task: str
    in_shape: tuple
    out_dim: int
    name: str
    options: tuple = ()


def _activation(name: str) -> Callable:
    if name not in ACTIVATIONS:
        raise ValueError(f"unknown activation {name!r}; expected one of {sorted(ACTIVATIONS)}")
    return ACTIVATIONS[name]


def _positive_int(name: str, value) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"{name} must be a positive int, got {value!r}")
    return value


def _uniform(key, shape, bound, dtype):
    return jax.random.uniform(key, shape, dtype=dtype, minval=-bound, maxval=bound)


def _linear_init(key, fan_in, fan_out, dtype):
    """PyTorch's default ``nn.Linear`` initialisation: U(±1/√fan_in) for weights and bias."""
    kw, kb = jax.random.split(key)
    bound = 1.0 / math.sqrt(fan_in)
    return {"w": _uniform(kw, (fan_in, fan_out), bound, dtype), "b": _uniform(kb, (fan_out,), bound, dtype)}


@functools.cache
def mlp(in_dim: int, widths: tuple = (100, 100), out_dim: int = 10, activation: str = "relu",
        task: str = "classification") -> Model:
    """Fully connected network ``in_dim → widths… → out_dim`` with PyTorch's default init.

    Args:
        in_dim: input size.
        widths: hidden layer widths (a tuple; ``()`` is a linear model).
        out_dim: outputs (classes for classification).
        activation: a key of :data:`ACTIVATIONS`.
        task: ``"classification"`` or ``"regression"``.

    >>> import jax, jax.numpy as jnp
    >>> net = mlp(4, (8,), 3)
    >>> net.apply(net.init(jax.random.PRNGKey(0), jnp.float32), jnp.ones((5, 4))).shape
    (5, 3)
    """
    in_dim, out_dim = _positive_int("in_dim", in_dim), _positive_int("out_dim", out_dim)
    widths = tuple(widths)
    for w in widths:
        _positive_int("width", w)
    act = _activation(activation)
    if task not in TASKS:
        raise ValueError(f"unknown task {task!r}; expected one of {TASKS}")
    dims = (in_dim, *widths, out_dim)

    def init(key, dtype=jnp.float32):
        keys = jax.random.split(key, len(dims) - 1)
        return [_linear_init(k, a, b, dtype) for k, a, b in zip(keys, dims[:-1], dims[1:])]

    def apply(params, x):
        h = x.reshape(x.shape[0], -1).astype(params[0]["w"].dtype)
        for i, layer in enumerate(params):
            h = h @ layer["w"] + layer["b"][None, :]
            if i < len(params) - 1:
                h = act(h)
        return h

    options = (("in_dim", in_dim), ("widths", widths), ("out_dim", out_dim), ("activation", activation))
    return Model(init, apply, task, (in_dim,), out_dim, f"mlp{list(widths)}-{activation}", options)


def _conv_len(length, kernel, stride, padding):
    return (length + 2 * padding - kernel) // stride + 1


def conv1d(h, w, stride: int = 2, padding: int = 1):
    """1-D cross-correlation (PyTorch's ``Conv1d`` without bias) by im2col and one contraction.

    Equal to ``lax.conv_general_dilated(h, w, (stride,), [(padding, padding)],
    dimension_numbers=("NCH", "OIH", "NCH"))`` (a test checks it) but about 4× faster on CPU for
    MNIST-1D's shapes, forward and backward.

    Args:
        h: inputs ``(N, C_in, L)``.
        w: kernels ``(C_out, C_in, K)``.
        stride, padding: as in PyTorch (zero padding on both sides).

    Returns:
        ``(N, C_out, L_out)`` with ``L_out = (L + 2·padding − K) // stride + 1``.
    """
    kernel = w.shape[-1]
    out_len = _conv_len(h.shape[-1], kernel, stride, padding)
    padded = jnp.pad(h, ((0, 0), (0, 0), (padding, padding)))
    span = stride * (out_len - 1) + 1
    patches = jnp.stack([padded[:, :, k:k + span:stride] for k in range(kernel)], axis=2)  # (N, C, K, L_out)
    return jnp.einsum("nckl,ock->nol", patches, w)


@functools.cache
def cnn1d(in_len: int = 40, channels: int = 25, out_dim: int = 10, activation: str = "relu") -> Model:
    """The MNIST-1D baseline CNN (Greydanus 2020, ``ConvBase``): three 1-D convolutions, one linear.

    conv(1→c, kernel 5, stride 2, pad 1) → conv(c→c, 3, 2, 1) → conv(c→c, 3, 2, 1) → flatten →
    linear(→ ``out_dim``), with ``activation`` after each convolution and PyTorch's default init.
    Inputs ``(N, in_len)``. Every model computes in its parameters' dtype (inputs are cast).

    >>> import jax, jax.numpy as jnp
    >>> net = cnn1d()
    >>> net.apply(net.init(jax.random.PRNGKey(0), jnp.float32), jnp.ones((2, 40))).shape
    (2, 10)
    """
    in_len, channels, out_dim = (_positive_int(n, v) for n, v in
                                 (("in_len", in_len), ("channels", channels), ("out_dim", out_dim)))
    act = _activation(activation)
    specs = ((1, channels, 5), (channels, channels, 3), (channels, channels, 3))  # (in, out, kernel)
    length = in_len
    for _, _, kernel in specs:
        length = _conv_len(length, kernel, 2, 1)
        if length < 1:
            raise ValueError(f"cnn1d: in_len={in_len} is too short for three stride-2 convolutions")
    flat = channels * length

    def init(key, dtype=jnp.float32):
        keys = jax.random.split(key, 2 * len(specs) + 1)
        params = []
        for i, (cin, cout, kernel) in enumerate(specs):
            bound = 1.0 / math.sqrt(cin * kernel)
            params.append({"w": _uniform(keys[2 * i], (cout, cin, kernel), bound, dtype),
                           "b": _uniform(keys[2 * i + 1], (cout,), bound, dtype)})
        params.append(_linear_init(keys[-1], flat, out_dim, dtype))
        return params

    def apply(params, x):
        h = x.reshape(x.shape[0], 1, -1).astype(params[0]["w"].dtype)
        for layer in params[:-1]:
            h = act(conv1d(h, layer["w"], stride=2, padding=1) + layer["b"][None, :, None])
        h = h.reshape(h.shape[0], -1)
        return h @ params[-1]["w"] + params[-1]["b"][None, :]

    options = (("in_len", in_len), ("channels", channels), ("out_dim", out_dim), ("activation", activation))
    return Model(init, apply, "classification", (in_len,), out_dim, f"cnn1d-{channels}", options)


@functools.cache
def square_toy(in_dim: int = 1, init_scale: float = 1e-2) -> Model:
    """One hidden unit with φ(z) = z²: ``f(x) = v · (wᵀx)²``, a regression model.

    Params ``{"w": (in_dim,), "v": (1,)}``, initialised ``N(0, init_scale²)``. The origin is a
    critical point (a degenerate saddle when ``E[(wᵀx)² y] ≠ 0`` for some ``w``).

    >>> import jax.numpy as jnp
    >>> toy = square_toy(2)
    >>> toy.apply({"w": jnp.array([1.0, 2.0]), "v": jnp.array([3.0])}, jnp.array([[1.0, 1.0]])).tolist()
    [[27.0]]
    """
    in_dim = _positive_int("in_dim", in_dim)
    if not init_scale >= 0:
        raise ValueError(f"square_toy: init_scale must be >= 0, got {init_scale!r}")

    def init(key, dtype=jnp.float32):
        kw, kv = jax.random.split(key)
        return {"w": init_scale * jax.random.normal(kw, (in_dim,), dtype),
                "v": init_scale * jax.random.normal(kv, (1,), dtype)}

    def apply(params, x):
        z = x.reshape(x.shape[0], -1).astype(params["w"].dtype) @ params["w"]
        return jnp.square(z)[:, None] * params["v"][None, :]

    return Model(init, apply, "regression", (in_dim,), 1, "square-toy",
                 (("in_dim", in_dim), ("init_scale", init_scale)))


@functools.cache
def deep_linear(in_dim: int, hidden: int, out_dim: int, depth: int = 2, init_scale: float = 1e-3) -> Model:
    """Deep linear network ``f(x) = x W₁ ⋯ W_depth`` (no biases), a regression model.

    Hidden widths all equal ``hidden``; weights initialised ``N(0, init_scale²)`` (small: the run
    starts next to the saddle at the origin).

    >>> import jax, jax.numpy as jnp
    >>> net = deep_linear(3, 4, 2, depth=3)
    >>> [w.shape for w in net.init(jax.random.PRNGKey(0), jnp.float32)]
    [(3, 4), (4, 4), (4, 2)]
    """
    in_dim, hidden, out_dim = (_positive_int(n, v) for n, v in
                               (("in_dim", in_dim), ("hidden", hidden), ("out_dim", out_dim)))
    depth = _positive_int("depth", depth)
    if not init_scale >= 0:
        raise ValueError(f"deep_linear: init_scale must be >= 0, got {init_scale!r}")
    dims = (in_dim, *([hidden] * (depth - 1)), out_dim)

    def init(key, dtype=jnp.float32):
        keys = jax.random.split(key, depth)
        return [init_scale * jax.random.normal(k, (a, b), dtype) for k, a, b in zip(keys, dims[:-1], dims[1:])]

    def apply(params, x):
        h = x.reshape(x.shape[0], -1).astype(params[0].dtype)
        for w in params:
            h = h @ w
        return h

    options = (("in_dim", in_dim), ("hidden", hidden), ("out_dim", out_dim), ("depth", depth),
               ("init_scale", init_scale))
    return Model(init, apply, "regression", (in_dim,), out_dim, f"deep-linear-{depth}", options)


def loss_from_outputs(task: str, out, y):
    """Mean loss given the network's outputs ``out`` ``(N, out_dim)``: cross-entropy or ½‖out − y‖²."""
    if task == "classification":
        logp = jax.nn.log_softmax(out, axis=-1)
        return -jnp.mean(jnp.take_along_axis(logp, y[:, None].astype(jnp.int32), axis=-1))
    return 0.5 * jnp.mean(jnp.sum(jnp.square(out - y.reshape(out.shape).astype(out.dtype)), axis=-1))


def accuracy_from_outputs(task: str, out, y):
    """Fraction of correct argmax predictions given the outputs; NaN for regression."""
    if task != "classification":
        return jnp.full((), jnp.nan, out.dtype)
    return jnp.mean((jnp.argmax(out, axis=-1) == y).astype(out.dtype))


def loss_fn(model: Model, params, x, y):
    """Mean loss of ``model`` on a batch: cross-entropy (integer ``y``) or ½‖f(x) − y‖² (scalar).

    >>> import jax.numpy as jnp
    >>> net = deep_linear(1, 1, 1, depth=2)
    >>> float(loss_fn(net, [jnp.ones((1, 1)), 2 * jnp.ones((1, 1))], jnp.ones((2, 1)), jnp.zeros((2, 1))))
    2.0
    """
    return loss_from_outputs(model.task, model.apply(params, x), y)


def accuracy(model: Model, params, x, y):
    """Fraction of correct argmax predictions (classification); NaN for regression."""
    return accuracy_from_outputs(model.task, model.apply(params, x), y)
