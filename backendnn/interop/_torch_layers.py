"""The module-by-module maps behind :mod:`backendnn.interop.torch`: a torch module (or two:
``Linear`` then ``GLU``, ``AdaptiveAvgPool(1)`` then ``Flatten``) to a layer with its
arrays as NumPy, and a layer with its arrays to torch modules; the torch
:class:`~backendnn.interop.torch.Residual` module.

Imports :mod:`backendnn.layers`, ``activations`` and ``_backend``.
"""

from __future__ import annotations

import functools
from typing import Any

import numpy as np

from .. import activations as _act
from .. import layers as L
from .._backend import to_numpy, torch_package

#: backendnn activation name -> (torch class name, its arguments)
_TORCH_ACTIVATIONS: dict[str, tuple[str, dict[str, Any]]] = {
    "identity": ("Identity", {}),
    "relu": ("ReLU", {}),
    "tanh": ("Tanh", {}),
    "sigmoid": ("Sigmoid", {}),
    "silu": ("SiLU", {}),
    "gelu": ("GELU", {}),
    "gelu_tanh": ("GELU", {"approximate": "tanh"}),
    "softplus": ("Softplus", {}),
    "softmax": ("Softmax", {"dim": -1}),
    "log_softmax": ("LogSoftmax", {"dim": -1}),
}
_SUPPORTED = (
    "Linear (a GLU after one), Conv1d, Conv2d, MaxPool1d/2d, AvgPool1d/2d, "
    "AdaptiveAvgPool1d/2d(1) then Flatten, BatchNorm1d/2d, LayerNorm, Dropout, Flatten, "
    "ReLU, Tanh, Sigmoid, Identity, SiLU, GELU, Softplus, Softmax, LogSoftmax, nested "
    "Sequential and backendnn.interop.torch.Residual"
)


#: the torch dtypes of a module's tensors that NumPy holds (not bfloat16, float8...)
_NUMPY_DTYPES = frozenset(
    ("torch.float16", "torch.float32", "torch.float64", "torch.int64", "torch.int32", "torch.bool")
)


def _torch() -> Any:
    return torch_package("converting to or from PyTorch")


_RESIDUAL_DOC = """A residual block as a torch module: y = body(x) + shortcut(x).

    What :func:`to_torch` makes of a :class:`backendnn.layers.Residual` and what
    :func:`from_torch` reads as one (torch has no residual module of its own).

    Parameters
    ----------
    body : torch.nn.Sequential
        f's modules, input first.
    shortcut : torch.nn.Sequential or None, default None
        The shortcut's modules; None is the identity.

    Examples
    --------
    >>> import torch
    >>> from backendnn.interop.torch import Residual
    >>> block = Residual(torch.nn.Sequential(torch.nn.Linear(3, 3), torch.nn.ReLU()))
    >>> block(torch.zeros(2, 3)).shape
    torch.Size([2, 3])
    """
# the class is made when torch is first asked for: doctest finds its examples here
__test__ = {"Residual": _RESIDUAL_DOC}


@functools.cache
def _residual_class() -> type:
    """The :class:`Residual` torch module, made once torch is imported."""
    module: Any = _torch().nn.Module

    class Residual(module):
        __doc__ = _RESIDUAL_DOC

        def __init__(self, body: Any, shortcut: Any = None):
            super().__init__()
            self.body = body
            self.register_module("shortcut", shortcut)

        def forward(self, x: Any) -> Any:
            """body(x) + shortcut(x), x itself where the shortcut is None."""
            return self.body(x) + (x if self.shortcut is None else self.shortcut(x))

    Residual.__module__ = "backendnn.interop.torch"  # where users find it
    Residual.__qualname__ = "Residual"
    return Residual


# --------------------------------------------------------------------------- from torch


def _flat(torch: Any, module: Any, path: str) -> Any:
    """(path, module) of every module in order, nested ``Sequential``s opened; a module
    with forward hooks is refused (they change its output: the old ``spectral_norm``)."""
    if isinstance(module, torch.nn.modules.lazy.LazyModuleMixin):
        raise _refuse(path, module, "a lazy module has no weights yet: run it on a batch first")
    if module._forward_hooks or module._forward_pre_hooks:
        raise _refuse(path, module, "it has forward hooks, which change its output; remove them")
    if type(module) is torch.nn.Sequential:
        for name, child in module.named_children():
            yield from _flat(torch, child, f"{path}.{name}" if path else name)
    else:
        yield path, module


