"""Input checks shared by the public entry points: each error names the argument,
what was expected and what was received.

Imports :mod:`backendnn._backend` only (and NumPy, for pandas' dtypes on the host).
"""

from __future__ import annotations

import numbers
from typing import Any

import numpy as np

from ._backend import (
    array_namespace,
    device,
    has_64bit,
    is_array,
    to_backend,
    to_numpy,
)
from ._warnings import warn

try:  # scikit-learn is optional; where installed, its tools recognise our exceptions
    from sklearn.exceptions import DataConversionWarning
    from sklearn.exceptions import NotFittedError as _SklearnNotFitted

    _NOT_FITTED_BASES: tuple[type, ...] = (_SklearnNotFitted,)
except ImportError:  # pragma: no cover - depends on the environment
    DataConversionWarning = UserWarning  # type: ignore[misc,assignment]
    _NOT_FITTED_BASES = (ValueError, AttributeError)


class NotFittedError(*_NOT_FITTED_BASES):  # type: ignore[misc]
    """An estimator was used before ``fit``: a ``ValueError`` and an ``AttributeError``
    (a subclass of scikit-learn's ``NotFittedError`` where it is installed)."""


def resolve_array(X: Any, backend: str | None, name: str = "X") -> tuple[Any, Any, Any]:
    """``(xp, device, X)`` where the computation runs: backend ``backend`` if given
    (``X`` moved there once), else where ``X`` lives; lists, scalars and DataFrames become
    NumPy (:func:`host_array`). Objects holding numbers become float64 (None, missing, NaN);
    any other object is a ``TypeError`` naming a DataFrame's columns that are not numbers."""
    host = X if is_array(X) else host_array(X, name)
    if getattr(host.dtype, "kind", None) == "O":
        try:
            host = host.astype("float64")
        except (TypeError, ValueError) as exc:
            columns = zip(getattr(X, "columns", ()), getattr(X, "dtypes", ()))
            bad = [f"{c!r} ({d})" for c, d in columns if d.kind not in "iufb"]
            hint = f"; its columns {', '.join(bad)} are not numeric" if bad else ""
            raise TypeError(
                f"{name} must hold numbers ({exc}){hint}: encode categories as numbers "
                "first, e.g. with scikit-learn's OrdinalEncoder or OneHotEncoder"
            ) from exc
    if backend is not None:
        host = to_backend(host, backend)
    xp = array_namespace(host)
    return xp, device(host), host


def host_array(data: Any, name: str) -> Any:
    """``data`` (an array, nested lists, a number, a pandas DataFrame or Series) as a
    NumPy array on the host, converted as scikit-learn's ``check_array`` converts it:
    pandas columns (a Series is one) of numeric dtypes (float, int, bool) take their
    common type; nullable ones (``Float64``, ``Int64``, ``boolean``) make float64, each
    missing value (``pd.NA``) a NaN; in columns of other dtypes a missing value is None.
    A ``TypeError`` for a scipy.sparse matrix (dense data is required) or ragged lists."""
    if type(data).__module__.startswith("scipy.sparse"):
        raise TypeError(
            f"Sparse data was passed for {name}, but dense data is required: convert it "
            f"with {name}.toarray()"
        )
    pandas = not is_array(data) and hasattr(data, "to_numpy")
    # a DataFrame's column dtypes, a Series' (or pandas array's) one dtype
    dtypes: list[Any] = (
        list(data.dtypes) if pandas and hasattr(data, "columns") else [getattr(data, "dtype", None)]
    )
    if pandas and dtypes and all(hasattr(d, "kind") for d in dtypes):
        if all(d.kind in "iufb" for d in dtypes):
            if all(isinstance(d, np.dtype) for d in dtypes):
                return data.to_numpy(dtype=np.result_type(*dtypes))
            return data.to_numpy(dtype="float64", na_value=float("nan"))
        host = to_numpy(data)
        return data.to_numpy(dtype=object, na_value=None) if host.dtype.kind == "O" else host
    try:
        return to_numpy(data)
    except ValueError as exc:  # ragged nested lists
        raise TypeError(f"{name} must be an array or nested sequence of numbers: {exc}") from exc


