"""ONNX export: :func:`export_onnx` writes a fitted estimator (or a bare network with its
parameters) as an ONNX model that ONNX Runtime runs without backendnn.

The graph is built with the ``onnx`` package's helpers (:mod:`.onnx_graph`), one layer at a
time (:mod:`.onnx_layers`), then the estimator's output head: what ``predict_proba`` and
``predict`` (classifiers), ``predict`` (regressors) or ``decision_function`` and ``predict``
(the perceptron) return. The batch dimension is dynamic; tensors are float32 or float64 as
the model is. ``onnx.checker`` (with shape inference) checks the model before it is written.

Imports :mod:`backendnn.estimators`, ``network``, ``_backend`` and ``interop.onnx_graph``,
``interop.onnx_layers`` (after checking that ``onnx`` is installed).
"""

from __future__ import annotations

import functools
import numbers
from typing import Any

import numpy as np

from .._backend import to_numpy

#: the oldest opset the export writes (and is tested with)
MIN_OPSET = 17
_INSTALL = "pip install backendnn[onnx]"


def export_onnx(
    model: Any, path: Any, *, opset: int | None = None, input_shape: Any = None, dtype: Any = None
) -> Any:
    """Write ``model`` to ``path`` as an ONNX model and return it (an ``onnx.ModelProto``).

    Parameters
    ----------
    model : fitted estimator, or tuple (network, params, state)
        An MLPClassifier, MLPRegressor, NeuralNetClassifier, NeuralNetRegressor or
        Perceptron, fitted on any backend; or a :class:`~backendnn.Network` with its
        parameters (as :meth:`~backendnn.Network.init` returns them) and its state (None
        where no layer has one).
    path : str or path-like
        The file to write (``.onnx``).
    opset : int, optional
        The ``ai.onnx`` opset, 17 or newer. Default: the newest that the installed ``onnx``
        writes and the installed ONNX Runtime (if any) loads.
    input_shape : tuple of int
        For a bare network only: the shape of one input sample, without the batch axis
        (``(1, 8, 8)`` for 8x8 grey images, ``(n_features,)`` for rows).
    dtype : {"float32", "float64"}, optional
        For a bare network only: the graph's float type. Default: its arrays' (float32
        for a network without arrays).

    Returns
    -------
    onnx.ModelProto
        The model written. Input ``X`` of shape (N, ...) where the estimator takes
        (rows of n_features for the MLPs and the perceptron, the fitted image or signal
        shape for the layer stacks). Outputs: ``probabilities`` (N, n_classes) and
        ``labels`` (N,) for classifiers (multi-label: per-label probabilities and the 0/1
        indicator, int64); ``predictions`` (N,) or (N, n_outputs) for regressors (exp of
        the network output for ``loss="poisson"``); ``decision`` (N,) or (N, n_classes)
        and ``labels`` for the perceptron; ``output``, the network output, for a bare
        network.

    Raises
    ------
    ImportError
        If the ``onnx`` package is not installed (``pip install backendnn[onnx]``).
    ValueError
        For a layer or activation without an ONNX form (a custom one), named; an opset
        out of range; a bare network without ``input_shape`` or with parameters that do
        not fit it.
    TypeError
        If ``model`` is neither a fitted estimator nor a (network, params, state) tuple.

    Notes
    -----
    ONNX Runtime has no float64 kernels for Erf, Conv and AveragePool: a float64 model
    builds exact GELU from Cody's rational approximations and convolutions and average
    pools as im2col products (Einsum), so ONNX Runtime computes it in float64 throughout,
    to ~1e-12 of backendnn's outputs.

    Examples
    --------
    >>> import numpy as np, tempfile, os
    >>> import backendnn as bn
    >>> X = np.random.default_rng(0).normal(size=(40, 3))
    >>> clf = bn.MLPClassifier((5,), solver="lbfgs", random_state=0).fit(X, X[:, 0] > 0)
    >>> path = os.path.join(tempfile.mkdtemp(), "clf.onnx")
    >>> model = bn.export_onnx(clf, path)  # needs pip install backendnn[onnx]
    >>> [o.name for o in model.graph.output]
    ['probabilities', 'labels']
    """
    _require()
    import onnx
    from onnx import helper

    from .onnx_graph import Graph
    from .onnx_layers import emit_layers

    opset = _check_opset(opset)
    source = _source(model, input_shape, dtype)
    g = Graph(source.dtype, opset)
    x = g.sym("X")
    h = emit_layers(g, source.layers, source.params, source.states, x, source.sample_shape)
    outputs = source.head(g, h)
    elem = helper.np_dtype_to_tensor_dtype
    graph = helper.make_graph(
        g.nodes,
        source.name,
        [helper.make_tensor_value_info("X", elem(g.dtype), ["N", *source.sample_shape])],
        [helper.make_tensor_value_info(n, elem(dt), ["N", *shape]) for n, dt, shape in outputs],
        initializer=g.initializers,
    )
    opsets = [helper.make_opsetid("", opset)]
    onnx_model = helper.make_model(
        graph,
        opset_imports=opsets,
        producer_name="backendnn",
        ir_version=helper.find_min_ir_version_for(opsets),
        doc_string=f"{source.name} exported by backendnn.export_onnx",
    )
    onnx.checker.check_model(onnx_model, full_check=True)
    onnx.save(onnx_model, path)
    return onnx_model


