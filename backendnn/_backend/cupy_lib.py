"""CuPy, NumPy on NVIDIA GPUs: :class:`CupyLib`.

Imports cupy and cupyx (lazily) and array_api_compat.
"""

from __future__ import annotations

import importlib
import os
from collections.abc import Callable
from typing import Any

import array_api_compat
import numpy as np

from .library import ArrayLibrary, element_strides


class CupyLib(ArrayLibrary):
    """CuPy through ``array_api_compat.cupy``: eager, asynchronous on the current CUDA
    stream. No native convolution (CuPy 14 dropped cuDNN: the portable im2col path with
    cuBLAS is the route). Its ndtr (``cupyx.scipy.special``) is offered but not measured as
    a fast path."""

    install_hint = 'pip install ".[cuda12]" (or ".[cuda13]") on a machine with an NVIDIA GPU'
    dlpack = True

    def __init__(self) -> None:
        super().__init__("cupy")

    def owns(self, x: Any) -> bool:
        return array_api_compat.is_cupy_array(x)

    def owns_namespace(self, xp: Any) -> bool:
        return array_api_compat.is_cupy_namespace(xp)

    def load(self) -> Any:
        cupy = importlib.import_module("cupy")
        if cupy.cuda.runtime.getDeviceCount() == 0:  # pragma: no cover - depends on the machine
            raise ImportError("no CUDA device")
        return importlib.import_module("array_api_compat.cupy")

    def default_device(self) -> Any:
        return importlib.import_module("cupy").cuda.Device()

    def to_numpy(self, x: Any) -> np.ndarray:
        return x.get()

    def strides(self, x: Any) -> tuple[int, ...] | None:
        return element_strides(x)

    def contiguous_copy(self, x: Any) -> Any:
        return importlib.import_module("cupy").array(x, order="C", copy=True)

    def synchronize(self, x: Any) -> None:
        importlib.import_module("cupy").cuda.get_current_stream().synchronize()

    def set_matmul_precision(self, precision: str) -> None:
        # CuPy reads this variable when it creates a cuBLAS handle (at its first product)
        os.environ["CUPY_TF32"] = "1" if precision == "tf32" else "0"

    def ndtr(self) -> Callable[[Any], Any] | None:
        return importlib.import_module("cupyx.scipy.special").ndtr
