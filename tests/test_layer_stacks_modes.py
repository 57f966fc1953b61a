"""Layer stacks with batch norm and dropout in the estimators (training mode in fit,
inference mode in predict and validation, state saved and continued, the same masks on
every backend, weighted batch statistics, L-BFGS), and the stack defects found with
hostile inputs: each test here failed before the layers stage (shapes are now checked
from the shapes alone, widths are positive ints, the output layer rule is explicit).

References are independent: a fit on the rows kept instead of zero weights, numpy's fit
for the other backends (one counter-based generator gives every library the same masks),
the whole set's statistics computed here with NumPy.
"""

from __future__ import annotations

import numpy as np
import pytest

import backendnn as bn
from backendnn import _random
from backendnn.layers import Activation, BatchNorm1d, Dense, Dropout, Flatten
from tests._helpers import rewrite_meta
from tests.conftest import assert_close  # first: conftest sets JAX_ENABLE_X64 before jax loads

pytestmark = pytest.mark.filterwarnings("ignore::backendnn.ConvergenceWarning")

RNG = np.random.default_rng(0)
X = RNG.normal(size=(40, 6))
Y3 = np.arange(40) % 3
YR = X[:, 0] - 2.0 * X[:, 1]


def _bn_dropout():
    return [Dense(6, 8), BatchNorm1d(8), Activation("relu"), Dropout(0.25)]


def _fit(backend, layers, y=Y3, **kw):
    kw = {"solver": "adam", "max_iter": 3, "random_state": 0, "dtype": "float64", **kw}
    model = (bn.NeuralNetClassifier if y is Y3 else bn.NeuralNetRegressor)(layers, **kw)
    return model.fit(backend.asarray(X), backend.asarray(y))


# ---------------------------------------------------------------------------- modes and state


def test_the_same_fit_on_every_backend_masks_included(backend):
    """One random_state: the same masks on every library, so the same fit to rounding."""
    ours = _fit(backend, _bn_dropout())
    ref = _fit(_NUMPY, _bn_dropout())
    np.testing.assert_allclose(ours.loss_curve_, ref.loss_curve_, rtol=1e-10)
    assert_close(
        ours.predict_proba(backend.asarray(X)), ref.predict_proba(X),
        backend=backend, dtype="float64", rtol=1e-9,
    )  # fmt: skip
    running_mean = bn.to_numpy(ours.buffers_[1][0])
    np.testing.assert_allclose(running_mean, bn.to_numpy(ref.buffers_[1][0]), rtol=1e-9)
    assert np.any(running_mean != 0.0)  # the running statistics moved


def test_predict_is_deterministic_and_refits_repeat(backend):
    model = _fit(backend, _bn_dropout())
    first = bn.to_numpy(model.predict_proba(backend.asarray(X)))
    np.testing.assert_array_equal(bn.to_numpy(model.predict_proba(backend.asarray(X))), first)
    again = _fit(backend, _bn_dropout())
    np.testing.assert_array_equal(again.loss_curve_, model.loss_curve_)


def test_the_mask_stream_leaves_scikit_learns_draws_alone():
    """The key is read from random_state, never drawn from it: the initial weights, the
    split and the shuffles are scikit-learn's draws with or without dropout."""
    rs = np.random.RandomState(3)
    seed = _random.seed_of(rs)
    assert rs.randint(1 << 30) == np.random.RandomState(3).randint(1 << 30)
    assert seed == _random.seed_of(np.random.RandomState(3))
    assert _random.seed_of(0) != _random.seed_of(1)
    with_dropout = _fit(_NUMPY, [Dense(6, 8), Activation("relu"), Dropout(0.0)], max_iter=1)
    without = _fit(_NUMPY, [Dense(6, 8), Activation("relu")], max_iter=1)
    np.testing.assert_array_equal(with_dropout.loss_curve_, without.loss_curve_)


def test_partial_fit_continues_the_key_sequence_and_the_state():
    model = bn.NeuralNetClassifier(_bn_dropout(), solver="sgd", batch_size=10, random_state=0)
    model.partial_fit(X, Y3, classes=[0, 1, 2])
    assert model._random_key[1] == 4  # four steps drew their masks
    mean_after_one = bn.to_numpy(model.buffers_[1][0]).copy()
    model.partial_fit(X, Y3)
    assert model._random_key[1] == 8
    assert not np.array_equal(bn.to_numpy(model.buffers_[1][0]), mean_after_one)
    assert float(bn.to_numpy(model.buffers_[1][2])) == 8.0  # num_batches_tracked


