"""Callbacks: objects a fit calls around every epoch, with the model, as Keras's and
skorch's are (``fit(X, y, callbacks=[...])``).

A callback subclasses :class:`Callback` (or just has some of its methods):

- ``on_fit_begin(model)``: before the first epoch of the call;
- ``on_epoch_begin(model, record)``: before each epoch, with ``record["epoch"]`` (the
  1-based number of the epoch about to run) and ``record["learning_rate"]``, which the
  callback may set (the rate of that epoch);
- ``on_epoch_end(model, record)``: after each epoch, with its record (``epoch``,
  ``loss``, ``validation_loss``, ``validation_score``, the scorer's name with
  ``scoring``, ``learning_rate`` (the next epoch's, which the callback may set),
  ``seconds``, ``samples_per_second``, ``params``, ``buffers``); the model's fitted
  attributes are those of the epoch just finished (``model.get_weights()``,
  ``backendnn.save(model, ...)``); returning True stops training after this epoch;
- ``on_fit_end(model)``: after training, the model fitted; a callback may hand back the
  weights to keep with ``model.set_weights(...)``.

Epochs count from 1 in every record and callback, and a resumed run
(``fit(..., resume=True)``) continues the count. ``monitor`` names a record key; keys
ending in ``loss`` improve downwards, the others (scores) upwards (``mode`` overrides).

How they relate to the estimators' own rules: ``early_stopping=True`` (scikit-learn's
rule on ``tol`` and ``n_iter_no_change``, keeping the best weights) and
:class:`EarlyStopping` may both run: training stops when either says so, and the
callback's ``restore_best_weights`` acts last (its weights win). The built-in schedule
(``learning_rate``) moves the rate first, after each epoch; the callbacks see its result
and their rate wins (``"adaptive"`` divides it by 5 on a plateau, ``"invscaling"``
recomputes it every epoch: use ``learning_rate="constant"`` with :class:`ReduceLROnPlateau`,
:class:`CosineAnnealing` or :class:`LearningRateScheduler`). On JAX the rate is passed into
the compiled epoch as data, so a schedule never recompiles it.

Imports ``backendnn.io`` (checkpoints).
"""

from __future__ import annotations

import csv
import math
import numbers
import os
import string
from collections.abc import Callable
from typing import Any

from .io import save

__all__ = [
    "CSVLogger",
    "Callback",
    "CosineAnnealing",
    "EarlyStopping",
    "LearningRateScheduler",
    "ModelCheckpoint",
    "ReduceLROnPlateau",
]


class Callback:
    """Base class of callbacks: every method does nothing (see the module docstring)."""

    def on_fit_begin(self, model: Any) -> None:
        """Called before the first epoch of a ``fit``."""

    def on_epoch_begin(self, model: Any, record: dict) -> None:
        """Called before each epoch; may set ``record["learning_rate"]``."""

    def on_epoch_end(self, model: Any, record: dict) -> bool | None:
        """Called after each epoch; True stops training."""
        return None

    def on_fit_end(self, model: Any) -> None:
        """Called after training."""


def _positive(name: str, value: Any, *, integer: bool = False, zero: bool = False) -> Any:
    kind = int if integer else (int, float)
    ok = isinstance(value, kind) and not isinstance(value, bool) and math.isfinite(value)
    if not ok or value < 0 or (value == 0 and not zero):
        raise ValueError(
            f"{name} must be a {'non-negative' if zero else 'positive'} "
            f"{'integer' if integer else 'number'}; got {value!r}"
        )
    return value


def _check_rate(model: Any, callback: Any) -> None:
    """``ValueError`` for a learning-rate callback on a fit that has no learning rate."""
    if getattr(model, "solver", None) == "lbfgs":
        raise ValueError(
            f"{type(callback).__name__} changes the learning rate, and solver='lbfgs' has "
            "none (its line search sets each step): use another solver or drop the callback"
        )


