"""The residual block :class:`Residual`: y = f(x) + shortcut(x), f and the shortcut each a
list of layers (He et al., 2016), as thinc's ``residual`` and torchvision's ``BasicBlock``.

Imports ``_random`` and :mod:`backendnn.layers.base`.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import Any

from .. import _random
from .base import INFERENCE, Context, Layer, Param, build_chain, size

_BRANCHES = ("f", "shortcut")


class Residual(Layer):
    """A residual block y = f(x) + shortcut(x).

    f = f_m o ... o f_1 is the list ``layers`` applied in order; the shortcut is the
    identity (``shortcut=None``) or a list of layers of its own, a projection such as a
    1x1 strided :class:`~backendnn.layers.Conv2d` where f changes the shape. Both branches
    read the same x and their outputs must have one shape.

    Backward: x feeds both branches, so the gradient splits at the fork and adds, ::

        dx = (df/dx)^T dy + (dshortcut/dx)^T dy   (dy itself for the identity shortcut),

    each branch backpropagated through its layers in reverse; the parameter gradients are
    those of the sub-layers, in their declaration order.

    The block holds no arrays: its parameters are its sub-layers' declarations in order,
    f's then the shortcut's, named ``f.{j}.{name}`` and ``shortcut.{j}.{name}`` (a model
    file names them ``layers.{i}.f.0.W``, as a torch state dict), and likewise its buffers
    (state). A sub-layer that reads the ``Context`` gets one
    with the block's training flag and sample weights, its own slice of the state and its
    own random key ``fold_in(fold_in(key, b), j)`` (b = 0 for f, 1 for the shortcut).
    Blocks nest: a Residual may be one of another's layers.

    Parameters
    ----------
    layers : sequence of Layer
        f's layers, input first (at least one).
    shortcut : sequence of Layer or None, default None
        The shortcut's layers, input first; None (or an empty list) is the identity.

    Raises
    ------
    TypeError
        If a sub-layer is not a :class:`~backendnn.layers.Layer`.
    ValueError
        If ``layers`` is empty; in ``output_shape`` and ``build``, if a sub-layer refuses
        its input or the two branches' output shapes differ.

    Examples
    --------
    >>> import numpy as np
    >>> from backendnn.layers import Activation, Dense, Residual
    >>> block = Residual([Dense(3, 3), Activation("relu"), Dense(3, 3)])
    >>> block
    Residual([Dense(3, 3), Activation(ReLU()), Dense(3, 3)])
    >>> block.param_names, block.output_shape((3,))
    (('f.0.W', 'f.0.b', 'f.2.W', 'f.2.b'), (3,))
    >>> params = (np.eye(3), np.zeros(3), np.eye(3), np.ones(3))
    >>> y, cache = block.forward(params, np.array([[1.0, -2.0, 3.0]]))
    >>> y.tolist()  # relu(x) + 1 + x
    [[3.0, -1.0, 7.0]]
    >>> dx, grads = block.backward(params, cache, np.ones_like(y))
    >>> dx.tolist(), len(grads)  # relu'(x) + 1
    ([[2.0, 1.0, 2.0]], 4)
    >>> from backendnn.layers import Conv2d
    >>> proj = Residual([Conv2d(2, 4, 3, stride=2, padding=1)], [Conv2d(2, 4, 1, stride=2)])
    >>> proj.param_names, proj.output_shape((2, 8, 8))  # a strided projection shortcut
    (('f.0.W', 'f.0.b', 'shortcut.0.W', 'shortcut.0.b'), (4, 4, 4))
    """

    def __init__(self, layers: Sequence[Layer], shortcut: Sequence[Layer] | None = None):
        self.layers = _layer_list("layers", layers)
        if not self.layers:
            raise ValueError(
                "Residual needs at least one layer in f (layers=[...]); y = x + shortcut(x) "
                "with an empty f is not a residual block"
            )
        self.shortcut = _layer_list("shortcut", shortcut) or None

    def config(self) -> dict[str, Any]:
        return {
            "layers": list(self.layers),
            "shortcut": None if self.shortcut is None else list(self.shortcut),
        }

    def __repr__(self) -> str:
        args = "[" + ", ".join(map(repr, self.layers)) + "]"
        if self.shortcut is not None:
            args += ", shortcut=[" + ", ".join(map(repr, self.shortcut)) + "]"
        return f"Residual({args})"

    # ------------------------------------------------------------------ declarations

    def _branches(self) -> tuple[tuple[Layer, ...], tuple[Layer, ...]]:
        """f's layers and the shortcut's (empty for the identity)."""
        return self.layers, self.shortcut or ()

    # ClassVars on Layer, which mypy does not let a read-only property override
    @property
    def random(self) -> bool:
        """Whether a sub-layer draws random numbers in training."""
        return any(sub.random for branch in self._branches() for sub in branch)

    @property
    def uses_mode(self) -> bool:
        """Whether a sub-layer reads the context (training flag, state, key, weights)."""
        return any(sub.uses_mode for branch in self._branches() for sub in branch)

    def parameters(self) -> tuple[Param, ...]:
        """The sub-layers' parameters, f's then the shortcut's, renamed ``f.{j}.{name}`` and
        ``shortcut.{j}.{name}``.
        """
        return self._declarations("parameters")

    def buffers(self) -> tuple[Param, ...]:
        """The sub-layers' buffers (state), renamed as :meth:`parameters`."""
        return self._declarations("buffers")

    def _declarations(self, kind: str) -> tuple[Param, ...]:
        return tuple(
            dataclasses.replace(p, name=f"{branch}.{j}.{p.name}")
            for branch, layers in zip(_BRANCHES, self._branches())
            for j, sub in enumerate(layers)
            for p in getattr(sub, kind)()
        )

    def output_shape(self, shape: tuple[int, ...]) -> tuple[int, ...]:
        """f's output shape, which must be the shortcut's."""
        return self._shapes(tuple(shape))[1]

    def build(self, shape: tuple[int, ...]) -> Residual:
        """The block with its sub-layers built (``Dense(64)``'s input width inferred), the
        shapes checked as by :meth:`output_shape`."""
        built, _ = self._shapes(tuple(shape))
        if built == self._branches():
            return self
        return Residual(built[0], built[1] or None)

    def _shapes(
        self, shape: tuple[int, ...]
    ) -> tuple[tuple[tuple[Layer, ...], tuple[Layer, ...]], tuple[int, ...]]:
        built, shapes = [], []
        for name, layers in zip(_BRANCHES, self._branches()):
            done, s = build_chain(layers, shape, f"Residual: {name}.")
            built.append(tuple(done))
            shapes.append(s)
        if shapes[0] != shapes[1]:
            source = "the shortcut's" if self.shortcut is not None else "the input's (identity)"
            raise ValueError(
                f"Residual: f's output shape {shapes[0]} differs from {source} {shapes[1]} "
                f"for samples of shape {shape}; add a projection shortcut that maps the input "
                f"to {shapes[0]} (e.g. shortcut=[Conv2d(in, out, 1, stride=s)] or "
                "[Dense(n_in, n_out)])"
            )
        return (built[0], built[1]), shapes[0]

    def workspace(self, shape: tuple[int, ...]) -> int:
        """Every sub-layer's output and workspace (the forward keeps each sub-layer's cache,
        im2col patches included, until it returns) and the sum f(x) + shortcut(x)."""
        total = 0
        for name, layers in zip(_BRANCHES, self._branches()):
            s = tuple(shape)
            for layer in build_chain(layers, s, f"Residual: {name}.")[0]:
                total += layer.workspace(s)
                s = tuple(layer.output_shape(s))
                total += size(s)
        return total + size(self.output_shape(shape))

    # ------------------------------------------------------------------ the pass

    def _split(self, arrays: tuple, kind: str) -> tuple[list[tuple], list[tuple]]:
        """``arrays`` (the block's params or state) as one tuple per sub-layer of each
        branch, by the sub-layers' declaration counts."""
        chunks: tuple[list[tuple], list[tuple]] = ([], [])
        start = 0
        for chunk, layers in zip(chunks, self._branches()):
            for sub in layers:
                n = len(getattr(sub, kind)())
                chunk.append(tuple(arrays[start : start + n]))
                start += n
        if start != len(arrays):
            raise ValueError(f"Residual: {len(arrays)} {kind} arrays given, {start} declared")
        return chunks

    def forward(self, params: tuple, x: Any, ctx: Context = INFERENCE) -> tuple[Any, Any]:
        """y = f(x) + shortcut(x), each sub-layer with its own context."""
        p_split = self._split(params, "parameters")
        s_split = self._split(tuple(ctx.state), "buffers") if ctx.state else None
        outs, caches = [], []
        for b, layers in enumerate(self._branches()):
            h, branch_caches = x, []
            branch_key = None
            for j, sub in enumerate(layers):
                if sub.uses_mode:
                    key = None
                    if sub.random and ctx.key is not None:
                        if branch_key is None:
                            branch_key = _random.fold_in(ctx.key, b)
                        key = _random.fold_in(branch_key, j)
                    state = s_split[b][j] if s_split is not None else ()
                    h, c = sub.forward(
                        p_split[b][j], h, Context(ctx.training, state, key, ctx.weights)
                    )
                else:
                    h, c = sub.forward(p_split[b][j], h)
                branch_caches.append(c)
            outs.append(h)
            caches.append(branch_caches)
        return outs[0] + outs[1], (caches[0], caches[1])

    def backward(
        self, params: tuple, cache: Any, dy: Any, need_dx: bool = True
    ) -> tuple[Any, tuple]:
        """dx = (df/dx)^T dy + (dshortcut/dx)^T dy, and the sub-layers' gradients."""
        p_split = self._split(params, "parameters")
        dxs: list[Any] = []
        grads: list[Any] = []
        for b, layers in enumerate(self._branches()):
            d = dy
            branch_grads: list[tuple] = [()] * len(layers)
            for j in range(len(layers) - 1, -1, -1):
                d, branch_grads[j] = layers[j].backward(
                    p_split[b][j], cache[b][j], d, need_dx=need_dx or j > 0
                )
            dxs.append(d)
            grads += [g for sub_grads in branch_grads for g in sub_grads]
        return (dxs[0] + dxs[1] if need_dx else None), tuple(grads)

    def next_state(self, state: tuple, cache: Any, exact: bool = False) -> tuple:
        """Each sub-layer's state after the training forward that returned ``cache``."""
        if not state:
            return state
        s_split = self._split(tuple(state), "buffers")
        return tuple(
            a
            for b, layers in enumerate(self._branches())
            for j, sub in enumerate(layers)
            for a in (sub.next_state(s_split[b][j], cache[b][j], exact) if s_split[b][j] else ())
        )


def _layer_list(name: str, layers: Any) -> tuple[Layer, ...]:
    """``layers`` as a tuple of layers, or a TypeError saying what a block takes."""
    if layers is None:
        return ()
    if isinstance(layers, Layer) or not isinstance(layers, Sequence) or isinstance(layers, str):
        raise TypeError(
            f"Residual: {name} must be a list of layers, got {layers!r}; wrap a single layer "
            f"as [{layers!r}]"
        )
    bad = [layer for layer in layers if not isinstance(layer, Layer)]
    if bad:
        raise TypeError(f"Residual: {name} must hold backendnn.layers objects, got {bad[0]!r}")
    return tuple(layers)
