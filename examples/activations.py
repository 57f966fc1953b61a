"""Every registered activation and its derivative, computed on the chosen backend
==============================================================================

Each activation object has its value and derivative side by side: ``forward(z)`` and
``backward(dy, z, y)``. Here both run on the backend (the derivative as backward with
dy = 1) over z in [-5, 5]; only the results come to NumPy for plotting.
Softmax and log-softmax act on vectors: they are plotted on the slice z = (t, 0),
component 0, with the diagonal derivative d y_0 / d z_0 (backward with dy = (1, 0)).
The GLU family gates one half of a projection with the other, y = g(a) * b: shown as
slices in a for a few values of b, with dy/da = g'(a) * b dashed.
The figure ``activations.png`` has one small panel per activation.

Run it::

    python examples/activations.py --backend array_api_strict
"""

from __future__ import annotations

import math

import numpy as np
from _common import parse_args, parser, plt, save_figure, title

import backendnn
from backendnn import activations

B_VALUES = (2.0, 1.0, -1.0)  # the b of the GLU slices
BETAS = (2.0, 1.0, 0.5)  # Swish's beta (1 is the registered default, SiLU)
FORMULA = {
    "identity": "$z$",
    "sigmoid": r"$\sigma(z) = 1/(1+e^{-z})$",
    "tanh": r"$\tanh z$",
    "relu": r"$\max(0, z)$",
    "gelu": r"$z\,\Phi(z)$",
    "gelu_tanh": r"$z\,\Phi(z)$, tanh approx.",
    "silu": r"$z\,\sigma(z)$",
    "swish": r"$z\,\sigma(\beta z)$",
    "softplus": r"$\log(1+e^z)$",
}


# %%
# Each kind of activation evaluated on the backend: element-wise, a slice of the
# vector ones (softmax, log-softmax), the gated ones (the GLU family).


def _move(a: np.ndarray, backend: str) -> object:
    return backendnn.to_backend(a, backend)


def element_wise(act: object, z: np.ndarray, backend: str) -> tuple[np.ndarray, np.ndarray]:
    """f(z) and f'(z) (as backward with dy = 1) of activation ``act`` on ``backend``."""
    zb = _move(z, backend)
    y = act.forward(zb)
    dz = act.backward(_move(np.ones_like(z), backend), zb, y)
    return backendnn.to_numpy(y), backendnn.to_numpy(dz)


def vector_slice(act: object, t: np.ndarray, backend: str) -> tuple[np.ndarray, np.ndarray]:
    """Component 0 of softmax-like ``act`` on rows z = (t, 0), and d y_0 / d z_0."""
    Z = _move(np.stack([t, np.zeros_like(t)], axis=1), backend)
    Y = act.forward(Z)
    e0 = np.zeros((t.shape[0], 2), dtype=t.dtype)
    e0[:, 0] = 1.0
    # backward is the vector-Jacobian product: with dy = e_0 it gives (dy_0/dz_0, dy_0/dz_1)
    dZ = act.backward(_move(e0, backend), Z, Y)
    return backendnn.to_numpy(Y)[:, 0], backendnn.to_numpy(dZ)[:, 0]


def gated(act: object, a: np.ndarray, b: float, backend: str) -> tuple[np.ndarray, np.ndarray]:
    """y = g(a) * b and dy/da = g'(a) * b of GLU-family ``act`` on ``backend``."""
    ab, bb = _move(a, backend), _move(np.full_like(a, b), backend)
    y = act.forward(ab, bb)
    da, _ = act.backward(_move(np.ones_like(a), backend), ab, bb)
    return backendnn.to_numpy(y), backendnn.to_numpy(da)


