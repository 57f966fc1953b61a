"""array-api-strict, the standard and nothing else: :class:`StrictLib`.

Imports array_api_strict (lazily) and array_api_compat.
"""

from __future__ import annotations

import importlib
from typing import Any

import array_api_compat
import numpy as np

from .library import ArrayLibrary


class StrictLib(ArrayLibrary):
    """array-api-strict: the standard's functions only, no native fast paths. Its
    ``device1`` refuses ``np.asarray`` (which catches hidden host copies), so arrays reach
    the host through a copy on its CPU device and DLPack."""

    install_hint = "pip install array-api-strict"

    def __init__(self) -> None:
        super().__init__("array_api_strict")

    def owns(self, x: Any) -> bool:
        get_namespace = getattr(x, "__array_namespace__", None)
        return get_namespace is not None and self.owns_namespace(get_namespace())

    def owns_namespace(self, xp: Any) -> bool:
        return array_api_compat.is_array_api_strict_namespace(xp)

    def load(self) -> Any:
        return importlib.import_module("array_api_strict")

    def to_numpy(self, x: Any) -> np.ndarray:
        strict = self.load()
        return np.from_dlpack(strict.asarray(x, device=strict.Device("CPU_DEVICE"), copy=True))
