"""Data-parallel training on a JAX mesh: sharded fits equal the single-device fit, the
weights stay replicated, no step gathers X, and two ``jax.distributed`` processes end
with the single-process weights.

Needs 4 JAX devices: ``XLA_FLAGS=--xla_force_host_platform_device_count=4`` (the nox
session ``jax_multidevice`` sets it); skipped otherwise.
"""

from __future__ import annotations

import collections
import os
import re
import socket
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

jax = pytest.importorskip("jax")
if len(jax.devices()) < 4 or not jax.config.jax_enable_x64:
    pytest.skip(
        "needs 4 JAX devices and 64-bit types: XLA_FLAGS=--xla_force_host_platform_device_"
        "count=4 JAX_ENABLE_X64=1 (nox -s jax_multidevice)",
        allow_module_level=True,
    )

import jax.numpy as jnp  # noqa: E402
from jax.sharding import Mesh, NamedSharding  # noqa: E402
from jax.sharding import PartitionSpec as P  # noqa: E402

import backendnn as bn  # noqa: E402
from backendnn import train  # noqa: E402
from backendnn.data import ShardedData, as_source  # noqa: E402
from backendnn.params import flatten_params  # noqa: E402

sys.path.insert(0, str(Path(__file__).parent))
from distributed_worker import PARAMS, data  # noqa: E402

MESH = Mesh(np.array(jax.devices()[:4]), ("batch",))
ROWS = NamedSharding(MESH, P("batch"))
TOL = {"float64": 1e-10, "float32": 1e-5}


def _rows(a):
    return jax.device_put(a, ROWS)


def _problem(dtype="float64"):
    X, y = data()
    t = np.stack([X[:, 0] - 2 * X[:, 1], np.sin(X[:, 2])], axis=1)
    return X.astype(dtype), y, t


def _close(a, b, tol):
    a, b = np.asarray(bn.to_numpy(a), dtype=np.float64), np.asarray(bn.to_numpy(b), np.float64)
    scale = max(float(np.max(np.abs(a))), 1e-30)
    assert float(np.max(np.abs(a - b))) <= tol * scale, float(np.max(np.abs(a - b))) / scale


def _same_fit(one, sharded, tol):
    _close(one.loss_curve_, sharded.loss_curve_, tol)
    assert one.n_iter_ == sharded.n_iter_
    for a, b in zip(one.coefs_ + one.intercepts_, sharded.coefs_ + sharded.intercepts_):
        _close(a, b, tol)
        assert b.sharding.is_fully_replicated and len(b.sharding.device_set) == 4


@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("solver", ["sgd", "adam", "lbfgs"])
def test_sharded_classifier_equals_one_device(solver, dtype):
    X, y, _ = _problem(dtype)
    kw = dict(random_state=0, **PARAMS[solver])
    one = bn.MLPClassifier((8,), **kw).fit(jnp.asarray(X), jnp.asarray(y))
    sharded = bn.MLPClassifier((8,), **kw).fit(_rows(X), _rows(y))
    _same_fit(one, sharded, TOL[dtype])
    proba = sharded.predict_proba(_rows(X))
    assert proba.sharding.spec == P("batch")  # predictions stay sharded on the rows
    # probabilities amplify the weights' float32 rounding differences (L-BFGS: ~1e-5)
    _close(one.predict_proba(jnp.asarray(X)), proba, 10 * TOL[dtype])
    assert sharded.score(_rows(X), _rows(y)) == one.score(X, y)


@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("solver", ["sgd", "adam", "lbfgs"])
def test_sharded_regressor_equals_one_device(solver, dtype):
    X, _, t = _problem(dtype)
    kw = dict(random_state=1, **PARAMS[solver])
    t = t.astype(dtype)
    one = bn.MLPRegressor(hidden_layer_sizes=(8,), **kw).fit(jnp.asarray(X), jnp.asarray(t))
    sharded = bn.MLPRegressor(hidden_layer_sizes=(8,), **kw).fit(_rows(X), _rows(t))
    _same_fit(one, sharded, TOL[dtype])
    _close(one.predict(jnp.asarray(X)), sharded.predict(_rows(X)), TOL[dtype])


def test_early_stopping_weights_and_partial_fit():
    """The validation split (a subset padded to equal shards), sample weights and
    batches that do not divide over the devices (25 rows: padded to 28)."""
    X, y, t = _problem()
    w = np.random.default_rng(3).uniform(0.5, 2.0, len(X))
    kw = dict(solver="sgd", batch_size=25, max_iter=5, random_state=0)
    es = dict(kw, early_stopping=True, validation_fraction=0.13, n_iter_no_change=2)
    one = bn.MLPClassifier((8,), **es).fit(jnp.asarray(X), y, sample_weight=w)
    sharded = bn.MLPClassifier((8,), **es).fit(_rows(X), _rows(y), sample_weight=w)
    _same_fit(one, sharded, 1e-10)
    _close(one.validation_scores_, sharded.validation_scores_, 1e-12)
    one = bn.MLPRegressor(hidden_layer_sizes=(8,), **kw)
    sharded = bn.MLPRegressor(hidden_layer_sizes=(8,), **kw)
    for _ in range(3):
        one.partial_fit(jnp.asarray(X), t)
        sharded.partial_fit(_rows(X), _rows(t))
    _same_fit(one, sharded, 1e-10)


