"""Batch normalisation: :class:`BatchNorm1d`, :class:`BatchNorm2d` (one implementation,
statistics over every axis but the channel axis 1); :class:`LayerNorm` is in ``layernorm``.

Batch norm, per channel c, over the n = N L values of the batch in that channel (L the
product of the axes after the channel axis, 1 for (N, C))::

    mu = sum_i a_i x_i,   var = sum_i a_i (x_i - mu)^2,   s = sqrt(var + eps),
    xhat = (x - mu) / s,  y = gamma xhat + beta,

with a_i = 1 / n, or with sample weights w (``ctx.weights``) a_i = w_n / (L sum w) for
every value of sample n: rows of weight 0 do not count (a mesh's padding rows). Its
backward, through the batch statistics (sum a = 1, so sum a (x - mu) = 0), with
g = dy gamma::

    dx = (g - a (sum g + xhat sum(g xhat))) / s,
    dgamma = sum dy xhat,   dbeta = sum dy,

sums over every axis but the channel axis. With running statistics (inference) mu and s
are constants: dx = g / s.

Imports :mod:`backendnn._backend`, ``_validation`` and :mod:`backendnn.layers.base`.
"""

from __future__ import annotations

import math
from typing import Any

from .._backend import array_namespace
from .._validation import is_real
from .base import (
    INFERENCE,
    Context,
    Layer,
    Param,
    _add_bias,
    check_bool,
    check_eps,
    positive_int,
    size,
)


