"""The weight map: a network's parameters and layer buffers by name,
``"layers.{i}.{name}"`` (what model files hold, what prediction, warm starts and
``get_weights``/``set_weights`` read), and moving them to where a fit computes.

Imports :mod:`backendnn._backend` and the sibling ``_inputs`` (types).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .._backend import array_namespace, from_numpy, is_array, namespace_name, to_numpy

if TYPE_CHECKING:
    from ..network import Network
    from ..params import Params
    from ..run_state import LayerState
    from ._inputs import Place


def weight_map(network: Network, params: Params, buffers: list | None = None) -> dict[str, Any]:
    """The parameters (and buffers) of ``network`` by name: ``"layers.{i}.{name}"``."""
    named = {
        f"layers.{i}.{name}": a
        for i, (layer, p) in enumerate(zip(network.layers, params))
        for name, a in zip(layer.param_names, p)
    }
    for i, (layer, s) in enumerate(zip(network.layers, buffers or [])):
        named.update({f"layers.{i}.{b.name}": a for b, a in zip(layer.buffers(), s)})
    return named


def weight_shapes(network: Network) -> dict[str, tuple[int, ...]]:
    """The shape of each parameter and buffer of ``network``, named as :func:`weight_map`
    names them (from the declarations: nothing is allocated)."""
    return {
        f"layers.{i}.{p.name}": tuple(p.shape)
        for i, layer in enumerate(network.layers)
        for p in (*layer.parameters(), *layer.buffers())
    }


def buffers_of(network: Network, weights: dict[str, Any], place: Place | None = None) -> list:
    """The layers' buffers of ``network`` from a weight map (moved to ``place`` if given)."""
    return [
        tuple(placed(weights[f"layers.{i}.{b.name}"], place) for b in layer.buffers())
        for i, layer in enumerate(network.layers)
    ]


def placed(a: Any, place: Place | None) -> Any:
    """``a``, moved through the host to another library, device or precision if given."""
    if place is None:
        return a
    return from_numpy(to_numpy(a), xp=place.xp, device=place.device, dtype=place.dtype)


def placed_tree(tree: list | None, place: Place) -> Any:
    """A list of tuples of arrays moved to ``place``."""
    return None if tree is None else [tuple(placed(a, place) for a in t) for t in tree]


def host_key(layers: LayerState | None) -> tuple[int, int] | None:
    """The random key of ``layers`` as host ints (None without random layers)."""
    key = None if layers is None else layers.key
    return None if key is None else (int(to_numpy(key)[0]), int(to_numpy(key)[1]))


def params_of(network: Network, weights: dict[str, Any], place: Place | None = None) -> Params:
    """The parameters of ``network`` from a weight map (moved to ``place`` if given).

    Raises
    ------
    ValueError
        Where the weights' names or shapes do not match the network (assigned weights of
        another architecture, a warm start after changing the layers).
    """
    expected = weight_shapes(network)
    got = {k: tuple(a.shape) for k, a in weights.items() if k in expected}
    if got != expected:
        have = {k: tuple(a.shape) for k, a in weights.items()}
        raise ValueError(
            f"warm start: the weights {have} do not match the network's {expected}; set "
            "warm_start=False or assign weights of matching shapes"
        )
    return [
        tuple(placed(weights[f"layers.{i}.{name}"], place) for name in layer.param_names)
        for i, layer in enumerate(network.layers)
    ]


def unchanged(snapshot: Params, params: Params) -> bool:
    """Whether ``params`` still hold exactly the values of ``snapshot``."""
    if [len(p) for p in snapshot] != [len(p) for p in params]:
        return False
    for old, new in zip((a for p in snapshot for a in p), (a for p in params for a in p)):
        if not is_array(new) or tuple(old.shape) != tuple(new.shape) or old.dtype != new.dtype:
            return False
        if namespace_name(array_namespace(old)) != namespace_name(array_namespace(new)):
            return False
        xp = array_namespace(old)
        if not bool(xp.all(old == new)):
            return False
    return True
