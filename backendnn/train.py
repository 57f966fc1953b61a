"""The training loop: minibatches on the device, scikit-learn's stopping rules, progress.

Performance rules it keeps (see DESIGN.md): the data set is on the device before the
loop starts; each epoch shuffles with one host permutation moved to the device and
takes batches with ``take``; the epoch's loss accumulates on the device and is read
once per epoch; on JAX the epoch's full batches (every step's forward, backward and
update) run as one compiled loop, a last smaller batch as one more compiled step.
"""

from __future__ import annotations

import copy
import inspect
import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from ._backend import (
    array_namespace,
    device,
    from_numpy,
    jit,
    namespace_name,
    scan,
    step_scalar,
    step_scalars,
    synchronize,
)
from .network import Network, Params, flatten_params, unflatten_params
from .optim import LearningRateSchedule


class ConvergenceError(ArithmeticError):
    """Training diverged: the loss became NaN or infinite.

    ``params`` holds the last finite weights (those at the start of the epoch in which
    the loss stopped being finite); estimators keep them.
    """

    def __init__(self, message: str, params: Params | None = None):
        super().__init__(message)
        self.params = params


@dataclass
class History:
    """scikit-learn's training record (the estimators expose it as ``loss_curve_`` etc.)."""

    loss_curve: list[float] = field(default_factory=list)
    validation_scores: list[float] = field(default_factory=list)
    best_loss: float = math.inf
    best_validation_score: float = -math.inf
    best_params: Params | None = None
    n_iter: int = 0
    t: int = 0
    no_improvement: int = 0


@dataclass
class OptimizerState:
    """The optimiser, its learning-rate schedule, its device arrays and its update count
    (scikit-learn keeps these across ``partial_fit`` calls and renews them at ``fit``)."""

    optimizer: Any
    schedule: LearningRateSchedule
    arrays: Any
    updates: int = 0

    def copy(self, dtype: Any = None) -> OptimizerState:
        """A copy with its own schedule; with ``dtype``, its arrays cast to that dtype (a
        ``partial_fit`` in another precision: the state must match the weights)."""
        schedule = copy.copy(self.schedule)
        arrays = self.arrays if dtype is None else _astype(self.arrays, dtype)
        return OptimizerState(self.optimizer, schedule, arrays, self.updates)


def _astype(tree: Any, dtype: Any) -> Any:
    """Every array of a nest of lists and tuples cast to ``dtype``."""
    if isinstance(tree, (list, tuple)):
        return type(tree)(_astype(t, dtype) for t in tree)
    return array_namespace(tree).astype(tree, dtype, copy=False)


_COMPILED_STEPS: dict = {}


def make_step(network: Network, loss: Any, alpha: float, optimizer: Any, xp: Any) -> Callable:
    """One training step ``(params, state, X, Y, lr) -> (params, state, batch_loss * n_batch)``,
    compiled with ``jax.jit`` on JAX. The batch loss includes the L2 penalty.

    Compiled steps are reused across fits of the same architecture, loss, penalty and
    optimiser, so repeated fits (cross-validation, grid search) compile once.
    """
    key = (
        repr(network),
        loss if isinstance(loss, str) else id(loss),
        alpha,
        optimizer,
        namespace_name(xp),
    )
    if key in _COMPILED_STEPS:
        return _COMPILED_STEPS[key]

    # an update() that takes ``scaled`` (SGD's) accepts lr g; any other (Adam's, whose
    # second moment needs g itself, or a subclass's override) gets plain gradients
    fold_lr = "scaled" in inspect.signature(optimizer.update).parameters

    def step(params: Params, state: Any, X: Any, Y: Any, lr: Any) -> tuple[Params, Any, Any]:
        if fold_lr:  # lr g straight from backprop: one pass less per parameter
            value, lr_g = network.loss_and_grad(params, X, Y, loss, alpha, grad_scale=lr)
            params, state = optimizer.update(params, lr_g, state, lr, scaled=True)
        else:
            value, grads = network.loss_and_grad(params, X, Y, loss, alpha)
            params, state = optimizer.update(params, grads, state, lr)
        return params, state, value * X.shape[0]

    return _keep(key, jit(step, xp), step)


