"""A run's training state in a model file (``backendnn.save(model, path,
include_optimizer=True)``): what :class:`backendnn.train.TrainingState` holds, as JSON
fields and named tensors, and back, every field checked.

Tensors (beside the weights ``layers.{i}.{name}``):

- ``training.params.layers.{i}.{name}``: the last epoch's parameters and layer buffers
  (the fitted weights may be early stopping's best ones instead);
- ``training.best.layers.{i}.{name}``: early stopping's best weights, if any;
- ``training.optimizer.{j}``: the optimiser's arrays, the leaves of its state in order
  (the JSON ``tree`` gives the nesting);
- ``training.order``, ``training.split.train``, ``training.split.validation``: the
  last epoch's order of the rows and the early-stopping split (int64).

JSON (``"training"``): the history's counters and curves, the update count and the
learning-rate schedule, the host generator's state and the dropout key. The optimiser
object itself is not stored: a resumed fit takes it from the estimator's
hyper-parameters and checks that the stored state has its structure and shapes.

Imports :mod:`backendnn._backend`, ``train`` and ``_validation``; NumPy for host data.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from .._backend import from_numpy, has_64bit, is_array, to_numpy
from .._validation import is_int
from ..train import History, LearningRateSchedule, OptimizerState, Shuffling, TrainingState
from ._weights import buffers_of, params_of, weight_map

PREFIX = "training."
_HISTORY_NUMBERS = ("best_loss", "best_validation_score", "best_criterion")
_HISTORY_COUNTS = ("n_iter", "t", "no_improvement")
_HISTORY_CURVES = ("loss_curve", "validation_scores", "validation_loss_curve")
_BIT_GENERATORS = ("MT19937", "PCG64", "PCG64DXSM", "Philox", "SFC64")


# ---------------------------------------------------------------------- writing


def training_fields(model: Any) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
    """The JSON fields and host tensors of ``model``'s training state (``ValueError``
    where it has none)."""
    state: TrainingState | None = model.__dict__.get("_training")
    if state is None:
        raise ValueError(
            f"this {type(model).__name__} has no training state to save "
            "(include_optimizer=True needs a model fitted in this session, or loaded from a "
            "file saved with include_optimizer=True)"
        )

    network = model._network()
    tensors = {
        f"{PREFIX}params.{k}": to_numpy(a)
        for k, a in weight_map(network, state.params, state.buffers).items()
    }
    h = state.history
    if h.best_params is not None:
        best = weight_map(network, h.best_params, h.best_buffers)
        tensors.update({f"{PREFIX}best.{k}": to_numpy(a) for k, a in best.items()})
    tree = None
    opt = state.opt
    if opt is not None:
        leaves: list[Any] = []
        tree = _tree(opt.arrays, leaves)
        tensors.update({f"{PREFIX}optimizer.{j}": to_numpy(a) for j, a in enumerate(leaves)})
    order = state.shuffling.order
    if is_array(order) or isinstance(order, np.ndarray):
        tensors[f"{PREFIX}order"] = to_numpy(order).astype(np.int64)
    if state.split is not None:
        tensors[f"{PREFIX}split.train"] = np.asarray(state.split[0], dtype=np.int64)
        tensors[f"{PREFIX}split.validation"] = np.asarray(state.split[1], dtype=np.int64)
    fields = {
        "history": {
            **{k: _number(getattr(h, k)) for k in _HISTORY_NUMBERS},
            **{k: int(getattr(h, k)) for k in _HISTORY_COUNTS},
            **{k: [_number(v) for v in getattr(h, k)] for k in _HISTORY_CURVES},
        },
        "optimizer": None
        if opt is None
        else {
            "tree": tree,
            "updates": int(opt.updates),
            "schedule": {
                "kind": opt.schedule.kind,
                "learning_rate_init": opt.schedule.learning_rate_init,
                "power_t": opt.schedule.power_t,
                "lr": opt.schedule.lr,
            },
        },
        "rng": _rng_fields(state.shuffling.rng),
        "random_key": model.__dict__.get("_random_key"),
    }
    return fields, {k: np.array(v, order="C", copy=True) for k, v in tensors.items()}


def _number(v: float) -> Any:
    """A float for JSON (infinities and NaN as strings, which JSON lacks)."""
    v = float(v)
    return v if math.isfinite(v) else repr(v)


def _tree(node: Any, leaves: list) -> Any:
    """The nesting of an optimiser state (lists and tuples of arrays), leaves numbered."""
    if isinstance(node, (list, tuple)):
        return {"list" if isinstance(node, list) else "tuple": [_tree(n, leaves) for n in node]}
    leaves.append(node)
    return len(leaves) - 1


def _rng_fields(rng: Any) -> Any:
    if isinstance(rng, np.random.RandomState):
        name, keys, pos, has_gauss, cached = rng.get_state()
        return {
            "kind": "RandomState",
            "state": [name, [int(k) for k in keys], int(pos), int(has_gauss), float(cached)],
        }
    if isinstance(rng, np.random.Generator):
        return {"kind": "Generator", "state": rng.bit_generator.state}
    return None


# ---------------------------------------------------------------------- reading


def read_training(
    cls: Any, attributes: dict, fields: Any, tensors: dict[str, np.ndarray], xp: Any, dev: Any
) -> tuple[TrainingState, Any]:
    """The training state (and dropout key) of a file's ``fields`` and ``training.*``
    ``tensors`` for a model of class ``cls`` with fitted ``attributes``, its arrays
    placed on ``xp``/``dev``. ``ValueError`` naming the field that does not fit."""

    if not isinstance(fields, dict) or set(fields) != {"history", "optimizer", "rng", "random_key"}:
        raise ValueError(
            f"field training must hold history, optimizer, rng and random_key; got {fields!r}"
        )
    schema = cls._weight_schema(attributes)
    network = cls._network_of(attributes)
    dtype_name = attributes["_dtype_name"]
    dtype = getattr(xp, dtype_name if has_64bit(xp) else "float32")

    def placed(host: np.ndarray) -> Any:
        return from_numpy(host, xp=xp, device=dev, dtype=dtype)

    def weights(group: str) -> dict[str, Any] | None:
        named = {k[len(PREFIX) + len(group) + 1 :]: a for k, a in tensors.items()
                 if k.startswith(f"{PREFIX}{group}.")}  # fmt: skip
        if not named:
            return None
        if set(named) != set(schema):
            raise ValueError(f"tensors {PREFIX}{group}.* do not name the model's weights")
        for k, a in named.items():
            if a.dtype.name != dtype_name or tuple(a.shape) != tuple(schema[k][0]):
                raise ValueError(
                    f"tensor {PREFIX}{group}.{k} has {a.dtype.name} {tuple(a.shape)}; the model "
                    f"needs {dtype_name} {tuple(schema[k][0])}"
                )
        return {k: placed(a) for k, a in named.items()}

    last, best = weights("params"), weights("best")
    if last is None:
        raise ValueError(f"the training state lacks the tensors {PREFIX}params.*")
    buffers = buffers_of(network, last) if network.has_state else None
    history = _history(fields["history"])
    if best is not None:
        history.best_params = params_of(network, best)
        history.best_buffers = buffers_of(network, best) if network.has_state else None
    opt = _optimizer(fields["optimizer"], tensors, dtype_name, placed)
    order = _indices(tensors, "order")
    split = None
    train, val = _indices(tensors, "split.train"), _indices(tensors, "split.validation")
    if (train is None) != (val is None):
        raise ValueError("the early-stopping split needs both split.train and split.validation")
    if train is not None and val is not None:
        if not (len(train) and len(val)):
            raise ValueError("the early-stopping split needs rows on both sides")
        everything = np.sort(np.concatenate([train, val]))
        if not np.array_equal(everything, np.arange(len(everything))):
            raise ValueError("the early-stopping split's rows are not a partition of 0..n-1")
        split = (train, val)
    if order is not None:
        if not np.array_equal(np.sort(order), np.arange(len(order))):
            raise ValueError(f"tensor {PREFIX}order is not a permutation of 0..n-1")
        if split is not None and len(order) != len(split[0]):
            raise ValueError(f"tensor {PREFIX}order does not order the training split's rows")
    known = {f"{PREFIX}{g}" for g in ("order", "split.train", "split.validation")}
    for k in tensors:
        if (
            not k.startswith((f"{PREFIX}params.", f"{PREFIX}best.", f"{PREFIX}optimizer."))
            and k not in known
        ):
            raise ValueError(f"unknown tensor {k!r} in the training state")
    rng = _rng(fields["rng"])
    if opt is not None and rng is None:
        raise ValueError("field training.rng is null, and the optimiser's epochs draw from it")
    state = TrainingState(
        params_of(network, last), buffers, opt, history, Shuffling(rng, order), split
    )
    return state, _key(fields["random_key"])


def _float(v: Any, name: str) -> float:
    if isinstance(v, str) and v in ("inf", "-inf", "nan"):
        return float(v)
    if isinstance(v, bool) or not isinstance(v, (int, float)) or abs(v) > 1e308:
        raise ValueError(f"{name} must be a number; got {v!r}")
    return float(v)


def _history(raw: Any) -> History:
    names = {*_HISTORY_NUMBERS, *_HISTORY_COUNTS, *_HISTORY_CURVES}
    if not isinstance(raw, dict) or set(raw) != names:
        raise ValueError(f"field training.history must hold {sorted(names)}")
    h = History()
    for k in _HISTORY_NUMBERS:
        setattr(h, k, _float(raw[k], f"training.history.{k}"))
    for k in _HISTORY_COUNTS:
        if not is_int(raw[k]) or raw[k] < 0:
            raise ValueError(f"training.history.{k} must be an integer >= 0; got {raw[k]!r}")
        setattr(h, k, int(raw[k]))
    for k in _HISTORY_CURVES:
        if not isinstance(raw[k], list):
            raise ValueError(f"training.history.{k} must be a list of numbers")
        setattr(h, k, [_float(v, f"training.history.{k}") for v in raw[k]])
    if len(h.loss_curve) < h.n_iter:
        raise ValueError("training.history: n_iter is more than the loss curve's epochs")
    if not len(h.validation_scores) == len(h.validation_loss_curve) <= len(h.loss_curve):
        raise ValueError(
            "training.history: the validation curves must be as long as each other, and no "
            "longer than the loss curve"
        )
    return h


def _optimizer(raw: Any, tensors: dict, dtype_name: str, placed: Any) -> OptimizerState | None:
    if raw is None:
        if any(k.startswith(f"{PREFIX}optimizer.") for k in tensors):
            raise ValueError("optimizer tensors without field training.optimizer")
        return None
    if not isinstance(raw, dict) or set(raw) != {"tree", "updates", "schedule"}:
        raise ValueError("field training.optimizer must hold tree, updates and schedule")
    leaves = {k for k in tensors if k.startswith(f"{PREFIX}optimizer.")}
    seen: list[int] = []
    arrays = _untree(raw["tree"], tensors, dtype_name, placed, seen)
    if sorted(seen) != list(range(len(leaves))) or len(seen) != len(leaves):
        raise ValueError("field training.optimizer.tree does not number its tensors 0..n-1 once")
    if not is_int(raw["updates"]) or raw["updates"] < 0:
        raise ValueError("training.optimizer.updates must be an integer >= 0")
    s = raw["schedule"]
    if not isinstance(s, dict) or set(s) != {"kind", "learning_rate_init", "power_t", "lr"}:
        raise ValueError(
            "field training.optimizer.schedule must hold kind, learning_rate_init, power_t, lr"
        )
    schedule = LearningRateSchedule(
        s["kind"],
        _float(s["learning_rate_init"], "schedule.learning_rate_init"),
        _float(s["power_t"], "schedule.power_t"),
    )
    schedule.lr = _float(s["lr"], "schedule.lr")
    if not (0 <= schedule.lr < math.inf and 0 < schedule.learning_rate_init < math.inf):
        raise ValueError("training.optimizer.schedule's learning rates must be finite, >= 0")
    if not math.isfinite(schedule.power_t):
        raise ValueError("training.optimizer.schedule.power_t must be finite")
    # the optimiser object comes from the estimator's hyper-parameters at resume
    return OptimizerState(None, schedule, arrays, int(raw["updates"]))


def _untree(node: Any, tensors: dict, dtype_name: str, placed: Any, seen: list) -> Any:
    if isinstance(node, dict) and len(node) == 1 and set(node) <= {"list", "tuple"}:
        kind, items = next(iter(node.items()))
        if not isinstance(items, list):
            raise ValueError("field training.optimizer.tree is malformed")
        built = [_untree(n, tensors, dtype_name, placed, seen) for n in items]
        return built if kind == "list" else tuple(built)
    if not is_int(node) or f"{PREFIX}optimizer.{node}" not in tensors:
        raise ValueError(f"field training.optimizer.tree names a missing tensor {node!r}")
    host = tensors[f"{PREFIX}optimizer.{node}"]
    if host.dtype.name != dtype_name:
        raise ValueError(
            f"tensor {PREFIX}optimizer.{node} has dtype {host.dtype.name}, not {dtype_name}"
        )
    seen.append(int(node))
    return placed(host)


def _indices(tensors: dict, name: str) -> np.ndarray | None:
    a = tensors.get(f"{PREFIX}{name}")
    if a is None:
        return None
    if a.dtype != np.int64 or a.ndim != 1:
        raise ValueError(f"tensor {PREFIX}{name} must be a 1-D int64 array")
    return a


def _rng(raw: Any) -> Any:
    if raw is None:
        return None
    if not isinstance(raw, dict) or set(raw) != {"kind", "state"}:
        raise ValueError("field training.rng must hold kind and state")
    try:
        if raw["kind"] == "RandomState":
            name, keys, pos, has_gauss, cached = raw["state"]
            rng = np.random.RandomState()
            rng.set_state((name, np.asarray(keys, dtype=np.uint32), pos, has_gauss, cached))
            return rng
        if raw["kind"] == "Generator":
            state = raw["state"]
            if state["bit_generator"] not in _BIT_GENERATORS:
                raise ValueError(f"unknown bit generator {state['bit_generator']!r}")
            bit = getattr(np.random, state["bit_generator"])()
            bit.state = state
            return np.random.Generator(bit)
    except (TypeError, ValueError, KeyError, IndexError, AttributeError, OverflowError) as exc:
        raise ValueError(f"field training.rng holds no valid generator state ({exc})") from None
    raise ValueError(
        f"field training.rng.kind must be RandomState or Generator; got {raw['kind']!r}"
    )


def _key(raw: Any) -> Any:
    if raw is None:
        return None
    if not (isinstance(raw, list) and len(raw) == 2 and all(is_int(v) for v in raw)):
        raise ValueError(f"field training.random_key must be two integers; got {raw!r}")
    return (int(raw[0]), int(raw[1]))
