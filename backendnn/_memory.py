"""The memory budget of prediction: how many bytes of activations a forward pass in
inference may hold at once (``Network.forward`` and the estimators' ``predict``,
``predict_proba``, ``predict_log_proba``, ``decision_function`` and ``score`` split X
into blocks of rows that fit in it).

The budget is a setting of the running context (a :class:`contextvars.ContextVar`:
threads and asyncio tasks each see their own), 256 MiB unless set.

Imports nothing from backendnn.
"""

from __future__ import annotations

import numbers
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar

#: the budget unless set: 256 MiB
DEFAULT_MEMORY_BUDGET = 256 * 2**20

_BUDGET: ContextVar[int] = ContextVar("backendnn_memory_budget", default=DEFAULT_MEMORY_BUDGET)


def _checked(nbytes: object) -> int:
    if nbytes is None:
        return DEFAULT_MEMORY_BUDGET
    if isinstance(nbytes, bool) or not isinstance(nbytes, numbers.Integral) or int(nbytes) < 1:
        raise ValueError(
            f"the memory budget must be a positive int of bytes (e.g. 256 * 2**20), or None "
            f"for the default; got {nbytes!r}"
        )
    return int(nbytes)


def get_memory_budget() -> int:
    """The bytes of activations a forward pass in inference may hold at once.

    Returns
    -------
    nbytes : int
        The budget (256 MiB, 268435456, unless set by :func:`set_memory_budget` or
        :func:`memory_budget`).

    Examples
    --------
    >>> import backendnn as bn
    >>> bn.get_memory_budget() // 2**20
    256
    """
    return _BUDGET.get()


def set_memory_budget(nbytes: int | None) -> None:
    """Set the bytes of activations a forward pass in inference may hold at once.

    Prediction splits X into blocks of ``max(1, nbytes // b)`` rows, b the bytes one
    sample's forward pass holds at once (see ``Network.block_rows``); the results are
    those of one pass to rounding.

    Parameters
    ----------
    nbytes : int or None
        The budget in bytes (a positive int); None restores the default, 256 MiB.

    Raises
    ------
    ValueError
        If ``nbytes`` is not a positive int or None.

    Examples
    --------
    >>> import backendnn as bn
    >>> bn.set_memory_budget(64 * 2**20)
    >>> bn.get_memory_budget() // 2**20
    64
    >>> bn.set_memory_budget(None)
    """
    _BUDGET.set(_checked(nbytes))


@contextmanager
def memory_budget(nbytes: int | None) -> Iterator[int]:
    """The budget ``nbytes`` (see :func:`set_memory_budget`) inside a ``with`` block, the
    previous one restored on leaving it.

    Parameters
    ----------
    nbytes : int or None
        The budget in bytes inside the block; None: the default, 256 MiB.

    Examples
    --------
    >>> import backendnn as bn
    >>> with bn.memory_budget(2**20):
    ...     bn.get_memory_budget()
    1048576
    >>> bn.get_memory_budget() // 2**20
    256
    """
    token = _BUDGET.set(_checked(nbytes))
    try:
        yield _BUDGET.get()
    finally:
        _BUDGET.reset(token)
