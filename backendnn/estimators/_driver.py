"""The one training driver: what a fit is, as data (:class:`FitPlan`), and :func:`run`,
which trains a network as a plan says -- minibatch epochs (``sgd``, ``adam``), full
batches (``gd``), L-BFGS, or the Perceptron's online updates -- with scikit-learn's early
stopping, warm starts, ``partial_fit`` state and convergence warnings.

An estimator builds its plan in one method (``_fit_plan``); the MLPs and layer stacks
build theirs from the solver hyper-parameters with :func:`._solver_plan.solver_plan`,
whose table (:data:`backendnn.estimators._params.SOLVER_PARAMS`) gives each parameter's
default, constraint and documentation once.

Imports :mod:`backendnn.train`, ``losses``, ``network``, ``data`` (types) and the siblings
``_online``, ``_session`` and ``_validation_data``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from .. import losses as _losses
from .._backend.splits import split_indices
from .._warnings import warn
from ..train import (
    ConvergenceWarning,
    History,
    Hooks,
    LayerState,
    LearningRateSchedule,
    OptimizerState,
    Shuffling,
    TrainingState,
    make_step,
    run_epochs,
    run_lbfgs,
)
from ._online import OnlineSetup, train_online
from ._session import Attributed, check_resumed_rows
from ._validation_data import Validation, validation_values

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
    loss : str or Loss
        A name or a loss object of :mod:`backendnn.losses` (see :func:`fit_loss`).
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
    loss: Any
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
    hooks: Hooks | None = None,
    layers: LayerState | None = None,
    validation: Validation | None = None,
    held_out: Callable[[DataSource, Any], Validation] | None = None,
    resume: TrainingState | None = None,
) -> tuple[Params, dict[str, Any]]:
    """Train ``network`` from ``params`` on ``data`` as ``plan`` says.

    ``layers`` holds the layers' buffers and the random key where the network has state
    or draws random numbers (batch norm, dropout); it is updated in place.

    ``codes`` are the class index of each sample (None for regression and multi-label:
    they stratify the early-stopping split); ``rng`` is scikit-learn's generator of this
    call; ``incremental`` runs one epoch (``partial_fit``). ``history`` continues an
    earlier record (warm start, ``partial_fit``) and ``opt`` an earlier optimiser state
    (``partial_fit``; it is moved to where ``params`` are). ``validation`` is the
    caller's validation set (early stopping then splits nothing off); ``held_out(source,
    rows)`` makes the early-stopping split's (the rows ``rows`` of the data); ``resume`` a
    :class:`TrainingState` to continue exactly (its parameters are ``params``).
    ``hooks`` are called around every epoch; their records carry ``"attributes"``, a
    function returning the fitted attributes at that epoch (the live view callbacks get).

    Returns the trained parameters and the fitted attributes the training defines
    (``loss_``, ``loss_curve_``, ``n_iter_``, ``t_``, ``_training``, ...). Raises
    :class:`backendnn.ConvergenceError` if the loss stops being finite.
    """
    if plan.solver == "online":
        assert plan.online is not None
        values = None if validation is None else validation_values(plan, network, validation)
        return train_online(
            plan.online, params, data, codes, rng, incremental, history,
            hooks=Attributed(hooks, _online_attributes(history, incremental)),
            validation=None if validation is None else validation.source, values=values,
        )  # fmt: skip
    if plan.solver == "lbfgs":
        return _fit_lbfgs(plan, network, params, data, hooks, layers, validation, resume)
    return _fit_epochs(
        plan, network, params, data, codes, rng, incremental, history, opt, hooks, layers,
        validation, held_out, resume,
    )  # fmt: skip


def _fit_lbfgs(
    plan: FitPlan,
    network: Network,
    params: Params,
    data: DataSource,
    hooks: Hooks | None,
    layers: LayerState | None,
    validation: Validation | None,
    resume: TrainingState | None,
) -> tuple[Params, dict[str, Any]]:
    """L-BFGS minimises one deterministic objective: dropout is refused, and batch norm
    normalises with the statistics of the whole training set (which become its running
    statistics), so a source summed block by block (sparse, dask) cannot carry it.
    A resumed run continues the iteration count and the loss curve from the last
    weights with a fresh memory (L-BFGS restarts)."""
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
    before = History() if resume is None else resume.history

    def attributes(record: dict, losses: list) -> dict[str, Any]:
        history = History(loss_curve=[*before.loss_curve, *losses], n_iter=record["epoch"])
        state = TrainingState(record["params"], buffers, None, history, Shuffling(None))
        return {
            "params": record["params"],
            "buffers": buffers,
            **_epoch_attributes(history, False, False),
            "best_loss_": None,
            "t_": 0,
            "_training": state,
        }

    params, res, curve = run_lbfgs(
        network, params, data, plan.loss, plan.alpha,
        max_iter=plan.max_iter - before.n_iter, max_fun=plan.max_fun, tol=plan.tol,
        verbose=plan.verbose, hooks=Attributed(hooks, attributes), buffers=buffers,
        first=before.n_iter + 1,
    )  # fmt: skip
    if layers is not None and buffers is not None:
        # the running statistics become those of the whole set at the solution
        _, caches = network.forward_train(params, data.X, buffers, None, data.W)
        layers.buffers = network.next_state(buffers, caches, exact=True)
    if not res.success and res.message != "stopped by a callback":
        advice = (
            "increase max_iter or max_fun"
            if res.message.startswith("maximum")
            else "scale the inputs or raise tol"
        )
        warn(
            f"L-BFGS stopped: {res.message}; {advice}",
            ConvergenceWarning,
        )
    history = History(
        loss_curve=[*before.loss_curve, *curve],
        best_loss=float(res.fun),
        n_iter=before.n_iter + res.nit,
    )
    record = {
        "loss_": res.fun,
        "n_iter_": history.n_iter,
        "loss_curve_": list(history.loss_curve),
        "best_loss_": None,
        "t_": 0,
        "validation_scores_": None,
        "validation_loss_curve_": None,
        "best_validation_score_": None,
        # a later partial_fit continues this curve, not an earlier solver's record
        "_training": TrainingState(
            params, None if layers is None else layers.buffers, None, history, Shuffling(None)
        ),
    }
    if validation is not None:  # scored once, at the solution
        final_buffers = None if layers is None else layers.buffers
        scores = validation_values(plan, network, validation)(params, final_buffers)
        record.update(
            validation_scores_=[scores["validation_score"]],
            validation_loss_curve_=[scores["validation_loss"]],
        )
    return params, record


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
    hooks: Hooks | None,
    layers: LayerState | None,
    validation: Validation | None,
    held_out: Callable[[DataSource, Any], Validation] | None,
    resume: TrainingState | None,
) -> tuple[Params, dict[str, Any]]:
    """Epochs of minibatches (or full batches). A binary classifier's early-stopping split
    is stratified by ``codes``, as scikit-learn's (it stratifies single-column targets)."""
    early = plan.early_stopping and not incremental
    split = None if resume is None else resume.split
    if early and validation is None:
        if split is None:
            # class codes with one output column: binary labels (a logistic unit), not Y's
            # width: a streamed source would gather its Y
            one_column = _losses.output_of(plan.loss) == "logistic"
            stratify = codes if codes is not None and one_column else None
            split = split_indices(data.n_samples, plan.validation_fraction, rng, stratify)
        check_resumed_rows(resume, data.n_samples, "split")
        train_idx, val_idx = split
        rows, data = data.subset(val_idx), data.subset(train_idx)
        if rows.W is not None and not bool(rows.xp.any(rows.W > 0)):
            raise ValueError(
                "The sample weights of the early-stopping validation set are all zero: its "
                "score is undefined. Use another random_state or validation_fraction, or "
                "give more samples a positive weight"
            )
        validation = Validation(rows) if held_out is None else held_out(rows, val_idx)
    elif validation is not None:
        split = None  # the caller's validation set: nothing is split off

    if resume is not None:
        check_resumed_rows(resume, data.n_samples, "order")
        history, shuffling = resume.history, resume.shuffling
        assert resume.opt is not None
        opt = _continued_optimizer(plan, resume.opt, params, same=True)
    else:
        history = previous.copy() if previous is not None else History()
        history.n_iter = 0  # scikit-learn counts the epochs of this call only
        if early:
            history.best_params = None
        if incremental and previous_opt is not None:
            opt = _continued_optimizer(plan, previous_opt, params)
        else:
            assert plan.schedule is not None
            opt = OptimizerState(plan.optimizer, plan.schedule, plan.optimizer.init(params))
        shuffling = Shuffling(rng)
    epochs = 1 if incremental else plan.max_iter - history.n_iter
    validate = None if validation is None else validation_values(plan, network, validation)
    early_metric = None
    if early and validation is not None:
        early_metric = (
            "validation_loss"
            if plan.validation_metric == "loss"
            else (validation.name if validation.name else "validation_score")
        )

    def attributes(record: dict, losses: list | None = None, final: bool = False) -> dict:
        """The fitted attributes after an epoch: its weights (``final``: early
        stopping's best ones) and the training state to continue from it."""
        params, buffers = record["params"], None if layers is None else layers.buffers
        state = TrainingState(params, buffers, opt, history, shuffling, split).copy()
        if final and early and history.best_params is not None:
            params, buffers = history.best_params, history.best_buffers
        return {
            "params": params,
            "buffers": buffers,
            **_epoch_attributes(history, early, validation is not None),
            "_training": state,
        }

    rules = [] if plan.stop_rule is None else [plan.stop_rule(network, data)]
    step = make_step(network, plan.loss, plan.alpha, opt.optimizer, data.xp)
    params, converged = run_epochs(
        step,
        params,
        opt,
        data,
        history=history,
        batch_size=_batch_size(plan.batch_size, data.n_samples),
        epochs=epochs,
        shuffle=plan.shuffle,
        shuffling=shuffling,
        tol=plan.tol,
        n_iter_no_change=plan.n_iter_no_change,
        validation=validate,
        early_metric=early_metric,
        verbose=plan.verbose,
        hooks=Attributed(hooks, attributes, rules),
        layer_state=layers,
    )
    if not converged and not incremental and history.n_iter >= plan.max_iter:
        warn(
            f"{plan.owner}: maximum iterations ({plan.max_iter}) reached "
            "and the optimization hasn't converged yet",
            ConvergenceWarning,
        )
    final = attributes({"params": params}, final=True)
    if layers is not None:
        layers.buffers = final.pop("buffers")
    else:
        final.pop("buffers")
    return final.pop("params"), final


