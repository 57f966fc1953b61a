"""The sgd and adam training steps and fits, timed, for the optimisers stage
(benchmarks/NOTES.md, "Training-workflow stage: optimisers"). Run it on each tree in turn:

    OMP_NUM_THREADS=1 PYTHONPATH=TREE python benchmarks/optimizer_steps.py numpy,torch,jax
    PYTHONPATH=TREE python benchmarks/optimizer_steps.py --jaxpr > TREE.jaxpr

prints one JSON line: ms per step of ``make_step`` (784-256-10, batch 256, float32, alpha
1e-4; 40 steps after 5 warm-up) with ``SGD(0.9, nesterov=True)`` and ``Adam()``, and ms
per batch of a 3-epoch ``MLPClassifier`` fit (2048 x 64, one hidden layer of 64, batch 64)
with ``solver="sgd"`` and ``"adam"``, after an untimed fit. ``--jaxpr`` prints instead the
JAX program of the step with SGD (Nesterov, classical, plain) and Adam: diff two trees'.
"""

import json
import sys
import time

import numpy as np

import backendnn as bn
from backendnn import Network, _backend
from backendnn.optim import SGD, Adam
from backendnn.train import make_step

OPTIMIZERS = {"sgd": SGD(0.9, True), "adam": Adam()}


def jaxprs() -> None:
    import jax

    xp = _backend.namespace("jax")
    net = Network.mlp(8, (6,), 3)
    X = xp.ones((4, 8), dtype=xp.float32)
    Y = xp.asarray(np.eye(3, dtype=np.float32)[[0, 1, 2, 0]])
    for opt in (SGD(0.9, True), SGD(0.9, False), SGD(0.0, False), Adam()):
        params = net.init(0, xp=xp, dtype=xp.float32)
        # the plain step function (NumPy's namespace: not jitted), traced by JAX
        step = make_step(net, "softmax_cross_entropy", 1e-4, opt, _backend.namespace("numpy"))
        lr = xp.asarray(0.01, dtype=xp.float32)
        print(f"{type(opt).__name__} momentum={getattr(opt, 'momentum', '')}")
        print(jax.make_jaxpr(step)(params, opt.init(params), X, Y, lr))


def timings(names: list[str]) -> dict[str, float]:
    sizes, batch, n_steps = (784, 256, 10), 256, 40
    rng = np.random.default_rng(0)
    Xh = rng.standard_normal((batch, sizes[0])).astype(np.float32)
    Yh = np.eye(sizes[-1], dtype=np.float32)[rng.integers(0, sizes[-1], batch)]
    Xf = rng.standard_normal((2048, 64)).astype(np.float32)
    yf = rng.integers(0, 10, 2048)
    out = {}
    for name in names:
        xp, dev = _backend.namespace(name), _backend.default_device(name)
        net = Network.mlp(sizes[0], sizes[1:-1], sizes[-1])
        X = _backend.from_numpy(Xh, xp=xp, device=dev)
        Y = _backend.from_numpy(Yh, xp=xp, device=dev)
        lr = _backend.step_scalar(0.01, X)
        for label, opt in OPTIMIZERS.items():
            params = net.init(0, xp=xp, device=dev, dtype=xp.float32)
            state = opt.init(params)
            step = make_step(net, "softmax_cross_entropy", 1e-4, opt, xp)
            for _ in range(5):  # warm-up: compiles on JAX
                params, state, value = step(params, state, X, Y, lr)
            _backend.synchronize(value)
            tic = time.perf_counter()
            for _ in range(n_steps):
                params, state, value = step(params, state, X, Y, lr)
            _backend.synchronize(value)
            out[f"{name}-step-{label}"] = 1e3 * (time.perf_counter() - tic) / n_steps
        for solver in OPTIMIZERS:
            clf = bn.MLPClassifier(
                (64,), solver=solver, max_iter=3, batch_size=64, backend=name, random_state=0,
                tol=0, n_iter_no_change=100,
            )
            clf.fit(Xf, yf)  # compiles on JAX
            tic = time.perf_counter()
            clf.fit(Xf, yf)
            out[f"{name}-fit-{solver}"] = 1e3 * (time.perf_counter() - tic) / (3 * 32)
    return out


if __name__ == "__main__":
    if sys.argv[1:] == ["--jaxpr"]:
        jaxprs()
    else:
        print(json.dumps(timings(sys.argv[1].split(","))))
