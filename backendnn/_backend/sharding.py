"""JAX meshes: where a sharded array lives, and the gather that hands each device its
equal share of a batch without moving the data set.

**Placement.** An array spread over several devices (a ``jax.sharding.Sharding`` with
more than one device) *lives on* the replicated sharding over its mesh
(:func:`placement`): arrays made "on the device of X" (weights, optimiser state,
targets encoded on the host, label tables) are then replicated over X's devices, and
two arrays on one mesh count as one place in ``array_namespace``'s device check
whatever their partitioning.

**The data-parallel epoch** (:func:`make_row_epoch`). The data set (X, Y, W) is sharded
along its rows over one or more mesh axes; the weights are replicated. Batch i is the
rows ``order[i*b:(i+1)*b]`` of one host permutation, exactly as on one device, so the
sharded fit follows the single-device one (same loss curve, same weights up to the
order of floating-point sums). Gathering those rows with a plain ``take`` of the
sharded X would let XLA all-gather X onto every device; instead, inside ``shard_map``,
each device takes the rows of the batch that it holds (zeros for the others) and one
``psum_scatter`` over the batch axes gives device k rows ``[k*B/D, (k+1)*B/D)`` of the
batch. Exactly one device contributes each row, so the values are exact; the traffic
per batch is one reduce-scatter of the batch (never of X). The training step then runs
on the batch-sharded Xb with replicated weights, in the same ``jit``: XLA partitions it
along the batch and all-reduces the gradients, so the weights stay replicated and
identical on every device (and every process, under ``jax.distributed``).

**Equal shares.** A batch of b rows is padded to B = D * ceil(b / D) rows (D shards) with
row id -1, which no device holds: zero inputs of sample weight 0. Padding turns on the
weighted loss (ones for the real rows), equal to the unweighted one to rounding; the
step's summed loss (``loss * B``) is scaled back by (real rows) / B.

Imports jax (lazily) and NumPy; nothing from backendnn.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import Any

import numpy as np


def _jax() -> Any:
    return importlib.import_module("jax")


def _sharding(x: Any) -> Any:
    """``x.sharding`` for a concrete JAX array (None for tracers and other arrays)."""
    try:
        return x.sharding
    except Exception:
        return None


def is_split(x: Any) -> bool:
    """Whether ``x`` is a JAX array split over several devices (not replicated on them):
    data for :class:`backendnn.data.ShardedData`."""
    s = _sharding(x)
    return s is not None and len(s.device_set) > 1 and not s.is_fully_replicated


def replicated(sharding: Any) -> Any:
    """The sharding that replicates an array over the devices of ``sharding``."""
    jax = _jax()
    P = jax.sharding.PartitionSpec
    mesh = getattr(sharding, "mesh", None)
    if mesh is None:  # a sharding without a mesh: one over its devices, in their order
        devices = np.array(list(sharding._device_assignment))
        mesh = jax.sharding.Mesh(devices, ("devices",))
    return jax.sharding.NamedSharding(mesh, P())


def placement(where: Any) -> Any:
    """Where backendnn counts an array on ``where`` (the ``device`` of a JAX array) to
    live: a sharding over several devices counts as the replicated sharding over them."""
    if hasattr(where, "device_set") and len(where.device_set) > 1:
        return replicated(where)
    return where


def row_layout(X: Any) -> tuple[Any, tuple, int]:
    """(mesh, batch axis names, number of row shards) of an array sharded along its rows.

    Raises
    ------
    TypeError
        If ``X`` is split along another axis than the first, or not over a named mesh.
    """
    jax = _jax()
    s = _sharding(X)
    spec = tuple(getattr(s, "spec", None) or ())
    if any(p is not None for p in spec[1:]):
        raise TypeError(
            f"X is split along its features (PartitionSpec{spec}); backendnn shards data "
            "along the rows only: use PartitionSpec('batch')"
        )
    if not isinstance(s, jax.sharding.NamedSharding) or not spec or spec[0] is None:
        raise TypeError(
            f"X is spread over {len(s.device_set) if s is not None else 0} devices with "
            f"sharding {s}; data-parallel training needs X sharded along its rows over a "
            "jax.sharding.Mesh: jax.device_put(X, NamedSharding(mesh, PartitionSpec('batch')))"
        )
    axes = spec[0] if isinstance(spec[0], tuple) else (spec[0],)
    n_shards = int(np.prod([s.mesh.shape[a] for a in axes]))
    return s.mesh, axes, n_shards


def _rows_spec(mesh: Any, axes: tuple, ndim: int) -> Any:
    jax = _jax()
    return jax.sharding.NamedSharding(
        mesh, jax.sharding.PartitionSpec(axes, *([None] * (ndim - 1)))
    )


def on_rows(a: Any, like: Any) -> Any:
    """Array (or host array) ``a`` placed with the row sharding of ``like`` (no copy if it
    already is)."""
    mesh, axes, _ = row_layout(like)
    target = _rows_spec(mesh, axes, a.ndim)
    if _sharding(a) == target:
        return a
    return _jax().device_put(a, target)


def put_replicated(host: Any, like: Any) -> Any:
    """Host array ``host`` replicated over the devices of ``like`` (the same values in
    every process under ``jax.distributed``)."""
    return _jax().device_put(np.asarray(host), replicated(_sharding(like)))


def host_copy(x: Any) -> np.ndarray:
    """A JAX array as a NumPy array on this host. An array that other processes hold
    parts of is gathered from them (``process_allgather``: a collective, so every process
    must call it; backendnn does so only for labels, predictions and sample weights)."""
    if x.is_fully_addressable or x.is_fully_replicated:
        return np.asarray(x)
    multihost_utils = importlib.import_module("jax.experimental.multihost_utils")
    return np.asarray(multihost_utils.process_allgather(x, tiled=True))


def padded_rows(rows: np.ndarray, n_shards: int) -> np.ndarray:
    """Host row ids ``rows`` of shape (..., b) padded with -1 to a multiple of ``n_shards``
    along the last axis: every shard gets an equal share."""
    b = rows.shape[-1]
    pad = -b % n_shards
    if not pad:
        return rows
    return np.concatenate([rows, np.full(rows.shape[:-1] + (pad,), -1, rows.dtype)], axis=-1)


def make_row_gather(mesh: Any, axes: tuple, ones: bool) -> Callable:
    """``gather(arrays, idx) -> arrays[idx]`` for a tuple of arrays sharded along their
    rows over ``axes`` and a replicated vector ``idx`` of B global row ids (-1: none),
    B a multiple of the shard count: each result is sharded along its rows, each device
    building its share from the rows it holds (see the module docstring). With ``ones``,
    one more result: 1.0 for the real rows and 0.0 for the padding, in the first array's
    dtype (the sample weights of an unweighted, padded batch)."""
    jax = _jax()
    jnp, lax = jax.numpy, jax.lax
    P = jax.sharding.PartitionSpec

    def local(arrays: tuple, idx: Any) -> tuple:
        n_local = arrays[0].shape[0]
        rows = idx - lax.axis_index(axes) * n_local
        own = (rows >= 0) & (rows < n_local)
        safe = jnp.clip(rows, 0, n_local - 1)
        out = []
        for a in arrays:
            taken = jnp.take(a, safe, axis=0)
            mask = jnp.reshape(own, own.shape + (1,) * (a.ndim - 1))
            out.append(jnp.where(mask, taken, jnp.zeros((), a.dtype)))
        if ones:
            out.append(own.astype(arrays[0].dtype))
        return tuple(lax.psum_scatter(o, axes, scatter_dimension=0, tiled=True) for o in out)

    def gather(arrays: tuple, idx: Any) -> tuple:
        n_out = len(arrays) + int(ones)
        return jax.shard_map(
            local,
            mesh=mesh,
            in_specs=(tuple(P(axes) for _ in arrays), P()),
            out_specs=tuple(P(axes) for _ in range(n_out)),
        )(arrays, idx)

    return gather


def make_row_epoch(
    step: Callable, mesh: Any, axes: tuple, weighted: bool, padded: bool
) -> Callable:
    """The compiled data-parallel loop of ``step`` over batches:
    ``(params, state, X, Y, W, rows, counts, rates, zero) -> (params, state, summed loss)``.

    Batch i is the rows ``rows[i]`` (a replicated (n_batches, B) array of global row ids,
    -1 for padding) of X, Y and, if ``weighted``, the sample weights W (else W is None),
    all sharded along their rows over ``axes``; ``counts[i]`` its number of real rows,
    ``rates[i]`` its learning rate; ``zero`` a replicated 0-d array of the loss dtype.
    ``padded``: some batch holds padding (its rows weigh 0). The weights and optimiser
    state are replicated in and out.
    """
    jax = _jax()
    gather = make_row_gather(mesh, axes, ones=padded and not weighted)
    rep = jax.sharding.NamedSharding(mesh, jax.sharding.PartitionSpec())

    def epoch(
        params: Any, state: Any, X: Any, Y: Any, W: Any, rows: Any, counts: Any, rates: Any,
        zero: Any,
    ) -> tuple:  # fmt: skip
        def body(carry: tuple, batch: tuple) -> tuple:
            params, state, total = carry
            idx, count, lr = batch
            data = (X, Y) if W is None else (X, Y, W)
            got = gather(data, idx)
            Xb, Yb = got[0], got[1]
            Wb = got[2] if len(got) > 2 else None
            params, state, value = step(params, state, Xb, Yb, lr, Wb)
            # the step sums its mean loss over the B rows it was given; count of them are real
            value = value * (count / Xb.shape[0])
            params, state = jax.lax.with_sharding_constraint((params, state), rep)
            return (params, state, total + value), None

        (params, state, total), _ = jax.lax.scan(body, (params, state, zero), (rows, counts, rates))
        return params, state, total

    return jax.jit(epoch, out_shardings=rep)
