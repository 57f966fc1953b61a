import json, sys, numpy as np, backendnn as bn
from backendnn.layers import Conv2d, Activation, Flatten, MaxPool2d, Dense
out = sys.argv[1]
rng = np.random.default_rng(0)
X = rng.normal(size=(60, 4)); y3 = rng.integers(0, 3, 60); yr = X @ [1., -2., .5, 0.]
img = rng.normal(size=(60, 1, 4, 4))
models = {
 "mlp_classifier": (bn.MLPClassifier((5,), activation="tanh", max_iter=30, random_state=0), X, y3),
 "mlp_classifier_swiglu": (bn.MLPClassifier((4,), activation="swiglu", max_iter=30, random_state=0), X, y3 % 2),
 "mlp_regressor": (bn.MLPRegressor(hidden_layer_sizes=(6, 3), max_iter=30, random_state=0), X, yr),
 "perceptron": (bn.Perceptron(random_state=0), X, y3),
 "perceptron_binary_no_intercept": (bn.Perceptron(fit_intercept=False), X, y3 % 2),
 "cnn_classifier": (bn.NeuralNetClassifier([Conv2d(1, 2, 3, padding=1), Activation("relu"), MaxPool2d(2), Flatten()], max_iter=5, random_state=0), img, y3),
 "stack_regressor": (bn.NeuralNetRegressor([Dense(4, 3), Activation("tanh")], max_iter=5, random_state=0), X, yr),
}
import warnings; warnings.simplefilter("ignore")
preds = {}
for name, (m, Xf, yf) in models.items():
    m.fit(Xf, yf)
    bn.save(m, f"{out}/{name}.safetensors")
    p = m.predict_proba(Xf) if hasattr(m, "predict_proba") else (m.decision_function(Xf) if hasattr(m, "decision_function") else m.predict(Xf))
    preds[name] = {"predict": np.asarray(m.predict(Xf)).tolist(), "output": np.asarray(p).tolist()}
json.dump({"X": X.tolist(), "images": img.tolist(), "predictions": preds}, open(f"{out}/expected.json", "w"))
print("ok", sorted(preds))
