"""scikit-learn's train/validation split for early stopping, drawn on the host.

The same draws from the same ``numpy.random.RandomState`` in the same order as
``sklearn.model_selection.train_test_split`` (``ShuffleSplit``, or
``StratifiedShuffleSplit`` with ``stratify``), so a seed gives scikit-learn's split; and
its errors for splits too small to use. Host NumPy code on row indices, never on data.

Part of the backend layer (it uses NumPy by name). Imports nothing of backendnn.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np


def split_indices(n: int, fraction: float, rng: Any, labels: Any = None) -> tuple[list, list]:
    """Host-drawn (train, validation) row indices, stratified by the class indices
    ``labels`` when given: scikit-learn's ``train_test_split(test_size=fraction,
    random_state=rng, stratify=labels)``, the same draws from ``rng`` in the same order
    and the rows in the same order (with a ``RandomState``, the same indices)."""
    n_val = int(math.ceil(fraction * n))
    n_train = n - n_val
    if n_train < 1:  # scikit-learn's messages, in its order
        raise ValueError(
            f"With n_samples={n}, test_size={fraction} and train_size=None, the resulting "
            "train set will be empty. Adjust any of the aforementioned parameters "
            "(early stopping's validation_fraction, or more samples)."
        )
    too_small = ValueError(
        "The validation set is too small. Increase 'validation_fraction' or the size of "
        f"your dataset (early stopping holds out {n_val} of {n} samples; it needs 2)."
    )
    if labels is None:  # ShuffleSplit: one permutation, the validation rows first
        if n_val < 2:
            raise too_small
        order = rng.permutation(n)
        return order[n_val:].tolist(), order[:n_val].tolist()
    # StratifiedShuffleSplit: per-class counts by the approximate mode, then each class's
    # rows permuted and cut, then the train and validation rows each permuted
    classes, codes, counts = np.unique(np.asarray(labels), return_inverse=True, return_counts=True)
    if counts.min() < 2:  # scikit-learn's messages; labels are its binarised y (bools)
        raise ValueError(
            "The least populated classes in y have only 1 member, which is too few. The "
            "minimum number of groups for any class cannot be less than 2. Classes with "
            f"too few members are: {[str(bool(c)) for c in classes[counts < 2]]} "
            "(early stopping's stratified split: give each class 2 samples or more)"
        )
    for name, size in (("train_size", n_train), ("test_size", n_val)):
        if size < len(classes):
            raise ValueError(
                f"The {name} = {size} should be greater or equal to the number of classes "
                f"= {len(classes)} (early stopping's stratified split)"
            )
    if n_val < 2:
        raise too_small
    by_class = np.split(np.argsort(codes, kind="stable"), np.cumsum(counts)[:-1])
    n_i = _approximate_mode(counts, n_train, rng)
    t_i = _approximate_mode(counts - n_i, n_val, rng)
    train: list = []
    val: list = []
    for rows, a, b in zip(by_class, n_i, t_i):
        shuffled = rows.take(rng.permutation(len(rows)), mode="clip")
        train.extend(shuffled[:a])
        val.extend(shuffled[a : a + b])
    return rng.permutation(train).tolist(), rng.permutation(val).tolist()


def _approximate_mode(counts: Any, n_draws: int, rng: Any) -> Any:
    """scikit-learn's ``utils.extmath._approximate_mode``: how many of ``n_draws`` draws
    each class gets, proportional to ``counts`` and floored, the rest going to the
    largest remainders (ties broken by ``rng``)."""
    continuous = counts / counts.sum() * n_draws
    floored = np.floor(continuous)
    need = int(n_draws - floored.sum())
    if need > 0:
        remainder = continuous - floored
        for value in np.sort(np.unique(remainder))[::-1]:
            (inds,) = np.where(remainder == value)
            add_now = min(len(inds), need)
            floored[rng.choice(inds, size=add_now, replace=False)] += 1
            need -= add_now
            if need == 0:
                break
    return floored.astype(int)
