"""Input checks shared by the public entry points: each error names the argument,
what was expected and what was received."""

from __future__ import annotations

import numbers
import warnings
from typing import Any

from ._backend import array_namespace, device, is_array, namespace, to_backend, to_numpy

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
    (``X`` moved there once), else where ``X`` lives; lists and scalars become NumPy."""
    if "scipy.sparse" in type(X).__module__:
        raise TypeError(
            f"{name} is a sparse matrix; sparse input is not supported: use {name}.toarray()"
        )
    if getattr(getattr(X, "dtype", None), "kind", None) == "O":  # NumPy objects holding numbers
        X = X.astype("float64")  # raises TypeError naming any element that is not a number
    if backend is not None:
        X = to_backend(X, backend)
    elif not is_array(X):
        xp = namespace("numpy")
        try:
            X = xp.asarray(to_numpy(X))
        except (TypeError, ValueError) as exc:
            raise TypeError(
                f"{name} must be an array or nested sequence of numbers: {exc}"
            ) from exc
    xp = array_namespace(X)
    return xp, device(X), X


def float_dtype(xp: Any, requested: Any, X: Any) -> Any:
    """The floating dtype to compute in: ``requested`` ("float32"/"float64" or a dtype
    of either name) or, if None, float64 for float64 input and float32 otherwise."""
    if requested is None:
        return xp.float64 if X.dtype == xp.float64 else xp.float32
    text = str(getattr(requested, "__name__", requested))
    for name in ("float32", "float64"):
        if text.endswith(name):
            return getattr(xp, name)
    raise ValueError(f"dtype must be None, 'float32' or 'float64'; got {requested!r}")


def check_X(X: Any, xp: Any, dtype: Any, *, name: str = "X", min_samples: int = 1) -> Any:
    """A finite, real, non-empty array of 2 (samples, features) or 4 (N, C, H, W)
    dimensions, cast to ``dtype`` (integers and booleans convert, as scikit-learn does)."""
    if xp.isdtype(X.dtype, "complex floating"):
        raise ValueError(
            f"Complex data not supported: {name} has dtype {X.dtype}; pass real numbers"
        )
    if not (xp.isdtype(X.dtype, "numeric") or X.dtype == xp.bool):
        raise TypeError(f"{name} must hold numbers; got an array of dtype {X.dtype}")
    if X.ndim not in (2, 4):
        raise ValueError(
            f"{name} must be 2-D (n_samples, n_features) or 4-D (N, C, H, W) images; got "
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
    X = xp.astype(X, dtype, copy=False)
    # one reduction first (no temporary as large as X); the full check only if it fails,
    # since a sum can also overflow on finite data
    if not bool(xp.isfinite(xp.sum(X))) and not bool(xp.all(xp.isfinite(X))):
        raise ValueError(f"{name} contains NaN or infinity; remove or impute those values first")
    return X


def column_or_1d(y: Any) -> Any:
    """A (n, 1) host target as (n,), with scikit-learn's ``DataConversionWarning``."""
    if y.ndim == 2 and y.shape[1] == 1:
        warnings.warn(
            "A column-vector y was passed when a 1d array was expected; use y.ravel()",
            DataConversionWarning,
            stacklevel=4,
        )
        return y[:, 0]
    return y


def check_lengths(X: Any, y: Any) -> None:
    if y.shape[0] != X.shape[0]:
        raise ValueError(
            f"X and y have different numbers of samples: X has {X.shape[0]}, y has {y.shape[0]}"
        )


def check_param(name: str, value: Any, ok: bool, expected: str) -> None:
    """Raise a ``ValueError`` naming hyper-parameter ``name`` unless ``ok``."""
    if not ok:
        raise ValueError(f"{name} must be {expected}; got {value!r}")


def is_real(value: Any) -> bool:
    return isinstance(value, numbers.Real) and not isinstance(value, bool)


def is_int(value: Any) -> bool:
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)