class _BatchNorm(Layer):
    """Batch normalisation over every axis but axis 1 (the channels): the shared
    implementation of :class:`BatchNorm1d` and :class:`BatchNorm2d`."""

    uses_mode = True
    #: the accepted ranks of one sample (no batch axis) and how the error names them
    _sample_ranks: tuple[int, ...] = ()
    _layout: str = ""

    def __init__(
        self,
        num_features: int,
        eps: float = 1e-5,
        momentum: float | None = 0.1,
        affine: bool = True,
        track_running_stats: bool = True,
        *,
        bias: bool = True,
    ):
        owner = type(self).__name__
        self.num_features = positive_int(owner, "num_features", num_features)
        self.eps = check_eps(owner, eps)
        if momentum is not None and (
            not is_real(momentum) or not math.isfinite(momentum) or not 0 <= momentum <= 1
        ):
            raise ValueError(
                f"{owner}: momentum must be a real in [0, 1] (e.g. 0.1) or None (a "
                f"cumulative average), got {momentum!r}"
            )
        self.momentum = None if momentum is None else float(momentum)
        self.affine = check_bool(owner, "affine", affine)
        self.track_running_stats = check_bool(owner, "track_running_stats", track_running_stats)
        self.bias = check_bool(owner, "bias", bias)

    # ------------------------------------------------------------------ declarations

    def config(self) -> dict[str, Any]:
        return {
            "num_features": self.num_features,
            "eps": self.eps,
            "momentum": self.momentum,
            "affine": self.affine,
            "track_running_stats": self.track_running_stats,
            "bias": self.bias,
        }

    def parameters(self) -> tuple[Param, ...]:
        """``weight`` (gamma, ones) and ``bias`` (beta, zeros), each of shape
        (num_features,) and not penalised; none when ``affine=False``, no ``bias`` with
        ``bias=False``."""
        if not self.affine:
            return ()
        c = (self.num_features,)
        w = Param("weight", c, init="ones")
        return (w, Param("bias", c, init="zeros")) if self.bias else (w,)

    def buffers(self) -> tuple[Param, ...]:
        """``running_mean`` (zeros) and ``running_var`` (ones) of shape (num_features,),
        ``num_batches_tracked`` (0-d, zero); none when ``track_running_stats=False``."""
        if not self.track_running_stats:
            return ()
        c = (self.num_features,)
        return (
            Param("running_mean", c, init="zeros"),
            Param("running_var", c, init="ones"),
            Param("num_batches_tracked", (), init="zeros"),
        )

    def output_shape(self, shape: tuple[int, ...]) -> tuple[int, ...]:
        self._check(tuple(shape))
        return tuple(shape)

    def _check(self, shape: tuple[int, ...]) -> None:
        """ValueError unless samples of ``shape`` have the accepted rank and channels."""
        if len(shape) not in self._sample_ranks:
            raise ValueError(
                f"{self!r} expects samples of shape {self._layout}, got samples of shape "
                f"{shape} (a batch of rank {len(shape) + 1})"
            )
        if shape[0] != self.num_features:
            raise ValueError(
                f"{self!r} expects {self.num_features} channels on axis 1, got {shape[0]}"
            )

    # ------------------------------------------------------------------ the pass

    def workspace(self, shape: tuple[int, ...]) -> int:
        """x - mu (scaled in place) and, with batch statistics, (x - mu)^2: two arrays of
        x's size."""
        return 2 * size(shape)

    def forward(self, params: tuple, x: Any, ctx: Context = INFERENCE) -> tuple[Any, Any]:
        """y = gamma (x - mu) / sqrt(var + eps) + beta, per channel: the batch's mu and var
        (weighted by ``ctx.weights``) in training and without running statistics (as torch),
        the running statistics ``ctx.state`` in inference.
        """
        xp = array_namespace(x)
        shape = tuple(x.shape)
        self._check(shape[1:])
        n, c = shape[0], shape[1]
        x3 = xp.reshape(x, (n, c, -1))  # (N, C, L)
        length = x3.shape[2]
        batch_stats = ctx.training or not self.track_running_stats
        if batch_stats:
            if n * length == 1:
                raise ValueError(
                    f"{self!r}: expected more than 1 value per channel when training, got "
                    f"input of shape {shape} (one sample); use a batch of 2 or more samples "
                    "(an estimator's batch_size must leave no last batch of one sample)"
                )
            weights = ctx.weights if ctx.training else None
            a, count = _weighting(xp, weights, n, length, x3.dtype)
            mean = _channel_sum(xp, x3, a)
            centred = x3 - mean
            var = _channel_sum(xp, centred * centred, a)
            inv_std = 1.0 / xp.sqrt(var + self.eps)
            unbiased = var * _unbiased_factor(xp, count)
            stats = (xp.reshape(mean, (c,)), xp.reshape(unbiased, (c,)))
        else:
            if len(ctx.state) != 3:
                raise ValueError(
                    f"{self!r} in inference needs its state (running_mean, running_var, "
                    "num_batches_tracked): pass state=network.init_state(...) or a fitted "
                    "model's state"
                )
            running_mean, running_var = ctx.state[0], ctx.state[1]
            centred = x3 - xp.reshape(running_mean, (1, c, 1))
            inv_std = 1.0 / xp.sqrt(xp.reshape(running_var, (1, c, 1)) + self.eps)
            a, stats = None, None
        xhat = _scale(centred, inv_std)  # centred: this pass's own array
        y = xhat
        if self.affine:
            y = xhat * xp.reshape(params[0], (1, c, 1))
            if self.bias:
                y = _add_bias(y, xp.reshape(params[1], (1, c, 1)))
        return xp.reshape(y, shape), (xhat, inv_std, a, stats, shape)

    def backward(
        self, params: tuple, cache: Any, dy: Any, need_dx: bool = True
    ) -> tuple[Any, tuple]:
        """dx = (g - a (sum g + xhat sum(g xhat))) / s with g = dy gamma (dx = g / s with running
        statistics), dgamma = sum dy xhat, dbeta = sum dy.
        """
        xhat, inv_std, a, _, shape = cache
        xp = array_namespace(dy)
        n, c = shape[0], shape[1]
        dy3 = xp.reshape(dy, (n, c, -1))
        if not (need_dx or self.affine):
            return None, ()
        grads: tuple = ()
        g = dy3
        # sum dy and sum dy xhat once: the parameters' gradients, and times gamma the sums
        # of g (gamma is constant per channel), so no pass reads g for a sum
        sum_dy = xp.sum(dy3, axis=(0, 2), keepdims=True)
        sum_dyx = xp.sum(dy3 * xhat, axis=(0, 2), keepdims=True)
        sum_g, sum_gx = sum_dy, sum_dyx
        if self.affine:
            grads = (xp.reshape(sum_dyx, (c,)),)
            if self.bias:
                grads += (xp.reshape(sum_dy, (c,)),)
            weight = xp.reshape(params[0], (1, c, 1))
            g = dy3 * weight
            sum_g, sum_gx = sum_dy * weight, sum_dyx * weight
        if not need_dx:
            return None, grads
        if a is None:  # running statistics: constants
            return xp.reshape(g * inv_std, shape), grads
        # a times the (1, C, 1) sums first: no full-size product with a (a broadcast XLA
        # would materialise)
        # in place where that is the same (arrays made here): fewer full-size temporaries
        correction = _add_bias(xhat * (a * sum_gx), a * sum_g)
        return xp.reshape(_scale(g - correction, inv_std), shape), grads

    def next_state(self, state: tuple, cache: Any, exact: bool = False) -> tuple:
        """running = (1 - f) running + f batch, with f = momentum (1 / num_batches_tracked
        when momentum is None: the cumulative average), the batch's variance unbiased;
        num_batches_tracked + 1. ``exact``: running = batch (after L-BFGS on the whole
        data set)."""
        if not self.track_running_stats or not state:
            return state
        running_mean, running_var, count = state
        batch_mean, batch_var = cache[3]
        xp = array_namespace(running_mean)
        count = count + 1.0
        if exact:
            new_mean, new_var = batch_mean, batch_var
        else:
            f: Any = self.momentum if self.momentum is not None else 1.0 / count
            new_mean = running_mean + f * (batch_mean - running_mean)
            new_var = running_var + f * (batch_var - running_var)
        return (
            xp.astype(new_mean, running_mean.dtype, copy=False),
            xp.astype(new_var, running_var.dtype, copy=False),
            count,
        )

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}({self.num_features}, eps={self.eps!r}, "
            f"momentum={self.momentum!r}, affine={self.affine}, "
            f"bias={self.affine and self.bias}, "
            f"track_running_stats={self.track_running_stats})"
        )


