"""Save and load fitted estimators in a portable file: safetensors, no pickle.

The weights are the tensors (``coefs.0``, ``intercepts.0``, ... or ``coef``,
``intercept``); the hyper-parameters, label classes and fitted attributes are JSON in
the safetensors metadata under the key ``"backendnn"``. A model saved from any backend
loads on any other. ``save`` writes a temporary file beside the target and renames it,
so a crash mid-save leaves the previous file intact.
"""

from __future__ import annotations

import json
import os
import tempfile
from typing import Any

from safetensors import SafetensorError
from safetensors.numpy import load as _st_load
from safetensors.numpy import save as _st_save

from . import activations as _act
from ._backend import default_device, from_numpy, namespace, to_numpy
from .estimators import MLPClassifier, MLPRegressor, Perceptron

FORMAT_VERSION = 1
_CLASSES = {cls.__name__: cls for cls in (MLPClassifier, MLPRegressor, Perceptron)}
_ATTRIBUTES = (
    "n_features_in_",
    "image_shape_",
    "out_activation_",
    "n_outputs_",
    "n_layers_",
    "loss_",
    "best_loss_",
    "n_iter_",
    "t_",
    "loss_curve_",
    "validation_scores_",
    "best_validation_score_",
    "_multilabel",
    "_y_1d",
    "_dtype_name",
    "_fitted_hidden",
    "_n_samples",
)


def _activation_spec(act: Any) -> Any:
    """A JSON form of an activation parameter: its name, with beta for Swish gates."""
    if isinstance(act, str):
        return act
    obj = _act.get(act)
    gate = getattr(obj, "gate", obj)
    spec = {"name": obj.name}
    if isinstance(gate, _act.Swish) and not isinstance(gate, _act.SiLU):
        spec["beta"] = gate.beta
    return spec


def _activation_from_spec(spec: Any) -> Any:
    if isinstance(spec, str):
        _act.get(spec)  # raises ValueError for an unknown name
        return spec
    params = {k: v for k, v in spec.items() if k != "name"}
    return _act.get(spec["name"], **params)


def _jsonable(value: Any) -> Any:
    if isinstance(value, tuple):
        return [_jsonable(v) for v in value]
    if isinstance(value, list):
        return [_jsonable(v) for v in value]
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    return str(value)


