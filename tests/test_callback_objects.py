"""``backendnn.callbacks``: objects called with the model around every epoch. Every
callback sees every epoch, the model shows the epoch just finished, the ready-made ones
equal their references (PyTorch's schedulers, the weights recorded at the best epoch, the
files they write), and a schedule never recompiles a JAX epoch."""

from __future__ import annotations

import csv
import logging
import math

import numpy as np
import pytest

import backendnn as bn
from backendnn.callbacks import (
    Callback,
    CosineAnnealing,
    CSVLogger,
    EarlyStopping,
    LearningRateScheduler,
    ModelCheckpoint,
    ReduceLROnPlateau,
)
from tests._helpers import blobs3

pytestmark = [
    pytest.mark.usefixtures("one_blas_thread"),
    pytest.mark.filterwarnings("ignore::backendnn.ConvergenceWarning"),
]


class Recorder(Callback):
    """Every call, and the model's state at each epoch's end."""

    def __init__(self):
        self.calls, self.begins, self.ends, self.shown = [], [], [], []

    def on_fit_begin(self, model):
        self.calls.append("fit_begin")

    def on_epoch_begin(self, model, record):
        self.calls.append("epoch_begin")
        self.begins.append(dict(record))

    def on_epoch_end(self, model, record):
        self.calls.append("epoch_end")
        self.ends.append({k: v for k, v in record.items() if k not in ("params", "buffers")})
        weights = model.get_weights()
        self.shown.append((model.n_iter_, list(model.loss_curve_), weights, record["params"]))

    def on_fit_end(self, model):
        self.calls.append("fit_end")


def _data(backend):
    X, y = blobs3()
    return backend.asarray(X[30:], "float64"), y[30:], backend.asarray(X[:30], "float64"), y[:30]


def test_every_callback_sees_every_epoch_and_the_model_shows_it(backend):
    X, y, Xv, yv = _data(backend)
    rec, rec2, plain = Recorder(), Recorder(), []
    stop_at = EarlyStopping(monitor="loss", patience=100)  # never stops: runs all epochs
    clf = bn.MLPClassifier((5,), max_iter=6, random_state=0, tol=0.0)
    clf.fit(X, y, validation_data=(Xv, yv), callbacks=[rec, plain.append, stop_at, rec2])
    assert rec.calls == ["fit_begin"] + ["epoch_begin", "epoch_end"] * 6 + ["fit_end"]
    assert rec2.calls == rec.calls and len(plain) == 6
    assert [r["epoch"] for r in rec.begins] == [r["epoch"] for r in rec.ends] == [1, 2, 3, 4, 5, 6]
    assert [r["epoch"] for r in plain] == [1, 2, 3, 4, 5, 6]
    for epoch, (n_iter, curve, weights, params) in enumerate(rec.shown, 1):
        # the model's fitted attributes are the epoch's: its count, its curve, its weights
        assert n_iter == epoch and len(curve) == epoch
        assert weights["layers.0.W"] is params[0][0] and weights["layers.2.b"] is params[2][1]
    assert rec.ends[-1]["validation_loss"] == clf.validation_loss_curve_[-1]


def test_a_plain_function_and_an_object_stop_training():
    X, y = blobs3()

    class StopAt(Callback):
        def on_epoch_end(self, model, record):
            return record["epoch"] == 4

    clf = bn.MLPClassifier((5,), max_iter=50, random_state=0).fit(X, y, callbacks=[StopAt()])
    assert clf.n_iter_ == 4 == len(clf.loss_curve_)


def test_a_failing_callback_leaves_the_model_as_it_was():
    X, y = blobs3()
    clf = bn.MLPClassifier((5,), max_iter=3, random_state=0).fit(X, y)
    before = {k: v for k, v in clf.__dict__.items() if not k.startswith("_")}

    class Boom(Callback):
        def on_epoch_end(self, model, record):
            if record["epoch"] == 2:
                raise RuntimeError("boom")

    with pytest.raises(RuntimeError, match="boom"):
        clf.fit(X, y, callbacks=[Recorder(), Boom()])
    after = {k: v for k, v in clf.__dict__.items() if not k.startswith("_")}
    assert after.keys() == before.keys()
    for k, v in before.items():
        assert after[k] is v, k