def test_saved_and_loaded_with_its_running_statistics(backend, tmp_path):
    model = _fit(backend, _bn_dropout())
    bn.save(model, tmp_path / "m.safetensors")
    loaded = bn.load(tmp_path / "m.safetensors", backend=backend.name.split("-")[0])
    expected = bn.to_numpy(model.predict_proba(backend.asarray(X)))
    proba = loaded.predict_proba(backend.asarray(X))
    assert_close(proba, expected, backend=backend, dtype="float64", rtol=1e-12)
    names = set(bn.io._read(str(tmp_path / "m.safetensors"))[0])
    state = {"layers.1.running_mean", "layers.1.running_var", "layers.1.num_batches_tracked"}
    assert state <= names


def test_zero_weight_rows_do_not_count_in_batch_statistics():
    """Full batches (solver="gd"): weights 0 give the fit of the rows kept, batch
    statistics included."""
    layers = [Dense(6, 8), BatchNorm1d(8), Activation("tanh")]
    w = (np.arange(40) % 4 != 0).astype(float)
    kw = dict(solver="gd", max_iter=5, random_state=0, dtype="float64")
    weighted = bn.NeuralNetRegressor(layers, **kw).fit(X, YR, sample_weight=w)
    kept = bn.NeuralNetRegressor(layers, **kw).fit(X[w > 0], YR[w > 0])
    np.testing.assert_allclose(weighted.loss_curve_, kept.loss_curve_, rtol=1e-10)
    for a, b in zip(weighted.buffers_[1], kept.buffers_[1]):
        np.testing.assert_allclose(a, b, rtol=1e-10)


