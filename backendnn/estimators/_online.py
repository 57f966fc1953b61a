"""scikit-learn's online perceptron (``SGDClassifier(loss="perceptron",
learning_rate="constant")``, its Cython ``_plain_sgd``) written against the Array API.

Each one-vs-rest problem is scikit-learn's binary SGD: per sample p = w.x + b, and if
y p <= 0 (y = +1/-1) the update eta0 * y * class_weight * sample_weight is added to w
(times x) and to b. ``penalty="l2"``/``"elasticnet"`` shrinks w by
max(0, 1 - (1 - l1_ratio) eta0 alpha) before each update (kept, as scikit-learn keeps
it, as a scale factor beside the weights); ``"l1"``/``"elasticnet"`` then applies the
cumulative truncated-gradient penalty of Tsuruoka et al. (2009). After each epoch a
problem stops when its mean loss (plus penalty) over the training samples has not
improved by ``tol`` for ``n_iter_no_change`` epochs, or, with early stopping, its
held-out accuracy. The same arithmetic in the same order as scikit-learn's, so with
``shuffle=False`` the weights agree to rounding.

All K problems step together on one sample per step (each problem on its own sample when
they are shuffled differently: a gather per step), each epoch one ``scan``, compiled on
JAX; a problem that stopped is frozen by a mask. The epoch order with ``shuffle=True`` is
scikit-learn's too: its xorshift Fisher-Yates shuffle, re-applied each epoch with a seed
drawn as scikit-learn draws it (the same seed, and so the same order, when the
estimator's generator is a ``numpy.random.RandomState`` as scikit-learn's is).

Also the driver's side of it (:func:`train_online`).

Imports :mod:`backendnn._backend`, ``_validation`` and ``train``; NumPy for the
host arrays.
"""

from __future__ import annotations

import dataclasses
import functools
import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from .._backend import array_namespace, device, from_numpy, index_dtype, jit, scan, to_numpy
from .._backend.splits import split_indices
from .._warnings import warn
from ..train import (
    ConvergenceError,
    ConvergenceWarning,
    History,
    Hooks,
    Shuffling,
    TrainingState,
)
from ._online_draws import Orders, along, draws


@dataclass
class OnlineSetup:
    """The hyper-parameters of one online fit (scikit-learn's names)."""

    penalty: str | None
    alpha: float
    l1_ratio: float
    eta0: float
    fit_intercept: bool
    max_iter: int
    tol: float | None
    n_iter_no_change: int
    shuffle: bool
    early_stopping: bool
    validation_fraction: float
    verbose: Any
    random_state: Any  # the parameter: an int makes scikit-learn draw from new generators
    class_weights: list[float]  # one per class (scikit-learn's compute_class_weight)


