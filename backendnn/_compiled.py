"""Compiled functions, kept and reused: the one cache of what ``jax.jit`` compiled
(training steps, L-BFGS objectives, forward passes), keyed by what defines each result
(the network, loss, penalty and optimiser by value, and the array library), never by
``repr`` or ``id``. On the other libraries nothing is compiled and nothing is kept.

Imports :mod:`backendnn._backend` and :mod:`backendnn._cache`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from ._backend import jit, namespace_name
from ._cache import CompiledCache, freeze

_COMPILED = CompiledCache(size=32)


def cached_jit(key: tuple, fn: Callable, xp: Any) -> Callable:
    """``fn`` compiled for namespace ``xp`` (``jax.jit`` on JAX), reused for an equal
    ``key`` (which must say everything ``fn`` depends on besides its arguments)."""

    def build() -> tuple[Callable, bool]:
        compiled = jit(fn, xp)
        return compiled, compiled is not fn  # only compilation is worth keeping

    return _COMPILED.get((*key, namespace_name(xp)), build)


def compiled_forward(network: Any, xp: Any) -> Callable:
    """``network``'s inference pass over all of its input at once (``Network.forward``
    runs it on each block of rows), compiled on JAX and reused for an equal network."""
    return cached_jit(("forward", freeze(network)), network._one_pass, xp)
