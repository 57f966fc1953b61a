"""2-d convolution as a matrix product over image patches (im2col): :class:`Conv2d`, and
the window helpers the pooling layers share (:func:`windows`, :func:`add_windows`,
:func:`im2col`, :func:`col2im`).

Images are NCHW, x of shape (N, C, H, W). A window of kh x kw pixels moves with stride
(sh, sw) over x zero-padded by (ph, pw) on each side, so there are H' x W' windows,

    H' = (H + 2 ph - kh) // sh + 1,   W' = (W + 2 pw - kw) // sw + 1.

``im2col`` gathers, for each kernel offset (i, j), the pixel x_pad[n, c, i + sh h', j + sw w']
of every window (h', w'): the patches, of shape (N, C, kh, kw, H', W'). Read per sample as
a (C kh kw) x (H' W') matrix P_n (one column per window, Caffe's layout), the convolution
is one matrix product Y_n = W P_n and needs no transposition in either direction.
``col2im`` is the adjoint of ``im2col``: every patch entry is added back onto the pixel it
came from, overlapping windows summing. Underneath are ``windows`` (the kh kw strided
slices, one per kernel offset) and its adjoint ``add_windows`` (shifts by concatenated
zeros, sums, and one interleave per stride phase): slicing, stacking and concatenation
only, so no array is written to (JAX arrays are immutable) and nothing is scattered.

Imports ``_backend`` and :mod:`backendnn.layers.base`.
"""

from __future__ import annotations

import numbers
from collections.abc import Sequence
from typing import Any

from .. import _backend
from .._backend import array_namespace
from .base import INFERENCE, Context, Layer, Param, _add_bias, _promote, bias, weight

Pair = tuple[int, int]


# --------------------------------------------------------------------------- arguments


def _pair(name: str, value: Any, minimum: int = 1) -> Pair:
    """``value`` (an int or a pair of ints, each >= ``minimum``) as a pair."""
    items = tuple(value) if isinstance(value, (tuple, list)) else (value, value)
    ok = len(items) == 2 and all(
        isinstance(v, numbers.Integral) and not isinstance(v, bool) and int(v) >= minimum
        for v in items
    )
    if not ok:
        kind = "positive" if minimum == 1 else "non-negative"
        raise ValueError(
            f"{name} must be a {kind} int or a pair (height, width) of {kind} ints, got {value!r}"
        )
    return int(items[0]), int(items[1])


def _positive(name: str, value: Any) -> int:
    if not (
        isinstance(value, numbers.Integral) and not isinstance(value, bool) and int(value) >= 1
    ):
        raise ValueError(f"{name} must be a positive int, got {value!r}")
    return int(value)


def _short(pair: Pair) -> Any:
    """A pair as its repr shows it: the int itself when both sides are equal."""
    return pair[0] if pair[0] == pair[1] else pair


def check_images(
    layer: Any, x: Any, channels: int | None, kernel: Pair, padding: Pair = (0, 0)
) -> None:
    """Raise a ValueError saying what ``layer`` expects unless ``x`` is an (N, C, H, W)
    batch with ``channels`` channels (any number if None) that the kernel fits in."""
    if x.ndim != 4:
        c = "C" if channels is None else str(channels)
        raise ValueError(
            f"{layer!r} expects images of shape (n_samples, {c}, height, width) (NCHW), got an "
            f"array of shape {tuple(x.shape)}; backendnn.tensors.to_nchw converts NHWC images"
        )
    check_image_shape(layer, tuple(x.shape[1:]), channels, kernel, padding)


def check_image_shape(
    layer: Any, shape: tuple[int, ...], channels: int | None, kernel: Pair, padding: Pair = (0, 0)
) -> None:
    """As :func:`check_images`, for the shape of one sample (C, H, W)."""
    c = "C" if channels is None else str(channels)
    if len(shape) != 3 or (channels is not None and shape[0] != channels):
        raise ValueError(
            f"{layer!r} expects images of shape (n_samples, {c}, height, width) (NCHW), got "
            f"samples of shape {tuple(shape)}; backendnn.tensors.to_nchw converts NHWC images"
        )
    size = (shape[1] + 2 * padding[0], shape[2] + 2 * padding[1])
    if size[0] < kernel[0] or size[1] < kernel[1]:
        raise ValueError(
            f"{layer!r}: a {kernel[0]}x{kernel[1]} window does not fit in images of "
            f"{shape[1]}x{shape[2]} pixels (padded: {size[0]}x{size[1]}); use larger images, "
            "a smaller kernel or more padding"
        )


