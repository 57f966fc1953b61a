"""A network: a sequence of layers, forward propagation then hand-written backpropagation.

Parameters are plain data, a list with one tuple of arrays per layer (empty for layers
without parameters)::

    net = Network.mlp(64, (32,), 10, activation="relu")
    params = net.init(seed=0, xp=xp, dtype=xp.float64)
    loss, grads = net.loss_and_grad(params, X, y, "softmax_cross_entropy", alpha=1e-4)

``loss_and_grad`` (from the mixin :mod:`._objective`) is a pure function of its arrays,
so ``jax.jit`` compiles it. Inference runs in blocks of rows (:mod:`._blocks`).

Imports :mod:`backendnn.activations`, ``init``, ``layers``, ``params``, ``_backend``,
``_compiled`` and the siblings ``_objective``, ``_blocks`` and ``_summary``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from . import _blocks, _random
from . import activations as _act
from . import init as _init
from ._backend import array_namespace, namespace
from ._compiled import compiled_forward
from ._objective import TrainingObjective
from ._summary import Summary, summarize
from .layers import Activation, Dense, Flatten, GatedDense, Layer
from .layers.base import Context, build_chain
from .params import Params


class Network(TrainingObjective):
    """A feed-forward network of :mod:`backendnn.layers`.

    The layers are applied in order, h_{W,b}(X) = layer_L(... layer_1(X)) (notes,
    eqs. 14-20), and backpropagated in reverse (eqs. 32-35). The network holds no
    arrays: every method takes the parameters ``params``, a list with one tuple of
    arrays per layer (empty for layers without parameters), as made by :meth:`init`.
    See :ref:`notes-eq-18` (notes' eqs. 14-20) and :ref:`notes-eq-33` (eqs. 32-35).

    Parameters
    ----------
    layers : sequence of Layer
        The layers, input first. Each layer's output width must be the next one's
        input width.

    Attributes
    ----------
    layers : tuple of Layer
        The layers, input first.

    See Also
    --------
    Network.mlp : the usual Dense / Activation stack.
    backendnn.check_gradients : compares :meth:`loss_and_grad` with finite differences.

    Examples
    --------
    >>> import numpy as np
    >>> from backendnn import Network
    >>> from backendnn.layers import Activation, Dense
    >>> net = Network([Dense(4, 3), Activation("tanh"), Dense(3, 2)])
    >>> net
    Network([Dense(4, 3), Activation(Tanh()), Dense(3, 2)])
    >>> params = net.init(seed=0, xp=np, dtype=np.float64)
    >>> net.forward(params, np.ones((5, 4))).shape
    (5, 2)
    """

    def __init__(self, layers: Sequence[Layer]):
        self.layers = tuple(layers)

    @classmethod
    def mlp(
        cls, n_in: int, hidden: Sequence[int], n_out: int, activation: Any = "relu",
        flatten: bool = False,
    ) -> Network:  # fmt: skip
        """A multi-layer perceptron: dense layers n_in -> hidden... -> n_out.

        ``activation`` is applied after each hidden layer and the output is linear
        (the losses fuse the output activation). A GLU-family activation makes each
        hidden layer a :class:`~backendnn.layers.GatedDense`. ``flatten`` prepends
        :class:`~backendnn.layers.Flatten` for image batches.

        Parameters
        ----------
        n_in : int
            Number of input features (``C*H*W`` for flattened images).
        hidden : sequence of int
            Width of each hidden layer; empty for a linear model.
        n_out : int
            Number of outputs.
        activation : str or activation object, default "relu"
            A name of :mod:`backendnn.activations` (``"relu"``, ``"tanh"``,
            ``"swiglu"``, ...) or an object returned by ``activations.get``.
        flatten : bool, default False
            Whether to prepend a :class:`~backendnn.layers.Flatten` layer, so that
            inputs of shape (n_samples, C, H, W) are accepted.

        Returns
        -------
        Network
            The new network (no parameters yet: call :meth:`init`).

        Raises
        ------
        ValueError
            If ``activation`` is not a known activation name.

        Examples
        --------
        >>> from backendnn import Network
        >>> Network.mlp(4, (8,), 3, activation="tanh")
        Network([Dense(4, 8), Activation(Tanh()), Dense(8, 3)])
        >>> Network.mlp(4, (8,), 3, activation="swiglu", flatten=True)
        Network([Flatten(), GatedDense(4, 8, 'swiglu'), Dense(8, 3)])
        """
        act = _act.get(activation)
        layers: list[Layer] = [Flatten()] if flatten else []
        width = n_in
        for h in hidden:
            if _act.is_gated(act):
                layers.append(GatedDense(width, h, act))
            else:
                layers += [Dense(width, h), Activation(act)]
            width = h
        layers.append(Dense(width, n_out))
        return cls(layers)

    def init(
        self,
        seed: Any = None,
        *,
        xp: Any = None,
        device: Any = None,
        dtype: Any = None,
        scheme: Any = "glorot_uniform",
        activation: Any = "relu",
    ) -> Params:
        """Draw initial parameters for every layer.

        They are drawn on the host from ``seed`` with initialiser ``scheme`` (see
        :mod:`backendnn.init`; ``activation`` picks Glorot's factor), cast to ``dtype``
        on the host, then moved to ``xp`` on ``device``: the same seed gives bitwise
        identical weights on every backend. A bias the initialiser leaves out is zero.

        Parameters
        ----------
        seed : int, numpy.random.Generator, numpy.random.RandomState or None, default None
            Seed of the host random numbers; ``None`` draws fresh entropy. A Generator or
            a RandomState is drawn from directly (from scikit-learn's ``RandomState``, the
            Glorot-uniform draws are scikit-learn's MLP initial weights).
        xp : array namespace, optional
            Namespace of the returned arrays; default: the current backend's
            (see ``backendnn.set_backend``).
        device : device, optional
            Device of the returned arrays; default: ``xp``'s default device.
        dtype : dtype of ``xp``, optional
            Floating dtype of the returned arrays; default ``xp.float32``.
        scheme : str or callable, default "glorot_uniform"
            A name of :mod:`backendnn.init` (``"normal"``, ``"glorot_uniform"``,
            ``"he_normal"``) or an initialiser with the same signature.
        activation : str or activation object, default "relu"
            The hidden activation, for the Glorot factor (2 for the logistic sigmoid,
            6 otherwise).

        Returns
        -------
        params : list of tuple of arrays
            One tuple per layer, in the order of ``layer.param_names``: ``(W, b)``
            with W of shape (n_in, n_out) and b of shape (n_out,) for a
            :class:`~backendnn.layers.Dense` layer (fans n_in and n_out), W of shape
            (out, in, kh, kw) for a :class:`~backendnn.layers.Conv2d` (fans in kh kw
            and out kh kw), ``()`` for a layer without parameters.

        Raises
        ------
        ValueError
            If ``scheme`` or ``activation`` is not a known name.
        ImportError
            If ``xp`` is not given and the current backend's library is not installed.

        Examples
        --------
        >>> import numpy as np
        >>> from backendnn import Network
        >>> net = Network.mlp(4, (3,), 2)
        >>> params = net.init(seed=0, xp=np, dtype=np.float64)
        >>> [[a.shape for a in p] for p in params]
        [[(4, 3), (3,)], [], [(3, 2), (2,)]]
        >>> again = net.init(seed=0, xp=np, dtype=np.float64)
        >>> all(np.array_equal(a, b) for p, q in zip(params, again) for a, b in zip(p, q))
        True
        """
        xp = xp if xp is not None else namespace()
        dtype = dtype if dtype is not None else xp.float32
        act_name = getattr(_act.get(activation), "name", activation)
        return _init.network_params(self.layers, seed, scheme, act_name, xp, device, dtype)

    def init_state(self, *, xp: Any = None, device: Any = None, dtype: Any = None) -> list:
        """The initial state (buffers) of every layer: one tuple per layer, in the order
        of ``layer.buffers()`` (``()`` for layers without state); e.g. batch norm's
        running mean 0 and running variance 1.

        Examples
        --------
        >>> import numpy as np
        >>> from backendnn import Network
        >>> from backendnn.layers import BatchNorm1d, Dense
        >>> state = Network([Dense(4, 3), BatchNorm1d(3)]).init_state(xp=np, dtype=np.float64)
        >>> [[a.tolist() for a in s] for s in state]
        [[], [[0.0, 0.0, 0.0], [1.0, 1.0, 1.0], 0.0]]
        """
        xp = xp if xp is not None else namespace()
        dtype = dtype if dtype is not None else xp.float32
        return _init.network_state(self.layers, xp, device, dtype)

    @property
    def has_state(self) -> bool:
        """Whether a layer keeps state (buffers: batch norm's running statistics)."""
        return any(layer.buffers() for layer in self.layers)

    @property
    def is_random(self) -> bool:
        """Whether training draws random numbers (dropout)."""
        return any(layer.random for layer in self.layers)

    def output_shape(self, input_shape: tuple[int, ...]) -> tuple[int, ...]:
        """The shape of one output sample for input samples of ``input_shape`` (no batch
        axis), from the shapes alone: nothing is allocated.

        Raises
        ------
        ValueError
            Naming the first layer that does not accept its input.

        Examples
        --------
        >>> from backendnn import Network
        >>> from backendnn.layers import Conv2d, Flatten, Dense
        >>> Network([Conv2d(1, 4, 3), Flatten(), Dense(64, 10)]).output_shape((1, 6, 6))
        (10,)
        """
        return self._shapes(input_shape)[1]

    def build(self, input_shape: tuple[int, ...]) -> Network:
        """The network with every size a layer infers from its input filled in
        (``Dense(64)`` after 20 features becomes ``Dense(20, 64)``), shapes checked as by
        :meth:`output_shape`.

        Examples
        --------
        >>> from backendnn import Network
        >>> from backendnn.layers import Dense
        >>> Network([Dense(8), Dense(3)]).build((20,))
        Network([Dense(20, 8), Dense(8, 3)])
        """
        return Network(self._shapes(input_shape)[0])

    def _shapes(self, shape: tuple[int, ...]) -> tuple[list[Layer], tuple[int, ...]]:
        return build_chain(self.layers, shape, "layer ")

    def param_names(self) -> list[str]:
        """Names of every parameter array, in flattening order.

        Returns
        -------
        names : list of str
            ``"layers[i].W"``-style names, one per array of ``params``, in the order
            of :func:`flatten_params`.

        Examples
        --------
        >>> from backendnn import Network
        >>> Network.mlp(4, (3,), 2).param_names()
        ['layers[0].W', 'layers[0].b', 'layers[2].W', 'layers[2].b']
        """
        return [
            f"layers[{i}].{n}" for i, layer in enumerate(self.layers) for n in layer.param_names
        ]

    def forward(
        self, params: Params, X: Any, state: list | None = None, *, batch_size: Any = None
    ) -> Any:
        """The network output h_{W,b}(X) (eqs. 14-20) in inference mode, nothing kept for
        backward: batch norm uses its running statistics ``state``, dropout is the
        identity.

        X runs in blocks of :meth:`block_rows` rows (that fit in the memory budget,
        :func:`backendnn.set_memory_budget`), the outputs concatenated: one pass's
        result, to rounding. On JAX a block's pass is compiled once per block size.
        See :ref:`notes-eq-18` (notes' eqs. 14-20).

        Parameters
        ----------
        params : list of tuple of arrays
            The parameters, as returned by :meth:`init`.
        X : array of shape (n_samples, n_features)
            The inputs, (n_samples, ...) when the first layer is a
            :class:`~backendnn.layers.Flatten`.
        state : list of tuple of arrays, optional
            The layers' state (:meth:`init_state`, or a fitted model's); needed where a
            layer has state.
        batch_size : int, optional
            Rows per block; default: as many as fit in the memory budget.

        Returns
        -------
        h : array of shape (n_samples, n_outputs)
            The output of the last layer (logits for a classifier: the losses apply
            the output activation).

        Examples
        --------
        >>> import numpy as np
        >>> from backendnn import Network
        >>> net = Network.mlp(4, (3,), 2)
        >>> params = net.init(seed=0, xp=np, dtype=np.float64)
        >>> net.forward(params, np.ones((5, 4))).shape
        (5, 2)
        """
        self._states(state)  # checked before any block runs
        xp = array_namespace(X)
        ref = [a for p in params for a in p][:1]
        rows = self.block_rows(X.shape[1:], _blocks.itemsize(xp, X, *ref), batch_size)
        one_pass = compiled_forward(self, xp)
        return _blocks.map_rows(lambda block: one_pass(params, block, state), X, rows)

    def _one_pass(self, params: Params, X: Any, state: list | None = None) -> Any:
        """:meth:`forward` of all of X at once (what the JAX backend compiles)."""
        for layer, p, s in zip(self.layers, params, self._states(state)):
            ctx = (Context(state=s),) if layer.uses_mode else ()
            X = layer.forward(p, X, *ctx)[0]  # the cache dropped now: it may hold the input
        return X

    def block_rows(
        self, input_shape: tuple[int, ...], itemsize: int = 8, batch_size: Any = None,
        extra: int = 0,
    ) -> int:  # fmt: skip
        """The rows of :meth:`forward`'s blocks for samples of ``input_shape``:
        ``batch_size`` if given, else max(1, budget // (s * itemsize)), s the elements a
        sample's pass holds at once (its input; a layer's input, output and workspace:
        im2col patches, an activation's temporaries...) plus ``extra``. A ValueError
        for a bad batch_size.

        Examples
        --------
        >>> import backendnn as bn
        >>> net = bn.Network.mlp(100, (1000,), 10)  # s = 100 + (1000 + 1000 + 0): the ReLU
        >>> net.block_rows((100,), itemsize=8), 256 * 2**20 // (2100 * 8)
        (15978, 15978)
        """
        return _blocks.block_rows(self.layers, tuple(input_shape), itemsize, batch_size, extra)

    def summary(self, input_shape: tuple[int, ...]) -> Summary:
        """A table of each layer's output shape and parameter count, with the totals, as
        Keras prints one (batch norm's running statistics count as non-trainable).

        Parameters
        ----------
        input_shape : tuple of int
            One sample's shape, without the batch axis.

        Returns
        -------
        summary : Summary
            Prints as the table; ``rows``, ``total``, ``trainable``, ``non_trainable``.

        Examples
        --------
        >>> from backendnn import Network
        >>> print(Network.mlp(4, (3,), 2, activation="tanh").summary((4,)))
        Input shape: (None, 4)
        #  Layer               Output shape  Param #
        -  ------------------  ------------  -------
        0  Dense(4, 3)         (None, 3)          15
        1  Activation(Tanh())  (None, 3)           0
        2  Dense(3, 2)         (None, 2)           8
        ============================================
        Total params: 23
        Trainable params: 23
        Non-trainable params: 0
        """
        return summarize(self.layers, input_shape)

    def _states(self, state: list | None) -> list:
        if state is not None:
            return list(state)
        if self.has_state:
            raise ValueError(
                "the network has state (batch norm's running statistics): pass "
                "state=network.init_state(...) or a fitted model's state"
            )
        return [()] * len(self.layers)

    def forward_train(
        self,
        params: Params,
        X: Any,
        state: list | None = None,
        key: Any = None,
        weights: Any = None,
    ) -> tuple[Any, list]:
        """The network output in training mode and, per layer, what its backward needs.

        Batch norm normalises with the batch's statistics (weighted by ``weights``);
        dropout draws its mask from ``key`` (each layer from its own stream,
        ``_random.fold_in(key, i)``).

        Parameters
        ----------
        params : list of tuple of arrays
            The parameters, as returned by :meth:`init`.
        X : array of shape (n_samples, ...)
            The inputs.
        state : list of tuple of arrays, optional
            The layers' state; needed where a layer has state.
        key : int32 array of shape (2,), optional
            The step's random key; needed where a layer draws random numbers.
        weights : array of shape (n_samples,), optional
            Sample weights of the batch statistics (None: all 1).

        Returns
        -------
        h : array of shape (n_samples, n_outputs)
            The output.
        caches : list
            One entry per layer, to pass unchanged to :meth:`backward` and
            :meth:`next_state`.

        Examples
        --------
        >>> import numpy as np
        >>> from backendnn import Network
        >>> net = Network.mlp(4, (3,), 2)
        >>> params = net.init(seed=0, xp=np, dtype=np.float64)
        >>> h, caches = net.forward_train(params, np.ones((5, 4)))
        >>> h.shape, len(caches)
        ((5, 2), 3)
        """
        if key is None and self.is_random:
            raise ValueError("the network draws random numbers in training (dropout): pass key")
        caches = []
        for i, (layer, p, s) in enumerate(zip(self.layers, params, self._states(state))):
            if layer.uses_mode:
                k = _random.fold_in(key, i) if layer.random else None
                X, cache = layer.forward(p, X, Context(True, s, k, weights))
            else:
                X, cache = layer.forward(p, X)
            caches.append(cache)
        return X, caches

    def next_state(self, state: list, caches: list, exact: bool = False) -> list:
        """The layers' state after the training forward that returned ``caches`` (batch
        norm's running statistics moved towards the batch's; ``exact``: set to them)."""
        return [
            layer.next_state(s, c, exact) if s else s
            for layer, s, c in zip(self.layers, state, caches)
        ]

    def backward(self, params: Params, caches: list, dout: Any) -> Params:
        """Gradients of every parameter from dL/d(output), layers in reverse (eqs. 32-35).

        Each layer turns the gradient for its output into the gradient for its input
        (delta^(L) from delta^(L+1), eq. 33) and the gradients of its parameters
        (eqs. 34-35). The gradient for the network input is never formed.
        See :ref:`notes-eq-33` (notes' eqs. 32-35).

        Parameters
        ----------
        params : list of tuple of arrays
            The parameters, as returned by :meth:`init`.
        caches : list
            The caches returned by :meth:`forward_train` for the same ``params``.
        dout : array of shape (n_samples, n_outputs)
            dL/dh, the gradient of the loss for the network output.

        Returns
        -------
        grads : list of tuple of arrays
            dL/dparams, with the structure and shapes of ``params``.

        Examples
        --------
        >>> import numpy as np
        >>> from backendnn import Network
        >>> net = Network.mlp(4, (3,), 2)
        >>> params = net.init(seed=0, xp=np, dtype=np.float64)
        >>> h, caches = net.forward_train(params, np.ones((5, 4)))
        >>> grads = net.backward(params, caches, np.ones_like(h))
        >>> [[g.shape for g in p] for p in grads]
        [[(4, 3), (3,)], [], [(3, 2), (2,)]]
        """
        grads: Params = [()] * len(self.layers)
        for i in range(len(self.layers) - 1, -1, -1):
            dout, grads[i] = self.layers[i].backward(params[i], caches[i], dout, need_dx=i > 0)
        return grads

    def __repr__(self) -> str:
        return "Network([" + ", ".join(map(repr, self.layers)) + "])"
