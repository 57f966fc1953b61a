"""Layers with a forward that keeps what its backward needs (notes, eqs. 14-20 and 26-35).

Arrays are batch-major: a row is a sample, so the notes' column form
z = W a + b becomes z = a W + b with W of shape (n_in, n_out), and the backward
pass of eqs. 33-35 reads ::

    dW = a^T delta,   db = sum_rows delta,   d(a) = delta W^T.

No layer changes an array it is given. One it has just made itself (the result of
``x @ W``) it may update with an in-place operator where the dtype stays the same: the
standard defines them, and on JAX, whose arrays are immutable, Python rebinds the name
instead (same result, still one code path).

A layer holds no arrays. Its parameters are a tuple of arrays passed in and out, so
a network's parameters are plain data (flattened for L-BFGS and gradient checking)
and forward + backward is a pure function that ``jax.jit`` compiles::

    y, cache = layer.forward(params, x)
    dx, grads = layer.backward(params, cache, dy)   # grads matches params

Images are NCHW, (n_samples, channels, height, width). :class:`Conv2d` is a matrix
product over image patches (im2col); its backward pass is written out the same way
(dW = delta patches^T, db = sum of delta, dx = col2im(W^T delta), W of shape
(out, in*kh*kw) and the patches (in*kh*kw, positions)), with the array library's
own convolution behind ``_backend`` where it has one.

The package imports :mod:`backendnn.activations` and ``_backend``; its modules: ``base``
(the protocol), ``dense``, ``activation``, ``shape``, ``windows`` (im2col, col2im and the
window arithmetic), ``conv`` (Conv1d, Conv2d), ``pool`` (the 1-D and 2-D max, average and
global pools), ``norm`` (BatchNorm1d, BatchNorm2d), ``layernorm`` (LayerNorm), ``dropout``
(Dropout), ``residual`` (Residual).
"""

from .activation import Activation
from .base import Context, Layer, Param
from .conv import Conv1d, Conv2d
from .dense import Dense, GatedDense
from .dropout import Dropout
from .layernorm import LayerNorm
from .norm import BatchNorm1d, BatchNorm2d
from .pool import (
    AvgPool1d,
    AvgPool2d,
    GlobalAvgPool1d,
    GlobalAvgPool2d,
    MaxPool1d,
    MaxPool2d,
)
from .residual import Residual
from .shape import Flatten

__all__ = [
    "Activation",
    "AvgPool1d",
    "AvgPool2d",
    "BatchNorm1d",
    "BatchNorm2d",
    "Conv1d",
    "Conv2d",
    "Dense",
    "Dropout",
    "Flatten",
    "GatedDense",
    "GlobalAvgPool1d",
    "GlobalAvgPool2d",
    "Context",
    "Layer",
    "LayerNorm",
    "MaxPool1d",
    "MaxPool2d",
    "Param",
    "Residual",
]
