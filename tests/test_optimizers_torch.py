"""The optimisers of :mod:`backendnn.optim` against ``torch.optim``, gradient clipping
against ``torch.nn.utils.clip_grad_norm_``, and the estimators' ``solver`` names, optimiser
objects and ``clip_grad_norm``.

The update rules: 50 steps in float64 from a small network's parameters, each step's
gradient that of a quadratic with a drifting linear term, g = a (theta - c) + r_t,
computed from the current parameters in each library; the rules run compiled on JAX, as
in a training step. The estimators: a linear regression (no hidden layer, known initial
weights, full batches) trained by each solver against torch autograd and ``torch.optim``
with the same penalised loss, learning-rate schedule and clipping.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

import backendnn as bn
from backendnn import Network, _backend, optim
from backendnn.estimators._constraints import SolverParam
from backendnn.optim import SGD, Adagrad, Adam, AdamW, ClipGradNorm, RMSprop, tree_map
from tests._helpers import read_meta, rewrite_meta
from tests.conftest import assert_close  # first: conftest sets JAX_ENABLE_X64 before jax loads

torch = pytest.importorskip("torch")

pytestmark = [
    pytest.mark.usefixtures("one_blas_thread"),
    pytest.mark.filterwarnings("ignore::backendnn.ConvergenceWarning"),
]

STEPS = 50
RTOL = 1e-10


def _problem(seed=0):
    """Host arrays: the initial parameters (a 3-5-2 MLP's, flat), and a, c and the r_t."""
    net = Network.mlp(3, (5,), 2)
    params = [_backend.to_numpy(a) for p in net.init(seed, xp=np, dtype=np.float64) for a in p]
    rng = np.random.default_rng(seed)
    a = [rng.uniform(0.5, 2.0, p.shape) for p in params]
    c = [rng.standard_normal(p.shape) for p in params]
    r = [[0.3 * rng.standard_normal(p.shape) for p in params] for _ in range(STEPS)]
    return params, a, c, r


def _tree(arrays, backend):
    moved = [_backend.from_numpy(x, xp=backend.xp, device=backend.device) for x in arrays]
    return [tuple(moved[i : i + 2]) for i in range(0, len(moved), 2)]


def _ours(backend, optimizer, rates, scaled=False, seed=0):
    """Our parameters after the steps at learning rates ``rates`` (flat list); ``scaled``:
    SGD given lr g, as the training step gives it."""
    params0, a, c, r = _problem(seed)
    params, A, C = (_tree(x, backend) for x in (params0, a, c))

    def step(params, state, r_t, lr):
        grads = tree_map(lambda p, a, c, r: a * (p - c) + r, params, A, C, r_t)
        if scaled:
            grads = tree_map(lambda g: lr * g, grads)
            return optimizer.update(params, grads, state, lr, scaled=True)
        return optimizer.update(params, grads, state, lr)

    compiled = _backend.jit(step, backend.xp)
    state = optimizer.init(params)
    like = params[0][0]
    for t, lr in enumerate(rates, start=1):
        lr_t = _backend.step_scalar(optimizer.step_size(lr, t), like)
        params, state = compiled(params, state, _tree(r[t - 1], backend), lr_t)
    return [x for p in params for x in p]


def _torch(make, rates, max_norm=None, seed=0):
    """torch's parameters after the same steps: ``make(params, lr)`` builds the optimiser;
    also the total norms ``clip_grad_norm_`` measured."""
    params0, a, c, r = _problem(seed)
    params = [torch.nn.Parameter(torch.tensor(x, dtype=torch.float64)) for x in params0]
    A, C = ([torch.tensor(x, dtype=torch.float64) for x in xs] for xs in (a, c))
    opt = make(params, rates[0])
    norms = []
    for t, lr in enumerate(rates):
        for group in opt.param_groups:
            group["lr"] = lr
        for p, a_, c_, r_ in zip(params, A, C, r[t]):
            p.grad = a_ * (p.detach() - c_) + torch.tensor(r_, dtype=torch.float64)
        if max_norm is not None:
            norms.append(float(torch.nn.utils.clip_grad_norm_(params, max_norm)))
        opt.step()
    return [p.detach().numpy() for p in params], norms


def _assert_equal(backend, ours, theirs):
    for x, y in zip(ours, theirs):
        assert_close(x, y, backend=backend, dtype="float64", rtol=RTOL, atol=1e-13)


CONSTANT = [0.05] * STEPS
#: a decaying rate, as a schedule gives (torch's SGD equals ours at a constant rate only)
DECAYING = [0.05 / math.sqrt(1.0 + t) for t in range(STEPS)]

CASES = {
    "sgd-plain-decay": (
        SGD(momentum=0.0, nesterov=False, weight_decay=0.01),
        lambda p, lr: torch.optim.SGD(p, lr, weight_decay=0.01),
        CONSTANT,
    ),
    "sgd-classical-decay": (
        SGD(momentum=0.9, nesterov=False, weight_decay=0.01),
        lambda p, lr: torch.optim.SGD(p, lr, momentum=0.9, weight_decay=0.01),
        CONSTANT,
    ),
    "sgd-nesterov-decay": (
        SGD(momentum=0.9, nesterov=True, weight_decay=0.01),
        lambda p, lr: torch.optim.SGD(p, lr, momentum=0.9, nesterov=True, weight_decay=0.01),
        CONSTANT,
    ),
    "sgd-nesterov": (
        SGD(momentum=0.8, nesterov=True),
        lambda p, lr: torch.optim.SGD(p, lr, momentum=0.8, nesterov=True),
        CONSTANT,
    ),
    "adamw": (AdamW(), lambda p, lr: torch.optim.AdamW(p, lr), DECAYING),
    "adamw-custom": (
        AdamW(beta_1=0.8, beta_2=0.99, epsilon=1e-6, weight_decay=0.1),
        lambda p, lr: torch.optim.AdamW(p, lr, betas=(0.8, 0.99), eps=1e-6, weight_decay=0.1),
        DECAYING,
    ),
    "rmsprop": (RMSprop(), lambda p, lr: torch.optim.RMSprop(p, lr), DECAYING),
    "rmsprop-momentum": (
        RMSprop(rho=0.9, epsilon=1e-6, momentum=0.5),
        lambda p, lr: torch.optim.RMSprop(p, lr, alpha=0.9, eps=1e-6, momentum=0.5),
        DECAYING,
    ),
    "adagrad": (Adagrad(), lambda p, lr: torch.optim.Adagrad(p, lr), DECAYING),
    "adagrad-eps": (
        Adagrad(epsilon=1e-6),
        lambda p, lr: torch.optim.Adagrad(p, lr, eps=1e-6),
        DECAYING,
    ),
}


@pytest.mark.parametrize("case", list(CASES))
def test_optimiser_equals_torch_optim(backend, case):
    optimizer, make, rates = CASES[case]
    theirs, _ = _torch(make, rates)
    _assert_equal(backend, _ours(backend, optimizer, rates), theirs)
    if optimizer.scaled_gradients:  # the training step's entry point: lr g given
        _assert_equal(backend, _ours(backend, optimizer, rates, scaled=True), theirs)


@pytest.mark.parametrize(
    "case", ["sgd-classical-decay", "sgd-nesterov", "adamw", "rmsprop-momentum", "adagrad"]
)
def test_clipping_equals_clip_grad_norm(backend, case):
    """The bound is the median of the unclipped run's gradient norms: some steps clip."""
    optimizer, make, rates = CASES[case]
    bound = float(np.median(_torch(make, rates, max_norm=math.inf)[1]))
    theirs, norms = _torch(make, rates, max_norm=bound)
    assert min(norms) < bound < max(norms)  # both branches of min(1, .) taken
    _assert_equal(backend, _ours(backend, ClipGradNorm(optimizer, bound), rates), theirs)


def test_adam_is_within_1e5_of_torch_adam(backend):
    """scikit-learn's Adam puts epsilon outside the bias correction: the README's bound."""
    theirs, _ = _torch(lambda p, lr: torch.optim.Adam(p, lr), CONSTANT)
    ours = _ours(backend, Adam(), CONSTANT)
    for x, y in zip(ours, theirs):
        assert_close(x, y, backend=backend, dtype="float64", rtol=1e-5, atol=1e-8)
    differ = [np.max(np.abs(_backend.to_numpy(x) - y)) for x, y in zip(ours, theirs)]
    assert max(differ) > 1e-12  # not the same rule


def test_state_is_arrays_shaped_by_the_parameters(backend):
    """What a checkpoint saves: a nest of lists and tuples of arrays, nothing else, of the
    parameters' dtype and device."""
    params = _tree(_problem()[0], backend)

    def leaves(tree):
        if isinstance(tree, (list, tuple)):
            return [x for t in tree for x in leaves(t)]
        return [tree]

    for optimizer in (*[case[0] for case in CASES.values()], Adam(), RMSprop(momentum=0.9)):
        state = optimizer.init(params)
        for _ in range(2):
            for leaf in leaves(state):
                assert _backend.is_array(leaf), (optimizer, leaf)
                assert leaf.dtype == backend.xp.float64
                assert _backend.device(leaf) == backend.device
            params, state = optimizer.update(params, params, state, 0.01)


# ---------------------------------------------------------------------- the estimators

N, NOISE = 40, 0.1


def _regression():
    rng = np.random.default_rng(3)
    X = rng.standard_normal((N, 3))
    y = X @ np.array([1.0, -2.0, 0.5]) + 0.3 + NOISE * rng.standard_normal(N)
    W0, b0 = 0.1 * rng.standard_normal((3, 1)), np.array([0.2])
    return X, y, W0, b0


def _fixed_init(W0, b0):
    def init(rng, fan_in, fan_out, activation=None):
        return W0.copy(), b0.copy()

    return init


def _torch_regression(make, lrs, alpha, max_norm):
    """torch autograd on scikit-learn's loss 0.5 mean (Xw + b - y)^2 + alpha/(2n) ||w||^2,
    one full batch per epoch at rate ``lrs[k]``: the loss curve and (w, b)."""
    X, y, W0, b0 = (torch.tensor(a, dtype=torch.float64) for a in _regression())
    W, b = (torch.nn.Parameter(a.clone()) for a in (W0, b0))
    opt = make([W, b], lrs[0])
    curve = []
    for lr in lrs:
        for group in opt.param_groups:
            group["lr"] = lr
        opt.zero_grad()
        loss = 0.5 * torch.mean((X @ W + b - y[:, None]) ** 2) + alpha / (2 * N) * torch.sum(W * W)
        loss.backward()
        if max_norm is not None:
            torch.nn.utils.clip_grad_norm_([W, b], max_norm)
        opt.step()
        curve.append(float(loss))
    return curve, W.detach().numpy(), b.detach().numpy()


EPOCHS, LR0, POWER_T = 20, 0.05, 0.5
INVSCALING = [LR0] + [LR0 / (k * N + 1) ** POWER_T for k in range(1, EPOCHS)]

ESTIMATOR_CASES = {
    "rmsprop-invscaling": (
        "rmsprop", "invscaling", 0.0, None, lambda p, lr: torch.optim.RMSprop(p, lr)
    ),
    "adagrad-invscaling-alpha": (
        "adagrad", "invscaling", 0.5, None, lambda p, lr: torch.optim.Adagrad(p, lr)
    ),
    "adamw-clip-alpha": (
        "adamw", "constant", 0.5, 1.0, lambda p, lr: torch.optim.AdamW(p, lr)
    ),
    "adamw-object-invscaling-clip": (
        AdamW(beta_1=0.8, weight_decay=0.1), "invscaling", 0.0, 1.0,
        lambda p, lr: torch.optim.AdamW(p, lr, betas=(0.8, 0.999), weight_decay=0.1),
    ),
    "sgd-object-decay": (  # lr folded into backpropagation, the decay added to lr g
        SGD(momentum=0.5, nesterov=False, weight_decay=0.05), "constant", 0.5, None,
        lambda p, lr: torch.optim.SGD(p, lr, momentum=0.5, weight_decay=0.05),
    ),
    "sgd-object-decay-clip": (
        SGD(weight_decay=0.05), "constant", 0.5, 1.0,
        lambda p, lr: torch.optim.SGD(p, lr, momentum=0.9, nesterov=True, weight_decay=0.05),
    ),
    "rmsprop-object-momentum-clip": (
        RMSprop(rho=0.9, momentum=0.5), "invscaling", 0.0, 2.0,
        lambda p, lr: torch.optim.RMSprop(p, lr, alpha=0.9, momentum=0.5),
    ),
}  # fmt: skip


@pytest.mark.parametrize("case", list(ESTIMATOR_CASES))
def test_estimator_trains_as_torch_optim(backend, case):
    """The solver names and objects, the learning-rate schedule, ``alpha`` (on the weights
    only) and ``clip_grad_norm`` (of the penalised loss's gradient) in a real fit."""
    solver, schedule, alpha, clip, make = ESTIMATOR_CASES[case]
    X, y, W0, b0 = _regression()
    reg = bn.MLPRegressor(
        hidden_layer_sizes=(), solver=solver, learning_rate=schedule, learning_rate_init=LR0,
        power_t=POWER_T, alpha=alpha, clip_grad_norm=clip, batch_size=N, shuffle=False,
        max_iter=EPOCHS, n_iter_no_change=np.inf, init=_fixed_init(W0, b0),
    ).fit(backend.asarray(X), backend.asarray(y))  # fmt: skip
    lrs = INVSCALING if schedule == "invscaling" else [LR0] * EPOCHS
    curve, W, b = _torch_regression(make, lrs, alpha, clip)
    np.testing.assert_allclose(reg.loss_curve_, curve, rtol=RTOL)
    assert_close(reg.coefs_[0], W, backend=backend, dtype="float64", rtol=RTOL)
    assert_close(reg.intercepts_[0], b, backend=backend, dtype="float64", rtol=RTOL)
    assert curve[-1] < curve[0]


def _classifier(backend, **kwargs):
    rng = np.random.default_rng(1)
    X = rng.standard_normal((60, 4))
    y = (X[:, 0] + X[:, 1] ** 2 > 0.5).astype(np.int64)
    clf = bn.MLPClassifier((6,), max_iter=15, random_state=0, batch_size=20, **kwargs)
    if backend is None:  # NumPy arrays as they are
        return clf.fit(X, y)
    return clf.fit(backend.asarray(X), backend.asarray(y))


def _same_fit(backend, a, b, rtol=0.0):
    np.testing.assert_allclose(a.loss_curve_, b.loss_curve_, rtol=rtol)
    for x, y in zip(a.coefs_ + a.intercepts_, b.coefs_ + b.intercepts_):
        assert_close(x, _backend.to_numpy(y), backend=backend, rtol=rtol)


@pytest.mark.parametrize(
    "obj, names",
    [
        (SGD(), {"solver": "sgd"}),
        (Adam(), {"solver": "adam"}),
        (
            SGD(momentum=0.5, nesterov=False),
            {"solver": "sgd", "momentum": 0.5, "nesterovs_momentum": False},
        ),
        (Adam(0.8, 0.99, 1e-6), {"solver": "adam", "beta_1": 0.8, "beta_2": 0.99, "epsilon": 1e-6}),
        (
            AdamW(0.8, 0.99, 1e-6),
            {"solver": "adamw", "beta_1": 0.8, "beta_2": 0.99, "epsilon": 1e-6},
        ),
        (RMSprop(), {"solver": "rmsprop"}),
        (Adagrad(), {"solver": "adagrad"}),
    ],
    ids=["sgd", "adam", "sgd-classical", "adam-betas", "adamw", "rmsprop", "adagrad"],
)
def test_optimiser_objects_equal_their_names(backend, obj, names):
    kwargs = {"learning_rate_init": 0.01}
    _same_fit(backend, _classifier(backend, solver=obj, **kwargs),
              _classifier(backend, **names, **kwargs))  # fmt: skip


def test_adam_keeps_a_constant_rate_under_any_schedule(backend):
    """scikit-learn's rule: the schedule drives sgd only; here every optimiser but Adam
    (the torch test above checks it drives the others)."""
    for solver in ("adam", Adam()):
        constant = _classifier(backend, solver=solver, learning_rate_init=0.01)
        scaled = _classifier(backend, solver=solver, learning_rate_init=0.01,
                             learning_rate="invscaling")  # fmt: skip
        _same_fit(backend, constant, scaled)


_NUMPY_FITS: dict = {}


@pytest.mark.parametrize(
    "solver, clip",
    [("adamw", None), ("rmsprop", None), ("adagrad", None), ("adam", 0.5), ("sgd", 0.5),
     ("adamw", 0.5), (RMSprop(momentum=0.5), 0.5)],
    ids=["adamw", "rmsprop", "adagrad", "adam-clip", "sgd-clip", "adamw-clip",
         "rmsprop-object-clip"],
)  # fmt: skip
def test_each_solver_learns_and_equals_numpy(backend, solver, clip):
    kwargs = {"solver": solver, "clip_grad_norm": clip, "learning_rate_init": 0.01}
    clf = _classifier(backend, **kwargs)
    assert clf.loss_curve_[-1] < clf.loss_curve_[0]
    key = (repr(solver), clip)
    if key not in _NUMPY_FITS:
        _NUMPY_FITS[key] = _classifier(None, **kwargs)
    _same_fit(backend, clf, _NUMPY_FITS[key], rtol=RTOL)


def test_clipping_is_applied(backend):
    """A tight bound changes the fit; one far above every gradient norm does not."""
    plain = _classifier(backend, solver="sgd", learning_rate_init=0.1)
    tight = _classifier(backend, solver="sgd", learning_rate_init=0.1, clip_grad_norm=0.05)
    for bound in (1e6, math.inf):  # as torch's: inf never clips
        loose = _classifier(backend, solver="sgd", learning_rate_init=0.1, clip_grad_norm=bound)
        _same_fit(backend, plain, loose, rtol=1e-12)
    assert abs(tight.loss_curve_[-1] - plain.loss_curve_[-1]) > 1e-3


@pytest.mark.parametrize("solver", ["adamw", "rmsprop", "adagrad", AdamW(), SGD(momentum=0)])
def test_partial_fit_with_the_new_solvers(solver):
    """partial_fit exists for every stochastic solver (not for lbfgs), one epoch a call."""
    X = np.random.default_rng(0).standard_normal((30, 3))
    y = (X[:, 0] > 0).astype(int)
    clf = bn.MLPClassifier((4,), solver=solver, random_state=0)
    assert hasattr(clf, "partial_fit")
    clf.partial_fit(X, y, classes=[0, 1]).partial_fit(X, y)
    assert len(clf.loss_curve_) == 2
    assert not hasattr(bn.MLPClassifier(solver="lbfgs"), "partial_fit")


# ---------------------------------------------------------------------- errors and files


def test_clip_grad_norm_with_lbfgs_is_an_error():
    X, y = np.eye(4), np.array([0, 1, 0, 1])
    with pytest.raises(ValueError, match="clip_grad_norm=1.0 needs a stochastic solver"):
        bn.MLPClassifier(solver="lbfgs", clip_grad_norm=1.0).fit(X, y)


@pytest.mark.parametrize("bad", [0.0, -1.0, math.nan, "1", True])
def test_bad_clip_grad_norm(bad):
    with pytest.raises(ValueError, match="clip_grad_norm"):
        bn.MLPClassifier(clip_grad_norm=bad).fit(np.eye(4), np.array([0, 1, 0, 1]))


@pytest.mark.parametrize(
    "make, field",
    [
        (lambda: SGD(momentum=1.5), "momentum"),
        (lambda: SGD(momentum=-0.1), "momentum"),
        (lambda: SGD(nesterov=1), "nesterov"),
        (lambda: SGD(weight_decay=-1e-3), "weight_decay"),
        (lambda: SGD(weight_decay=math.nan), "weight_decay"),
        (lambda: SGD(weight_decay=math.inf), "weight_decay"),
        (lambda: Adam(beta_1=1.0), "beta_1"),
        (lambda: Adam(beta_2=-0.5), "beta_2"),
        (lambda: Adam(epsilon=0.0), "epsilon"),
        (lambda: AdamW(weight_decay=-0.01), "weight_decay"),
        (lambda: AdamW(beta_2=1.0), "beta_2"),
        (lambda: AdamW(epsilon="1e-8"), "epsilon"),
        (lambda: RMSprop(rho=1.0), "rho"),
        (lambda: RMSprop(momentum=True), "momentum"),
        (lambda: RMSprop(epsilon=-1.0), "epsilon"),
        (lambda: Adagrad(epsilon=math.inf), "epsilon"),
        (lambda: ClipGradNorm(SGD(), 0.0), "max_norm"),
    ],
)
def test_bad_hyper_parameters_are_clear_errors(make, field):
    with pytest.raises(ValueError, match=f"{field} must be"):
        make()


@pytest.mark.parametrize("bad", [object(), "rmsProp", ClipGradNorm(SGD(), 1.0), optim])
def test_solver_must_be_a_name_or_an_optimiser(bad):
    with pytest.raises(ValueError, match="optimiser object of backendnn.optim"):
        bn.MLPClassifier(solver=bad).fit(np.eye(4), np.array([0, 1, 0, 1]))


@pytest.mark.parametrize(
    "solver",
    [SGD(momentum=0.5, nesterov=False, weight_decay=1e-3), Adam(beta_1=0.8), AdamW(),
     RMSprop(rho=0.9, momentum=0.1), Adagrad(epsilon=1e-7), "rmsprop"],
)  # fmt: skip
def test_model_files_keep_the_optimiser(tmp_path, solver):
    X = np.random.default_rng(0).standard_normal((20, 3))
    y = (X[:, 0] > 0).astype(int)
    clf = bn.MLPClassifier((4,), solver=solver, clip_grad_norm=2.0, max_iter=3, random_state=0)
    clf.fit(X, y)
    bn.save(clf, tmp_path / "m.safetensors")
    loaded = bn.load(tmp_path / "m.safetensors")
    assert loaded.solver == solver and type(loaded.solver) is type(solver)
    assert loaded.clip_grad_norm == 2.0
    np.testing.assert_array_equal(loaded.predict_proba(X), clf.predict_proba(X))
    # the loaded model trains on as the saved one does
    loaded.set_params(warm_start=True).fit(X, y)
    clf.set_params(warm_start=True).fit(X, y)
    np.testing.assert_array_equal(loaded.coefs_[0], clf.coefs_[0])


def test_format_5_files_load_without_clipping(tmp_path):
    X, y = np.eye(4), np.array([0, 1, 0, 1])
    path = tmp_path / "m.safetensors"
    bn.save(bn.MLPClassifier((3,), solver="sgd", max_iter=2).fit(X, y), path)
    assert read_meta(path)["params"]["clip_grad_norm"] is None

    def as_format_5(meta):
        meta["version"] = 5
        del meta["params"]["clip_grad_norm"]

    rewrite_meta(path, as_format_5)
    assert bn.load(path).clip_grad_norm is None


@pytest.mark.parametrize(
    "raw",
    [{"optimizer": "Nadam"}, {"optimizer": "SGD", "momentum": 2.0},
     {"optimizer": "SGD", "lr": 0.1}, {"optimizer": "AdamW", "epsilon": "x"}, ["SGD"],
     "rmsprop2"],
)  # fmt: skip
def test_damaged_optimiser_descriptions_are_refused(raw):
    with pytest.raises(ValueError, match="must be one of"):
        SolverParam().from_json(raw)


def test_descriptions_round_trip():
    for obj in (SGD(0.5, False, 0.1), Adam(), AdamW(weight_decay=0.0), RMSprop(), Adagrad()):
        assert SolverParam().from_json(SolverParam().to_json(obj)) == obj
    # a field left out (a file written before it existed) takes its default
    assert SolverParam().from_json({"optimizer": "SGD", "momentum": 0.5}) == SGD(momentum=0.5)
