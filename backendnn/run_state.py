"""The record and the state of a training run, as plain data: the history (curves and
early-stopping counters), the learning-rate schedule, the optimiser's state, the layers'
state and random key, the epoch order's generator, and :class:`TrainingState`, all that
continues a run exactly (``fit(..., resume=True)``, checkpoints); :class:`Hooks`, what the
loop calls around each epoch.

Imports :mod:`backendnn._backend` and ``params`` (types).
"""

from __future__ import annotations

import copy
import dataclasses
import math
from dataclasses import dataclass, field
from typing import Any

from ._backend import array_namespace, to_namespace_of
from .params import Params


@dataclass
class History:
    """The training record of a run (the estimators expose it as ``loss_curve_``,
    ``validation_loss_curve_``, ``validation_scores_`` etc.) and the early-stopping
    counters: ``best_criterion`` is the best value of what early stopping watches (the
    validation score, or minus the validation loss), ``best_params``/``best_buffers`` the
    weights where it was reached; ``n_iter`` counts the epochs of the run."""

    loss_curve: list[float] = field(default_factory=list)
    validation_scores: list[float] = field(default_factory=list)
    validation_loss_curve: list[float] = field(default_factory=list)
    best_loss: float = math.inf
    best_validation_score: float = -math.inf
    best_criterion: float = -math.inf
    best_params: Params | None = None
    best_buffers: list | None = None
    n_iter: int = 0
    t: int = 0
    no_improvement: int = 0

    def copy(self) -> History:
        """An independent copy (its lists copied; arrays are never mutated, so shared)."""
        return dataclasses.replace(
            self,
            loss_curve=list(self.loss_curve),
            validation_scores=list(self.validation_scores),
            validation_loss_curve=list(self.validation_loss_curve),
        )


class Hooks:
    """What the loop calls around each epoch (the estimators bind their callbacks to
    it). ``epoch_begin(record)`` gets ``{"epoch", "learning_rate"}`` and may set
    ``record["learning_rate"]``, the rate of the epoch about to run; ``epoch_end(record)``
    gets the epoch's record, may set ``record["learning_rate"]`` (the next epoch's) and
    returns True to stop training. This base does nothing."""

    def epoch_begin(self, record: dict) -> None:
        return None

    def epoch_end(self, record: dict) -> bool:
        return False


class LearningRateSchedule:
    """scikit-learn's learning-rate schedules, on the host; the loop below changes them.

    ``constant``: lr = learning_rate_init.
    ``invscaling``: at the end of each epoch lr = learning_rate_init / (t + 1)^power_t,
    t the number of samples seen so far.
    ``adaptive``: constant while training improves; when ``n_iter_no_change`` epochs
    fail to improve by ``tol``, lr is divided by 5 (training stops once lr <= 1e-6).
    """

    KINDS = ("constant", "invscaling", "adaptive")

    def __init__(
        self, kind: str = "constant", learning_rate_init: float = 1e-3, power_t: float = 0.5
    ):
        if kind not in self.KINDS:
            raise ValueError(f"learning_rate must be one of {self.KINDS}, got {kind!r}")
        # Python floats: a NumPy scalar would meet the arrays of other libraries in the step
        self.kind = kind
        self.learning_rate_init, self.power_t = float(learning_rate_init), float(power_t)
        self.lr = self.learning_rate_init

    def epoch_end(self, t: int) -> None:
        if self.kind == "invscaling":
            self.lr = self.learning_rate_init / (t + 1) ** self.power_t

    def plateau(self) -> bool:
        """Called when training stopped improving; returns True if training should stop."""
        if self.kind != "adaptive" or self.lr <= 1e-6:
            return True
        self.lr /= 5.0
        return False


@dataclass
class OptimizerState:
    """The optimiser, its learning-rate schedule, its device arrays and its update count
    (scikit-learn keeps these across ``partial_fit`` calls and renews them at ``fit``)."""

    optimizer: Any
    schedule: LearningRateSchedule
    arrays: Any
    updates: int = 0

    def copy(self, like: Params | None = None) -> OptimizerState:
        """A copy with its own schedule; with ``like`` (parameters), its arrays moved to
        their library and device and cast to their dtype (a ``partial_fit`` on data of
        another library, device or precision: the state must be where the weights are)."""
        schedule = copy.copy(self.schedule)
        ref = None if like is None else next((a for p in like for a in p), None)
        arrays = self.arrays if ref is None else _moved(self.arrays, ref)
        return OptimizerState(self.optimizer, schedule, arrays, self.updates)

    def rates(self, n_updates: int) -> list[float]:
        """The learning rate of each of the next ``n_updates`` updates (constant within an
        epoch but for Adam's bias correction), counting them as done."""
        first = self.updates + 1
        self.updates += n_updates
        return [
            self.optimizer.step_size(self.schedule.lr, t) for t in range(first, self.updates + 1)
        ]


@dataclass
class LayerState:
    """What a network with batch norm or dropout carries from step to step besides its
    parameters and the optimiser's arrays: the layers' ``buffers`` (None: no layer has
    state) and the random ``key`` (None: no layer draws random numbers). The loop
    replaces both after every epoch; a ``partial_fit`` continues them."""

    buffers: list | None
    key: Any

    def carried(self, opt_arrays: Any) -> tuple:
        """The step's state: ``(optimiser arrays, buffers, key)``."""
        return opt_arrays, self.buffers, self.key


@dataclass
class Shuffling:
    """The epoch order's source: the host generator ``rng`` and the last epoch's order of
    the rows (None before the first; a device or host array, as the data source made it)."""

    rng: Any
    order: Any = None


@dataclass
class TrainingState:
    """What continues a run exactly (``fit(..., resume=True)``, checkpoints): the last
    epoch's parameters and layer buffers (early stopping's best ones are in
    ``history``), the optimiser's state (None after L-BFGS, whose memory restarts, and
    the Perceptron's online updates), the history with its counters, the generator and
    last epoch order (``shuffling``), and the early-stopping split as host row indices
    (train, validation)."""

    params: Params
    buffers: list | None
    opt: OptimizerState | None
    history: History
    shuffling: Shuffling
    split: tuple[Any, Any] | None = None

    def copy(self) -> TrainingState:
        """A copy a new run may advance without changing this one."""
        return dataclasses.replace(
            self,
            opt=None if self.opt is None else self.opt.copy(),
            history=self.history.copy(),
            shuffling=Shuffling(copy.deepcopy(self.shuffling.rng), self.shuffling.order),
        )


def _moved(tree: Any, like: Any) -> Any:
    """Every array of a nest of lists and tuples in the library, on the device and of the
    dtype of array ``like``."""
    if isinstance(tree, (list, tuple)):
        return type(tree)(_moved(t, like) for t in tree)
    moved = to_namespace_of(tree, like)
    return array_namespace(moved).astype(moved, like.dtype, copy=False)
