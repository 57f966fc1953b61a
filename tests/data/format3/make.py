"""Writes the format-3 model files beside it and ``expected.json`` (their inputs and
predictions). Run once at commit b677f2f, the last to write format 3, as
``PYTHONPATH=. python tests/data/format3/make.py tests/data/format3``; kept to say how the
files were made. ``tests/test_estimator_core.py`` loads them with today's code."""

import json
import sys
import warnings

import numpy as np

import backendnn as bn
from backendnn.layers import Activation, Conv2d, Dense, Flatten, MaxPool2d

out = sys.argv[1]
rng = np.random.default_rng(0)
X = rng.normal(size=(60, 4))
y3 = rng.integers(0, 3, 60)
yr = X @ [1.0, -2.0, 0.5, 0.0]
img = rng.normal(size=(60, 1, 4, 4))
conv = [Conv2d(1, 2, 3, padding=1), Activation("relu"), MaxPool2d(2), Flatten()]
models = {
    "mlp_classifier": (
        bn.MLPClassifier((5,), activation="tanh", max_iter=30, random_state=0),
        X,
        y3,
    ),
    "mlp_classifier_swiglu": (
        bn.MLPClassifier((4,), activation="swiglu", max_iter=30, random_state=0),
        X,
        y3 % 2,
    ),
    "mlp_regressor": (
        bn.MLPRegressor(hidden_layer_sizes=(6, 3), max_iter=30, random_state=0),
        X,
        yr,
    ),
    "perceptron": (bn.Perceptron(random_state=0), X, y3),
    "perceptron_binary_no_intercept": (bn.Perceptron(fit_intercept=False), X, y3 % 2),
    "cnn_classifier": (bn.NeuralNetClassifier(conv, max_iter=5, random_state=0), img, y3),
    "stack_regressor": (
        bn.NeuralNetRegressor([Dense(4, 3), Activation("tanh")], max_iter=5, random_state=0),
        X,
        yr,
    ),
}
warnings.simplefilter("ignore")
preds = {}
for name, (m, Xf, yf) in models.items():
    m.fit(Xf, yf)
    bn.save(m, f"{out}/{name}.safetensors")
    if hasattr(m, "predict_proba"):
        p = m.predict_proba(Xf)
    elif hasattr(m, "decision_function"):
        p = m.decision_function(Xf)
    else:
        p = m.predict(Xf)
    preds[name] = {"predict": np.asarray(m.predict(Xf)).tolist(), "output": np.asarray(p).tolist()}
with open(f"{out}/expected.json", "w") as f:
    json.dump({"X": X.tolist(), "images": img.tolist(), "predictions": preds}, f)
