"""The layer protocol (:class:`Layer`, :class:`Param`, :class:`Context`), and what the
layers with products share: the in-place bias add and the promotion of operands of two
dtypes.

A layer holds no arrays. It declares them, and every call takes them as arguments:

- ``parameters()``: one :class:`Param` per trainable array (name, shape, penalised or
  not, initialiser, fans), in the order of the ``params`` tuple;
- ``buffers()``: one :class:`Param` per non-trainable array (batch norm's running
  statistics), in the order of the layer's ``state`` tuple;
- ``random``: whether training draws random numbers (dropout); ``uses_mode``: whether
  the layer reads the :class:`Context` (a layer that computes the same in training and
  inference is called as ``forward(params, x)``);
- ``output_shape(shape)``: the shape of one output sample for input samples of
  ``shape`` (no batch axis), found from the shapes alone; a ValueError says what the
  layer expects. ``build(shape)`` returns the layer with the sizes it infers from its
  input (``Dense(64)``'s input width) filled in;
- ``workspace(shape)``: the elements per sample of the temporaries an inference
  forward holds at once besides its input and output (im2col patches, a padded copy,
  running maxima; 0 by default), for input samples of ``shape``: prediction in bounded
  memory sizes its blocks of rows from it (``Network.block_rows``);
- ``config()``: its constructor arguments by name: equality, hashing (the compiled-step
  cache) and model files come from it;
- the pass itself, a pure function of its arrays::

      y, cache = layer.forward(params, x, ctx)          # ctx: a Context
      dx, grads = layer.backward(params, cache, dy)     # grads shaped as params
      dx, grads = layer.backward(params, cache, dy, need_dx=False)  # dx may be None
      state = layer.next_state(ctx.state, cache)        # after a training forward

  A network's first layer passes ``need_dx=False``: its dL/dx is never used, and a layer
  may skip forming it. ``ctx`` says whether the pass trains, and holds the layer's
  ``state``, its random ``key`` and the batch's sample ``weights``. In training a layer
  computes with its batch (batch statistics, a fresh dropout mask) and ``next_state``
  returns its new state (nothing is written to: a JAX epoch stays one compiled
  program); in inference it uses its state (the running statistics) and no randomness.

Imports :mod:`backendnn._cache` and ``_validation``.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from .._cache import freeze
from .._validation import is_real


@dataclass(frozen=True)
class Param:
    """The declaration of one array of a layer.

    Attributes
    ----------
    name : str
        Its name in the layer (``"W"``, ``"running_mean"``); model files store it as
        ``layers.{i}.{name}``.
    shape : tuple of int
        Its shape.
    penalized : bool, default False
        Whether the L2 penalty applies to it (weights, not biases).
    init : {"weight", "bias", "zeros", "ones"}, default "zeros"
        ``"weight"``: drawn by the network's initialiser at ``fans``; ``"bias"``: the
        initialiser's bias, drawn with the weight declared just before it; ``"zeros"``,
        ``"ones"``: constants.
    fans : pair of int, optional
        (fan_in, fan_out) for a ``"weight"``: the inputs feeding one output and the
        outputs fed by one input.
    """

    name: str
    shape: tuple[int, ...]
    penalized: bool = False
    init: str = "zeros"
    fans: tuple[int, int] | None = None


@dataclass(frozen=True)
class Context:
    """How a forward pass runs, for one layer.

    Attributes
    ----------
    training : bool, default False
        Training (batch statistics, random masks) or inference (running statistics,
        deterministic).
    state : tuple of arrays, default ()
        The layer's buffers, in the order of ``buffers()``.
    key : array of int32 of shape (2,), optional
        The layer's random key in training (see ``backendnn._random``).
    weights : array of shape (n_samples,), optional
        The batch's sample weights in training (None: all 1); statistics over the batch
        are weighted by them, so rows of weight 0 (a mesh's padding) do not count.
    """

    training: bool = False
    state: tuple = ()
    key: Any = None
    weights: Any = None


INFERENCE = Context()


def _add_bias(z: Any, b: Any) -> Any:
    """z + b, in place when that is the same: ``z`` must be the caller's new ``x @ W``, and
    b's dtype must not promote z's (float64 b on float32 z: a new float64 array)."""
    if b.dtype != z.dtype:
        return z + b
    z += b  # on JAX, Python rebinds z to z + b
    return z


def _promote(xp: Any, *arrays: Any) -> tuple[Any, ...]:
    """``arrays`` cast to their common dtype ``xp.result_type(*arrays)``: the standard's
    type promotion, which NumPy's and JAX's ``@`` apply and torch's (and its native
    convolution) refuse. Callers compare dtypes first: arrays of one dtype skip this."""
    dtype = xp.result_type(*arrays)
    return tuple(xp.astype(a, dtype, copy=False) for a in arrays)


def positive_int(owner: str, name: str, value: Any, allow_none: bool = False) -> Any:
    """``value`` if it is a positive int (or None where allowed), else a ValueError
    naming ``owner``'s argument ``name`` (a float, a bool, a string, 0 are refused, as
    ``torch.nn.Linear`` refuses them)."""
    if value is None and allow_none:
        return None
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or int(value) < 1:
        raise ValueError(f"{owner}: {name} must be a positive int, got {value!r}")
    return int(value)


def check_eps(owner: str, eps: Any) -> float:
    """``eps`` as a float if it is a finite real >= 0, else a ValueError naming ``owner``."""
    if not is_real(eps) or not math.isfinite(eps) or eps < 0:
        raise ValueError(f"{owner}: eps must be a finite real >= 0 (e.g. 1e-5), got {eps!r}")
    return float(eps)


def check_bool(owner: str, name: str, value: Any) -> bool:
    """``value`` if it is a bool, else a ValueError naming ``owner``'s argument ``name``."""
    if not isinstance(value, bool):
        raise ValueError(f"{owner}: {name} must be True or False, got {value!r}")
    return value


