"""From hyper-parameters to a :class:`._driver.FitPlan`: the solver (a name or an optimiser
object, with its learning-rate schedule and gradient clipping) and the loss (a name, a
:class:`backendnn.losses.Loss`, label smoothing) of the MLPs and layer stacks, whose
table is :data:`._params.SOLVER_PARAMS`.

Imports :mod:`backendnn.losses`, ``optim``, ``train`` and the sibling ``_driver``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from .. import losses as _losses
from ..optim import SGD, Adagrad, Adam, AdamW, ClipGradNorm, RMSprop
from ..train import LearningRateSchedule
from ._driver import LOSS_OF_OUTPUT, FitPlan

#: the minibatch optimisers by name, built from the estimator's hyper-parameters ``p``
OPTIMIZER_OF_NAME: dict[str, Callable[[dict[str, Any]], Any]] = {
    "sgd": lambda p: SGD(float(p["momentum"]), bool(p["nesterovs_momentum"])),
    "gd": lambda p: SGD(float(p["momentum"]), bool(p["nesterovs_momentum"])),
    "adam": lambda p: Adam(float(p["beta_1"]), float(p["beta_2"]), float(p["epsilon"])),
    "adamw": lambda p: AdamW(float(p["beta_1"]), float(p["beta_2"]), float(p["epsilon"])),
    "rmsprop": lambda p: RMSprop(),
    "adagrad": lambda p: Adagrad(),
}


def solver_plan(p: dict[str, Any], out_activation: str, score: Callable, owner: str) -> FitPlan:
    """The plan of estimator ``owner`` (its class name) with the solver hyper-parameters
    ``p`` (its ``get_params()``), output activation ``out_activation`` and validation
    ``score``.

    ``solver`` is a name (:data:`OPTIMIZER_OF_NAME`, or ``"lbfgs"``) or an optimiser
    object of :mod:`backendnn.optim`; the ``learning_rate`` schedule drives every
    optimiser but Adam, which keeps scikit-learn's constant rate; ``clip_grad_norm``
    wraps the optimiser in :class:`~backendnn.optim.ClipGradNorm`."""
    solver, clip = p["solver"], p["clip_grad_norm"]
    if solver == "lbfgs" and clip is not None:
        raise ValueError(
            f"clip_grad_norm={clip!r} needs a stochastic solver, and solver='lbfgs' takes "
            "whole line-search steps: set clip_grad_norm=None, or use solver='adam', 'sgd', "
            "'adamw', 'rmsprop' or 'adagrad'"
        )
    optimizer: Any = None
    schedule = None
    if solver != "lbfgs":
        optimizer = OPTIMIZER_OF_NAME[solver](p) if isinstance(solver, str) else solver
        if isinstance(optimizer, Adam):
            schedule = LearningRateSchedule("constant", p["learning_rate_init"])
        else:
            kind = p["learning_rate"]
            schedule = LearningRateSchedule(kind, p["learning_rate_init"], p["power_t"])
        if clip is not None:
            optimizer = ClipGradNorm(optimizer, float(clip))
        if not isinstance(solver, str):
            solver = type(solver).__name__.lower()
    return FitPlan(
        solver=solver,
        loss=fit_loss(p, out_activation, owner),
        alpha=float(p["alpha"]),
        batch_size=None if solver == "gd" else p["batch_size"],
        optimizer=optimizer,
        schedule=schedule,
        max_iter=p["max_iter"],
        max_fun=p["max_fun"],
        tol=float(p["tol"]),
        n_iter_no_change=float(p["n_iter_no_change"]),
        shuffle=bool(p["shuffle"]),
        early_stopping=bool(p["early_stopping"]),
        validation_fraction=p["validation_fraction"],
        validation_metric=p["early_stopping_metric"],
        score=score,
        verbose=p["verbose"],
        owner=owner,
    )


def fit_loss(p: dict[str, Any], out_activation: str, owner: str) -> Any:
    """The loss a fit with parameters ``p`` minimises: the ``loss`` object given, or a name
    whose loss the output activation does not decide (``"huber"``), else the loss fused
    with ``out_activation``, label-smoothed by ``p["label_smoothing"]`` where set.

    Raises
    ------
    ValueError
        For a loss object whose output activation is not the one the targets take, or
        one given with label smoothing (which only ``"log_loss"`` applies).
    """
    loss, eps = p.get("loss"), p.get("label_smoothing") or 0.0
    if isinstance(loss, _losses.Loss):
        if eps:
            raise ValueError(
                f"{owner}: label_smoothing={eps} smooths the built-in loss only; write the "
                f"smoothing into {loss!r} or set label_smoothing=0"
            )
        if loss.output != out_activation:
            raise ValueError(
                f"{owner}: loss {loss!r} has output {loss.output!r}, but these targets take "
                f"{out_activation!r} outputs (one logistic unit for two classes or per "
                "label, softmax over more classes): give a loss for those outputs"
            )
        return loss
    if loss == "huber":
        return loss
    name = LOSS_OF_OUTPUT[out_activation]
    return _losses.get(name, label_smoothing=float(eps)) if eps else name
