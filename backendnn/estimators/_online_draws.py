"""scikit-learn's draws for the online perceptron, on the host: the epoch orders (its
xorshift Fisher-Yates shuffle, re-seeded each epoch) and the seeds and early-stopping
split drawn from the estimator's generator in scikit-learn's order.

Imports :mod:`backendnn._validation`.
"""

from __future__ import annotations

import copy
from typing import Any

import numpy as np

from .._validation import is_int

MAX_INT = 2**31 - 1  # scikit-learn's seeds: randint(MAX_INT)


def along(values: Any, order: Any) -> Any:
    """``values[order[t, j], j]`` for every step t and problem j (host arrays)."""
    cols = np.arange(values.shape[1])
    return values[order, cols[None, :]]


class Orders:
    """The sample order of each epoch per problem: scikit-learn's index array, shuffled
    in place at the start of every epoch by the same Fisher-Yates swaps (its seed is
    passed by value, so the swaps repeat): the order after e epochs is the previous
    order permuted by one fixed permutation per problem."""

    def __init__(self, seeds: list[int] | None, n: int, k: int):
        self.order = np.repeat(np.arange(n)[:, None], k, axis=1)  # (n, K)
        self.perms = None if seeds is None else np.asarray([_xorshift_perm(s, n) for s in seeds])

    def next_epoch(self) -> Any:
        if self.perms is not None:
            cols = np.arange(self.order.shape[1])
            self.order = self.order[self.perms.T, cols[None, :]]
        return self.order


def _xorshift_perm(seed: int, n: int) -> list[int]:
    """The permutation scikit-learn's ``SequentialDataset.shuffle(seed)`` applies: a
    Fisher-Yates shuffle drawing from its xorshift ``our_rand_r``."""
    seed &= 0xFFFFFFFF
    ind = list(range(n))
    for i in range(n - 1):
        if seed == 0:
            seed = 1  # DEFAULT_SEED
        seed ^= (seed << 13) & 0xFFFFFFFF
        seed ^= seed >> 17
        seed ^= (seed << 5) & 0xFFFFFFFF
        j = i + (seed % 2147483648) % (n - i)
        ind[i], ind[j] = ind[j], ind[i]
    return ind


def draw(r: Any, low: int, high: int, size: int | None = None) -> Any:
    """``randint`` of a legacy ``RandomState`` (scikit-learn's), ``integers`` of a
    ``Generator``."""
    if hasattr(r, "randint"):
        return r.randint(low, high, size=size)
    return r.integers(low, high, size=size)


def draws(rng: Any, random_state: Any, k: int, early_stopping: bool) -> tuple[Any, list[int]]:
    """(the early-stopping split's generator, one shuffle seed per problem), drawn in
    scikit-learn's order: for an int ``random_state`` every draw starts a new generator
    from that seed (a copy of ``rng`` as it came), else all share ``rng``."""

    def fresh() -> Any:
        return copy.deepcopy(rng) if is_int(random_state) else rng

    if k == 1:  # fit_binary: make_dataset's seed, the split, then the shuffle seed
        own = fresh()
        draw(own, 1, MAX_INT)
        split = fresh() if early_stopping else None
        return split, [int(draw(own, 0, MAX_INT))]
    split = fresh() if early_stopping else None  # the split comes first here
    seeds = [int(s) for s in draw(fresh(), 0, MAX_INT, size=k)]
    legacy = hasattr(rng, "randint")
    shuffle_seeds = []
    for s in seeds:  # each problem: RandomState(seed), make_dataset's draw, then its seed
        if legacy:
            own = type(rng)(s)
            draw(own, 1, MAX_INT)
            shuffle_seeds.append(int(draw(own, 0, MAX_INT)))
        else:
            shuffle_seeds.append(s)
    return split, shuffle_seeds
