"""Dask arrays: streamed training (equal to the in-memory fit for the same batch order),
lazy prediction, a fit under a memory limit a quarter of the data's size, and a
``dask.distributed`` LocalCluster on loopback."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import warnings
from pathlib import Path

import numpy as np
import pytest

da = pytest.importorskip("dask.array")

import backendnn as bn  # noqa: E402
from backendnn import _backend  # noqa: E402
from backendnn.data import ArrayData  # noqa: E402
from backendnn.data import dask as dask_source  # noqa: E402

pytestmark = [
    pytest.mark.usefixtures("one_blas_thread"),
    pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning"),
]

ROOT = Path(__file__).resolve().parents[1]


def _data(n=1100, d=6, k=3, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, d))
    labels = np.array(["ant", "bee", "cat", "dog"][:k])
    y = labels[(X[:, 0] > 0).astype(int) + (X[:, 1] > 0.5) * (k > 2)]
    t = np.stack([X[:, 0] - X[:, 1], X[:, 2] ** 2], axis=1)
    return X, y, t


def _same_order_fits(monkeypatch, make, X, y, chunks, fit_kw=None, backend=None):
    """Fit ``make()`` on a dask array of X (chunks of ``chunks`` rows) and on the NumPy
    (or ``backend``) array of X, the in-memory fit given the dask epochs' row orders."""
    fit_kw = fit_kw or {}
    orders: list = []
    draw = dask_source.DaskData.permutation

    def recording(self, rng, previous=None):
        order = draw(self, rng, previous)
        orders.append(order.rows)
        return order

    monkeypatch.setattr(dask_source.DaskData, "permutation", recording)
    streamed = make().fit(da.from_array(X, chunks=(chunks, -1)), y, **fit_kw)
    replay = iter(list(orders))

    def replaying(self, rng, previous=None):
        return _backend.from_numpy(next(replay), xp=self.xp, device=_backend.device(self.X))

    monkeypatch.setattr(ArrayData, "permutation", replaying)
    Xm = X if backend is None else backend.asarray(X)
    in_memory = make().fit(Xm, y, **fit_kw)
    assert next(replay, None) is None  # both fits ran the same number of epochs
    return streamed, in_memory, orders


def _assert_same_fit(a, b, rtol=1e-12):
    np.testing.assert_allclose(a.loss_curve_, b.loss_curve_, rtol=rtol)
    assert a.n_iter_ == b.n_iter_ and a.t_ == b.t_
    for wa, wb in zip(a.coefs_ + a.intercepts_, b.coefs_ + b.intercepts_):
        assert type(wa) is type(wb)  # concrete arrays of the compute library
        np.testing.assert_allclose(bn.to_numpy(wa), bn.to_numpy(wb), rtol=rtol, atol=1e-14)