def _convert(torch: Any, modules: list) -> list[tuple[Any, tuple, tuple]]:
    """(layer, params, buffers) for the ``(path, module)`` list, arrays as NumPy."""
    nn, converted, i = torch.nn, [], 0
    while i < len(modules):
        path, m = modules[i]
        following = modules[i + 1][1] if i + 1 < len(modules) else None
        if type(m) is nn.Linear and type(following) is nn.GLU:
            converted.append(_gated(m, following, path))
            i += 2
            continue
        if type(m) in (nn.AdaptiveAvgPool1d, nn.AdaptiveAvgPool2d):
            converted.append(_global_pool(nn, m, following, path))
            i += 2
            continue
        converted.append(_one(torch, m, path))
        i += 1
    return converted


def _where(path: str, m: Any) -> str:
    return f"module {path!r} ({m!r})" if path else f"module {m!r}"


def _refuse(path: str, m: Any, why: str) -> ValueError:
    return ValueError(f"from_torch: {_where(path, m)}: {why}")


def _np(t: Any) -> np.ndarray:
    if t.is_meta:
        raise ValueError(
            "from_torch: the module has tensors on the meta device (shapes, no values): "
            "load its weights first (module.to_empty(device='cpu'), then load_state_dict)"
        )
    if str(t.dtype) not in _NUMPY_DTYPES:
        raise ValueError(
            f"from_torch: the module has {t.dtype} tensors, which NumPy has no dtype for: "
            "convert it first, e.g. module.float()"
        )
    return t.detach().cpu().numpy().copy()


def _one(torch: Any, m: Any, path: str) -> tuple[Any, tuple, tuple]:
    """The layer of one module, its parameters and buffers."""
    nn, kind = torch.nn, type(m)
    layer: Any
    if kind is nn.Linear:
        layer = L.Dense(m.in_features, m.out_features, bias=m.bias is not None)
        return layer, (_np(m.weight).T.copy(), *_biases(m)), ()
    if kind in (nn.Conv1d, nn.Conv2d):
        return _conv(nn, m, path), (_np(m.weight), *_biases(m)), ()
    if kind in (nn.MaxPool1d, nn.MaxPool2d, nn.AvgPool1d, nn.AvgPool2d):
        return _pool(nn, m, path), (), ()
    if kind in (nn.BatchNorm1d, nn.BatchNorm2d):
        # in eval, torch normalises by the running statistics where it has them, whatever
        # track_running_stats says now (it may be set after construction)
        tracks = m.running_mean is not None
        layer = getattr(L, kind.__name__)(
            m.num_features, m.eps, m.momentum, m.affine, tracks,
            bias=not m.affine or m.bias is not None,
        )  # fmt: skip
        weights = (_np(m.weight), *_biases(m)) if m.affine else ()
        buffers: tuple = ()
        if tracks:
            count = np.asarray(float(m.num_batches_tracked))
            buffers = (_np(m.running_mean), _np(m.running_var), count)
        return layer, weights, buffers
    if kind is nn.LayerNorm:
        affine = m.elementwise_affine
        has_bias = not affine or m.bias is not None
        layer = L.LayerNorm(tuple(m.normalized_shape), m.eps, affine, bias=has_bias)
        return layer, ((_np(m.weight), *_biases(m)) if affine else ()), ()
    if kind is nn.Dropout:
        return L.Dropout(m.p), (), ()
    if kind is nn.Flatten:
        if (m.start_dim, m.end_dim) != (1, -1):
            raise _refuse(
                path, m, "backendnn's Flatten keeps axis 0 only (start_dim=1, end_dim=-1)"
            )
        return L.Flatten(), (), ()
    if kind is _residual_class():
        body = _convert(torch, list(_flat(torch, m.body, f"{path}.body")))
        short = [] if m.shortcut is None else list(_flat(torch, m.shortcut, f"{path}.shortcut"))
        branch = _convert(torch, short)
        layer = L.Residual([e[0] for e in body], [e[0] for e in branch] or None)
        both = body + branch
        return layer, sum((e[1] for e in both), ()), sum((e[2] for e in both), ())
    name = _activation_name(nn, m, path)
    if name is None:
        where = f"{path!r}" if path else "the top"
        raise TypeError(
            f"from_torch: module {type(m).__name__} at {where} ({m!r}) has no backendnn "
            f"layer; supported: {_SUPPORTED}"
        )
    return L.Activation(name), (), ()


def _biases(m: Any) -> tuple:
    return () if m.bias is None else (_np(m.bias),)


def _gated(linear: Any, glu: Any, path: str) -> tuple[Any, tuple, tuple]:
    """Linear(n_in, 2h) then GLU: torch gates the first half by the second, sigmoid(second)
    * first; GatedDense gates columns [h:] by [:h], so the halves swap."""
    if glu.dim not in (-1, 1):
        raise _refuse(path, glu, "GatedDense gates the last axis: use GLU(dim=-1)")
    if linear.bias is None or linear.out_features % 2:
        raise _refuse(path, linear, "a GatedDense is a Linear with a bias and an even width")
    h = linear.out_features // 2
    W, b = _np(linear.weight), _np(linear.bias)
    W = np.concatenate([W[h:], W[:h]]).T.copy()
    return L.GatedDense(linear.in_features, h, "glu"), (W, np.concatenate([b[h:], b[:h]])), ()


