"""Zero-copy moves between array libraries (``to_backend``, ``to_numpy``): memory shared
through DLPack where the table "Which moves share memory" (docs/guide/backends.rst)
promises it (data pointers equal), a copy in the unsafe cases (pointers differ, values
equal, the source unwritten).

These tests are pairwise, not per backend: each runs in the session of the non-NumPy
library of its pair (``BACKENDNN_BACKENDS`` names it, or is unset), so nox runs each once.
The CuPy pairs need a GPU: ``scripts/gpu_check.sh``.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest

from backendnn import _backend
from tests.conftest import _requested  # first: conftest sets JAX_ENABLE_X64 before jax loads


def _pair(session: str, *names: str):
    """Import libraries ``names`` (default: ``session``) for a pairwise test, or skip: one is
    missing, or this is not the ``session`` backend's session."""
    if os.environ.get("BACKENDNN_BACKENDS") and session not in _requested():
        pytest.skip(f"pairwise test: runs in the {session} session")
    mods = [pytest.importorskip(name) for name in names or (session,)]
    return mods[0] if len(mods) == 1 else mods


def pointer(a) -> int:
    """The address of the first element of a NumPy, torch, JAX (one device) or CuPy array."""
    if isinstance(a, np.ndarray):
        return a.__array_interface__["data"][0]
    if hasattr(a, "data_ptr"):  # torch
        return a.data_ptr()
    if hasattr(a, "unsafe_buffer_pointer"):  # jax
        return a.unsafe_buffer_pointer()
    return a.data.ptr  # cupy


def _values(a) -> np.ndarray:
    return np.array(_backend.to_numpy(a), copy=True)


# --------------------------------------------------------------------------- NumPy <-> torch


@pytest.mark.parametrize(
    "a",
    [np.arange(6.0).reshape(2, 3), np.arange(5, dtype=np.int32), np.array([True, False]),
     np.array(2.5), np.arange(12.0).reshape(3, 4)[:, ::2]],
    ids=["float64", "int32", "bool", "0-d", "strided"],
)  # fmt: skip
def test_numpy_and_cpu_torch_share_both_ways(a):
    torch = _pair("torch")
    t = _backend.to_backend(a, "torch", torch.device("cpu"))
    assert isinstance(t, torch.Tensor) and t.device.type == "cpu"
    assert pointer(t) == pointer(a) and tuple(t.shape) == a.shape
    assert t.dtype == getattr(torch, a.dtype.name)
    assert t.stride() == tuple(s // a.itemsize for s in a.strides)  # the view, not a copy
    back = _backend.to_numpy(t)
    assert pointer(back) == pointer(a) and back.flags.writeable
    assert pointer(_backend.to_backend(t, "numpy")) == pointer(a)
    np.testing.assert_array_equal(back, a)


def test_shared_memory_is_one_memory():
    torch = _pair("torch")
    a = np.zeros(3)
    t = _backend.to_backend(a, "torch", torch.device("cpu"))
    t[1] = 7.0  # the caller's write, through torch
    assert a[1] == 7.0
    grad = torch.ones(2, dtype=torch.float64, requires_grad=True)
    assert pointer(_backend.to_numpy(grad)) == pointer(grad)  # detached, shared


def test_read_only_numpy_into_torch_copies_and_stays_unwritten():
    torch = _pair("torch")
    a = np.arange(4.0)
    a.flags.writeable = False
    t = _backend.to_backend(a, "torch", torch.device("cpu"))
    assert pointer(t) != pointer(a)
    np.testing.assert_array_equal(t.numpy(), a)
    t[0] = -1.0
    np.testing.assert_array_equal(a, np.arange(4.0))
    with pytest.raises(ValueError, match="read-only"):
        _backend.to_backend(a, "torch", torch.device("cpu"), copy=False)


def test_negative_strides_into_torch_copy_without_crashing():
    """``torch.from_dlpack`` of ``a[::-1]`` aborts the process (torch 2.13): the move runs
    in a child process, so that a regression fails this test instead of the session."""
    _pair("torch")
    code = textwrap.dedent("""
        import numpy as np, torch
        from backendnn import _backend
        a = np.arange(12.0).reshape(3, 4)[::-1, ::-2]
        t = _backend.to_backend(a, "torch", torch.device("cpu"))
        assert t.data_ptr() != a.__array_interface__["data"][0]
        np.testing.assert_array_equal(t.numpy(), a)
        print("copied")
    """)  # fmt: skip
    env = {**os.environ, "PYTHONPATH": os.getcwd() + os.pathsep + os.environ.get("PYTHONPATH", "")}
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env)
    assert run.returncode == 0 and "copied" in run.stdout, run.stderr[-2000:]


@pytest.mark.parametrize("dtype", [">f8", "float16"])
def test_a_dtype_torch_lacks_or_reads_otherwise_copies(dtype):
    """Big-endian float64 (torch holds native order) and float16 (no standard dtype)."""
    torch = _pair("torch")
    a = np.arange(5).astype(dtype)
    t = _backend.to_backend(a, "torch", torch.device("cpu"))
    assert pointer(t) != pointer(a)
    np.testing.assert_array_equal(t.numpy(), a)


def test_copy_true_copies_and_copy_false_refuses_what_cannot_share():
    torch = _pair("torch")
    a = np.arange(3.0)
    t = _backend.to_backend(a, "torch", torch.device("cpu"), copy=True)
    assert pointer(t) != pointer(a)
    np.testing.assert_array_equal(t.numpy(), a)
    shared = _backend.to_backend(a, "torch", torch.device("cpu"), copy=False)
    assert pointer(shared) == pointer(a)
    with pytest.raises(ValueError, match="copy=None"):
        _backend.to_backend([1.0, 2.0], "torch", torch.device("cpu"), copy=False)


