"""Tests of the backend layer: namespaces, backend choice, moving arrays, host RNG, precision."""

from __future__ import annotations

import contextvars
import importlib.util
import os
import sys

import numpy as np
import pytest

from backendnn import _backend
from tests.conftest import assert_close


@pytest.fixture(autouse=True)
def _restore_backend():
    """Tests here change the current backend: put the previous one back afterwards."""
    previous = _backend.get_backend()
    yield
    _backend._current.set(previous)


def _other_library_array(backend):
    """An array of a library other than the backend under test."""
    if backend.name != "numpy":
        return np.zeros(3)
    import array_api_strict

    return array_api_strict.zeros(3)


# --------------------------------------------------------------------------- array_namespace


def test_array_namespace_of_backend_arrays(backend):
    x = backend.asarray([1.0, 2.0])
    y = backend.asarray([[3.0], [4.0]], "float32")
    xp = _backend.array_namespace(x, None, 2.0, 3, y)  # None and Python scalars are ignored
    assert _backend.namespace_name(xp) == backend.name
    assert _backend.is_array(x) and not _backend.is_array(2.0) and not _backend.is_array([1.0])
    # the namespace works on these arrays (and keeps their device)
    assert_close(xp.add(x, 1.0), [2.0, 3.0], backend=backend, rtol=0, dtype="float64")


def test_array_namespace_needs_an_array():
    with pytest.raises(TypeError, match="at least one array"):
        _backend.array_namespace(None, 1.0)
    with pytest.raises(TypeError):
        _backend.array_namespace([1.0, 2.0])


def test_array_namespace_rejects_two_libraries(backend):
    x = backend.asarray([1.0, 2.0, 3.0])
    other = _other_library_array(backend)
    for args in ((x, other), (other, x), (other, None, x, 1.0)):
        with pytest.raises(TypeError, match="two libraries") as info:
            _backend.array_namespace(*args)
        assert "to_backend" in str(info.value)  # says what to do


def test_array_namespace_rejects_two_devices():
    strict = pytest.importorskip("array_api_strict")
    cpu = strict.asarray([1.0, 2.0], device=strict.Device("CPU_DEVICE"))
    dev1 = strict.asarray([1.0, 2.0], device=strict.Device("device1"))
    with pytest.raises(TypeError, match="two devices"):
        _backend.array_namespace(cpu, dev1)
    with pytest.raises(TypeError, match="two devices"):
        _backend.array_namespace(dev1, None, cpu)
    # one device is fine
    assert _backend.array_namespace(dev1, dev1 + 1.0) is strict
    assert _backend.array_namespace(cpu) is strict


# --------------------------------------------------------------------------- choosing a backend


def test_default_backend_is_numpy():
    # In a fresh context, untouched by any other test.
    assert contextvars.Context().run(_backend.get_backend) == "numpy"


def test_set_backend_and_namespace(backend):
    _backend.set_backend(backend.name)
    assert _backend.get_backend() == backend.name
    assert _backend.namespace_name(_backend.namespace()) == backend.name
    moved = _backend.to_backend(np.array([1.5, -2.5]))  # goes to the current backend
    assert _backend.namespace_name(_backend.array_namespace(moved)) == backend.name
    np.testing.assert_array_equal(_backend.to_numpy(moved), [1.5, -2.5])


def test_use_backend_restores_previous(backend):
    _backend.set_backend("numpy")
    with _backend.use_backend(backend.name) as xp:
        assert _backend.get_backend() == backend.name
        assert _backend.namespace_name(xp) == backend.name
        with _backend.use_backend("numpy"):
            assert _backend.get_backend() == "numpy"
        assert _backend.get_backend() == backend.name
    assert _backend.get_backend() == "numpy"
    # also when the block raises
    with pytest.raises(RuntimeError, match="boom"):
        with _backend.use_backend(backend.name):
            raise RuntimeError("boom")
    assert _backend.get_backend() == "numpy"


@pytest.mark.parametrize(
    "call",
    [
        _backend.set_backend,
        _backend.namespace,
        _backend.default_device,
        lambda name: _backend.use_backend(name).__enter__(),
        lambda name: _backend.to_backend(np.zeros(2), name),
    ],
    ids=["set_backend", "namespace", "default_device", "use_backend", "to_backend"],
)
def test_unknown_backend_is_value_error(call):
    _backend.set_backend("numpy")
    with pytest.raises(ValueError, match="unknown backend 'tensorflow'") as info:
        call("tensorflow")
    for name in _backend.BACKENDS:  # the message lists the valid names
        assert name in str(info.value)
    assert _backend.get_backend() == "numpy"


