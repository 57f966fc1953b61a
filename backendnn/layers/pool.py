"""Pooling layers on NCHW images: :class:`MaxPool2d`, :class:`AvgPool2d` (windows of
kh x kw pixels, stride defaulting to the window, no padding) and :class:`GlobalAvgPool2d`;
on NCL sequences :class:`MaxPool1d`, :class:`AvgPool1d` and :class:`GlobalAvgPool1d`, each
the 2-d pool on (N, C, 1, L) (a reshape, not a copy of the code).

A pool acts on each channel alone. Its windows are those of :mod:`backendnn.layers.windows`:
for each offset (i, j) of the window, the strided slice x_ij = x[:, :, i + sh h',
j + sw w'] (:func:`~backendnn.layers.windows.windows`), H' = (H - kh) // sh + 1 of them down
(PyTorch's floor rule). Its backward pass puts each offset's gradient back through the
adjoint of that slicing (:func:`~backendnn.layers.windows.add_windows`, im2col's col2im), so
overlapping windows (a stride below the window) add up.

Imports ``_backend``, :mod:`backendnn.layers.base` and :mod:`backendnn.layers.windows`.
"""

from __future__ import annotations

from typing import Any

from .. import _backend
from .._backend import array_namespace, device
from .base import INFERENCE, Context, Layer, size
from .windows import (
    Pair,
    _ints,
    _short,
    _sum,
    _with_height,
    _without_height,
    add_windows,
    check_input,
    check_shape,
    output_size,
    windows,
)


class _Pool2d(Layer):
    """What the two windowed pools share: the window, the stride, and the repr."""

    def __init__(self, kernel_size: int | Pair, stride: int | Pair | None = None):
        name = type(self).__name__
        self.kernel_size = _ints(name, "kernel_size", kernel_size, 2)
        self.stride = self.kernel_size if stride is None else _ints(name, "stride", stride, 2)

    def config(self) -> dict[str, Any]:
        return {"kernel_size": self.kernel_size, "stride": self.stride}

    def output_shape(self, shape: tuple[int, ...]) -> tuple[int, ...]:
        """(C, H', W'), H' = (H - kh) // sh + 1 and W' = (W - kw) // sw + 1."""
        check_shape(self, shape, None, self.kernel_size)
        return (shape[0], *output_size(shape[1:], self.kernel_size, self.stride))

    def __repr__(self) -> str:
        args = [f"{_short(self.kernel_size)}"]
        if self.stride != self.kernel_size:
            args.append(f"stride={_short(self.stride)}")
        return f"{type(self).__name__}({', '.join(args)})"


