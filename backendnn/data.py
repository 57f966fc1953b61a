"""Where training batches come from: a data source the training loop iterates.

:class:`ArrayData` holds a whole data set as two device arrays (features X and targets Y,
one row per sample) and runs an epoch over them: rows shuffled with one host permutation
moved to the device, batches gathered with ``take``, and on JAX every full batch of the
epoch in one compiled loop (``lax.scan``). The loop never waits for the device: the
epoch's loss comes back as a device scalar.

A new source (arrays sharded over devices, chunks streamed from disk) is one more class
with the same members: ``n_samples``, ``subset(rows)``, ``permutation(rng)`` and ``epoch(...)``.

Imports :mod:`backendnn._backend`, :mod:`backendnn._cache` and :mod:`backendnn.network`
(types only).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from ._backend import (
    array_namespace,
    device,
    from_numpy,
    index_dtype,
    jit,
    scan,
    step_scalar,
    step_scalars,
)
from ._cache import CompiledCache
from .params import Params


class ArrayData:
    """A data set held in memory on the compute device.

    Parameters
    ----------
    X : array of shape (n_samples, ...)
        Inputs, on the device the step runs on.
    Y : array of shape (n_samples, n_outputs)
        Encoded targets, same library and device as ``X``.
    """

    def __init__(self, X: Any, Y: Any):
        self.X, self.Y = X, Y
        self.xp = array_namespace(X, Y)

    @property
    def n_samples(self) -> int:
        return int(self.X.shape[0])

    def subset(self, rows: Sequence[int]) -> ArrayData:
        """The samples ``rows`` (host indices), as a new data set on the same device."""
        xp = self.xp
        idx = from_numpy(list(rows), xp=xp, device=device(self.X), dtype=index_dtype(xp))
        return ArrayData(xp.take(self.X, idx, axis=0), xp.take(self.Y, idx, axis=0))

    def permutation(self, rng: Any) -> Any:
        """A random order of the rows drawn on the host from ``rng``, moved to the device."""
        return from_numpy(rng.permutation(self.n_samples), xp=self.xp, device=device(self.X))

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
        xp, X, Y = self.xp, self.X, self.Y
        n, dev = self.n_samples, device(X)
        n_full, rest = divmod(n, batch_size)
        rows = xp.arange(n, device=dev) if order is None else order
        full = xp.reshape(rows[: n_full * batch_size], (n_full, batch_size))
        # the loss sum's dtype: that of the step's output, X's promoted with the weights'
        weights = next(a for layer in params for a in layer)
        zero = xp.zeros((), dtype=xp.result_type(X.dtype, weights.dtype), device=dev)
        params, state, total = compiled_epoch(step, xp)(
            params, state, X, Y, full, step_scalars(rates[:n_full], X), zero
        )
        if rest:  # the last, smaller batch: its own (compiled) step
            idx = rows[n_full * batch_size :]
            Xb, Yb = xp.take(X, idx, axis=0), xp.take(Y, idx, axis=0)
            params, state, value = step(params, state, Xb, Yb, step_scalar(rates[-1], X))
            total = total + value
        return params, state, total


def as_source(X: Any, Y: Any) -> ArrayData:
    """The data source that trains on inputs ``X`` and encoded targets ``Y``: arrays in
    the compute library's memory become an :class:`ArrayData`. A new kind of data
    (sharded, streamed) is recognised here, so the estimators need no change."""
    return ArrayData(X, Y)


_EPOCHS = CompiledCache()


def compiled_epoch(step: Callable, xp: Any) -> Callable:
    """The loop of ``step`` over an epoch's full batches, as one function
    ``(params, state, X, Y, rows, rates, zero) -> (params, state, summed loss)``: batch i
    is the samples ``rows[i]`` (``rows`` of shape (n_batches, batch)) trained at learning
    rate ``rates[i]``; ``zero`` is a 0-d array of the loss dtype that starts the sum.
    On JAX the whole loop is compiled (``lax.scan``): one dispatch per epoch, not per batch.
    Kept per step function (steps themselves are cached by :mod:`backendnn.train`).
    """

    def epoch(
        params: Params, state: Any, X: Any, Y: Any, rows: Any, rates: Any, zero: Any
    ) -> tuple[Params, Any, Any]:
        def body(carry: tuple, batch: tuple) -> tuple:
            params, state, total = carry
            idx, lr = batch
            Xb, Yb = xp.take(X, idx, axis=0), xp.take(Y, idx, axis=0)
            params, state, value = step(params, state, Xb, Yb, lr)
            return params, state, total + value

        return scan(body, (params, state, zero), (rows, rates), xp)

    def build() -> tuple[Callable, bool]:
        compiled = jit(epoch, xp)
        return compiled, compiled is not epoch

    return _EPOCHS.get(step, build)
