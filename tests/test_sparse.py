"""Sparse input (scipy.sparse matrices and arrays): a sparse fit equals the dense fit from
the same seed on every backend, predictions equal the dense ones, and the whole matrix is
never densified (a subprocess fits and predicts a matrix that would take 4 GB dense).
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

import backendnn as bn
from backendnn import _backend
from backendnn.data import sparse as sparse_source
from tests.conftest import assert_close  # first: conftest sets JAX_ENABLE_X64 before jax loads

sp = pytest.importorskip("scipy.sparse")

pytestmark = pytest.mark.filterwarnings("ignore::backendnn.ConvergenceWarning")

RNG = np.random.default_rng(0)
X_SPARSE = sp.random(53, 9, density=0.3, format="csr", random_state=1)
X_DENSE = X_SPARSE.toarray()
LABELS = RNG.integers(0, 3, 53)
TARGETS = X_DENSE @ RNG.normal(size=9) + 0.1 * RNG.normal(size=53)
WEIGHTS = RNG.uniform(0.0, 2.0, 53)
WEIGHTS[:5] = 0.0  # a block of zero weight where L-BFGS works in blocks of a few rows

FORMATS = {
    "csr_matrix": sp.csr_matrix,
    "csc_matrix": sp.csc_matrix,
    "csr_array": sp.csr_array,
    "coo_array": sp.coo_array,
}


def _model(kind, solver, **kw):
    common = dict(solver=solver, max_iter=4, batch_size=8, random_state=0, dtype="float64")
    common.update(kw)
    if kind == "classifier":
        return bn.MLPClassifier((5,), **common)
    return bn.MLPRegressor(hidden_layer_sizes=(5,), **common)


def _host(a):
    return _backend.to_numpy(a)


def _assert_same_fit(ours, ref, rtol=1e-12):
    np.testing.assert_allclose(ours.loss_curve_, ref.loss_curve_, rtol=rtol)
    for a, b in zip(ours.coefs_ + ours.intercepts_, ref.coefs_ + ref.intercepts_):
        np.testing.assert_allclose(_host(a), _host(b), rtol=rtol, atol=1e-14)


@pytest.mark.parametrize("weighted", [False, True], ids=["unweighted", "weighted"])
@pytest.mark.parametrize("solver", ["sgd", "adam", "lbfgs"])
@pytest.mark.parametrize("kind", ["classifier", "regressor"])
def test_sparse_fit_equals_dense_fit(backend, kind, solver, weighted, one_blas_thread):
    """Same seed, same batches, same numbers: loss curve and weights to 1e-12 (float64),
    the computation on the estimator's backend; CSR, CSC and sparse arrays alike."""
    fmt = list(FORMATS)[(len(kind) + len(solver) + weighted) % 3]
    y = LABELS if kind == "classifier" else TARGETS
    w = WEIGHTS if weighted else None
    ours = _model(kind, solver, backend=backend.name).fit(FORMATS[fmt](X_SPARSE), y, w)
    ref = _model(kind, solver).fit(backend.asarray(X_DENSE), y, w)
    _assert_same_fit(ours, ref)
    assert _backend.namespace_name(_backend.array_namespace(ours.coefs_[0])) == backend.name
    # prediction: a sparse X is host data, so it computes with NumPy (as dense NumPy X
    # does on a model fitted elsewhere)
    out, dense_out = ours.predict(X_SPARSE), ref.predict(X_DENSE)
    assert isinstance(out, np.ndarray)
    if kind == "classifier":
        np.testing.assert_array_equal(out, dense_out)
        np.testing.assert_allclose(
            ours.predict_proba(X_SPARSE), ref.predict_proba(X_DENSE), rtol=1e-12
        )
        assert ours.score(X_SPARSE, y) == ref.score(X_DENSE, y)
    else:
        np.testing.assert_allclose(out, dense_out, rtol=1e-12, atol=1e-14)


