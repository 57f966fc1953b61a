"""The training loop: epochs over a data source, scikit-learn's stopping rules and
learning-rate schedules, progress, and the compiled steps it runs.

Performance rules it keeps (see DESIGN.md): the data set is on the device before the
loop starts (a :class:`backendnn.data.ArrayData`); each epoch shuffles with one host
permutation moved to the device; the epoch's loss accumulates on the device and is read
once per epoch; on JAX a step, and an epoch's full batches, are compiled, and compiled
functions are reused across fits with the same network, loss, penalty and optimiser
(keyed by value, see :mod:`backendnn._cache`).

Imports from :mod:`backendnn._backend`, ``_compiled``, ``_cache``, ``network`` (types),
``lbfgs`` and ``params``; data sources (:mod:`backendnn.data`, a layer above) only as types.
"""

from __future__ import annotations

import math
import numbers
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from ._backend import synchronize
from ._cache import freeze
from ._compiled import cached_jit
from ._random import next_key
from .lbfgs import LBFGSResult, lbfgs
from .params import Params, flatten_params, unflatten_params
from .run_state import (
    History,
    Hooks,
    LayerState,
    LearningRateSchedule,
    OptimizerState,
    Shuffling,
    TrainingState,
)

__all__ = [
    "ConvergenceError", "ConvergenceWarning", "History", "Hooks", "LayerState",
    "LearningRateSchedule", "OptimizerState", "Shuffling", "TrainingState", "make_objective",
    "make_step", "run_epochs", "run_lbfgs",
]  # fmt: skip

if TYPE_CHECKING:
    from .data import DataSource
    from .network import Network


class ConvergenceError(ValueError, ArithmeticError):
    """Training diverged: the loss became NaN or infinite. A ``ValueError`` (what
    scikit-learn raises for non-finite weights, so its callers' handlers catch it) and an
    ``ArithmeticError``.

    Parameters
    ----------
    message : str
        What happened and what to try.
    params : list of tuples of arrays, optional
        The last finite weights (those at the start of the epoch in which the loss stopped
        being finite).
    """

    def __init__(self, message: str, params: Params | None = None):
        super().__init__(message)
        self.params = params


try:  # where scikit-learn is installed, its warning filters catch ours too
    from sklearn.exceptions import ConvergenceWarning as _SklearnConvergenceWarning

    _WARNING_BASES: tuple[type, ...] = (_SklearnConvergenceWarning,)
except ImportError:  # pragma: no cover - depends on the environment
    _WARNING_BASES = (UserWarning,)


class ConvergenceWarning(*_WARNING_BASES):  # type: ignore[misc]
    """Training stopped at ``max_iter`` (or L-BFGS at ``max_fun``, or in a failed line
    search) before meeting its tolerance; a subclass of scikit-learn's
    ``ConvergenceWarning`` where scikit-learn is installed, so its filters apply."""


# ---------------------------------------------------------------------- compiled functions


def make_step(network: Network, loss: Any, alpha: float, optimizer: Any, xp: Any) -> Callable:
    """One training step ``(params, state, X, Y, lr, W=None) -> (params, state,
    batch_loss * n_batch)``, compiled with ``jax.jit`` on JAX. The batch loss includes the
    L2 penalty; ``W`` holds the batch's sample weights (None: unweighted).

    ``state`` is the optimiser's arrays; for a network with layer state or randomness
    (batch norm, dropout) it is ``(optimiser arrays, buffers, key)``
    (:meth:`LayerState.carried`): the step returns the buffers after its training pass
    and the next key, so a compiled epoch stays one program.

    An optimiser with ``scaled_gradients`` (SGD) is given lr g from backpropagation
    (``Network.loss_and_grad``'s ``grad_scale``): one pass less per parameter. Compiled
    steps are reused across fits with an equal network, loss, penalty and optimiser.
    """
    fold_lr = bool(optimizer.scaled_gradients)
    carried = network.has_state or network.is_random

    def step(
        params: Params, state: Any, X: Any, Y: Any, lr: Any, W: Any = None
    ) -> tuple[Params, Any, Any]:
        opt_state, buffers, key = state if carried else (state, None, None)
        scale = lr if fold_lr else 1.0
        value, grads, buffers = network.loss_grad_state(
            params, X, Y, loss, alpha, grad_scale=scale, sample_weight=W, state=buffers, key=key
        )
        if fold_lr:
            params, opt_state = optimizer.update(params, grads, opt_state, lr, scaled=True)
        else:
            params, opt_state = optimizer.update(params, grads, opt_state, lr)
        if carried:
            state = (opt_state, buffers, None if key is None else next_key(key))
        else:
            state = opt_state
        return params, state, value * X.shape[0]

    key = ("step", freeze(network), freeze(loss), freeze(alpha), freeze(optimizer))
    return cached_jit(key, step, xp)


