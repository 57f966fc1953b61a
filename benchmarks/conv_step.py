"""One training step of a small LeNet-like CNN: backendnn on NumPy, JAX and torch against a
plain PyTorch eager loop, side by side.

    python benchmarks/conv_step.py [--batch 64] [--steps 20] [--repeats 5]
                                   [--engines numpy,jax-jit,torch,torch-eager,...]
                                   [--threads N]

The network: (N, 1, 28, 28) -> Conv2d(1->16, 3, padding 1) -> ReLU -> MaxPool2d(2) ->
Conv2d(16->32, 3, padding 1) -> ReLU -> MaxPool2d(2) -> Flatten -> Dense(1568->10),
softmax cross-entropy, plain SGD (``optim.SGD(momentum=0.0, nesterov=False)``, lr 0.01),
float32, one fixed batch. backendnn engines run ``backendnn.train.make_step``.

Engines:

- ``numpy``: backendnn on NumPy (the portable im2col path: NumPy has no convolution);
- ``jax-jit``: backendnn on JAX, the step compiled (native ``lax.conv_general_dilated``);
- ``torch``: backendnn on torch, eager (native ``F.conv2d`` and ``torch.nn.grad``);
- ``jax-jit-im2col``, ``torch-im2col``: the same with the native convolution switched off
  (``_backend.native_conv2d*`` return None), to show what the native path buys. The JAX
  one compiles ``make_step``'s plain function itself (``make_step`` on NumPy's namespace,
  which returns it uncompiled), so it does not share the native step's compiled cache;
- ``torch-eager``: the same network as ``torch.nn`` modules, ``loss.backward()`` and an
  in-place SGD update under ``torch.no_grad()``: the usual PyTorch loop.

Each engine starts from the same weights (``Network.init(0)``). Timing: after warm-up
steps (JAX compiles), ``--repeats`` rounds; in each round every engine, in rotated order,
runs a block of ``--steps`` steps ended by a device sync, after a 0.2 s pause (OpenBLAS's
spinning threads). The table gives the median ms/step over rounds and its ratio to
torch-eager's (engine time / torch-eager time: above 1 is slower), and the loss after the
warm-up steps, which agrees across engines.

``--threads 1`` (torch intra-op threads and BLAS threads; XLA keeps its own): on the
shared 2-core dev machine, under the load of other sessions, two threads per engine made
every figure swing 2-5x between rounds.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import statistics
import time

import numpy as np

import backendnn
from backendnn import Network, _backend, optim, train
from backendnn.layers import Activation, Conv2d, Dense, Flatten, MaxPool2d

LR = 0.01
ENGINES = ("numpy", "jax-jit", "jax-jit-im2col", "torch", "torch-im2col", "torch-eager")
_NATIVE = ("native_conv2d", "native_conv2d_input_grad", "native_conv2d_weight_grad")


def lenet() -> Network:
    return Network(
        [
            Conv2d(1, 16, 3, padding=1),
            Activation("relu"),
            MaxPool2d(2),
            Conv2d(16, 32, 3, padding=1),
            Activation("relu"),
            MaxPool2d(2),
            Flatten(),
            Dense(32 * 7 * 7, 10),
        ]
    )


@contextlib.contextmanager
def portable(enabled: bool = True):
    """The im2col path everywhere inside the block (no native convolution)."""
    saved = {name: getattr(_backend, name) for name in _NATIVE}
    if enabled:
        for name in _NATIVE:
            setattr(_backend, name, lambda *args: None)
    try:
        yield
    finally:
        for name, fn in saved.items():
            setattr(_backend, name, fn)


def backendnn_engine(name: str, X: np.ndarray, y: np.ndarray):
    """``run(n)``: n training steps of backendnn, then a sync; returns the last loss."""
    lib = name.split("-")[0]
    im2col = name.endswith("im2col")
    xp = _backend.namespace(lib)
    net = lenet()
    opt = optim.SGD(momentum=0.0, nesterov=False)
    params = net.init(0, xp=xp, device=_backend.default_device(lib), dtype=xp.float32)
    Xd = _backend.to_backend(X, lib)
    yd = _backend.to_backend(y, lib)
    if lib == "jax" and im2col:
        import jax

        step = jax.jit(train.make_step(net, "softmax_cross_entropy", 0.0, opt, np))
    else:
        step = train.make_step(net, "softmax_cross_entropy", 0.0, opt, xp)
    state = [opt.init(params)]
    lr = _backend.step_scalar(LR, Xd)
    box = [params]

    def run(n: int) -> float:
        with portable(im2col):
            for _ in range(n):
                box[0], state[0], value = step(box[0], state[0], Xd, yd, lr)
            _backend.synchronize(box[0][-1][0])
        return float(value) / X.shape[0]

    return run


def torch_eager_engine(X: np.ndarray, y: np.ndarray):
    import torch

    net = lenet()
    host = net.init(0, xp=_backend.namespace("numpy"), dtype=np.float32)
    model = torch.nn.Sequential(
        torch.nn.Conv2d(1, 16, 3, padding=1),
        torch.nn.ReLU(),
        torch.nn.MaxPool2d(2),
        torch.nn.Conv2d(16, 32, 3, padding=1),
        torch.nn.ReLU(),
        torch.nn.MaxPool2d(2),
        torch.nn.Flatten(),
        torch.nn.Linear(32 * 7 * 7, 10),
    )
    with torch.no_grad():  # the same starting weights (Linear's weight is W^T)
        for module, (W, b) in zip([model[0], model[3], model[7]], [host[0], host[3], host[7]]):
            module.weight.copy_(torch.from_numpy(np.ascontiguousarray(W.T if W.ndim == 2 else W)))
            module.bias.copy_(torch.from_numpy(b))
    dev = _backend.default_device("torch")
    model = model.to(dev)
    Xt = torch.from_numpy(X).to(dev)
    yt = torch.from_numpy(y).to(dev)
    loss_fn = torch.nn.CrossEntropyLoss()

    def run(n: int) -> float:
        for _ in range(n):
            loss = loss_fn(model(Xt), yt)
            model.zero_grad(set_to_none=True)
            loss.backward()
            with torch.no_grad():
                for p in model.parameters():
                    p -= LR * p.grad
        if Xt.is_cuda:
            torch.cuda.synchronize()
        return float(loss.detach())

    return run


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--steps", type=int, default=20, help="steps per timed block")
    parser.add_argument("--repeats", type=int, default=5, help="timed rounds")
    parser.add_argument("--warmup", type=int, default=3, help="untimed steps per engine")
    parser.add_argument("--engines", default=",".join(ENGINES))
    parser.add_argument("--threads", type=int, default=None, help="torch and BLAS threads")
    args = parser.parse_args()
    engines = [e for e in args.engines.split(",") if e]

    if args.threads is not None:
        import torch
        from threadpoolctl import threadpool_limits

        torch.set_num_threads(args.threads)
        threadpool_limits(args.threads)
    backendnn.set_matmul_precision("highest")  # full float32 everywhere (no TF32)

    rng = np.random.default_rng(0)
    X = rng.normal(size=(args.batch, 1, 28, 28)).astype(np.float32)
    y = rng.integers(0, 10, size=args.batch)

    runs, losses = {}, {}
    for name in engines:
        try:
            runs[name] = (
                torch_eager_engine(X, y) if name == "torch-eager" else backendnn_engine(name, X, y)
            )
        except ImportError as exc:
            print(f"skipping {name}: {exc}")
            continue
        losses[name] = runs[name](args.warmup)
    times: dict[str, list[float]] = {name: [] for name in runs}
    order = list(runs)
    for r in range(args.repeats):
        for name in order[r % len(order) :] + order[: r % len(order)]:
            time.sleep(0.2)
            start = time.perf_counter()
            runs[name](args.steps)
            times[name].append((time.perf_counter() - start) / args.steps * 1e3)

    import torch

    print(
        f"batch {args.batch}, float32, {args.steps} steps x {args.repeats} rounds; "
        f"torch threads {torch.get_num_threads()}, cpus {os.cpu_count()}, "
        f"device {_backend.default_device('torch')}, load {os.getloadavg()[0]:.1f}"
    )
    ref = statistics.median(times["torch-eager"]) if "torch-eager" in times else None
    print("\n| engine | ms/step (median) | min | x torch-eager | loss after warm-up |")
    print("|---|---|---|---|---|")
    for name, ts in times.items():
        med = statistics.median(ts)
        ratio = f"{med / ref:.2f}" if ref else "-"
        print(f"| {name} | {med:.2f} | {min(ts):.2f} | {ratio} | {losses[name]:.6f} |")


if __name__ == "__main__":
    main()
