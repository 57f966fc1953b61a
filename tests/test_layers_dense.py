"""Dense layers (``backendnn.layers.dense``): ``Dense`` and the GLU family's ``GatedDense``
on every backend. Their gradients inside networks are tested in ``tests/test_network.py``,
their initialisation in ``tests/test_init.py``."""

from __future__ import annotations

import numpy as np
import pytest

from backendnn import _backend
from backendnn.layers import Dense, GatedDense
from tests.conftest import assert_close


@pytest.mark.parametrize("layer", [Dense(3, 2), GatedDense(3, 2, "reglu")], ids=repr)
def test_layers_leave_their_inputs_alone_and_promote_a_wider_bias(backend, layer):
    """The bias goes into x @ W in place only where z + b keeps z's dtype: a float64 bias
    on float32 weights gives float64, as z + b does; x, W and b are never written to."""
    rng = np.random.default_rng(3)
    x_host = rng.standard_normal((4, 3)).astype(np.float32)
    W_host = rng.standard_normal(layer.param_shapes()[0]).astype(np.float32)
    b_host = rng.standard_normal(layer.param_shapes()[1])  # float64
    for b_dtype in ("float32", "float64"):
        x, W = backend.asarray(x_host, dtype="float32"), backend.asarray(W_host, dtype="float32")
        b = backend.asarray(b_host.astype(b_dtype), dtype=b_dtype)
        y, _ = layer.forward((W, b), x)
        p = x_host.astype(b_dtype) @ W_host.astype(b_dtype) + b_host.astype(b_dtype)
        if isinstance(layer, GatedDense):
            p = np.maximum(p[:, :2], 0) * p[:, 2:]
        assert_close(y, p, backend=backend, dtype=b_dtype, rtol=1e-5)
        # exact: the inputs must be the very values given (never written to)
        for arr, host in ((x, x_host), (W, W_host), (b, b_host.astype(b_dtype))):
            np.testing.assert_array_equal(_backend.to_numpy(arr), host)
