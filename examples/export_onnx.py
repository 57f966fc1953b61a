"""Export the digits CNN of train_digits_cnn.py to ONNX and run it in ONNX Runtime
===============================================================================

Needs ``pip install backendnn[onnx]`` (onnx and onnxruntime). It fits the same network on
the same split, writes ``digits_cnn.onnx``, runs it in ONNX Runtime (which knows nothing
of backendnn) and prints both test accuracies, the largest difference between the two
runtimes' class probabilities and the number of test digits whose labels differ. With
--dtype float64 the model is exported and run in float64.

Run it::

    python examples/export_onnx.py                  # NumPy
    python examples/export_onnx.py --backend jax    # or torch, cupy, array_api_strict
"""

from __future__ import annotations

import sys
import time
import warnings

import numpy as np
from _common import parse_args, parser
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split
from train_digits_cnn import LAYERS, SETTINGS

import backendnn

# %%
# The fit, the export, and both runtimes on the test digits.


def main(argv: list[str] | None = None) -> None:
    p = parser(__doc__, epochs=40)
    p.add_argument("--dtype", choices=("float32", "float64"), default="float32")
    args = parse_args(p, argv)
    try:
        import onnxruntime
    except ImportError:
        sys.exit(
            "this example runs the exported model in ONNX Runtime: pip install backendnn[onnx]"
        )

    digits = load_digits()
    images = (digits.images / 16.0).astype(args.dtype)[:, None, :, :]  # (N, 1, 8, 8)
    X_train, X_test, y_train, y_test = train_test_split(
        images, digits.target, test_size=0.25, stratify=digits.target, random_state=0
    )
    model = backendnn.NeuralNetClassifier(LAYERS, max_iter=args.epochs, **SETTINGS)
    with warnings.catch_warnings():  # --epochs is a budget
        warnings.simplefilter("ignore", backendnn.ConvergenceWarning)
        model.fit(
            backendnn.to_backend(X_train, args.backend), backendnn.to_backend(y_train, args.backend)
        )
    X_test_b = backendnn.to_backend(X_test, args.backend)
    ours = backendnn.to_numpy(model.predict(X_test_b))
    proba = backendnn.to_numpy(model.predict_proba(X_test_b))

    path = args.out / "digits_cnn.onnx"
    backendnn.export_onnx(model, path)
    session = onnxruntime.InferenceSession(path, providers=["CPUExecutionProvider"])
    tic = time.perf_counter()
    onnx_proba, onnx_labels = session.run(None, {"X": X_test})  # ["probabilities", "labels"]
    seconds = time.perf_counter() - tic

    print(f"exported {path} ({path.stat().st_size / 1024:.0f} KiB, {args.dtype})")
    print(f"backendnn test accuracy: {np.mean(ours == y_test):.4f}")
    print(f"ONNX Runtime test accuracy: {np.mean(onnx_labels == y_test):.4f} "
          f"({len(X_test)} digits in {seconds * 1e3:.1f} ms)")  # fmt: skip
    print(f"largest probability difference: {np.max(np.abs(onnx_proba - proba)):.1e}; "
          f"labels that differ: {int(np.sum(onnx_labels != ours))}")  # fmt: skip


# %%
# Run from the command line; on this page, with the arguments of the note at the top.
# What it prints and draws:
if __name__ == "__main__":
    main()