def check_target(y: Any) -> Any:
    """Targets ``y`` as given to ``fit``: an array of a supported library as it is,
    anything else (nested lists, a pandas Series or DataFrame) as a NumPy host array
    (:func:`host_array`; labels may be strings there). A ``TypeError`` for sparse ``y``,
    a ``ValueError`` for a scalar or complex numbers."""
    host = y if is_array(y) else host_array(y, "y")
    if host.ndim == 0:
        raise ValueError(f"y must be an array of targets, one per sample; got a scalar {y!r}")
    check_real(host, "y")
    return host


def check_real(x: Any, name: str) -> None:
    """Raise scikit-learn's ``ValueError`` for an array ``x`` of complex numbers."""
    if array_namespace(x).isdtype(x.dtype, "complex floating"):
        raise ValueError(
            f"Complex data not supported: {name} has dtype {x.dtype}; pass real numbers"
        )


def float_dtype(xp: Any, requested: Any, X: Any) -> Any:
    """The floating dtype to compute in: ``requested`` ("float32"/"float64" or a dtype
    of either name) or, if None, float64 for float64 input and float32 otherwise.
    A requested float64 where the library has none (JAX without 64-bit) is float32, with
    a warning (once) that says how to enable 64-bit types."""
    if requested is None:
        return xp.float64 if X.dtype == xp.float64 else xp.float32
    text = str(getattr(requested, "__name__", requested))
    for name in ("float32", "float64"):
        if text.endswith(name):
            if name == "float64" and not has_64bit(xp):
                warn_no_64bit()
                return xp.float32
            return getattr(xp, name)
    raise ValueError(f"dtype must be None, 'float32' or 'float64'; got {requested!r}")


def dtype_name(dtype: Any) -> str:
    """The plain name of a dtype of any library: NumPy's class, torch.float32, ... -> "float32"."""
    text = str(getattr(dtype, "__name__", None) or dtype)
    return text.rsplit(".", 1)[-1].strip("'>")


_warned_64bit: list[bool] = []


def warn_no_64bit() -> None:
    """Warn, once per process, that float64 was asked for where JAX computes float32."""
    if not _warned_64bit:
        _warned_64bit.append(True)
        warn(
            "float64 was requested but JAX runs without 64-bit types, so float32 is used; "
            "set the environment variable JAX_ENABLE_X64=1 (or call "
            "jax.config.update('jax_enable_x64', True)) before creating any JAX array",
            UserWarning,
        )


def check_X(
    X: Any, xp: Any, dtype: Any, *, name: str = "X", min_samples: int = 1, signals: bool = False
) -> Any:
    """A finite, real, non-empty array of 2 (samples, features) or 4 (N, C, H, W)
    dimensions (or 3, (N, C, L) signals, where ``signals``), cast to ``dtype`` (integers
    and booleans convert, as scikit-learn does)."""
    check_real(X, name)
    if not (xp.isdtype(X.dtype, "numeric") or X.dtype == xp.bool):
        raise TypeError(f"{name} must hold numbers; got an array of dtype {X.dtype}")
    if X.ndim not in ((2, 3, 4) if signals else (2, 4)):
        raise ValueError(
            f"{name} must be 2-D (n_samples, n_features) or 4-D (N, C, H, W) images"
            + (" or 3-D (N, C, L) signals" if signals else "")
            + "; got "
            f"{X.ndim}-D with shape {tuple(X.shape)}"
            + (
                ". Reshape your data either using X.reshape(-1, 1) if it has a single feature "
                "or X.reshape(1, -1) if it is a single sample"
                if X.ndim == 1
                else ""
            )
        )
    n = X.shape[0]
    if n < min_samples:
        raise ValueError(
            f"Found array with {n} sample(s) (shape={tuple(X.shape)}) while a minimum of "
            f"{min_samples} is required: {name} is empty"
        )
    if any(d == 0 for d in X.shape[1:]):
        raise ValueError(
            f"Found array with 0 feature(s) (shape={tuple(X.shape)}) while a minimum of 1 is "
            f"required: {name} has no features"
        )
    source = X
    X = xp.astype(X, dtype, copy=False)
    # one reduction first (no temporary as large as X); the full check only if it fails,
    # since a sum can also overflow on finite data
    if not bool(xp.isfinite(xp.sum(X))) and not bool(xp.all(xp.isfinite(X))):
        check_finite(source, xp, dtype, name)
    return X