def fit_online(
    setup: OnlineSetup,
    X: Any,
    signs: Any,
    sample_weight: Any,
    class_scale: Any,
    coef: Any,
    intercept: Any,
    rng: Any,
    random_state: Any,
    strata: Any,
    held_out: tuple[Any, Any, Any] | None = None,
    on_epoch: Any = None,
) -> tuple[Any, Any, list[int], list[float]]:
    """Train K one-vs-rest perceptrons online from ``coef`` (K, d) and ``intercept`` (K,)
    (device arrays of X's library).

    ``held_out`` (X_val, +1/-1 signs, host weights): the caller's validation set, which
    early stopping scores instead of a split of X. ``on_epoch(epoch, coef, intercept,
    loss)``, called after each epoch with the weights so far, returns True to stop.

    ``signs`` (n, K) host +1/-1 targets; ``sample_weight`` (n,) host weights;
    ``class_scale`` (n, K) the class weight of each sample in each problem; ``rng`` the
    host generator drawn from for the shuffle seeds and the early-stopping split
    (``random_state`` says whether scikit-learn would draw from a new generator each
    time: an int); ``strata`` the class index of each sample (the split is stratified
    by it).

    Returns (coef, intercept, n_iter per problem, the loss per epoch: the mean over the
    problems still running of each one's mean loss plus penalty per training sample).
    Raises :class:`backendnn.ConvergenceError` if the weights stop being finite.
    """
    sparse = hasattr(X, "dense")  # a scipy.sparse X (data.sparse.SparseRows) stays on the host
    xp, dev, dtype = (
        (X.xp, X.device, X.dtype) if sparse else (array_namespace(X), device(X), X.dtype)
    )
    n, k = signs.shape
    scale = class_scale * sample_weight[:, None]  # scikit-learn's class_weight * sample_weight
    split_rng, seeds = draws(rng, random_state, k, setup.early_stopping)
    train = np.ones(n, dtype=bool)
    if setup.early_stopping and held_out is not None:
        X_val, signs_val, w_val = held_out
        val = _validation(X_val, signs_val, w_val, list(range(len(w_val))), xp, dev, dtype)
    elif setup.early_stopping:
        train_idx, val_idx = split_indices(n, setup.validation_fraction, split_rng, strata)
        train[val_idx] = False
        if not (sample_weight[val_idx] > 0).any():
            raise ValueError(
                "The sample weights for validation set are all zero, consider using a "
                "different random state."
            )
        val = _validation(X, signs, sample_weight, val_idx, xp, dev, dtype)
    n_train = int(train.sum())
    steps = Orders(seeds if setup.shuffle else None, n, k)
    epoch_fn = _compiled_epoch(
        setup.penalty, float(setup.alpha), float(setup.l1_ratio), float(setup.eta0),
        bool(setup.fit_intercept), dtype == xp.float64, xp,
    )  # fmt: skip
    state = _initial_state(coef, intercept, xp)
    active = [True] * k
    best = [-math.inf if setup.early_stopping else math.inf] * k
    stale = [0] * k
    n_iter = [setup.max_iter] * k
    curve: list[float] = []
    tol = -math.inf if setup.tol is None else float(setup.tol)
    device_inputs = None
    for epoch in range(setup.max_iter):
        if setup.shuffle or device_inputs is None:
            order = steps.next_epoch()  # (n, K) sample index per step and problem
            device_inputs = (
                ()
                if sparse
                else (
                    from_numpy(order, xp=xp, device=dev, dtype=index_dtype(xp)),
                    from_numpy(along(signs, order), xp=xp, device=dev, dtype=dtype),
                    from_numpy(along(scale, order), xp=xp, device=dev, dtype=dtype),
                    from_numpy(train[order], xp=xp, device=dev),
                )
            )
        running = from_numpy(to_numpy(active), xp=xp, device=dev)
        if sparse:
            state = _sparse_epoch(epoch_fn, state, X, running, order, signs, scale, train)
        else:
            state = epoch_fn(state, X, running, *device_inputs)
        w, _, b = state[0], state[1], state[2]
        if not (bool(xp.all(xp.isfinite(w))) and bool(xp.all(xp.isfinite(b)))):
            raise ConvergenceError(
                f"Floating-point under-/overflow occurred at epoch #{epoch + 1}. Scaling "
                "input data with StandardScaler or MinMaxScaler might help."
            )
        losses = to_numpy(state[-1]) / max(n_train, 1)
        running_losses = [float(v) for v, a in zip(losses.tolist(), active) if a]
        curve.append(sum(running_losses) / len(running_losses))
        # scikit-learn scores the held-out set with the weights before their scale factor
        measure = val(w, b) if setup.early_stopping else losses.tolist()
        for j in range(k):
            if not active[j]:
                continue
            if setup.early_stopping:  # scikit-learn's comparisons, as written there
                worse = measure[j] < best[j] + tol
                best[j] = max(best[j], measure[j])
            else:
                worse = measure[j] > best[j] - tol
                best[j] = min(best[j], measure[j])
            stale[j] = stale[j] + 1 if (tol > -math.inf and worse) else 0
            if stale[j] >= setup.n_iter_no_change:
                active[j], n_iter[j] = False, epoch + 1
        if setup.verbose:
            print(f"-- Epoch {epoch + 1}: average loss {curve[-1]:.6f}")
        if on_epoch is not None and on_epoch(epoch + 1, w * state[1][:, None], b, curve[-1]):
            n_iter = [min(i, epoch + 1) for i in n_iter]
            break
        if not any(active):
            break
    w, scale_w, b = state[0], state[1], state[2]
    return w * scale_w[:, None], b, n_iter, curve


