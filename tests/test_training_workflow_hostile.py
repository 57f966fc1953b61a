"""What a hostile or confused caller does to the training workflow (resume, callbacks,
set_weights, checkpoints, custom losses): a clear error naming the problem, the model left
as it was, never a silently wrong number."""

from __future__ import annotations

import json

import numpy as np
import pytest

import backendnn as bn
from backendnn.callbacks import Callback, CosineAnnealing, CSVLogger, ModelCheckpoint
from backendnn.layers import Activation, Dense
from backendnn.losses import Loss
from tests._helpers import blobs3, read_meta, write_meta

pytestmark = [
    pytest.mark.usefixtures("one_blas_thread"),
    pytest.mark.filterwarnings("ignore::backendnn.ConvergenceWarning"),
]

RNG = np.random.RandomState(0)
X = RNG.randn(60, 4)
Y = (X[:, 0] > 0).astype(int)


def _clf(**kw):
    return bn.MLPClassifier((5,), **{"max_iter": 3, "random_state": 0, **kw})


# ---------------------------------------------------------------------- resume


@pytest.mark.parametrize(
    "change, data, match",
    [
        ({"early_stopping": True}, None, "trained on 60 rows"),  # a split is drawn now
        ({}, (X[:50], Y[:50]), "trained on 60 rows"),
        ({"hidden_layer_sizes": (7,)}, None, "run's network"),
        ({}, (X, Y + 5), "classes_"),  # same count, other labels
        ({}, (X, np.where(np.arange(60) < 10, 2, Y)), "classes_"),
    ],
)
def test_resume_refuses_another_network_data_or_split(backend, change, data, match):
    Xb = backend.asarray(X)
    model = _clf().fit(Xb, Y)
    before = {k: bn.to_numpy(v) for k, v in model.get_weights().items()}
    model.set_params(max_iter=6, **change)
    X2, y2 = (Xb, Y) if data is None else (backend.asarray(data[0]), data[1])
    with pytest.raises(ValueError, match=match):
        model.fit(X2, y2, resume=True)
    assert model.n_iter_ == 3
    for k, v in model.get_weights().items():
        np.testing.assert_array_equal(bn.to_numpy(v), before[k])


def test_resume_refuses_a_split_run_without_its_split():
    model = _clf(early_stopping=True).fit(X, Y)  # trained on 54 rows, 6 held out
    with pytest.raises(ValueError, match="trained on 54 rows"):
        model.set_params(max_iter=6, early_stopping=False).fit(X, Y, resume=True)
    with pytest.raises(ValueError, match="trained on 54 rows"):
        model.set_params(early_stopping=True).fit(X, Y, resume=True, validation_data=(X, Y))


# ---------------------------------------------------------------------- callbacks


class _Rate(Callback):
    def __init__(self, edit, where):
        self.edit, self.where = edit, where

    def on_epoch_begin(self, model, record):
        if self.where == "begin":
            self.edit(record)

    def on_epoch_end(self, model, record):
        if self.where == "end":
            self.edit(record)


@pytest.mark.parametrize("where", ["begin", "end"])
@pytest.mark.parametrize(
    "edit",
    [
        lambda r: r.pop("learning_rate"),
        lambda r: r.clear(),
        lambda r: r.update(learning_rate=10**400),
    ],
)
def test_a_removed_or_huge_learning_rate_is_a_value_error(edit, where):
    model = _clf().fit(X, Y)
    with pytest.raises(ValueError, match="learning rate"):
        model.set_params(max_iter=6).fit(X, Y, callbacks=[_Rate(edit, where)])
    assert model.n_iter_ == 3


def test_a_numpy_float32_learning_rate_is_a_number():
    set_rate = _Rate(lambda r: r.update(learning_rate=np.float32(0.5)), "begin")
    a = _clf(solver="sgd").fit(X, Y, callbacks=[set_rate])
    b = _clf(solver="sgd", learning_rate_init=float(np.float32(0.5))).fit(X, Y)
    np.testing.assert_array_equal(a.coefs_[0], b.coefs_[0])