class _Monitor:
    """The value a callback watches: record key ``monitor``, better when lower
    (``mode="min"``) or higher (``"max"``; ``"auto"``: min for keys ending in ``loss``)
    by more than ``min_delta``."""

    def __init__(self, monitor: str, mode: str, min_delta: float):
        if not isinstance(monitor, str):
            raise TypeError(f"monitor must be a record key (a str); got {monitor!r}")
        if mode not in ("auto", "min", "max"):
            raise ValueError(f"mode must be 'auto', 'min' or 'max'; got {mode!r}")
        self.monitor, self.min_delta = monitor, _positive("min_delta", min_delta, zero=True)
        self.lower = mode == "min" or (mode == "auto" and monitor.endswith("loss"))
        self.best: float | None = None

    def value(self, record: dict) -> float:
        if self.monitor not in record:
            keys = [k for k, v in record.items() if isinstance(v, (int, float))]
            raise KeyError(
                f"monitor={self.monitor!r} is not in the epoch's record; its values: {keys}"
            )
        value = record[self.monitor]
        if value is None:
            raise ValueError(
                f"monitor={self.monitor!r} has no value: pass validation_data to fit (or set "
                "early_stopping=True) to have validation values, or monitor 'loss'"
            )
        if isinstance(value, bool) or not isinstance(value, numbers.Real):
            raise ValueError(f"monitor={self.monitor!r} is not a number: {value!r}")
        return float(value)

    def improved(self, value: float) -> bool:
        """Whether ``value`` beats the best so far by ``min_delta`` (and records it)."""
        if math.isnan(value):
            return False
        if self.best is None:
            better = True
        elif self.lower:
            better = value < self.best - self.min_delta
        else:
            better = value > self.best + self.min_delta
        if better:
            self.best = value
        return better


class EarlyStopping(Callback):
    """Stop when ``monitor`` has not improved by more than ``min_delta`` for
    ``patience`` epochs; with ``restore_best_weights``, keep the weights of the best
    epoch (set on the model at the end of the fit).

    Parameters
    ----------
    monitor : str, default="validation_loss"
        A record key: ``"loss"``, ``"validation_loss"``, ``"validation_score"`` or a
        scorer's name.
    patience : int, default=10
        Epochs without improvement before stopping.
    min_delta : float, default=0.0
        The least change that counts as an improvement.
    restore_best_weights : bool, default=True
    mode : {"auto", "min", "max"}, default="auto"

    Attributes
    ----------
    best : float or None
        The best value seen; ``best_epoch`` its epoch; ``stopped_epoch`` the epoch that
        stopped training (None if it did not).

    Examples
    --------
    >>> import backendnn as bn, numpy as np
    >>> from backendnn.callbacks import EarlyStopping
    >>> X = np.random.RandomState(0).randn(60, 3); y = (X[:, 0] > 0).astype(int)
    >>> stop = EarlyStopping(monitor="loss", patience=2, min_delta=10.0)
    >>> model = bn.MLPClassifier((4,), max_iter=50, random_state=0).fit(X, y, callbacks=[stop])
    >>> model.n_iter_, stop.stopped_epoch
    (3, 3)
    """

    def __init__(
        self,
        monitor: str = "validation_loss",
        patience: int = 10,
        min_delta: float = 0.0,
        restore_best_weights: bool = True,
        mode: str = "auto",
    ):
        self.monitor, self.mode, self.min_delta = monitor, mode, min_delta
        self.patience = _positive("patience", patience, integer=True)
        self.restore_best_weights = bool(restore_best_weights)
        _Monitor(monitor, mode, min_delta)  # checks the arguments now

    def on_fit_begin(self, model: Any) -> None:
        self._watch = _Monitor(self.monitor, self.mode, self.min_delta)
        self.best: float | None = None
        self.best_epoch: int | None = None
        self.stopped_epoch: int | None = None
        self.wait, self.best_weights = 0, None

    def on_epoch_end(self, model: Any, record: dict) -> bool:
        if self._watch.improved(self._watch.value(record)):
            self.best, self.best_epoch, self.wait = self._watch.best, record["epoch"], 0
            if self.restore_best_weights:
                self.best_weights = model.get_weights()
            return False
        self.wait += 1
        if self.wait >= self.patience:
            self.stopped_epoch = record["epoch"]
            return True
        return False

    def on_fit_end(self, model: Any) -> None:
        if self.restore_best_weights and self.best_weights is not None:
            model.set_weights(self.best_weights)


