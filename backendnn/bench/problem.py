"""The problem every engine solves: the network, the host data and the timing plan
(:class:`Problem`, :func:`make_problem`), its FLOP count (:func:`step_flops`), the
default number of timed steps (:func:`auto_steps`) and the same settings spelled as
``MLPClassifier`` arguments (:func:`mlp_settings`).

Imports: backendnn's ``_backend`` and ``network`` only; no other module of the bench.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from .. import _backend
from ..network import Network

_MAX_DATA_BYTES = 128 * 2**20  # distinct data per engine; step engines cycle through it
_STEPS_FLOP_BUDGET = 4e11  # --steps auto: counted FLOPs per engine (1e11 was noisy)


@dataclass
class Problem:
    """The network, the host data and the timing plan shared by every engine."""

    sizes: tuple[int, ...]
    batch: int
    steps: int
    warmup: int
    repeats: int
    lr: float
    seed: int
    X: Any  # host float32 (n_batches * batch, sizes[0])
    y: Any  # host int64 labels (n_batches * batch,)
    Y: Any  # host float32 one-hot (n_batches * batch, sizes[-1])

    @property
    def n_batches(self) -> int:
        return self.X.shape[0] // self.batch

    @property
    def steps_per_block(self) -> int:
        return max(1, self.steps // self.repeats)

    @property
    def hidden(self) -> tuple[int, ...]:
        return tuple(self.sizes[1:-1])

    @property
    def network_name(self) -> str:
        return "-".join(str(s) for s in self.sizes)

    def network(self) -> Network:
        return Network.mlp(self.sizes[0], self.hidden, self.sizes[-1], "relu")

    def host_params(self) -> list[tuple[Any, Any]]:
        """backendnn's initial (W of shape (n_in, n_out), b) per dense layer, NumPy float32."""
        xp = _backend.namespace("numpy")
        params = self.network().init(self.seed, xp=xp, dtype=xp.float32)
        return [tuple(p) for p in params if p]


def step_flops(sizes: Sequence[int], batch: int) -> int:
    """Matrix-product FLOPs of one training step (see the package docstring)."""
    pairs = list(zip(sizes[:-1], sizes[1:]))
    return 6 * batch * sum(a * b for a, b in pairs) - 2 * batch * sizes[0] * sizes[1]


def auto_steps(sizes: Sequence[int], batch: int) -> int:
    """Timed steps when ``--steps`` is not given: about 4e11 FLOPs, 50 to 500 steps."""
    return int(min(500, max(50, round(_STEPS_FLOP_BUDGET / step_flops(sizes, batch)))))


def make_problem(
    sizes: Sequence[int],
    batch: int,
    steps: int,
    warmup: int = 5,
    repeats: int = 7,
    lr: float = 0.01,
    seed: int = 0,
) -> Problem:
    """Host data for ``steps`` distinct batches (fewer if they would pass 128 MiB)."""
    if len(sizes) < 2 or any(s < 1 for s in sizes):
        raise ValueError(f"--sizes needs at least two positive layer widths, got {sizes}")
    if batch < 1 or steps < 1 or repeats < 1 or warmup < 0:
        raise ValueError("batch, steps and repeats must be positive, warmup >= 0")
    xp = _backend.namespace("numpy")
    rng = _backend.host_rng(seed)
    d, k = sizes[0], sizes[-1]
    n_batches = max(1, min(steps, _MAX_DATA_BYTES // (4 * batch * d)))
    n = n_batches * batch
    X = rng.standard_normal((n, d), dtype="float32")
    # every batch holds each class about equally often (all k once batch >= k)
    labels = xp.tile(xp.arange(batch, dtype=xp.int64) % k, (n_batches, 1))
    y = xp.reshape(rng.permuted(labels, axis=1), (n,))
    Y = xp.astype(y[:, None] == xp.arange(k, dtype=xp.int64)[None, :], xp.float32)
    return Problem(tuple(int(s) for s in sizes), batch, steps, warmup, repeats, lr, seed, X, y, Y)


def mlp_settings(p: Problem) -> dict[str, Any]:
    """MLPClassifier settings shared by scikit-learn's and backendnn's: plain SGD, same batches."""
    return dict(
        hidden_layer_sizes=p.hidden,
        activation="relu",
        solver="sgd",
        alpha=0.0,
        batch_size=p.batch,
        learning_rate="constant",
        learning_rate_init=p.lr,
        max_iter=1,
        shuffle=False,
        tol=0.0,
        momentum=0.0,
        nesterovs_momentum=False,
        random_state=p.seed,
    )
