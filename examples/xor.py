"""XOR: a perceptron cannot separate it, an MLP with one small hidden layer can
============================================================================

The notes' story. XOR's four points, (0,0) and (1,1) in class 0, (0,1) and (1,0) in
class 1, cannot be split by one line, so a perceptron gets at most 3 of the 4 right
(accuracy <= 0.75) however long it trains: the notes' perceptron (gradient descent on
the criterion J, ``solver="gd"``) and scikit-learn's online one (the default) alike.
Eight tanh units, trained by L-BFGS, bend the boundary around them. The figure ``xor.png``
shows both decision regions side by side (the notes' perceptron on the left), each
computed by predicting on a grid of points moved to the chosen backend.

Run it::

    python examples/xor.py --backend torch
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
from _common import parse_args, parser, plt, save_figure, title

import backendnn

X_HOST = np.array([[0, 0], [0, 1], [1, 0], [1, 1]], dtype=np.float32)
Y_HOST = np.array([0, 1, 1, 0])


# %%
# A model evaluated on a grid of points moved to the backend: the decision regions.


def grid_eval(fn: Callable, backend: str, n: int = 201) -> tuple[np.ndarray, ...]:
    """``fn`` (a model's predict or predict_proba) on an n x n grid over [-0.5, 1.5]^2:
    the grid is moved to ``backend`` once, the result comes back to NumPy for plotting."""
    ticks = np.linspace(-0.5, 1.5, n, dtype=np.float32)
    gx, gy = np.meshgrid(ticks, ticks)
    grid = backendnn.to_backend(np.stack([gx.ravel(), gy.ravel()], axis=1), backend)
    return gx, gy, backendnn.to_numpy(fn(grid)).reshape(gx.shape)


# %%
# Both perceptrons and the MLP fitted on the backend, their accuracies and the figure.


def main(argv: list[str] | None = None) -> None:
    args = parse_args(parser(__doc__), argv)
    X = backendnn.to_backend(X_HOST, args.backend)
    y = backendnn.to_backend(Y_HOST, args.backend)

    # the notes' algorithm: full-batch gradient descent on J(w, b) (eqs. 1-5)
    perceptron = backendnn.Perceptron(solver="gd", max_iter=1000, backend=args.backend).fit(X, y)
    p_acc = perceptron.score(X, y)
    print(
        f"Perceptron: accuracy {p_acc:.2f} after {perceptron.n_iter_} epochs of the notes' "
        f"gradient descent (XOR is not linearly separable: at best 0.75)"
    )
    online = backendnn.Perceptron(backend=args.backend).fit(X, y)  # scikit-learn's updates
    print(
        f"scikit-learn's online perceptron: accuracy {online.score(X, y):.2f} after "
        f"{online.n_iter_} epochs (the same limit)"
    )

    mlp = backendnn.MLPClassifier(
        (8,), activation="tanh", solver="lbfgs", random_state=1, backend=args.backend
    ).fit(X, y)
    m_acc = mlp.score(X, y)
    proba = backendnn.to_numpy(mlp.predict_proba(X))[:, 1]
    print(
        f"MLPClassifier (8 tanh units, L-BFGS): accuracy {m_acc:.2f} after {mlp.n_iter_} "
        f"iterations, loss {mlp.loss_:.2e}; P(class 1) at the 4 points: "
        + ", ".join(f"{p:.3f}" for p in proba)
    )

    w = backendnn.to_numpy(perceptron.coef_)[0]
    b = float(backendnn.to_numpy(perceptron.intercept_)[0])
    print(f"Perceptron weights: w = {w.tolist()}, b = {b}")

    fig, axes = plt.subplots(1, 2, figsize=(11, 4.9), sharey=True, layout="constrained")
    cmap = plt.get_cmap("coolwarm")
    # left: the perceptron's predicted class; right: the MLP's P(class 1), boundary at 0.5
    gx, gy, classes = grid_eval(perceptron.predict, args.backend)
    axes[0].contourf(gx, gy, classes, levels=[-0.5, 0.5, 1.5], cmap=cmap, alpha=0.4)
    if classes.min() != classes.max():
        axes[0].contour(gx, gy, classes, levels=[0.5], colors="k", linewidths=1.5)
    axes[0].text(
        0.03,
        0.03,
        f"w = ({w[0]:g}, {w[1]:g}), b = {b:g}",
        transform=axes[0].transAxes,
        fontsize=10,
        bbox={"boxstyle": "round", "facecolor": "white", "alpha": 0.85},
    )
    axes[0].set_title(
        f"Perceptron (one linear unit, the notes' GD): accuracy {p_acc:.2f}\n"
        "shaded: predicted class"
    )
    gx, gy, p1 = grid_eval(lambda g: mlp.predict_proba(g)[:, 1], args.backend)
    filled = axes[1].contourf(gx, gy, p1, levels=np.linspace(0, 1, 11), cmap=cmap, alpha=0.6)
    axes[1].contour(gx, gy, p1, levels=[0.5], colors="k", linewidths=1.5)
    fig.colorbar(filled, ax=axes[1], label="MLP's P(class 1)")
    axes[1].set_title(f"MLPClassifier (8 tanh units, L-BFGS): accuracy {m_acc:.2f}\nline: P = 0.5")
    for ax in axes:
        for label, marker in ((0, "o"), (1, "s")):
            pts = X_HOST[Y_HOST == label]
            ax.scatter(
                pts[:, 0],
                pts[:, 1],
                s=160,
                marker=marker,
                color=cmap(float(label)),
                edgecolors="k",
                linewidths=1.5,
                label=f"class {label}",
                zorder=3,
            )
        ax.set_xlabel("$x_1$")
        ax.set_aspect("equal")
    axes[0].set_ylabel("$x_2$")
    axes[0].legend(loc="upper center", framealpha=0.9)
    fig.suptitle(title(args, "XOR decision boundaries"))
    save_figure(fig, args, "xor.png")


# %%
# Run from the command line; on this page, with the arguments of the note at the top.
# What it prints and draws:
if __name__ == "__main__":
    main()
