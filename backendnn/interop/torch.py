"""Networks to and from PyTorch modules, layer for layer: :func:`from_torch` turns a
``torch.nn.Sequential`` with its weights and running statistics into a
:class:`~backendnn.Network` with its parameters and state, :func:`to_torch` the inverse;
:class:`Residual` is the torch module that stands for a residual block.

The modules each layer is (a nested ``Sequential`` is read as its modules in order)::

    Dense(n_in, n_out, bias)        Linear(n_in, n_out, bias)       weight = W^T
    GatedDense(n_in, h, "glu")      Linear(n_in, 2h), GLU(-1)       the halves swapped
    Conv1d, Conv2d                  Conv1d, Conv2d                  padding_mode="zeros"
    MaxPool1d/2d, AvgPool1d/2d      MaxPool1d/2d, AvgPool1d/2d      no padding, floor
    GlobalAvgPool1d/2d              AdaptiveAvgPool1d/2d(1), Flatten()
    BatchNorm1d/2d, LayerNorm       BatchNorm1d/2d, LayerNorm       same names and buffers
    Dropout(p), Flatten()           Dropout(p), Flatten()
    Activation(relu, tanh, sigmoid, identity, silu, gelu, gelu_tanh, softplus, softmax,
               log_softmax)         ReLU, Tanh, Sigmoid, Identity, SiLU, GELU(),
                                    GELU("tanh"), Softplus(), Softmax(-1), LogSoftmax(-1)
    Residual(layers, shortcut)      Residual(Sequential(...), Sequential(...) or None)

A torch option backendnn lacks (pool padding, dilation or ``ceil_mode``, a padding mode
other than zeros, a GLU gate other than the sigmoid, softmax over an axis other than the
last) is refused with an error naming the module. Options that do not change the output
(``inplace``; ``count_include_pad`` of a pool without padding) come back as PyTorch's
defaults. torch's ``Softplus`` returns x itself where x > ``threshold`` (accepted from 20
up: it then differs from log(1 + e^x) by less than e^-20 ~ 2e-9).

torch is imported inside the functions: it is optional.

Imports ``backendnn.network``, ``_backend`` and ``interop._torch_layers`` (the maps).
"""

from __future__ import annotations

from typing import Any

from .._backend import default_device, from_numpy, namespace, to_numpy
from ..network import Network
from ._torch_layers import _convert, _flat, _modules, _residual_class, _torch

__all__ = [
    "from_torch",
    "to_torch",
    "Residual",  # noqa: F822 (made by the module's __getattr__: torch is optional)
]


def __getattr__(name: str) -> Any:
    if name == "Residual":  # a torch module: made when first asked for (torch is optional)
        return _residual_class()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


# --------------------------------------------------------------------------- from torch


def from_torch(
    module: Any, *, backend: str | None = None, device: Any = None, dtype: Any = None
) -> tuple[Network, list, list | None]:
    """A backendnn network with the weights and running statistics of a torch module.

    Each module becomes one layer (see the module docstring's table; a nested
    ``Sequential`` is read as its modules in order, two modules may make one layer): a
    ``Linear``'s weight (out, in) becomes W = weight^T of shape (in, out), a
    convolution's keeps its layout, batch norm's ``running_mean``, ``running_var`` and
    ``num_batches_tracked`` become the layer's state. ``network.forward(params, X, state)``
    then computes ``module.eval()(X)``. The module is not changed.

    Parameters
    ----------
    module : torch.nn.Sequential or torch.nn.Module
        The network; a module other than a ``Sequential`` is a network of one module.
    backend : str, optional
        The backend of the returned arrays (``"numpy"``, ``"jax"``, ``"torch"``, ...);
        default: the current one (``backendnn.set_backend``).
    device : device, optional
        Their device; default: the backend's default device.
    dtype : str or dtype of the backend, optional
        Their floating dtype; default: that of the module's first parameter or buffer
        (float32 for a module without any).

    Returns
    -------
    network : Network
        The layers, every size set.
    params : list of tuple of arrays
        One tuple per layer, as ``network.init`` makes them.
    state : list of tuple of arrays or None
        One tuple per layer, as ``network.init_state`` makes them; None when no layer has
        state.

    Raises
    ------
    TypeError
        For a module with no backendnn layer (an ``LSTM``, a module of your own), naming
        it and its place (``"2.body.0"``, as its ``state_dict`` keys name it).
    ValueError
        For an option of a supported module that backendnn does not have (a pool's
        ``ceil_mode=True``, ``padding_mode="reflect"``, ``Softmax(dim=1)``), naming it;
        for a module with forward hooks (which change its output), a lazy module not yet
        run, tensors on the meta device or of a dtype NumPy lacks (bfloat16).
    ImportError
        If torch is not installed.

    Examples
    --------
    >>> import numpy as np, torch
    >>> import backendnn as bn
    >>> module = torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.Tanh(),
    ...                              torch.nn.Linear(4, 2)).double()
    >>> network, params, state = bn.from_torch(module, backend="numpy")
    >>> network, state
    (Network([Dense(3, 4), Activation(Tanh()), Dense(4, 2)]), None)
    >>> x = np.ones((5, 3))
    >>> bool(np.allclose(network.forward(params, x), module(torch.ones(5, 3).double()).detach()))
    True
    """
    torch = _torch()
    found = _convert(torch, list(_flat(torch, module, "")))
    network = Network([layer for layer, _, _ in found])
    xp = namespace(backend)
    device = default_device(backend) if device is None else device
    if dtype is None:
        first = next((a for _, p, s in found for a in (*p, *s) if a.dtype.kind == "f"), None)
        dtype = "float32" if first is None else first.dtype.name
    dtype = getattr(xp, dtype) if isinstance(dtype, str) else dtype

    def move(arrays: tuple) -> tuple:
        return tuple(from_numpy(a, xp=xp, device=device, dtype=dtype) for a in arrays)

    params = [move(p) for _, p, _ in found]
    state = [move(s) for _, _, s in found] if network.has_state else None
    return network, params, state