@pytest.mark.parametrize("answer", [0.7, "False", [], np.array([0, 1])])
def test_a_callback_answers_true_false_or_none(answer):
    model = _clf().fit(X, Y)
    with pytest.raises(TypeError, match="return True to stop"):
        model.set_params(max_iter=6).fit(X, Y, callbacks=[lambda r: answer])
    assert model.n_iter_ == 3
    assert _clf().fit(X, Y, callbacks=[lambda r: np.bool_(False)]).n_iter_ == 3


def test_the_online_perceptron_refuses_a_rate_set_after_an_epoch():
    set_rate = _Rate(lambda r: r.update(learning_rate=0.5), "end")
    with pytest.raises(ValueError, match="eta0"):
        bn.Perceptron(max_iter=3).fit(X, Y, callbacks=[set_rate])


def test_cosine_annealing_starts_the_perceptron_at_eta0():
    from backendnn.callbacks import LearningRateScheduler

    kw = dict(solver="gd", eta0=0.5, max_iter=3, tol=None, random_state=0)
    a = bn.Perceptron(**kw).fit(X, Y, callbacks=[CosineAnnealing(t_max=2)])
    rates = [0.5, 0.25, 0.0]  # eta0 (1 + cos(pi k / 2)) / 2, k = 0, 1, 2
    b = bn.Perceptron(**kw).fit(X, Y, callbacks=[LearningRateScheduler(lambda e, lr: rates[e - 1])])
    np.testing.assert_array_equal(a.coef_, b.coef_)
    with pytest.raises(ValueError, match="eta0"):
        bn.Perceptron(eta0=0.5, max_iter=3).fit(X, Y, callbacks=[CosineAnnealing(t_max=3)])


def test_a_monitor_that_is_not_a_number_says_so():
    from backendnn.callbacks import EarlyStopping

    with pytest.raises(ValueError, match="not a number"):
        _clf().fit(X, Y, callbacks=[EarlyStopping(monitor="params")])


@pytest.mark.parametrize("path", ["ck-{}.st", "ck-{0}.st", "ck-{.st", "ck-{epoch[0]}.st"])
def test_a_checkpoint_path_that_is_no_format_of_keys_is_refused_at_once(tmp_path, path):
    with pytest.raises(ValueError, match="ModelCheckpoint path"):
        ModelCheckpoint(tmp_path / path)


@pytest.mark.parametrize("path", ["ck-{foo}.st", "ck-{validation_loss:.3f}.st"])
def test_a_checkpoint_path_the_record_cannot_fill_is_a_value_error(tmp_path, path):
    model = _clf().fit(X, Y)
    with pytest.raises(ValueError, match="does not fit epoch 1"):
        model.fit(X, Y, callbacks=[ModelCheckpoint(tmp_path / path, monitor="loss")])
    assert model.n_iter_ == 3 and list(tmp_path.iterdir()) == []


def test_csv_logger_appends_in_the_files_columns_or_refuses(tmp_path):
    path = tmp_path / "log.csv"
    model = _clf().fit(X, Y, callbacks=[CSVLogger(path)])
    model.set_params(max_iter=5).fit(X, Y, resume=True, callbacks=[CSVLogger(path, append=True)])
    rows = path.read_text().splitlines()
    assert len(rows) == 6 and all(len(r.split(",")) == len(rows[0].split(",")) for r in rows)
    assert [float(r.split(",")[1]) for r in rows[1:]] == pytest.approx(model.loss_curve_, rel=1e-15)
    logger = CSVLogger(path, append=True)  # records now hold validation values too
    with pytest.raises(ValueError, match="columns"):
        model.set_params(max_iter=7).fit(
            X, Y, resume=True, callbacks=[logger], validation_data=(X, Y)
        )
    assert len(path.read_text().splitlines()) == 6


# ---------------------------------------------------------------------- set_weights


