"""The training objective of a network: the penalised loss J_lambda (notes, eq. 36) of a
batch and its gradient by backpropagation, a mixin of :class:`backendnn.Network` (which
gives it ``layers``, ``forward_train``, ``next_state`` and ``backward``).

Imports :mod:`backendnn.losses`, ``params`` and ``_backend``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from . import losses as _losses
from ._backend import array_namespace
from .params import Params


class TrainingObjective:
    """The loss, the L2 penalty and their gradient (see :class:`backendnn.Network`)."""

    layers: tuple

    # given by Network
    forward_train: Callable[..., tuple[Any, list]]
    next_state: Callable[..., list]
    backward: Callable[..., Params]

    def penalty(
        self, params: Params, alpha: float, n_samples: Any, grad_scale: Any = 1.0
    ) -> tuple[Any, Params]:
        """L2 penalty alpha/(2 n) sum ||W||_F^2 over weight matrices (not biases), and its
        gradient.

        The gradient (alpha/n) W is multiplied by ``grad_scale``: scikit-learn's
        convention. It is the notes' eq. 36 term (lambda/2) sum ||W||^2 with
        lambda = alpha / n_samples.
        See :ref:`notes-eq-36` (notes' eq. 36).

        Parameters
        ----------
        params : list of tuple of arrays
            The parameters, as returned by :meth:`init`.
        alpha : float
            L2 penalty strength (>= 0), scikit-learn's ``alpha``.
        n_samples : int or 0-d array
            The n in alpha / n: the number of samples of the batch (the sum of their
            weights when weighted).
        grad_scale : float or 0-d array, default 1.0
            Factor applied to the gradient (not to the value).

        Returns
        -------
        penalty : 0-d array or float
            alpha/(2 n) sum ||W||_F^2 (the float 0.0 when no array is penalised).
        grads : list of tuple
            Per layer, ``grad_scale * (alpha/n) * W`` for each penalised array and
            ``None`` for the others (biases), in the structure of ``params``.

        Examples
        --------
        >>> import numpy as np
        >>> from backendnn import Network
        >>> from backendnn.layers import Dense
        >>> net = Network([Dense(2, 1)])
        >>> params = [(np.array([[1.0], [2.0]]), np.array([5.0]))]
        >>> value, grads = net.penalty(params, alpha=0.5, n_samples=5)
        >>> round(float(value), 6)
        0.25
        >>> grads[0][0].ravel().tolist(), grads[0][1]
        ([0.1, 0.2], None)
        """
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
        sample_weight: Any = None,
        *,
        state: list | None = None,
        key: Any = None,
    ) -> tuple[Any, Params]:
        """Penalised loss J_lambda (eq. 36) of the batch (X, y) and its gradient, in
        training mode (batch statistics, dropout masks from ``key``).

        With ``sample_weight`` s the loss is the s-weighted mean over samples and the
        penalty's n is sum_i s_i (scikit-learn's convention).
        See :ref:`notes-eq-23` (notes' eqs. 23-24) and :ref:`notes-eq-36` (eq. 36).

        The gradient for every parameter is multiplied by ``grad_scale`` (the value is
        not scaled). ``loss`` is a name or function of :mod:`backendnn.losses`.

        Backpropagation is linear in dJ/dh, so c grad J costs one multiply of dJ/dh
        (n_samples x n_outputs) by c: SGD folds its learning rate in this way and then
        updates with one subtraction per parameter.

        Parameters
        ----------
        params : list of tuple of arrays
            The parameters, as returned by :meth:`init`.
        X : array of shape (n_samples, n_features)
            The inputs, (n_samples, ...) when the first layer is a
            :class:`~backendnn.layers.Flatten`.
        y : array of shape (n_samples,) or (n_samples, n_outputs)
            The targets, in the form ``loss`` expects (integer labels or one-hot rows
            for ``"softmax_cross_entropy"``, values for ``"squared_error"``).
        loss : str or callable, default "squared_error"
            A name of :mod:`backendnn.losses` or a function ``value, dh = loss(y, h)``.
        alpha : float, default 0.0
            L2 penalty strength, see :meth:`penalty`.
        grad_scale : float or 0-d array, default 1.0
            Factor applied to every gradient (not to the value).
        sample_weight : array of shape (n_samples,), optional
            Non-negative weight of each sample (same library and device as ``X``).
        state : list of tuple of arrays, optional
            The layers' state (see :meth:`forward_train`).
        key : int32 array of shape (2,), optional
            The random key of the dropout masks (see :meth:`forward_train`).

        Returns
        -------
        value : 0-d array
            J_lambda, left on the device (read it with ``float``).
        grads : list of tuple of arrays
            ``grad_scale`` times dJ_lambda/dparams, with the structure and shapes of
            ``params``.

        Raises
        ------
        ValueError
            If ``loss`` is not a known loss name, or ``y``'s shape does not match the
            network output.
        TypeError
            If the loss rejects ``y`` (float labels of shape (n_samples,) for
            ``"softmax_cross_entropy"``), or the arrays come from two libraries or
            devices.

        Examples
        --------
        >>> import numpy as np
        >>> from backendnn import Network
        >>> net = Network.mlp(4, (3,), 2)
        >>> params = net.init(seed=0, xp=np, dtype=np.float64)
        >>> X, y = np.ones((5, 4)), np.array([0, 1, 1, 0, 1])
        >>> value, grads = net.loss_and_grad(params, X, y, "softmax_cross_entropy", alpha=1e-4)
        >>> value.shape, [[g.shape for g in p] for p in grads]
        ((), [[(4, 3), (3,)], [], [(3, 2), (2,)]])
        """
        value, grads, _ = self.loss_grad_state(
            params, X, y, loss, alpha, grad_scale, sample_weight, state=state, key=key
        )
        return value, grads

    def loss_grad_state(
        self,
        params: Params,
        X: Any,
        y: Any,
        loss: Any = "squared_error",
        alpha: float = 0.0,
        grad_scale: Any = 1.0,
        sample_weight: Any = None,
        *,
        state: list | None = None,
        key: Any = None,
    ) -> tuple[Any, Params, list | None]:
        """:meth:`loss_and_grad`, and the layers' state after this training pass (None
        when ``state`` is None): one training step's pure function."""
        out, caches = self.forward_train(params, X, state, key, sample_weight)
        new_state = None if state is None else self.next_state(state, caches)
        loss_fn = _losses.get(loss)
        if sample_weight is None:
            value, dout = _checked(loss_fn, out, y, out)
            n: Any = X.shape[0]
        else:
            value, dout = _checked(loss_fn, out, y, out, sample_weight)
            n = _losses.weight_total(sample_weight, array_namespace(sample_weight))
        if not _is(grad_scale, 1):
            dout = dout * grad_scale
        grads = self.backward(params, caches, dout)
        if not _is(alpha, 0):
            pen, pgrads = self.penalty(params, alpha, n, grad_scale)
            value = value + pen
            grads = [
                tuple(g if pg is None else g + pg for g, pg in zip(gs, pgs))
                for gs, pgs in zip(grads, pgrads)
            ]
        return value, grads, new_state


def _is(value: Any, number: float) -> bool:
    """``value`` is the host number ``number`` (an array, perhaps traced by jit, is not)."""
    return isinstance(value, (int, float)) and value == number


def _checked(loss_fn: Any, out: Any, *args: Any) -> tuple[Any, Any]:
    """``loss_fn(*args)``, checked to be (a scalar value, dL/dh of the shape of ``out``)."""
    result = loss_fn(*args)
    if isinstance(result, tuple) and len(result) == 2:
        value, dout = result
        scalar = isinstance(value, (int, float)) or getattr(value, "shape", None) == ()
        if scalar and getattr(dout, "shape", None) == out.shape:
            return value, dout
        result = tuple(getattr(r, "shape", type(r).__name__) for r in result)
    raise ValueError(
        f"the loss {loss_fn!r} must return (value, dL/dh): a 0-d array and an array of the "
        f"output's shape {tuple(out.shape)}; got {result!r}"
    )