def check_finite(source: Any, xp: Any, dtype: Any, name: str) -> None:
    """Raise the ``ValueError`` that says why ``source`` cast to ``dtype`` is not finite:
    NaN or infinity in the data itself, or finite values too large for ``dtype``."""
    if xp.isdtype(source.dtype, "real floating") and not bool(xp.all(xp.isfinite(source))):
        raise ValueError(f"{name} contains NaN or infinity; remove or impute those values first")
    largest = float(xp.max(xp.abs(xp.astype(source, xp.float64)))) if has_64bit(xp) else None
    raise ValueError(
        f"{name} is finite but overflows {dtype_name(dtype)}"
        + (f" (its largest magnitude is {largest:.3g})" if largest is not None else "")
        + ": scale it, or pass dtype='float64'"
    )


def column_or_1d(y: Any) -> Any:
    """A (n, 1) host target as (n,), with scikit-learn's ``DataConversionWarning``."""
    if y.ndim == 2 and y.shape[1] == 1:
        warn(
            "A column-vector y was passed when a 1d array was expected; use y.ravel()",
            DataConversionWarning,
        )
        return y[:, 0]
    return y


def check_lengths(X: Any, y: Any) -> None:
    if y.shape[0] != X.shape[0]:
        raise ValueError(
            f"X and y have different numbers of samples: X has {X.shape[0]}, y has {y.shape[0]}"
        )


def check_sample_weight(sample_weight: Any, n_samples: int) -> Any:
    """``sample_weight`` as a host float64 array of shape (n_samples,), or None.

    A number weighs every sample alike (scikit-learn's convention). The weights must be
    finite and non-negative with a positive sum: a negative weight would ascend the loss,
    and weights summing to zero leave the weighted mean undefined.
    """
    if sample_weight is None:
        return None
    if is_real(sample_weight):
        sample_weight = [float(sample_weight)] * n_samples
    host = host_array(sample_weight, "sample_weight")
    check_real(host, "sample_weight")
    if host.dtype.kind not in "iufb":
        try:
            host = host.astype("float64")
        except (TypeError, ValueError):
            raise ValueError(
                f"sample_weight must hold real numbers; got dtype {host.dtype}"
            ) from None
    host = host.astype("float64")
    if host.ndim != 1:
        raise ValueError(
            f"sample_weight must be 1-D, one weight per sample; got shape {host.shape}"
        )
    if host.shape[0] != n_samples:
        raise ValueError(f"sample_weight has {host.shape[0]} weights but X has {n_samples} samples")
    if not bool((host == host).all()) or not bool(abs(host).max() < float("inf")):
        raise ValueError("sample_weight contains NaN or infinity")
    if bool((host < 0).any()):
        raise ValueError("sample_weight contains negative weights; weights must be >= 0")
    if not float(host.sum()) > 0:
        raise ValueError("sample_weight sums to zero: at least one sample needs a positive weight")
    return host


def feature_names(X: Any) -> tuple[str, ...] | None:
    """The column names of a DataFrame ``X`` when all are strings (scikit-learn's
    ``feature_names_in_``); None for arrays and for integer column names.
    ``TypeError`` for a mix of strings and other names."""
    columns = getattr(X, "columns", None)
    if columns is None or is_array(X):
        return None
    names = list(columns)
    kinds = {isinstance(c, str) for c in names}
    if kinds == {True}:
        return tuple(str(c) for c in names)
    if kinds == {True, False}:
        raise TypeError(
            "Feature names are only supported if all input features have string names, "
            f"but X has feature names of types {sorted({type(c).__name__ for c in names})}; "
            "convert them all to strings, e.g. X.columns = X.columns.astype(str)"
        )
    return None


