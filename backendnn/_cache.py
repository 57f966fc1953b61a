"""Caches of compiled functions, keyed on what defines their result.

A compiled training step depends on the network (its layers, their sizes, the activation
objects and their parameters such as Swish's beta), the loss, the penalty, the optimiser
and the backend. :func:`freeze` turns such objects into a hashable key that is equal
exactly when they compute the same function: backendnn's own objects (layers, networks,
activations, optimisers) by their type and attributes, anything else (a user's loss
function, an object whose attributes cannot be hashed) by identity, with the key holding
a reference so the identity cannot be reused while cached. Never ``repr`` or ``id``:
two objects may share a repr, and a freed object's id is given to the next one.

Imports nothing from backendnn.
"""

from __future__ import annotations

import dataclasses
from collections import OrderedDict
from collections.abc import Callable, Hashable
from typing import Any

_PLAIN = (str, bytes, int, float, complex, bool, type(None), type)


class _Identity:
    """Hashes and compares as the object it holds (``is``), keeping it alive."""

    __slots__ = ("obj",)

    def __init__(self, obj: Any):
        self.obj = obj

    def __hash__(self) -> int:
        return id(self.obj)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, _Identity) and other.obj is self.obj


def _by_value(obj: Any) -> bool:
    """Objects of backendnn's own classes (and their subclasses) that define a function by
    their attributes alone, and frozen dataclasses (optimisers). A class with ``__slots__``
    keeps state ``vars`` does not show: such objects go by identity."""
    if any("__slots__" in vars(c) for c in type(obj).__mro__[:-1]):
        return False
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        return True
    return any(c.__module__.startswith("backendnn.") for c in type(obj).__mro__[:-1]) and hasattr(
        obj, "__dict__"
    )


def freeze(obj: Any) -> Hashable:
    """A hashable key for ``obj``, equal for objects that compute the same function."""
    if isinstance(obj, _PLAIN):
        return (type(obj), obj)
    if isinstance(obj, (tuple, list)):
        return (type(obj), tuple(freeze(o) for o in obj))
    if isinstance(obj, dict):
        return (dict, tuple(sorted((repr(k), freeze(v)) for k, v in obj.items())))
    if _by_value(obj):
        fields = vars(obj) if hasattr(obj, "__dict__") else dataclasses.asdict(obj)
        return (type(obj), freeze(dict(fields)))
    return _Identity(obj)


class CompiledCache:
    """At most ``size`` compiled functions, the least recently used dropped first."""

    def __init__(self, size: int = 32):
        self.size = size
        self._items: OrderedDict[Hashable, Callable] = OrderedDict()

    def get(self, key: Hashable, build: Callable[[], tuple[Callable, bool]]) -> Callable:
        """The function cached under ``key``, else ``build()``'s. ``build`` returns the
        function and whether it is worth keeping (compiled: yes; plain Python: no)."""
        if key in self._items:
            self._items.move_to_end(key)
            return self._items[key]
        fn, keep = build()
        if keep:
            self._items[key] = fn
            while len(self._items) > self.size:
                self._items.popitem(last=False)
        return fn

    def __len__(self) -> int:
        return len(self._items)

    def clear(self) -> None:
        self._items.clear()