# --------------------------------------------------------------------------- to torch


def to_torch(network: Network, params: list, state: list | None = None) -> Any:
    """A ``torch.nn.Sequential`` with the layers and weights of a backendnn network.

    The inverse of :func:`from_torch` (see the module docstring's table): W of shape
    (in, out) becomes a ``Linear``'s weight W^T, batch norm's state its buffers. The
    module is on the CPU in evaluation mode, with the dtype of the parameters; its
    output for X is ``network.forward(params, X, state)``. Call ``.train()`` to train
    it in torch, ``.to(device)`` to move it.

    Parameters
    ----------
    network : Network
        The layers, every size set (``network.build(input_shape)`` sets them).
    params : list of tuple of arrays
        One tuple per layer, as ``network.init`` makes them (any backend and device).
    state : list of tuple of arrays, optional
        The layers' state, as ``network.init_state`` makes it; needed where a layer has
        state.

    Returns
    -------
    torch.nn.Sequential
        One module per layer (two for a ``GatedDense`` and a global pool; a
        :class:`~backendnn.interop.torch.Residual` per residual block).

    Raises
    ------
    TypeError
        For a layer torch has no module for (a GatedDense with a gate other than
        ``"glu"``, a custom layer or activation), naming it and its index.
    ValueError
        If ``params`` or ``state`` do not match the layers, a size is left to infer, or
        state is missing.
    ImportError
        If torch is not installed.

    Examples
    --------
    >>> import numpy as np, torch
    >>> import backendnn as bn
    >>> network = bn.Network.mlp(3, (4,), 2, activation="tanh")
    >>> params = network.init(seed=0, xp=np, dtype=np.float64)
    >>> module = bn.to_torch(network, params)
    >>> module
    Sequential(
      (0): Linear(in_features=3, out_features=4, bias=True)
      (1): Tanh()
      (2): Linear(in_features=4, out_features=2, bias=True)
    )
    >>> y = module(torch.ones(5, 3, dtype=torch.float64)).detach().numpy()
    >>> bool(np.allclose(y, network.forward(params, np.ones((5, 3)))))
    True
    """
    torch = _torch()
    layers = network.layers
    if len(params) != len(layers):
        raise ValueError(f"to_torch: params hold {len(params)} tuples for {len(layers)} layers")
    if network.has_state and state is None:
        raise ValueError(
            "to_torch: the network has state (batch norm's running statistics): pass "
            "state=, e.g. a fitted model's or network.init_state(...)"
        )
    states = state if state is not None else [()] * len(layers)
    if len(states) != len(layers):
        raise ValueError(f"to_torch: state holds {len(states)} tuples for {len(layers)} layers")
    arrays = [a for p in (*params, *states) for a in p]
    name = to_numpy(arrays[0]).dtype.name if arrays else "float32"
    dtype = getattr(torch, name)
    modules: list = []
    for i, (layer, p, s) in enumerate(zip(layers, params, states)):
        modules += _modules(torch, layer, tuple(p), tuple(s), dtype, f"layer {i}")
    return torch.nn.Sequential(*modules).eval()