class ModelCheckpoint(Callback):
    """Save the model after an epoch (with ``save_best_only``, only when ``monitor``
    improved), atomically, with :func:`backendnn.save`.

    Parameters
    ----------
    path : str or os.PathLike
        The file; it may hold ``{epoch}`` and other record keys as format fields
        (``"ckpt-{epoch:03d}.safetensors"``).
    monitor : str, default="validation_loss"
    save_best_only : bool, default=True
    include_optimizer : bool, default=True
        Save the training state too, so that ``fit(..., resume=True)`` continues from
        the checkpoint exactly.
    mode : {"auto", "min", "max"}, default="auto"

    Attributes
    ----------
    saved : list of (epoch, path)
        The checkpoints written.
    """

    def __init__(
        self,
        path: str | os.PathLike,
        monitor: str = "validation_loss",
        save_best_only: bool = True,
        include_optimizer: bool = True,
        mode: str = "auto",
    ):
        self.path, self.monitor, self.mode = os.fspath(path), monitor, mode
        self.save_best_only, self.include_optimizer = bool(save_best_only), bool(include_optimizer)
        _Monitor(monitor, mode, 0.0)
        try:
            fields = [f for _, f, _, _ in string.Formatter().parse(self.path) if f is not None]
        except ValueError as exc:
            raise ValueError(f"ModelCheckpoint path {self.path!r} is not a format: {exc}") from None
        if any(not f.isidentifier() for f in fields):
            raise ValueError(
                f"ModelCheckpoint path {self.path!r} may hold record keys as fields "
                "('{epoch}', '{loss:.4f}'), not positional or indexed ones"
            )

    def on_fit_begin(self, model: Any) -> None:
        self._watch = _Monitor(self.monitor, self.mode, 0.0)
        self.saved: list[tuple[int, str]] = []

    def on_epoch_end(self, model: Any, record: dict) -> bool:
        if self.save_best_only and not self._watch.improved(self._watch.value(record)):
            return False
        fields = {k: v for k, v in record.items() if isinstance(v, (int, float, type(None)))}
        try:
            path = self.path.format(**fields)
        except (KeyError, ValueError, TypeError) as exc:
            raise ValueError(
                f"ModelCheckpoint path {self.path!r} does not fit epoch {record.get('epoch')}'s "
                f"record {fields} ({type(exc).__name__}: {exc}): use keys with numbers"
            ) from None
        save(model, path, include_optimizer=self.include_optimizer)
        self.saved.append((record["epoch"], path))
        return False


class LearningRateScheduler(Callback):
    """Set each epoch's learning rate to ``schedule(epoch, lr)``: ``epoch`` the 1-based
    number of the epoch about to run, ``lr`` the rate it would run at.

    Examples
    --------
    >>> from backendnn.callbacks import LearningRateScheduler
    >>> halve_every_10 = LearningRateScheduler(lambda epoch, lr: lr / 2 if epoch % 10 == 1
    ...                                        and epoch > 1 else lr)
    """

    def __init__(self, schedule: Callable[[int, float], float]):
        if not callable(schedule):
            raise TypeError(f"schedule must be a function (epoch, lr) -> lr; got {schedule!r}")
        self.schedule = schedule

    def on_fit_begin(self, model: Any) -> None:
        _check_rate(model, self)

    def on_epoch_begin(self, model: Any, record: dict) -> None:
        record["learning_rate"] = self.schedule(record["epoch"], record["learning_rate"])


class CosineAnnealing(Callback):
    """Cosine annealing with a linear warm-up, by epoch, from the model's
    ``learning_rate_init`` (lr0)::

        lr(e) = lr0 e / warmup                                   for e <= warmup,
        lr(e) = eta_min + (lr0 - eta_min) (1 + cos(pi k / t_max)) / 2  otherwise,

    with k = min(e - 1 - warmup, t_max), for epoch e (1-based): after the warm-up the
    rate starts at lr0 and reaches ``eta_min`` after ``t_max`` more epochs, where it
    stays (PyTorch's ``CosineAnnealingLR`` over its first ``t_max`` epochs).

    Parameters
    ----------
    t_max : int
        Epochs from lr0 to ``eta_min``.
    eta_min : float, default=0.0
    warmup : int, default=0
        Epochs of linear warm-up before the cosine.
    """

    def __init__(self, t_max: int, eta_min: float = 0.0, warmup: int = 0):
        self.t_max = _positive("t_max", t_max, integer=True)
        self.eta_min = _positive("eta_min", eta_min, zero=True)
        self.warmup = _positive("warmup", warmup, integer=True, zero=True)

    def on_fit_begin(self, model: Any) -> None:
        _check_rate(model, self)
        # the MLPs' and stacks' initial rate; the Perceptron's is eta0
        self.base = float(getattr(model, "learning_rate_init", None) or model.eta0)

    def rate(self, epoch: int) -> float:
        """The learning rate of epoch ``epoch`` (1-based)."""
        if epoch <= self.warmup:
            return self.base * epoch / self.warmup
        k = min(epoch - 1 - self.warmup, self.t_max)
        return (
            self.eta_min + (self.base - self.eta_min) * (1 + math.cos(math.pi * k / self.t_max)) / 2
        )

    def on_epoch_begin(self, model: Any, record: dict) -> None:
        record["learning_rate"] = self.rate(record["epoch"])


