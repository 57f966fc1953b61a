"""predict_proba's time on 20000 rows of 64 features through a 256-256-10 MLP (one block
of the default memory budget), the best of seven, on the backend named:

    PYTHONPATH=<tree> python benchmarks/predict_proba.py numpy   # or torch, jax
"""

import sys
import time
import warnings

import numpy as np

import backendnn as bn

warnings.simplefilter("ignore")
backend = sys.argv[1] if len(sys.argv) > 1 else "numpy"
rng = np.random.RandomState(0)
X, y = rng.randn(20000, 64), rng.randint(0, 10, 20000)
model = bn.MLPClassifier((256, 256), max_iter=1, random_state=0, backend=backend)
model.fit(X[:500], y[:500])
Xb = bn.to_backend(X, backend)
model.predict_proba(Xb)  # warm-up: compiles on JAX
best = []
for _ in range(7):
    tic = time.perf_counter()
    bn.to_numpy(model.predict_proba(Xb))
    best.append(time.perf_counter() - tic)
print(f"{backend}: predict_proba 20000x64 -> 256,256,10: {1e3 * min(best):.2f} ms")