def test_set_weights_places_floats_like_the_current_weights_and_refuses_integers(backend, tmp_path):
    model = _clf().fit(backend.asarray(X), Y)
    current = model.get_weights()
    given = {k: bn.to_numpy(v).astype(np.float32) for k, v in current.items()}
    model.set_weights(given)
    for k, v in model.get_weights().items():
        assert bn.array_namespace(v) is bn.array_namespace(current[k])
        assert v.dtype == current[k].dtype
        np.testing.assert_array_equal(bn.to_numpy(v), given[k].astype(np.float64))
    bn.save(model, tmp_path / "m.st", include_optimizer=True)
    np.testing.assert_array_equal(bn.load(tmp_path / "m.st").coefs_[0], given["layers.0.W"])
    with pytest.raises(ValueError, match="floating"):
        model.set_weights({k: np.ones(v.shape, dtype=int) for k, v in given.items()})
    np.testing.assert_array_equal(bn.to_numpy(model.coefs_[0]), given["layers.0.W"])


def test_summary_of_an_unfitted_model_says_fit_first():
    with pytest.raises(bn.NotFittedError):
        bn.MLPClassifier().summary()


# ---------------------------------------------------------------------- custom losses


class _Shaped(Loss):
    output = "identity"

    def __init__(self, kind):
        self.kind = kind

    def __call__(self, y, h, sample_weight=None):
        value = ((h - y) ** 2).sum() / 2
        if self.kind == "columns":
            return value, (h - y)[:, :1]
        if self.kind == "rows":
            return value, (h - y)[:1]
        if self.kind == "value":
            return (h - y) ** 2, h - y
        return value


@pytest.mark.parametrize("kind", ["columns", "rows", "value", "no pair"])
@pytest.mark.parametrize("solver", ["adam", "lbfgs"])
def test_a_loss_of_the_wrong_shapes_is_named(kind, solver):
    y2 = np.stack([X[:, 0], X[:, 1]], axis=1)
    model = bn.NeuralNetRegressor(
        [Dense(3), Activation("relu")], loss=_Shaped(kind), solver=solver, max_iter=2
    )
    with pytest.raises(ValueError, match=r"must return \(value, dL/dh\)"):
        model.fit(X, y2)


# ---------------------------------------------------------------------- damaged files


def _saved(tmp_path):
    Xb, yb = blobs3()
    model = bn.MLPClassifier(
        (6,), solver="sgd", random_state=0, early_stopping=True, n_iter_no_change=50,
        batch_size=16, max_iter=4,
    )  # fmt: skip
    path = tmp_path / "run.safetensors"
    bn.save(model.fit(Xb, yb), path, include_optimizer=True)
    return path


@pytest.mark.parametrize(
    "edit, match",
    [
        (lambda t: t["history"].update(best_loss=10**400), "best_loss"),
        (lambda t: t["optimizer"]["schedule"].update(lr=10**400), "schedule.lr"),
        (lambda t: t["optimizer"]["schedule"].update(lr="inf"), "learning rates"),
        (lambda t: t["optimizer"]["schedule"].update(learning_rate_init="inf"), "learning rates"),
        (lambda t: t["optimizer"]["schedule"].update(power_t="nan"), "power_t"),
        (lambda t: t["rng"]["state"].__setitem__(2, 10**30), "training.rng"),
        (lambda t: t["rng"]["state"].__setitem__(1, [2**40] * 624), "training.rng"),
        (lambda t: t.update(rng=None), "training.rng"),
        (lambda t: t["history"].update(validation_scores=[0.5] * 40), "validation curves"),
        (lambda t: t["history"].update(validation_scores=[]), "validation curves"),
    ],
)
def test_a_damaged_training_state_is_a_value_error(tmp_path, edit, match):
    path = _saved(tmp_path)
    meta = read_meta(path)
    edit(meta["training"])
    write_meta(path, json.dumps(meta))
    with pytest.raises(ValueError, match=match):
        bn.load(path)


def test_an_empty_side_of_the_split_is_refused(tmp_path):
    from safetensors.numpy import load_file, save_file

    path = _saved(tmp_path)
    meta, tensors = read_meta(path), load_file(str(path))
    n = len(tensors["training.split.train"]) + len(tensors["training.split.validation"])
    tensors["training.split.train"] = np.arange(n, dtype=np.int64)
    tensors["training.split.validation"] = np.zeros(0, dtype=np.int64)
    tensors["training.order"] = np.arange(n, dtype=np.int64)
    save_file(tensors, str(path), metadata={"backendnn": json.dumps(meta)})
    with pytest.raises(ValueError, match="both sides"):
        bn.load(path)
