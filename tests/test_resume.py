"""``fit(X, y, resume=True)`` and ``backendnn.save(model, path, include_optimizer=True)``:
a run of k epochs, saved, loaded and resumed to n epochs equals an uninterrupted n-epoch
run (weights and loss curve), on every backend and across backends; the state a file
holds is checked on load; what cannot be resumed says so."""

from __future__ import annotations

import json

import numpy as np
import pytest

import backendnn as bn
from backendnn.callbacks import Callback
from backendnn.layers import Activation, BatchNorm1d, Dense, Dropout
from tests._helpers import blobs3, read_meta, write_meta

pytestmark = [
    pytest.mark.usefixtures("one_blas_thread"),
    pytest.mark.filterwarnings("ignore::backendnn.ConvergenceWarning"),
]

CONFIGS = {
    "adam": lambda: bn.MLPClassifier((6,), random_state=0, batch_size=16),
    "sgd-invscaling": lambda: bn.MLPClassifier(
        (6,),
        solver="sgd",
        learning_rate="invscaling",
        learning_rate_init=0.1,
        power_t=0.3,
        random_state=0,
        batch_size=16,
    ),
    "sgd-early-stopping": lambda: bn.MLPClassifier(
        (6,),
        solver="sgd",
        learning_rate_init=0.1,
        random_state=0,
        early_stopping=True,
        n_iter_no_change=2,
        tol=0.05,
        batch_size=16,
    ),
    "adamw-clipped": lambda: bn.MLPClassifier(
        (6,), solver="adamw", clip_grad_norm=0.5, random_state=0, batch_size=16
    ),
    "rmsprop-object": lambda: bn.MLPClassifier(
        (6,),
        solver=bn.optim.RMSprop(momentum=0.5),
        learning_rate_init=0.01,
        random_state=0,
        batch_size=16,
    ),
    "stack-bn-dropout": lambda: bn.NeuralNetClassifier(
        [Dense(8), BatchNorm1d(8), Activation("relu"), Dropout(0.3)],
        random_state=0,
        batch_size=16,
    ),
}


def _weights(model) -> dict:
    return {k: bn.to_numpy(v) for k, v in model.get_weights().items()}


def _assert_same_run(resumed, full, rtol):
    assert resumed.n_iter_ == full.n_iter_
    np.testing.assert_allclose(resumed.loss_curve_, full.loss_curve_, rtol=rtol)
    a, b = _weights(resumed), _weights(full)
    assert a.keys() == b.keys()
    for k in a:
        np.testing.assert_allclose(a[k], b[k], rtol=rtol, atol=rtol * 1e-3, err_msg=k)
    if full.validation_scores_ is not None:
        np.testing.assert_allclose(resumed.validation_scores_, full.validation_scores_, rtol=rtol)


@pytest.mark.parametrize("config", list(CONFIGS))
def test_resume_from_a_file_equals_an_uninterrupted_run(backend, config, tmp_path):
    X, y = blobs3()
    Xb = backend.asarray(X, "float64")
    full = CONFIGS[config]().set_params(max_iter=9).fit(Xb, y)
    part = CONFIGS[config]().set_params(max_iter=4).fit(Xb, y)
    assert part.n_iter_ == 4
    path = tmp_path / "run.safetensors"
    bn.save(part, path, include_optimizer=True)
    loaded = bn.load(path, backend=backend.name)
    loaded.set_params(max_iter=9).fit(Xb, y, resume=True)
    _assert_same_run(loaded, full, 1e-12)
    if config == "sgd-early-stopping":  # the builtin rule stopped it after the resume
        assert 4 < full.n_iter_ < 9


def test_resume_bit_for_bit_on_numpy(tmp_path):
    X, y = blobs3()
    full = CONFIGS["adam"]().set_params(max_iter=7).fit(X, y)
    part = CONFIGS["adam"]().set_params(max_iter=3).fit(X, y)
    bn.save(part, tmp_path / "p.safetensors", include_optimizer=True)
    resumed = bn.load(tmp_path / "p.safetensors").set_params(max_iter=7).fit(X, y, resume=True)
    assert resumed.loss_curve_ == full.loss_curve_  # the same BLAS making the same calls
    for a, b in zip(resumed.coefs_, full.coefs_):
        np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("target", ["torch", "jax", "array_api_strict"])