def make_objective(
    network: Network, template: Params, loss: Any, alpha: float, xp: Any
) -> Callable:
    """The penalised loss as a function of one flat parameter vector, for L-BFGS:
    ``(vector, X, Y) -> (value, flat gradient)``, compiled (and reused) on JAX.
    ``template`` gives the parameter shapes."""
    key = (
        "objective",
        repr(network),
        loss if isinstance(loss, str) else id(loss),
        alpha,
        namespace_name(xp),
    )
    if key in _COMPILED_STEPS:
        return _COMPILED_STEPS[key]

    def objective(vector: Any, X: Any, Y: Any) -> tuple[Any, Any]:
        value, grads = network.loss_and_grad(unflatten_params(vector, template), X, Y, loss, alpha)
        return value, flatten_params(grads)

    return _keep(key, jit(objective, xp), objective)


def _keep(key: tuple, compiled: Callable, plain: Callable) -> Callable:
    if compiled is not plain:  # only compilation is worth keeping
        _COMPILED_STEPS[key] = compiled
    return compiled


def _progress(verbose: bool, max_iter: int) -> Any:
    if not verbose:
        return None
    try:
        from tqdm.auto import tqdm
    except ImportError:
        return None
    return tqdm(total=max_iter, unit="epoch", leave=True)


def make_epoch(step: Callable, xp: Any) -> Callable:
    """The loop of ``step`` over an epoch's full batches, as one function
    ``(params, state, X, Y, rows, rates, zero) -> (params, state, summed loss)``: batch i
    is the samples ``rows[i]`` (``rows`` of shape (n_batches, batch)) trained at learning
    rate ``rates[i]``; ``zero`` is a 0-d array of the loss dtype that starts the sum.
    On JAX the whole loop is compiled (``lax.scan``): one dispatch per epoch, not per batch.
    """
    key = ("epoch", step)
    if key in _COMPILED_STEPS:
        return _COMPILED_STEPS[key]

    def epoch(
        params: Params, state: Any, X: Any, Y: Any, rows: Any, rates: Any, zero: Any
    ) -> tuple[Params, Any, Any]:
        def body(carry: tuple, batch: tuple) -> tuple:
            params, state, total = carry
            idx, lr = batch
            Xb, Yb = xp.take(X, idx, axis=0), xp.take(Y, idx, axis=0)
            params, state, value = step(params, state, Xb, Yb, lr)
            return params, state, total + value

        return scan(body, (params, state, zero), (rows, rates), xp)

    return _keep(key, jit(epoch, xp), epoch)


def run_batches(
    step: Callable, params: Params, opt: OptimizerState, X: Any, Y: Any, perm: Any, batch_size: int
) -> tuple[Params, Any]:
    """One pass over the batches of (X, Y) in the order ``perm`` (a device array of row
    indices, or None for the stored order). Returns (params, summed loss) with the
    loss left on the device: nothing in this loop waits for the device."""
    xp = array_namespace(X)
    n, dev = X.shape[0], device(X)
    n_full, rest = divmod(n, batch_size)
    order = xp.arange(n, device=dev) if perm is None else perm
    # the rate of each update: constant within an epoch except for Adam's bias correction
    first = opt.updates + 1
    opt.updates += n_full + (rest > 0)
    rates = [opt.optimizer.step_size(opt.schedule.lr, t) for t in range(first, opt.updates + 1)]
    rows = xp.reshape(order[: n_full * batch_size], (n_full, batch_size))
    # the loss sum's dtype: that of the step's output, X's promoted with the weights'
    weights = next(a for layer in params for a in layer)
    zero = xp.zeros((), dtype=xp.result_type(X.dtype, weights.dtype), device=dev)
    params, opt.arrays, total = make_epoch(step, xp)(
        params, opt.arrays, X, Y, rows, step_scalars(rates[:n_full], X), zero
    )
    if rest:  # the last, smaller batch: its own (compiled) step
        idx = order[n_full * batch_size :]
        Xb, Yb = xp.take(X, idx, axis=0), xp.take(Y, idx, axis=0)
        params, opt.arrays, value = step(params, opt.arrays, Xb, Yb, step_scalar(rates[-1], X))
        total = total + value
    return params, total


