"""The one training driver: what a fit is, as data (:class:`FitPlan`), and :func:`run`,
which trains a network as a plan says -- minibatch epochs (``sgd``, ``adam``), full
batches (``gd``), L-BFGS, or the Perceptron's online updates -- with scikit-learn's early
stopping, warm starts, ``partial_fit`` state and convergence warnings.

An estimator builds its plan in one method (``_fit_plan``); the MLPs and layer stacks
build theirs from the solver hyper-parameters with :func:`solver_plan`, whose table
(:data:`backendnn.estimators._params.SOLVER_PARAMS`) gives each parameter's default,
constraint and documentation once.

Imports :mod:`backendnn.train`, ``losses``, ``optim``, ``network``, ``data`` (types) and
the siblings ``_online`` and ``_params``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from .. import losses as _losses
from .._backend.splits import split_indices
from .._warnings import warn
from ..optim import SGD, Adagrad, Adam, AdamW, ClipGradNorm, RMSprop
from ..train import (
    ConvergenceWarning,
    History,
    LayerState,
    LearningRateSchedule,
    OptimizerState,
    make_step,
    run_epochs,
    run_lbfgs,
)
from ._online import OnlineSetup, train_online

if TYPE_CHECKING:
    from ..data import DataSource
    from ..network import Network
    from ..params import Params

#: the loss fused with each output activation
LOSS_OF_OUTPUT = {
    "identity": "squared_error",
    "exp": "poisson",
    "logistic": "binary_log_loss",
    "softmax": "softmax_cross_entropy",
}


@dataclass(frozen=True)
class FitPlan:
    """What one fit is: the estimator's hyper-parameters resolved against the data.

    Attributes
    ----------
    solver : {"sgd", "adam", "adamw", "rmsprop", "adagrad", "gd", "lbfgs", "online"}
        Epochs of minibatches (sgd, adam, ...) or of full batches (gd), L-BFGS, or the
        Perceptron's online updates (``online`` holds their setup).
    loss : str
        A name of :mod:`backendnn.losses`.
    alpha : float
        The L2 penalty alpha/(2 n) sum ||W||^2.
    batch_size : int, "auto" or None
        Rows per step: ``"auto"`` is min(200, n), None every training row (full batch).
    optimizer, schedule
        An optimiser of :mod:`backendnn.optim` and its learning-rate schedule.
    max_iter, max_fun, tol, n_iter_no_change, shuffle
        scikit-learn's meanings.
    early_stopping, validation_fraction, validation_metric
        Hold out a share of the data and keep the weights of its best ``"score"``
        (``score``) or ``"loss"``.
    score : callable (Y, out, W, multilabel) -> device scalar
        The estimator's score of network outputs against encoded targets.
    stop_rule : callable (network, data) -> (record -> bool), optional
        A stopping rule of the model's own, made for the training data.
    verbose : bool, int or "progress"
    online : OnlineSetup, optional
        The Perceptron's online updates (``solver="online"``).
    owner : str
        The estimator's class name, for messages.
    """

    solver: str
    loss: str
    alpha: float = 0.0
    batch_size: Any = "auto"
    optimizer: Any = None
    schedule: LearningRateSchedule | None = None
    max_iter: int = 200
    max_fun: int = 15000
    tol: float = 1e-4
    n_iter_no_change: float = 10
    shuffle: bool = True
    early_stopping: bool = False
    validation_fraction: float = 0.1
    validation_metric: str = "score"
    score: Callable | None = None
    stop_rule: Callable | None = None
    verbose: Any = False
    online: OnlineSetup | None = None
    owner: str = ""


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
        loss=LOSS_OF_OUTPUT[out_activation],
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


def _batch_size(batch_size: Any, n: int) -> int:
    """Rows per step on ``n`` training rows (see :class:`FitPlan`)."""
    if batch_size is None:
        return n
    if batch_size == "auto":
        return min(200, n)
    if batch_size > n:
        warn(
            f"batch_size {batch_size} exceeds the {n} samples; using {n}",
            UserWarning,
        )
    return min(batch_size, n)


def run(
    plan: FitPlan,
    network: Network,
    params: Params,
    data: DataSource,
    *,
    codes: Any,
    rng: Any,
    incremental: bool,
    history: History | None = None,
    opt: OptimizerState | None = None,
    callbacks: Sequence[Callable] = (),
    layers: LayerState | None = None,
) -> tuple[Params, dict[str, Any]]:
    """Train ``network`` from ``params`` on ``data`` as ``plan`` says.

    ``layers`` holds the layers' buffers and the random key where the network has state
    or draws random numbers (batch norm, dropout); it is updated in place.

    ``codes`` are the class index of each sample (None for regression and multi-label:
    they stratify the early-stopping split); ``rng`` is scikit-learn's generator of this
    call; ``incremental`` runs one epoch (``partial_fit``). ``history`` continues an
    earlier record (warm start, ``partial_fit``) and ``opt`` an earlier optimiser state
    (``partial_fit``; it is moved to where ``params`` are). Returns the trained parameters
    and the fitted attributes the training defines (``loss_``, ``loss_curve_``,
    ``n_iter_``, ``t_``, ...). Raises :class:`backendnn.ConvergenceError` if the loss
    stops being finite.
    """
    if plan.solver == "online":
        assert plan.online is not None
        return train_online(plan.online, params, data, codes, rng, incremental, history)
    if plan.solver == "lbfgs":
        return _fit_lbfgs(plan, network, params, data, callbacks, layers)
    return _fit_epochs(
        plan, network, params, data, codes, rng, incremental, history, opt, callbacks, layers
    )


def _fit_lbfgs(
    plan: FitPlan,
    network: Network,
    params: Params,
    data: DataSource,
    callbacks: Sequence[Callable],
    layers: LayerState | None,
) -> tuple[Params, dict[str, Any]]:
    """L-BFGS minimises one deterministic objective: dropout is refused, and batch norm
    normalises with the statistics of the whole training set (which become its running
    statistics), so a source summed block by block (sparse, dask) cannot carry it."""
    if network.is_random:
        raise ValueError(
            "solver='lbfgs' needs a deterministic objective, and Dropout draws a new mask at "
            "every step: use solver='adam' or 'sgd', or remove the Dropout layers"
        )
    buffers = None if layers is None else layers.buffers
    if buffers is not None and getattr(data, "objective", None) is not None:
        raise ValueError(
            "solver='lbfgs' with batch normalisation needs the statistics of the whole "
            "training set at once, and this X (sparse or dask) is summed block by block: use "
            "solver='adam' or 'sgd', or a dense in-memory X"
        )
    params, res, curve = run_lbfgs(
        network, params, data, plan.loss, plan.alpha,
        max_iter=plan.max_iter, max_fun=plan.max_fun, tol=plan.tol,
        verbose=plan.verbose, callbacks=callbacks, buffers=buffers,
    )  # fmt: skip
    if layers is not None and buffers is not None:
        # the running statistics become those of the whole set at the solution
        _, caches = network.forward_train(params, data.X, buffers, None, data.W)
        layers.buffers = network.next_state(buffers, caches, exact=True)
    if not res.success:
        advice = (
            "increase max_iter or max_fun"
            if res.message.startswith("maximum")
            else "scale the inputs or raise tol"
        )
        warn(
            f"L-BFGS stopped: {res.message}; {advice}",
            ConvergenceWarning,
        )
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
    plan: FitPlan,
    network: Network,
    params: Params,
    data: DataSource,
    codes: Any,
    rng: Any,
    incremental: bool,
    previous: History | None,
    previous_opt: OptimizerState | None,
    callbacks: Sequence[Callable],
    layers: LayerState | None,
) -> tuple[Params, dict[str, Any]]:
    """Epochs of minibatches (or full batches). A binary classifier's early-stopping split
    is stratified by ``codes``, as scikit-learn's (it stratifies single-column targets)."""
    early = plan.early_stopping and not incremental
    validation = None
    if early:
        # class codes with one output column: binary labels (a logistic unit), not Y's width:
        # a streamed source would gather its Y
        one_column = plan.loss == "binary_log_loss"
        stratify = codes if codes is not None and one_column else None
        train_idx, val_idx = split_indices(data.n_samples, plan.validation_fraction, rng, stratify)
        held_out, data = data.subset(val_idx), data.subset(train_idx)
        if held_out.W is not None and not bool(held_out.xp.any(held_out.W > 0)):
            raise ValueError(
                "The sample weights of the early-stopping validation set are all zero: its "
                "score is undefined. Use another random_state or validation_fraction, or "
                "give more samples a positive weight"
            )
        validation = _validation_fn(plan, network, held_out)

    history = previous.copy() if previous is not None else History()
    history.n_iter = 0  # scikit-learn counts the epochs of this call only
    if early:
        history.best_params = None
    if incremental and previous_opt is not None:
        opt = previous_opt.copy(like=params)  # this call's library, device and precision
    else:
        assert plan.schedule is not None
        opt = OptimizerState(plan.optimizer, plan.schedule, plan.optimizer.init(params))
    rules = [] if plan.stop_rule is None else [plan.stop_rule(network, data)]
    step = make_step(network, plan.loss, plan.alpha, opt.optimizer, data.xp)
    params, converged = run_epochs(
        step,
        params,
        opt,
        data,
        history=history,
        batch_size=_batch_size(plan.batch_size, data.n_samples),
        max_iter=plan.max_iter,
        shuffle=plan.shuffle,
        rng=rng,
        tol=plan.tol,
        n_iter_no_change=plan.n_iter_no_change,
        incremental=incremental,
        validation=validation,
        verbose=plan.verbose,
        callbacks=[*callbacks, *rules],
        layer_state=layers,
    )
    if early and history.best_params is not None:
        params = history.best_params
        if layers is not None:
            layers.buffers = history.best_buffers
    if not converged and not incremental and history.n_iter >= plan.max_iter:
        warn(
            f"{plan.owner}: maximum iterations ({plan.max_iter}) reached "
            "and the optimization hasn't converged yet",
            ConvergenceWarning,
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
    plan: FitPlan, network: Network, held_out: DataSource
) -> Callable[[Params, Any], float]:
    """The early-stopping score of parameters (and buffers) on the held-out data, in
    inference mode (higher is better): the estimator's score, or minus the validation
    loss."""
    X_val, Y_val, W_val = held_out.X, held_out.Y, held_out.W
    if plan.validation_metric == "loss":
        loss_fn = _losses.get(plan.loss)

        def negative_loss(params: Params, buffers: Any) -> float:
            out = network.forward(params, X_val, buffers)
            value, _ = loss_fn(Y_val, out) if W_val is None else loss_fn(Y_val, out, W_val)
            return -float(value)

        return negative_loss

    # independent logistic outputs (several columns): subset accuracy, as scikit-learn's
    multilabel = plan.loss == "binary_log_loss" and Y_val.shape[1] > 1
    score_fn = plan.score
    assert score_fn is not None

    def score(params: Params, buffers: Any) -> float:
        out = network.forward(params, X_val, buffers)
        return float(score_fn(Y_val, out, W_val, multilabel))

    return score
