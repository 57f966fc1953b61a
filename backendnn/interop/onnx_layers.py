"""Each layer and activation of backendnn as ONNX nodes, in inference mode.

:func:`emit_layers` adds a chain of layers to a :class:`~.onnx_graph.Graph`, reading each
layer's ``config()`` and its arrays (NumPy, of the graph's dtype): Dense as Gemm (W of
shape (n_in, n_out), as ONNX's B), convolutions and pools as ONNX's (W in PyTorch's layout
(O, C/G, kh, kw) is ONNX's), batch norm with its running statistics and layer norm in
backendnn's order of operations, dropout as the identity, Flatten, Residual's two
branches and their sum.

Measured with ONNX Runtime 1.32 on CPU: it has no float64 kernel for Erf, Gelu, Softplus,
Conv, AveragePool and GlobalAveragePool (it has one for MatMul, Gemm, Einsum, Exp, Log,
Sigmoid, Tanh, Relu, Softmax, LogSoftmax, MaxPool, ReduceMean, Pad, Slice and Where); its
float64 Sigmoid loses relative precision below x = -30 and its LayerNormalization takes
E[x^2] - E[x]^2 (2.5e-10 relative error in float64 on random inputs). A float64 graph
therefore builds exact GELU from Cody's rational approximations (:func:`.onnx_graph.ndtr`),
the sigmoid in its stable form, convolution and average pooling as the library's own
im2col (slices of the padded input contracted with W by Einsum); softplus (from Exp and
Log) and layer norm (from ReduceMean, two passes) are built so in both dtypes. Every
float64 result is then computed in float64, within ~1e-14 of backendnn's.

Imports ``numpy``, :mod:`backendnn.activations`, ``layers`` and ``interop.onnx_graph``.
"""

from __future__ import annotations

import itertools
import math
from typing import Any

import numpy as np

from .. import activations as _act
from .. import layers as L
from ..layers.windows import _sides
from .onnx_graph import Graph, Sym, ndtr, sigmoid

_SQRT_2_OVER_PI = math.sqrt(2.0 / math.pi)
_GELU_C = 0.044715


class UnsupportedError(ValueError):
    """A layer or activation that has no ONNX form here (a custom one)."""


# --------------------------------------------------------------------------- activations


def _gelu(g: Graph, x: Sym) -> Sym:
    """x Phi(x): Erf in float32; Cody's Phi in float64, where ONNX Runtime has no Erf."""
    if g.dtype == np.float64:
        return x * ndtr(g, x)
    return x * (0.5 * (1.0 + g.sym(g.op("Erf", x * (1.0 / math.sqrt(2.0))))))


def _gelu_tanh(g: Graph, x: Sym) -> Sym:
    """x sigma(2u), u = sqrt(2/pi)(z + 0.044715 z^3), z = x clipped to [-100, 100]."""
    z = g.clip(x, -100.0, 100.0)
    return x * sigmoid(g, (2.0 * _SQRT_2_OVER_PI) * (z + _GELU_C * (z * z * z)))


def _swish(g: Graph, x: Sym, beta: float) -> Sym:
    return x * sigmoid(g, x if beta == 1.0 else beta * x)


def _softplus(g: Graph, x: Sym) -> Sym:
    """max(x, 0) + log1p(e^-|x|), log1p(e) = log(u) e / (u - 1) with u = 1 + e (e where u
    rounds to 1): full precision without a Log1p operator."""
    e = g.exp(-g.abs(x))
    u = 1.0 + e
    log1p = g.where(g.op("Equal", u, 1.0), e, g.sym(g.op("Log", u)) * e / (u - 1.0))
    return g.sym(g.op("Max", x, 0.0)) + log1p