def _collectives(hlo: str) -> collections.Counter:
    names = "all-gather|all-reduce|reduce-scatter|all-to-all|collective-permute"
    # the operation itself (``= f64[8,6]{1,0} reduce-scatter(...)``), not instruction names
    return collections.Counter(re.findall(rf"\s({names})(?:-start)?\(", hlo))


@pytest.mark.parametrize("batch_size", [32, 30])
def test_epoch_never_gathers_x(batch_size, monkeypatch):
    """The compiled epoch's only collectives: the batch's reduce-scatter and the
    gradients' all-reduce; the weights go in and out replicated, X stays sharded."""
    X, y, _ = _problem()
    calls = []
    compiled = ShardedData._compiled

    def spy(self, step, padded):
        fn = compiled(self, step, padded)
        return lambda *args: calls.append((fn, args)) or fn(*args)

    monkeypatch.setattr(ShardedData, "_compiled", spy)
    bn.MLPClassifier((8,), solver="sgd", batch_size=batch_size, max_iter=1).fit(
        _rows(X), _rows(y)
    )
    fn, args = calls[0]
    lowered = fn.lower(*args).compile()
    ops = _collectives(lowered.as_text())
    assert ops["all-gather"] == 0 and ops["all-to-all"] == 0, ops
    assert ops["reduce-scatter"] >= 2 and ops["all-reduce"] >= 1, ops
    params_in, _, X_in = lowered.input_shardings[0][:3]
    assert all(s.is_fully_replicated for s in jax.tree.leaves(params_in))
    assert X_in.spec == P("batch")
    assert all(s.is_fully_replicated for s in jax.tree.leaves(lowered.output_shardings))


def test_lbfgs_objective_never_gathers_x():
    X, y, _ = _problem()
    model = bn.MLPClassifier((8,), solver="lbfgs", max_iter=2).fit(_rows(X), _rows(y))
    data = as_source(_rows(X), _rows(jnp.asarray(np.eye(3)[y])))
    objective = train.make_objective(
        model._network(), model._params, "softmax_cross_entropy", model.alpha, data.xp
    )
    hlo = objective.lower(flatten_params(model._params), data.X, data.Y, data.W).compile()
    ops = _collectives(hlo.as_text())
    assert ops["all-gather"] == 0 and ops["all-reduce"] >= 1, ops


def test_placement_errors():
    X, y, _ = _problem()
    features = NamedSharding(Mesh(np.array(jax.devices()[:2]), ("model",)), P(None, "model"))
    with pytest.raises(TypeError, match="rows only"):
        bn.MLPClassifier((4,), max_iter=1).fit(jax.device_put(X, features), y)
    with pytest.raises(TypeError, match="two devices"):  # y on one device, X on the mesh
        bn.MLPRegressor(hidden_layer_sizes=(4,), max_iter=1).fit(_rows(X), jnp.asarray(X[:, 0]))


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.parametrize("solver", ["sgd", "lbfgs"])
def test_two_processes_equal_one(solver, tmp_path):
    """Two ``jax.distributed`` processes on 127.0.0.1 with 2 devices each, each holding
    half the rows, end with identical weights equal to this process's one-device fit."""
    worker = Path(__file__).with_name("distributed_worker.py")
    env = dict(
        os.environ,
        XLA_FLAGS="--xla_force_host_platform_device_count=2",
        JAX_ENABLE_X64="1",
        PYTHONPATH=os.pathsep.join([str(Path(bn.__file__).parents[1]), *sys.path]),
    )
    port = str(_free_port())
    procs = [
        subprocess.Popen(
            [sys.executable, str(worker), str(i), port, str(tmp_path), solver],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
        )
        for i in range(2)
    ]
    for p in procs:
        out, _ = p.communicate(timeout=240)
        assert p.returncode == 0, out.decode()[-3000:]
    got = [np.load(tmp_path / f"weights-{i}.npz") for i in range(2)]
    X, y = data()
    one = bn.MLPClassifier((8,), random_state=0, **PARAMS[solver]).fit(jnp.asarray(X), y)
    weights = [bn.to_numpy(a) for a in one.coefs_ + one.intercepts_]
    for key in got[0].files:  # both processes: the same weights, curve and predictions
        np.testing.assert_array_equal(got[0][key], got[1][key])
    for i, w in enumerate(weights):
        _close(w, got[0][f"arr_{i}"], 1e-10)
    _close(one.loss_curve_, got[0]["loss_curve"], 1e-10)
    np.testing.assert_array_equal(bn.to_numpy(one.predict(jnp.asarray(X))), got[0]["pred"])
    for i in range(2):  # the model each process saved loads here, equal to the fit
        loaded = bn.load(tmp_path / f"model-{i}.safetensors")
        _close(weights[0], loaded.coefs_[0], 1e-10)