def _weighting(xp: Any, weights: Any, n: int, length: int, dtype: Any) -> tuple[Any, Any]:
    """The weight a of each value in its channel's statistics (a float, or an array of
    shape (N, 1, 1)) and the count m = L sum w of values (N L unweighted): weights are
    frequencies, as scikit-learn's (a weight of 2 counts as the sample twice)."""
    if weights is None:
        return 1.0 / (n * length), n * length
    w = xp.astype(weights, dtype, copy=False)
    total = xp.sum(w)
    safe_total = xp.where(total > 0, total, 1.0)  # all weights 0: statistics 0, no NaN
    a = xp.reshape(w, (n, 1, 1)) / (length * safe_total)
    return a, length * total


def _scale(z: Any, s: Any) -> Any:
    """z * s, in place when that is the same (``z`` an array made by the caller, ``s`` of a
    dtype that does not promote z's)."""
    if s.dtype != z.dtype:
        return z * s
    z *= s  # on JAX, Python rebinds z to z * s
    return z


def _channel_sum(xp: Any, v: Any, a: Any) -> Any:
    """sum_i a_i v_i per channel of v (N, C, L), shape (1, C, 1): a float a multiplies the
    sum (one product per channel, not per value: under ``jit`` XLA CPU would otherwise
    materialise its broadcast), an array a (sample weights, (N, 1, 1)) every value."""
    if isinstance(a, float):
        return xp.sum(v, axis=(0, 2), keepdims=True) * a
    return xp.sum(v * a, axis=(0, 2), keepdims=True)


def _unbiased_factor(xp: Any, m: Any) -> Any:
    """m / (m - 1), Bessel's correction for the count m; 1 where m <= 1 (weights summing
    to one value or less: no spread to correct)."""
    if isinstance(m, int):
        return m / (m - 1)
    more = m > 1
    return xp.where(more, m / xp.where(more, m - 1, 1.0), 1.0)


class BatchNorm1d(_BatchNorm):
    """Batch normalisation of (N, C) or (N, C, L) batches, per channel C (PyTorch's
    ``BatchNorm1d``).

    Forward: y = gamma (x - mu) / sqrt(var + eps) + beta, mu and var (biased) over the
    N L values of each channel in training (weighted by the batch's sample weights, a
    weight w_n counting for every value of sample n), the running statistics in
    inference. Backward, with g = dy gamma and s = sqrt(var + eps), a = 1 / (N L) (or
    w_n / (L sum w))::

        dx = (g - a (sum g + xhat sum(g xhat))) / s,  dgamma = sum dy xhat,  dbeta = sum dy,

    and dx = g / s in inference (the running statistics are constants).

    After a training pass :meth:`next_state` moves the running statistics:
    running = (1 - momentum) running + momentum batch, the batch variance unbiased
    (times m / (m - 1), m = L sum w the count of values, N L unweighted: weights are
    frequencies, as scikit-learn's).

    Parameters
    ----------
    num_features : int
        C, the number of channels (axis 1).
    eps : float, default 1e-5
        Added to the variance.
    momentum : float or None, default 0.1
        Weight of the batch in the running statistics; None: their cumulative average
        (1 / num_batches_tracked).
    affine : bool, default True
        Whether the layer has ``weight`` (gamma, ones) and ``bias`` (beta, zeros).
    track_running_stats : bool, default True
        Whether the layer keeps ``running_mean``, ``running_var`` and
        ``num_batches_tracked``; without them inference uses the batch's statistics.
    bias : bool, default True
        Keyword only: whether the affine layer has ``bias`` (``bias=False``: weight only,
        as PyTorch's).

    Raises
    ------
    ValueError
        If an argument is out of range; in ``forward``, if x has the wrong rank or channel
        count, a channel of a training batch has one value only (no variance), or an
        inference pass with running statistics gets no state.

    Examples
    --------
    >>> import numpy as np
    >>> from backendnn.layers import BatchNorm1d
    >>> from backendnn.layers.base import Context
    >>> layer = BatchNorm1d(2)
    >>> layer
    BatchNorm1d(2, eps=1e-05, momentum=0.1, affine=True, bias=True, track_running_stats=True)
    >>> layer.output_shape((2,)), BatchNorm1d(3).output_shape((3, 7))  # (C,) or (C, L)
    ((2,), (3, 7))
    >>> params = (np.ones(2), np.zeros(2))
    >>> state = (np.zeros(2), np.ones(2), np.zeros(()))
    >>> x = np.array([[1.0, 10.0], [3.0, 30.0]])
    >>> y, cache = layer.forward(params, x, Context(training=True, state=state))
    >>> np.round(y, 3).tolist()
    [[-1.0, -1.0], [1.0, 1.0]]
    >>> [np.round(s, 3).tolist() for s in layer.next_state(state, cache)]
    [[0.2, 2.0], [1.1, 20.9], 1.0]
    >>> dx, (dweight, dbias) = layer.backward(params, cache, np.ones_like(y))
    >>> dx.tolist(), dbias.tolist()
    ([[0.0, 0.0], [0.0, 0.0]], [2.0, 2.0])
    """

    _sample_ranks = (1, 2)
    _layout = "(num_features,) or (num_features, L): batches (N, C) or (N, C, L)"


