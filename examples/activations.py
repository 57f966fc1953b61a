"""Every registered activation and its derivative, computed on the chosen backend.

    python examples/activations.py --backend array_api_strict

Each activation object has its value and derivative side by side: ``forward(z)`` and
``backward(dy, z, y)``. Here both run on the backend (the derivative as backward with
dy = 1) over z in [-5, 5]; only the results come to NumPy for plotting.
Softmax and log-softmax act on vectors: they are plotted on the slice z = (t, 0),
component 0, with the diagonal derivative d y_0 / d z_0 (backward with dy = (1, 0)).
The GLU family gates one half of a projection with the other, y = g(a) * b: shown as
slices in a for a few values of b, with dy/da = g'(a) * b dashed.
The figure ``activations.png`` has one small panel per activation.
"""

from __future__ import annotations

import math

import numpy as np
from _common import parse_args, parser, plt, save_figure, title

import backendnn
from backendnn import activations

B_VALUES = (2.0, 1.0, -1.0)  # the b of the GLU slices


def element_wise(name: str, z: np.ndarray, backend: str) -> tuple[np.ndarray, np.ndarray]:
    """f(z) and f'(z) (as backward with dy = 1) of activation ``name`` on ``backend``."""
    act = activations.get(name)
    zb = backendnn.to_backend(z, backend)
    y = act.forward(zb)
    dz = act.backward(backendnn.to_backend(np.ones_like(z), backend), zb, y)
    return backendnn.to_numpy(y), backendnn.to_numpy(dz)


def vector_slice(name: str, t: np.ndarray, backend: str) -> tuple[np.ndarray, np.ndarray]:
    """Component 0 of softmax-like ``name`` on rows z = (t, 0), and d y_0 / d z_0."""
    act = activations.get(name)
    Z = backendnn.to_backend(np.stack([t, np.zeros_like(t)], axis=1), backend)
    Y = act.forward(Z)
    e0 = np.zeros((t.shape[0], 2), dtype=t.dtype)
    e0[:, 0] = 1.0
    # backward is the vector-Jacobian product: with dy = e_0 it gives (dy_0/dz_0, dy_0/dz_1)
    dZ = act.backward(backendnn.to_backend(e0, backend), Z, Y)
    return backendnn.to_numpy(Y)[:, 0], backendnn.to_numpy(dZ)[:, 0]


def gated(name: str, a: np.ndarray, b: float, backend: str) -> tuple[np.ndarray, np.ndarray]:
    """y = g(a) * b and dy/da = g'(a) * b of GLU-family ``name`` on ``backend``."""
    glu = activations.get(name)
    ab = backendnn.to_backend(a, backend)
    bb = backendnn.to_backend(np.full_like(a, b), backend)
    y = glu.forward(ab, bb)
    da, _ = glu.backward(backendnn.to_backend(np.ones_like(a), backend), ab, bb)
    return backendnn.to_numpy(y), backendnn.to_numpy(da)


def main(argv: list[str] | None = None) -> None:
    args = parse_args(parser(__doc__.splitlines()[0]), argv)
    z = np.linspace(-5.0, 5.0, 400, dtype=np.float32)  # even count: the kink z = 0 is not sampled
    names = [n for n in activations.names() if n != "logistic"]  # logistic is sigmoid's alias
    probe = [int(np.argmin(np.abs(z - v))) for v in (-2.0, -1.0, 1.0, 2.0)]

    cols = 4
    rows = math.ceil(len(names) / cols)
    fig, axes = plt.subplots(rows, cols, figsize=(3.2 * cols, 2.7 * rows), layout="constrained")
    print(f"activations on backend {args.backend}: f and f' at z = " + ", ".join(
        f"{z[i]:+.2f}" for i in probe
    ))
    for ax, name in zip(axes.flat, names):
        act = activations.get(name)
        ax.axhline(0, color="0.7", lw=0.8)
        ax.axvline(0, color="0.7", lw=0.8)
        if activations.is_gated(act):
            for k, b in enumerate(B_VALUES):
                y, da = gated(name, z, b, args.backend)
                ax.plot(z, y, color=f"C{k}", label=f"b = {b:g}")
                ax.plot(z, da, color=f"C{k}", ls="--")
            ax.set_title(f"{name}: {act.gate.name}(a)·b", fontsize=10)
            ax.set_xlabel("a")
            ax.legend(fontsize=7, loc="upper left")
            y, da = gated(name, z, 1.0, args.backend)
        elif name in ("softmax", "log_softmax"):
            y, da = vector_slice(name, z, args.backend)
            ax.plot(z, y, color="C0")
            ax.plot(z, da, color="C3", ls="--")
            ax.set_title(f"{name}: $y_0$ at z = (t, 0)", fontsize=10)
            ax.set_xlabel("t")
        else:
            y, da = element_wise(name, z, args.backend)
            ax.plot(z, y, color="C0")
            ax.plot(z, da, color="C3", ls="--")
            ax.set_title(name, fontsize=10)
            ax.set_xlabel("z")
        ax.grid(True, alpha=0.3)
        print(
            f"  {name:12s} f: "
            + " ".join(f"{y[i]:+8.4f}" for i in probe)
            + "   f': "
            + " ".join(f"{da[i]:+8.4f}" for i in probe)
            + ("   (b = 1)" if activations.is_gated(act) else "")
        )
    for ax in axes.flat[len(names) :]:
        ax.set_visible(False)
    for ax in axes[:, 0]:
        ax.set_ylabel("value")
    handles = [
        plt.Line2D([], [], color="C0", label="f (value)"),
        plt.Line2D([], [], color="C3", ls="--", label="f' (derivative, from backward)"),
    ]
    fig.legend(handles=handles, loc="outside lower center", ncols=2)
    fig.suptitle(title(args, "activations: value (solid) and derivative (dashed)"))
    save_figure(fig, args, "activations.png")


if __name__ == "__main__":
    main()
