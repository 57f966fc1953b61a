"""The peer engines: hand-written competitors to backendnn's step, not backendnn's math.
``sklearn`` (scikit-learn's ``MLPClassifier``), ``torch-eager`` (a plain PyTorch loop),
``jax-grad`` (``jax.value_and_grad`` + ``jax.jit``) and ``numpy-matmuls`` (the step's
matrix products alone). Each function turns a :class:`~.problem.Problem` into a
prepared :class:`~.runner.Runner`. ``torch-eager`` and ``jax-grad`` also train the
LeNet-like CNN (``--model lenet``: ``nn.Conv2d``/``nn.MaxPool2d``, and
``lax.conv_general_dilated``/``lax.reduce_window``); the other two train MLPs only.

Imports: :mod:`.problem` and :mod:`.runner`. This is the one module of the package
outside ``_backend/`` that imports array libraries by name, and only inside the engine
functions, so that it imports without any of them (every peer is optional).
"""

from __future__ import annotations

from typing import Any

from .problem import RESNET_DROPOUT, RESNETS, Problem, mlp_settings
from .runner import Runner, device_info, fit_runner, step_runner


def sklearn_fit(p: Problem) -> Runner:
    """scikit-learn's ``MLPClassifier``: one-epoch ``fit`` time divided by the batches."""
    from sklearn.neural_network import MLPClassifier

    last: list[Any] = [None]

    def fit(n_batches: int) -> None:
        n = n_batches * p.batch
        last[0] = MLPClassifier(**mlp_settings(p)).fit(p.X[:n], p.y[:n])
        if last[0].coefs_[0].dtype.name != "float32":  # pragma: no cover - old scikit-learn
            raise RuntimeError(f"scikit-learn trained in {last[0].coefs_[0].dtype}, not float32")

    block = fit_runner(fit, p, [])
    return Runner(block, "fp32", "cpu", lambda: float(last[0].loss_))


def _torch_model(p: Problem) -> Any:
    """The problem's network as ``torch.nn`` modules holding backendnn's initial weights (a
    ``Linear``'s weight is W^T; a convolution's has PyTorch's layout already)."""
    import torch

    host = p.host_params()
    layers: list[Any] = []
    if p.model == "lenet":
        for conv in ((1, 16), (16, 32)):
            layers += [torch.nn.Conv2d(*conv, 3, padding=1), torch.nn.ReLU(), torch.nn.MaxPool2d(2)]
        layers += [torch.nn.Flatten(), torch.nn.Linear(*host[-1][0].shape)]
    else:
        for i, (W, _) in enumerate(host):
            layers.append(torch.nn.Linear(W.shape[0], W.shape[1]))
            if i < len(host) - 1:
                layers.append(torch.nn.ReLU())
    with_params = [m for m in layers if isinstance(m, (torch.nn.Linear, torch.nn.Conv2d))]
    with torch.no_grad():
        for module, (W, b) in zip(with_params, host, strict=True):
            module.weight.copy_(torch.from_numpy((W.T if W.ndim == 2 else W).copy()))
            module.bias.copy_(torch.from_numpy(b.copy()))  # type: ignore[union-attr]
    return torch.nn.Sequential(*layers)


def _torch_resnet(p: Problem) -> Any:
    """:func:`~.problem.resnet` as ``torch.nn`` modules (``nn.BatchNorm2d``, ``nn.Dropout``,
    a residual module that adds its two branches) holding backendnn's initial weights: the
    parameters in the same order as backendnn's, a ``Linear``'s weight transposed."""
    import torch
    from torch import nn

    norm = p.model == "resnet"

    def bn(c: int) -> list:
        return [nn.BatchNorm2d(c)] if norm else []

    class Block(nn.Module):
        def __init__(self, f: list, shortcut: list | None = None):
            super().__init__()
            self.f = nn.Sequential(*f)
            self.shortcut = nn.Sequential(*shortcut) if shortcut else None

        def forward(self, x: Any) -> Any:
            return self.f(x) + (x if self.shortcut is None else self.shortcut(x))

    model = nn.Sequential(
        nn.Conv2d(1, 16, 3, padding=1), *bn(16), nn.ReLU(),
        Block([nn.Conv2d(16, 16, 3, padding=1), *bn(16), nn.ReLU(),
               nn.Conv2d(16, 16, 3, padding=1), *bn(16)]),
        nn.ReLU(),
        Block([nn.Conv2d(16, 32, 3, stride=2, padding=1), *bn(32), nn.ReLU(),
               nn.Conv2d(32, 32, 3, padding=1), *bn(32)],
              [nn.Conv2d(16, 32, 1, stride=2), *bn(32)]),
        nn.ReLU(),
        nn.AdaptiveAvgPool2d(1), nn.Flatten(),
        *([nn.Dropout(RESNET_DROPOUT)] if norm else []),
        nn.Linear(32, 10),
    )  # fmt: skip
    host = [a for layer in p.host_params() for a in layer]
    tensors = list(model.parameters())
    if [tuple(a.shape[::-1] if a.ndim == 2 else a.shape) for a in host] != [
        tuple(t.shape) for t in tensors
    ]:  # pragma: no cover - the two definitions drifted apart
        raise RuntimeError("the torch residual CNN does not match backendnn's parameters")
    with torch.no_grad():
        for t, a in zip(tensors, host, strict=True):
            t.copy_(torch.from_numpy((a.T if a.ndim == 2 else a).copy()))
    return model


