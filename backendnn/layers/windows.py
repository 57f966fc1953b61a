"""The windows that convolutions and pools slide over a batch: the argument helpers, the
shape checks, :func:`output_size`, and im2col written as slicing (:func:`windows`,
:func:`im2col`) with its adjoint (:func:`add_windows`, :func:`col2im`).

Images are NCHW, x of shape (N, C, H, W); sequences NCL, (N, C, L), run as images of height
one. A window of kh x kw taps, dilation (dh, dw) apart, moves with stride (sh, sw) over x
zero-padded by (pt, pb) rows above and below and (pl, pr) columns left and right, so there
are H' x W' windows,

    H' = (H + pt + pb - dh (kh - 1) - 1) // sh + 1   (and W' alike).

``im2col`` gathers, for each kernel offset (i, j), the pixel x_pad[n, c, dh i + sh h',
dw j + sw w'] of every window (h', w'): the patches, of shape (N, C, kh, kw, H', W'). Read
per sample as a (C kh kw) x (H' W') matrix P_n (one column per window, Caffe's layout),
a convolution is one matrix product Y_n = W P_n and needs no transposition in either
direction. ``col2im`` is the adjoint of ``im2col``: every patch entry is added back onto
the pixel it came from, overlapping windows summing. Underneath are ``windows`` (the
kh kw strided slices, one per kernel offset) and its adjoint ``add_windows`` (shifts by
concatenated zeros, sums, and one interleave per stride phase): slicing, stacking and
concatenation only, so no array is written to (JAX arrays are immutable) and nothing is
scattered.

A padding is given as one int per axis (the same on both sides) or, inside, as
``((pt, pb), (pl, pr))`` (``padding="same"`` puts the odd zero at the bottom and right,
as PyTorch).

Imports ``_backend``.
"""

from __future__ import annotations

import numbers
from collections.abc import Sequence
from typing import Any

from .. import _backend
from .._backend import array_namespace

Pair = tuple[int, int]
#: zeros (before, after) on each spatial axis: ((top, bottom), (left, right)) for images
Sides = tuple[tuple[int, int], ...]


# --------------------------------------------------------------------------- arguments


def _ints(owner: str, name: str, value: Any, n: int, minimum: int = 1) -> tuple[int, ...]:
    """``value`` (an int, or a sequence of ``n`` ints, each >= ``minimum``) as ``n`` ints,
    else a ValueError naming ``owner``'s argument ``name``."""
    items = tuple(value) if isinstance(value, (tuple, list)) else (value,) * n
    ok = len(items) == n and all(
        isinstance(v, numbers.Integral) and not isinstance(v, bool) and int(v) >= minimum
        for v in items
    )
    if not ok:
        kind = "positive" if minimum == 1 else "non-negative"
        pair = f" or a pair (height, width) of {kind} ints" if n == 2 else ""
        raise ValueError(f"{owner}: {name} must be a {kind} int{pair}, got {value!r}")
    return tuple(int(v) for v in items)


def _padding(owner: str, value: Any, n: int, stride: tuple[int, ...]) -> Any:
    """``"same"``, ``"valid"`` or ``n`` non-negative ints, checked as PyTorch does."""
    if isinstance(value, str):
        if value not in ("same", "valid"):
            raise ValueError(f"{owner}: padding must be 'same', 'valid' or ints, got {value!r}")
        if value == "same" and any(s != 1 for s in stride):
            raise ValueError(
                f"{owner}: padding='same' is not supported for strided convolutions (stride "
                f"{stride}); give the padding as ints"
            )
        return value
    return _ints(owner, "padding", value, n, minimum=0)