def _global_pool(nn: Any, m: Any, following: Any, path: str) -> tuple[Any, tuple, tuple]:
    n = 1 if type(m) is nn.AdaptiveAvgPool1d else 2
    size = m.output_size if isinstance(m.output_size, tuple) else (m.output_size,) * n
    flat = type(following) is nn.Flatten and (following.start_dim, following.end_dim) == (1, -1)
    if size != (1,) * n or not flat:
        raise _refuse(
            path, m, "backendnn's global pools are AdaptiveAvgPool(1) followed by Flatten()"
        )
    layer = L.GlobalAvgPool1d() if n == 1 else L.GlobalAvgPool2d()
    return layer, (), ()


def _ints(value: Any, n: int) -> tuple[int, ...]:
    return tuple(value) if isinstance(value, (tuple, list)) else (value,) * n


def _conv(nn: Any, m: Any, path: str) -> Any:
    if m.padding_mode != "zeros":
        raise _refuse(path, m, f"padding_mode={m.padding_mode!r}: backendnn pads with zeros only")
    args = (m.in_channels, m.out_channels, m.kernel_size, m.stride, m.padding, m.dilation)
    if type(m) is nn.Conv1d:
        args = (*args[:2], *(a if isinstance(a, str) else a[0] for a in args[2:]))
        return L.Conv1d(*args, groups=m.groups, bias=m.bias is not None)
    return L.Conv2d(*args, groups=m.groups, bias=m.bias is not None)


def _pool(nn: Any, m: Any, path: str) -> Any:
    n = 1 if type(m) in (nn.MaxPool1d, nn.AvgPool1d) else 2
    checks = {"padding": (_ints(m.padding, n), (0,) * n), "ceil_mode": (m.ceil_mode, False)}
    if hasattr(m, "dilation"):  # max pools
        checks["dilation"] = (_ints(m.dilation, n), (1,) * n)
        checks["return_indices"] = (m.return_indices, False)
    else:
        checks["divisor_override"] = (getattr(m, "divisor_override", None), None)
    for name, (value, default) in checks.items():
        if value != default:
            raise _refuse(
                path, m, f"{name} must be {default!r} (backendnn's pools have no such option)"
            )
    kernel, stride = _ints(m.kernel_size, n), _ints(m.stride or m.kernel_size, n)
    cls = getattr(L, type(m).__name__)
    return cls(kernel[0], stride[0]) if n == 1 else cls(kernel, stride)


def _activation_name(nn: Any, m: Any, path: str) -> str | None:
    """The backendnn activation of a torch activation module (None for other modules)."""
    kind = type(m)
    plain = {nn.Identity: "identity", nn.ReLU: "relu", nn.Tanh: "tanh",
             nn.Sigmoid: "sigmoid", nn.SiLU: "silu"}  # fmt: skip
    if kind in plain:
        return plain[kind]
    if kind is nn.GELU:
        return {"none": "gelu", "tanh": "gelu_tanh"}[m.approximate]
    if kind is nn.Softplus:
        if m.beta != 1 or m.threshold < 20:
            raise _refuse(path, m, "backendnn's softplus is log(1 + e^x): beta=1, threshold >= 20")
        return "softplus"
    if kind in (nn.Softmax, nn.LogSoftmax):
        if m.dim != -1:
            raise _refuse(path, m, "backendnn's softmax acts on the last axis: use dim=-1")
        return "softmax" if kind is nn.Softmax else "log_softmax"
    return None


# --------------------------------------------------------------------------- to torch