def torch_eager(p: Problem) -> Runner:
    """A plain PyTorch loop (``nn.Linear``, or ``nn.Conv2d``/``nn.MaxPool2d`` for the CNN,
    ``F.cross_entropy``, ``torch.optim.SGD``), on CUDA when available, from backendnn's
    initial weights."""
    import torch
    import torch.nn.functional as F

    dev = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    model = (_torch_resnet(p) if p.model in RESNETS else _torch_model(p)).to(dev)
    model.train()
    opt = torch.optim.SGD(model.parameters(), lr=p.lr, momentum=0.0)
    X = torch.from_numpy(p.X).to(dev)
    y = torch.from_numpy(p.y).to(dev)
    B = p.batch
    batches = [(X[i * B : (i + 1) * B], y[i * B : (i + 1) * B]) for i in range(p.n_batches)]
    last: list[Any] = [None]

    def one(i: int) -> None:
        xb, yb = batches[i]
        opt.zero_grad(set_to_none=True)
        loss = F.cross_entropy(model(xb), yb)
        loss.backward()
        opt.step()
        last[0] = loss

    def sync() -> None:
        if dev.type == "cuda":
            torch.cuda.synchronize(dev)

    block = step_runner(one, sync, p)
    label, precision = device_info("torch", dev)
    return Runner(block, precision, label, lambda: float(last[0].detach().cpu()))


def _jax_lenet(params: list, x: Any) -> Any:
    """The CNN's logits: two (convolution, ReLU, 2x2 max-pool), flatten, dense."""
    import jax
    from jax import lax

    h = x
    for W, b in params[:-1]:
        spec = ("NCHW", "OIHW", "NCHW")
        h = lax.conv_general_dilated(h, W, (1, 1), ((1, 1), (1, 1)), dimension_numbers=spec)
        h = jax.nn.relu(h + b[None, :, None, None])
        h = lax.reduce_window(h, -float("inf"), lax.max, (1, 1, 2, 2), (1, 1, 2, 2), "VALID")
    W, b = params[-1]
    return h.reshape(h.shape[0], -1) @ W + b


_BN_EPS, _BN_MOMENTUM = 1e-5, 0.1


def _jax_resnet(params: list, stats: list, x: Any, key: Any, norm: bool) -> tuple[Any, list]:
    """:func:`~.problem.resnet`'s logits and its batch norms' new running statistics, as
    plain JAX functions: ``params`` backendnn's flat parameter list in its order, ``stats``
    one (running mean, running var) per batch norm, ``key`` the step's dropout key. Batch
    norm normalises with the batch's mean and biased variance and updates the running
    statistics with the unbiased one (PyTorch's rule, as backendnn's)."""
    import jax
    import jax.numpy as jnp
    from jax import lax

    arrays, running, new_stats = iter(params), iter(stats), []

    def conv(h: Any, stride: int, pad: int) -> Any:
        W, b = next(arrays), next(arrays)
        spec = ("NCHW", "OIHW", "NCHW")
        pads = ((pad, pad), (pad, pad))
        h = lax.conv_general_dilated(h, W, (stride, stride), pads, dimension_numbers=spec)
        return h + b[None, :, None, None]

    def bn(h: Any) -> Any:
        if not norm:
            return h
        gamma, beta = next(arrays), next(arrays)
        mean = jnp.mean(h, axis=(0, 2, 3))
        var = jnp.mean(jnp.square(h - mean[None, :, None, None]), axis=(0, 2, 3))
        m = h.shape[0] * h.shape[2] * h.shape[3]
        old_mean, old_var = next(running)
        new_stats.append(
            (
                (1 - _BN_MOMENTUM) * old_mean + _BN_MOMENTUM * mean,
                (1 - _BN_MOMENTUM) * old_var + _BN_MOMENTUM * var * (m / (m - 1)),
            )
        )
        inv = lax.rsqrt(var + _BN_EPS)
        return (h - mean[None, :, None, None]) * (gamma * inv)[None, :, None, None] + beta[
            None, :, None, None
        ]

    relu = jax.nn.relu
    h = relu(bn(conv(x, 1, 1)))
    h = relu(bn(conv(relu(bn(conv(h, 1, 1))), 1, 1)) + h)  # block 1, identity shortcut
    f = bn(conv(relu(bn(conv(h, 2, 1))), 1, 1))
    h = relu(f + bn(conv(h, 2, 0)))  # block 2, projection shortcut
    h = jnp.mean(h, axis=(2, 3))
    if norm:
        keep = 1.0 - RESNET_DROPOUT
        h = h * jax.random.bernoulli(key, keep, h.shape).astype(h.dtype) / keep
    W, b = next(arrays), next(arrays)
    return h @ W + b, new_stats


