"""Helpers shared by several test files: small data sets, the estimators of the input
tests, checks of an estimator's fitted state and of where an array lives, custom
activations, model-file metadata, the network test cases and a small CNN.

Reference formulas (never backendnn code) are in ``tests/_references.py``; the
``backend``, ``host_backend`` and ``registry`` fixtures and ``assert_close`` in
``tests/conftest.py``.
"""

from __future__ import annotations

import functools
import importlib
import json
import math

import numpy as np
import pytest
from hypothesis import HealthCheck, settings
from safetensors.numpy import load_file, save_file
from sklearn.datasets import load_digits, make_classification, make_regression
from sklearn.model_selection import train_test_split

import backendnn as bn
from backendnn import Network, _backend, activations
from backendnn.layers import Activation, Conv2d, Dense, Flatten, MaxPool2d
from tests._references import np_forward
from tests.conftest import assert_close


def optional_import(name: str):
    """The module, or None where the library is not installed."""
    try:
        return importlib.import_module(name)
    except ImportError:
        return None


# ---------------------------------------------------------------------------- small data sets
# Each is the data its tests were written against: keep them as they are.

_rng = np.random.default_rng(0)
#: valid input for the input-validation tests (12 samples, 3 features) and targets of each kind
X_OK = _rng.normal(size=(12, 3))
Y_OK_CLS = np.array([0, 1, 2] * 4)
Y_OK_REG = _rng.normal(size=12)

#: 30 samples, 3 features and a binary target (X30[:, 0] > 0)
X30 = np.random.default_rng(0).normal(size=(30, 3))
Y30 = (X30[:, 0] > 0).astype(np.int64)

#: 40 samples, 3 features and a smooth regression target
X40 = np.random.default_rng(0).normal(size=(40, 3))
Y40 = np.sin(X40 @ np.array([1.0, -2.0, 0.5]))

#: 40 samples, 4 features: three classes; a standardised regression target; integer weights
X_CLS, Y_CLS = make_classification(40, 4, n_informative=3, n_redundant=0, n_classes=3,
                                   random_state=0)  # fmt: skip
X_REG, Y_REG = make_regression(40, 4, noise=0.1, random_state=0)
Y_REG = Y_REG / Y_REG.std()
WEIGHTS = np.tile([2.0, 0.0, 1.0, 3.0], 10)  # integers, zeros included


#: the Perceptron tests' data: 90 samples, 5 features, 3 classes with 10 % flipped labels,
#: and the binary problem class 1 against the rest
_X3, _Y3 = make_classification(
    90, 5, n_informative=3, n_redundant=1, n_classes=3, flip_y=0.1, random_state=0
)
PERCEPTRON_DATA = {"binary": (_X3, (_Y3 == 1).astype(int)), "3-class": (_X3, _Y3)}


@functools.cache
def blobs3() -> tuple[np.ndarray, np.ndarray]:
    """90 samples, 5 features, 3 classes."""
    return make_classification(
        90,
        5,
        n_informative=3,
        n_redundant=0,
        n_classes=3,
        n_clusters_per_class=1,
        random_state=0,
    )


@functools.cache
def binary() -> tuple[np.ndarray, np.ndarray]:
    """80 samples, 4 features, 2 classes."""
    return make_classification(80, 4, n_informative=3, n_redundant=0, random_state=1)


@functools.cache
def digits_split():
    """The digits as NCHW images (N, 1, 8, 8) in [0, 1]: X_train, X_test, y_train, y_test."""
    d = load_digits()
    X = (d.images / 16.0)[:, None, :, :]  # NCHW (N, 1, 8, 8) in [0, 1]
    return train_test_split(X, d.target, test_size=0.25, stratify=d.target, random_state=0)


def xor() -> tuple[np.ndarray, np.ndarray]:
    """The four points of XOR and their labels."""
    return np.array([[0.0, 0.0], [0.0, 1.0], [1.0, 0.0], [1.0, 1.0]]), np.array([0, 1, 1, 0])


#: the minibatch SGD settings of the warm-start and partial_fit tests (no shuffling)
UNSHUFFLED_SGD = dict(
    hidden_layer_sizes=(5,),
    solver="sgd",
    batch_size=16,
    shuffle=False,
    learning_rate_init=0.05,
    alpha=1e-3,
    random_state=0,
)


# ---------------------------------------------------------------------------- the three estimators

#: small estimators of each kind, fitted on X_OK by the input tests
ESTIMATORS = {
    "classifier": lambda **kw: bn.MLPClassifier((4,), max_iter=3, random_state=0, **kw),
    "regressor": lambda **kw: bn.MLPRegressor(hidden_layer_sizes=(4,), max_iter=3,
            random_state=0, **kw),
    "perceptron": lambda **kw: bn.Perceptron(max_iter=3, **kw),
}
TARGETS = {"classifier": Y_OK_CLS, "regressor": Y_OK_REG, "perceptron": Y_OK_CLS}

#: runs a test once per estimator kind (its ``kind`` argument)
each_kind = pytest.mark.parametrize("kind", list(ESTIMATORS))


