"""Writes the format-4 model files beside it and ``expected.json`` (their inputs and
predictions). Run once at commit af563d1, the last to write format 4, as
``PYTHONPATH=<checkout of af563d1> python tests/data/format4/make.py tests/data/format4``;
kept to say how the files were made. The models are format 3's (``../format3/make.py``)
and a stack of the other layers format 4 describes (average pooling, a gated dense layer,
a dense layer without bias). ``tests/test_estimator_core.py`` loads them with today's
code."""

import json
import sys
import warnings

import numpy as np

import backendnn as bn
from backendnn.layers import (
    Activation,
    AvgPool2d,
    Conv2d,
    Dense,
    Flatten,
    GatedDense,
    GlobalAvgPool2d,
    MaxPool2d,
)

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
    "cnn_pooled_regressor": (
        bn.NeuralNetRegressor(
            [
                Conv2d(1, 3, 3, stride=1, padding=1),
                AvgPool2d(2, stride=1),
                Activation("relu"),
                GlobalAvgPool2d(),
                Flatten(),
                GatedDense(3, 2),
                Dense(2, 2, bias=False),
            ],
            max_iter=5,
            random_state=0,
        ),
        img,
        img.sum(axis=(1, 2, 3)),
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
