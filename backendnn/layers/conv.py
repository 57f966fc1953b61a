"""Convolution as a matrix product over patches (im2col, :mod:`backendnn.layers.windows`):
:class:`Conv2d`, and :class:`Conv1d` (a Conv2d on images of height one).

Per sample and group g, with the patches P_ng of x (one column per window), the
convolution is one matrix product Y_ng = W_g P_ng + b; its backward is written out the
same way (dW_g = sum_n Delta_ng P_ng^T, dx = col2im(W_g^T Delta_ng)), with the array
library's own convolution behind ``_backend`` where it has one.

Imports ``_backend``, :mod:`backendnn.layers.base` and :mod:`backendnn.layers.windows`.
"""

from __future__ import annotations

from typing import Any

from .. import _backend
from .._backend import array_namespace
from .base import (
    INFERENCE,
    Context,
    Layer,
    Param,
    _add_bias,
    _promote,
    bias,
    positive_int,
    size,
    weight,
)
from .windows import (
    Pair,
    _ints,
    _padding,
    _short,
    _sides,
    _with_height,
    _without_height,
    check_input,
    check_shape,
    col2im,
    im2col,
    output_size,
)

# --------------------------------------------------------------------------- Conv2d


class Conv2d(Layer):
    """2-d convolution (cross-correlation) y = W * x + b of NCHW images, as PyTorch's.

    Forward: with G groups of C/G input and O/G output channels (output channel o reads
    the input channels of its group g = o // (O/G) only), ::

        y[n, o, h', w'] = b[o] + sum_{c, i, j} W[o, c, i, j] x_pad[n, g C/G + c,
                          sh h' + dh i, sw w' + dw j],

    computed as one batched matrix product over the patches (``im2col``), per sample
    and group ::

        Y_ng = W_g P_ng + b,   W_g of shape (O/G, C/G kh kw),   P_ng of shape (C/G kh kw, H' W').

    Backward, with Delta_ng = dy_ng as an (O/G, H' W') matrix (eqs. 33-35 with the patches
    as the layer input)::

        dW_g = sum_n Delta_ng P_ng^T  (patches^T delta),   db = sum of dy over n, h', w',
        dP_ng = W_g^T Delta_ng,   dx = col2im(dP)  (each patch entry back onto its pixel).

    Where the array library has a native convolution (torch, JAX),
    ``_backend.native_conv2d`` and its two gradient convolutions compute the same three
    results (``native_conv2d_weight_grad`` for dW, ``native_conv2d_input_grad`` for dx);
    elsewhere (NumPy, CuPy, array-api-strict) the im2col path above runs. An x and W of
    two dtypes are first cast to ``result_type(x, W)``, so y has that dtype everywhere.

    Parameters
    ----------
    in_channels : int
        Number of input channels C (divisible by ``groups``).
    out_channels : int
        Number of output channels (filters) O (divisible by ``groups``).
    kernel_size : int or pair of int
        Window (kh, kw); an int k means (k, k).
    stride : int or pair of int, default 1
        Step (sh, sw) between windows.
    padding : int, pair of int, "same" or "valid", default 0
        Zeros (ph, pw) added on each side of the image (top and bottom, left and right);
        ``"valid"``: none; ``"same"`` (stride 1 only): d (k - 1) in all on each axis, so
        y has x's size, the odd one at the bottom (right), as PyTorch.
    dilation : int or pair of int, default 1
        Step (dh, dw) between the taps of a window.
    groups : int, default 1
        Number of groups G of channels convolved apart; ``groups=in_channels`` is a
        depthwise convolution.
    bias : bool, default True
        Whether the layer has a bias b; without one its parameters are ``(W,)``.

    Raises
    ------
    ValueError
        If a channel count or ``groups`` is not a positive int or the channels are not
        divisible by ``groups``, kernel_size, stride or dilation is not a positive int or
        pair, padding not a non-negative int or pair, "same" or "valid", or "same" comes
        with a stride; in ``forward`` and ``output_shape``, if x is not of shape
        (n_samples, in_channels, H, W) or the window does not fit in the padded image.

    Examples
    --------
    >>> import numpy as np
    >>> from backendnn.layers import Conv2d
    >>> layer = Conv2d(1, 2, 3, padding=1)
    >>> layer, layer.param_shapes()
    (Conv2d(1, 2, kernel_size=3, padding=1), ((2, 1, 3, 3), (2,)))
    >>> W, b = np.ones((2, 1, 3, 3)), np.array([0.0, 1.0])
    >>> y, cache = layer.forward((W, b), np.ones((1, 1, 3, 3)))
    >>> y[0, 0].tolist()  # the number of pixels under each window
    [[4.0, 6.0, 4.0], [6.0, 9.0, 6.0], [4.0, 6.0, 4.0]]
    >>> dx, (dW, db) = layer.backward((W, b), cache, np.ones_like(y))
    >>> dx[0, 0].tolist()  # per pixel: the windows over it, times 2 output channels
    [[8.0, 12.0, 8.0], [12.0, 18.0, 12.0], [8.0, 12.0, 8.0]]
    >>> dW[0, 0].tolist(), db.tolist()  # dW: each kernel offset's pixels summed
    ([[4.0, 6.0, 4.0], [6.0, 9.0, 6.0], [4.0, 6.0, 4.0]], [9.0, 9.0])
    >>> Conv2d(3, 4, (2, 3), stride=2).output_shape((3, 6, 7))  # (6 - 2) // 2 + 1, (7 - 3) // 2 + 1
    (4, 3, 3)
    >>> depthwise = Conv2d(4, 4, 3, padding="same", dilation=2, groups=4)
    >>> depthwise.param_shapes(), depthwise.fans(), depthwise.output_shape((4, 9, 9))
    (((4, 1, 3, 3), (4,)), (9, 36), (4, 9, 9))
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int | Pair,
        stride: int | Pair = 1,
        padding: int | Pair | str = 0,
        dilation: int | Pair = 1,
        groups: int = 1,
        bias: bool = True,
    ):
        self.in_channels = positive_int("Conv2d", "in_channels", in_channels)
        self.out_channels = positive_int("Conv2d", "out_channels", out_channels)
        self.kernel_size = _ints("Conv2d", "kernel_size", kernel_size, 2)
        self.stride = _ints("Conv2d", "stride", stride, 2)
        self.padding = _padding("Conv2d", padding, 2, self.stride)
        self.dilation = _ints("Conv2d", "dilation", dilation, 2)
        self.groups = _groups("Conv2d", groups, self.in_channels, self.out_channels)
        self.bias = bool(bias)
        self._sides = _sides(self.padding, self.kernel_size, self.dilation)

    def config(self) -> dict[str, Any]:
        return {
            "in_channels": self.in_channels, "out_channels": self.out_channels,
            "kernel_size": self.kernel_size, "stride": self.stride, "padding": self.padding,
            "dilation": self.dilation, "groups": self.groups, "bias": self.bias,
        }  # fmt: skip

    def parameters(self) -> tuple[Param, ...]:
        """W of shape (out_channels, in_channels / groups, kh, kw) (PyTorch's layout) at
        PyTorch's fans (C/G kh kw, O kh kw), and b of shape (out_channels,).
        """
        shape = (self.out_channels, self.in_channels // self.groups, *self.kernel_size)
        taps = size(shape[2:])
        W = weight("W", shape, (shape[1] * taps, shape[0] * taps))
        return (W, bias("b", (self.out_channels,))) if self.bias else (W,)

    def output_shape(self, shape: tuple[int, ...]) -> tuple[int, ...]:
        """(out_channels, H', W'), H' = (H + pt + pb - dh (kh - 1) - 1) // sh + 1, W' alike."""
        check_shape(self, shape, self.in_channels, *self._window())
        return (self.out_channels, *output_size(shape[1:], *self._geometry()))

    def workspace(self, shape: tuple[int, ...]) -> int:
        """The portable path's: the padded copy of x (C (H + pt + pb)(W + pl + pr), when
        padded) and the patches (C kh kw H' W'); the native convolutions need less."""
        c, h, w = shape
        (pt, pb), (pl, pr) = self._sides
        padded = c * (h + pt + pb) * (w + pl + pr) if pt + pb + pl + pr else 0
        return padded + c * size(self.kernel_size) * size(self.output_shape(shape)[1:])

    def forward(self, params: tuple, x: Any, ctx: Context = INFERENCE) -> tuple[Any, Any]:
        """y = W * x + b: per sample and group Y_ng = W_g P_ng + b, or the native convolution."""
        check_input(self, x, self.in_channels, *self._window())
        W = params[0]
        xp = array_namespace(x, W)
        if x.dtype != W.dtype:
            x, W = _promote(xp, x, W)
        native = (self.stride, self._sides, self.dilation, self.groups)
        y = _backend.native_conv2d(x, W, *native)
        patches = None
        if y is None:
            patches = im2col(x, *self._geometry())
            n, g, o, ck, (oh, ow) = (
                x.shape[0],
                self.groups,
                W.shape[0],
                _rows(W),
                patches.shape[-2:],
            )
            Wg = xp.reshape(W, (g, o // g, ck))
            y = xp.reshape(Wg @ xp.reshape(patches, (n, g, ck, oh * ow)), (n, o, oh, ow))
        if self.bias:
            y = _add_bias(y, xp.reshape(params[1], (self.out_channels, 1, 1)))
        return y, (x, patches)

    def backward(
        self, params: tuple, cache: Any, dy: Any, need_dx: bool = True
    ) -> tuple[Any, tuple]:
        """dW, db and dx of the class docstring (col2im, or the native gradient convolutions)."""
        x, patches = cache
        W = params[0]
        xp = array_namespace(dy, W)
        if not x.dtype == W.dtype == dy.dtype:
            x, W, dy = _promote(xp, x, W, dy)
            patches = None if patches is None else xp.astype(patches, x.dtype, copy=False)
        native = (self.stride, self._sides, self.dilation, self.groups)
        n, o, oh, ow = dy.shape
        g, ck = self.groups, _rows(W)
        delta = xp.reshape(dy, (n, g, o // g, oh * ow))
        dW = _backend.native_conv2d_weight_grad(x, dy, W.shape, *native)
        if dW is None:
            if patches is None:
                patches = im2col(x, *self._geometry())
            P = xp.reshape(patches, (n, g, ck, oh * ow))
            dW = xp.reshape(xp.sum(delta @ P.mT, axis=0), W.shape)
        dx = None
        if need_dx:
            dx = _backend.native_conv2d_input_grad(dy, W, x.shape, *native)
            if dx is None:
                dP = xp.reshape(W, (g, o // g, ck)).mT @ delta
                dP = xp.reshape(dP, (n, x.shape[1], *W.shape[2:], oh, ow))
                dx = col2im(dP, x.shape, *self._geometry())
        return dx, ((dW, xp.sum(dy, axis=(0, 2, 3))) if self.bias else (dW,))

    def _window(self) -> tuple:
        """(kernel, padding sides, dilation), as :func:`check_shape` takes them."""
        return self.kernel_size, self._sides, self.dilation

    def _geometry(self) -> tuple:
        """(kernel, stride, padding sides, dilation), as :func:`im2col` takes them."""
        return self.kernel_size, self.stride, self._sides, self.dilation

    def __repr__(self) -> str:
        return _conv_repr(self)


class Conv1d(Layer):
    """1-d convolution (cross-correlation) y = W * x + b of NCL sequences, as PyTorch's: a
    :class:`Conv2d` on images of height one.

    Forward: with G groups of C/G input and O/G output channels, ::

        y[n, o, l'] = b[o] + sum_{c, i} W[o, c, i] x_pad[n, g C/G + c, s l' + d i],
        g = o // (O/G),

    computed as Conv2d's on x reshaped to (N, C, 1, L) with W as (O, C/G, 1, k) (a
    reshape, no copy), and y reshaped back to (N, O, L').

    Backward: Conv2d's (dW_g = sum_n Delta_ng P_ng^T, db = sum of dy over n, l',
    dx = col2im(W_g^T Delta_ng)), reshaped back to W's and x's shapes.

    Parameters
    ----------
    in_channels : int
        Number of input channels C (divisible by ``groups``).
    out_channels : int
        Number of output channels (filters) O (divisible by ``groups``).
    kernel_size : int
        Window length k.
    stride : int, default 1
        Step between windows.
    padding : int, "same" or "valid", default 0
        Zeros added at each end; ``"valid"``: none; ``"same"`` (stride 1 only):
        d (k - 1) in all, so y has x's length, the odd one at the end, as PyTorch.
    dilation : int, default 1
        Step between the taps of a window.
    groups : int, default 1
        Number of groups G of channels convolved apart; ``groups=in_channels`` is a
        depthwise convolution.
    bias : bool, default True
        Whether the layer has a bias b; without one its parameters are ``(W,)``.

    Raises
    ------
    ValueError
        As :class:`Conv2d`'s, for ints in place of pairs and sequences (n_samples,
        in_channels, L) in place of images.

    Examples
    --------
    >>> import numpy as np
    >>> from backendnn.layers import Conv1d
    >>> layer = Conv1d(1, 1, 3, padding="same", bias=False)
    >>> layer, layer.param_shapes(), layer.output_shape((1, 5))
    (Conv1d(1, 1, kernel_size=3, padding='same', bias=False), ((1, 1, 3),), (1, 5))
    >>> W = np.array([[[1.0, 0.0, -1.0]]])
    >>> y, cache = layer.forward((W,), np.array([[[1.0, 2.0, 4.0, 8.0, 16.0]]]))
    >>> y.tolist()  # x[l - 1] - x[l + 1]
    [[[-2.0, -3.0, -6.0, -12.0, 8.0]]]
    >>> dx, (dW,) = layer.backward((W,), cache, np.ones_like(y))
    >>> dx.tolist(), dW.tolist()
    ([[[1.0, 0.0, 0.0, 0.0, -1.0]]], [[[15.0, 31.0, 30.0]]])
    >>> grouped = Conv1d(4, 6, 5, stride=2, dilation=2, groups=2)
    >>> grouped.param_shapes(), grouped.fans(), grouped.output_shape((4, 20))
    (((6, 2, 5), (6,)), (10, 30), (6, 6))
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int,
        stride: int = 1,
        padding: int | str = 0,
        dilation: int = 1,
        groups: int = 1,
        bias: bool = True,
    ):
        self.in_channels = positive_int("Conv1d", "in_channels", in_channels)
        self.out_channels = positive_int("Conv1d", "out_channels", out_channels)
        (self.kernel_size,) = _ints("Conv1d", "kernel_size", kernel_size, 1)
        (self.stride,) = _ints("Conv1d", "stride", stride, 1)
        self.padding = _padding("Conv1d", padding, 1, (self.stride,))
        (self.dilation,) = _ints("Conv1d", "dilation", dilation, 1)
        self.groups = _groups("Conv1d", groups, self.in_channels, self.out_channels)
        self.bias = bool(bias)
        self._2d = Conv2d(
            self.in_channels, self.out_channels, (1, self.kernel_size), (1, self.stride),
            self.padding if isinstance(self.padding, str) else (0, self.padding[0]),
            (1, self.dilation), self.groups, self.bias,
        )  # fmt: skip

    def config(self) -> dict[str, Any]:
        padding = self.padding if isinstance(self.padding, str) else self.padding[0]
        return {
            "in_channels": self.in_channels, "out_channels": self.out_channels,
            "kernel_size": self.kernel_size, "stride": self.stride, "padding": padding,
            "dilation": self.dilation, "groups": self.groups, "bias": self.bias,
        }  # fmt: skip

    def parameters(self) -> tuple[Param, ...]:
        """W of shape (out_channels, in_channels / groups, k) (PyTorch's layout) at PyTorch's
        fans (C/G k, O k), and b of shape (out_channels,).
        """
        k, c = self.kernel_size, self.in_channels // self.groups
        W = weight("W", (self.out_channels, c, k), (c * k, self.out_channels * k))
        return (W, bias("b", (self.out_channels,))) if self.bias else (W,)

    def output_shape(self, shape: tuple[int, ...]) -> tuple[int, ...]:
        """(out_channels, L'), L' = (L + p_before + p_after - d (k - 1) - 1) // s + 1."""
        check_shape(self, shape, self.in_channels, *self._window())
        o, _, length = self._2d.output_shape((shape[0], 1, shape[1]))
        return (o, length)

    def workspace(self, shape: tuple[int, ...]) -> int:
        """:meth:`Conv2d.workspace` of x as (C, 1, L)."""
        return self._2d.workspace((shape[0], 1, shape[1]))

    def forward(self, params: tuple, x: Any, ctx: Context = INFERENCE) -> tuple[Any, Any]:
        """y = W * x + b, :meth:`Conv2d.forward` on x as (N, C, 1, L)."""
        check_input(self, x, self.in_channels, *self._window())
        y, cache = self._2d.forward(self._params2d(params), _with_height(x))
        return _without_height(y), cache

    def backward(
        self, params: tuple, cache: Any, dy: Any, need_dx: bool = True
    ) -> tuple[Any, tuple]:
        """:meth:`Conv2d.backward` on dy as (N, O, 1, L'), reshaped back."""
        dx, (dW, *db) = self._2d.backward(self._params2d(params), cache, _with_height(dy), need_dx)
        dW = array_namespace(dW).reshape(dW, params[0].shape)
        return (None if dx is None else _without_height(dx)), (dW, *db)

    def _window(self) -> tuple:
        """(kernel, padding sides, dilation) of the one axis, as :func:`check_shape` takes them."""
        return (self.kernel_size,), self._2d._sides[1:], (self.dilation,)

    def _params2d(self, params: tuple) -> tuple:
        """(W, b) with W as Conv2d's (O, C/G, 1, k)."""
        W = params[0]
        return (array_namespace(W).reshape(W, (*W.shape[:2], 1, W.shape[2])), *params[1:])

    def __repr__(self) -> str:
        return _conv_repr(self)


