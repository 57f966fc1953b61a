"""backendnn: neural networks with hand-written backpropagation, written once against
the Python Array API standard, running on NumPy, CuPy, JAX, PyTorch and array-api-strict."""

from . import activations
from ._backend import (
    BACKENDS,
    array_namespace,
    get_backend,
    get_matmul_precision,
    set_backend,
    set_matmul_precision,
    to_backend,
    to_numpy,
    use_backend,
)

__version__ = "0.1.0"

__all__ = [
    "BACKENDS",
    "activations",
    "array_namespace",
    "get_backend",
    "get_matmul_precision",
    "set_backend",
    "set_matmul_precision",
    "to_backend",
    "to_numpy",
    "use_backend",
]