def check_feature_names(owner: Any, X: Any) -> None:
    """scikit-learn's check of the feature names of ``X`` at prediction against those
    seen in ``fit``: different names or order is a ``ValueError``; names on one side only
    a ``UserWarning``."""
    fitted = getattr(owner, "feature_names_in_", None)
    names = feature_names(X)
    kind = type(owner).__name__
    if fitted is None and names is not None:
        warn(f"X has feature names, but {kind} was fitted without feature names", UserWarning)
    elif fitted is not None and names is None:
        warn(
            f"X does not have valid feature names, but {kind} was fitted with feature names",
            UserWarning,
        )
    elif fitted is not None and names is not None and tuple(fitted) != names:
        unseen = sorted(set(names) - set(fitted))
        missing = sorted(set(fitted) - set(names))
        message = "The feature names should match those that were passed during fit.\n"
        for title, group in (
            ("Feature names unseen at fit time:", unseen),
            ("Feature names seen at fit time, yet now missing:", missing),
        ):
            if group:
                message += title + "\n" + "".join(f"- {n}\n" for n in group[:5])
                message += "- ...\n" if len(group) > 5 else ""
        if not unseen and not missing:
            message += "Feature names must be in the same order as they were in fit.\n"
        raise ValueError(message)


def check_param(name: str, value: Any, ok: bool, expected: str) -> None:
    """Raise a ``ValueError`` naming hyper-parameter ``name`` unless ``ok``."""
    if not ok:
        raise ValueError(f"{name} must be {expected}; got {value!r}")


def is_real(value: Any) -> bool:
    return isinstance(value, numbers.Real) and not isinstance(value, bool)


def is_int(value: Any) -> bool:
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)


# ---------------------------------------------------------------------- parameter tables
#
# Each estimator declares its hyper-parameters (and the fitted attributes it saves) in
# one table of constraints, as scikit-learn's ``_parameter_constraints``: the same table
# validates ``fit``'s parameters, writes them to a model file and checks them on load.


class Constraint:
    """A rule a value must satisfy, with its JSON form for model files.

    ``expected`` completes "must be ..." in error messages. ``to_json`` gives the value's
    JSON form (raising ``ValueError`` for a value a file cannot hold); ``from_json``
    checks a JSON value and rebuilds the Python one (``ValueError`` if it does not fit).
    """

    expected = "valid"

    def ok(self, value: Any) -> bool:
        raise NotImplementedError

    def to_json(self, value: Any) -> Any:
        return value

    def from_json(self, raw: Any) -> Any:
        if not self.ok(raw):
            raise ValueError(f"must be {self.expected}; got {raw!r}")
        return raw


class Interval(Constraint):
    """A real (``integer=False``) or integer number in [low, high] (None: unbounded);
    ``closed`` says which ends belong: "both", "left", "right" or "neither"."""

    def __init__(
        self,
        low: float | None,
        high: float | None,
        *,
        integer: bool = False,
        closed: str = "both",
    ):
        self.low, self.high, self.integer, self.closed = low, high, integer, closed
        kind = "an integer" if integer else "a number"
        lo = "" if low is None else (f">= {low}" if closed in ("both", "left") else f"> {low}")
        hi = "" if high is None else (f"<= {high}" if closed in ("both", "right") else f"< {high}")
        self.expected = " ".join([kind] + [" and ".join(b for b in (lo, hi) if b)]).strip()

    def ok(self, value: Any) -> bool:
        if not (is_int(value) if self.integer else is_real(value)) or value != value:
            return False
        if self.low is not None and not (
            value >= self.low if self.closed in ("both", "left") else value > self.low
        ):
            return False
        return self.high is None or (
            value <= self.high if self.closed in ("both", "right") else value < self.high
        )

    def to_json(self, value: Any) -> Any:
        return int(value) if self.integer else float(value)

    def from_json(self, raw: Any) -> Any:
        if not self.integer and is_int(raw):
            try:
                raw = float(raw)
            except OverflowError:
                raise ValueError(f"must be {self.expected}; got an integer too large") from None
        return super().from_json(raw)