def _groups(owner: str, groups: Any, in_channels: int, out_channels: int) -> int:
    groups = positive_int(owner, "groups", groups)
    for name, channels in (("in_channels", in_channels), ("out_channels", out_channels)):
        if channels % groups:
            raise ValueError(
                f"{owner}: {name} must be divisible by groups, got {name}={channels} and "
                f"groups={groups}"
            )
    return groups


def _conv_repr(layer: Any) -> str:
    """PyTorch's form: the channels, the kernel, then the arguments that differ from their
    defaults (an int where all axes agree)."""
    cfg = layer.config()
    args = [
        f"{cfg['in_channels']}, {cfg['out_channels']}, kernel_size={_as_shown(cfg['kernel_size'])}"
    ]
    for name, default in (("stride", 1), ("padding", 0), ("dilation", 1), ("groups", 1)):
        if cfg[name] not in (default, (default, default)):
            args.append(f"{name}={_as_shown(cfg[name])}")
    if not cfg["bias"]:
        args.append("bias=False")
    return f"{type(layer).__name__}({', '.join(args)})"


def _as_shown(value: Any) -> str:
    return repr(_short(value)) if isinstance(value, tuple) else repr(value)


def _rows(W: Any) -> int:
    """C/G kh kw: the rows of each patch matrix P_ng (columns of W_g)."""
    return int(W.shape[1] * W.shape[2] * W.shape[3])