def fit_small(backend, kind, X, y=None, **kw):
    """ESTIMATORS[kind](**kw) fitted on X and y (default TARGETS[kind]), NumPy arrays moved
    to ``backend``."""
    y = TARGETS[kind] if y is None else y
    X = backend.asarray(X) if isinstance(X, np.ndarray) else X
    y = backend.asarray(y) if isinstance(y, np.ndarray) else y
    return ESTIMATORS[kind](**kw).fit(X, y)


# ---------------------------------------------------------------------------- fitted state


def fitted_state(model) -> dict:
    """The public fitted attributes (``name_``) of ``model``."""
    return {k: v for k, v in vars(model).items() if k.endswith("_") and not k.startswith("_")}


def assert_same_state(a: dict, b: dict) -> None:
    """Two ``fitted_state`` records hold the same values. Exact: a failed fit must leave
    the very arrays it found (no computation on either side); NaN equals NaN."""
    assert a.keys() == b.keys()
    for k in a:
        if isinstance(a[k], list) and a[k] and _backend.is_array(a[k][0]):
            assert len(a[k]) == len(b[k]), k
            for x, y in zip(a[k], b[k]):
                np.testing.assert_array_equal(_backend.to_numpy(x), _backend.to_numpy(y))
        elif _backend.is_array(a[k]):
            np.testing.assert_array_equal(_backend.to_numpy(a[k]), _backend.to_numpy(b[k]))
        else:
            assert a[k] == b[k] or (a[k] != a[k] and b[k] != b[k]), k


def same_coef_as_sklearn(ours, theirs, rtol=1e-9) -> None:
    """Our Perceptron ``ours`` and scikit-learn's ``theirs`` hold the same fit."""
    np.testing.assert_allclose(_backend.to_numpy(ours.coef_), theirs.coef_, rtol=rtol, atol=0)
    np.testing.assert_allclose(
        _backend.to_numpy(ours.intercept_), theirs.intercept_, rtol=rtol, atol=0
    )
    assert ours.n_iter_ == theirs.n_iter_
    assert ours.t_ == theirs.t_


# ---------------------------------------------------------------------------- libraries, devices


def library(a) -> str:
    """The backend name of array ``a``'s library."""
    return _backend.namespace_name(_backend.array_namespace(a))


def assert_on(a, backend) -> None:
    """``a`` is an array of ``backend``'s library, on its device."""
    assert library(a) == backend.name, (library(a), backend.name)
    assert _backend.device(a) == backend.device, (_backend.device(a), backend.device)


# ---------------------------------------------------------------------------- custom activations


class Scaled(activations.Activation):
    """c tanh(z): its repr, Scaled(), is the same for every c."""

    name = "scaled"

    def __init__(self, c: float):
        self.c = c

    def forward(self, z):
        return self.c * _backend.array_namespace(z).tanh(z)

    def derivative(self, z, y=None):
        t = _backend.array_namespace(z).tanh(z)
        return self.c * (1.0 - t * t)


class ScaledTanh(activations.Tanh):
    """c tanh(z) under the built-in name (so a22ab53 could fit it); its repr, ScaledTanh(),
    is the same for every c."""

    from_output = False

    def __init__(self, c: float):
        self.c = c

    def forward(self, z):
        return self.c * _backend.array_namespace(z).tanh(z)

    def derivative(self, z, y=None):
        t = _backend.array_namespace(z).tanh(z)
        return self.c * (1.0 - t * t)


class Cube(activations.Activation):
    name = "cube"

    def forward(self, z):
        return z * z * z

    def derivative(self, z, y=None):
        return 3.0 * z * z


class TwiceTanh(activations.Tanh):
    """Reuses the built-in name "tanh" but computes 2 tanh(z)."""

    from_output = False  # the derivative below needs z

    def forward(self, z):
        return 2.0 * _backend.array_namespace(z).tanh(z)

    def derivative(self, z, y=None):
        t = _backend.array_namespace(z).tanh(z)
        return 2.0 * (1.0 - t * t)


def short_regressor(activation, solver="sgd"):
    """Three unshuffled epochs of a (4,) MLPRegressor with ``activation`` (fit on X40, Y40)."""
    return bn.MLPRegressor(
        hidden_layer_sizes=(4,), activation=activation, solver=solver, max_iter=3, shuffle=False,
        learning_rate_init=0.05, random_state=0,
    )  # fmt: skip


# ---------------------------------------------------------------------------- model files


def save(model, path):
    """``bn.save(model, path)``; returns ``path``."""
    bn.save(model, path)
    return path


def read_meta(path) -> dict:
    """The backendnn metadata of a model file."""
    data = path.read_bytes()
    n = int.from_bytes(data[:8], "little")
    return json.loads(json.loads(data[8 : 8 + n])["__metadata__"]["backendnn"])


def write_meta(path, raw: str) -> None:
    """Replace the backendnn metadata of a model file with the string ``raw``."""
    save_file(load_file(str(path)), str(path), metadata={"backendnn": raw})


