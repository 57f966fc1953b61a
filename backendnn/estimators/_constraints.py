"""Constraints of the estimators' own kinds of parameter (activations, losses,
initialisers, seeds, dtypes, backends, layer sizes and stacks, class labels, solvers), for
their parameter tables.

Each says what it accepts, how a model file writes it and how a file's value is checked
and rebuilt; a value no file can hold (a seeded generator, a custom initialiser function)
is refused at save with a message that says what to pass instead.

Imports :mod:`backendnn.activations`, ``losses``, ``optim``, ``layers``, ``init``, ``_backend``,
``_cache`` and ``_validation``.
"""

from __future__ import annotations

from typing import Any

from .. import activations as _act
from .. import init as _init
from .. import layers as _layers
from .. import losses as _losses
from .. import optim as _optim
from .._backend import BACKENDS, to_numpy
from .._cache import freeze
from .._validation import Constraint, dtype_name, is_int, is_real


class ActivationParam(Constraint):
    """A registered activation name, or an activation object (saved by description)."""

    def __init__(self, gated: bool = True):
        self.gated = gated
        self.expected = f"an activation object or one of {', '.join(_act.names())}" + (
            "" if gated else " (not a GLU gate)"
        )

    def ok(self, value: Any) -> bool:
        try:
            act = _act.get(value)
        except (ValueError, TypeError):
            return False
        return self.gated or not _act.is_gated(act)

    def to_json(self, value: Any) -> Any:
        # a built-in name stands for itself; a name you registered is saved with its class,
        # so a program that registered another class under it cannot load it
        if isinstance(value, str):
            return str(value) if value in _act.BUILTIN else _act.describe(value, name=str(value))
        return _act.describe(value)

    def from_json(self, raw: Any) -> Any:
        act = _act.from_description(raw)
        return str(raw) if isinstance(raw, str) else act


class LossParam(Constraint):
    """One of the estimator's loss ``names``, or a :class:`backendnn.losses.Loss` whose
    ``output`` is one of ``outputs`` (saved by description: its class registered)."""

    def __init__(self, names: tuple[str, ...], outputs: tuple[str, ...]):
        self.names, self.outputs = names, outputs
        self.expected = (
            f"one of {', '.join(map(repr, names))} or a backendnn.losses.Loss object with "
            f"output {' or '.join(map(repr, outputs))}"
        )

    def ok(self, value: Any) -> bool:
        if isinstance(value, _losses.Loss):
            return value.output in self.outputs
        return isinstance(value, str) and value in self.names

    def to_json(self, value: Any) -> Any:
        return str(value) if isinstance(value, str) else _losses.describe(value)

    def from_json(self, raw: Any) -> Any:
        value = _losses.from_description(raw) if isinstance(raw, dict) else raw
        return super().from_json(value)


class SolverParam(Constraint):
    """A solver name, or an optimiser object of :mod:`backendnn.optim` (saved by
    description: its class name and hyper-parameters)."""

    NAMES = ("sgd", "adam", "lbfgs", "gd", "adamw", "rmsprop", "adagrad")
    expected = (
        f"one of {', '.join(map(repr, NAMES))} or an optimiser object of backendnn.optim "
        f"({', '.join(cls.__name__ for cls in _optim.OPTIMIZERS)})"
    )

    def ok(self, value: Any) -> bool:
        if isinstance(value, str):
            return value in self.NAMES
        return type(value) in _optim.OPTIMIZERS

    def to_json(self, value: Any) -> Any:
        return str(value) if isinstance(value, str) else _optim.describe(value)

    def from_json(self, raw: Any) -> Any:
        if isinstance(raw, str):
            return super().from_json(raw)
        try:
            return _optim.from_description(raw)
        except (TypeError, ValueError) as exc:
            raise ValueError(f"must be {self.expected}; got {raw!r} ({exc})") from None


class InitParam(Constraint):
    """None (the estimator's default), a registered initialiser name, or a function."""

    expected = f"None, a callable or one of {', '.join(_init.names())}"

    def ok(self, value: Any) -> bool:
        return value is None or callable(value) or value in _init.names()

    def to_json(self, value: Any) -> Any:
        if callable(value):
            raise ValueError(
                f"a custom initialiser {value!r} cannot be written to a file; pass one of "
                f"{', '.join(_init.names())} or None"
            )
        return value

    def from_json(self, raw: Any) -> Any:
        if raw is not None and (not isinstance(raw, str) or raw not in _init.names()):
            raise ValueError(f"must be {self.expected}; got {raw!r}")
        return raw