@pytest.mark.parametrize("fmt", list(FORMATS) + ["csc_array", "lil_matrix", "dok_array"])
def test_every_format(fmt, one_blas_thread):
    make = FORMATS.get(fmt) or getattr(sp, fmt)
    ours = _model("classifier", "adam").fit(make(X_SPARSE), LABELS)
    ref = _model("classifier", "adam").fit(X_DENSE, LABELS)
    _assert_same_fit(ours, ref)
    np.testing.assert_allclose(ours.predict_proba(make(X_SPARSE)), ref.predict_proba(X_DENSE))


def test_sparse_on_backend_predicts_in_the_fitted_library_for_its_arrays(backend):
    """Dense arrays of the backend still predict there; sparse X predicts on the host."""
    model = _model("regressor", "sgd", backend=backend.name).fit(X_SPARSE, TARGETS)
    out = model.predict(backend.asarray(X_DENSE))
    assert_close(out, _host(model.predict(X_SPARSE)), backend=backend, rtol=1e-12, atol=1e-14)


@pytest.mark.parametrize("weighted", [False, True], ids=["unweighted", "weighted"])
def test_lbfgs_in_blocks(monkeypatch, weighted, one_blas_thread):
    """Blocks of 4 rows (the first all zero weight when weighted): the blocked objective
    equals the dense one at any point, and the fit follows the dense fit."""
    monkeypatch.setattr(sparse_source, "BLOCK_BYTES", 4 * 9 * 8)
    w = WEIGHTS if weighted else None
    ours = _model("classifier", "lbfgs", max_iter=15).fit(X_SPARSE, LABELS, w)
    ref = _model("classifier", "lbfgs", max_iter=15).fit(X_DENSE, LABELS, w)
    _assert_same_fit(ours, ref, rtol=1e-9)

    from backendnn.data import ArrayData, SparseData
    from backendnn.train import make_objective

    xp = _backend.namespace("numpy")
    net = bn.Network.mlp(9, (5,), 3)
    params = net.init(0, xp=xp, dtype=xp.float64)
    Y = np.eye(3)[LABELS]
    W = None if w is None else xp.asarray(w)
    rows = sparse_source.sparse_input(X_SPARSE, None, None)
    assert len(list(rows.blocks())) == 14

    def make(a):
        return make_objective(net, params, "softmax_cross_entropy", a, xp)

    blocked = SparseData(rows, xp.asarray(Y), W).objective(make, 0.3)
    whole = make(0.3)
    dense = ArrayData(xp.asarray(X_DENSE), xp.asarray(Y), W)
    v = xp.asarray(RNG.normal(size=9 * 5 + 5 + 5 * 3 + 3))
    (value, grad), (ref_value, ref_grad) = blocked(v), whole(v, dense.X, dense.Y, dense.W)
    np.testing.assert_allclose(float(value), float(ref_value), rtol=1e-13)
    np.testing.assert_allclose(grad, ref_grad, rtol=1e-12, atol=1e-15)


def test_prediction_in_blocks(monkeypatch):
    """Blocks of 5 rows predict as the whole matrix does, to rounding: the BLAS may pick
    another kernel for 5 rows than for 53 (OpenBLAS's Haswell kernels differ in the last
    digit: OPENBLAS_CORETYPE=Haswell)."""
    model = _model("classifier", "adam").fit(X_SPARSE, LABELS)
    whole = model.predict_proba(X_SPARSE)
    monkeypatch.setattr(sparse_source, "BLOCK_BYTES", 5 * 9 * 8)  # 11 blocks of 5 rows
    np.testing.assert_allclose(model.predict_proba(X_SPARSE), whole, rtol=1e-12)
    np.testing.assert_array_equal(model.predict(X_SPARSE), model.predict(X_DENSE))