_ACTIVATIONS: dict[type, Any] = {
    _act.Identity: lambda g, x, act: x,
    _act.Sigmoid: lambda g, x, act: sigmoid(g, x),
    _act.Tanh: lambda g, x, act: g.sym(g.op("Tanh", x)),
    _act.ReLU: lambda g, x, act: g.sym(g.op("Relu", x)),
    _act.GELU: lambda g, x, act: _gelu(g, x),
    _act.GELUTanh: lambda g, x, act: _gelu_tanh(g, x),
    _act.SiLU: lambda g, x, act: _swish(g, x, 1.0),
    _act.Swish: lambda g, x, act: _swish(g, x, act.beta),
    _act.Softplus: lambda g, x, act: _softplus(g, x),
    _act.Softmax: lambda g, x, act: g.sym(g.op("Softmax", x, axis=-1)),
    _act.LogSoftmax: lambda g, x, act: g.sym(g.op("LogSoftmax", x, axis=-1)),
}


def emit_activation(g: Graph, act: Any, x: Sym) -> Sym:
    """f(x) for a built-in activation ``act`` (its exact class: a subclass may compute
    something else); anything else is an :class:`UnsupportedError` naming it."""
    emit = _ACTIVATIONS.get(type(act))
    if emit is None:
        raise UnsupportedError(
            f"export_onnx: the activation {act!r} ({type(act).__module__}."
            f"{type(act).__qualname__}) has no ONNX form; the export covers the built-in "
            f"activations ({', '.join(_act.names())}). Use one of them, or write the ONNX "
            "graph for it yourself"
        )
    return emit(g, x, act)


def _gated(g: Graph, gate: Any, a: Sym, b: Sym) -> Sym:
    """g(a) * b for a GLU-family gate."""
    if type(gate) is not _act.GLU or gate.name not in _act.GATED:
        raise UnsupportedError(
            f"export_onnx: the gate {gate!r} has no ONNX form; the export covers "
            f"{', '.join(_act.GATED)}"
        )
    return emit_activation(g, gate.gate, a) * b


# --------------------------------------------------------------------------- layers


def _dense(g: Graph, layer: Any, params: tuple, state: tuple, x: Sym, shape: tuple) -> Sym:
    if layer.bias:
        return g.sym(g.op("Gemm", x, g.const(params[0]), g.const(params[1])))
    return g.sym(g.op("MatMul", x, g.const(params[0])))


def _gated_dense(g: Graph, layer: Any, params: tuple, state: tuple, x: Sym, shape: tuple) -> Sym:
    h = layer.n_out
    p = g.op("Gemm", x, g.const(params[0]), g.const(params[1]))
    axis = g.ints([1])
    a = g.sym(g.op("Slice", p, g.ints([0]), g.ints([h]), axis))
    b = g.sym(g.op("Slice", p, g.ints([h]), g.ints([2 * h]), axis))
    return _gated(g, layer.gate, a, b)


def _activation(g: Graph, layer: Any, params: tuple, state: tuple, x: Sym, shape: tuple) -> Sym:
    return emit_activation(g, layer.activation, x)


def _flatten(g: Graph, layer: Any, params: tuple, state: tuple, x: Sym, shape: tuple) -> Sym:
    return g.sym(g.op("Flatten", x, axis=1))


def _identity(g: Graph, layer: Any, params: tuple, state: tuple, x: Sym, shape: tuple) -> Sym:
    return x  # Dropout in inference


def _windows(layer: Any) -> tuple[tuple[int, ...], tuple[int, ...], tuple[int, ...], Any]:
    """(kernel, stride, dilation, padding sides) of a convolution or pool, 1-D or 2-D."""

    def tup(v: Any) -> tuple[int, ...]:
        return tuple(v) if isinstance(v, tuple) else (v,)

    kernel, stride = tup(layer.kernel_size), tup(layer.stride)
    if not hasattr(layer, "dilation"):  # a pool: no dilation, no padding
        return kernel, stride, (1,) * len(kernel), ((0, 0),) * len(kernel)
    dilation = tup(layer.dilation)
    return kernel, stride, dilation, _sides(layer.padding, kernel, dilation)


