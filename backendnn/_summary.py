"""A network's summary, as Keras prints one: each layer's output shape and parameter
count, then the totals (trainable parameters, and the non-trainable buffers: batch
norm's running statistics). Found from the declarations and shapes: nothing is
allocated.

Imports :mod:`backendnn.layers`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from .layers import Residual
from .layers.base import Layer, build_chain, size


@dataclass(frozen=True)
class SummaryRow:
    """One layer of a :class:`Summary`.

    Attributes
    ----------
    index : str
        Its place: ``"2"``, or ``"2.f.0"`` for the first layer of a
        :class:`~backendnn.layers.Residual`'s f (``"2.shortcut.0"``: of its shortcut).
    layer : str
        Its repr (``"Residual"`` for a residual block, whose layers follow it).
    output_shape : tuple
        The output's shape with the batch axis first, as ``None``.
    params : int
        Trainable values (parameters).
    buffers : int
        Non-trainable values (state: batch norm's running statistics).
    """

    index: str
    layer: str
    output_shape: tuple
    params: int
    buffers: int


@dataclass(frozen=True)
class Summary:
    """A table of a network's layers (:class:`SummaryRow`) and totals; ``str`` and
    ``repr`` print it.

    Attributes
    ----------
    rows : tuple of SummaryRow
        One per layer, a residual block's layers after it.
    input_shape : tuple
        The input's shape with the batch axis first, as ``None``.
    trainable : int
        The parameters' values.
    non_trainable : int
        The buffers' values.
    total : int
        trainable + non_trainable.
    """

    rows: tuple[SummaryRow, ...]
    input_shape: tuple

    @property
    def trainable(self) -> int:
        return sum(r.params for r in _top(self.rows))

    @property
    def non_trainable(self) -> int:
        return sum(r.buffers for r in _top(self.rows))

    @property
    def total(self) -> int:
        return self.trainable + self.non_trainable

    def __str__(self) -> str:
        header = ("#", "Layer", "Output shape", "Param #")
        cells = [header] + [
            (r.index, r.layer, _shape(r.output_shape), f"{r.params + r.buffers:,}")
            for r in self.rows
        ]
        widths = [max(len(c[k]) for c in cells) for k in range(4)]

        def line(c: Sequence[str]) -> str:
            return (
                f"{c[0]:<{widths[0]}}  {c[1]:<{widths[1]}}  {c[2]:<{widths[2]}}  "
                f"{c[3]:>{widths[3]}}"
            ).rstrip()

        rule = "  ".join("-" * w for w in widths)
        return "\n".join(
            [
                f"Input shape: {_shape(self.input_shape)}",
                line(header),
                rule,
                *map(line, cells[1:]),
                "=" * len(rule),
                f"Total params: {self.total:,}",
                f"Trainable params: {self.trainable:,}",
                f"Non-trainable params: {self.non_trainable:,}",
            ]
        )

    __repr__ = __str__

    def with_output(self, activation: str) -> Summary:
        """This summary with a last row for an output ``activation`` (an estimator's
        ``out_activation_``; none for ``"identity"``)."""
        if activation == "identity":
            return self
        top = _top(self.rows)
        row = SummaryRow(str(len(top)), f"output: {activation}", top[-1].output_shape, 0, 0)
        return Summary((*self.rows, row), self.input_shape)


def summarize(layers: Sequence[Layer], input_shape: tuple[int, ...]) -> Summary:
    """The :class:`Summary` of ``layers`` for input samples of ``input_shape`` (no batch
    axis); a ValueError names the first layer that does not accept its input."""
    shape = tuple(int(d) for d in input_shape)
    return Summary(tuple(_rows(layers, shape, "", "layer ")), (None, *shape))


def _rows(layers: Sequence[Layer], shape: tuple[int, ...], prefix: str, label: str) -> list:
    built, _ = build_chain(layers, shape, label)
    rows = []
    for i, layer in enumerate(built):
        out_shape = tuple(layer.output_shape(shape))
        params = sum(size(p.shape) for p in layer.parameters())
        buffers = sum(size(p.shape) for p in layer.buffers())
        index = f"{prefix}{i}"
        text = "Residual" if isinstance(layer, Residual) else repr(layer)
        rows.append(SummaryRow(index, text, (None, *out_shape), params, buffers))
        if isinstance(layer, Residual):
            for name, branch in (("f", layer.layers), ("shortcut", layer.shortcut or ())):
                rows += _rows(branch, shape, f"{index}.{name}.", f"Residual: {name}.")
        shape = out_shape
    return rows


def _top(rows: Sequence[SummaryRow]) -> list[SummaryRow]:
    return [r for r in rows if "." not in r.index]


def _shape(shape: tuple) -> str:
    return "(" + ", ".join(map(str, shape)) + ("," if len(shape) == 1 else "") + ")"
