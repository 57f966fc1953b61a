"""PyTorch: :class:`TorchLib`, with torch's own convolutions and max-pool.

Imports torch (lazily) and array_api_compat.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Sequence
from typing import Any

import array_api_compat
import numpy as np

from .library import ArrayLibrary


class TorchLib(ArrayLibrary):
    """PyTorch through ``array_api_compat.torch``: eager, asynchronous on CUDA devices.

    Native paths: ``torch.nn.functional.conv2d`` and its two gradient convolutions
    (``torch.nn.grad``), and the max-pool with its backward (one kernel each, where the
    portable path makes a pass per window offset; both keep the first maximum of a window
    in row-major order as the portable ``MaxPool2d`` does, and the backward accumulates
    where overlapping windows share their maximum). Its ndtr is no fast path: (1 + erf)/2
    cancels to 0 below z = -5.4 in float32, -8.4 in float64.
    """

    install_hint = 'pip install torch (or ".[torch]")'

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
        return x.detach().cpu().numpy()

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

    def conv2d(self, x: Any, w: Any, stride: tuple[int, int], padding: tuple[int, int]) -> Any:
        functional = importlib.import_module("torch.nn.functional")
        return functional.conv2d(x, w, None, stride, padding)

    def conv2d_input_grad(
        self, dy: Any, w: Any, input_shape: Sequence[int], stride: tuple[int, int],
        padding: tuple[int, int],
    ) -> Any:  # fmt: skip
        grad = importlib.import_module("torch.nn.grad")
        return grad.conv2d_input(tuple(input_shape), w, dy, stride, padding)

    def conv2d_weight_grad(
        self, x: Any, dy: Any, weight_shape: Sequence[int], stride: tuple[int, int],
        padding: tuple[int, int],
    ) -> Any:  # fmt: skip
        grad = importlib.import_module("torch.nn.grad")
        return grad.conv2d_weight(x, tuple(weight_shape), dy, stride, padding)

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