def test_early_stopping_restores_the_best_epochs_weights(backend):
    X, y, Xv, yv = _data(backend)
    rec = Recorder()
    stop = EarlyStopping(monitor="validation_loss", patience=3, min_delta=0.0)
    clf = bn.MLPClassifier(
        (6,), max_iter=300, random_state=0, learning_rate_init=0.5, solver="sgd", momentum=0.0
    )
    clf.fit(X, y, validation_data=(Xv, yv), callbacks=[rec, stop])
    losses = clf.validation_loss_curve_
    best = int(np.argmin(losses))
    assert stop.stopped_epoch == clf.n_iter_ == best + 1 + 3 < 300
    assert stop.best_epoch == best + 1 and stop.best == losses[best]
    kept, shown = clf.get_weights(), rec.shown[best][2]
    for name in kept:
        np.testing.assert_array_equal(bn.to_numpy(kept[name]), bn.to_numpy(shown[name]))
    # and the model predicts with them: its validation loss is the best epoch's
    from sklearn.metrics import log_loss

    assert log_loss(yv, bn.to_numpy(clf.predict_proba(Xv))) == pytest.approx(
        losses[best], rel=1e-10
    )


def test_model_checkpoint_writes_the_best_epoch(tmp_path):
    X, y = blobs3()
    rec = Recorder()
    path = tmp_path / "best-{epoch:03d}.safetensors"
    ckpt = ModelCheckpoint(path, monitor="validation_score", save_best_only=True)
    clf = bn.MLPClassifier((6,), max_iter=12, random_state=0, learning_rate_init=0.05)
    clf.fit(X[30:], y[30:], validation_data=(X[:30], y[:30]), callbacks=[rec, ckpt])
    scores = clf.validation_scores_
    improving = [e for e in range(1, 13) if scores[e - 1] > max(scores[: e - 1], default=-1)]
    assert [e for e, _ in ckpt.saved] == improving
    epoch, last = ckpt.saved[-1]
    assert last == str(tmp_path / f"best-{epoch:03d}.safetensors")
    loaded = bn.load(last)
    assert loaded.n_iter_ == epoch
    for name, a in rec.shown[epoch - 1][2].items():
        np.testing.assert_array_equal(bn.to_numpy(loaded.get_weights()[name]), bn.to_numpy(a))
    assert not list(tmp_path.glob(".backendnn-*"))  # atomic writes leave no temporary file


def test_learning_rate_scheduler_sets_each_epochs_rate():
    X, y = blobs3()
    rec = Recorder()
    sched = LearningRateScheduler(lambda epoch, lr: 0.01 * epoch)
    bn.MLPClassifier((5,), max_iter=5, random_state=0, solver="sgd").fit(
        X, y, callbacks=[sched, rec]
    )
    assert [r["learning_rate"] for r in rec.begins] == pytest.approx(
        [0.01 * e for e in range(1, 6)]
    )