def save(model: Any, path: str | os.PathLike) -> None:
    """Write fitted ``model`` (Perceptron, MLPClassifier or MLPRegressor) to ``path``."""
    name = type(model).__name__
    if name not in _CLASSES:
        raise TypeError(f"save expects a backendnn estimator; got {name}")
    model._check_fitted()
    params = {k: _jsonable(v) for k, v in model.get_params().items()}
    if "activation" in params:
        params["activation"] = _activation_spec(model.activation)
    attributes = {k: _jsonable(getattr(model, k)) for k in _ATTRIBUTES if hasattr(model, k)}
    if hasattr(model, "_fitted_activation"):
        attributes["_fitted_activation"] = _activation_spec(model._fitted_activation)
    meta: dict[str, Any] = {
        "format": "backendnn",
        "version": FORMAT_VERSION,
        "estimator": name,
        "params": params,
        "attributes": attributes,
    }
    if hasattr(model, "classes_"):
        classes = to_numpy(model.classes_)
        meta["classes"] = classes.tolist()
        meta["classes_dtype"] = classes.dtype.str
    if isinstance(model, Perceptron):
        tensors = {"coef": model.coef_, "intercept": model.intercept_}
    else:
        tensors = {f"coefs.{i}": c for i, c in enumerate(model.coefs_)}
        tensors.update({f"intercepts.{i}": b for i, b in enumerate(model.intercepts_)})
    # .copy() gives C-contiguous bytes: coef_ may be a transposed view
    host = {k: to_numpy(v).copy() for k, v in tensors.items()}
    data = _st_save(host, metadata={"backendnn": json.dumps(meta)})
    path = os.fspath(path)
    folder = os.path.dirname(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(prefix=".backendnn-", suffix=".tmp", dir=folder)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.remove(tmp)
        raise


def _read(path: str) -> tuple[dict, dict]:
    """The tensors and backendnn metadata of ``path``; ValueError for anything else."""
    with open(path, "rb") as f:
        data = f.read()
    if len(data) < 8:
        raise ValueError(f"{path!r} is not a backendnn model file: only {len(data)} bytes")
    header_len = int.from_bytes(data[:8], "little")
    if header_len > len(data) - 8:
        raise ValueError(
            f"{path!r} is truncated or not a safetensors file: its header claims {header_len} "
            f"bytes but the file has {len(data)}"
        )
    try:
        header = json.loads(data[8 : 8 + header_len])
        tensors = _st_load(data)
    except (SafetensorError, ValueError, UnicodeDecodeError) as exc:
        raise ValueError(f"{path!r} is corrupted or not a safetensors file: {exc}") from None
    raw = header.get("__metadata__", {}).get("backendnn") if isinstance(header, dict) else None
    if raw is None:
        raise ValueError(
            f"{path!r} is a safetensors file but not a backendnn model (no 'backendnn' metadata); "
            "was it written by another program?"
        )
    try:
        meta = json.loads(raw)
    except ValueError as exc:
        raise ValueError(f"{path!r} has damaged backendnn metadata: {exc}") from None
    if meta.get("format") != "backendnn" or meta.get("estimator") not in _CLASSES:
        raise ValueError(f"{path!r}: unknown model kind {meta.get('estimator')!r}")
    if meta.get("version", 0) > FORMAT_VERSION:
        raise ValueError(
            f"{path!r} was written by a newer backendnn (format {meta['version']}); "
            "upgrade backendnn"
        )
    return tensors, meta


def load(path: str | os.PathLike, backend: str | None = None) -> Any:
    """Read a model written by :func:`save`, its weights on ``backend`` (default NumPy).

    Raises ``FileNotFoundError`` for a missing path and ``ValueError`` naming the
    problem for a truncated, corrupted or foreign file; never returns a half-built model.
    """
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise FileNotFoundError(f"no model file at {path!r}")
    tensors, meta = _read(path)
    try:
        cls = _CLASSES[meta["estimator"]]
        params = dict(meta["params"])
        attributes = dict(meta["attributes"])
        if "activation" in params:
            params["activation"] = _activation_from_spec(params["activation"])
        if "_fitted_activation" in attributes:
            attributes["_fitted_activation"] = _activation_from_spec(
                attributes["_fitted_activation"]
            )
        for key in ("hidden_layer_sizes", "_fitted_hidden", "image_shape_"):
            for store in (params, attributes):
                if isinstance(store.get(key), list):
                    store[key] = tuple(store[key])
        model = cls(**params)
        name = backend or "numpy"
        xp = namespace(name)
        dev = default_device(name)
        dtype = getattr(xp, attributes.get("_dtype_name", "float32"))

        def move(key: str) -> Any:
            if key not in tensors:
                raise ValueError(f"{path!r} lacks the tensor {key!r}")
            return from_numpy(tensors[key], xp=xp, device=dev, dtype=dtype)

        if cls is Perceptron:
            arrays = {"coef_": move("coef"), "intercept_": move("intercept")}
        else:
            n = len(attributes["_fitted_hidden"]) + 1
            arrays = {
                "coefs_": [move(f"coefs.{i}") for i in range(n)],
                "intercepts_": [move(f"intercepts.{i}") for i in range(n)],
            }
        if "classes" in meta:
            arrays["classes_"] = to_numpy(meta["classes"]).astype(meta["classes_dtype"])
    except (KeyError, TypeError) as exc:
        raise ValueError(f"{path!r} has incomplete backendnn metadata: {exc!r}") from None
    model.__dict__.update(attributes)
    model.__dict__.update(arrays)
    if not isinstance(model, Perceptron):
        shapes = [tuple(c.shape) for c in model.coefs_]
        expected = [s for layer in model._network().layers for s in layer.param_shapes()[:1]]
        if shapes != expected:
            raise ValueError(
                f"{path!r}: weight shapes {shapes} do not match the network {expected}"
            )
    return model
