"""What every network trained by an optimiser with scikit-learn's MLP parameters shares:
the parameter table (solver, schedules, early stopping, ...), the fitted attributes the
training defines, and the answers the training driver asks for (loss, penalty, batch
size, optimiser, stopping rules).

:class:`OptimizedNetwork` is the base of the MLPs (``mlp.py``) and of the estimators for
any layer stack (``stack.py``), which differ only in how they build their network.

Imports :mod:`backendnn.optim`, ``train``, ``_validation`` and the sibling modules.
"""

from __future__ import annotations

import math
import warnings
from typing import Any

from .._validation import (
    POSITIVE_INT,
    VERBOSE,
    AnyOf,
    Boolean,
    Constraint,
    Interval,
    Options,
    SequenceOf,
)
from ..network import Network
from ..optim import SGD, Adam
from ..train import LearningRateSchedule
from ._base import NetworkEstimator
from ._constraints import BackendParam, DtypeParam, InitParam, SeedParam
from ._targets import Targets

REAL = Interval(None, None)

#: the loss fused with each output activation
LOSS_OF_OUTPUT = {
    "identity": "squared_error",
    "exp": "poisson",
    "logistic": "binary_log_loss",
    "softmax": "softmax_cross_entropy",
}

#: the training parameters, scikit-learn's MLP ones plus backend, dtype, init and
#: early_stopping_metric
TRAINING_CONSTRAINTS: dict[str, Constraint] = {
    "solver": Options("sgd", "adam", "lbfgs", "gd"),
    "alpha": Interval(0, None),
    "batch_size": AnyOf(Options("auto"), POSITIVE_INT),
    "learning_rate": Options(*LearningRateSchedule.KINDS),
    "learning_rate_init": Interval(0, None, closed="neither"),
    "power_t": Interval(0, None),
    "max_iter": POSITIVE_INT,
    "shuffle": Boolean(),
    "random_state": SeedParam(),
    "tol": Interval(0, None),
    "verbose": VERBOSE,
    "warm_start": Boolean(),
    "momentum": Interval(0, 1),
    "nesterovs_momentum": Boolean(),
    "early_stopping": Boolean(),
    "validation_fraction": Interval(0, 1, closed="neither"),
    "beta_1": Interval(0, 1, closed="left"),
    "beta_2": Interval(0, 1, closed="left"),
    "epsilon": Interval(0, None, closed="neither"),
    # np.inf: never stop early (scikit-learn's convention)
    "n_iter_no_change": AnyOf(POSITIVE_INT, Interval(math.inf, math.inf)),
    "max_fun": POSITIVE_INT,
    "backend": BackendParam(),
    "dtype": DtypeParam(),
    "init": InitParam(),
    "early_stopping_metric": Options("score", "loss"),
}

#: the fitted attributes the training defines
TRAINING_ATTRIBUTES: dict[str, Constraint] = {
    "out_activation_": Options(*LOSS_OF_OUTPUT),
    "n_outputs_": POSITIVE_INT,
    "loss_": REAL,
    "best_loss_": AnyOf(Options(None), REAL),
    "validation_scores_": AnyOf(Options(None), SequenceOf(REAL, as_list=True)),
    "best_validation_score_": AnyOf(Options(None), REAL),
}


class OptimizedNetwork(NetworkEstimator):
    """Base of the estimators trained with ``solver`` (sgd, adam, gd, lbfgs)."""

    n_outputs_: int
    out_activation_: str
    # training parameters read here (set by the subclasses' constructors)
    solver: str
    alpha: float
    batch_size: Any
    tol: float
    n_iter_no_change: float
    shuffle: bool
    init: Any

    def _set_training_params(self, params: dict[str, Any]) -> None:
        """Store the constructor's training parameters (``locals()`` of ``__init__``)."""
        for name in TRAINING_CONSTRAINTS:
            setattr(self, name, params[name])

    def _loss(self, targets: Targets) -> str:
        return LOSS_OF_OUTPUT[targets.fitted["out_activation_"]]

    def _alpha(self) -> float:
        return float(self.alpha)

    def _batch_size(self, n: int) -> int:
        if self.solver == "gd":
            return n
        if self.batch_size == "auto":
            return min(200, n)
        if self.batch_size > n:
            warnings.warn(
                f"batch_size {self.batch_size} exceeds the {n} samples; using {n}",
                UserWarning,
                stacklevel=6,
            )
        return min(self.batch_size, n)

    def _optimizer(self) -> tuple[Any, LearningRateSchedule]:
        p = self.get_params()
        if p["solver"] == "adam":
            optimizer: Any = Adam(float(p["beta_1"]), float(p["beta_2"]), float(p["epsilon"]))
            schedule = LearningRateSchedule("constant", p["learning_rate_init"])
        else:
            optimizer = SGD(float(p["momentum"]), bool(p["nesterovs_momentum"]))
            schedule = LearningRateSchedule(
                p["learning_rate"], p["learning_rate_init"], p["power_t"]
            )
        return optimizer, schedule

    def _stopping(self) -> tuple[float, float]:
        return float(self.tol), float(self.n_iter_no_change)

    def _shuffle(self) -> bool:
        return bool(self.shuffle)

    def _stopping_rules(self, network: Network, data: Any) -> list:
        return []

    def _check_partial_fit_available(self) -> None:
        """``AttributeError`` where ``partial_fit`` does not exist: L-BFGS needs all the
        data at once (scikit-learn hides the method there too)."""
        if self.solver not in ("sgd", "adam", "gd"):
            raise AttributeError(
                "partial_fit is only available for the stochastic optimizers sgd and adam "
                f"(and gd); {self.solver!r} is not one"
            )

    def _partial_fit_check(self) -> None:
        self._validate_params()
        if self.early_stopping:
            raise ValueError(
                "partial_fit does not support early_stopping=True: there is no held-out set "
                "across calls; set early_stopping=False"
            )