@pytest.mark.parametrize("solver", ["sgd", "adam"])
@pytest.mark.parametrize("kind", ["classifier", "regressor"])
def test_fit_equals_in_memory_fit_for_the_same_order(monkeypatch, backend, solver, kind):
    if backend.strictest:
        pytest.skip("the estimator's backend= puts arrays on the default device")
    X, y, t = _data(n=1000)
    target = y if kind == "classifier" else t
    cls = bn.MLPClassifier if kind == "classifier" else bn.MLPRegressor
    kw = dict(hidden_layer_sizes=(7,), solver=solver, batch_size=64, max_iter=3)
    kw.update(random_state=0, dtype="float64", backend=backend.name)
    # chunks of 250 rows: windows of 500 rows, batches that straddle windows
    a, b, orders = _same_order_fits(monkeypatch, lambda: cls(**kw), X, target, 250)
    assert len(orders) == 3
    for rows in orders:
        assert sorted(rows.tolist()) == list(range(len(X)))  # each row once per epoch
    # shuffled within and across chunks: the first window mixes two chunks
    assert len({r // 250 for r in orders[0][:500]}) == 2
    assert len({int(o[0]) // 250 for o in orders}) > 1 or orders[0][0] != orders[1][0]
    _assert_same_fit(a, b)
    xp = _backend.array_namespace(a.coefs_[0])
    assert _backend.namespace_name(xp) == backend.name


def test_unshuffled_fit_with_weights_and_images_equals_numpy():
    X, y, _ = _data(n=700, d=16)
    w = np.linspace(0.5, 2.0, len(X))
    kw = dict(hidden_layer_sizes=(5,), solver="sgd", batch_size=50, max_iter=3, shuffle=False)
    a = bn.MLPClassifier(**kw, random_state=1).fit(da.from_array(X, chunks=(130, 8)), y, w)
    b = bn.MLPClassifier(**kw, random_state=1).fit(X, y, w)
    _assert_same_fit(a, b)
    images = X.reshape(len(X), 1, 4, 4)  # NCHW, flattened by the MLP
    c = bn.MLPClassifier(**kw, random_state=1).fit(da.from_array(images, chunks=100), y, w)
    _assert_same_fit(c, b)
    assert c.image_shape_ == (1, 4, 4)
    out = c.predict_proba(da.from_array(images, chunks=100))
    np.testing.assert_allclose(out.compute(), b.predict_proba(X), rtol=1e-12)


def test_memmap_through_from_array_and_dask_targets_and_weights(tmp_path):
    X, _, t = _data(n=500)
    disk = np.lib.format.open_memmap(tmp_path / "X.npy", mode="w+", shape=X.shape)
    disk[:] = X
    disk.flush()
    on_disk = np.load(tmp_path / "X.npy", mmap_mode="r")
    w = np.linspace(1.0, 3.0, len(X))
    kw = dict(hidden_layer_sizes=(4,), max_iter=3, random_state=0, shuffle=False)
    a = bn.MLPRegressor(**kw).fit(
        da.from_array(on_disk, chunks=(120, -1)), da.from_array(t, chunks=120),
        sample_weight=da.from_array(w, chunks=120),
    )  # fmt: skip
    b = bn.MLPRegressor(**kw).fit(X, t, sample_weight=w)
    _assert_same_fit(a, b)


def test_partial_fit_equals_in_memory(monkeypatch):
    X, y, _ = _data(n=600)
    classes = np.unique(y)
    kw = dict(hidden_layer_sizes=(6,), batch_size=40, random_state=0)
    a, b = bn.MLPClassifier(**kw), bn.MLPClassifier(**kw)
    dX = da.from_array(X, chunks=110)
    for _ in range(3):  # each call draws a fresh rng from random_state: the same orders
        order = []
        draw = dask_source.DaskData.permutation

        def recording(self, rng, previous=None, order=order, draw=draw):
            out = draw(self, rng, previous)
            order.append(out.rows)
            return out

        with monkeypatch.context() as m:
            m.setattr(dask_source.DaskData, "permutation", recording)
            a.partial_fit(dX, y, classes=classes)
        with monkeypatch.context() as m:
            m.setattr(ArrayData, "permutation", lambda self, rng, previous=None, o=order: o[0])
            b.partial_fit(X, y, classes=classes)
    _assert_same_fit(a, b)


def test_predict_is_lazy_and_equals_numpy():
    X, y, t = _data(n=500)
    clf = bn.MLPClassifier((8,), max_iter=30, random_state=0).fit(X, y)
    dX = da.from_array(X, chunks=90)
    calls = []
    pred = clf.predict(dX.map_blocks(lambda b: calls.append(1) or b, meta=np.empty((0, 0))))
    assert isinstance(pred, da.Array) and not calls  # nothing computed yet
    assert pred.chunks[0] == dX.chunks[0]
    np.testing.assert_array_equal(pred.compute(), clf.predict(X))  # string labels
    for method in ("predict_proba", "predict_log_proba"):
        lazy = getattr(clf, method)(dX)
        assert isinstance(lazy, da.Array)
        np.testing.assert_allclose(lazy.compute(), getattr(clf, method)(X), rtol=1e-12)
    assert clf.score(dX, da.from_array(y, chunks=90)) == clf.score(X, y)
    reg = bn.MLPRegressor(hidden_layer_sizes=(8,), max_iter=30, random_state=0).fit(X, t[:, 0])
    lazy = reg.predict(dX)
    assert isinstance(lazy, da.Array) and lazy.shape == (500,)
    np.testing.assert_allclose(lazy.compute(), reg.predict(X), rtol=1e-12)
    assert reg.score(dX, t[:, 0]) == pytest.approx(reg.score(X, t[:, 0]), rel=1e-12)
    # weights taken at the call: a later fit does not change the lazy result
    before = clf.predict_proba(dX)
    expected = clf.predict_proba(X)
    clf.partial_fit(X, y)
    np.testing.assert_allclose(before.compute(), expected, rtol=1e-12)


def test_early_stopping_holds_only_the_validation_rows(monkeypatch):
    X, y, _ = _data(n=800)
    kw = dict(hidden_layer_sizes=(6,), early_stopping=True, max_iter=5, random_state=0)
    clf = bn.MLPClassifier(**kw).fit(da.from_array(X, chunks=150), y)
    ref = bn.MLPClassifier(**kw).fit(X, y)
    assert len(clf.validation_scores_) == clf.n_iter_ == ref.n_iter_
    assert clf.validation_scores_[0] == pytest.approx(ref.validation_scores_[0], abs=0.1)
    assert clf.t_ == ref.t_  # the same 90 % of the rows trained


@pytest.mark.parametrize("weighted", [False, True])
def test_lbfgs_streams_each_evaluation_and_equals_in_memory(weighted):
    """L-BFGS sums each evaluation over the windows of chunks (weighted shares, a
    zero-weight stretch left out): the same iterates as in memory, to rounding."""
    X, y, t = _data(n=500)
    w = np.random.default_rng(1).uniform(0, 2, 500) if weighted else None
    if weighted:
        w[:150] = 0.0  # whole chunks of zero weight
    for Est, target in ((bn.MLPClassifier, y), (bn.MLPRegressor, t)):
        kw = dict(hidden_layer_sizes=(6,), solver="lbfgs", max_iter=25, alpha=1e-3,
                  random_state=0, dtype="float64")  # fmt: skip
        streamed = Est(**kw).fit(da.from_array(X, chunks=70), target, sample_weight=w)
        in_memory = Est(**kw).fit(X, target, sample_weight=w)
        assert streamed.n_iter_ == in_memory.n_iter_
        np.testing.assert_allclose(streamed.loss_curve_, in_memory.loss_curve_, rtol=1e-9)
        for a, b in zip(streamed.coefs_, in_memory.coefs_):
            np.testing.assert_allclose(a, b, rtol=1e-7, atol=1e-10)


def test_refusals_and_bad_chunks_leave_the_model_unchanged():
    X, y, _ = _data(n=300)
    dX = da.from_array(X, chunks=100)
    with pytest.raises(ValueError, match=r"MLPClassifier\(solver='gd'\) reads .*'lbfgs'"):
        bn.MLPClassifier(solver="gd").fit(dX, y)
    with pytest.raises(ValueError, match=r"Perceptron\(solver='online'\) reads .*chunk: pass"):
        bn.Perceptron().fit(dX, y)
    clf = bn.MLPClassifier((4,), max_iter=2, random_state=0).fit(X, y)
    before = [w.copy() for w in clf.coefs_]
    bad = X.copy()
    bad[250, 3] = np.nan  # in the last chunk: found while streaming
    with pytest.raises(ValueError, match="NaN"):
        clf.partial_fit(da.from_array(bad, chunks=100), y)
    for w, v in zip(clf.coefs_, before):
        np.testing.assert_array_equal(w, v)
    with pytest.raises(ValueError, match="expecting 6 features"):
        clf.predict(da.from_array(X[:, :5], chunks=100))
    with pytest.raises(ValueError, match="unknown chunk sizes"):
        clf.fit(da.from_array(X, chunks=100)[da.from_array(X[:, 0] > 0, chunks=100)], y)


_LIMITED = textwrap.dedent(
    """
    import os, resource, sys, warnings
    import numpy as np
    import dask, dask.array as da
    import backendnn as bn

    warnings.simplefilter("ignore")
    dask.config.set(scheduler="threads", num_workers=1)
    n, d, chunk = 1_048_576, 64, 16_384         # 512 MiB of float64 in 64 chunks of 8 MiB
    budget = 128 * 2**20                          # the data is 4x this

    def rows(block, block_info=None):             # a generator: no chunk is stored
        start = block_info[None]["array-location"][0][0]
        rng = np.random.default_rng(start)
        x = rng.standard_normal((block.shape[0], d))
        x[:, 0] += np.where(np.arange(start, start + block.shape[0]) % 2, 1.5, -1.5)
        return x

    X = da.zeros((n, d), chunks=(chunk, d)).map_blocks(rows, dtype="float64")
    y = np.arange(n) % 2
    kw = dict(hidden_layer_sizes=(8,), solver="sgd", batch_size=4096, max_iter=1)
    bn.MLPClassifier(**kw).fit(X[: 4 * chunk], y[: 4 * chunk])  # warm-up: threads, imports

    def vm_bytes():
        with open("/proc/self/status") as f:
            line = next(l for l in f if l.startswith("VmSize"))
        return int(line.split()[1]) * 1024

    limit = vm_bytes() + budget
    resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
    try:
        np.ones((n, d))
    except MemoryError:
        pass
    else:
        sys.exit("the address-space limit did not stop a whole-array allocation")
    model = bn.MLPClassifier(**kw, random_state=0).fit(X, y)
    accuracy = model.score(X[:chunk], y[:chunk])
    print(f"OK {X.nbytes / budget:.1f}x limit; accuracy {accuracy:.3f}")
    assert accuracy > 0.8, accuracy
    """
)


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="RLIMIT_AS and /proc: Linux")
def test_fit_an_array_four_times_larger_than_the_memory_limit():
    env = dict(os.environ, MALLOC_ARENA_MAX="1", OPENBLAS_NUM_THREADS="1", OMP_NUM_THREADS="1")
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
    proc = subprocess.run(
        [sys.executable, "-c", _LIMITED], env=env, capture_output=True, text=True, timeout=240
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr[-3000:]
    assert "OK 4.0x limit" in proc.stdout, proc.stdout


def test_local_cluster_fit_predict_score():
    distributed = pytest.importorskip("distributed")
    X, y, _ = _data(n=900)
    dX = da.from_array(X, chunks=200)
    kw = dict(hidden_layer_sizes=(6,), solver="adam", batch_size=64, max_iter=3)
    kw.update(shuffle=False, random_state=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the cluster's own notices (ports, dashboard)
        with distributed.LocalCluster(
            n_workers=2, threads_per_worker=1, processes=True, host="127.0.0.1",
            dashboard_address=None,
        ) as cluster, distributed.Client(cluster) as client:  # fmt: skip
            # the blocks are computed on the workers (the fit runs here)
            dX = client.persist(dX)
            clf = bn.MLPClassifier(**kw).fit(dX, y)
            lazy = clf.predict_proba(dX)
            proba = client.compute(lazy).result()  # the forward passes on the workers
            score = clf.score(dX, y)
    ref = bn.MLPClassifier(**kw).fit(X, y)
    _assert_same_fit(clf, ref)
    np.testing.assert_allclose(proba, ref.predict_proba(X), rtol=1e-12)
    assert score == ref.score(X, y)


def test_bench_dask_engine_reports_its_throughput_ratio(capsys):
    from backendnn import bench

    engines = "backendnn-numpy-fit,backendnn-numpy-dask-fit"
    args = ["--sizes", "8,8,3", "--batch", "4", "--steps", "20", "--warmup", "1"]
    doc = bench.main(args + ["--repeats", "2", "--cooldown", "0", "--engines", engines])
    rows = {r["engine"]: r for r in doc["results"]}
    assert "error" not in rows["backendnn-numpy-dask-fit"], rows
    # the same batches, the same weights: the same loss
    assert rows["backendnn-numpy-dask-fit"]["loss"] == pytest.approx(
        rows["backendnn-numpy-fit"]["loss"], rel=1e-6
    )
    key = "backendnn-numpy-fit / backendnn-numpy-dask-fit (dask throughput, in-memory = 1)"
    assert doc["derived"][key] > 0
    assert "backendnn-numpy-dask-fit" in capsys.readouterr().out