def jax_grad(p: Problem) -> Runner:
    """A hand-written ``jax.value_and_grad`` + ``jax.jit`` step (learning rate a constant),
    from backendnn's initial weights; for the residual CNN the network as plain JAX
    functions (:func:`_jax_resnet`: batch norm with batch statistics and running-statistics
    update, dropout from ``jax.random`` with a key split each step)."""
    import jax
    import jax.numpy as jnp

    dev = jax.devices()[0]
    if p.model in RESNETS:
        return _jax_resnet_runner(p, dev)
    params = [tuple(jax.device_put(a, dev) for a in layer) for layer in p.host_params()]
    lr = p.lr

    def logits(params: list, x: Any) -> Any:
        if p.model == "lenet":
            return _jax_lenet(params, x)
        h = x
        for i, (W, b) in enumerate(params):
            h = h @ W + b
            if i < len(params) - 1:
                h = jax.nn.relu(h)
        return h

    def loss_fn(params: list, x: Any, y: Any) -> Any:
        h = logits(params, x)
        return -jnp.mean(jnp.sum(y * jax.nn.log_softmax(h, axis=-1), axis=-1))

    @jax.jit
    def train_step(params: list, x: Any, y: Any) -> tuple[list, Any]:
        loss, grads = jax.value_and_grad(loss_fn)(params, x, y)
        return jax.tree.map(lambda w, g: w - lr * g, params, grads), loss

    X = jax.device_put(p.X, dev)
    Y = jax.device_put(p.Y, dev)
    B = p.batch
    batches = [(X[i * B : (i + 1) * B], Y[i * B : (i + 1) * B]) for i in range(p.n_batches)]
    carry: list[Any] = [params, None]

    def one(i: int) -> None:
        carry[0], carry[1] = train_step(carry[0], *batches[i])

    def sync() -> None:
        jax.block_until_ready(carry)

    block = step_runner(one, sync, p)
    label, precision = device_info("jax", dev)
    return Runner(block, precision, label, lambda: float(carry[1]))


def _jax_resnet_runner(p: Problem, dev: Any) -> Runner:
    """:func:`jax_grad` for the residual CNNs: parameters, running statistics and the
    dropout key carried from step to step through one ``jax.jit`` step."""
    import jax
    import jax.numpy as jnp

    norm = p.model == "resnet"
    params = [jax.device_put(a, dev) for layer in p.host_params() for a in layer]
    channels = _RESNET_BN_CHANNELS if norm else ()
    stats = [(jnp.zeros(c, jnp.float32), jnp.ones(c, jnp.float32)) for c in channels]
    stats = jax.device_put(stats, dev)
    key = jax.device_put(jax.random.key(p.seed), dev)
    lr = p.lr

    def loss_fn(params: list, stats: list, x: Any, y: Any, key: Any) -> tuple[Any, list]:
        h, new_stats = _jax_resnet(params, stats, x, key, norm)
        return -jnp.mean(jnp.sum(y * jax.nn.log_softmax(h, axis=-1), axis=-1)), new_stats

    @jax.jit
    def train_step(params: list, stats: list, key: Any, x: Any, y: Any) -> tuple:
        key, sub = jax.random.split(key)
        (loss, stats), grads = jax.value_and_grad(loss_fn, has_aux=True)(params, stats, x, y, sub)
        params = [w - lr * g for w, g in zip(params, grads, strict=True)]
        return params, stats, key, loss

    X = jax.device_put(p.X, dev)
    Y = jax.device_put(p.Y, dev)
    B = p.batch
    batches = [(X[i * B : (i + 1) * B], Y[i * B : (i + 1) * B]) for i in range(p.n_batches)]
    carry: list[Any] = [params, stats, key, None]

    def one(i: int) -> None:
        carry[0], carry[1], carry[2], carry[3] = train_step(*carry[:3], *batches[i])

    def sync() -> None:
        jax.block_until_ready(carry)

    block = step_runner(one, sync, p)
    label, precision = device_info("jax", dev)
    return Runner(block, precision, label, lambda: float(carry[3]))


# the channels of the residual CNN's batch norms, in the order _jax_resnet meets them
_RESNET_BN_CHANNELS = (16, 16, 16, 32, 32, 32)


def numpy_matmuls(p: Problem) -> Runner:
    """The floor of any NumPy engine: the step's matrix products alone (forward a W,
    backward a^T dz and dz W^T) on the host arrays, no bias, activation, loss or update."""
    weights = [W for W, _ in p.host_params()]  # NumPy arrays, as the batches
    B = p.batch
    batches = [p.X[i * B : (i + 1) * B] for i in range(p.n_batches)]

    def one(i: int) -> None:
        acts = [batches[i]]
        for W in weights:  # forward: a_{l+1} = a_l W_l
            acts.append(acts[-1] @ W)
        dz = acts[-1]
        for j in range(len(weights) - 1, -1, -1):  # backward: dW = a^T dz, da = dz W^T
            acts[j].T @ dz
            if j:
                dz = dz @ weights[j].T

    block = step_runner(one, lambda: None, p)
    return Runner(block, "fp32", "cpu", lambda: None)
