"""An ONNX graph under construction (:class:`Graph`), with symbolic tensors (:class:`Sym`)
whose Python operators add nodes, so that formulas read as they do in the layers.

A :class:`Graph` also answers the few namespace functions (``exp``, ``abs``, ``clip``,
``trunc``, ``where``) that :mod:`backendnn.special`'s Cody helpers call on their ``xp``
argument: :func:`ndtr` builds the normal CDF from the very code the library runs, out of
operators ONNX Runtime computes in float64 (it has no float64 ``Erf``).

Imports ``onnx`` and :mod:`backendnn.special`.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from onnx import helper, numpy_helper

from ..special import _INV_SQRT2, _THRESH, _XBIG, _erf_small, _erfc_ratio, _exp_neg_square


class Graph:
    """The nodes and constants of one ONNX graph whose float tensors are of ``dtype``.

    Parameters
    ----------
    dtype : numpy dtype
        float32 or float64: the dtype of the graph's inputs, weights and outputs.
    opset : int
        The ``ai.onnx`` opset the nodes are written for.
    """

    def __init__(self, dtype: Any, opset: int):
        self.dtype = np.dtype(dtype)
        self.opset = opset
        self.nodes: list[Any] = []
        self.initializers: list[Any] = []
        self._count = 0
        self._scalars: dict[tuple[str, float], str] = {}

    def fresh(self, hint: str) -> str:
        """A new tensor name ``{hint}_{n}``."""
        self._count += 1
        return f"{hint}_{self._count}"

    def const(self, value: Any, dtype: Any = None, hint: str = "const") -> str:
        """An initializer holding ``value`` (as ``dtype``, by default the graph's); scalars
        of the graph's dtype are shared."""
        array = np.asarray(value, dtype=self.dtype if dtype is None else dtype)
        key = (
            (array.dtype.str, float(array)) if array.ndim == 0 and array.dtype.kind == "f" else None
        )
        if key is not None and key in self._scalars:
            return self._scalars[key]
        name = self.fresh(hint)
        self.initializers.append(numpy_helper.from_array(array, name))
        if key is not None:
            self._scalars[key] = name
        return name

    def ints(self, values: Any) -> str:
        """An int64 initializer (shapes, axes, pads)."""
        return self.const(values, dtype=np.int64, hint="ints")

    def op(self, op_type: str, *inputs: Any, outputs: int = 1, **attrs: Any) -> Any:
        """Add an ``op_type`` node; inputs are names, :class:`Sym` or numbers (constants of the
        graph's dtype). Returns the output name (a list of them for ``outputs > 1``)."""
        names = [self.fresh(op_type.lower()) for _ in range(outputs)]
        self.nodes.append(helper.make_node(op_type, [self.name(i) for i in inputs], names, **attrs))
        return names[0] if outputs == 1 else names

    def name(self, value: Any) -> str:
        """The tensor name of ``value``: a name, a :class:`Sym`, or a number made a constant."""
        if isinstance(value, Sym):
            return value.name
        if isinstance(value, str):
            return value
        return self.const(value)

    def sym(self, name: str) -> Sym:
        return Sym(self, name)

    def output(self, name: str, value: Any) -> None:
        """Make ``value`` the graph output ``name`` (an Identity node)."""
        self.nodes.append(helper.make_node("Identity", [self.name(value)], [name]))

    def reduce_mean(self, x: Any, axes: tuple[int, ...], keepdims: bool) -> str:
        """ReduceMean over ``axes`` (an attribute before opset 18, an input from 18 on)."""
        if self.opset < 18:
            return self.op("ReduceMean", x, axes=list(axes), keepdims=int(keepdims))
        return self.op("ReduceMean", x, self.ints(axes), keepdims=int(keepdims))

    # the namespace functions the Cody helpers of backendnn.special call on ``xp``
    def exp(self, x: Any) -> Sym:
        return self.sym(self.op("Exp", x))

    def abs(self, x: Any) -> Sym:
        return self.sym(self.op("Abs", x))

    def clip(self, x: Any, lo: float, hi: float) -> Sym:
        return self.sym(self.op("Clip", x, lo, hi))

    def trunc(self, x: Any) -> Sym:
        """Rounding toward zero: Floor for x >= 0, Ceil below (ONNX has no Trunc)."""
        return self.where(self.sym(self.name(x)) < 0.0, self.op("Ceil", x), self.op("Floor", x))

    def where(self, cond: Any, a: Any, b: Any) -> Sym:
        return self.sym(self.op("Where", cond, a, b))


class Sym:
    """A tensor of a :class:`Graph`: ``+ - * /``, unary minus and the comparisons add nodes
    (a Python number on either side becomes a constant of the graph's dtype)."""

    __slots__ = ("graph", "name")

    def __init__(self, graph: Graph, name: str):
        self.graph = graph
        self.name = name

    def _binary(self, op_type: str, other: Any, swap: bool = False) -> Sym:
        a, b = (other, self) if swap else (self, other)
        return self.graph.sym(self.graph.op(op_type, a, b))

    def __add__(self, other: Any) -> Sym:
        return self._binary("Add", other)

    def __radd__(self, other: Any) -> Sym:
        return self._binary("Add", other, swap=True)

    def __sub__(self, other: Any) -> Sym:
        return self._binary("Sub", other)

    def __rsub__(self, other: Any) -> Sym:
        return self._binary("Sub", other, swap=True)

    def __mul__(self, other: Any) -> Sym:
        return self._binary("Mul", other)

    def __rmul__(self, other: Any) -> Sym:
        return self._binary("Mul", other, swap=True)

    def __truediv__(self, other: Any) -> Sym:
        return self._binary("Div", other)

    def __rtruediv__(self, other: Any) -> Sym:
        return self._binary("Div", other, swap=True)

    def __neg__(self) -> Sym:
        return self.graph.sym(self.graph.op("Neg", self))

    def __lt__(self, other: Any) -> Sym:
        return self._binary("Less", other)

    def __le__(self, other: Any) -> Sym:
        return self._binary("LessOrEqual", other)

    def __gt__(self, other: Any) -> Sym:
        return self._binary("Greater", other)

    def __ge__(self, other: Any) -> Sym:
        return self._binary("GreaterOrEqual", other)


def sigmoid(g: Graph, x: Any) -> Sym:
    """1/(1+e^-x): ONNX's Sigmoid in float32; in float64 the library's stable form
    (e = exp(-|x|), 1/(1+e) for x >= 0, e/(1+e) below), since ONNX Runtime's float64
    Sigmoid keeps only ~1e-16 absolute precision in the lower tail (0 below x = -37)."""
    if g.dtype == np.float32:
        return g.sym(g.op("Sigmoid", x))
    x = g.sym(g.name(x))
    e = g.exp(-g.abs(x))
    r = 1.0 / (1.0 + e)
    return g.where(x >= 0.0, r, e * r)


def ndtr(g: Graph, x: Sym) -> Sym:
    """Phi(x), the standard normal CDF, as :func:`backendnn.special.ndtr_cody` computes it
    (Cody's rational approximations, a few ulp in float64 in both tails), from Abs, Clip,
    Floor, Ceil, Exp, Where and arithmetic: operators ONNX Runtime runs in float64."""
    a = g.abs(x)
    u = a * _INV_SQRT2
    small = 0.5 + 0.5 * _erf_small(g.clip(x * _INV_SQRT2, -_THRESH, _THRESH), g)
    half_tail = 0.5 * _exp_neg_square(g.clip(a, 0.0, 40.0), g, 0.5) * _erfc_ratio(u, g)
    half_tail = g.where(u < _XBIG, half_tail, 0.0)
    phi = g.where(u <= _THRESH, small, g.where(x < 0.0, half_tail, 1.0 - half_tail))
    return g.where(g.op("IsNaN", x), x, phi)