def test_resume_on_another_backend(target, tmp_path):
    pytest.importorskip({"array_api_strict": "array_api_strict"}.get(target, target))
    X, y = blobs3()
    full = CONFIGS["stack-bn-dropout"]().set_params(max_iter=8).fit(X, y)
    part = CONFIGS["stack-bn-dropout"]().set_params(max_iter=3).fit(X, y)
    bn.save(part, tmp_path / "p.safetensors", include_optimizer=True)
    loaded = bn.load(tmp_path / "p.safetensors", backend=target)
    loaded.set_params(max_iter=8, backend=target).fit(X, y, resume=True)
    _assert_same_run(loaded, full, 1e-10)


def test_resume_in_memory_after_max_iter_and_after_a_callback_stop():
    X, y = blobs3()
    full = CONFIGS["sgd-invscaling"]().set_params(max_iter=10).fit(X, y)
    model = CONFIGS["sgd-invscaling"]().set_params(max_iter=4).fit(X, y)
    model.set_params(max_iter=10).fit(X, y, resume=True)
    _assert_same_run(model, full, 1e-12)

    class StopAt(Callback):
        def on_epoch_end(self, model, record):
            return record["epoch"] == 6

    epochs = []
    stopped = CONFIGS["sgd-invscaling"]().set_params(max_iter=10)
    stopped.fit(X, y, callbacks=[StopAt()])
    assert stopped.n_iter_ == 6
    stopped.fit(X, y, resume=True, callbacks=[lambda r: epochs.append(r["epoch"])])
    assert epochs == [7, 8, 9, 10]  # the run's count goes on
    _assert_same_run(stopped, full, 1e-12)


def test_a_checkpoint_mid_run_resumes_from_that_epoch(tmp_path):
    X, y = blobs3()
    full = CONFIGS["adam"]().set_params(max_iter=8).fit(X, y)

    class SaveAt(Callback):
        def on_epoch_end(self, model, record):
            if record["epoch"] == 5:
                bn.save(model, tmp_path / "e5.safetensors", include_optimizer=True)

    CONFIGS["adam"]().set_params(max_iter=8).fit(X, y, callbacks=[SaveAt()])
    resumed = bn.load(tmp_path / "e5.safetensors")
    assert resumed.n_iter_ == 5
    resumed.fit(X, y, resume=True)  # max_iter=8 was saved with it
    _assert_same_run(resumed, full, 1e-12)


def test_the_saved_generator_wins_over_random_state_none(tmp_path):
    X, y = blobs3()
    np.random.seed(7)  # noqa: NPY002 - the global generator is what None draws from
    full = bn.MLPClassifier((5,), max_iter=6, random_state=None, batch_size=10).fit(X, y)
    np.random.seed(7)  # noqa: NPY002 - the global generator is what None draws from
    part = bn.MLPClassifier((5,), max_iter=2, random_state=None, batch_size=10).fit(X, y)
    bn.save(part, tmp_path / "p.safetensors", include_optimizer=True)
    np.random.seed(12345)  # noqa: NPY002 - another global state: the saved one wins
    resumed = bn.load(tmp_path / "p.safetensors").set_params(max_iter=6).fit(X, y, resume=True)
    _assert_same_run(resumed, full, 1e-12)


def test_lbfgs_resume_restarts_its_memory_and_continues_the_count():
    X, y = blobs3()
    model = bn.MLPClassifier((5,), solver="lbfgs", max_iter=5, random_state=0).fit(X, y)
    first = list(model.loss_curve_)
    model.set_params(max_iter=12).fit(X, y, resume=True)
    assert model.n_iter_ == 12 == len(model.loss_curve_)
    assert model.loss_curve_[:5] == first and model.loss_curve_[5] < first[-1]


def test_warm_start_and_partial_fit_keep_scikit_learns_meaning(tmp_path):
    X, y = blobs3()
    model = CONFIGS["adam"]().set_params(max_iter=3).fit(X, y)
    bn.save(model, tmp_path / "p.safetensors", include_optimizer=True)
    loaded = bn.load(tmp_path / "p.safetensors")
    loaded.set_params(warm_start=True).fit(X, y)  # a fresh optimiser, max_iter more epochs
    assert loaded.n_iter_ == 3 and len(loaded.loss_curve_) == 6
    again = bn.load(tmp_path / "p.safetensors")
    again.partial_fit(X, y)  # continues the saved optimiser, one epoch
    assert len(again.loss_curve_) == 4