def _modules(torch: Any, layer: Any, p: tuple, s: tuple, dtype: Any, where: str) -> list:
    """The torch modules of one layer, its weights loaded."""
    try:
        shapes = [tuple(d.shape) for d in (*layer.parameters(), *layer.buffers())]
    except ValueError as exc:  # a size left to infer
        raise ValueError(f"to_torch: {where} ({layer!r}): {exc}") from None
    if [tuple(a.shape) for a in (*p, *s)] != shapes:
        raise ValueError(
            f"to_torch: {where} ({layer!r}) declares arrays of shapes {shapes}, got "
            f"{[tuple(a.shape) for a in (*p, *s)]}"
        )
    nn, kind = torch.nn, type(layer)
    host = tuple(to_numpy(a) for a in p)
    cfg = layer.config()
    if kind is L.Dense:
        m = nn.Linear(layer.n_in, layer.n_out, bias=layer.bias, dtype=dtype)
        return [_load(torch, m, {"weight": host[0].T, "bias": host[1:]})]
    if kind is L.GatedDense and layer.gate.name == "glu" and layer.gate == _act.get("glu"):
        h = layer.n_out
        m = nn.Linear(layer.n_in, 2 * h, dtype=dtype)
        W, c = host
        weights = {"weight": np.concatenate([W[:, h:], W[:, :h]], axis=1).T,
                   "bias": np.concatenate([c[h:], c[:h]])}  # fmt: skip
        return [_load(torch, m, weights), nn.GLU(dim=-1)]
    if kind in (L.Conv1d, L.Conv2d):
        m = getattr(nn, kind.__name__)(**cfg, dtype=dtype)
        return [_load(torch, m, {"weight": host[0], "bias": host[1:]})]
    if kind in (L.MaxPool1d, L.MaxPool2d, L.AvgPool1d, L.AvgPool2d):
        short = {
            k: v[0] if isinstance(v, tuple) and len(set(v)) == 1 else v for k, v in cfg.items()
        }
        return [getattr(nn, kind.__name__)(**short)]
    if kind in (L.GlobalAvgPool1d, L.GlobalAvgPool2d):
        pool = nn.AdaptiveAvgPool1d if kind is L.GlobalAvgPool1d else nn.AdaptiveAvgPool2d
        return [pool(1), nn.Flatten()]
    if kind in (L.BatchNorm1d, L.BatchNorm2d):
        m = getattr(nn, kind.__name__)(**cfg, dtype=dtype)
        weights = dict(zip(layer.param_names, host))
        names = ("running_mean", "running_var", "num_batches_tracked")
        weights.update(zip(names, [to_numpy(a) for a in s]))
        if s:
            weights["num_batches_tracked"] = np.rint(weights["num_batches_tracked"])
        return [_load(torch, m, weights)]
    if kind is L.LayerNorm:
        m = nn.LayerNorm(**cfg, dtype=dtype)
        return [_load(torch, m, dict(zip(layer.param_names, host)))]
    if kind is L.Dropout:
        return [nn.Dropout(layer.p)]
    if kind is L.Flatten:
        return [nn.Flatten()]
    if kind is L.Activation:
        return [_torch_activation(nn, layer, where)]
    if kind is L.Residual:
        return [_residual(torch, layer, p, s, dtype, where)]
    raise TypeError(
        f"to_torch: {where} ({layer!r}) has no torch module; supported: Dense, GatedDense "
        "with the 'glu' gate, Conv1d/2d, the pools, BatchNorm1d/2d, LayerNorm, Dropout, "
        "Flatten, Activation and Residual"
    )


def _load(torch: Any, m: Any, weights: dict[str, Any]) -> Any:
    """``m`` with its named parameters and buffers set to the host arrays ``weights`` (a
    tuple of at most one array for an optional bias)."""
    with torch.no_grad():
        for name, a in weights.items():
            if isinstance(a, tuple):
                if not a:
                    continue
                (a,) = a
            target = getattr(m, name)
            target.copy_(torch.from_numpy(np.array(a, copy=True)).to(target.dtype))
    return m


def _torch_activation(nn: Any, layer: Any, where: str) -> Any:
    act = layer.activation
    name = "silu" if act == _act.get("swish") else act.name  # Swish(beta=1) is SiLU
    if name not in _TORCH_ACTIVATIONS or act not in (_act.get(name), _act.get("swish")):
        raise TypeError(
            f"to_torch: {where} ({layer!r}): torch has no module for this activation; "
            f"supported: {', '.join(_TORCH_ACTIVATIONS)} (and swish with beta=1)"
        )
    cls, kwargs = _TORCH_ACTIVATIONS[name]
    return getattr(nn, cls)(**kwargs)


def _residual(torch: Any, layer: Any, p: tuple, s: tuple, dtype: Any, where: str) -> Any:
    """The :class:`Residual` of a block: each branch's sub-layers with their slices of the
    block's parameters (f's first) and state."""
    branches = []
    for label, sub_layers in (("f", layer.layers), ("shortcut", layer.shortcut or ())):
        modules = []
        for j, sub in enumerate(sub_layers):
            n_p, n_s = len(sub.parameters()), len(sub.buffers())
            sub_where = f"{where} {label}[{j}]"
            modules += _modules(torch, sub, p[:n_p], s[:n_s], dtype, sub_where)
            p, s = p[n_p:], s[n_s:]
        branches.append(torch.nn.Sequential(*modules) if modules else None)
    return _residual_class()(*branches)