def test_torch_conjugate_and_negative_views_copy_and_copy_false_refuses_them():
    """torch.conj and a negative view are lazy: their memory holds the unconjugated,
    unnegated values. Their export resolves them into a new tensor, so copy=False once
    answered a copy while promising shared memory; copy=None copies, values right."""
    torch = _pair("torch")
    c = torch.tensor([1 + 2j, 3 - 1j], dtype=torch.complex128)
    for view, expected in ((torch.conj(c), [1 - 2j, 3 + 1j]), (c.real._neg_view(), [-1.0, -3.0])):
        with pytest.raises(ValueError, match="conjugate or negative bit"):
            _backend.to_backend(view, "numpy", "cpu", copy=False)
        for out in (_backend.to_backend(view, "numpy", "cpu"), _backend.to_numpy(view)):
            np.testing.assert_array_equal(out, np.array(expected))
            assert pointer(out) != pointer(view)


def test_torch_bfloat16_to_numpy_says_what_to_do():
    torch = _pair("torch")
    with pytest.raises(TypeError, match=r"bfloat16.*x.float\(\)"):
        _backend.to_numpy(torch.ones(3, dtype=torch.bfloat16))


def test_another_device_copies():
    torch = _pair("torch")
    if not torch.cuda.is_available():
        pytest.skip("no CUDA device here")
    a = np.arange(3.0)
    t = _backend.to_backend(a, "torch", torch.device("cuda"))
    assert t.device.type == "cuda"
    np.testing.assert_array_equal(_values(t), a)


# --------------------------------------------------------------------------- JAX


def test_torch_and_jax_copy_unless_the_caller_promises():
    torch, jax = _pair("jax", "torch", "jax")
    t = torch.arange(4.0, dtype=torch.float64)
    x = _backend.to_backend(t, "jax")
    assert isinstance(x, jax.Array) and pointer(x) != pointer(t)
    t[0] = 9.0  # torch writes its own tensor: the JAX array stays as it was
    np.testing.assert_array_equal(np.asarray(x), np.arange(4.0))
    back = _backend.to_backend(x, "torch", torch.device("cpu"))
    assert pointer(back) != pointer(x)
    np.testing.assert_array_equal(back.numpy(), np.arange(4.0))
    # copy=False: the caller promises that nothing writes into the shared memory
    shared = _backend.to_backend(t, "jax", copy=False)
    assert pointer(shared) == pointer(t)
    np.testing.assert_array_equal(np.asarray(shared), t.numpy())
    assert pointer(_backend.to_backend(shared, "torch", torch.device("cpu"), copy=False)) == (
        pointer(shared)
    )


def test_torch_strides_jax_cannot_take_copy_on_the_device():
    torch = _pair("jax", "torch", "jax")[0]
    t = torch.arange(12.0, dtype=torch.float64).reshape(3, 4)[:, ::2]
    x = _backend.to_backend(t, "jax")
    np.testing.assert_array_equal(np.asarray(x), t.numpy())
    with pytest.raises(ValueError, match="strides"):
        _backend.to_backend(t, "jax", copy=False)


@pytest.mark.parametrize("writeable", [True, False])
def test_numpy_into_jax_copies(writeable):
    """Even a read-only array: the array it views may still be written. Many arrays: JAX
    aliased a read-only host array only when its alignment allowed (half of them)."""
    jax = _pair("jax")
    for _ in range(32):
        base = np.arange(8.0)
        a = base.view()
        a.flags.writeable = writeable
        x = _backend.to_backend(a, "jax")
        assert isinstance(x, jax.Array) and pointer(x) != pointer(a)
        base[0] = -1.0
        np.testing.assert_array_equal(np.asarray(x), np.arange(8.0))


def test_to_numpy_of_jax_is_a_read_only_view():
    jnp = _pair("jax").numpy
    for x in (jnp.arange(4.0), jnp.asarray(True), jnp.arange(6, dtype=jnp.int32).reshape(2, 3)):
        a = _backend.to_numpy(x)
        assert pointer(a) == pointer(x) and not a.flags.writeable
        np.testing.assert_array_equal(a, np.asarray(x))


def test_float64_into_jax_without_x64_becomes_a_float32_copy():
    """A dtype change copies (in a child process: x64 is set once per process)."""
    _pair("jax", "torch", "jax")
    code = textwrap.dedent("""
        import numpy as np, torch
        from backendnn import _backend
        t = torch.tensor([0.1, 2.0], dtype=torch.float64)
        x = _backend.to_backend(t, "jax")
        assert x.dtype.name == "float32", x.dtype
        np.testing.assert_array_equal(np.asarray(x), t.numpy().astype(np.float32))
        print("float32")
    """)  # fmt: skip
    env = {**os.environ, "JAX_ENABLE_X64": "0",
           "PYTHONPATH": os.getcwd() + os.pathsep + os.environ.get("PYTHONPATH", "")}  # fmt: skip
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env)
    assert run.returncode == 0 and "float32" in run.stdout, run.stderr[-2000:]


# --------------------------------------------------------------------------- array-api-strict


def test_array_api_strict_moves_copy():
    strict = _pair("array_api_strict")
    a = np.arange(3.0)
    s = _backend.to_backend(a, "array_api_strict", strict.Device("CPU_DEVICE"))
    a[0] = -1.0
    np.testing.assert_array_equal(_backend.to_numpy(s), np.arange(3.0))
    with pytest.raises(ValueError, match="copy only"):
        _backend.to_backend(a, "array_api_strict", strict.Device("CPU_DEVICE"), copy=False)
