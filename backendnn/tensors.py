"""Image batch layouts: NCHW (backendnn's layers, PyTorch's), NHWC (JAX/TensorFlow images,
most image files) and NWHC (the notes' tensor T = (i_N, i_W, i_H, i_C)), and conversions.

A layout names the four axes of a batch in order: N the sample, C the channel, H the
height (rows, top to bottom), W the width (columns, left to right). The notes' tensor
section writes a batch as T = (i_N, i_W, i_H, i_C): batch size, width, height, channels,
i.e. NWHC, whose image axes are the transpose of NHWC's. A conversion is one
``permute_dims`` (every backend; a view where the library has views, a copy on JAX).

Imports ``_backend``.
"""

from __future__ import annotations

from typing import Any

from ._backend import array_namespace

__all__ = [
    "convert",
    "to_nchw",
    "from_nchw",
]

#: the layouts :func:`convert` knows, each a string of the four axis letters in order
LAYOUTS = ("NCHW", "NHWC", "NWHC")


def _check_layout(layout: Any) -> str:
    if layout not in LAYOUTS:
        raise ValueError(
            f"unknown layout {layout!r}; the layouts are {', '.join(LAYOUTS)} (N samples, "
            "C channels, H height, W width)"
        )
    return layout


def convert(x: Any, src: str, dst: str) -> Any:
    """The batch ``x`` in layout ``src`` permuted into layout ``dst``.

    Axis k of the result is the axis of ``x`` named ``dst[k]``: ``permute_dims(x,
    [src.index(a) for a in dst])``.
    See :ref:`notes-tensor` (notes, Tensors).

    Parameters
    ----------
    x : array of shape (4 axes in layout ``src``)
        An image batch, e.g. (N, H, W, C) for ``src="NHWC"``.
    src, dst : {"NCHW", "NHWC", "NWHC"}
        The layouts of ``x`` and of the result.

    Returns
    -------
    y : array of 4 axes in layout ``dst``
        The same pixels, in ``x``'s namespace, dtype and device.

    Raises
    ------
    ValueError
        If ``x`` does not have 4 axes, or a layout is not one of ``backendnn.tensors.LAYOUTS``.

    Examples
    --------
    >>> import numpy as np
    >>> from backendnn import tensors
    >>> x = np.zeros((8, 28, 32, 3))  # 8 RGB images of 28 rows, 32 columns, NHWC
    >>> tensors.convert(x, "NHWC", "NCHW").shape
    (8, 3, 28, 32)
    >>> tensors.convert(x, "NHWC", "NWHC").shape  # the notes' (i_N, i_W, i_H, i_C)
    (8, 32, 28, 3)
    """
    _check_layout(src)
    _check_layout(dst)
    shape = tuple(x.shape)
    if len(shape) != 4:
        raise ValueError(
            f"expected a batch of images with 4 axes in layout {src} "
            f"({', '.join(_AXIS_NAMES[a] for a in src)}), got an array of shape {shape}; "
            "add the missing axis (e.g. a channel axis of size 1 for grey images) first"
        )
    if src == dst:
        return x
    return array_namespace(x).permute_dims(x, tuple(src.index(a) for a in dst))


_AXIS_NAMES = {"N": "n_samples", "C": "channels", "H": "height", "W": "width"}


def to_nchw(x: Any, layout: str = "NHWC") -> Any:
    """The batch ``x`` in ``layout`` as NCHW, the layout of backendnn's image layers.

    Parameters
    ----------
    x : array of 4 axes in ``layout``
        An image batch.
    layout : {"NHWC", "NWHC", "NCHW"}, default "NHWC"
        The layout of ``x``; "NWHC" is the notes' (i_N, i_W, i_H, i_C).

    Returns
    -------
    y : array of shape (N, C, H, W)

    Raises
    ------
    ValueError
        If ``x`` does not have 4 axes, or ``layout`` is not one of ``backendnn.tensors.LAYOUTS``.

    Examples
    --------
    >>> import numpy as np
    >>> from backendnn import tensors
    >>> tensors.to_nchw(np.zeros((8, 28, 32, 3))).shape
    (8, 3, 28, 32)
    >>> tensors.to_nchw(np.zeros((8, 32, 28, 3)), "NWHC").shape
    (8, 3, 28, 32)
    """
    return convert(x, layout, "NCHW")


def from_nchw(x: Any, layout: str = "NHWC") -> Any:
    """The NCHW batch ``x`` (what backendnn's image layers take) in ``layout``.

    Parameters
    ----------
    x : array of shape (N, C, H, W)
        An image batch.
    layout : {"NHWC", "NWHC", "NCHW"}, default "NHWC"
        The layout of the result; "NWHC" is the notes' (i_N, i_W, i_H, i_C).

    Returns
    -------
    y : array of 4 axes in ``layout``

    Raises
    ------
    ValueError
        If ``x`` does not have 4 axes, or ``layout`` is not one of ``backendnn.tensors.LAYOUTS``.

    Examples
    --------
    >>> import numpy as np
    >>> from backendnn import tensors
    >>> x = np.zeros((8, 3, 28, 32))
    >>> tensors.from_nchw(x).shape, tensors.from_nchw(x, "NWHC").shape
    ((8, 28, 32, 3), (8, 32, 28, 3))
    """
    return convert(x, "NCHW", layout)
