"""Model files: safetensors tensors plus JSON metadata, no pickle.

This module knows the file format only. A file holds the model's weight arrays as
safetensors tensors and, under the metadata key ``"backendnn"``, a JSON object::

    {"format": "backendnn", "version": 6, "estimator": "MLPClassifier",
     "params": {...}, "attributes": {...}}

What goes into ``params`` and ``attributes`` each estimator states itself (its
constraint tables, see :class:`backendnn.estimators.NetworkEstimator`); the tensors are its
weight map, the parameters of its network named ``"layers.{i}.{name}"`` (layer ``i``'s
``W`` or ``b``), with the shapes the network implies. Format 3 files (MLP weights named
``coefs.{k}``/``intercepts.{k}``, the Perceptron's ``coef`` (classes, features) and
``intercept``) are read and renamed on load. :func:`load` checks every field and
tensor against that schema (names, types, ranges, shapes, float dtypes) before it builds
anything, and raises ``ValueError`` naming the file and the field otherwise. A model
saved from any backend loads on any other. :func:`save` writes a temporary file beside
the target and renames it, so a crash mid-save leaves the previous file intact.

Imports :mod:`backendnn._backend` and :mod:`backendnn.estimators` (the registry of
model classes).
"""

from __future__ import annotations

import json
import os
import stat
import tempfile
from typing import Any

from safetensors import SafetensorError
from safetensors.numpy import load as _st_load
from safetensors.numpy import save as _st_save

from ._backend import default_device, from_numpy, has_64bit, namespace, to_numpy
from .estimators import REGISTRY, NetworkEstimator
from .estimators._checkpoint import read_training, training_fields

#: 6: ``validation_loss_curve_``, ``scoring``, ``clip_grad_norm`` (an optimiser object as
#: ``solver`` is its description), the layer stacks' ``loss``, the
#: classifiers' ``label_smoothing`` and, with ``include_optimizer``, the training state;
#: 5 (read too): the layers' buffers (batch norm's running statistics) among the tensors,
#: and the layer stacks' ``output_layer``; 4 (read too): the weights named after the
#: network's layers; 3 (read too): feature names, MLPRegressor's loss, scikit-learn's
#: Perceptron parameters (2 lacks them)
FORMAT_VERSION = 6
#: parameters and fitted attributes added since a format, with the value every older file
#: meant (a dict: by estimator, for those that lacked it)
_ADDED_PARAMS: dict[int, dict[str, Any]] = {
    5: {"output_layer": "append"},
    6: {
        "scoring": None,
        "clip_grad_norm": None,
        "label_smoothing": 0.0,
        "loss": {"NeuralNetClassifier": "log_loss", "NeuralNetRegressor": "squared_error"},
    },
}
_ADDED_ATTRIBUTES: dict[int, dict[str, Any]] = {6: {"validation_loss_curve_": None}}
_OLDEST_READ = 3
_FLOAT_DTYPES = ("float32", "float64")


def save(model: Any, path: str | os.PathLike, *, include_optimizer: bool = False) -> None:
    """Write a fitted backendnn estimator to ``path`` (a safetensors file).

    Parameters
    ----------
    model : MLPClassifier, MLPRegressor, NeuralNetClassifier, NeuralNetRegressor or Perceptron
        A fitted estimator, on any backend.
    path : str or os.PathLike
        The file to write; an existing file is replaced atomically.
    include_optimizer : bool, default=False
        Also write the training state, so that ``fit(X, y, resume=True)`` on the loaded
        model continues the run exactly: the last epoch's weights, the optimiser's
        arrays and update count, the learning-rate schedule, the host generator's state,
        the last epoch order, the dropout key, the epoch count, the curves and the
        early-stopping counters, best weights and split. Without it a loaded model
        predicts, scores and can be trained further with ``warm_start`` or
        ``partial_fit`` (a fresh optimiser), but not resumed.

    Raises
    ------
    TypeError
        If ``model`` is not a backendnn estimator.
    NotFittedError
        If it is not fitted.
    ValueError
        If a parameter cannot be written to a file (a seeded generator, a custom
        initialiser, an unregistered activation); nothing is written then.

    Examples
    --------
    >>> import backendnn as bn, numpy as np, tempfile, os
    >>> X = np.array([[0., 0.], [1., 1.]]); clf = bn.Perceptron().fit(X, [0, 1])
    >>> path = os.path.join(tempfile.mkdtemp(), "model.safetensors")
    >>> bn.save(clf, path); bn.load(path).predict(X).tolist()
    [0, 1]
    """
    if not isinstance(model, NetworkEstimator) or type(model).__name__ not in REGISTRY:
        raise TypeError(
            f"save expects a fitted backendnn estimator ({', '.join(REGISTRY)}); "
            f"got {type(model).__module__}.{type(model).__name__}"
        )
    fields = model._file_fields()
    meta = {"format": "backendnn", "version": FORMAT_VERSION, "estimator": type(model).__name__}
    meta.update(fields)
    # .copy() gives C-contiguous bytes: a weight may be a transposed view
    tensors = {k: to_numpy(v).copy() for k, v in model._weights().items()}
    if include_optimizer:
        meta["training"], training_tensors = training_fields(model)
        tensors.update(training_tensors)
    data = _st_save(tensors, metadata={"backendnn": json.dumps(meta, allow_nan=True)})
    path = os.fspath(path)
    if os.path.isdir(path):
        raise IsADirectoryError(f"cannot save to {path!r}: it is a folder; give a file name")
    folder = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(folder):
        raise FileNotFoundError(f"cannot save to {path!r}: the folder {folder!r} does not exist")
    fd, tmp = tempfile.mkstemp(prefix=".backendnn-", suffix=".tmp", dir=folder)
    try:
        # mkstemp makes a private (0600) file: give it the mode the file has, or the one a
        # new file gets under the umask, before it takes the file's place
        os.fchmod(fd, _file_mode(path))
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.remove(tmp)
        raise