class MaxPool2d(_Pool2d):
    """Max pooling: y[n, c, h', w'] = max of window (h', w') of x[n, c]; backward routes
    each window's gradient to its arg-max.

    Forward: over the window offsets k = i kw + j in row-major order, with the slices
    x_k = x[n, c, sh h' + i, sw w' + j], a running maximum y = max_k x_k and its index
    k* = the first k with x_k = y (element-wise passes, no copy of the patches).

    Backward: dp_k = dy where k = k*, else 0, and dx = add_windows(dp) (col2im): each
    dp_k back onto the pixels x_k came from. Exactly one element per window receives its
    gradient: on ties the first in row-major order within the window, as PyTorch's CPU
    kernel does. Where windows overlap, a pixel that is the
    maximum of several windows receives the sum of their gradients.

    Parameters
    ----------
    kernel_size : int or pair of int
        The window (kh, kw); an int k means (k, k).
    stride : int or pair of int, optional
        Step (sh, sw) between windows; default: the window (non-overlapping windows).

    Raises
    ------
    ValueError
        If kernel_size or stride is not a positive int or a pair of them; in ``forward``
        and ``output_shape``, if x is not of shape (n_samples, C, H, W) or is smaller
        than the window.

    Examples
    --------
    >>> import numpy as np
    >>> from backendnn.layers import MaxPool2d
    >>> x = np.array([[[[1.0, 2.0, 5.0, 5.0], [3.0, 0.0, 5.0, 5.0]]]])
    >>> y, cache = MaxPool2d(2).forward((), x)
    >>> y.tolist()
    [[[[3.0, 5.0]]]]
    >>> dx, grads = MaxPool2d(2).backward((), cache, np.array([[[[10.0, 20.0]]]]))
    >>> dx.tolist(), grads  # a tie: the first maximum, in row-major order, takes it all
    ([[[[0.0, 0.0, 20.0, 0.0], [10.0, 0.0, 0.0, 0.0]]]], ())
    >>> layer = MaxPool2d(2, stride=1)  # overlapping windows
    >>> y, cache = layer.forward((), np.array([[[[0.0, 1.0, 0.0], [0.0, 0.0, 0.0]]]]))
    >>> layer.backward((), cache, np.ones_like(y))[0].tolist()  # the 1 is both windows' max
    [[[[0.0, 2.0, 0.0], [0.0, 0.0, 0.0]]]]
    >>> MaxPool2d(3, stride=1).output_shape((4, 5, 6))
    (4, 3, 4)
    """

    def forward(self, params: tuple, x: Any, ctx: Context = INFERENCE) -> tuple[Any, Any]:
        """y = the maximum of each window (a running maximum, or the library's own max-pool)."""
        check_input(self, x, None, self.kernel_size)
        native = _backend.native_max_pool2d(x, self.kernel_size, self.stride)
        if native is not None:  # the library's own kernel; backward needs x and its indices
            y, indices = native
            return y, (None, tuple(x.shape), (x, indices))
        xp = array_namespace(x)
        # a running maximum over the window offsets, row-major: element-wise passes over
        # strided slices (no (kh kw)-fold copy, no reduction over a middle axis); ">" keeps
        # the first of equal maxima
        parts = windows(x, self.kernel_size, self.stride)
        best, k_star = parts[0], xp.zeros(parts[0].shape, dtype=xp.int32, device=device(x))
        for k, part in enumerate(parts[1:], start=1):
            k_star = xp.where(part > best, k, k_star)
            best = xp.maximum(best, part)
        return best, (k_star, tuple(x.shape), None)

    def workspace(self, shape: tuple[int, ...]) -> int:
        """The running maximum's: the previous maximum, the window index k* (old and new)
        and the comparison's mask, each at most the output's size."""
        return 4 * size(self.output_shape(shape))

    def backward(
        self, params: tuple, cache: Any, dy: Any, need_dx: bool = True
    ) -> tuple[Any, tuple]:
        """dx = add_windows(dp) (col2im), dp_k = dy where k = k*, 0 elsewhere."""
        k_star, shape, native = cache
        if native is not None:
            x, indices = native
            dx = _backend.native_max_pool2d_backward(dy, x, indices, self.kernel_size, self.stride)
            return dx, ()
        xp = array_namespace(dy)
        kh, kw = self.kernel_size
        # a multiply by the 0/1 mask: the fastest select in NumPy (see activations.ReLU)
        terms = [xp.astype(k_star == k, dy.dtype) * dy for k in range(kh * kw)]
        return add_windows(terms, shape, self.kernel_size, self.stride), ()