class Options(Constraint):
    """One of a few values (strings, None, booleans)."""

    def __init__(self, *values: Any):
        self.values = values
        self.expected = "one of " + ", ".join(map(repr, values))

    def ok(self, value: Any) -> bool:
        return any(value is v or (_kind(value) is _kind(v) and value == v) for v in self.values)

    def to_json(self, value: Any) -> Any:
        return str(value) if isinstance(value, str) else value


def _kind(value: Any) -> type:
    """str for any string (NumPy's str_ from a grid of options too), else the type."""
    return str if isinstance(value, str) else type(value)


class Boolean(Constraint):
    """True or False (NumPy's bool_ too)."""

    expected = "True or False"

    def ok(self, value: Any) -> bool:
        return type(value).__name__ in ("bool", "bool_")

    def to_json(self, value: Any) -> Any:
        return bool(value)


class Text(Constraint):
    """A string."""

    expected = "a string"

    def ok(self, value: Any) -> bool:
        return isinstance(value, str)

    def to_json(self, value: Any) -> Any:
        return str(value)


class AnyOf(Constraint):
    """A value satisfying any of ``constraints`` (the first that accepts it serialises it)."""

    def __init__(self, *constraints: Constraint):
        self.constraints = constraints
        self.expected = " or ".join(c.expected for c in constraints)

    def ok(self, value: Any) -> bool:
        return any(c.ok(value) for c in self.constraints)

    def to_json(self, value: Any) -> Any:
        return next(c for c in self.constraints if c.ok(value)).to_json(value)

    def from_json(self, raw: Any) -> Any:
        for c in self.constraints:
            try:
                return c.from_json(raw)
            except ValueError:
                continue
        raise ValueError(f"must be {self.expected}; got {raw!r}")


class SequenceOf(Constraint):
    """A list or tuple of values each satisfying ``item`` (stored as a JSON list; loaded
    as a tuple, or a list with ``as_list``); ``length`` fixes its length."""

    def __init__(self, item: Constraint, *, length: int | None = None, as_list: bool = False):
        self.item, self.length, self.as_list = item, length, as_list
        size = "" if length is None else f"{length} "
        self.expected = f"a sequence of {size}values each {item.expected}"

    def ok(self, value: Any) -> bool:
        return (
            isinstance(value, (list, tuple))
            and (self.length is None or len(value) == self.length)
            and all(self.item.ok(v) for v in value)
        )

    def to_json(self, value: Any) -> Any:
        return [self.item.to_json(v) for v in value]

    def from_json(self, raw: Any) -> Any:
        if not isinstance(raw, list) or (self.length is not None and len(raw) != self.length):
            raise ValueError(f"must be {self.expected}; got {raw!r}")
        items = [self.item.from_json(v) for v in raw]
        return items if self.as_list else tuple(items)


POSITIVE_INT = Interval(1, None, integer=True)
#: scikit-learn's ``verbose`` (a boolean or a non-negative integer: one line per epoch on
#: stdout), or "progress" (a tqdm progress bar)
VERBOSE = AnyOf(Boolean(), Interval(0, None, integer=True), Options("progress"))


def validate_params(owner: Any, table: dict[str, Constraint]) -> None:
    """Raise a ``ValueError`` naming the first hyper-parameter of ``owner`` that breaks
    its constraint in ``table``."""
    for name, constraint in table.items():
        value = getattr(owner, name)
        check_param(name, value, constraint.ok(value), constraint.expected)