def rewrite_meta(path, edit) -> None:
    """Rewrite the backendnn metadata of a model file with ``edit(meta)``."""
    meta = read_meta(path)
    edit(meta)
    write_meta(path, json.dumps(meta))


# ---------------------------------------------------------------------------- property tests

#: hypothesis settings of the property-based tests (run on the ``host_backend`` fixture)
PROPERTY_SETTINGS = settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)


# ---------------------------------------------------------------------------- network cases
# The networks and data of tests/test_network.py, shared with the initialisation, gradient
# checker and flat-parameter tests.

# one sample count everywhere: JAX compiles each new operand shape (~30 ms each here)
N_SAMPLES, N_IN, HIDDEN, N_OUT = 6, 5, (4, 3), 3
IMAGE_SHAPE = (2, 3, 2)  # (C, H, W) of the flatten tests: a (6, 2, 3, 2) NCHW batch
INIT_SEED, DATA_SEED = 0, 1234
KINK_MARGIN = 1e-4  # pre-activations and perceptron margins stay this far from 0


def make_net(act: str, loss_case: str, flatten: bool = False) -> Network:
    if loss_case == "perceptron":
        return Network.mlp(N_IN, (), 1)
    n_in = math.prod(IMAGE_SHAPE) if flatten else N_IN
    return Network.mlp(n_in, HIDDEN, N_OUT, activation=act, flatten=flatten)


def make_data(loss_case: str, flatten: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """Host data: X (n, 5) or an NCHW batch (6, 2, 3, 2), and targets for ``loss_case``."""
    rng = np.random.default_rng(DATA_SEED)
    n = N_SAMPLES
    X = rng.normal(size=(n, *(IMAGE_SHAPE if flatten else (N_IN,))))
    if loss_case == "squared_error":
        y = rng.normal(size=(n, N_OUT))
    elif loss_case == "sce_labels":
        y = rng.integers(0, N_OUT, size=n)
    elif loss_case == "sce_onehot":
        y = np.eye(N_OUT)[rng.integers(0, N_OUT, size=n)]
    elif loss_case == "binary_log_loss":
        y = rng.integers(0, 2, size=(n, N_OUT)).astype(np.float64)
    elif loss_case == "perceptron":
        y = rng.choice([-1.0, 1.0], size=n)
    else:  # pragma: no cover
        raise AssertionError(loss_case)
    return X, y


def host_params(net: Network, dtype=np.float64, scheme="glorot_uniform") -> list:
    """The parameters NumPy's backend draws for ``INIT_SEED``, as host arrays."""
    xpn = _backend.namespace("numpy")
    params = net.init(INIT_SEED, xp=xpn, dtype=getattr(xpn, np.dtype(dtype).name), scheme=scheme)
    return [tuple(np.asarray(a) for a in p) for p in params]


def to_host(params) -> list:
    return [tuple(_backend.to_numpy(a) for a in p) for p in params]


def weight_layers(params) -> list:
    """The (W, b) pairs of the layers that have parameters."""
    return [p for p in params if p]


@functools.cache
def case(act: str, loss_case: str, alpha: float, flatten: bool = False):
    """Host data, parameters and the kink-free precondition of one case (cached)."""
    net = make_net(act, loss_case, flatten)
    X, y = make_data(loss_case, flatten)
    params = host_params(net)
    preacts: list = []
    h = np_forward(act, weight_layers(params), X, preacts=preacts)
    # central differences step by a small eps: keep relu kinks and perceptron margins away
    for z in preacts:
        assert np.min(np.abs(z)) > KINK_MARGIN
    if loss_case == "perceptron":
        assert np.min(np.abs(y * h[:, 0])) > KINK_MARGIN
    return net, X, y, params


def on_backend(backend, act, loss_case, alpha, flatten=False):
    """The case's network, its parameters from ``net.init`` and the data, on ``backend``."""
    net, X, y, host = case(act, loss_case, alpha, flatten)
    params = net.init(INIT_SEED, xp=backend.xp, device=backend.device, dtype=backend.xp.float64)
    # same seed, same bits: drawn on the host by NumPy and moved (see tests/test_init.py)
    for p, q in zip(to_host(params), host):
        for a, b in zip(p, q):
            np.testing.assert_array_equal(a, b)
    return net, params, backend.asarray(X, dtype="float64"), backend.asarray(y)


# ---------------------------------------------------------------------------- convolutions


def small_cnn() -> Network:
    """Conv2d(1 -> 2, 3x3, padding 1), ReLU, 2x2 max-pool, Flatten, Dense(32 -> 3): 8x8 images."""
    return Network(
        [
            Conv2d(1, 2, 3, padding=1),
            Activation("relu"),
            MaxPool2d(2),
            Flatten(),
            Dense(2 * 4 * 4, 3),
        ]
    )


def close_to_scale(actual, expected, backend, tol=1e-10):
    """``assert_close`` in float64, relative to the largest entry (sums of products cancel
    to ~0 in places)."""
    expected = np.asarray(expected)
    atol = tol * float(np.max(np.abs(expected)))
    assert_close(actual, expected, backend=backend, dtype="float64", rtol=tol, atol=atol)