def test_missing_cupy_is_import_error_with_install_hint():
    if importlib.util.find_spec("cupy") is not None:
        pytest.skip("cupy is installed here")
    _backend.set_backend("numpy")
    with pytest.raises(ImportError, match="pip install"):
        _backend.set_backend("cupy")
    with pytest.raises(ImportError, match="pip install"):
        with _backend.use_backend("cupy"):
            pass
    with pytest.raises(ImportError, match="pip install"):
        _backend.namespace("cupy")
    assert _backend.get_backend() == "numpy"  # a failed set_backend changes nothing


@pytest.mark.parametrize(
    ("name", "modules"),
    [
        ("jax", ["jax", "jax.numpy"]),
        ("torch", ["torch", "array_api_compat.torch"]),
        ("array_api_strict", ["array_api_strict"]),
    ],
)
def test_missing_library_is_import_error_with_install_hint(name, modules, monkeypatch):
    """A library made unimportable (None in sys.modules) gives the install hint."""
    for module in modules:
        monkeypatch.setitem(sys.modules, module, None)
    _backend.set_backend("numpy")
    with pytest.raises(ImportError, match="pip install") as info:
        _backend.set_backend(name)
    assert repr(name) in str(info.value)
    assert _backend.get_backend() == "numpy"


# --------------------------------------------------------------------------- moving arrays


def _special_values(dtype):
    finfo = np.finfo(dtype)
    return np.array(
        [
            0.0,
            -0.0,
            np.nan,
            np.inf,
            -np.inf,
            finfo.max,
            -finfo.max,
            finfo.tiny,
            finfo.smallest_subnormal,
            -finfo.smallest_subnormal,
            finfo.eps,
            1.0 / 3.0,
        ],
        dtype=dtype,
    )


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_to_backend_to_numpy_round_trip_is_exact(backend, dtype):
    rng = np.random.default_rng(11)
    a = np.concatenate([rng.standard_normal(36).astype(dtype), _special_values(dtype)])
    a = a.reshape(4, 12)
    x = _backend.to_backend(a, backend.name, device=backend.device)
    assert_close(x, a, backend=backend, rtol=0, dtype=dtype)  # namespace, dtype, device
    back = _backend.to_numpy(x)
    assert isinstance(back, np.ndarray)
    assert back.dtype == np.dtype(dtype) and back.shape == a.shape
    assert back.tobytes() == a.tobytes()  # bitwise: signed zeros, NaN, subnormals
    # already there: a no-op
    assert _backend.to_backend(x, backend.name, device=backend.device) is x
    # to NumPy through to_backend, and into the namespace of another array
    assert _backend.to_backend(x, "numpy").tobytes() == a.tobytes()
    y = _backend.to_namespace_of(a[:2] * 2, x)
    assert_close(y, a[:2] * 2, backend=backend, rtol=0, dtype=dtype)


def test_to_numpy_accepts_lists_and_numpy():
    np.testing.assert_array_equal(_backend.to_numpy([[1.0, 2.0]]), np.array([[1.0, 2.0]]))
    a = np.arange(3.0)
    np.testing.assert_array_equal(_backend.to_numpy(a), a)


def test_from_numpy_keeps_float64_on_every_backend(backend):
    # torch's asarray would make float32 of a float64 source without an explicit dtype
    x = _backend.from_numpy(np.array([1.0 + 2.0**-40]), xp=backend.xp, device=backend.device)
    assert x.dtype == backend.xp.float64
    assert _backend.to_numpy(x)[0] == 1.0 + 2.0**-40


# --------------------------------------------------------------------------- host RNG


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_host_rng_draws_identical_on_every_backend(backend, dtype):
    draws = _backend.host_rng(0).standard_normal((50, 20), dtype=np.dtype(dtype))
    x = _backend.from_numpy(draws, xp=backend.xp, device=backend.device)
    assert_close(x, draws, backend=backend, rtol=0, dtype=dtype)
    # the same bits as NumPy's own Generator(PCG64(0)), hence on every backend alike
    expected = np.random.Generator(np.random.PCG64(0)).standard_normal((50, 20), dtype=dtype)
    assert _backend.to_numpy(x).tobytes() == expected.tobytes()


