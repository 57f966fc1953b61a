"""Data held in memory on the compute device: :class:`ArrayData`.

It runs an epoch over two device arrays (features X and targets Y, one row per sample,
and optionally sample weights W): rows shuffled with one host permutation moved to the
device, batches gathered with ``take``, and on JAX every full batch of the epoch in one
compiled loop (``lax.scan``). The loop never waits for the device: the epoch's loss
comes back as a device scalar.

Imports :mod:`backendnn._backend`, :mod:`backendnn._cache` and :mod:`backendnn.params`
(types only).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from .._backend import (
    array_namespace,
    device,
    from_numpy,
    index_dtype,
    jit,
    scan,
    step_scalar,
    step_scalars,
    to_namespace_of,
)
from .._cache import CompiledCache
from ..params import Params


class ArrayData:
    """A data set held in memory on the compute device.

    Parameters
    ----------
    X : array of shape (n_samples, ...)
        Inputs, on the device the step runs on.
    Y : array of shape (n_samples, n_outputs)
        Encoded targets, same library and device as ``X``.
    W : array of shape (n_samples,), optional
        Sample weights, same library and device as ``X`` (None: every sample weighs 1).
    """

    def __init__(self, X: Any, Y: Any, W: Any = None):
        self.X, self.Y, self.W = X, Y, W
        self.xp = array_namespace(X, Y) if W is None else array_namespace(X, Y, W)

    @property
    def n_samples(self) -> int:
        return int(self.X.shape[0])

    def subset(self, rows: Sequence[int]) -> ArrayData:
        """The samples ``rows`` (host indices), as a new data set on the same device."""
        xp = self.xp
        idx = from_numpy(list(rows), xp=xp, device=device(self.X), dtype=index_dtype(xp))
        W = None if self.W is None else xp.take(self.W, idx, axis=0)
        return ArrayData(xp.take(self.X, idx, axis=0), xp.take(self.Y, idx, axis=0), W)

    def permutation(self, rng: Any, previous: Any = None) -> Any:
        """A random order of the rows drawn on the host from ``rng``, moved to the device;
        with ``previous`` (an order this method returned) that order permuted again, as
        scikit-learn reshuffles its index array every epoch (the same draws)."""
        xp = self.xp
        perm = from_numpy(rng.permutation(self.n_samples), xp=xp, device=device(self.X))
        # an order from elsewhere (a resumed run's, from a file) moves here first
        return perm if previous is None else xp.take(to_namespace_of(previous, perm), perm, axis=0)

    def epoch(
        self,
        step: Callable,
        params: Params,
        state: Any,
        rates: Sequence[float],
        batch_size: int,
        order: Any = None,
    ) -> tuple[Params, Any, Any]:
        """One pass over the batches of ``batch_size`` rows in the ``order`` given by a device
        array of row indices (None: the stored order): batch i trained at
        learning rate ``rates[i]`` (one per batch, the last batch possibly smaller).
        Returns (params, state, summed loss) with the loss left on the device."""
        xp, X, Y, W = self.xp, self.X, self.Y, self.W
        n, dev = self.n_samples, device(X)
        n_full, rest = divmod(n, batch_size)
        rows = xp.arange(n, device=dev) if order is None else order
        full = xp.reshape(rows[: n_full * batch_size], (n_full, batch_size))
        # the loss sum's dtype: that of the step's output, X's promoted with the weights'
        weights = next(a for layer in params for a in layer)
        zero = xp.zeros((), dtype=xp.result_type(X.dtype, weights.dtype), device=dev)
        params, state, total = compiled_epoch(step, xp)(
            params, state, X, Y, W, full, step_scalars(rates[:n_full], X), zero
        )
        if rest:  # the last, smaller batch: its own (compiled) step
            idx = rows[n_full * batch_size :]
            Xb, Yb, Wb = (None if a is None else xp.take(a, idx, axis=0) for a in (X, Y, W))
            params, state, value = step(params, state, Xb, Yb, step_scalar(rates[-1], X), Wb)
            total = total + value
        return params, state, total


_EPOCHS = CompiledCache()


def compiled_epoch(step: Callable, xp: Any) -> Callable:
    """The loop of ``step`` over an epoch's full batches, as one function
    ``(params, state, X, Y, W, rows, rates, zero) -> (params, state, summed loss)``: batch
    i is the samples ``rows[i]`` (``rows`` of shape (n_batches, batch)) of X, Y and the
    sample weights W (or None) trained at learning rate ``rates[i]``; ``zero`` is a 0-d
    array of the loss dtype that starts the sum.
    On JAX the whole loop is compiled (``lax.scan``): one dispatch per epoch, not per batch.
    Kept per step function (steps themselves are cached by :mod:`backendnn.train`).
    """

    def epoch(
        params: Params, state: Any, X: Any, Y: Any, W: Any, rows: Any, rates: Any, zero: Any
    ) -> tuple[Params, Any, Any]:
        def body(carry: tuple, batch: tuple) -> tuple:
            params, state, total = carry
            idx, lr = batch
            Xb, Yb = xp.take(X, idx, axis=0), xp.take(Y, idx, axis=0)
            Wb = None if W is None else xp.take(W, idx, axis=0)
            params, state, value = step(params, state, Xb, Yb, lr, Wb)
            return params, state, total + value

        return scan(body, (params, state, zero), (rows, rates), xp)

    def build() -> tuple[Callable, bool]:
        compiled = jit(epoch, xp)
        return compiled, compiled is not epoch

    return _EPOCHS.get(step, build)
