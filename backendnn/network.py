"""A network: a sequence of layers, forward propagation then hand-written backpropagation.

Parameters are plain data, a list with one tuple of arrays per layer (empty for layers
without parameters)::

    net = Network.mlp(64, (32,), 10, activation="relu")
    params = net.init(seed=0, xp=xp, dtype=xp.float64)
    loss, grads = net.loss_and_grad(params, X, y, "softmax_cross_entropy", alpha=1e-4)

``loss_and_grad`` is a pure function of its arrays, so ``jax.jit`` compiles it.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from . import activations as _act
from . import init as _init
from . import losses as _losses
from ._backend import array_namespace, from_numpy, host_rng, namespace
from .layers import Activation, Dense, Flatten, GatedDense, Layer

Params = list  # list[tuple[Array, ...]], one tuple per layer


class Network:
    """A feed-forward network of :mod:`backendnn.layers`."""

    def __init__(self, layers: Sequence[Layer]):
        self.layers = tuple(layers)

    @classmethod
    def mlp(
        cls,
        n_in: int,
        hidden: Sequence[int],
        n_out: int,
        activation: Any = "relu",
        flatten: bool = False,
    ) -> Network:
        """Dense layers n_in -> hidden... -> n_out with ``activation`` between them and a
        linear output (the losses fuse the output activation). A GLU-family activation
        makes each hidden layer a :class:`GatedDense`. ``flatten`` prepends :class:`Flatten`
        for image batches."""
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

    # ------------------------------------------------------------------ parameters

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
        """Initial parameters drawn on the host from ``seed`` with initialiser ``scheme``
        (see :mod:`backendnn.init`; ``activation`` picks Glorot's factor), cast to
        ``dtype`` on the host, then moved to ``xp`` on ``device``: the same seed gives
        bitwise identical weights on every backend."""
        xp = xp if xp is not None else namespace()
        dtype = dtype if dtype is not None else xp.float32
        host_dtype = "float32" if dtype == xp.float32 else "float64"
        rng, draw = host_rng(seed), _init.get(scheme)
        act_name = getattr(_act.get(activation), "name", activation)
        params: Params = []
        for layer in self.layers:
            shapes = layer.param_shapes()
            if not shapes:
                params.append(())
                continue
            drawn = draw(rng, shapes[0][0], shapes[0][1], activation=act_name)[: len(shapes)]
            params.append(
                tuple(
                    xp.zeros(shape, dtype=dtype, device=device)
                    if a is None
                    else from_numpy(a.astype(host_dtype), xp=xp, device=device, dtype=dtype)
                    for a, shape in zip(drawn, shapes)
                )
            )
        return params

    def param_names(self) -> list[str]:
        """``"layers[i].W"`` style names of every parameter array, in flattening order."""
        return [
            f"layers[{i}].{n}" for i, layer in enumerate(self.layers) for n in layer.param_names
        ]

    # ------------------------------------------------------------------ propagation

    def forward(self, params: Params, X: Any) -> Any:
        """The network output h_{W,b}(X) (eqs. 14-20), nothing kept for backward."""
        for layer, p in zip(self.layers, params):
            X, _ = layer.forward(p, X)
        return X

    def forward_train(self, params: Params, X: Any) -> tuple[Any, list]:
        """The output and, per layer, what its backward needs."""
        caches = []
        for layer, p in zip(self.layers, params):
            X, cache = layer.forward(p, X)
            caches.append(cache)
        return X, caches

    def backward(self, params: Params, caches: list, dout: Any) -> Params:
        """Gradients of every parameter from dL/d(output), layers in reverse (eqs. 32-35).
        The gradient for the network input is never formed."""
        grads: Params = [()] * len(self.layers)
        for i in range(len(self.layers) - 1, -1, -1):
            dout, grads[i] = self.layers[i].backward(params[i], caches[i], dout, need_dx=i > 0)
        return grads

    def penalty(
        self, params: Params, alpha: float, n_samples: int, grad_scale: Any = 1.0
    ) -> tuple[Any, Params]:
        """L2 penalty alpha/(2 n) sum ||W||_F^2 over weight matrices (not biases), and its
        gradient (alpha/n) W times ``grad_scale``: scikit-learn's convention. It is the
        notes' eq. 36 term (lambda/2) sum ||W||^2 with lambda = alpha / n_samples."""
        penalty, grads = 0.0, []
        scale = alpha / n_samples
        for layer, p in zip(self.layers, params):
            g = []
            for arr, pen in zip(p, layer.penalized):
                if pen:
                    xp = array_namespace(arr)
                    flat = xp.reshape(arr, (-1,))
                    penalty = penalty + xp.vecdot(flat, flat)
                    g.append((scale * grad_scale) * arr)
                else:
                    g.append(None)
            grads.append(tuple(g))
        return 0.5 * scale * penalty, grads

    def loss_and_grad(
        self,
        params: Params,
        X: Any,
        y: Any,
        loss: Any = "squared_error",
        alpha: float = 0.0,
        grad_scale: Any = 1.0,
    ) -> tuple[Any, Params]:
        """Penalised loss J_lambda (eq. 36) of the batch (X, y) and its gradient for every
        parameter, times ``grad_scale`` (the value is not scaled). ``loss`` is a name or
        function of :mod:`backendnn.losses`.

        Backpropagation is linear in dJ/dh, so c grad J costs one multiply of dJ/dh
        (n_samples x n_outputs) by c: SGD folds its learning rate in this way and then
        updates with one subtraction per parameter.
        """
        out, caches = self.forward_train(params, X)
        value, dout = _losses.get(loss)(y, out)
        if not _is(grad_scale, 1):
            dout = dout * grad_scale
        grads = self.backward(params, caches, dout)
        if not _is(alpha, 0):
            pen, pgrads = self.penalty(params, alpha, X.shape[0], grad_scale)
            value = value + pen
            grads = [
                tuple(g if pg is None else g + pg for g, pg in zip(gs, pgs))
                for gs, pgs in zip(grads, pgrads)
            ]
        return value, grads

    def __repr__(self) -> str:
        return "Network([" + ", ".join(map(repr, self.layers)) + "])"


def _is(value: Any, number: float) -> bool:
    """``value`` is the host number ``number`` (an array, perhaps traced by jit, is not)."""
    return isinstance(value, (int, float)) and value == number


# ---------------------------------------------------------------------- flat vectors


def flatten_params(params: Params) -> Any:
    """All parameter arrays concatenated into one vector (layer order, W before b)."""
    arrays = [a for p in params for a in p]
    xp = array_namespace(*arrays)
    return xp.concat([xp.reshape(a, (-1,)) for a in arrays])


def unflatten_params(vector: Any, like: Params) -> Params:
    """The inverse of :func:`flatten_params`: slices of ``vector`` shaped as ``like``."""
    xp = array_namespace(vector)
    out: Params = []
    start = 0
    for p in like:
        arrays = []
        for a in p:
            size = 1
            for d in a.shape:
                size *= d
            arrays.append(xp.reshape(vector[start : start + size], tuple(a.shape)))
            start += size
        out.append(tuple(arrays))
    return out
