"""PyTorch: :class:`TorchLib`, with torch's own convolutions and max-pool.

Imports torch (lazily) and array_api_compat.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Sequence
from typing import Any

import array_api_compat
import numpy as np

from .library import ArrayLibrary, Sides


class TorchLib(ArrayLibrary):
    """PyTorch through ``array_api_compat.torch``: eager, asynchronous on CUDA devices.

    Native paths: ``torch.nn.functional.conv2d`` and its two gradient convolutions
    (``conv_transpose2d`` for the input's, ``torch.nn.grad.conv2d_weight``), and the
    max-pool with its backward (one kernel each, where the
    portable path makes a pass per window offset; both keep the first maximum of a window
    in row-major order as the portable ``MaxPool2d`` does, and the backward accumulates
    where overlapping windows share their maximum). Its ndtr is no fast path: (1 + erf)/2
    cancels to 0 below z = -5.4 in float32, -8.4 in float64.
    """

    install_hint = 'pip install torch (or ".[torch]")'
    dlpack = True

    def __init__(self) -> None:
        super().__init__("torch")

    def owns(self, x: Any) -> bool:
        return array_api_compat.is_torch_array(x)

    def owns_namespace(self, xp: Any) -> bool:
        return array_api_compat.is_torch_namespace(xp)

    def load(self) -> Any:
        importlib.import_module("torch")
        return importlib.import_module("array_api_compat.torch")

    def default_device(self) -> Any:
        torch = importlib.import_module("torch")
        return torch.device("cuda") if torch.cuda.is_available() else torch.device("cpu")

    def to_numpy(self, x: Any) -> np.ndarray:
        if x.dtype == importlib.import_module("torch").bfloat16:
            raise TypeError(
                "a torch.bfloat16 tensor has no NumPy dtype: convert it first, e.g. x.float()"
            )
        return x.detach().cpu().numpy()

    def lazy_view(self, x: Any) -> str | None:
        if x.is_conj() or x.is_neg():  # a view torch conjugates or negates when read
            return "its conjugate or negative bit is set: its values are not its memory's"
        return None

    def strides(self, x: Any) -> tuple[int, ...] | None:
        return tuple(x.stride())

    def dlpack_export(self, x: Any) -> Any:
        """``x`` detached, its conjugate and negative bits applied (DLPack refuses them)."""
        return x.detach().resolve_conj().resolve_neg()

    def contiguous_copy(self, x: Any) -> Any:
        torch = importlib.import_module("torch")
        return x.detach().clone(memory_format=torch.contiguous_format)

    def synchronize(self, x: Any) -> None:
        if x.device.type == "cuda":
            importlib.import_module("torch").cuda.synchronize(x.device)

    def set_matmul_precision(self, precision: str) -> None:
        try:
            torch = importlib.import_module("torch")
        except ImportError:
            return
        torch.backends.cuda.matmul.allow_tf32 = precision == "tf32"
        torch.backends.cudnn.allow_tf32 = precision == "tf32"

    def ndtr(self) -> Callable[[Any], Any] | None:
        return importlib.import_module("torch.special").ndtr

    # ------------------------------------------------------------------ native paths

    def conv2d(
        self, x: Any, w: Any, stride: tuple[int, ...], padding: Sides,
        dilation: tuple[int, ...], groups: int,
    ) -> Any:  # fmt: skip
        functional = importlib.import_module("torch.nn.functional")
        both, extra = _split(padding)
        if any(extra):
            x = functional.pad(x, extra)
        return functional.conv2d(x, w, None, stride, both, dilation, groups)

    def conv2d_input_grad(
        self, dy: Any, w: Any, input_shape: Sequence[int], stride: tuple[int, ...],
        padding: Sides, dilation: tuple[int, ...], groups: int,
    ) -> Any:  # fmt: skip
        """The transposed convolution (``conv_transpose2d``) for x padded by the extra zeros
        of one side, cropped to x; ``output_padding`` adds the rows (columns) past the last
        window. ``torch.nn.grad.conv2d_input`` computes the same through
        ``convolution_backward`` of an expanded dummy input, which oneDNN copies first
        (1.5-2x the time of this at batch 64, 16 channels of 28x28, one thread)."""
        functional = importlib.import_module("torch.nn.functional")
        both, (left, right, top, bottom) = _split(padding)
        n, c, h, v = input_shape
        shape = (n, c, h + top + bottom, v + left + right)
        rem = [
            (m + 2 * p - d * (k - 1) - 1) % s
            for m, p, d, k, s in zip(shape[2:], both, dilation, w.shape[2:], stride)
        ]
        dx = functional.conv_transpose2d(dy, w, None, stride, both, rem, groups, dilation)
        return dx[:, :, top : top + h, left : left + v] if shape != tuple(input_shape) else dx

    def conv2d_weight_grad(
        self, x: Any, dy: Any, weight_shape: Sequence[int], stride: tuple[int, ...],
        padding: Sides, dilation: tuple[int, ...], groups: int,
    ) -> Any:  # fmt: skip
        grad = importlib.import_module("torch.nn.grad")
        both, extra = _split(padding)
        if any(extra):
            x = importlib.import_module("torch.nn.functional").pad(x, extra)
        return grad.conv2d_weight(x, tuple(weight_shape), dy, stride, both, dilation, groups)

    def max_pool2d(self, x: Any, kernel: Sequence[int], stride: Sequence[int]) -> Any:
        functional = importlib.import_module("torch.nn.functional")
        return functional.max_pool2d(x, tuple(kernel), tuple(stride), return_indices=True)

    def max_pool2d_backward(
        self, dy: Any, x: Any, indices: Any, kernel: Sequence[int], stride: Sequence[int]
    ) -> Any:
        """dx of dy's dtype, as the portable path's (aten refuses an x of another dtype)."""
        if x.dtype != dy.dtype:
            x = x.to(dy.dtype)
        aten = importlib.import_module("torch").ops.aten
        return aten.max_pool2d_with_indices_backward(
            dy, x, list(kernel), list(stride), [0, 0], [1, 1], False, indices
        )


def _split(padding: Sides) -> tuple[tuple[int, ...], tuple[int, ...]]:
    """Zeros ((pt, pb), (pl, pr)) as torch's conv2d padding (the same on both sides of each
    axis) and the extra zeros of one side for ``pad`` first: (left, right, top, bottom)."""
    both = tuple(min(a, b) for a, b in padding)
    (pt, pb), (pl, pr) = padding
    return both, (pl - both[1], pr - both[1], pt - both[0], pb - both[0])
