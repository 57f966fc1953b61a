"""scikit-learn's protocol for backendnn's estimators, apart from fitting and prediction:
parameters read from the constructor's signature and validated from one table
(``_parameter_constraints``), ``repr``, tags, pickling, the fields a model file holds
(the constraint tables again; the weights are :mod:`._core`'s weight map),
``available_if``.

Where scikit-learn is installed, :class:`EstimatorProtocol` also derives from its
``BaseEstimator``, for metadata routing (``set_fit_request(sample_weight=True)``) and the
HTML repr; the methods here take precedence over its.

Imports :mod:`backendnn._validation`.
"""

from __future__ import annotations

import functools
import inspect
from typing import Any, ClassVar

from .._validation import AnyOf, Constraint, Interval, Options, SequenceOf, Text, validate_params

#: the fitted attributes every estimator saves (besides its own)
INPUT_ATTRIBUTES: dict[str, Constraint] = {
    "n_features_in_": Interval(1, None, integer=True),
    "image_shape_": AnyOf(
        Options(None),
        SequenceOf(Interval(1, None, integer=True), length=3),  # (C, H, W) images
        SequenceOf(Interval(1, None, integer=True), length=2),  # (C, L) signals (stacks)
    ),
    "n_iter_": Interval(0, None, integer=True),
    "t_": Interval(0, None, integer=True),
    "loss_curve_": SequenceOf(Interval(None, None), as_list=True),
    "_dtype_name": Options("float32", "float64"),
    "_feature_names": AnyOf(Options(None), SequenceOf(Text())),
}


try:  # where scikit-learn is installed: its metadata routing (set_fit_request, ...), HTML repr
    from sklearn.base import BaseEstimator as _SklearnEstimator

    _BASES: tuple[type, ...] = (_SklearnEstimator,)
except ImportError:  # pragma: no cover - depends on the environment
    _BASES = ()


class EstimatorProtocol(*_BASES):  # type: ignore[misc]
    """scikit-learn's estimator protocol (see the module docstring)."""

    _estimator_type: ClassVar[str] = ""
    #: hyper-parameter name -> constraint (validation, model files)
    _parameter_constraints: ClassVar[dict[str, Constraint]] = {}
    #: fitted attribute name -> constraint (model files)
    _fitted_constraints: ClassVar[dict[str, Constraint]] = {}
    _multi_label_tag: ClassVar[bool] = False

    # ------------------------------------------------------------------ parameters

    @classmethod
    def _param_names(cls) -> list[str]:
        sig = inspect.signature(cls.__init__)
        return sorted(p for p in sig.parameters if p != "self")

    def get_params(self, deep: bool = True) -> dict[str, Any]:
        """The hyper-parameters, by name (scikit-learn's protocol)."""
        return {name: getattr(self, name) for name in self._param_names()}

    def set_params(self, **params: Any) -> Any:
        """Set hyper-parameters by name; ``ValueError`` for a name the estimator lacks."""
        valid = self._param_names()
        for key in params:
            if key not in valid:
                raise ValueError(
                    f"invalid parameter {key!r} for {type(self).__name__}; valid: {valid}"
                )
        for key, value in params.items():
            setattr(self, key, value)
        return self

    def _validate_params(self) -> None:
        validate_params(self, self._parameter_constraints)

    def __repr__(self) -> str:
        defaults = inspect.signature(type(self).__init__).parameters
        changed = [
            f"{k}={v!r}"
            for k, v in self.get_params().items()
            if not (k in defaults and _same(defaults[k].default, v))
        ]
        return f"{type(self).__name__}({', '.join(changed)})"

    def __getstate__(self) -> dict:
        state = dict(self.__dict__)
        state.pop("_cache", None)  # moved weights and networks are rebuilt on use
        return state

    def __setstate__(self, state: dict) -> None:
        self.__dict__.update(state)
        self._cache: dict = {}

    def __sklearn_tags__(self) -> Any:
        from sklearn.utils import ClassifierTags, InputTags, RegressorTags, Tags, TargetTags

        classifier = self._estimator_type == "classifier"
        return Tags(
            estimator_type=self._estimator_type,
            target_tags=TargetTags(required=True, multi_output=not classifier),
            classifier_tags=ClassifierTags(multi_label=self._multi_label_tag)
            if classifier
            else None,
            regressor_tags=None if classifier else RegressorTags(),
            input_tags=InputTags(sparse=True),
        )

    # ------------------------------------------------------------------ model files

    def _file_fields(self) -> dict[str, dict[str, Any]]:
        """The hyper-parameters and fitted attributes as JSON, by the constraint tables
        (``ValueError`` naming a value a file cannot hold)."""
        self._check_fitted()
        out: dict[str, dict[str, Any]] = {}
        for section, table in self._file_schema().items():
            out[section] = {}
            for name, constraint in table.items():
                try:
                    out[section][name] = constraint.to_json(getattr(self, name))
                except ValueError as exc:
                    raise ValueError(f"cannot save {name}: {exc}") from None
        return out

    @classmethod
    def _file_schema(cls) -> dict[str, dict[str, Constraint]]:
        """What a model file holds besides the weights: section -> name -> constraint."""
        return {
            "params": cls._parameter_constraints,
            "attributes": {**INPUT_ATTRIBUTES, **cls._fitted_constraints},
        }


class available_if:  # noqa: N801 - a decorator, named as scikit-learn's
    """A method that exists only while ``check(self)`` passes: ``check`` raises
    ``AttributeError`` (with the reason) when it does not, so ``hasattr`` is False
    there -- scikit-learn's ``available_if`` (``partial_fit`` of non-stochastic solvers)."""

    def __init__(self, check: Any):
        self.check = check

    def __call__(self, fn: Any) -> Any:
        self.fn = fn
        functools.update_wrapper(self, fn)  # type: ignore[arg-type]
        return self

    def __get__(self, obj: Any, owner: Any = None) -> Any:
        if obj is None:
            return self.fn
        self.check(obj)
        return self.fn.__get__(obj, owner)


def _same(a: Any, b: Any) -> bool:
    try:
        return bool(a == b) and type(a) is type(b)
    except Exception:
        return a is b