class AvgPool2d(_Pool2d):
    """Average pooling: y[n, c, h', w'] = the mean of window (h', w') of x[n, c]; backward
    spreads each window's gradient evenly over it.

    Forward: y = (1 / (kh kw)) sum over the window offsets (i, j) of
    x[n, c, sh h' + i, sw w' + j]. Backward: every entry of window (h', w') receives
    dy[n, c, h', w'] / (kh kw): dx = add_windows(dy / (kh kw) for every offset) (col2im).

    Parameters
    ----------
    kernel_size : int or pair of int
        The window (kh, kw); an int k means (k, k).
    stride : int or pair of int, optional
        Step (sh, sw) between windows; default: the window (non-overlapping windows).

    Raises
    ------
    ValueError
        If kernel_size or stride is not a positive int or a pair of them; in ``forward``
        and ``output_shape``, if x is not of shape (n_samples, C, H, W) or is smaller
        than the window.

    Examples
    --------
    >>> import numpy as np
    >>> from backendnn.layers import AvgPool2d
    >>> y, cache = AvgPool2d(2).forward((), np.arange(8.0).reshape(1, 1, 2, 4))
    >>> y.tolist()
    [[[[2.5, 4.5]]]]
    >>> dx, grads = AvgPool2d(2).backward((), cache, np.array([[[[4.0, 8.0]]]]))
    >>> dx.tolist(), grads
    ([[[[1.0, 1.0, 2.0, 2.0], [1.0, 1.0, 2.0, 2.0]]]], ())
    >>> layer = AvgPool2d(2, stride=1)  # overlapping windows add up
    >>> y, cache = layer.forward((), np.zeros((1, 1, 2, 3)))
    >>> layer.backward((), cache, np.ones_like(y))[0].tolist()
    [[[[0.25, 0.5, 0.25], [0.25, 0.5, 0.25]]]]
    >>> AvgPool2d((2, 3)).output_shape((3, 4, 7))
    (3, 2, 2)
    """

    def forward(self, params: tuple, x: Any, ctx: Context = INFERENCE) -> tuple[Any, Any]:
        """y = the mean of each window."""
        check_input(self, x, None, self.kernel_size)
        total = _sum(windows(x, self.kernel_size, self.stride))  # no (kh kw)-fold copy
        return total / float(self.kernel_size[0] * self.kernel_size[1]), tuple(x.shape)

    def workspace(self, shape: tuple[int, ...]) -> int:
        """The sum of the windows before the division: the output's size."""
        return size(self.output_shape(shape))

    def backward(
        self, params: tuple, cache: Any, dy: Any, need_dx: bool = True
    ) -> tuple[Any, tuple]:
        """dx = add_windows(dp) (col2im), dp_ij = dy / (kh kw) for every offset (i, j)."""
        kh, kw = self.kernel_size
        share = dy / float(kh * kw)
        return add_windows([share] * (kh * kw), cache, self.kernel_size, self.stride), ()


class GlobalAvgPool2d(Layer):
    """The mean of each channel: (N, C, H, W) -> (N, C); backward spreads it evenly.

    Forward: y[n, c] = (1 / (H W)) sum_{h, w} x[n, c, h, w]. Backward:
    dx[n, c, h, w] = dy[n, c] / (H W).

    Parameters
    ----------
    None
        The layer takes no constructor arguments and has no parameters.

    Raises
    ------
    ValueError
        In ``forward`` and ``output_shape``, if x is not of shape (n_samples, C, H, W).

    Examples
    --------
    >>> import numpy as np
    >>> from backendnn.layers import GlobalAvgPool2d
    >>> y, cache = GlobalAvgPool2d().forward((), np.arange(8.0).reshape(1, 2, 2, 2))
    >>> y.tolist()
    [[1.5, 5.5]]
    >>> dx, grads = GlobalAvgPool2d().backward((), cache, np.array([[4.0, 8.0]]))
    >>> dx[0].tolist(), grads
    ([[[1.0, 1.0], [1.0, 1.0]], [[2.0, 2.0], [2.0, 2.0]]], ())
    """

    def output_shape(self, shape: tuple[int, ...]) -> tuple[int, ...]:
        """(C,)."""
        check_shape(self, shape, None, (1, 1))
        return (shape[0],)

    def forward(self, params: tuple, x: Any, ctx: Context = INFERENCE) -> tuple[Any, Any]:
        """y = the mean over each image's pixels, per channel."""
        check_input(self, x, None, (1, 1))
        return array_namespace(x).mean(x, axis=(2, 3)), tuple(x.shape)

    def backward(
        self, params: tuple, cache: Any, dy: Any, need_dx: bool = True
    ) -> tuple[Any, tuple]:
        """dx[n, c, h, w] = dy[n, c] / (H W) (a new array, not a broadcast view)."""
        xp = array_namespace(dy)
        n, c, h, w = cache
        share = xp.reshape(dy / float(h * w), (n, c, 1, 1))
        return xp.asarray(xp.broadcast_to(share, cache), copy=True), ()

    def __repr__(self) -> str:
        return "GlobalAvgPool2d()"