def run_epochs(
    step: Callable,
    params: Params,
    opt: OptimizerState,
    X: Any,
    Y: Any,
    *,
    history: History,
    batch_size: int,
    max_iter: int,
    shuffle: bool,
    rng: Any,
    tol: float,
    n_iter_no_change: int,
    incremental: bool = False,
    validation: Callable[[Params], float] | None = None,
    verbose: bool = False,
    callbacks: Sequence[Callable[[dict], Any]] = (),
) -> tuple[Params, bool]:
    """Train for up to ``max_iter`` epochs (one if ``incremental``) with scikit-learn's rules.

    After each epoch: the loss joins ``history.loss_curve``; with ``validation`` (a
    function of the params returning a score, higher is better) early stopping tracks
    the best score and its params; otherwise the best training loss. When
    ``n_iter_no_change`` consecutive epochs fail to improve by ``tol`` the schedule is
    asked to adapt (``adaptive`` divides the rate by 5) or training stops.

    Each callback is called once per epoch with a record dict (epoch, loss,
    validation_score, learning_rate, seconds, samples_per_second, params); one
    returning True stops training.

    ``opt`` is updated in place. Returns (params, converged); raises :class:`ConvergenceError` if
    the loss becomes non-finite.
    """
    xp = array_namespace(X)
    n = X.shape[0]
    dev = device(X)
    bar = _progress(verbose, max_iter)
    converged = False
    try:
        for _ in range(1 if incremental else max_iter):
            start_params, tic = params, time.perf_counter()
            perm = from_numpy(rng.permutation(n), xp=xp, device=dev) if shuffle else None
            params, total = run_batches(step, params, opt, X, Y, perm, batch_size)
            epoch_loss = float(synchronize(total)) / n  # the epoch's one host synchronisation
            seconds = time.perf_counter() - tic
            if not math.isfinite(epoch_loss):
                raise ConvergenceError(
                    f"the training loss became {epoch_loss} at epoch {history.n_iter + 1}: "
                    "lower learning_rate_init, scale the inputs, or add an L2 penalty (alpha)",
                    start_params,
                )
            history.n_iter += 1
            history.t += n
            history.loss_curve.append(epoch_loss)
            score = _update_no_improvement(history, params, epoch_loss, tol, validation)
            opt.schedule.epoch_end(history.t)
            record = {
                "epoch": history.n_iter,
                "loss": epoch_loss,
                "validation_score": score,
                "learning_rate": opt.schedule.lr,
                "seconds": seconds,
                "samples_per_second": n / seconds if seconds > 0 else math.inf,
                "params": params,
            }
            _report(bar, verbose, record)
            stop = any(bool(cb(record)) for cb in callbacks)
            if history.no_improvement > n_iter_no_change:
                if opt.schedule.plateau():
                    converged = True
                    break
                history.no_improvement = 0
            if stop:
                break
    finally:
        if bar is not None:
            bar.close()
    return params, converged


def _update_no_improvement(
    history: History,
    params: Params,
    loss: float,
    tol: float,
    validation: Callable[[Params], float] | None,
) -> float | None:
    """scikit-learn's ``_update_no_improvement_count``."""
    if validation is not None:
        score = float(validation(params))
        history.validation_scores.append(score)
        if score < history.best_validation_score + tol:
            history.no_improvement += 1
        else:
            history.no_improvement = 0
        if score > history.best_validation_score:
            history.best_validation_score = score
            history.best_params = params
        return score
    if loss > history.best_loss - tol:
        history.no_improvement += 1
    else:
        history.no_improvement = 0
    if loss < history.best_loss:
        history.best_loss = loss
    return None


def _report(bar: Any, verbose: bool, record: dict) -> None:
    if not verbose:
        return
    extra = (
        ""
        if record["validation_score"] is None
        else f", validation score = {record['validation_score']:.6f}"
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