def test_a_schedule_moves_the_sgd_steps_as_torch_would(backend):
    """Full-batch SGD without momentum at the scheduled rates: each epoch's step is
    lr_e * gradient, so the weights equal a run with those rates done by hand in torch."""
    torch = pytest.importorskip("torch")
    X, y = blobs3()
    rates = [0.3, 0.1, 0.05, 0.2]
    clf = bn.MLPRegressor(
        hidden_layer_sizes=(4,),
        solver="gd",
        momentum=0.0,
        alpha=0.0,
        max_iter=4,
        random_state=0,
        shuffle=False,
    )
    start = bn.MLPRegressor(
        hidden_layer_sizes=(4,), max_iter=1, random_state=0, solver="gd", learning_rate_init=1e-300
    ).fit(X, y.astype(float))
    clf.fit(
        backend.asarray(X, "float64"),
        y.astype(float),
        callbacks=[LearningRateScheduler(lambda e, lr: rates[e - 1])],
    )
    W1, b1, W2, b2 = (
        torch.tensor(bn.to_numpy(a), requires_grad=True)
        for a in (start.coefs_[0], start.intercepts_[0], start.coefs_[1], start.intercepts_[1])
    )
    Xt, yt = torch.tensor(X), torch.tensor(y.astype(float))[:, None]
    for lr in rates:
        h = torch.relu(Xt @ W1 + b1) @ W2 + b2
        loss = ((h - yt) ** 2).mean() / 2
        grads = torch.autograd.grad(loss, (W1, b1, W2, b2))
        with torch.no_grad():
            for p, g in zip((W1, b1, W2, b2), grads):
                p -= lr * g
    np.testing.assert_allclose(
        bn.to_numpy(clf.coefs_[0]), W1.detach().numpy(), rtol=1e-10, atol=1e-13
    )
    np.testing.assert_allclose(
        bn.to_numpy(clf.coefs_[1]), W2.detach().numpy(), rtol=1e-10, atol=1e-13
    )


def test_cosine_annealing_equals_torch():
    torch = pytest.importorskip("torch")
    X, y = blobs3()
    rec = Recorder()
    bn.MLPClassifier((5,), max_iter=12, random_state=0, learning_rate_init=0.1).fit(
        X, y, callbacks=[CosineAnnealing(t_max=8, eta_min=0.001), rec]
    )
    opt = torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=0.1)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=8, eta_min=0.001)
    theirs = []
    for _ in range(9):
        theirs.append(opt.param_groups[0]["lr"])
        opt.step()
        sched.step()
    ours = [r["learning_rate"] for r in rec.begins]
    np.testing.assert_allclose(ours[:9], theirs, rtol=1e-12)
    assert ours[9:] == [0.001] * 3  # stays at eta_min after t_max epochs


def test_cosine_warmup_is_linear_then_cosine():
    c = CosineAnnealing(t_max=4, warmup=2)
    c.base = 1.0
    assert [c.rate(e) for e in range(1, 8)] == pytest.approx(
        [
            0.5,
            1.0,
            1.0,
            (1 + math.cos(math.pi / 4)) / 2,
            0.5,
            (1 + math.cos(3 * math.pi / 4)) / 2,
            0.0,
        ]
    )


def test_reduce_on_plateau_equals_torch():
    torch = pytest.importorskip("torch")
    rng = np.random.RandomState(0)
    losses = list(np.r_[np.linspace(1, 0.5, 5), 0.5 + 0.01 * rng.rand(20)])
    ours = ReduceLROnPlateau(monitor="validation_loss", factor=0.5, patience=3)
    ours.on_fit_begin(None)
    opt = torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=1.0)
    # Keras's patience p: reduce after p epochs without improvement; torch's after p + 1
    theirs = torch.optim.lr_scheduler.ReduceLROnPlateau(
        opt, factor=0.5, patience=2, threshold=0.0, threshold_mode="abs"
    )
    lr = 1.0
    for epoch, v in enumerate(losses, 1):
        record = {"epoch": epoch, "validation_loss": v, "learning_rate": lr}
        ours.on_epoch_end(None, record)
        lr = record["learning_rate"]
        theirs.step(v)
        assert lr == opt.param_groups[0]["lr"], epoch