class ScoringParam(Constraint):
    """None (the estimator's score), a scikit-learn scorer name, or a callable
    ``scorer(estimator, X, y)``."""

    expected = "None, a scikit-learn scorer name (sklearn.metrics.get_scorer_names()) or a callable"

    def ok(self, value: Any) -> bool:
        if value is None or callable(value):
            return True
        if not isinstance(value, str):
            return False
        try:
            from sklearn.metrics import get_scorer_names
        except ImportError:  # pragma: no cover - scikit-learn is what scores by name
            return False
        return value in get_scorer_names()

    def to_json(self, value: Any) -> Any:
        if callable(value):
            raise ValueError(
                f"a scorer function {value!r} cannot be written to a file; use a scorer name "
                "(sklearn.metrics.get_scorer_names()) or None"
            )
        return value


class SeedParam(Constraint):
    """None, an integer, or a NumPy random generator (``RandomState`` or ``Generator``)."""

    expected = "None, an integer or a numpy.random.RandomState/Generator"

    def ok(self, value: Any) -> bool:
        return (
            value is None or is_int(value) or type(value).__name__ in ("RandomState", "Generator")
        )

    def to_json(self, value: Any) -> Any:
        if value is not None and not is_int(value):
            raise ValueError(
                f"random_state={value!r} holds a generator's state, which a file does not "
                "keep; set random_state to an integer (or None) before saving"
            )
        return None if value is None else int(value)

    def from_json(self, raw: Any) -> Any:
        if raw is not None and not is_int(raw):
            raise ValueError(f"must be None or an integer; got {raw!r}")
        return raw


class DtypeParam(Constraint):
    """None, "float32", "float64", or a dtype of either name from any library."""

    expected = "None, 'float32' or 'float64'"

    @staticmethod
    def _name(value: Any) -> str | None:
        name = dtype_name(value)
        return name if name in ("float32", "float64") else None

    def ok(self, value: Any) -> bool:
        return value is None or self._name(value) is not None

    def to_json(self, value: Any) -> Any:
        return None if value is None else self._name(value)

    def from_json(self, raw: Any) -> Any:
        if raw not in (None, "float32", "float64"):
            raise ValueError(f"must be {self.expected}; got {raw!r}")
        return raw


class BackendParam(Constraint):
    expected = f"None or one of {', '.join(BACKENDS)}"

    def ok(self, value: Any) -> bool:
        return value is None or value in BACKENDS


class LayerSizes(Constraint):
    """A positive integer or a sequence of them (saved as a list, loaded as a tuple)."""

    expected = "a positive integer or a sequence of positive integers"

    def ok(self, value: Any) -> bool:
        if is_int(value):
            return value > 0
        if not isinstance(value, (list, tuple)) and getattr(value, "ndim", None) != 1:
            return False  # a generator would be used up by this check
        return all(is_int(h) and h > 0 for h in value)

    def to_json(self, value: Any) -> Any:
        return int(value) if is_int(value) else [int(h) for h in value]

    def from_json(self, raw: Any) -> Any:
        if not self.ok(raw) or not isinstance(raw, (int, list)):
            raise ValueError(f"must be {self.expected}; got {raw!r}")
        return raw if isinstance(raw, int) else tuple(raw)


class ClassLabels(Constraint):
    """A 1-D NumPy array of distinct class labels (numbers, booleans or strings), saved
    as its values and its dtype."""

    expected = "a list of distinct labels with a NumPy dtype of numbers or strings"

    def ok(self, value: Any) -> bool:
        return getattr(value, "ndim", None) == 1 and value.dtype.kind in "iufbU"

    def to_json(self, value: Any) -> Any:
        host = to_numpy(value)
        if host.dtype.kind not in "iufbU":
            raise ValueError(
                f"class labels of dtype {host.dtype} cannot be written to a file; use "
                "numbers or str labels"
            )
        return {"values": host.tolist(), "dtype": host.dtype.str}

    def from_json(self, raw: Any) -> Any:
        if not isinstance(raw, dict) or set(raw) != {"values", "dtype"}:
            raise ValueError(f"must be {{'values': [...], 'dtype': ...}}; got {raw!r}")
        values, dtype = raw["values"], raw["dtype"]
        if not isinstance(values, list) or not isinstance(dtype, str):
            raise ValueError(f"must be a list of labels and a dtype string; got {raw!r}")
        try:
            host = to_numpy(values).astype(dtype)
        except (TypeError, ValueError, OverflowError) as exc:
            raise ValueError(f"labels {values!r} do not fit dtype {dtype!r}: {exc}") from None
        if host.ndim != 1 or host.dtype.kind not in "iufbU" or len(set(host.tolist())) != len(host):
            raise ValueError(f"must be {self.expected}; got {raw!r}")
        if host.tolist() != values:
            raise ValueError(f"labels {values!r} change when cast to dtype {dtype!r}")
        return host


