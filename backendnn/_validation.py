"""Input checks shared by the public entry points: each error names the argument,
what was expected and what was received."""

from __future__ import annotations

import numbers
from typing import Any

from ._backend import array_namespace, device, is_array, namespace, to_backend, to_numpy


class NotFittedError(ValueError, AttributeError):
    """An estimator was used before ``fit`` (scikit-learn's semantics: both a
    ``ValueError`` and an ``AttributeError``)."""


def resolve_array(X: Any, backend: str | None, name: str = "X") -> tuple[Any, Any, Any]:
    """``(xp, device, X)`` where the computation runs: backend ``backend`` if given
    (``X`` moved there once), else where ``X`` lives; lists and scalars become NumPy."""
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
    if not (xp.isdtype(X.dtype, "numeric") or X.dtype == xp.bool):
        raise TypeError(f"{name} must hold numbers; got an array of dtype {X.dtype}")
    if xp.isdtype(X.dtype, "complex floating"):
        raise TypeError(f"{name} must be real; got complex dtype {X.dtype}")
    if X.ndim not in (2, 4):
        raise ValueError(
            f"{name} must be 2-D (n_samples, n_features) or 4-D (N, C, H, W) images; got "
            f"{X.ndim}-D with shape {tuple(X.shape)}"
            + (". Reshape 1-D data with X.reshape(-1, 1) (one feature)" if X.ndim == 1 else "")
        )
    n = X.shape[0]
    if n < min_samples:
        raise ValueError(f"{name} has {n} sample(s) but at least {min_samples} are needed")
    if any(d == 0 for d in X.shape[1:]):
        raise ValueError(f"{name} has 0 features (shape {tuple(X.shape)}); at least 1 is needed")
    X = xp.astype(X, dtype)
    if not bool(xp.all(xp.isfinite(X))):
        raise ValueError(f"{name} contains NaN or infinity; remove or impute those values first")
    return X


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
