"""``backendnn.tensors``: image layouts (NHWC, the notes' NWHC) to NCHW and back, on every
backend."""

from __future__ import annotations

import numpy as np
import pytest

from backendnn import _backend, tensors
from tests.conftest import assert_close


def test_layouts_round_trip(backend):
    x = np.random.default_rng(0).normal(size=(2, 3, 4, 5))  # NCHW, H = 4 != W = 5
    xb = backend.asarray(x, dtype="float64")
    nhwc, nwhc = tensors.from_nchw(xb), tensors.from_nchw(xb, "NWHC")
    # exact (rtol 0): transpositions move values, they compute none
    assert_close(nhwc, np.transpose(x, (0, 2, 3, 1)), backend=backend, rtol=0.0)
    assert_close(nwhc, np.transpose(x, (0, 3, 2, 1)), backend=backend, rtol=0.0)  # (N, W, H, C)
    assert_close(tensors.to_nchw(nhwc), x, backend=backend, rtol=0.0)
    assert_close(tensors.to_nchw(nwhc, "NWHC"), x, backend=backend, rtol=0.0)
    assert_close(tensors.convert(nwhc, "NWHC", "NHWC"), _backend.to_numpy(nhwc), backend=backend)
    assert tensors.convert(xb, "NCHW", "NCHW") is xb
    for bad in (backend.asarray(np.zeros((2, 3, 4))), backend.asarray(np.zeros((1, 2, 3, 4, 5)))):
        with pytest.raises(ValueError, match="4 axes"):
            tensors.to_nchw(bad)
        with pytest.raises(ValueError, match="4 axes"):
            tensors.from_nchw(bad, "NWHC")
    with pytest.raises(ValueError, match="layout"):
        tensors.to_nchw(xb, "HWCN")