def evaluate(name: str, z: np.ndarray, backend: str, p: float = 1.0) -> tuple[np.ndarray, ...]:
    """Value and derivative of activation ``name`` along ``z`` (GLU: b = p; swish: beta = p)."""
    if name in activations.GATED:
        return gated(activations.get(name), z, p, backend)
    if name in ("softmax", "log_softmax"):
        return vector_slice(activations.get(name), z, backend)
    act = activations.get(name, beta=p) if name == "swish" else activations.get(name)
    return element_wise(act, z, backend)


# %%
# One panel per registered activation: its value and its derivative.


def main(argv: list[str] | None = None) -> None:
    args = parse_args(parser(__doc__), argv)
    z = np.linspace(-5.0, 5.0, 400, dtype=np.float32)  # even count: the kink z = 0 is not sampled
    probe = np.array([-2.0, -1.0, 0.0, 1.0, 2.0], dtype=np.float32)
    names = [n for n in activations.names() if n != "logistic"]  # logistic is sigmoid's alias

    cols = 4
    rows = math.ceil(len(names) / cols)
    fig, axes = plt.subplots(rows, cols, figsize=(3.3 * cols, 2.8 * rows), layout="constrained")
    # one array for the curve and the printed probe points: one shape, one compilation on JAX
    points = np.concatenate([z, probe])
    n = z.shape[0]
    print(f"activations on backend {args.backend}, at z = {probe.tolist()}")
    for ax, name in zip(axes.flat, names):
        ax.axhline(0, color="0.7", lw=0.8)
        ax.axvline(0, color="0.7", lw=0.8)
        sweep = B_VALUES if name in activations.GATED else BETAS if name == "swish" else (1.0,)
        symbol = "b" if name in activations.GATED else r"\beta"
        for k, p in enumerate(sweep):
            y, d = evaluate(name, points, args.backend, p)
            if len(sweep) > 1:
                ax.plot(z, y[:n], color=f"C{k}", label=f"${symbol}$ = {p:g}")
                ax.plot(z, d[:n], color=f"C{k}", ls="--")
            else:
                ax.plot(z, y[:n], color="C0")
                ax.plot(z, d[:n], color="C3", ls="--")
            if p == 1.0:  # printed: GLU at b = 1, swish at its default beta = 1
                y_probe, d_probe = y[n:], d[n:]
        if len(sweep) > 1:
            ax.legend(fontsize=7, loc="upper left")
        if name in activations.GATED:
            gate = activations.get(name).gate.name
            ax.set_title(f"{name}: y = {gate}(a)·b", fontsize=10)
            ax.set_xlabel("a  (dashed: dy/da)")
        elif name in ("softmax", "log_softmax"):
            ax.set_title(f"{name}: $y_0$ of z = (t, 0)", fontsize=10)
            ax.set_xlabel("t  (dashed: $\\partial y_0/\\partial z_0$)")
        else:
            ax.set_title(f"{name}: {FORMULA.get(name, '')}", fontsize=10)
            ax.set_xlabel("z")
        ax.grid(True, alpha=0.3)
        note = " (b = 1)" if name in activations.GATED else ""
        note = " (z = (t, 0), component 0)" if name in ("softmax", "log_softmax") else note
        print(
            f"  {name:12s} f = [{', '.join(f'{v:+.4f}' for v in y_probe)}]"
            f"  f' = [{', '.join(f'{v:+.4f}' for v in d_probe)}]{note}"
        )
    for ax in axes.flat[len(names) :]:
        ax.set_visible(False)
    for ax in axes[:, 0]:
        ax.set_ylabel("f and f'")
    handles = [
        plt.Line2D([], [], color="k", label="value f"),
        plt.Line2D([], [], color="k", ls="--", label="derivative f' (computed by backward)"),
    ]
    fig.legend(handles=handles, loc="outside lower center", ncols=2)
    fig.suptitle(title(args, "activations: value (solid) and derivative (dashed)"))
    save_figure(fig, args, "activations.png")


# %%
# Run from the command line; on this page, with the arguments of the note at the top.
# What it prints and draws:
if __name__ == "__main__":
    main()