class LayerStack(Constraint):
    """A list of layers of :mod:`backendnn.layers`, saved as each layer's class name and
    constructor arguments (its ``config()``; nested layers, as a Residual's, nested); a
    layer a file cannot rebuild exactly (a class of your own) is refused at save."""

    expected = "a list of backendnn.layers objects"

    def ok(self, value: Any) -> bool:
        return isinstance(value, (list, tuple)) and all(isinstance(v, _layers.Layer) for v in value)

    def to_json(self, value: Any) -> Any:
        return [_describe_layer(layer) for layer in value]

    def from_json(self, raw: Any) -> Any:
        if not isinstance(raw, list):
            raise ValueError(f"must be a list of layer descriptions; got {raw!r}")
        return [_build_layer(spec) for spec in raw]


def _describe_layer(layer: Any) -> dict[str, Any]:
    cls = type(layer)
    if getattr(_layers, cls.__name__, None) is not cls:
        raise ValueError(
            f"layer {layer!r} of class {cls.__module__}.{cls.__qualname__} cannot be written "
            "to a file: only the layers of backendnn.layers can"
        )
    spec: dict[str, Any] = {"layer": cls.__name__}
    spec.update({name: _to_json(value) for name, value in layer.config().items()})
    if freeze(_build_layer(spec)) != freeze(layer):
        raise ValueError(f"layer {layer!r} cannot be rebuilt from its arguments {spec}")
    return spec


def _to_json(value: Any) -> Any:
    """A constructor argument as JSON: activations as descriptions, layers as layer
    descriptions, tuples and lists as lists."""
    if isinstance(value, (_act.Activation, _act.GLU)):
        return _act.describe(value)
    if isinstance(value, _layers.Layer):
        return _describe_layer(value)
    if isinstance(value, (tuple, list)):
        return [_to_json(v) for v in value]
    return value


#: how deep layer descriptions may nest in a file (Residual blocks in Residual blocks): a
#: hostile file must get a ValueError, not Python's RecursionError
MAX_NESTING = 32


def _from_json(value: Any, depth: int) -> Any:
    if isinstance(value, dict):
        if "layer" in value:
            return _build_layer(value, depth + 1)
        return _act.from_description(value)
    if isinstance(value, list):
        items = [_from_json(v, depth) for v in value]
        # a list of layers stays a list (Residual's blocks); sizes and pairs become tuples
        return items if any(isinstance(v, _layers.Layer) for v in items) else tuple(items)
    return value


def _build_layer(spec: Any, depth: int = 0) -> Any:
    if not isinstance(spec, dict) or not isinstance(spec.get("layer"), str):
        raise ValueError(f"a layer description is a dict with 'layer'; got {spec!r}")
    if depth > MAX_NESTING:
        raise ValueError(f"layer descriptions nest more than {MAX_NESTING} levels deep")
    cls = getattr(_layers, spec["layer"], None)
    if cls is None or spec["layer"] not in _layers.__all__ or spec["layer"] == "Layer":
        raise ValueError(f"unknown layer {spec['layer']!r}")
    kwargs = {name: _from_json(value, depth) for name, value in spec.items() if name != "layer"}
    try:
        layer = cls(**kwargs)
    except (TypeError, ValueError, OverflowError) as exc:
        raise ValueError(f"layer {spec!r}: {exc}") from None
    # arguments a file leaves out (written before they existed) take their defaults
    again = {name: _to_json(value) for name, value in layer.config().items()}
    given = {k: v for k, v in spec.items() if k != "layer"}
    if {k: again.get(k) for k in given} != given:
        raise ValueError(f"layer {spec!r} does not describe itself the same once built")
    return layer


class ClassWeightParam(Constraint):
    """None, ``"balanced"`` or a dict {class label: weight}; a model file holds a dict as
    its labels (as ``classes_`` is held) and its weights."""

    expected = "None, 'balanced' or a dict {class label: weight}"

    def ok(self, value: Any) -> bool:
        if value is None or (isinstance(value, str) and value == "balanced"):
            return True
        return isinstance(value, dict) and all(is_real(v) for v in value.values())

    def to_json(self, value: Any) -> Any:
        if not isinstance(value, dict):
            return value
        host = to_numpy(list(value))
        if host.tolist() != list(value):  # labels of two kinds become strings: refuse
            raise ValueError(
                f"class_weight labels {list(value)!r} are not all of one kind (numbers or "
                "strings); a file holds labels of one kind"
            )
        labels = ClassLabels().to_json(host)
        return {"labels": labels, "weights": [float(v) for v in value.values()]}

    def from_json(self, raw: Any) -> Any:
        if not isinstance(raw, dict):
            return super().from_json(raw)
        if set(raw) != {"labels", "weights"} or not isinstance(raw["weights"], list):
            raise ValueError(f"must be {{'labels': ..., 'weights': [...]}}; got {raw!r}")
        labels = ClassLabels().from_json(raw["labels"]).tolist()
        if len(labels) != len(raw["weights"]) or not all(is_real(w) for w in raw["weights"]):
            raise ValueError(f"must be one number per label; got {raw!r}")
        return dict(zip(labels, raw["weights"]))