def _require() -> None:
    """ImportError naming the extra unless ``onnx`` imports."""
    try:
        import onnx  # noqa: F401
    except ImportError as exc:
        raise ImportError(
            f"backendnn.export_onnx needs the onnx package ({exc}); install it with "
            f"{_INSTALL} (onnx, and onnxruntime to run the models)"
        ) from None


def _check_opset(opset: Any) -> int:
    import onnx

    newest = onnx.defs.onnx_opset_version()
    if opset is None:
        return _default_opset(newest)
    if isinstance(opset, bool) or not isinstance(opset, numbers.Integral):
        raise ValueError(f"opset must be an int from {MIN_OPSET} to {newest}, got {opset!r}")
    if not MIN_OPSET <= int(opset) <= newest:
        raise ValueError(
            f"opset must be from {MIN_OPSET} to {newest} (the newest the "
            f"installed onnx {onnx.__version__} writes), got {opset}"
        )
    return int(opset)


@functools.cache
def _default_opset(newest: int) -> int:
    """The newest opset up to ``newest`` that the installed ONNX Runtime loads (it refuses
    a model of an opset newer than its own), ``newest`` without ONNX Runtime."""
    try:
        import onnxruntime
    except ImportError:
        return newest
    from onnx import TensorProto, helper

    vi = {n: helper.make_tensor_value_info(n, TensorProto.FLOAT, [1]) for n in "xy"}
    graph = helper.make_graph(
        [helper.make_node("Identity", ["x"], ["y"])], "probe", [vi["x"]], [vi["y"]]
    )
    for opset in range(newest, MIN_OPSET, -1):
        ids = [helper.make_opsetid("", opset)]
        probe = helper.make_model(
            graph, opset_imports=ids, ir_version=helper.find_min_ir_version_for(ids)
        )
        try:
            onnxruntime.InferenceSession(
                probe.SerializeToString(), providers=["CPUExecutionProvider"]
            )
        except Exception:  # ONNX Runtime raises its own error types
            continue
        return opset
    return MIN_OPSET


# --------------------------------------------------------------------------- what is exported


class _Source:
    """What the graph is built from: the layers, their arrays as NumPy of ``dtype``, one
    input sample's shape, the graph's name and the output head (a function of the graph
    and the network output returning (name, dtype, shape after N) per output)."""

    def __init__(self, name: str, layers: Any, params: Any, states: Any, sample_shape: Any,
                 dtype: Any, head: Any):  # fmt: skip
        self.name, self.layers, self.sample_shape = name, tuple(layers), tuple(sample_shape)
        self.dtype, self.head = np.dtype(dtype), head
        self.params = [tuple(_host(a, self.dtype) for a in p) for p in params]
        self.states = [tuple(_host(a, self.dtype) for a in s) for s in states]


def _host(a: Any, dtype: Any) -> Any:
    return np.asarray(to_numpy(a), dtype=dtype)


