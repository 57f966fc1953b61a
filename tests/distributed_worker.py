"""One process of the two-process data-parallel test (``tests/test_distributed.py``).

Run as ``python tests/distributed_worker.py PROCESS_ID PORT OUT_DIR SOLVER`` with
``XLA_FLAGS=--xla_force_host_platform_device_count=2`` and ``JAX_ENABLE_X64=1``: it joins a
two-process ``jax.distributed`` job on 127.0.0.1, holds its half of the rows of the
test's data set (``jax.make_array_from_process_local_data``), fits an MLPClassifier on
the global array, and writes its weights, loss curve and predictions (``OUT_DIR/
weights-PROCESS_ID.npz``) and the model (``OUT_DIR/model-PROCESS_ID.safetensors``).
"""

from __future__ import annotations

import sys

import jax
import numpy as np


def data() -> tuple[np.ndarray, np.ndarray]:
    """The test's data set: 160 rows, 6 features, 3 classes."""
    rng = np.random.default_rng(0)
    X = rng.normal(size=(160, 6))
    y = (X[:, 0] > 0).astype(np.int64) + (X[:, 2] > 0.5)
    return X, y


PARAMS = {
    "sgd": dict(solver="sgd", batch_size=30, max_iter=4, learning_rate_init=0.05),
    "adam": dict(solver="adam", batch_size=32, max_iter=4),
    "lbfgs": dict(solver="lbfgs", max_iter=10),
}


def main() -> None:
    pid, port, out, solver = int(sys.argv[1]), sys.argv[2], sys.argv[3], sys.argv[4]
    jax.distributed.initialize(f"127.0.0.1:{port}", num_processes=2, process_id=pid)
    from jax.sharding import Mesh, NamedSharding, PartitionSpec

    import backendnn as bn

    mesh = Mesh(np.array(jax.devices()), ("batch",))  # 2 processes x 2 devices
    rows = NamedSharding(mesh, PartitionSpec("batch"))
    X, y = data()
    mine = slice(pid * 80, (pid + 1) * 80)  # this process's rows: the global rows in order
    Xg = jax.make_array_from_process_local_data(rows, X[mine])
    yg = jax.make_array_from_process_local_data(rows, y[mine])
    model = bn.MLPClassifier((8,), random_state=0, **PARAMS[solver]).fit(Xg, yg)
    assert all(c.sharding.is_fully_replicated for c in model.coefs_)
    pred = bn.to_numpy(model.predict(Xg))  # the global predictions, gathered
    weights = [bn.to_numpy(a) for a in model.coefs_ + model.intercepts_]
    np.savez(
        f"{out}/weights-{pid}.npz",
        *weights,
        loss_curve=np.asarray(model.loss_curve_),
        pred=pred,
        score=model.score(Xg, yg),
    )
    bn.save(model, f"{out}/model-{pid}.safetensors")  # every process may save (own path)
    jax.distributed.shutdown()


if __name__ == "__main__":
    main()