def _file_mode(path: str) -> int:
    """The permission bits of the existing file at ``path``, else 0666 less the umask."""
    try:
        return stat.S_IMODE(os.stat(path).st_mode)
    except FileNotFoundError:
        return 0o666 & ~_umask()


def _umask() -> int:
    """The process umask: read from /proc on Linux (setting it, the only portable way to
    read it, would change it for every thread for a moment)."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except OSError:
        pass
    umask = os.umask(0o022)
    os.umask(umask)
    return umask


def load(path: str | os.PathLike, backend: str | None = None) -> Any:
    """Read a model written by :func:`save`, its weights on ``backend``.

    Parameters
    ----------
    path : str or os.PathLike
        The model file.
    backend : str, optional
        Where the weights go (``"numpy"`` by default; ``"cupy"``, ``"jax"``, ``"torch"``,
        ``"array_api_strict"``); prediction still runs where its input lives.

    Returns
    -------
    The fitted estimator, equal to the one saved.

    Raises
    ------
    FileNotFoundError
        For a missing path.
    ValueError
        For a truncated, corrupted or foreign file, or any field or tensor that does
        not fit the model's schema (the message names the file and the field). No
        half-built model is ever returned.

    Examples
    --------
    >>> import backendnn as bn, numpy as np, tempfile, os
    >>> X = np.array([[0., 0.], [1., 1.]]); y = np.array([0, 1])
    >>> path = os.path.join(tempfile.mkdtemp(), "model.safetensors")
    >>> bn.save(bn.MLPClassifier((3,), max_iter=5).fit(X, y), path)
    >>> model = bn.load(path, backend="numpy")
    >>> model.predict_proba(X).shape
    (2, 2)
    """
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise FileNotFoundError(f"no model file at {path!r}")
    tensors, meta = _read(path)
    cls = REGISTRY[meta["estimator"]]
    fields = {}
    for section, table in cls._file_schema().items():
        values = meta.get(section)
        additions = _ADDED_PARAMS if section == "params" else _ADDED_ATTRIBUTES
        if isinstance(values, dict):
            for version, added in additions.items():
                if meta["version"] < version:
                    meant = _meant(added, meta["estimator"], table)
                    values = {**meant, **values}
        fields[section] = _check_section(path, section, values, table)
    try:
        cls._check_attributes(fields["attributes"])
    except ValueError as exc:
        raise ValueError(f"{path!r}: {exc}") from None
    schema = cls._weight_schema(fields["attributes"])
    training = {k: tensors.pop(k) for k in list(tensors) if k.startswith("training.")}
    if ("training" in meta) != bool(training):
        raise ValueError(f"{path!r}: the training state's metadata and tensors do not match")
    if meta["version"] == 3:
        tensors = _renamed_from_format_3(path, tensors, schema)
    if set(tensors) != set(schema):
        raise ValueError(
            f"{path!r}: tensors {sorted(tensors)} do not match the model's {sorted(schema)}"
        )
    name = backend or "numpy"
    xp, dev = namespace(name), default_device(name)
    weights = {}
    for key, (shape, dtype_name) in schema.items():
        host = tensors[key]
        if host.dtype.name != dtype_name or dtype_name not in _FLOAT_DTYPES:
            raise ValueError(
                f"{path!r}: tensor {key!r} has dtype {host.dtype.name}; the model says "
                f"{dtype_name} (only {', '.join(_FLOAT_DTYPES)} weights are valid)"
            )
        if tuple(host.shape) != tuple(shape):
            raise ValueError(
                f"{path!r}: tensor {key!r} has shape {tuple(host.shape)}; the model's "
                f"attributes need {tuple(shape)}"
            )
        dtype = getattr(xp, dtype_name if has_64bit(xp) else "float32")
        weights[key] = from_numpy(host, xp=xp, device=dev, dtype=dtype)
    model = cls._from_fields(fields, weights)
    if training:
        try:
            state, key = read_training(
                cls, fields["attributes"], meta["training"], training, xp, dev
            )
        except ValueError as exc:
            raise ValueError(f"{path!r}: {exc}") from None
        model._training, model._random_key = state, key
    return model


def _meant(added: dict[str, Any], estimator: str, table: dict) -> dict[str, Any]:
    """What an older file of ``estimator`` meant by the parameters of its ``table`` that
    were ``added`` (a dict value: by estimator, for those it names)."""
    return {
        k: v[estimator] if isinstance(v, dict) else v
        for k, v in added.items()
        if k in table and (not isinstance(v, dict) or estimator in v)
    }


def _check_section(path: str, section: str, values: Any, table: dict) -> dict[str, Any]:
    """The fields of one metadata section, each checked and rebuilt by its constraint."""
    if not isinstance(values, dict):
        raise ValueError(f"{path!r}: metadata field {section!r} must be an object; got {values!r}")
    missing, unknown = set(table) - set(values), set(values) - set(table)
    if missing or unknown:
        raise ValueError(
            f"{path!r}: metadata {section!r} "
            + (f"lacks {sorted(missing)}" if missing else "")
            + (" and " if missing and unknown else "")
            + (f"has unknown fields {sorted(unknown)}" if unknown else "")
        )
    out = {}
    for name, constraint in table.items():
        try:
            out[name] = constraint.from_json(values[name])
        except (ValueError, TypeError) as exc:
            raise ValueError(f"{path!r}: field {section}.{name} {exc}") from None
    return out


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
    except (SafetensorError, ValueError, UnicodeDecodeError, RecursionError) as exc:
        raise ValueError(f"{path!r} is corrupted or not a safetensors file: {exc}") from None
    metadata = header.get("__metadata__") if isinstance(header, dict) else None
    raw = metadata.get("backendnn") if isinstance(metadata, dict) else None
    if not isinstance(raw, str):
        raise ValueError(
            f"{path!r} is a safetensors file but not a backendnn model (no 'backendnn' metadata); "
            "was it written by another program?"
        )
    try:
        meta = json.loads(raw)
    except (ValueError, RecursionError) as exc:
        raise ValueError(f"{path!r} has damaged backendnn metadata: {exc}") from None
    if not isinstance(meta, dict) or meta.get("format") != "backendnn":
        raise ValueError(f"{path!r}: the backendnn metadata is not a backendnn model description")
    version = meta.get("version")
    if type(version) is not int:
        raise ValueError(f"{path!r}: field 'version' must be an integer; got {version!r}")
    if version > FORMAT_VERSION:
        raise ValueError(
            f"{path!r} was written by a newer backendnn (format {version}); upgrade backendnn"
        )
    if version < _OLDEST_READ:
        raise ValueError(
            f"{path!r} is in format {version}, older than this backendnn reads "
            f"({_OLDEST_READ}); refit the model and save it again"
        )
    if not isinstance(meta.get("estimator"), str) or meta["estimator"] not in REGISTRY:
        raise ValueError(f"{path!r}: unknown model kind {meta.get('estimator')!r}")
    return tensors, meta


def _renamed_from_format_3(path: str, tensors: dict, schema: dict) -> dict:
    """Format 3's tensors under format 4's names: the k-th ``coefs.{k}`` and
    ``intercepts.{k}`` (MLPs) are the ``W`` and ``b`` of the k-th layer with weights;
    the Perceptron's ``coef`` is that layer's ``W`` transposed (format 3 kept
    scikit-learn's (classes, features)); the layer stacks' names are unchanged."""
    weighted = sorted({int(name.split(".")[1]) for name in schema})
    renamed = {}
    for name, a in tensors.items():
        kind, _, index = name.partition(".")
        if kind in ("coef", "intercept") and not index:
            k, a = 0, (a.T if kind == "coef" else a)
        elif kind in ("coefs", "intercepts") and index.isdigit():
            k = int(index)
        else:
            renamed[name] = a  # layers.{i}.{name}, or a stray name the check below refuses
            continue
        if k >= len(weighted):
            raise ValueError(f"{path!r}: tensor {name!r} has no layer in the model")
        renamed[f"layers.{weighted[k]}.{'W' if kind.startswith('coef') else 'b'}"] = a
    return renamed