def _patches(g: Graph, x: Sym, layer: Any, shape: tuple, spatial: tuple) -> str:
    """The windows of x as (N, C, K, *spatial), ``spatial`` the output's spatial shape and
    K the taps of the kernel in row-major order (im2col without the reshape): one strided
    Slice of the padded x per tap."""
    kernel, stride, dilation, sides = _windows(layer)
    name = x.name
    if any(s for side in sides for s in side):
        pads = [0, 0, *(b for b, _ in sides), 0, 0, *(a for _, a in sides)]
        name = g.op("Pad", name, g.ints(pads))
    axes = g.ints(list(range(2, 2 + len(kernel))))
    steps = g.ints(stride)
    taps = []
    for offset in itertools.product(*(range(k) for k in kernel)):
        starts = [d * i for d, i in zip(dilation, offset)]
        ends = [b + s * (o - 1) + 1 for b, s, o in zip(starts, stride, spatial)]
        tap = g.op("Slice", name, g.ints(starts), g.ints(ends), axes, steps)
        taps.append(g.op("Unsqueeze", tap, g.ints([2])))
    return g.op("Concat", *taps, axis=2)


def _conv(g: Graph, layer: Any, params: tuple, state: tuple, x: Sym, shape: tuple) -> Sym:
    """ONNX's Conv in float32; in float64 per group Y = W_g P + b by Einsum over the taps."""
    kernel, stride, dilation, sides = _windows(layer)
    W = params[0]
    out_shape = layer.output_shape(shape)
    o, spatial = out_shape[0], out_shape[1:]
    if g.dtype == np.float32:
        pads = [b for b, _ in sides] + [a for _, a in sides]
        inputs = [x, g.const(W)] + ([g.const(params[1])] if layer.bias else [])
        return g.sym(g.op(
            "Conv", *inputs, kernel_shape=list(kernel), strides=list(stride),
            dilations=list(dilation), pads=pads, group=layer.groups,
        ))  # fmt: skip
    groups, c = layer.groups, shape[0] // layer.groups
    k, p = math.prod(kernel), math.prod(spatial)
    patches = g.op("Reshape", _patches(g, x, layer, shape, spatial), g.ints([0, groups, c, k, p]))
    Wg = g.const(np.reshape(W, (groups, o // groups, c, k)))
    y = g.op("Einsum", patches, Wg, equation="ngckp,gock->ngop")
    y = g.sym(g.op("Reshape", y, g.ints([0, o, *spatial])))
    if layer.bias:
        y = y + g.const(np.reshape(params[1], (o,) + (1,) * len(spatial)))
    return y


def _max_pool(g: Graph, layer: Any, params: tuple, state: tuple, x: Sym, shape: tuple) -> Sym:
    kernel, stride, _, _ = _windows(layer)
    return g.sym(g.op("MaxPool", x, kernel_shape=list(kernel), strides=list(stride)))


def _avg_pool(g: Graph, layer: Any, params: tuple, state: tuple, x: Sym, shape: tuple) -> Sym:
    """ONNX's AveragePool in float32; in float64 the mean of the window's taps."""
    kernel, stride, _, _ = _windows(layer)
    if g.dtype == np.float32:
        return g.sym(g.op("AveragePool", x, kernel_shape=list(kernel), strides=list(stride)))
    spatial = layer.output_shape(shape)[1:]
    return g.sym(g.reduce_mean(_patches(g, x, layer, shape, spatial), (2,), keepdims=False))


def _global_avg_pool(
    g: Graph, layer: Any, params: tuple, state: tuple, x: Sym, shape: tuple
) -> Sym:
    return g.sym(g.reduce_mean(x, tuple(range(2, 1 + len(shape))), keepdims=False))


def _batch_norm(g: Graph, layer: Any, params: tuple, state: tuple, x: Sym, shape: tuple) -> Sym:
    """gamma (x - mu) / sqrt(var + eps) + beta per channel, in backendnn's order of
    operations: mu and 1 / sqrt(var + eps) from the running statistics (constants), or
    (``track_running_stats=False``) the batch's own."""
    column = (layer.num_features,) + (1,) * (len(shape) - 1)
    if layer.track_running_stats:
        inv_std = 1.0 / np.sqrt(state[1] + np.asarray(layer.eps, state[1].dtype))
        centred = x - g.const(np.reshape(state[0], column))
        y = centred * g.const(np.reshape(inv_std, column))
    else:
        axes = (0, *range(2, 1 + len(shape)))
        centred = x - g.reduce_mean(x, axes, keepdims=True)
        var = g.sym(g.reduce_mean(centred * centred, axes, keepdims=True))
        y = centred * (1.0 / g.sym(g.op("Sqrt", var + layer.eps)))
    if layer.affine:
        y = y * g.const(np.reshape(params[0], column))
        if layer.bias:
            y = y + g.const(np.reshape(params[1], column))
    return y


def _layer_norm(g: Graph, layer: Any, params: tuple, state: tuple, x: Sym, shape: tuple) -> Sym:
    """weight (x - mu) / sqrt(var + eps) + bias over the trailing axes, with the variance
    of the centred x, as backendnn computes it: ONNX Runtime's LayerNormalization takes
    E[x^2] - E[x]^2, which cancels (2.5e-10 relative error in float64 on random inputs)."""
    axes = tuple(range(1 + len(shape) - len(layer.normalized_shape), 1 + len(shape)))
    centred = x - g.reduce_mean(x, axes, keepdims=True)
    var = g.sym(g.reduce_mean(centred * centred, axes, keepdims=True))
    y = centred * (1.0 / g.sym(g.op("Sqrt", var + layer.eps)))
    if layer.elementwise_affine:
        y = y * g.const(params[0])
        if layer.bias:
            y = y + g.const(params[1])
    return y


def _residual(g: Graph, layer: Any, params: tuple, state: tuple, x: Sym, shape: tuple) -> Sym:
    p_split = layer._split(params, "parameters")
    s_split = layer._split(tuple(state), "buffers") if state else None
    outs = []
    for b, branch in enumerate(layer._branches()):
        states = s_split[b] if s_split is not None else [()] * len(branch)
        outs.append(emit_layers(g, branch, p_split[b], states, x, shape) if branch else x)
    return outs[0] + outs[1]


_LAYERS: dict[type, Any] = {
    L.Dense: _dense,
    L.GatedDense: _gated_dense,
    L.Activation: _activation,
    L.Flatten: _flatten,
    L.Dropout: _identity,
    L.Conv1d: _conv,
    L.Conv2d: _conv,
    L.MaxPool1d: _max_pool,
    L.MaxPool2d: _max_pool,
    L.AvgPool1d: _avg_pool,
    L.AvgPool2d: _avg_pool,
    L.GlobalAvgPool1d: _global_avg_pool,
    L.GlobalAvgPool2d: _global_avg_pool,
    L.BatchNorm1d: _batch_norm,
    L.BatchNorm2d: _batch_norm,
    L.LayerNorm: _layer_norm,
    L.Residual: _residual,
}


def emit_layers(
    g: Graph, layers: Any, params: Any, states: Any, x: Sym, shape: tuple[int, ...]
) -> Sym:
    """``layers`` applied in inference mode to ``x``, whose samples have ``shape``: one
    parameter tuple and one state tuple (NumPy arrays of the graph's dtype) per layer."""
    for i, (layer, p, s) in enumerate(zip(layers, params, states)):
        emit = _LAYERS.get(type(layer))
        if emit is None:
            raise UnsupportedError(
                f"export_onnx: layer {i} ({layer!r}, {type(layer).__qualname__}) has no ONNX "
                f"form; the export covers {', '.join(t.__name__ for t in _LAYERS)}"
            )
        x = emit(g, layer, tuple(p), tuple(s), x, shape)
        shape = tuple(layer.output_shape(shape))
    return x
