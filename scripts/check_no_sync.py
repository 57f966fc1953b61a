"""Prove that a training epoch makes no host synchronisation per batch (CuPy, GPU only).

Runs ArrayData.epoch -- the exact batch loop ``fit`` uses (backendnn.data) -- under
``cupyx.allow_synchronize(False)``, which raises on any device-to-host wait. Exits 0
and prints "no synchronisation in N batches" on success.
"""

import sys

import cupy
import cupyx
import numpy as np

from backendnn import _backend
from backendnn.data import ArrayData
from backendnn.network import Network
from backendnn.optim import SGD, Adam
from backendnn.train import LearningRateSchedule, OptimizerState, make_step


def main() -> int:
    xp = _backend.namespace("cupy")
    rng = np.random.default_rng(0)
    n, batch = 4000, 256  # 15 full batches and a last one of 160
    X = _backend.from_numpy(rng.normal(size=(n, 784)).astype(np.float32), xp=xp)
    Y = _backend.from_numpy(np.eye(10, dtype=np.float32)[rng.integers(0, 10, n)], xp=xp)
    data = ArrayData(X, Y)
    net = Network.mlp(784, (512, 512), 10, "relu")
    for optimizer in (SGD(0.9, True), Adam()):
        params = net.init(0, xp=xp, dtype=xp.float32)
        opt = OptimizerState(
            optimizer, LearningRateSchedule("constant", 1e-3), optimizer.init(params)
        )
        step = make_step(net, "softmax_cross_entropy", 1e-4, optimizer, xp)
        n_updates = -(-n // batch)
        data.epoch(step, params, opt.arrays, opt.rates(n_updates), batch)  # warm-up: compiled
        perm = data.permutation(rng)
        cupy.cuda.get_current_stream().synchronize()
        with cupyx.allow_synchronize(False):
            params, opt.arrays, total = data.epoch(
                step, params, opt.arrays, opt.rates(n_updates), batch, perm
            )
        loss = float(total) / n
        print(
            f"{type(optimizer).__name__}: no synchronisation in {-(-n // batch)} batches "
            f"(epoch loss {loss:.4f})"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