def test_lbfgs_refuses_dropout_and_uses_the_whole_set_statistics():
    with pytest.raises(ValueError, match="deterministic objective.*Dropout"):
        bn.NeuralNetClassifier(_bn_dropout(), solver="lbfgs").fit(X, Y3)
    model = bn.NeuralNetRegressor(
        [Dense(6, 8), BatchNorm1d(8), Activation("tanh")], solver="lbfgs", max_iter=20,
        random_state=0, dtype="float64",
    ).fit(X, YR)  # fmt: skip
    W, b = model.params_[0]
    z = X @ W + b  # the batch norm's input over the whole training set, with NumPy
    running_mean, running_var, _ = model.buffers_[1]
    np.testing.assert_allclose(running_mean, z.mean(axis=0), rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(running_var, z.var(axis=0, ddof=1), rtol=1e-10)


def test_a_training_batch_of_one_sample_is_a_clear_error():
    model = bn.NeuralNetClassifier(_bn_dropout(), batch_size=13)  # 40 = 3 * 13 + 1
    with pytest.raises(ValueError, match="more than 1 value per channel"):
        model.fit(X, Y3)
    assert not hasattr(model, "params_")


# ---------------------------------------------------------------------------- stack defects


def test_rows_given_as_images_are_refused():
    clf = bn.NeuralNetClassifier([Dense(6, 4), Activation("relu")], max_iter=2).fit(X, Y3)
    with pytest.raises(ValueError, match="fitted on rows of 6 features"):
        clf.predict(X.reshape(40, 1, 1, 6))
    reg = bn.NeuralNetRegressor([Dense(4, 3), Activation("relu")], max_iter=2)
    reg.fit(X[:, :4], YR)
    with pytest.raises(ValueError, match="fitted on rows of 4 features"):
        reg.predict(X[:, :4].reshape(40, 1, 2, 2))


def test_a_stack_that_breaks_in_backward_is_refused_before_training():
    images = RNG.normal(size=(10, 1, 2, 4))
    model = bn.NeuralNetClassifier([Dense(4, 3), Activation("relu"), Flatten()])
    with pytest.raises(ValueError, match=r"layer 0 \(Dense\(4, 3\)\).*rows"):
        model.fit(images, np.arange(10) % 2)
    assert not hasattr(model, "params_")


@pytest.mark.parametrize("args", [(36, 0), (2.5, 3), (-1, 3), ("3", 2), (3, True)])
def test_dense_widths_must_be_positive_ints(args):
    with pytest.raises(ValueError, match="positive int"):
        Dense(*args)


def test_a_hostile_model_file_allocates_nothing(tmp_path):
    model = bn.NeuralNetClassifier([Dense(6, 4), Activation("relu")], max_iter=1).fit(X, Y3)
    path = tmp_path / "m.safetensors"
    bn.save(model, path)

    def huge(meta):
        meta["attributes"]["_fitted_layers"][-1]["n_out"] = 10**12
        meta["attributes"]["n_outputs_"] = 10**12

    rewrite_meta(path, huge)
    with pytest.raises(ValueError, match="tensor"):
        bn.load(path)


def test_the_output_layer_rule():
    complete = [Dense(6, 16), Activation("relu"), Dense(16, 3)]
    with pytest.raises(ValueError, match="output_layer='last'"):
        bn.NeuralNetClassifier(complete).fit(X, Y3)
    model = bn.NeuralNetClassifier(complete, output_layer="last", max_iter=2).fit(X, Y3)
    assert model.n_layers_ == 3 and model.predict_proba(X).shape == (40, 3)
    wrong = [Dense(6, 16), Activation("relu"), Dense(16, 10)]
    with pytest.raises(ValueError, match="10 outputs, and the targets need 3"):
        bn.NeuralNetClassifier(wrong, output_layer="last").fit(X, Y3)
    two = [Dense(6, 16), Activation("relu"), Dense(16, 2)]
    with pytest.raises(ValueError, match="one logistic output unit"):
        bn.NeuralNetClassifier(two, output_layer="last").fit(X, Y3 % 2)
    with pytest.raises(ValueError, match="remove the final"):
        bn.NeuralNetClassifier([*complete, Activation("softmax")], output_layer="last").fit(X, Y3)


def test_input_widths_are_inferred_from_the_data():
    model = bn.NeuralNetClassifier([Dense(8), Activation("relu")], max_iter=2, random_state=0)
    assert model.fit(X, Y3)._fitted_layers[0] == Dense(6, 8)
    assert model.fit(X[:, :4], Y3)._fitted_layers[0] == Dense(4, 8)
    assert model.layers[0] == Dense(8)  # the estimator's own parameter is left as given


class _Numpy:
    name = "numpy"

    @staticmethod
    def asarray(a, dtype=None):
        return np.asarray(a, dtype=dtype)


_NUMPY = _Numpy()


def test_a_1d_residual_cnn_on_signals(backend, tmp_path):
    """(N, C, L) signals reach Conv1d as they are; the fitted model checks their shape,
    saves its state and loads back with the same predictions."""
    from backendnn.layers import Conv1d, GlobalAvgPool1d, MaxPool1d, Residual

    rng = np.random.default_rng(1)
    signals = rng.normal(size=(30, 2, 16))
    labels = (signals[:, 0, :8].mean(axis=1) > 0).astype(int)
    block = [Conv1d(4, 4, 3, padding="same", dilation=2), BatchNorm1d(4), Activation("relu")]
    layers = [
        Conv1d(2, 4, 5, padding=2), BatchNorm1d(4), Activation("relu"), MaxPool1d(2),
        Residual(block), GlobalAvgPool1d(), Dropout(0.1),
    ]  # fmt: skip
    model = bn.NeuralNetClassifier(layers, max_iter=3, random_state=0, dtype="float64")
    model.fit(backend.asarray(signals), backend.asarray(labels))
    assert model.image_shape_ == (2, 16) and model.n_features_in_ == 32
    proba = model.predict_proba(backend.asarray(signals))
    with pytest.raises(ValueError, match="signal shape"):
        model.predict(backend.asarray(signals[:, :, :8]))
    with pytest.raises(ValueError, match="signals of shape"):
        model.predict(backend.asarray(signals.reshape(30, -1)))
    bn.save(model, tmp_path / "m.safetensors")
    loaded = bn.load(tmp_path / "m.safetensors", backend=backend.name.split("-")[0])
    assert_close(
        loaded.predict_proba(backend.asarray(signals)), bn.to_numpy(proba),
        backend=backend, dtype="float64", rtol=1e-12,
    )  # fmt: skip


def test_sparse_and_dask_inputs_train_these_layers_as_dense_ones():
    """A scipy.sparse X (densified a batch at a time) and a dask X (streamed by chunks)
    give the dense fit: the same batches, statistics and masks."""
    sparse = pytest.importorskip("scipy.sparse")
    kw = dict(solver="sgd", batch_size=10, max_iter=2, random_state=0, dtype="float64")
    dense = bn.NeuralNetClassifier(_bn_dropout(), **kw).fit(X, Y3)
    from_sparse = bn.NeuralNetClassifier(_bn_dropout(), **kw).fit(sparse.csr_matrix(X), Y3)
    np.testing.assert_allclose(from_sparse.loss_curve_, dense.loss_curve_, rtol=1e-12)
    da = pytest.importorskip("dask.array")
    streamed = bn.NeuralNetClassifier(_bn_dropout(), shuffle=False, **kw)
    streamed.fit(da.from_array(X, chunks=(20, 6)), Y3)
    in_memory = bn.NeuralNetClassifier(_bn_dropout(), shuffle=False, **kw).fit(X, Y3)
    np.testing.assert_allclose(streamed.loss_curve_, in_memory.loss_curve_, rtol=1e-12)
