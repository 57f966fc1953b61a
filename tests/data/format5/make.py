"""Writes the format-5 model files beside it and ``expected.json`` (their inputs and
predictions). Run once at commit c56bb14, the last to write format 5, as
``PYTHONPATH=<checkout of c56bb14> python tests/data/format5/make.py tests/data/format5``;
kept to say how the files were made. The models hold what format 5 added: layer state
(batch norm's running statistics), dropout, layer norm, residual blocks and
``output_layer="last"``, and an early-stopping record. ``tests/test_estimator_core.py``
loads them with today's code."""

import json
import sys
import warnings

import numpy as np

import backendnn as bn
from backendnn.layers import (
    Activation,
    BatchNorm1d,
    BatchNorm2d,
    Conv2d,
    Dense,
    Dropout,
    Flatten,
    GlobalAvgPool2d,
    LayerNorm,
    Residual,
)

out = sys.argv[1]
rng = np.random.default_rng(0)
X = rng.normal(size=(60, 4))
y3 = rng.integers(0, 3, 60)
yr = X @ [1.0, -2.0, 0.5, 0.0]
img = rng.normal(size=(60, 1, 4, 4))
models = {
    "stack_bn_dropout_classifier": (
        bn.NeuralNetClassifier(
            [Dense(8), BatchNorm1d(8), Activation("relu"), Dropout(0.2)],
            max_iter=5,
            random_state=0,
        ),
        X,
        y3,
    ),
    "cnn_residual_regressor": (
        bn.NeuralNetRegressor(
            [
                Conv2d(1, 2, 3, padding=1),
                BatchNorm2d(2),
                Residual([Conv2d(2, 2, 3, padding=1), Activation("relu")]),
                GlobalAvgPool2d(),
                Flatten(),
            ],
            max_iter=5,
            random_state=0,
        ),
        img,
        img.sum(axis=(1, 2, 3)),
    ),
    "stack_last_classifier": (
        bn.NeuralNetClassifier(
            [Dense(6), LayerNorm(6), Activation("tanh"), Dense(3)],
            output_layer="last",
            max_iter=5,
            random_state=0,
        ),
        X,
        y3,
    ),
    "mlp_early_stopping_regressor": (
        bn.MLPRegressor(hidden_layer_sizes=(5,), early_stopping=True, max_iter=8, random_state=0),
        X,
        yr,
    ),
}
warnings.simplefilter("ignore")
preds = {}
for name, (m, Xf, yf) in models.items():
    m.fit(Xf, yf)
    bn.save(m, f"{out}/{name}.safetensors")
    p = m.predict_proba(Xf) if hasattr(m, "predict_proba") else m.predict(Xf)
    preds[name] = {"predict": np.asarray(m.predict(Xf)).tolist(), "output": np.asarray(p).tolist()}
with open(f"{out}/expected.json", "w") as f:
    json.dump({"X": X.tolist(), "images": img.tolist(), "predictions": preds}, f)