class Layer:
    """Base class of the layers: no parameters, no state, identity shape.

    See the module docstring for the protocol; a subclass overrides what it has.
    Layer takes no constructor parameters.

    Examples
    --------
    >>> import numpy as np
    >>> from backendnn.layers import Layer
    >>> layer = Layer()
    >>> layer.parameters(), layer.buffers(), layer.output_shape((3, 4))
    ((), (), (3, 4))
    >>> y, cache = layer.forward((), np.ones((2, 3)))
    >>> layer.backward((), cache, y)[0].shape
    (2, 3)
    """

    @property
    def random(self) -> bool:
        """Whether a training pass draws random numbers (from ``ctx.key``); a subclass
        that does sets ``random = True``."""
        return False

    @property
    def uses_mode(self) -> bool:
        """Whether the layer reads ``ctx`` (training or inference, state, key, weights); a
        network calls the others as ``forward(params, x)``."""
        return False

    # ------------------------------------------------------------------ declarations

    def parameters(self) -> tuple[Param, ...]:
        """The trainable arrays, in the order of the ``params`` tuple."""
        return ()

    def buffers(self) -> tuple[Param, ...]:
        """The non-trainable arrays (state), in the order of ``ctx.state``."""
        return ()

    def output_shape(self, shape: tuple[int, ...]) -> tuple[int, ...]:
        """The shape of one output sample for input samples of ``shape`` (no batch axis).

        Raises
        ------
        ValueError
            If the layer does not accept samples of that shape.
        """
        return tuple(shape)

    def build(self, shape: tuple[int, ...]) -> Layer:
        """This layer with the sizes it infers from input samples of ``shape`` filled in
        (itself where nothing is inferred)."""
        return self

    def workspace(self, shape: tuple[int, ...]) -> int:
        """The elements per sample of the temporaries an inference forward holds at once
        besides its input and output, for input samples of ``shape`` (no batch axis):
        here 0."""
        return 0

    def config(self) -> dict[str, Any]:
        """The constructor arguments, by name (a model file stores them)."""
        return {}

    # ------------------------------------------------------------------ derived

    @property
    def param_names(self) -> tuple[str, ...]:
        """The names of ``parameters()``."""
        return tuple(p.name for p in self.parameters())

    @property
    def penalized(self) -> tuple[bool, ...]:
        """Which parameters the L2 penalty applies to."""
        return tuple(p.penalized for p in self.parameters())

    def param_shapes(self) -> tuple[tuple[int, ...], ...]:
        """The shapes of ``parameters()``."""
        return tuple(p.shape for p in self.parameters())

    def fans(self) -> tuple[int, int]:
        """(fan_in, fan_out) of the first weight."""
        for p in self.parameters():
            if p.fans is not None:
                return p.fans
        raise ValueError(f"{self!r} has no weight")

    # ------------------------------------------------------------------ the pass

    def forward(self, params: tuple, x: Any, ctx: Context = INFERENCE) -> tuple[Any, Any]:
        """The layer output y and what backward needs: here y = x."""
        return x, None

    def backward(
        self, params: tuple, cache: Any, dy: Any, need_dx: bool = True
    ) -> tuple[Any, tuple]:
        """dL/dx from dL/dy, and dL/dparams shaped as ``params``: here dx = dy."""
        return dy, ()

    def next_state(self, state: tuple, cache: Any, exact: bool = False) -> tuple:
        """The state after a training forward that returned ``cache`` (``exact``: the
        batch's own statistics, no moving average). A layer without state returns ``()``."""
        return state

    # ------------------------------------------------------------------ value semantics

    def __eq__(self, other: object) -> bool:
        """Layers are equal when they are of one class with equal arguments (they hold no
        arrays), so ``get_params`` of an estimator survives a model file."""
        if type(self) is not type(other):
            return False
        assert isinstance(other, Layer)
        return freeze(self.config()) == freeze(other.config())

    def __hash__(self) -> int:
        return hash((type(self), freeze(self.config())))

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.config().items())
        return f"{type(self).__name__}({args})"


def build_chain(
    layers: Sequence[Layer], shape: tuple[int, ...], label: str
) -> tuple[list[Layer], tuple[int, ...]]:
    """``layers`` applied in order to samples of ``shape``: each built for its input (sizes
    inferred) and the output shape, from the shapes alone. A ValueError names the layer
    that refuses its input as ``{label}{index}``."""
    built: list[Layer] = []
    shape = tuple(int(d) for d in shape)
    for i, layer in enumerate(layers):
        try:
            layer = layer.build(shape)
            shape = tuple(layer.output_shape(shape))
        except ValueError as exc:
            raise ValueError(
                f"{label}{i} ({layer!r}) does not accept samples of shape {shape}: {exc}"
            ) from None
        built.append(layer)
    return built, shape


def weight(name: str, shape: tuple[int, ...], fans: tuple[int, int]) -> Param:
    """A penalised weight drawn by the initialiser at ``fans``."""
    return Param(name, tuple(shape), penalized=True, init="weight", fans=fans)


def bias(name: str, shape: tuple[int, ...]) -> Param:
    """An unpenalised bias, the initialiser's draw beside the weight before it."""
    return Param(name, tuple(shape), init="bias")


def size(shape: tuple[int, ...]) -> int:
    """The number of values in a sample of ``shape``."""
    return math.prod(shape)
