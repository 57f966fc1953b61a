"""backendnn: neural networks with hand-written backpropagation, written once against
the Python Array API standard, running on NumPy, CuPy, JAX, PyTorch and array-api-strict."""

from . import activations, callbacks, init, layers, losses, optim, tensors
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
from ._memory import get_memory_budget, memory_budget, set_memory_budget
from ._validation import NotFittedError
from .estimators import (
    MLPClassifier,
    MLPRegressor,
    NeuralNetClassifier,
    NeuralNetRegressor,
    Perceptron,
)
from .gradcheck import check_gradients
from .interop.onnx import export_onnx
from .interop.torch import from_torch, to_torch
from .io import load, save
from .network import Network
from .params import flatten_params, unflatten_params
from .train import ConvergenceError, ConvergenceWarning

__version__ = "0.1.0"

__all__ = [
    "ConvergenceError",
    "ConvergenceWarning",
    "MLPClassifier",
    "MLPRegressor",
    "NeuralNetClassifier",
    "NeuralNetRegressor",
    "NotFittedError",
    "Perceptron",
    "BACKENDS",
    "Network",
    "activations",
    "callbacks",
    "check_gradients",
    "export_onnx",
    "flatten_params",
    "from_torch",
    "init",
    "layers",
    "load",
    "losses",
    "optim",
    "save",
    "tensors",
    "to_torch",
    "unflatten_params",
    "array_namespace",
    "get_backend",
    "get_matmul_precision",
    "get_memory_budget",
    "memory_budget",
    "set_backend",
    "set_matmul_precision",
    "set_memory_budget",
    "to_backend",
    "to_numpy",
    "use_backend",
]
