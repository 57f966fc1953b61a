"""The training loop's cost per epoch beside the step: a fit of 3000 one-batch epochs of a
tiny MLP (32 rows, 4 features, 4 hidden units), the best of three, in microseconds per
epoch. Run it against two trees in turn:

    PYTHONPATH=<tree> python benchmarks/epoch_overhead.py sgd   # or adam
"""

import sys
import time
import warnings

import numpy as np

import backendnn as bn

warnings.simplefilter("ignore")
X = np.random.RandomState(0).randn(32, 4)
y = (X[:, 0] > 0).astype(int)
kw = dict(
    hidden_layer_sizes=(4,), batch_size=32, max_iter=3000, tol=0.0, n_iter_no_change=np.inf,
    random_state=0, solver=sys.argv[1] if len(sys.argv) > 1 else "sgd",
)  # fmt: skip
bn.MLPClassifier(**dict(kw, max_iter=5)).fit(X, y)  # warm-up
best = []
for _ in range(3):
    tic = time.perf_counter()
    bn.MLPClassifier(**kw).fit(X, y)
    best.append((time.perf_counter() - tic) / kw["max_iter"] * 1e6)
print(f"{kw['solver']}: {min(best):.1f} us per epoch (one batch)")