def _continued_optimizer(
    plan: FitPlan, saved: OptimizerState, params: Params, same: bool = False
) -> OptimizerState:
    """The optimiser state a resumed run (``same``: ``ValueError`` unless it is the
    plan's optimiser) or a ``partial_fit`` (scikit-learn's: the optimiser of the first
    call goes on) continues, moved to this call's library, device and precision (where
    ``params`` are). A file stores the arrays, not the object: their structure and shapes
    are checked against the plan's optimiser, which then runs them."""
    fresh = plan.optimizer.init(params)
    if same and saved.optimizer is not None and saved.optimizer != plan.optimizer:
        raise ValueError(
            f"resume continues the run's optimiser {saved.optimizer!r}, and the "
            f"hyper-parameters now make {plan.optimizer!r}: set them back, or fit anew "
            "(warm_start=True starts a new optimiser from the weights)"
        )
    if _shapes(saved.arrays) != _shapes(fresh):
        raise ValueError(
            f"the saved optimiser state does not fit solver={plan.solver!r} ({plan.optimizer!r}) "
            "on this network: resume with the solver and hyper-parameters it was saved with"
        )
    opt = saved.copy(like=params)
    if opt.optimizer is None:
        opt.optimizer = plan.optimizer
    return opt


def _shapes(tree: Any) -> Any:
    """The nesting and shapes of a state of lists and tuples of arrays."""
    if isinstance(tree, (list, tuple)):
        return (type(tree).__name__, tuple(_shapes(t) for t in tree))
    return tuple(tree.shape)


def _online_attributes(previous: History | None, incremental: bool) -> Callable:
    """The fitted attributes after an epoch of the Perceptron's online updates."""
    before = previous.loss_curve if incremental and previous is not None else []

    def attributes(record: dict, losses: list) -> dict[str, Any]:
        history = History(loss_curve=[*before, *losses], n_iter=record["epoch"])
        return {
            "params": record["params"],
            "buffers": None,
            "n_iter_": history.n_iter,
            "loss_curve_": list(history.loss_curve),
            "_training": TrainingState(record["params"], None, None, history, Shuffling(None)),
        }

    return attributes


def _epoch_attributes(history: History, early: bool, validated: bool) -> dict[str, Any]:
    """The fitted attributes a history defines."""
    return {
        "loss_": history.loss_curve[-1] if history.loss_curve else None,
        "loss_curve_": list(history.loss_curve),
        "best_loss_": None if early else history.best_loss,
        "n_iter_": history.n_iter,
        "t_": history.t,
        "validation_scores_": list(history.validation_scores) if validated else None,
        "validation_loss_curve_": list(history.validation_loss_curve) if validated else None,
        "best_validation_score_": history.best_validation_score if validated else None,
    }