def test_what_cannot_be_resumed_says_so(tmp_path):
    X, y = blobs3()
    with pytest.raises(ValueError, match="no run to resume"):
        bn.MLPClassifier((5,)).fit(X, y, resume=True)
    model = CONFIGS["adam"]().set_params(max_iter=3).fit(X, y)
    bn.save(model, tmp_path / "plain.safetensors")
    with pytest.raises(ValueError, match="no run to resume"):
        bn.load(tmp_path / "plain.safetensors").fit(X, y, resume=True)
    with pytest.raises(ValueError, match="max_iter"):
        model.fit(X, y, resume=True)  # max_iter=3 reached
    with pytest.raises(ValueError, match="optimiser"):
        model.set_params(max_iter=5, solver="sgd").fit(X, y, resume=True)
    with pytest.raises(ValueError, match="solver='gd'"):
        bn.Perceptron(max_iter=3).fit(X, y).set_params(max_iter=6).fit(X, y, resume=True)
    with pytest.raises(ValueError, match="no training state"):
        bn.save(bn.load(tmp_path / "plain.safetensors"), tmp_path / "x", include_optimizer=True)


def _saved(tmp_path):
    X, y = blobs3()
    model = CONFIGS["sgd-early-stopping"]().set_params(max_iter=4, n_iter_no_change=50)
    path = tmp_path / "run.safetensors"
    bn.save(model.fit(X, y), path, include_optimizer=True)
    return path


@pytest.mark.parametrize(
    "edit, match",
    [
        (lambda t: t["rng"].update(kind="Mersenne"), "training.rng"),
        (lambda t: t["rng"]["state"].__setitem__(1, [1, 2]), "training.rng"),
        (lambda t: t["history"].update(n_iter=99), "n_iter"),
        (lambda t: t["history"].update(no_improvement=-1), "no_improvement"),
        (lambda t: t["optimizer"].update(tree={"list": [0, 99]}), "tree"),
        (lambda t: t["optimizer"]["schedule"].update(kind="cyclic"), "learning_rate"),
        (lambda t: t.update(random_key="x"), "random_key"),
        (lambda t: t.pop("history"), "history"),
    ],
)
def test_a_damaged_training_state_is_refused(tmp_path, edit, match):
    path = _saved(tmp_path)
    meta = read_meta(path)
    edit(meta["training"])
    write_meta(path, json.dumps(meta))
    with pytest.raises(ValueError, match=match):
        bn.load(path)


def test_damaged_training_tensors_are_refused(tmp_path):
    from safetensors.numpy import load_file, save_file

    path = _saved(tmp_path)
    meta = read_meta(path)
    tensors = load_file(str(path))
    for name, bad, match in [
        ("training.order", lambda a: a * 0, "permutation"),
        ("training.split.validation", lambda a: a + 1000, "partition"),
        ("training.optimizer.0", lambda a: a.astype(np.float32), "dtype"),
        ("training.params.layers.0.W", lambda a: a[:1], "layers.0.W"),
    ]:
        changed = dict(tensors, **{name: np.ascontiguousarray(bad(tensors[name]))})
        save_file(changed, str(path), metadata={"backendnn": json.dumps(meta)})
        with pytest.raises(ValueError, match=match):
            bn.load(path)


def test_perceptron_gd_resumes_and_validates(tmp_path):
    X, y = blobs3()
    kw = dict(solver="gd", batch_size=16, random_state=0, tol=None)
    full = bn.Perceptron(max_iter=6, **kw).fit(X, y, validation_data=(X[:20], y[:20]))
    part = bn.Perceptron(max_iter=2, **kw).fit(X, y, validation_data=(X[:20], y[:20]))
    bn.save(part, tmp_path / "p.safetensors", include_optimizer=True)
    resumed = bn.load(tmp_path / "p.safetensors").set_params(max_iter=6)
    resumed.fit(X, y, resume=True, validation_data=(X[:20], y[:20]))
    np.testing.assert_allclose(resumed.coef_, full.coef_, rtol=1e-12)
    assert resumed.loss_curve_ == pytest.approx(full.loss_curve_, rel=1e-12)
    assert len(full.validation_scores_) == 6
    assert full.validation_scores_[-1] == full.score(X[:20], y[:20])