# --------------------------------------------------------------------------- im2col, col2im


def output_size(size: Sequence[int], kernel: Pair, stride: Pair, padding: Pair) -> Pair:
    """(H', W') = ((H + 2 ph - kh) // sh + 1, (W + 2 pw - kw) // sw + 1)."""
    h, w = ((n + 2 * p - k) // s + 1 for n, k, s, p in zip(size, kernel, stride, padding))
    return h, w


def _zeros_around(a: Any, before: int, after: int, axis: int, xp: Any) -> Any:
    """``a`` with ``before`` and ``after`` zeros on each side of ``axis`` (concatenation)."""
    if before == after == 0:
        return a

    def zeros(n: int) -> list:
        shape = tuple(n if k == axis else m for k, m in enumerate(a.shape))
        return [xp.zeros(shape, dtype=a.dtype, device=_backend.device(a))] if n else []

    return xp.concat(zeros(before) + [a] + zeros(after), axis=axis)


def _sum(arrays: list) -> Any:
    """The sum of a non-empty list of arrays of one dtype: added in place into a0 + a1, an
    array made here (never into a caller's)."""
    if len(arrays) == 1:
        return arrays[0]
    total = arrays[0] + arrays[1]
    for a in arrays[2:]:
        total += a  # on JAX, Python rebinds total to total + a
    return total


def windows(x: Any, kernel: Pair, stride: Pair = (1, 1), padding: Pair = (0, 0)) -> list:
    """For each kernel offset (i, j), row-major, x_pad[:, :, i + sh h', j + sw w'] of shape
    (N, C, H', W'): the offset's pixel of every window (strided slices, no copies)."""
    xp = array_namespace(x)
    (kh, kw), (sh, sw), (ph, pw) = kernel, stride, padding
    oh, ow = output_size(x.shape[2:], kernel, stride, padding)
    x = _zeros_around(_zeros_around(x, ph, ph, 2, xp), pw, pw, 3, xp)
    return [
        x[:, :, i : i + sh * (oh - 1) + 1 : sh, j : j + sw * (ow - 1) + 1 : sw]
        for i in range(kh)
        for j in range(kw)
    ]


def im2col(x: Any, kernel: Pair, stride: Pair = (1, 1), padding: Pair = (0, 0)) -> Any:
    """The patches of x: p[n, c, i, j, h', w'] = x_pad[n, c, i + sh h', j + sw w'].

    Parameters
    ----------
    x : array of shape (N, C, H, W)
        The images.
    kernel, stride, padding : pair of int
        The window (kh, kw), the step (sh, sw) between windows, and the zeros (ph, pw)
        added on each side of x.

    Returns
    -------
    patches : array of shape (N, C, kh, kw, H', W')
        Window (h', w')'s pixels, in x's dtype; reshaped to (N, C kh kw, H' W') it is the
        matrix P_n of each sample, one column per window.

    Examples
    --------
    >>> import numpy as np
    >>> from backendnn.layers.conv import im2col
    >>> x = np.arange(9.0).reshape(1, 1, 3, 3)
    >>> p = im2col(x, (2, 2))
    >>> p.shape
    (1, 1, 2, 2, 2, 2)
    >>> p[0, 0, :, :, 0, 1].tolist()  # the window at h' = 0, w' = 1
    [[1.0, 2.0], [4.0, 5.0]]
    """
    xp = array_namespace(x)
    n, c = x.shape[:2]
    oh, ow = output_size(x.shape[2:], kernel, stride, padding)
    stacked = xp.stack(windows(x, kernel, stride, padding), axis=2)
    return xp.reshape(stacked, (n, c, kernel[0], kernel[1], oh, ow))


def col2im(
    patches: Any,
    input_shape: Sequence[int],
    kernel: Pair,
    stride: Pair = (1, 1),
    padding: Pair = (0, 0),
) -> Any:
    """The adjoint of :func:`im2col`: dx[n, c, h, w] = sum of dp[n, c, i, j, h', w'] over the
    (i, j, h', w') with i + sh h' = h + ph and j + sw w' = w + pw.

    Each patch entry goes back onto the pixel it came from, overlapping windows adding up
    (:func:`add_windows` of the kh kw slices dp[:, :, i, j]).

    Parameters
    ----------
    patches : array of shape (N, C, kh, kw, H', W')
        dL/dpatches.
    input_shape : tuple of int
        (N, C, H, W), the shape of the im2col input.
    kernel, stride, padding : pair of int
        As given to :func:`im2col`.

    Returns
    -------
    dx : array of shape (N, C, H, W)

    Examples
    --------
    >>> import numpy as np
    >>> from backendnn.layers.conv import col2im
    >>> col2im(np.ones((1, 1, 2, 2, 2, 2)), (1, 1, 3, 3), (2, 2))[0, 0].tolist()
    [[1.0, 2.0, 1.0], [2.0, 4.0, 2.0], [1.0, 2.0, 1.0]]
    """
    terms = [patches[:, :, i, j, ...] for i in range(kernel[0]) for j in range(kernel[1])]
    return add_windows(terms, input_shape, kernel, stride, padding)


def add_windows(
    terms: Sequence[Any],
    input_shape: Sequence[int],
    kernel: Pair,
    stride: Pair = (1, 1),
    padding: Pair = (0, 0),
) -> Any:
    """The adjoint of :func:`windows`: the sum over the kernel offsets (i, j) of ``terms[i kw
    + j]`` (N, C, H', W') put back at pixels (i + sh h' - ph, j + sw w' - pw), cropped to
    (N, C, H, W).

    Padded row r = sh a + rh (phase rh = r mod sh) only receives the offsets i with
    i mod sh = rh, at a = h' + i // sh; so for each phase (rh, rw) the offsets' terms are
    shifted by (i // sh, j // sw) with concatenated zeros and summed (columns first, then
    rows) into a ceil(H_pad / sh) x ceil(W_pad / sw) grid, and the sh sw grids are
    interleaved by one stack and reshape (for non-overlapping windows, sh = kh and
    sw = kw, each grid is one term). The padding is then cropped off. No scatter, no
    array written to.
    """
    xp = array_namespace(*terms)
    n, c, h, w = input_shape
    (kh, kw), (sh, sw), (ph, pw) = kernel, stride, padding
    oh, ow = terms[0].shape[-2:]
    rows, cols = -(-(h + 2 * ph) // sh), -(-(w + 2 * pw) // sw)  # the grid of one phase
    grids = []
    for rh in range(sh):
        grid_row = []
        for rw in range(sw):
            if rh >= kh or rw >= kw:  # a kernel smaller than the stride: no window reaches
                dtype, dev = terms[0].dtype, _backend.device(terms[0])
                grid_row.append(xp.zeros((n, c, rows, cols), dtype=dtype, device=dev))
                continue
            shifted_rows = []
            for i in range(rh, kh, sh):
                # offsets (i, j) of this phase: shifted by j // sw and summed, then by i // sh
                line = _sum(
                    [
                        _zeros_around(terms[i * kw + j], j // sw, cols - j // sw - ow, 3, xp)
                        for j in range(rw, kw, sw)
                    ]
                )
                shifted_rows.append(_zeros_around(line, i // sh, rows - i // sh - oh, 2, xp))
            grid_row.append(_sum(shifted_rows))
        grids.append(grid_row)
    if sh == sw == 1:
        full = grids[0][0]
    else:  # padded pixel (sh a + rh, sw b + rw) is grids[rh][rw][:, :, a, b]
        full = xp.stack([xp.stack(g, axis=-1) for g in grids], axis=3)
        full = xp.reshape(full, (n, c, rows * sh, cols * sw))
    if full.shape[2:] == (h, w):
        return full
    return full[:, :, ph : ph + h, pw : pw + w]


# --------------------------------------------------------------------------- Conv2d


class Conv2d(Layer):
    """2-d convolution (cross-correlation) y = W * x + b of NCHW images, as PyTorch's.

    Forward: y[n, o, h', w'] = b[o] + sum_{c, i, j} W[o, c, i, j] x_pad[n, c, sh h' + i,
    sw w' + j], computed per sample as one matrix product over the patches
    (:func:`im2col`),

        Y_n = W2 P_n + b,   W2 = reshape(W, (O, C kh kw)),   P_n of shape (C kh kw, H' W').

    Backward, with Delta_n = reshape(dy_n, (O, H' W')) (eqs. 33-35 with the patches as the
    layer input):

        dW2 = sum_n Delta_n P_n^T     (patches^T delta: dW = reshape(dW2, W.shape)),
        db  = sum of dy over n, h', w',
        dP_n = W2^T Delta_n,   dx = col2im(dP)  (each patch entry back onto its pixel).

    Where the array library has a native convolution (torch, JAX),
    ``_backend.native_conv2d`` and its two gradient convolutions compute the same three
    results (``native_conv2d_weight_grad`` for dW, ``native_conv2d_input_grad`` for dx);
    elsewhere (NumPy, CuPy, array-api-strict) the im2col path above runs.

    Parameters
    ----------
    in_channels : int
        Number of input channels C.
    out_channels : int
        Number of output channels (filters) O.
    kernel_size : int or pair of int
        Window (kh, kw); an int k means (k, k).
    stride : int or pair of int, default 1
        Step (sh, sw) between windows.
    padding : int or pair of int, default 0
        Zeros (ph, pw) added on each side of the image (top and bottom, left and right).
    bias : bool, default True
        Whether the layer has a bias b; without one its parameters are ``(W,)``.

    Raises
    ------
    ValueError
        If a channel count is not a positive int, kernel_size or stride not a positive
        int or pair, padding not a non-negative int or pair.

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
    >>> dx.shape, dW[0, 0].tolist(), db.tolist()
    ((1, 1, 3, 3), [[4.0, 6.0, 4.0], [6.0, 9.0, 6.0], [4.0, 6.0, 4.0]], [9.0, 9.0])
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int | Pair,
        stride: int | Pair = 1,
        padding: int | Pair = 0,
        bias: bool = True,
    ):
        self.in_channels = _positive("in_channels", in_channels)
        self.out_channels = _positive("out_channels", out_channels)
        self.kernel_size = _pair("kernel_size", kernel_size)
        self.stride = _pair("stride", stride)
        self.padding = _pair("padding", padding, minimum=0)
        self.bias = bool(bias)

    def config(self) -> dict[str, Any]:
        return {
            "in_channels": self.in_channels, "out_channels": self.out_channels,
            "kernel_size": self.kernel_size, "stride": self.stride, "padding": self.padding,
            "bias": self.bias,
        }  # fmt: skip

    def parameters(self) -> tuple[Param, ...]:
        """W of shape (out_channels, in_channels, kh, kw) (PyTorch's layout), fans
        (C kh kw, O kh kw) as PyTorch's, and b of shape (out_channels,).

        Examples
        --------
        >>> from backendnn.layers import Conv2d
        >>> Conv2d(3, 8, (5, 3)).param_shapes(), Conv2d(3, 8, 5).fans()
        (((8, 3, 5, 3), (8,)), (75, 200))
        """
        k = self.kernel_size[0] * self.kernel_size[1]
        fans = (self.in_channels * k, self.out_channels * k)
        W = weight("W", (self.out_channels, self.in_channels, *self.kernel_size), fans)
        return (W, bias("b", (self.out_channels,))) if self.bias else (W,)

    def output_shape(self, shape: tuple[int, ...]) -> tuple[int, ...]:
        check_image_shape(self, shape, self.in_channels, self.kernel_size, self.padding)
        return (
            self.out_channels,
            *output_size(shape[1:], self.kernel_size, self.stride, self.padding),
        )

    def forward(self, params: tuple, x: Any, ctx: Context = INFERENCE) -> tuple[Any, Any]:
        """y = W * x + b: per sample Y_n = W2 P_n + b (the native convolution where there is one).

        Parameters
        ----------
        params : tuple of arrays
            ``(W, b)`` with W of shape (out_channels, in_channels, kh, kw) and b of shape
            (out_channels,); ``(W,)`` without a bias.
        x : array of shape (n_samples, in_channels, H, W)
            The images, NCHW.

        Returns
        -------
        y : array of shape (n_samples, out_channels, H', W')
            H' = (H + 2 ph - kh) // sh + 1, W' = (W + 2 pw - kw) // sw + 1.
        cache : tuple
            ``(x, patches)``: the input, and its :func:`im2col` patches (None on the
            native path). An x and W of two dtypes are first cast to
            ``result_type(x, W)``, so y has that dtype on every backend.

        Raises
        ------
        ValueError
            If x is not of shape (n_samples, in_channels, H, W), or the window does not
            fit in the padded image.

        Examples
        --------
        >>> import numpy as np
        >>> from backendnn.layers import Conv2d
        >>> W = np.ones((4, 3, 2, 2))
        >>> y, cache = Conv2d(3, 4, 2, stride=2, bias=False).forward((W,), np.ones((5, 3, 6, 7)))
        >>> y.shape
        (5, 4, 3, 3)
        """
        check_images(self, x, self.in_channels, self.kernel_size, self.padding)
        W = params[0]
        xp = array_namespace(x, W)
        if x.dtype != W.dtype:
            x, W = _promote(xp, x, W)
        y = _backend.native_conv2d(x, W, self.stride, self.padding)
        patches = None
        if y is None:
            patches = im2col(x, self.kernel_size, self.stride, self.padding)
            n, ck, (oh, ow) = x.shape[0], _rows(W), patches.shape[-2:]
            y = xp.reshape(W, (W.shape[0], ck)) @ xp.reshape(patches, (n, ck, oh * ow))
            y = xp.reshape(y, (n, W.shape[0], oh, ow))
        if self.bias:
            y = _add_bias(y, xp.reshape(params[1], (self.out_channels, 1, 1)))
        return y, (x, patches)

    def backward(
        self, params: tuple, cache: Any, dy: Any, need_dx: bool = True
    ) -> tuple[Any, tuple]:
        """dW = reshape(sum_n Delta_n P_n^T), db = sum of dy over n, h', w',
        dx = col2im(W2^T Delta) (or the native gradient convolutions).

        Parameters
        ----------
        params : tuple of arrays
            ``(W, b)`` or ``(W,)``, as given to :meth:`forward`.
        cache : tuple
            As returned by :meth:`forward`.
        dy : array of shape (n_samples, out_channels, H', W')
            dL/dy.
        need_dx : bool, default True
            Whether to form dx; False skips its convolution (a network's first layer).

        Returns
        -------
        dx : array of shape (n_samples, in_channels, H, W) or None
            dL/dx, or None when ``need_dx`` is False.
        grads : tuple of arrays
            ``(dW, db)`` shaped as ``(W, b)``; ``(dW,)`` without a bias.

        Examples
        --------
        >>> import numpy as np
        >>> from backendnn.layers import Conv2d
        >>> layer, W = Conv2d(1, 1, 2, bias=False), np.ones((1, 1, 2, 2))
        >>> y, cache = layer.forward((W,), np.arange(9.0).reshape(1, 1, 3, 3))
        >>> dx, (dW,) = layer.backward((W,), cache, np.ones_like(y))
        >>> dx[0, 0].tolist(), dW[0, 0].tolist()  # dW: each offset's pixels summed
        ([[1.0, 2.0, 1.0], [2.0, 4.0, 2.0], [1.0, 2.0, 1.0]], [[8.0, 12.0], [20.0, 24.0]])
        """
        x, patches = cache
        W = params[0]
        xp = array_namespace(dy, W)
        if not x.dtype == W.dtype == dy.dtype:
            x, W, dy = _promote(xp, x, W, dy)
            patches = None if patches is None else xp.astype(patches, x.dtype, copy=False)
        geometry = (self.kernel_size, self.stride, self.padding)
        n, o, oh, ow = dy.shape
        ck = _rows(W)
        delta = xp.reshape(dy, (n, o, oh * ow))
        dW = _backend.native_conv2d_weight_grad(x, dy, W.shape, self.stride, self.padding)
        if dW is None:
            if patches is None:
                patches = im2col(x, *geometry)
            dW2 = xp.sum(delta @ xp.reshape(patches, (n, ck, oh * ow)).mT, axis=0)
            dW = xp.reshape(dW2, W.shape)
        dx = None
        if need_dx:
            dx = _backend.native_conv2d_input_grad(dy, W, x.shape, self.stride, self.padding)
            if dx is None:
                dP = xp.reshape(W, (o, ck)).mT @ delta
                dP = xp.reshape(dP, (n, *W.shape[1:], oh, ow))
                dx = col2im(dP, x.shape, *geometry)
        return dx, ((dW, xp.sum(dy, axis=(0, 2, 3))) if self.bias else (dW,))

    def __repr__(self) -> str:
        args = [f"{self.in_channels}, {self.out_channels}, kernel_size={_short(self.kernel_size)}"]
        if self.stride != (1, 1):
            args.append(f"stride={_short(self.stride)}")
        if self.padding != (0, 0):
            args.append(f"padding={_short(self.padding)}")
        if not self.bias:
            args.append("bias=False")
        return f"Conv2d({', '.join(args)})"


def _rows(W: Any) -> int:
    """C kh kw: the rows of each patch matrix P_n (columns of W2)."""
    return int(W.shape[1] * W.shape[2] * W.shape[3])
