"""References written from the formulas, never with backendnn code; shared by the tests.

- ``jax_activation(name)`` / ``torch_activation(name)``: activations with jax.nn /
  torch.nn.functional (or their formulas). They return f(z) for an element-wise (or
  row-wise softmax) name and ``f(a, b) = g(a) * b`` for a GLU name (``GATES`` names g).
  A name with no formula fails the calling test loudly.
- ``np_forward(act, weights, X)``: an MLP's output h_{W,b}(X) in NumPy/SciPy.
- ``phi_reference(x)`` / ``gelu_reference(x)``: Phi(x) and x Phi(x) in float64 from
  ``math.erfc``, correct to a few ulp.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from decimal import Decimal, localcontext

import numpy as np
import pytest
import scipy.special as sps

from backendnn import activations

#: the gate g of each GLU variant: f(a, b) = g(a) * b
GATES = {"glu": "sigmoid", "reglu": "relu", "geglu": "gelu", "swiglu": "swish"}


def _pick(table: dict, name: str, library: str) -> Callable:
    if name in GATES:
        gate = _pick(table, GATES[name], library)
        return lambda a, b: gate(a) * b
    if name not in table:
        pytest.fail(
            f"no {library} reference formula for activation {name!r}: add one to {__name__}"
        )
    return table[name]


def jax_activation(name: str, beta: float = 1.0) -> Callable:
    import jax
    import jax.numpy as jnp

    return _pick(
        {
            "identity": lambda z: z,
            "sigmoid": jax.nn.sigmoid,
            "logistic": jax.nn.sigmoid,
            "tanh": jnp.tanh,
            "relu": jax.nn.relu,
            "gelu": lambda z: jax.nn.gelu(z, approximate=False),
            "gelu_tanh": lambda z: jax.nn.gelu(z, approximate=True),
            "silu": jax.nn.silu,
            "swish": lambda z: z * jax.nn.sigmoid(beta * z),
            "softplus": jax.nn.softplus,
            "softmax": lambda z: jax.nn.softmax(z, axis=-1),
            "log_softmax": lambda z: jax.nn.log_softmax(z, axis=-1),
        },
        name,
        "JAX",
    )


def torch_activation(name: str, beta: float = 1.0) -> Callable:
    import torch
    import torch.nn.functional as F

    if name == "glu":  # torch's own GLU: F.glu(cat([b, a])) = b * sigmoid(a)
        return lambda a, b: F.glu(torch.cat([b, a], dim=-1), dim=-1)
    return _pick(
        {
            "identity": lambda z: z,
            "sigmoid": torch.sigmoid,
            "logistic": torch.sigmoid,
            "tanh": torch.tanh,
            "relu": torch.relu,
            "gelu": lambda z: F.gelu(z, approximate="none"),
            "gelu_tanh": lambda z: F.gelu(z, approximate="tanh"),
            "silu": F.silu,
            "swish": lambda z: z * torch.sigmoid(beta * z),
            # exact log(1 + e^z) (F.softplus switches to z above its threshold of 20)
            "softplus": lambda z: torch.logaddexp(z, torch.zeros_like(z)),
            "softmax": lambda z: F.softmax(z, dim=-1),
            "log_softmax": lambda z: F.log_softmax(z, dim=-1),
        },
        name,
        "torch",
    )


# ---------------------------------------------------------------------------- NumPy forward

_SQRT_2_OVER_PI = math.sqrt(2.0 / math.pi)


def _np_gelu(z):
    return 0.5 * z * sps.erfc(-z / math.sqrt(2.0))


_NP_ACT = {
    "identity": lambda z: z,
    "sigmoid": sps.expit,
    "logistic": sps.expit,
    "tanh": np.tanh,
    "relu": lambda z: np.maximum(z, 0.0),
    "gelu": _np_gelu,
    "gelu_tanh": lambda z: 0.5 * z * (1.0 + np.tanh(_SQRT_2_OVER_PI * (z + 0.044715 * z**3))),
    "silu": lambda z: z * sps.expit(z),
    "swish": lambda z: z * sps.expit(z),
    "softplus": lambda z: np.logaddexp(0.0, z),
    # GLU family: the gate g acts on the first half a of the projection, y = g(a) * b
    "glu": sps.expit,
    "reglu": lambda z: np.maximum(z, 0.0),
    "geglu": _np_gelu,
    "swiglu": lambda z: z * sps.expit(z),
}


def np_forward(act: str, weights, X, *, preacts: list | None = None):
    """h_{W,b}(X) in NumPy: hidden layers f(x W + b) (gated: g(a) * b), linear output."""
    f, gated = _NP_ACT[act], act in activations.GATED
    h = np.reshape(X, (X.shape[0], -1))
    for W, b in weights[:-1]:
        p = h @ W + b
        if gated:
            k = W.shape[1] // 2
            a = p[:, :k]
            h = f(a) * p[:, k:]
        else:
            a = p
            h = f(p)
        if preacts is not None:
            preacts.append(a)
    W, b = weights[-1]
    return h @ W + b


# ---------------------------------------------------------------------------- Phi and GELU


def phi_reference(x: float) -> float:
    """Phi(x) = erfc(-x/sqrt 2)/2 in float64 from math.erfc, correct to a few ulp.

    The rounding of the argument y = -x/sqrt(2) (relative error ~1e-16) is amplified by
    erfc's condition number 2y^2 (~900 at x = -30), so a plain
    ``0.5*math.erfc(-x/math.sqrt(2))`` is itself off by up to 1.6e-13 in the lower tail.
    The argument's rounding error dy is measured exactly with ``decimal`` and corrected
    to first order: erfc(y + dy) = erfc(y) - 2/sqrt(pi) exp(-y^2) dy.
    """
    y = -x / math.sqrt(2.0)
    with localcontext() as ctx:
        ctx.prec = 50
        dy = float(Decimal(-x) / Decimal(2).sqrt() - Decimal(y))
    e = math.erfc(y)
    return 0.5 * (e - 2.0 / math.sqrt(math.pi) * math.exp(-y * y) * dy) if e else 0.0


def gelu_reference(x: float) -> float:
    """0.5*x*erfc(-x/sqrt 2) = x*Phi(x) in float64, correct to a few ulp."""
    return x * phi_reference(x)
