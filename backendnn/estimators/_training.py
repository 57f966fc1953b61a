"""The one training driver of every estimator: minibatch epochs (``sgd``, ``adam``), full
batch (``gd``, and the Perceptron) and L-BFGS, with scikit-learn's early stopping, warm
starts, ``partial_fit`` state and convergence warnings.

It asks the estimator for what is its own (the loss, the optimiser, the batch size, the
validation score, extra stopping rules) and otherwise reads scikit-learn's parameters by
their names, with their defaults where an estimator lacks one. The data comes in as a
data source (:class:`backendnn.data.ArrayData`), so a new source plugs in here alone.

Imports from :mod:`backendnn.data`, ``network``, ``train``, ``losses`` and ``_targets``.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from typing import Any

from .. import losses as _losses
from .._backend.splits import split_indices
from ..data import DataSource, as_source
from ..network import Network
from ..params import Params
from ..train import ConvergenceWarning, History, OptimizerState, make_step, run_epochs, run_lbfgs
from ._targets import Targets


def train_network(
    est: Any,
    network: Network,
    params: Params,
    X: Any,
    targets: Targets,
    weights: Any,
    rng: Any,
    incremental: bool,
    reuse: bool,
    callbacks: list,
) -> tuple[Params, dict[str, Any]]:
    """Train ``network`` from ``params`` on (X, targets.Y) with sample ``weights`` (a
    device array, or None) as estimator ``est`` is set up.

    Returns the trained parameters and the fitted attributes the training defines
    (``loss_``, ``loss_curve_``, ``n_iter_``, ``t_``, ...). Raises
    :class:`backendnn.ConvergenceError` if the loss stops being finite.
    """
    data = as_source(X, targets.Y, weights)
    loss = est._loss(targets)
    alpha = float(est._alpha())
    if getattr(est, "solver", None) == "lbfgs":
        return _fit_lbfgs(est, network, params, data, loss, alpha, callbacks)
    return _fit_epochs(
        est, network, params, data, loss, alpha, targets.codes, rng, incremental, reuse, callbacks
    )


def _fit_lbfgs(
    est: Any,
    network: Network,
    params: Params,
    data: DataSource,
    loss: str,
    alpha: float,
    callbacks: list,
) -> tuple[Params, dict[str, Any]]:
    params, res, curve = run_lbfgs(
        network, params, data, loss, alpha,
        max_iter=est.max_iter, max_fun=est.max_fun, tol=est.tol,
        verbose=est.verbose, callbacks=callbacks,
    )  # fmt: skip
    if not res.success:
        advice = (
            "increase max_iter or max_fun"
            if res.message.startswith("maximum")
            else "scale the inputs or raise tol"
        )
        warnings.warn(f"L-BFGS stopped: {res.message}; {advice}", ConvergenceWarning, stacklevel=5)
    return params, {
        "loss_": res.fun,
        "n_iter_": res.nit,
        "loss_curve_": curve,
        "best_loss_": None,
        "t_": 0,
        "validation_scores_": None,
        "best_validation_score_": None,
        # a later partial_fit continues this curve, not an earlier solver's record
        "_history": History(loss_curve=list(curve), best_loss=float(res.fun)),
    }


def _fit_epochs(
    est: Any,
    network: Network,
    params: Params,
    data: DataSource,
    loss: str,
    alpha: float,
    codes: Any,
    rng: Any,
    incremental: bool,
    reuse: bool,
    callbacks: list,
) -> tuple[Params, dict[str, Any]]:
    """Epochs of minibatches (or full batches); ``codes`` are class indices (None for
    regression and multi-label) that stratify the early-stopping split of a binary
    classifier, as scikit-learn does (it stratifies only single-column targets)."""
    early = est.early_stopping and not incremental
    validation = None
    if early:
        stratify = codes if codes is not None and data.Y.shape[1] == 1 else None
        train_idx, val_idx = split_indices(data.n_samples, est.validation_fraction, rng, stratify)
        held_out, data = data.subset(val_idx), data.subset(train_idx)
        if held_out.W is not None and not bool(held_out.xp.any(held_out.W > 0)):
            raise ValueError(
                "The sample weights of the early-stopping validation set are all zero: its "
                "score is undefined. Use another random_state or validation_fraction, or "
                "give more samples a positive weight"
            )
        validation = _validation_fn(est, network, held_out, loss)
    batch = est._batch_size(data.n_samples)

    history = est._history.copy() if reuse and hasattr(est, "_history") else History()
    history.n_iter = 0  # scikit-learn counts the epochs of this call only
    if early:
        history.best_params = None
    if incremental and hasattr(est, "_opt"):
        opt = est._opt.copy(dtype=params[0][0].dtype)  # this call's precision
    else:
        optimizer, schedule = est._optimizer()
        opt = OptimizerState(optimizer, schedule, optimizer.init(params))
    tol, n_iter_no_change = est._stopping()
    step = make_step(network, loss, alpha, opt.optimizer, data.xp)
    params, converged = run_epochs(
        step,
        params,
        opt,
        data,
        history=history,
        batch_size=batch,
        max_iter=est.max_iter,
        shuffle=est._shuffle(),
        rng=rng,
        tol=tol,
        n_iter_no_change=n_iter_no_change,
        incremental=incremental,
        validation=validation,
        verbose=est.verbose,
        callbacks=callbacks + est._stopping_rules(network, data),
    )
    if early and history.best_params is not None:
        params = history.best_params
    if not converged and not incremental and history.n_iter >= est.max_iter:
        warnings.warn(
            f"{type(est).__name__}: maximum iterations ({est.max_iter}) reached "
            "and the optimization hasn't converged yet",
            ConvergenceWarning,
            stacklevel=5,
        )
    return params, {
        "loss_": history.loss_curve[-1],
        "loss_curve_": list(history.loss_curve),
        "best_loss_": None if early else history.best_loss,
        "n_iter_": history.n_iter,
        "t_": history.t,
        "validation_scores_": list(history.validation_scores) if early else None,
        "best_validation_score_": history.best_validation_score if early else None,
        "_history": history,
        "_opt": opt,
    }


def _validation_fn(
    est: Any, network: Network, held_out: DataSource, loss: str
) -> Callable[[Params], float]:
    """The early-stopping score of parameters on the held-out data (higher is better):
    the estimator's score, or minus the validation loss."""
    X_val, Y_val, W_val = held_out.X, held_out.Y, held_out.W
    if getattr(est, "early_stopping_metric", "score") == "loss":
        loss_fn = _losses.get(loss)

        def negative_loss(params: Params) -> float:
            out = network.forward(params, X_val)
            value, _ = loss_fn(Y_val, out) if W_val is None else loss_fn(Y_val, out, W_val)
            return -float(value)

        return negative_loss

    # independent logistic outputs (several columns): subset accuracy, as scikit-learn's
    multilabel = loss == "binary_log_loss" and Y_val.shape[1] > 1

    def score(params: Params) -> float:
        out = network.forward(params, X_val)
        return float(est._score_device(Y_val, out, W_val, multilabel=multilabel))

    return score