# ---------------------------------------------------------------------- the device loop


def _sparse_epoch(
    epoch_fn: Any,
    state: tuple,
    X: Any,
    running: Any,
    order: Any,
    signs: Any,
    scale: Any,
    train: Any,
) -> tuple:
    """The epoch over a sparse X: its steps in chunks, each chunk's rows (those any
    problem visits in it) densified once on the device and indexed locally; the epoch's
    loss summed over the chunks. The same updates as the dense epoch, in the same order."""
    xp, dev, dtype = X.xp, X.device, X.dtype
    chunk = max(1, X.block_rows() // order.shape[1])
    total = None
    for start in range(0, order.shape[0], chunk):
        part = order[start : start + chunk]
        rows = np.unique(part)
        state = epoch_fn(
            state,
            X.dense(rows),
            running,
            from_numpy(rows.searchsorted(part), xp=xp, device=dev, dtype=index_dtype(xp)),
            from_numpy(along(signs, part), xp=xp, device=dev, dtype=dtype),
            from_numpy(along(scale, part), xp=xp, device=dev, dtype=dtype),
            from_numpy(train[part], xp=xp, device=dev),
        )
        total = state[-1] if total is None else total + state[-1]
    return state[:-1] + (total,)


def _initial_state(coef: Any, intercept: Any, xp: Any) -> tuple:
    """(w, wscale, b, |w|^2, |w|_1, u, q, epoch loss) as scikit-learn's WeightVector
    starts: w = coef with scale 1 and its norms computed; u and q the L1 penalty's."""
    k = coef.shape[0]
    ones = xp.ones((k,), dtype=coef.dtype, device=device(coef))
    zeros = xp.zeros_like(ones)
    sq = xp.sum(coef * coef, axis=1)
    l1 = xp.sum(xp.abs(coef), axis=1)
    return (coef, ones, intercept, sq, l1, zeros, xp.zeros_like(coef), zeros)


@functools.lru_cache(maxsize=64)
def _compiled_epoch(
    penalty: str | None,
    alpha: float,
    l1_ratio: float,
    eta: float,
    fit_intercept: bool,
    float64: bool,
    xp: Any,
) -> Any:
    """One epoch, ``epoch(state, X, running, order, signs, scale, train)`` -> state,
    compiled on JAX (kept per hyper-parameters and library: a fit compiles it once)."""
    l1_ratio = {None: 0.0, "l2": 0.0, "l1": 1.0}.get(penalty, l1_ratio)
    shrink = max(0.0, 1.0 - ((1.0 - l1_ratio) * eta * alpha))
    step_u = l1_ratio * eta * alpha
    reset_below = 1e-9 if float64 else 1e-6  # scikit-learn's, per precision

    def epoch(state: tuple, X: Any, running: Any, order: Any, signs: Any, scale: Any, train: Any):
        state = state[:-1] + (xp.zeros_like(state[-1]),)

        def step(state: tuple, inputs: tuple) -> tuple:
            w, ws, b, sq, l1n, u, q, total = state
            idx, y, cs, tr = inputs
            live = tr & running
            zero = xp.zeros_like(b)
            x = xp.take(X, idx, axis=0)  # (K, d): each problem's sample
            z = y * (ws * xp.sum(w * x, axis=1) + b)
            wrong = z <= 0.0
            total = total + xp.where(live & wrong, -z, zero)
            if penalty is not None:  # the objective adds the penalty at the current w
                norm = xp.sqrt(sq)
                pen = alpha * ((1.0 - l1_ratio) * 0.5 * (norm * norm) + l1_ratio * l1n)
                total = total + xp.where(live, pen, zero)
            update = xp.where(wrong, (eta * y) * cs, zero)
            new_ws, new_w, new_sq, new_l1 = ws, w, sq, l1n
            if penalty in ("l2", "elasticnet"):
                new_ws = ws * shrink
                new_sq, new_l1 = sq * (shrink * shrink), l1n * abs(shrink)
                reset = new_ws < reset_below
                new_w = xp.where(reset[:, None], w * new_ws[:, None], w)
                new_ws = xp.where(reset, xp.ones_like(ws), new_ws)
            moved = update != 0.0
            added = new_w + x * (update / new_ws)[:, None]
            new_w = xp.where(moved[:, None], added, new_w)
            new_sq = xp.where(moved, xp.sum(added * added, axis=1) * (new_ws * new_ws), new_sq)
            new_l1 = xp.where(moved, xp.sum(xp.abs(added), axis=1) * new_ws, new_l1)
            new_b = b + update if fit_intercept else b
            new_u, new_q = u, q
            if penalty in ("l1", "elasticnet"):
                new_u = u + step_u
                new_w, new_q = _truncate(new_w, new_ws, new_u, q, xp)
            keep = live[:, None]
            return (
                xp.where(keep, new_w, w),
                xp.where(live, new_ws, ws),
                xp.where(live, new_b, b),
                xp.where(live, new_sq, sq),
                xp.where(live, new_l1, l1n),
                xp.where(live, new_u, u),
                xp.where(keep, new_q, q),
                total,
            )

        return scan(step, state, (order, signs, scale, train), xp)

    return jit(epoch, xp)


def _truncate(w: Any, ws: Any, u: Any, q: Any, xp: Any) -> tuple[Any, Any]:
    """scikit-learn's ``l1penalty``: move each weight towards zero by what the cumulative
    L1 penalty ``u`` has not yet taken (``q``), never across zero (Tsuruoka et al.)."""
    zero = xp.zeros_like(w)
    s, uu = ws[:, None], u[:, None]
    signed = s * w
    shrunk = xp.where(
        signed > 0.0,
        xp.maximum(zero, w - (uu + q) / s),
        xp.where(signed < 0.0, xp.minimum(zero, w + (uu - q) / s), w),
    )
    return shrunk, q + s * (shrunk - w)


def _validation(
    X: Any, signs: Any, sample_weight: Any, val_idx: list, xp: Any, dev: Any, dtype: Any
) -> Any:
    """The held-out accuracy of each problem's weights: scikit-learn's ``score`` of the
    binary problem (+1/-1 labels) weighted by the sample weights."""
    if hasattr(X, "dense"):  # sparse: the held-out rows densified
        X_val = X.dense(to_numpy(val_idx))
    else:
        rows = from_numpy(to_numpy(val_idx), xp=xp, device=dev, dtype=index_dtype(xp))
        X_val = xp.take(X, rows, axis=0)
    Y_val = from_numpy(signs[val_idx], xp=xp, device=dev, dtype=dtype)
    sw = sample_weight[val_idx]
    W_val = from_numpy(sw, xp=xp, device=dev, dtype=dtype)
    total = float(sw.sum())

    def score(w: Any, b: Any) -> list[float]:
        p = X_val @ xp.permute_dims(w, (1, 0)) + b
        pred = xp.where(p > 0.0, xp.ones_like(p), -xp.ones_like(p))
        hits = xp.astype(pred == Y_val, dtype)
        return (to_numpy(xp.sum(hits * W_val[:, None], axis=0)) / total).tolist()

    return score


# ---------------------------------------------------------------------- the estimator's side


def train_online(
    setup: OnlineSetup,
    params: Any,
    data: Any,
    codes: Any,
    rng: Any,
    incremental: bool,
    history: History | None,
    hooks: Hooks | None = None,
    validation: Any = None,
    values: Any = None,
) -> tuple[Any, dict[str, Any]]:
    """Train the Perceptron's one dense layer ``params`` online on ``data`` (its Y: +1/-1
    per problem; its W: sample weights or None) with class indices ``codes``; with
    ``history`` (``partial_fit``) the counts and loss curve continue it. ``hooks`` are
    called around each epoch (the learning rate ``eta0`` is compiled into the epoch: a
    hook may not change it); ``validation`` (a data source) is the caller's validation
    set, measured after each epoch by ``values(params, buffers)`` (a dict) and scored by
    early stopping instead of a split. Returns the parameters and the fitted attributes
    the training defines."""
    xp, n, k = array_namespace(params[0][0]), data.n_samples, int(data.Y.shape[1])
    signs = to_numpy(data.Y).astype("float64")
    host_w = np.ones(n) if data.W is None else to_numpy(data.W).astype("float64")
    cw = np.asarray(setup.class_weights, dtype="float64")
    # scikit-learn's weight_pos and weight_neg of each problem
    pos, neg = (cw[1:], cw[:1]) if k == 1 else (cw, np.ones(k))
    class_scale = (signs > 0) * pos[None, :] + (signs <= 0) * neg[None, :]
    coef = xp.permute_dims(params[0][0], (1, 0))
    intercept = params[0][1] if setup.fit_intercept else xp.zeros_like(coef[:, 0])
    if incremental:
        setup = dataclasses.replace(setup, max_iter=1)
    # a sparse source's rows stay on the host (its X would densify them all)
    X = data.rows if hasattr(data, "rows") else data.X
    held_out = None
    if validation is not None:
        val_w = validation.W
        held_out = (
            validation.X,
            to_numpy(validation.Y).astype("float64"),
            np.ones(validation.n_samples) if val_w is None else to_numpy(val_w).astype("float64"),
        )
    earlier = history if incremental and history is not None else History(t=1)
    curves = History()
    hooks = hooks or Hooks()

    def on_epoch(epoch: int, coef_now: Any, intercept_now: Any, loss: float) -> bool:
        begin = {"epoch": epoch, "learning_rate": setup.eta0}
        hooks.epoch_begin(begin)
        _same_rate(begin, setup.eta0)
        W_now = xp.permute_dims(coef_now, (1, 0))
        now = [(W_now, intercept_now) if setup.fit_intercept else (W_now,)]
        scores: dict[str, float | None] = {"validation_loss": None, "validation_score": None}
        if values is not None:
            measured = {k: float(v) for k, v in values(now, None).items()}
            curves.validation_loss_curve.append(measured["validation_loss"])
            curves.validation_scores.append(measured["validation_score"])
            scores = dict(measured)
        record = {"epoch": epoch, "loss": loss, **scores, "learning_rate": setup.eta0,
                  "params": now, "buffers": None}  # fmt: skip
        stop = bool(hooks.epoch_end(record))
        _same_rate(record, setup.eta0)
        return stop

    coef, intercept, n_iters, curve = fit_online(
        setup, X, signs, host_w, class_scale, coef, intercept, rng, setup.random_state,
        codes, held_out, on_epoch,
    )  # fmt: skip
    n_iter = max(n_iters)
    if not incremental and setup.tol is not None and n_iter == setup.max_iter:
        warn(
            "Maximum number of iteration reached before convergence. Consider "
            "increasing max_iter to improve the fit.",
            ConvergenceWarning,
        )
    record = History(  # scikit-learn's count: updates plus one
        loss_curve=[*earlier.loss_curve, *curve], t=earlier.t + n_iter * n, n_iter=n_iter
    )
    W = xp.permute_dims(coef, (1, 0))
    params = [(W, intercept) if setup.fit_intercept else (W,)]
    validated = values is not None
    return params, {
        "n_iter_": n_iter,
        "t_": record.t,
        "loss_curve_": list(record.loss_curve),
        "validation_scores_": list(curves.validation_scores) if validated else None,
        "validation_loss_curve_": list(curves.validation_loss_curve) if validated else None,
        "_training": TrainingState(params, None, None, record, Shuffling(None)),
    }


def _same_rate(record: dict, eta0: float) -> None:
    """``ValueError`` where a callback changed (or removed) the record's learning rate."""
    if record.get("learning_rate") != eta0:
        raise ValueError(
            "the online Perceptron's learning rate eta0 is compiled into its epochs: a "
            "callback cannot change it; use solver='gd'"
        )