def test_partial_fit_and_warm_start(one_blas_thread):
    ours = _model("classifier", "sgd")
    ref = _model("classifier", "sgd")
    for _ in range(3):
        ours.partial_fit(X_SPARSE, LABELS, classes=[0, 1, 2])
        ref.partial_fit(X_DENSE, LABELS, classes=[0, 1, 2])
    _assert_same_fit(ours, ref)
    ours = _model("regressor", "adam", warm_start=True).fit(X_SPARSE, TARGETS)
    ref = _model("regressor", "adam", warm_start=True).fit(X_DENSE, TARGETS)
    _assert_same_fit(ours.fit(sp.csc_matrix(X_SPARSE), TARGETS), ref.fit(X_DENSE, TARGETS))


def test_early_stopping(one_blas_thread):
    kw = dict(early_stopping=True, validation_fraction=0.2, max_iter=6)
    ours = _model("classifier", "adam", **kw).fit(X_SPARSE, LABELS, WEIGHTS)
    ref = _model("classifier", "adam", **kw).fit(X_DENSE, LABELS, WEIGHTS)
    _assert_same_fit(ours, ref)
    np.testing.assert_allclose(ours.validation_scores_, ref.validation_scores_, rtol=1e-12)


def test_perceptron_and_layer_stacks(one_blas_thread):
    for kw in (dict(random_state=0), dict(solver="gd", batch_size=10), dict(penalty="l1")):
        ours = bn.Perceptron(max_iter=5, **kw).fit(X_SPARSE, LABELS)
        ref = bn.Perceptron(max_iter=5, **kw).fit(X_DENSE, LABELS)
        np.testing.assert_allclose(_host(ours.coef_), _host(ref.coef_), rtol=1e-12)
        np.testing.assert_array_equal(
            ours.decision_function(X_SPARSE), ref.decision_function(X_DENSE)
        )
        assert ours.score(X_SPARSE, LABELS) == ref.score(X_DENSE, LABELS)

    layers = [bn.layers.Dense(9, 4), bn.layers.Activation("tanh")]
    kw = dict(solver="sgd", max_iter=3, batch_size=8, random_state=0, dtype="float64")
    net = bn.NeuralNetClassifier(layers, **kw).fit(sp.csr_array(X_SPARSE), LABELS)
    net_ref = bn.NeuralNetClassifier(layers, **kw).fit(X_DENSE, LABELS)
    np.testing.assert_allclose(net.loss_curve_, net_ref.loss_curve_, rtol=1e-12)
    np.testing.assert_allclose(net.predict_proba(X_SPARSE), net_ref.predict_proba(X_DENSE))


# ---------------------------------------------------------------------- checks, dtypes


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_non_finite_entries(bad):
    X = X_SPARSE.copy()
    X.data[3] = bad
    with pytest.raises(ValueError, match="X contains NaN or infinity"):
        _model("regressor", "sgd").fit(X, TARGETS)
    model = _model("regressor", "sgd").fit(X_SPARSE, TARGETS)
    with pytest.raises(ValueError, match="X contains NaN or infinity"):
        model.predict(X)


@pytest.mark.filterwarnings("ignore:overflow encountered:RuntimeWarning")
def test_dtypes():
    ints = sp.csr_matrix((X_DENSE * 10).astype(np.int64))
    model = bn.MLPRegressor(hidden_layer_sizes=(3,), max_iter=2, random_state=0)
    model.fit(ints, TARGETS)
    ref = bn.MLPRegressor(hidden_layer_sizes=(3,), max_iter=2, random_state=0)
    ref.fit(ints.toarray(), TARGETS)
    assert model.coefs_[0].dtype == np.float32 == ref.coefs_[0].dtype  # integers: float32
    np.testing.assert_array_equal(model.loss_curve_, ref.loss_curve_)
    assert model.predict(ints).dtype == np.float32
    big = sp.csr_matrix(np.full((4, 2), 1e300))
    with pytest.raises(ValueError, match="overflows float32"):
        bn.MLPRegressor(dtype="float32").fit(big, np.ones(4))
    f32 = bn.MLPRegressor(max_iter=1).fit(X_SPARSE.astype(np.float32), TARGETS)
    assert f32.coefs_[0].dtype == np.float32
    f64 = bn.MLPRegressor(max_iter=1, dtype="float64").fit(X_SPARSE.astype(np.float32), TARGETS)
    assert f64.coefs_[0].dtype == np.float64