def _sides(padding: Any, kernel: Sequence[int] = (), dilation: Sequence[int] = ()) -> Sides:
    """The zeros (before, after) on each axis: of ints ``padding`` (p: (p, p)), pairs
    (as is), ``"valid"`` (none) or ``"same"`` (dilation (k - 1) in all, the odd one after)."""
    if padding == "valid":
        return tuple((0, 0) for _ in kernel)
    if padding == "same":
        totals = [d * (k - 1) for k, d in zip(kernel, dilation)]
        return tuple((t // 2, t - t // 2) for t in totals)
    return tuple(
        (int(p), int(p)) if isinstance(p, numbers.Integral) else (p[0], p[1]) for p in padding
    )


def _short(values: tuple[int, ...]) -> Any:
    """Ints as a repr shows them: the int itself when all are equal."""
    return values[0] if len(set(values)) == 1 else values


#: per number of spatial axes: what a sample is called, its axes and its layout
_LAYOUTS = {
    1: ("sequences", "length", "NCL", ""),
    2: ("images", "height, width", "NCHW", "; backendnn.tensors.to_nchw converts NHWC images"),
}


def check_input(
    layer: Any, x: Any, channels: int | None, kernel: Sequence[int], padding: Any = None,
    dilation: Sequence[int] | None = None,
) -> None:  # fmt: skip
    """Raise a ValueError saying what ``layer`` expects unless ``x`` is a batch (N, C, H, W)
    (or (N, C, L) for a ``kernel`` of one int) with ``channels`` channels (any number if
    None) that the kernel fits in."""
    noun, axes, layout, hint = _LAYOUTS[len(kernel)]
    if x.ndim != 2 + len(kernel):
        c = "C" if channels is None else str(channels)
        raise ValueError(
            f"{layer!r} expects {noun} of shape (n_samples, {c}, {axes}) ({layout}), got an "
            f"array of shape {tuple(x.shape)}{hint}"
        )
    check_shape(layer, tuple(x.shape[1:]), channels, kernel, padding, dilation)


def check_shape(
    layer: Any, shape: tuple[int, ...], channels: int | None, kernel: Sequence[int],
    padding: Any = None, dilation: Sequence[int] | None = None,
) -> None:  # fmt: skip
    """As :func:`check_input`, for the shape of one sample (C, H, W) or (C, L)."""
    noun, axes, layout, hint = _LAYOUTS[len(kernel)]
    c = "C" if channels is None else str(channels)
    if len(shape) != 1 + len(kernel) or (channels is not None and shape[0] != channels):
        raise ValueError(
            f"{layer!r} expects {noun} of shape (n_samples, {c}, {axes}) ({layout}), got "
            f"samples of shape {tuple(shape)}{hint}"
        )
    sides = _sides(padding or (0,) * len(kernel))
    extent = [d * (k - 1) + 1 for k, d in zip(kernel, dilation or (1,) * len(kernel))]
    padded = [n + a + b for n, (a, b) in zip(shape[1:], sides)]
    if any(e > p for e, p in zip(extent, padded)):
        size = "x".join(map(str, shape[1:]))
        raise ValueError(
            f"{layer!r}: a window of {'x'.join(map(str, extent))} does not fit in {noun} of "
            f"{size} (padded: {'x'.join(map(str, padded))}); use longer {noun}, a smaller "
            "kernel or dilation, or more padding"
        )


# --------------------------------------------------------------------------- im2col, col2im


def output_size(
    size: Sequence[int], kernel: Sequence[int], stride: Sequence[int], padding: Any = None,
    dilation: Sequence[int] | None = None,
) -> tuple[int, ...]:  # fmt: skip
    """The windows on each axis: (H + pt + pb - dh (kh - 1) - 1) // sh + 1, ..."""
    sides = _sides(padding or (0,) * len(kernel))
    dilation = dilation or (1,) * len(kernel)
    return tuple(
        (n + a + b - d * (k - 1) - 1) // s + 1
        for n, k, s, (a, b), d in zip(size, kernel, stride, sides, dilation)
    )


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


def windows(
    x: Any, kernel: Sequence[int], stride: Sequence[int] = (1, 1), padding: Any = (0, 0),
    dilation: Sequence[int] = (1, 1),
) -> list:  # fmt: skip
    """For each kernel offset (i, j), row-major, x_pad[:, :, dh i + sh h', dw j + sw w'] of
    shape (N, C, H', W'): the offset's pixel of every window (strided slices, no copies)."""
    xp = array_namespace(x)
    (kh, kw), (sh, sw), (dh, dw) = kernel, stride, dilation
    (pt, pb), (pl, pr) = _sides(padding)
    oh, ow = output_size(x.shape[2:], kernel, stride, padding, dilation)
    x = _zeros_around(_zeros_around(x, pt, pb, 2, xp), pl, pr, 3, xp)
    return [
        x[:, :, dh * i : dh * i + sh * (oh - 1) + 1 : sh, dw * j : dw * j + sw * (ow - 1) + 1 : sw]
        for i in range(kh)
        for j in range(kw)
    ]


def im2col(
    x: Any, kernel: Sequence[int], stride: Sequence[int] = (1, 1), padding: Any = (0, 0),
    dilation: Sequence[int] = (1, 1),
) -> Any:  # fmt: skip
    """The patches of x: p[n, c, i, j, h', w'] = x_pad[n, c, dh i + sh h', dw j + sw w'].

    Parameters
    ----------
    x : array of shape (N, C, H, W)
        The images.
    kernel, stride : pair of int
        The window (kh, kw) and the step (sh, sw) between windows.
    padding : pair of int, or pair of pairs of int
        The zeros added on each side of x: (ph, pw) on both sides, or ((pt, pb), (pl, pr)).
    dilation : pair of int, default (1, 1)
        The step (dh, dw) between the taps of a window.

    Returns
    -------
    patches : array of shape (N, C, kh, kw, H', W')
        Window (h', w')'s pixels, in x's dtype; reshaped to (N, C kh kw, H' W') it is the
        matrix P_n of each sample, one column per window.

    Examples
    --------
    >>> import numpy as np
    >>> from backendnn.layers.windows import im2col
    >>> x = np.arange(9.0).reshape(1, 1, 3, 3)
    >>> p = im2col(x, (2, 2))
    >>> p.shape
    (1, 1, 2, 2, 2, 2)
    >>> p[0, 0, :, :, 0, 1].tolist()  # the window at h' = 0, w' = 1
    [[1.0, 2.0], [4.0, 5.0]]
    >>> im2col(x, (2, 2), dilation=(2, 2))[0, 0, :, :, 0, 0].tolist()  # the corners
    [[0.0, 2.0], [6.0, 8.0]]
    """
    xp = array_namespace(x)
    n, c = x.shape[:2]
    oh, ow = output_size(x.shape[2:], kernel, stride, padding, dilation)
    stacked = xp.stack(windows(x, kernel, stride, padding, dilation), axis=2)
    return xp.reshape(stacked, (n, c, kernel[0], kernel[1], oh, ow))


def col2im(
    patches: Any,
    input_shape: Sequence[int],
    kernel: Sequence[int],
    stride: Sequence[int] = (1, 1),
    padding: Any = (0, 0),
    dilation: Sequence[int] = (1, 1),
) -> Any:
    """The adjoint of :func:`im2col`: dx[n, c, h, w] = sum of dp[n, c, i, j, h', w'] over the
    (i, j, h', w') with dh i + sh h' = h + pt and dw j + sw w' = w + pl.

    Each patch entry goes back onto the pixel it came from, overlapping windows adding up
    (:func:`add_windows` of the kh kw slices dp[:, :, i, j]).

    Parameters
    ----------
    patches : array of shape (N, C, kh, kw, H', W')
        dL/dpatches.
    input_shape : tuple of int
        (N, C, H, W), the shape of the im2col input.
    kernel, stride, padding, dilation
        As given to :func:`im2col`.

    Returns
    -------
    dx : array of shape (N, C, H, W)

    Examples
    --------
    >>> import numpy as np
    >>> from backendnn.layers.windows import col2im
    >>> col2im(np.ones((1, 1, 2, 2, 2, 2)), (1, 1, 3, 3), (2, 2))[0, 0].tolist()
    [[1.0, 2.0, 1.0], [2.0, 4.0, 2.0], [1.0, 2.0, 1.0]]
    """
    terms = [patches[:, :, i, j, ...] for i in range(kernel[0]) for j in range(kernel[1])]
    return add_windows(terms, input_shape, kernel, stride, padding, dilation)


def add_windows(
    terms: Sequence[Any],
    input_shape: Sequence[int],
    kernel: Sequence[int],
    stride: Sequence[int] = (1, 1),
    padding: Any = (0, 0),
    dilation: Sequence[int] = (1, 1),
) -> Any:
    """The adjoint of :func:`windows`: the sum over the kernel offsets (i, j) of ``terms[i kw
    + j]`` (N, C, H', W') put back at pixels (dh i + sh h' - pt, dw j + sw w' - pl), cropped
    to (N, C, H, W).

    Padded row r = sh a + rh (phase rh = r mod sh) only receives the offsets i with
    dh i mod sh = rh, at a = h' + dh i // sh; so for each phase (rh, rw) the offsets' terms
    are shifted by (dh i // sh, dw j // sw) with concatenated zeros and summed (columns
    first, then rows) into a ceil(H_pad / sh) x ceil(W_pad / sw) grid, and the sh sw grids
    are interleaved by one stack and reshape (for non-overlapping windows, sh = kh and
    sw = kw, each grid is one term). The padding is then cropped off. No scatter, no
    array written to.
    """
    xp = array_namespace(*terms)
    n, c, h, w = input_shape
    (kh, kw), (sh, sw), (dh, dw) = kernel, stride, dilation
    (pt, pb), (pl, pr) = _sides(padding)
    oh, ow = terms[0].shape[-2:]
    rows, cols = -(-(h + pt + pb) // sh), -(-(w + pl + pr) // sw)  # the grid of one phase
    grids = []
    for rh in range(sh):
        grid_row = []
        offsets_i = [i for i in range(kh) if dh * i % sh == rh]
        for rw in range(sw):
            offsets_j = [j for j in range(kw) if dw * j % sw == rw]
            if not offsets_i or not offsets_j:  # no window reaches this phase
                dtype, dev = terms[0].dtype, _backend.device(terms[0])
                grid_row.append(xp.zeros((n, c, rows, cols), dtype=dtype, device=dev))
                continue
            shifted_rows = []
            for i in offsets_i:
                # offsets (i, j) of this phase: shifted by dw j // sw and summed, then by dh i // sh
                line = _sum(
                    [
                        _zeros_around(
                            terms[i * kw + j], dw * j // sw, cols - dw * j // sw - ow, 3, xp
                        )
                        for j in offsets_j
                    ]
                )
                shift = dh * i // sh
                shifted_rows.append(_zeros_around(line, shift, rows - shift - oh, 2, xp))
            grid_row.append(_sum(shifted_rows))
        grids.append(grid_row)
    if sh == sw == 1:
        full = grids[0][0]
    else:  # padded pixel (sh a + rh, sw b + rw) is grids[rh][rw][:, :, a, b]
        full = xp.stack([xp.stack(g, axis=-1) for g in grids], axis=3)
        full = xp.reshape(full, (n, c, rows * sh, cols * sw))
    if full.shape[2:] == (h, w):
        return full
    return full[:, :, pt : pt + h, pl : pl + w]


def _with_height(a: Any) -> Any:
    """(N, C, L) as (N, C, 1, L)."""
    return array_namespace(a).reshape(a, (a.shape[0], a.shape[1], 1, a.shape[2]))


def _without_height(a: Any) -> Any:
    """(N, C, 1, L) as (N, C, L)."""
    return array_namespace(a).reshape(a, (a.shape[0], a.shape[1], a.shape[3]))