# --------------------------------------------------------------------------- 1-d pools


class _Pool1d(Layer):
    """What the windowed 1-d pools share: the 2-d pool they are on sequences (N, C, L)
    reshaped to (N, C, 1, L), with a window of (1, k) and a stride of (1, s)."""

    _pool2d: type[_Pool2d]

    def __init__(self, kernel_size: int, stride: int | None = None):
        name = type(self).__name__
        (self.kernel_size,) = _ints(name, "kernel_size", kernel_size, 1)
        (self.stride,) = (self.kernel_size,) if stride is None else _ints(name, "stride", stride, 1)
        self._2d = self._pool2d((1, self.kernel_size), (1, self.stride))

    def config(self) -> dict[str, Any]:
        return {"kernel_size": self.kernel_size, "stride": self.stride}

    def output_shape(self, shape: tuple[int, ...]) -> tuple[int, ...]:
        """(C, L'), L' = (L - k) // s + 1."""
        check_shape(self, shape, None, (self.kernel_size,))
        c, _, length = self._2d.output_shape((shape[0], 1, shape[1]))
        return (c, length)

    def workspace(self, shape: tuple[int, ...]) -> int:
        """The 2-d pool's, of x as (C, 1, L)."""
        return self._2d.workspace((shape[0], 1, shape[1]))

    def forward(self, params: tuple, x: Any, ctx: Context = INFERENCE) -> tuple[Any, Any]:
        """y = the 2-d pool of x as (N, C, 1, L), as (N, C, L')."""
        check_input(self, x, None, (self.kernel_size,))
        y, cache = self._2d.forward((), _with_height(x))
        return _without_height(y), cache

    def backward(
        self, params: tuple, cache: Any, dy: Any, need_dx: bool = True
    ) -> tuple[Any, tuple]:
        """dx = the 2-d pool's backward of dy as (N, C, 1, L'), as (N, C, L)."""
        dx, _ = self._2d.backward((), cache, _with_height(dy))
        return _without_height(dx), ()

    def __repr__(self) -> str:
        stride = "" if self.stride == self.kernel_size else f", stride={self.stride}"
        return f"{type(self).__name__}({self.kernel_size}{stride})"


class MaxPool1d(_Pool1d):
    """Max pooling of sequences: y[n, c, l'] = max over i < k of x[n, c, s l' + i];
    backward routes each window's gradient to its arg-max. :class:`MaxPool2d` on
    (N, C, 1, L) with a (1, k) window.

    Forward: a running maximum over the window offsets i, keeping the first index i* of
    the maximum. Backward: dx[n, c, s l' + i*] += dy[n, c, l'] (one element per window;
    on ties the first, as PyTorch's CPU kernel; overlapping windows add up).

    Parameters
    ----------
    kernel_size : int
        The window length k.
    stride : int, optional
        Step s between windows; default: the window (non-overlapping windows).

    Raises
    ------
    ValueError
        If kernel_size or stride is not a positive int; in ``forward`` and
        ``output_shape``, if x is not of shape (n_samples, C, L) or is shorter than the
        window.

    Examples
    --------
    >>> import numpy as np
    >>> from backendnn.layers import MaxPool1d
    >>> y, cache = MaxPool1d(2).forward((), np.array([[[1.0, 3.0, 5.0, 5.0, 9.0]]]))
    >>> y.tolist()
    [[[3.0, 5.0]]]
    >>> dx, grads = MaxPool1d(2).backward((), cache, np.array([[[10.0, 20.0]]]))
    >>> dx.tolist(), grads  # a tie: the first maximum takes it all; 9.0 is in no window
    ([[[0.0, 10.0, 20.0, 0.0, 0.0]]], ())
    >>> MaxPool1d(3, stride=2).output_shape((4, 9))
    (4, 4)
    """

    _pool2d = MaxPool2d


