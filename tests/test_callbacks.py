"""``fit(..., callbacks=[...])``: called once per epoch (once per L-BFGS iteration) with one
documented record, a callback returning True stops training, and anything but a list of
callables is refused before training. (Early stopping's records: ``tests/test_early_stopping.py``.)
"""

from __future__ import annotations

import pytest

import backendnn as bn
from backendnn import MLPClassifier, MLPRegressor
from tests._helpers import X40, Y40, blobs3

pytestmark = [
    pytest.mark.usefixtures("one_blas_thread"),
    pytest.mark.filterwarnings("ignore::backendnn.ConvergenceWarning"),
]


def test_callbacks_once_per_epoch_and_stop(backend):
    X, y = blobs3()
    Xb, yb = backend.asarray(X, "float64"), backend.asarray(y, "int64")
    records = []
    clf = MLPClassifier((5,), max_iter=7, random_state=0, tol=0.0)
    clf.fit(Xb, yb, callbacks=[records.append])
    assert len(records) == clf.n_iter_ == 7
    assert [r["epoch"] for r in records] == list(range(1, 8))
    assert [r["loss"] for r in records] == clf.loss_curve_  # the same numbers, recorded twice
    for key in ("validation_score", "learning_rate", "seconds", "samples_per_second", "params"):
        assert key in records[0]

    def stop_at_three(record):
        return record["epoch"] == 3

    seen = []
    clf2 = MLPRegressor(hidden_layer_sizes=(5,), max_iter=50, random_state=0)
    clf2.fit(Xb, backend.asarray(X[:, 0], "float64"), callbacks=[seen.append, stop_at_three])
    assert clf2.n_iter_ == 3 and len(clf2.loss_curve_) == 3 and len(seen) == 3
    # L-BFGS calls back once per iteration
    lb = []
    MLPClassifier((5,), solver="lbfgs", max_iter=4, random_state=0).fit(
        Xb, yb, callbacks=[lb.append]
    )
    assert [r["epoch"] for r in lb] == [1, 2, 3, 4]


def test_fit_documents_every_callback_record_key():
    records = []
    bn.MLPRegressor(hidden_layer_sizes=(3,), max_iter=1).fit(X40, Y40, callbacks=[records.append])
    for key in records[0]:
        assert f"``{key}``" in bn.MLPRegressor.fit.__doc__, key


def test_callbacks_are_checked_before_training(backend):
    model = bn.MLPRegressor(hidden_layer_sizes=(3,), max_iter=1)
    with pytest.raises(TypeError, match="list of callables"):
        model.fit(backend.asarray(X40), backend.asarray(Y40), callbacks=print)
    assert not hasattr(model, "coefs_")