def test_reduce_on_plateau_in_a_fit_and_its_relation_to_adaptive():
    X, y = blobs3()
    rec = Recorder()
    # a huge min_delta: no epoch improves, so the rate drops every `patience` epochs
    cb = ReduceLROnPlateau(monitor="loss", factor=0.5, patience=2, min_delta=1e9)
    bn.MLPClassifier(
        (5,),
        max_iter=7,
        random_state=0,
        learning_rate_init=0.1,
        solver="sgd",
        learning_rate="constant",
    ).fit(X, y, callbacks=[cb, rec])
    assert [r["learning_rate"] for r in rec.begins] == pytest.approx(
        [0.1, 0.1, 0.1, 0.05, 0.05, 0.025, 0.025]
    )


def test_csv_logger_writes_every_record(tmp_path):
    X, y = blobs3()
    rec = Recorder()
    path = tmp_path / "log.csv"
    clf = bn.MLPClassifier((5,), max_iter=4, random_state=0)
    clf.fit(X[30:], y[30:], validation_data=(X[:30], y[:30]), callbacks=[rec, CSVLogger(path)])
    rows = list(csv.DictReader(path.open()))
    assert len(rows) == 4
    for row, end in zip(rows, rec.ends):
        for key in ("epoch", "loss", "validation_loss", "validation_score", "learning_rate"):
            assert float(row[key]) == pytest.approx(end[key], rel=1e-15)
    clf.fit(X[30:], y[30:], validation_data=(X[:30], y[:30]), callbacks=[CSVLogger(path)])
    assert len(list(csv.DictReader(path.open()))) == 4  # a new fit starts the file anew


def test_monitor_errors_name_the_problem():
    X, y = blobs3()
    with pytest.raises(ValueError, match="validation_data"):
        bn.MLPClassifier((5,), max_iter=2).fit(X, y, callbacks=[EarlyStopping()])
    with pytest.raises(KeyError, match="validation_los"):
        bn.MLPClassifier((5,), max_iter=2).fit(
            X, y, callbacks=[EarlyStopping(monitor="validation_los")]
        )
    with pytest.raises(ValueError, match="patience"):
        EarlyStopping(patience=0)
    with pytest.raises(ValueError, match="factor"):
        ReduceLROnPlateau(factor=1.5)
    with pytest.raises(TypeError, match="callable or have one of the methods"):
        bn.MLPClassifier((5,)).fit(X, y, callbacks=[object()])
    with pytest.raises(ValueError, match="lbfgs"):
        bn.MLPClassifier((5,), solver="lbfgs").fit(X, y, callbacks=[CosineAnnealing(5)])
    bad = LearningRateScheduler(lambda e, lr: -1.0)
    with pytest.raises(ValueError, match="learning rate"):
        bn.MLPClassifier((5,), max_iter=2).fit(X, y, callbacks=[bad])


def test_a_schedule_does_not_recompile_the_jax_epoch(caplog):
    jax = pytest.importorskip("jax")
    X, y = blobs3()
    compiled_after_first = []

    class Count(Callback):
        def on_epoch_end(self, model, record):
            if record["epoch"] <= 2:  # the second epoch compiles the reshuffle's gather once
                caplog.clear()
            else:
                compiled_after_first.extend(
                    r.getMessage() for r in caplog.records if "Compiling" in r.getMessage()
                )
                caplog.clear()

    jax.config.update("jax_log_compiles", True)
    try:
        with caplog.at_level(logging.WARNING):
            clf = bn.MLPClassifier((5,), max_iter=6, random_state=0, backend="jax", batch_size=20)
            clf.fit(X, y, callbacks=[CosineAnnealing(t_max=6, warmup=2), Count()])
    finally:
        jax.config.update("jax_log_compiles", False)
    assert clf.n_iter_ == 6
    assert compiled_after_first == []


def test_set_weights_during_an_epoch_is_refused():
    X, y = blobs3()

    class Meddle(Callback):
        def on_epoch_end(self, model, record):
            model.set_weights(model.get_weights())

    with pytest.raises(ValueError, match="on_fit_end"):
        bn.MLPClassifier((5,), max_iter=3).fit(X, y, callbacks=[Meddle()])