class AvgPool1d(_Pool1d):
    """Average pooling of sequences: y[n, c, l'] = (1 / k) sum over i < k of
    x[n, c, s l' + i]; backward spreads each window's gradient evenly over it.
    :class:`AvgPool2d` on (N, C, 1, L) with a (1, k) window.

    Backward: every entry of window l' receives dy[n, c, l'] / k (col2im: overlapping
    windows add up).

    Parameters
    ----------
    kernel_size : int
        The window length k.
    stride : int, optional
        Step s between windows; default: the window (non-overlapping windows).

    Raises
    ------
    ValueError
        If kernel_size or stride is not a positive int; in ``forward`` and
        ``output_shape``, if x is not of shape (n_samples, C, L) or is shorter than the
        window.

    Examples
    --------
    >>> import numpy as np
    >>> from backendnn.layers import AvgPool1d
    >>> y, cache = AvgPool1d(2).forward((), np.array([[[1.0, 3.0, 5.0, 7.0]]]))
    >>> y.tolist()
    [[[2.0, 6.0]]]
    >>> dx, grads = AvgPool1d(2).backward((), cache, np.array([[[4.0, 8.0]]]))
    >>> dx.tolist(), grads
    ([[[2.0, 2.0, 4.0, 4.0]]], ())
    >>> layer = AvgPool1d(2, stride=1)  # overlapping windows add up
    >>> y, cache = layer.forward((), np.zeros((1, 1, 3)))
    >>> layer.backward((), cache, np.ones_like(y))[0].tolist()
    [[[0.5, 1.0, 0.5]]]
    """

    _pool2d = AvgPool2d


class GlobalAvgPool1d(Layer):
    """The mean of each channel: (N, C, L) -> (N, C); backward spreads it evenly.
    :class:`GlobalAvgPool2d` on (N, C, 1, L).

    Forward: y[n, c] = (1 / L) sum_l x[n, c, l]. Backward: dx[n, c, l] = dy[n, c] / L.

    Parameters
    ----------
    None
        The layer takes no constructor arguments and has no parameters.

    Raises
    ------
    ValueError
        In ``forward`` and ``output_shape``, if x is not of shape (n_samples, C, L).

    Examples
    --------
    >>> import numpy as np
    >>> from backendnn.layers import GlobalAvgPool1d
    >>> y, cache = GlobalAvgPool1d().forward((), np.arange(6.0).reshape(1, 2, 3))
    >>> y.tolist()
    [[1.0, 4.0]]
    >>> dx, grads = GlobalAvgPool1d().backward((), cache, np.array([[3.0, 6.0]]))
    >>> dx.tolist(), grads
    ([[[1.0, 1.0, 1.0], [2.0, 2.0, 2.0]]], ())
    """

    _2d = GlobalAvgPool2d()

    def output_shape(self, shape: tuple[int, ...]) -> tuple[int, ...]:
        """(C,)."""
        check_shape(self, shape, None, (1,))
        return (shape[0],)

    def forward(self, params: tuple, x: Any, ctx: Context = INFERENCE) -> tuple[Any, Any]:
        """y = the mean over each sequence, per channel."""
        check_input(self, x, None, (1,))
        return self._2d.forward((), _with_height(x))

    def backward(
        self, params: tuple, cache: Any, dy: Any, need_dx: bool = True
    ) -> tuple[Any, tuple]:
        """dx[n, c, l] = dy[n, c] / L."""
        dx, _ = self._2d.backward((), cache, dy)
        return _without_height(dx), ()

    def __repr__(self) -> str:
        return "GlobalAvgPool1d()"