class ReduceLROnPlateau(Callback):
    """Multiply the learning rate by ``factor`` when ``monitor`` has not improved by
    more than ``min_delta`` for ``patience`` epochs (not below ``min_lr``).

    Parameters
    ----------
    monitor : str, default="validation_loss"
    factor : float, default=0.1
        In (0, 1).
    patience : int, default=10
    min_delta : float, default=0.0
    min_lr : float, default=0.0
    mode : {"auto", "min", "max"}, default="auto"
    """

    def __init__(
        self,
        monitor: str = "validation_loss",
        factor: float = 0.1,
        patience: int = 10,
        min_delta: float = 0.0,
        min_lr: float = 0.0,
        mode: str = "auto",
    ):
        if not (isinstance(factor, (int, float)) and 0 < factor < 1):
            raise ValueError(f"factor must be in (0, 1); got {factor!r}")
        self.monitor, self.factor, self.mode, self.min_delta = (
            monitor,
            float(factor),
            mode,
            min_delta,
        )
        self.patience = _positive("patience", patience, integer=True)
        self.min_lr = _positive("min_lr", min_lr, zero=True)
        _Monitor(monitor, mode, min_delta)

    def on_fit_begin(self, model: Any) -> None:
        _check_rate(model, self)
        self._watch = _Monitor(self.monitor, self.mode, self.min_delta)
        self.wait = 0

    def on_epoch_end(self, model: Any, record: dict) -> bool:
        if self._watch.improved(self._watch.value(record)):
            self.wait = 0
            return False
        self.wait += 1
        if self.wait >= self.patience:
            record["learning_rate"] = max(record["learning_rate"] * self.factor, self.min_lr)
            self.wait = 0
        return False


class CSVLogger(Callback):
    """Append one row per epoch to a CSV file: the record's numbers (epoch, loss,
    validation values, learning_rate, seconds, samples_per_second), with a header row.

    Parameters
    ----------
    path : str or os.PathLike
    separator : str, default=","
    append : bool, default=False
        Add to an existing file (a resumed run) instead of starting it anew.
    """

    def __init__(self, path: str | os.PathLike, separator: str = ",", append: bool = False):
        self.path, self.separator, self.append = os.fspath(path), separator, bool(append)

    def on_fit_begin(self, model: Any) -> None:
        self._columns: list[str] | None = None
        if not self.append and os.path.exists(self.path):
            os.remove(self.path)

    def on_epoch_end(self, model: Any, record: dict) -> bool:
        row = {k: v for k, v in record.items() if isinstance(v, (int, float))}
        new_file = not os.path.exists(self.path) or os.path.getsize(self.path) == 0
        if self._columns is None:
            self._columns = list(row)
            if not new_file:  # appending: the file's columns, in its order
                with open(self.path, newline="") as f:
                    header = next(csv.reader(f, delimiter=self.separator), [])
                if set(header) != set(row):
                    raise ValueError(
                        f"CSVLogger: {self.path!r} has the columns {header}, and this fit's "
                        f"records {list(row)}: append to a file of the same columns, or set "
                        "append=False"
                    )
                self._columns = header
        with open(self.path, "a", newline="") as f:
            writer = csv.DictWriter(
                f, self._columns, delimiter=self.separator, extrasaction="ignore"
            )
            if new_file:
                writer.writeheader()
            writer.writerow(row)
        return False