def test_bad_sparse_input():
    with pytest.raises(ValueError, match="Complex data not supported"):
        bn.MLPRegressor().fit(sp.csr_matrix(X_DENSE.astype(complex)), TARGETS)
    with pytest.raises(ValueError, match="0 sample"):
        bn.MLPRegressor().fit(sp.csr_matrix((0, 3)), TARGETS[:0])
    with pytest.raises(ValueError, match=r"0 feature\(s\)"):
        bn.MLPRegressor().fit(sp.csr_matrix((4, 0)), TARGETS[:4])
    with pytest.raises(ValueError, match="different numbers of samples"):
        bn.MLPRegressor().fit(X_SPARSE, TARGETS[:-1])
    model = bn.MLPRegressor(max_iter=1).fit(X_SPARSE, TARGETS)
    with pytest.raises(ValueError, match="X has 8 features, but MLPRegressor is expecting 9"):
        model.predict(X_SPARSE[:, :8])


# ---------------------------------------------------------------------- memory


_CHILD = """
import resource, sys, time
import numpy as np, scipy.sparse as sp
import backendnn as bn

n, d, per_row = 200_000, 2_500, 5                     # 0.2 % dense: 4 GB as float64
rng = np.random.default_rng(0)
cols = rng.integers(0, d, n * per_row)
X = sp.csr_matrix((rng.normal(size=n * per_row), cols, np.arange(0, n * per_row + 1, per_row)),
                  shape=(n, d))
y = rng.integers(0, 2, n)
tic = time.perf_counter()
model = bn.MLPClassifier((8,), batch_size=2_000, max_iter=1, random_state=0).fit(X, y)
proba = model.predict_proba(X)
assert proba.shape == (n, 2) and np.isfinite(proba).all()
# VmHWM: this process image's peak (ru_maxrss would keep the forking parent's, whose
# pages the child shared before exec: a full test run's pytest)
with open("/proc/self/status") as status:
    peak = 1024 * int(next(l for l in status if l.startswith("VmHWM")).split()[1])
print(peak, time.perf_counter() - tic)
"""


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="/proc/self/status, RLIMIT_AS")
def test_whole_matrix_never_densified(tmp_path: Path):
    """Fit (one epoch, 100 batches) and predict a 200,000 x 2,500 matrix at 0.2 % density:
    4 GB dense (12 MB as CSR). The child's address space is capped at 2 GiB, so
    densifying it fails (MemoryError) rather than swapping; and its peak resident memory
    must stay under 1 GB, a quarter of the dense matrix (measured: about 0.26 GB)."""
    script = tmp_path / "child.py"
    script.write_text(
        "import resource\n"
        "resource.setrlimit(resource.RLIMIT_AS, (2 << 30, 2 << 30))\n" + textwrap.dedent(_CHILD)
    )
    env = dict(os.environ, OPENBLAS_NUM_THREADS="1", OMP_NUM_THREADS="1", MKL_NUM_THREADS="1")
    env["PYTHONPATH"] = os.pathsep.join(
        [str(Path(bn.__file__).parents[1])] + [p for p in [env.get("PYTHONPATH")] if p]
    )
    done = subprocess.run(
        [sys.executable, str(script)], capture_output=True, text=True, env=env, timeout=120
    )
    assert done.returncode == 0, done.stderr[-3000:]
    peak, seconds = done.stdout.split()
    assert int(peak) < 1e9, f"peak RSS {int(peak) / 1e9:.2f} GB"