class BatchNorm2d(_BatchNorm):
    """Batch normalisation of image batches (N, C, H, W), per channel C (PyTorch's
    ``BatchNorm2d``): :class:`BatchNorm1d`'s formulas with the statistics of each channel
    over its N H W values.

    Forward: y = gamma (x - mu) / sqrt(var + eps) + beta; backward, with g = dy gamma,
    s = sqrt(var + eps) and a = 1 / (N H W) (or w_n / (H W sum w))::

        dx = (g - a (sum g + xhat sum(g xhat))) / s,  dgamma = sum dy xhat,  dbeta = sum dy.

    Parameters
    ----------
    num_features : int
        C, the number of channels (axis 1).
    eps : float, default 1e-5
        Added to the variance.
    momentum : float or None, default 0.1
        Weight of the batch in the running statistics; None: their cumulative average.
    affine : bool, default True
        Whether the layer has ``weight`` (gamma) and ``bias`` (beta).
    track_running_stats : bool, default True
        Whether the layer keeps running statistics (else inference uses the batch's).
    bias : bool, default True
        Keyword only: whether the affine layer has ``bias``.

    Raises
    ------
    ValueError
        If an argument is out of range; in ``forward``, if x has the wrong rank or channel
        count, a channel of a training batch has one value only (no variance), or an
        inference pass with running statistics gets no state.

    Examples
    --------
    >>> import numpy as np
    >>> from backendnn.layers import BatchNorm2d
    >>> from backendnn.layers.base import Context
    >>> layer = BatchNorm2d(1)
    >>> [p.name for p in layer.parameters()], [b.name for b in layer.buffers()]
    (['weight', 'bias'], ['running_mean', 'running_var', 'num_batches_tracked'])
    >>> params, state = (np.ones(1), np.zeros(1)), (np.zeros(1), np.ones(1), np.zeros(()))
    >>> x = np.array([[[[0.0, 2.0]]], [[[2.0, 0.0]]]])  # (N, C, H, W) = (2, 1, 1, 2)
    >>> y, cache = layer.forward(params, x, Context(training=True, state=state))
    >>> np.round(y, 3).ravel().tolist()  # mu = 1, var = 1
    [-1.0, 1.0, 1.0, -1.0]
    >>> dy = np.zeros_like(x)
    >>> dy[0, 0, 0, 0] = 1.0
    >>> dx, (dweight, dbias) = layer.backward(params, cache, dy)
    >>> (np.round(dx, 3) + 0.0).ravel().tolist(), np.round(dweight, 3).tolist(), dbias.tolist()
    ([0.5, 0.0, 0.0, -0.5], [-1.0], [1.0])
    >>> y, cache = layer.forward(params, x, Context(state=state))  # inference: running stats
    >>> np.round(y, 3).ravel().tolist()
    [0.0, 2.0, 2.0, 0.0]
    """

    _sample_ranks = (3,)
    _layout = "(num_features, H, W): batches (N, C, H, W)"
