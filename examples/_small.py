"""The small sizes each example runs with in the tests and in the documentation's gallery.

One table for both (tests/test_examples.py and docs/_gallery.py read it): a few epochs or
samples, enough to draw every figure in seconds, not to train well. ``distributed.py``
starts processes and sets JAX's device flags before JAX loads: it has no entry, the gallery
shows it without running it.
"""

from __future__ import annotations

SMALL_ARGS: dict[str, list[str]] = {
    "xor.py": [],
    "activations.py": [],
    "gradient_check.py": ["--max-checks", "2"],
    "train_digits.py": ["--epochs", "3"],
    "train_digits_cnn.py": ["--epochs", "2"],
    "train_resnet.py": ["--quick"],
    "callbacks_and_checkpoints.py": ["--epochs", "6", "--more", "2", "--patience", "2"],
    "export_onnx.py": ["--epochs", "2"],
    "gpu_training.py": ["--samples", "600", "--epochs", "2", "--batch-size", "128"],
}