def test_host_rng_seeds():
    gen = np.random.default_rng(3)
    assert _backend.host_rng(gen) is gen
    assert isinstance(_backend.host_rng(None), np.random.Generator)
    legacy = np.random.RandomState(5)
    assert _backend.host_rng(legacy) is legacy  # drawn from directly: scikit-learn's draws
    c = _backend.host_rng(7).random(4)
    np.testing.assert_array_equal(c, np.random.default_rng(7).random(4))
    assert not np.array_equal(c, _backend.host_rng(8).random(4))


def test_check_random_state_is_sklearns():
    """The estimators' generator: scikit-learn's ``check_random_state`` (and a Generator)."""
    from sklearn.utils import check_random_state

    for seed in (0, 7, np.int64(3)):
        ours = _backend.check_random_state(seed)
        assert isinstance(ours, np.random.RandomState)
        theirs = check_random_state(seed)
        np.testing.assert_array_equal(ours.uniform(size=5), theirs.uniform(size=5))
    assert _backend.check_random_state(None) is check_random_state(None)
    for rng in (np.random.RandomState(1), np.random.default_rng(1)):
        assert _backend.check_random_state(rng) is rng


# --------------------------------------------------------------------------- matmul precision


@pytest.fixture
def restore_precision(monkeypatch):
    """set_matmul_precision changes global state (JAX config, torch flags, CUPY_TF32)."""
    monkeypatch.setattr(_backend, "_precision", list(_backend._precision))
    # record CUPY_TF32 (set or not) so that monkeypatch puts it back as it was
    old_env = os.environ.get("CUPY_TF32")
    monkeypatch.setenv("CUPY_TF32", "placeholder")
    if old_env is None:
        monkeypatch.delenv("CUPY_TF32")
    else:
        monkeypatch.setenv("CUPY_TF32", old_env)
    restore = []
    if importlib.util.find_spec("jax") is not None:
        import jax

        old = jax.config.jax_default_matmul_precision
        restore.append(lambda: jax.config.update("jax_default_matmul_precision", old))
    if importlib.util.find_spec("torch") is not None:
        import torch

        old_mm = torch.backends.cuda.matmul.allow_tf32
        old_dnn = torch.backends.cudnn.allow_tf32

        def _restore_torch():
            torch.backends.cuda.matmul.allow_tf32 = old_mm
            torch.backends.cudnn.allow_tf32 = old_dnn

        restore.append(_restore_torch)
    yield
    for fn in restore:
        fn()


@pytest.mark.parametrize("bad", ["medium", "TF32", "", "default", None, 32])
def test_set_matmul_precision_rejects_bad_values(bad, restore_precision):
    before = _backend.get_matmul_precision()
    with pytest.raises(ValueError, match="matmul precision must be one of"):
        _backend.set_matmul_precision(bad)
    assert _backend.get_matmul_precision() == before


@pytest.mark.parametrize("precision", ["highest", "tf32"])
def test_set_matmul_precision_sets_every_library(precision, restore_precision):
    _backend.set_matmul_precision(precision)
    assert _backend.get_matmul_precision() == precision
    assert os.environ["CUPY_TF32"] == ("1" if precision == "tf32" else "0")
    if importlib.util.find_spec("jax") is not None:
        import jax

        expected = "highest" if precision == "highest" else "tensorfloat32"
        assert jax.config.jax_default_matmul_precision == expected
    if importlib.util.find_spec("torch") is not None:
        import torch

        assert torch.backends.cuda.matmul.allow_tf32 == (precision == "tf32")
        assert torch.backends.cudnn.allow_tf32 == (precision == "tf32")


# --------------------------------------------------------------------------- compiled loops


def test_scan_folds_rows_in_order_like_a_python_loop(backend):
    """``scan`` (``lax.scan`` on JAX, inside ``jit`` as the training epoch uses it) gives the
    Python fold's result: an order-dependent recurrence c <- r c + sum(row)."""
    rows_host = np.arange(12.0).reshape(4, 3)
    rates_host = [0.5, -1.0, 2.0, 0.25]
    expected = 1.0
    for row, r in zip(rows_host, rates_host):
        expected = r * expected + row.sum()
    x = backend.asarray(rows_host, "float64")
    xp = _backend.array_namespace(x)

    def fold(rows, rates, start):
        return _backend.scan(lambda c, b: b[1] * c + xp.sum(b[0]), start, (rows, rates), xp)

    start = xp.ones((), dtype=x.dtype, device=_backend.device(x))
    result = _backend.jit(fold, xp)(x, _backend.step_scalars(rates_host, x), start)
    assert float(result) == expected  # exact: small integers and powers of two