def make_objective(
    network: Network, template: Params, loss: Any, alpha: float, xp: Any, buffers: Any = None
) -> Callable:
    """The penalised loss as a function of one flat parameter vector, for L-BFGS:
    ``(vector, X, Y, W=None) -> (value, flat gradient)`` (``W``: sample weights),
    compiled (and reused) on JAX. ``template`` gives the parameter shapes; ``buffers``
    the layers' state, where a layer has some (batch norm then normalises with the
    statistics of the whole batch given, and its running statistics are not read)."""

    def objective(vector: Any, X: Any, Y: Any, W: Any = None) -> tuple[Any, Any]:
        value, grads = network.loss_and_grad(
            unflatten_params(vector, template), X, Y, loss, alpha, sample_weight=W, state=buffers
        )
        return value, flatten_params(grads)

    shapes = tuple(tuple(tuple(a.shape) for a in p) for p in template)
    key = ("objective", freeze(network), shapes, freeze(loss), freeze(alpha))
    return cached_jit(key, objective, xp)


# ---------------------------------------------------------------------- minibatch epochs


def run_epochs(
    step: Callable,
    params: Params,
    opt: OptimizerState,
    data: DataSource,
    *,
    history: History,
    batch_size: int,
    epochs: int,
    shuffle: bool,
    shuffling: Shuffling,
    tol: float,
    n_iter_no_change: float,
    validation: Callable[[Params, Any], dict] | None = None,
    early_metric: str | None = None,
    verbose: bool = False,
    hooks: Hooks | None = None,
    layer_state: LayerState | None = None,
) -> tuple[Params, bool]:
    """Train for up to ``epochs`` epochs with scikit-learn's rules.

    After each epoch: the loss joins ``history.loss_curve``; ``validation`` (a function
    of the params and buffers returning ``{"validation_loss": ..., "validation_score":
    ..., ...}``, in inference mode) adds to the validation curves. ``early_metric``
    (``"validation_score"``, ``"validation_loss"`` or another key of those dicts; None:
    the training loss) is what the stopping rule watches; with a validation metric the
    weights of its best epoch are kept in ``history``. When ``n_iter_no_change``
    consecutive epochs fail to improve by ``tol`` the schedule is asked to adapt
    (``adaptive`` divides the rate by 5) or training stops.

    ``hooks`` (:class:`Hooks`) is called before each epoch and after it with the
    record (epoch, loss, validation_loss, validation_score and the other validation
    values, learning_rate (the next epoch's), seconds, samples_per_second, params,
    buffers); it may change the learning rate and stop training. Epochs are numbered
    ``history.n_iter + 1, ...``: a resumed run continues the count.

    With ``shuffle``, each epoch's order of the rows is drawn from ``shuffling.rng`` and
    permutes ``shuffling.order``, the previous epoch's (scikit-learn reshuffles its index
    array every epoch). ``opt``, ``shuffling`` (and ``layer_state``, for a network with
    batch norm or dropout: its buffers and key ride along in the step's state) are updated
    in place. Returns (params, converged); raises :class:`ConvergenceError` if the loss
    becomes non-finite.
    """
    hooks = hooks or Hooks()
    n = data.n_samples
    n_updates = -(-n // batch_size)
    bar = _progress(verbose, epochs)
    converged = False
    try:
        for _ in range(epochs):
            begin = {"epoch": history.n_iter + 1, "learning_rate": opt.schedule.lr}
            hooks.epoch_begin(begin)
            opt.schedule.lr = _rate(begin)
            start_params, tic = params, time.perf_counter()
            order = None
            if shuffle:
                order = shuffling.order = data.permutation(shuffling.rng, shuffling.order)
            state = opt.arrays if layer_state is None else layer_state.carried(opt.arrays)
            params, state, total = data.epoch(
                step, params, state, opt.rates(n_updates), batch_size, order
            )
            if layer_state is None:
                opt.arrays = state
            else:
                opt.arrays, layer_state.buffers, layer_state.key = state
            buffers = None if layer_state is None else layer_state.buffers
            epoch_loss = float(synchronize(total)) / n  # the epoch's one host synchronisation
            seconds = time.perf_counter() - tic
            diverged = not math.isfinite(epoch_loss)
            if diverged and (early_metric is None or history.best_params is None):
                raise ConvergenceError(
                    "Solver produced non-finite parameter weights. The input data may contain "
                    f"large values and need to be preprocessed: the training loss became "
                    f"{epoch_loss} at epoch {history.n_iter + 1}; lower learning_rate_init, "
                    "scale the inputs, or add an L2 penalty (alpha)",
                    start_params,
                )
            history.n_iter += 1
            history.t += n
            history.loss_curve.append(epoch_loss)
            # diverged with early stopping: the best weights so far are kept (scikit-learn's
            # rule); the epoch scores NaN and counts as no improvement
            scores = _validate(history, validation, params, buffers, diverged)
            _update_no_improvement(history, params, buffers, epoch_loss, tol, early_metric, scores)
            opt.schedule.epoch_end(history.t)
            if history.no_improvement > n_iter_no_change:
                converged = opt.schedule.plateau()
                history.no_improvement = 0 if not converged else history.no_improvement
            record = {
                "epoch": history.n_iter,
                "loss": epoch_loss,
                **scores,
                "learning_rate": opt.schedule.lr,
                "seconds": seconds,
                "samples_per_second": n / seconds if seconds > 0 else math.inf,
                "params": params,
                "buffers": buffers,
            }
            _report(bar, verbose, record)
            stop = hooks.epoch_end(record)
            opt.schedule.lr = _rate(record)
            if converged or stop:
                break
    finally:
        if bar is not None:
            bar.close()
    return params, converged


def _rate(record: dict) -> float:
    """The learning rate a hook left in ``record``, checked."""
    lr = record.get("learning_rate", "missing (the key was removed)")
    try:
        rate = float(lr) if isinstance(lr, numbers.Real) and not isinstance(lr, bool) else -1.0
    except OverflowError:
        rate = math.inf
    if not 0 <= rate < math.inf:
        raise ValueError(
            f"a callback set the learning rate to {lr!r} at epoch {record.get('epoch')}: it "
            "must be a finite number >= 0"
        )
    return rate


def _validate(
    history: History, validation: Any, params: Params, buffers: Any, diverged: bool
) -> dict[str, Any]:
    """The epoch's validation values (None without validation data; NaN for non-finite
    weights), appended to the validation curves."""
    if validation is None:
        return {"validation_loss": None, "validation_score": None}
    if diverged:
        scores = {"validation_loss": math.nan, "validation_score": math.nan}
    else:
        scores = {k: float(v) for k, v in validation(params, buffers).items()}
    history.validation_loss_curve.append(scores["validation_loss"])
    history.validation_scores.append(scores["validation_score"])
    if scores["validation_score"] > history.best_validation_score:
        history.best_validation_score = scores["validation_score"]
    return scores


def _update_no_improvement(
    history: History,
    params: Params,
    buffers: Any,
    loss: float,
    tol: float,
    early_metric: str | None,
    scores: dict[str, Any],
) -> None:
    """scikit-learn's ``_update_no_improvement_count``, watching the training loss or
    (``early_metric``) a validation value: a score, or a loss (its negative is watched)."""
    if early_metric is not None:
        value = scores[early_metric]
        criterion = -value if early_metric.endswith("loss") else value
        if not criterion >= history.best_criterion + tol:  # NaN counts as no improvement
            history.no_improvement += 1
        else:
            history.no_improvement = 0
        if criterion > history.best_criterion:
            history.best_criterion = criterion
            history.best_params, history.best_buffers = params, buffers
        return
    if loss > history.best_loss - tol:
        history.no_improvement += 1
    else:
        history.no_improvement = 0
    if loss < history.best_loss:
        history.best_loss = loss


# ---------------------------------------------------------------------- full batch, L-BFGS


def run_lbfgs(
    network: Network,
    params: Params,
    data: DataSource,
    loss: Any,
    alpha: float,
    *,
    max_iter: int,
    max_fun: int,
    tol: float,
    verbose: bool = False,
    hooks: Hooks | None = None,
    buffers: Any = None,
    first: int = 1,
) -> tuple[Params, LBFGSResult, list[float]]:
    """Minimise the penalised loss over the whole data set with :func:`backendnn.lbfgs.lbfgs`
    on the device. ``hooks.epoch_end`` is called once per iteration with a record
    (epoch, counted from ``first``, loss and params) and stops the run by returning True.
    Returns (params, the L-BFGS result, the loss after each iteration); raises
    :class:`ConvergenceError` if the loss is not finite."""
    hooks = hooks or Hooks()
    curve: list[float] = []

    def on_iter(it: int, f: float, x: Any) -> bool:
        curve.append(f)
        if verbose:
            print(f"Iteration {first + it - 1}, loss = {f:.8f}")
        record = {"epoch": first + it - 1, "loss": f, "params": unflatten_params(x, params)}
        return bool(hooks.epoch_end(record))

    def objective(a: float) -> Callable:
        return make_objective(network, params, loss, a, data.xp, buffers)

    blocked = getattr(data, "objective", None)  # a source that sums over row blocks (sparse)
    if blocked is not None:
        fun = blocked(objective, alpha)
    else:
        compiled = objective(alpha)
        fun = lambda v: compiled(v, data.X, data.Y, data.W)  # noqa: E731
    res = lbfgs(
        fun,
        flatten_params(params),
        max_iter=max_iter,
        max_fun=max_fun,
        tol=tol,
        callback=on_iter,
    )
    if not math.isfinite(res.fun):
        raise ConvergenceError(f"L-BFGS reached a non-finite loss {res.fun}", params)
    return unflatten_params(res.x, params), res, curve


# ---------------------------------------------------------------------- progress


def _progress(verbose: Any, max_iter: int) -> Any:
    """A tqdm bar for ``verbose="progress"`` (None otherwise, or without tqdm)."""
    if verbose != "progress":
        return None
    try:
        from tqdm.auto import tqdm
    except ImportError:
        return None
    return tqdm(total=max_iter, unit="epoch", leave=True)


def _report(bar: Any, verbose: Any, record: dict) -> None:
    if not verbose:
        return
    extra = (
        ""
        if record["validation_score"] is None
        else f", validation loss = {record['validation_loss']:.6f}, "
        f"validation score = {record['validation_score']:.6f}"
    )
    if bar is not None:
        bar.set_postfix_str(
            f"loss={record['loss']:.6g}, {record['samples_per_second']:,.0f} samples/s"
        )
        bar.update(1)
    else:
        print(
            f"Iteration {record['epoch']}, loss = {record['loss']:.8f}{extra} "
            f"({record['samples_per_second']:,.0f} samples/s)"
        )