def test_the_example_runs():
    """examples/distributed.py (one process on the mesh, two processes, a dask array 4x
    the memory left to it where dask is installed) exits 0 and reports each part."""
    env = dict(os.environ, PYTHONPATH=str(Path(bn.__file__).parents[1]))
    env.pop("XLA_FLAGS", None)  # the example forces its own 4 CPU devices
    done = subprocess.run(
        [sys.executable, str(Path(__file__).parents[1] / "examples" / "distributed.py")],
        capture_output=True, text=True, env=env, timeout=300,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    assert "1. 4 devices" in done.stdout and "weights replicated: True" in done.stdout
    assert "2. two processes" in done.stdout and "saved by process 0" in done.stdout
    assert re.search(r"^3\. (a \d+ MiB dask array .*\(4x\)|skipped)", done.stdout, re.M)


@pytest.mark.parametrize("solver", ["sgd", "adam"])
def test_partial_fit_moves_between_a_mesh_and_one_device(solver):
    """A mesh fit continued on one device and back (the optimiser state moves with the
    weights) equals the same calls made on one device throughout."""
    X, y, _ = _problem()
    kw = dict(solver=solver, batch_size=16, max_iter=2, random_state=0)
    one = bn.MLPClassifier((8,), **kw).fit(jnp.asarray(X), y)
    moved = bn.MLPClassifier((8,), **kw).fit(_rows(X), _rows(y))
    for Xm, ym in ((jnp.asarray(X), y), (_rows(X), _rows(y))):
        one.partial_fit(jnp.asarray(X), y)
        moved.partial_fit(Xm, ym)
    _same_fit(one, moved, 1e-10)


@pytest.mark.parametrize("batch_size", [20, 27])  # 27: batches padded to the shard count
def test_sharded_batch_norm_and_dropout_equal_one_device(batch_size):
    """Batch statistics are the whole batch's (SyncBatchNorm), a padded batch's padding
    rows weigh 0 in them, and the masks are the same: the sharded fit is the one-device
    fit, running statistics included."""
    from backendnn.layers import Activation, BatchNorm1d, Dense, Dropout

    X, y, _ = _problem()
    layers = [Dense(X.shape[1], 8), BatchNorm1d(8), Activation("relu"), Dropout(0.2)]
    kw = dict(solver="sgd", max_iter=3, batch_size=batch_size, random_state=0, dtype="float64")
    one = bn.NeuralNetClassifier(layers, **kw).fit(jnp.asarray(X), jnp.asarray(y))
    sharded = bn.NeuralNetClassifier(layers, **kw).fit(_rows(X), _rows(y))
    _close(one.loss_curve_, sharded.loss_curve_, 1e-10)
    for a, b in zip(one.buffers_[1], sharded.buffers_[1]):
        _close(a, b, 1e-10)
    for p, q in zip(one.params_, sharded.params_):
        for a, b in zip(p, q):
            _close(a, b, 1e-10)
    _close(one.predict_proba(jnp.asarray(X)), sharded.predict_proba(_rows(X)), 1e-9)


@pytest.mark.parametrize("placed", ["sharded", "host"])
def test_validation_data_and_resume_on_a_mesh(placed, tmp_path):
    """Validation rows sharded like X (or given on the host) score as on one device, and a
    run saved on the mesh resumes there exactly."""
    X, y, _ = _problem()
    Xt, yt, Xv, yv = X[40:], y[40:], X[:40], y[:40]
    kw = dict(solver="adam", batch_size=24, max_iter=6, random_state=0)
    one = bn.MLPClassifier((8,), **kw).fit(jnp.asarray(Xt), yt, validation_data=(Xv, yv))
    given = (_rows(Xv), _rows(yv)) if placed == "sharded" else (Xv, yv)
    sharded = bn.MLPClassifier((8,), **kw).fit(_rows(Xt), _rows(yt), validation_data=given)
    _same_fit(one, sharded, 1e-10)
    _close(one.validation_loss_curve_, sharded.validation_loss_curve_, 1e-10)
    assert one.validation_scores_ == sharded.validation_scores_
    part = bn.MLPClassifier((8,), **dict(kw, max_iter=2)).fit(_rows(Xt), _rows(yt))
    bn.save(part, tmp_path / "p.safetensors", include_optimizer=True)
    resumed = bn.load(tmp_path / "p.safetensors", backend="jax").set_params(max_iter=6)
    resumed.fit(_rows(Xt), _rows(yt), resume=True)
    full = bn.MLPClassifier((8,), **kw).fit(_rows(Xt), _rows(yt))
    _same_fit(full, resumed, 1e-12)
