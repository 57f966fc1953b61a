"""Prove that a training epoch makes no host synchronisation per batch (CuPy, GPU only).

Runs backendnn.train.run_batches -- the exact batch loop ``fit`` uses -- under
``cupyx.allow_synchronize(False)``, which raises on any device-to-host wait. Exits 0
and prints "no synchronisation in N batches" on success.
"""

import sys

import cupy
import cupyx
import numpy as np

from backendnn import _backend
from backendnn.network import Network
from backendnn.optim import SGD, Adam, LearningRateSchedule
from backendnn.train import OptimizerState, make_step, run_batches


def main() -> int:
    xp = _backend.namespace("cupy")
    rng = np.random.default_rng(0)
    n, batch = 4000, 256  # 15 full batches and a last one of 160
    X = _backend.from_numpy(rng.normal(size=(n, 784)).astype(np.float32), xp=xp)
    Y = _backend.from_numpy(np.eye(10, dtype=np.float32)[rng.integers(0, 10, n)], xp=xp)
    net = Network.mlp(784, (512, 512), 10, "relu")
    for optimizer in (SGD(0.9, True), Adam()):
        params = net.init(0, xp=xp, dtype=xp.float32)
        opt = OptimizerState(
            optimizer, LearningRateSchedule("constant", 1e-3), optimizer.init(params)
        )
        step = make_step(net, "softmax_cross_entropy", 1e-4, optimizer, xp)
        run_batches(step, params, opt, X, Y, None, batch)  # warm-up: kernels compiled
        perm = _backend.from_numpy(rng.permutation(n), xp=xp)
        cupy.cuda.get_current_stream().synchronize()
        with cupyx.allow_synchronize(False):
            params, total = run_batches(step, params, opt, X, Y, perm, batch)
        loss = float(total) / n
        print(
            f"{type(optimizer).__name__}: no synchronisation in {-(-n // batch)} batches "
            f"(epoch loss {loss:.4f})"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
