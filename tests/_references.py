"""Reference activations written with jax.nn / torch.nn.functional (or their formulas),
never with backendnn code; shared by the activation and network tests.

``jax_activation(name)`` / ``torch_activation(name)`` return f(z) for an element-wise (or
row-wise softmax) name and ``f(a, b) = g(a) * b`` for a GLU name (``GATES`` names g).
A name with no formula fails the calling test loudly.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest

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