def _source(model: Any, input_shape: Any, dtype: Any) -> _Source:
    from ..estimators import Perceptron
    from ..estimators._core import NetworkEstimator
    from ..estimators._outputs import ClassifierOutputs, RegressorOutputs
    from . import onnx_heads as heads

    if isinstance(model, tuple):
        return _network_source(model, input_shape, dtype)
    if not isinstance(model, NetworkEstimator):
        raise TypeError(
            "export_onnx takes a fitted backendnn estimator or a tuple (network, params, "
            f"state); got {type(model).__name__}"
        )
    if input_shape is not None or dtype is not None:
        raise ValueError(
            "input_shape and dtype are for a bare network only: an estimator knows its input"
        )
    network = model._network()  # NotFittedError before fit
    image = getattr(model, "image_shape_", None)
    if model._flatten_input or image is None:
        shape: tuple[int, ...] = (int(model.n_features_in_),)
    else:
        shape = tuple(int(d) for d in image)
    buffers = model._buffers
    states = buffers if buffers is not None else [()] * len(network.layers)
    if isinstance(model, Perceptron):
        head = functools.partial(heads.perceptron, model)
    elif isinstance(model, ClassifierOutputs):
        head = functools.partial(heads.classifier, model)
    elif isinstance(model, RegressorOutputs):
        head = functools.partial(heads.regressor, model)
    else:
        raise TypeError(f"export_onnx: no ONNX output head for {type(model).__name__}")
    return _Source(type(model).__name__, network.layers, model._params, states, shape,
                   model._dtype_name, head)  # fmt: skip


def _network_source(model: tuple, input_shape: Any, dtype: Any) -> _Source:
    from ..network import Network
    from .onnx_heads import network as head

    if len(model) not in (2, 3) or not isinstance(model[0], Network):
        raise TypeError(
            "a bare network is exported as a tuple (network, params, state) with a "
            f"backendnn.Network first; got a tuple of {len(model)} starting with "
            f"{type(model[0]).__name__ if model else 'nothing'}"
        )
    network, params = model[0], list(model[1])
    state = model[2] if len(model) == 3 else None
    if input_shape is None:
        raise ValueError(
            "export_onnx of a bare network needs input_shape=, the shape of one sample "
            "without the batch axis, e.g. (1, 8, 8) or (n_features,)"
        )
    shape = tuple(int(d) for d in input_shape)
    network = network.build(shape)  # checks the shapes; infers Dense(64)'s input width
    if len(params) != len(network.layers) or any(
        tuple(tuple(a.shape) for a in p) != layer.param_shapes()
        for p, layer in zip(params, network.layers)
    ):
        raise ValueError(
            "params do not fit the network: one tuple per layer with the shapes of "
            f"layer.param_shapes() ({[layer.param_shapes() for layer in network.layers]})"
        )
    if state is None and network.has_state:
        raise ValueError(
            "the network has state (batch norm's running statistics): pass (network, params, "
            "state) with its state"
        )
    if state is not None and (
        len(state) != len(network.layers)
        or any(
            tuple(tuple(a.shape) for a in s) != tuple(tuple(b.shape) for b in layer.buffers())
            for s, layer in zip(state, network.layers)
        )
    ):
        raise ValueError(
            "state does not fit the network: one tuple per layer with the shapes of "
            f"layer.buffers() ({[[b.shape for b in layer.buffers()] for layer in network.layers]}"
            "), as network.init_state() makes it"
        )
    arrays = [a for group in (*params, *(state or ())) for a in group]
    dtypes = {np.dtype(to_numpy(a).dtype) for a in arrays}
    if dtype is not None:
        dtypes.add(np.dtype(dtype))
    if len(dtypes) > 1 or not dtypes <= {np.dtype(np.float32), np.dtype(np.float64)}:
        raise ValueError(
            "the network's arrays (and dtype=) must be all float32 or all float64, got "
            f"{sorted(map(str, dtypes))}"
        )
    dtype = dtypes.pop() if dtypes else np.dtype(np.float32)
    states = list(state) if state is not None else [()] * len(network.layers)
    out_shape = network.output_shape(shape)
    return _Source("Network", network.layers, params, states, shape, dtype,
                   functools.partial(head, out_shape))  # fmt: skip
