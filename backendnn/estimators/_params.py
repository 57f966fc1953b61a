"""The hyper-parameters of every estimator, one table each: name -> :class:`Param`
(default, constraint, documented type and description).

The tables feed validation (``_parameter_constraints``), model files and the
"Parameters" section of each estimator's docstring (:func:`parameters_doc`). The
constructors keep explicit signatures (scikit-learn reads them); a test checks that
every signature, default, constraint and docstring entry agrees with its table.

Imports :mod:`backendnn._validation`, :mod:`backendnn.train` and the sibling
``_constraints``.
"""

from __future__ import annotations

import math
import textwrap
from dataclasses import dataclass
from typing import Any

from .. import layers as _layers
from .._validation import POSITIVE_INT, VERBOSE, AnyOf, Boolean, Constraint, Interval, Options
from ..train import LearningRateSchedule
from ._constraints import (
    ActivationParam,
    BackendParam,
    ClassWeightParam,
    DtypeParam,
    InitParam,
    LayerSizes,
    LayerStack,
    LossParam,
    ScoringParam,
    SeedParam,
    SolverParam,
)


@dataclass(frozen=True)
class Param:
    """One hyper-parameter: its ``default``, its ``constraint``, its documented ``kind``
    (the numpydoc type, e.g. ``"int or \\"auto\\""``) and ``doc`` (its description)."""

    default: Any
    constraint: Constraint
    kind: str
    doc: str

    def entry(self, name: str) -> str:
        """The numpydoc entry, indented for a class docstring."""
        default = "np.inf" if self.default == math.inf else _literal(self.default)
        body = textwrap.indent(textwrap.dedent(self.doc).strip(), " " * 8)
        return f"    {name} : {self.kind}, default={default}\n{body}\n"


def _literal(value: Any) -> str:
    return f'"{value}"' if isinstance(value, str) else repr(value)


def constraints(table: dict[str, Param]) -> dict[str, Constraint]:
    """``_parameter_constraints`` of a table."""
    return {name: p.constraint for name, p in table.items()}


def parameters_doc(table: dict[str, Param]) -> str:
    """The "Parameters" section of a docstring, from a table."""
    entries = "".join(p.entry(name) for name, p in table.items())
    return "\n    Parameters\n    ----------\n" + entries


BACKEND = Param(
    None,
    BackendParam(),
    "str or None",
    """
    Where to compute: None computes where X lives; ``"numpy"``, ``"cupy"``, ``"jax"``,
    ``"torch"``, ``"array_api_strict"`` move X there once.""",
)
DTYPE = Param(
    None,
    DtypeParam(),
    '{"float32", "float64"} or None',
    """
    The compute precision; None is float64 for float64 input and float32 otherwise.""",
)

#: the training parameters of the MLPs and layer stacks: scikit-learn's MLP ones plus
#: backend, dtype, init, early_stopping_metric and clip_grad_norm
SOLVER_PARAMS: dict[str, Param] = {
    "solver": Param("adam", SolverParam(),
                    '{"adam", "sgd", "lbfgs", "gd", "adamw", "rmsprop", "adagrad"} or '
                    "optimiser object", """
        ``"gd"`` is full-batch gradient descent (the notes' eqs. 21-24); ``"lbfgs"`` is
        SciPy's L-BFGS-B algorithm on the compute device. ``"adamw"`` is
        ``optim.AdamW(beta_1, beta_2, epsilon, weight_decay=0.01)``, ``"rmsprop"`` and
        ``"adagrad"`` ``optim.RMSprop()`` and ``optim.Adagrad()`` (torch.optim's rules and
        defaults). Or an optimiser of :mod:`backendnn.optim` (``SGD``, ``Adam``,
        ``AdamW``, ``RMSprop``, ``Adagrad``) with hyper-parameters of your own, e.g.
        ``optim.SGD(momentum=0.9, weight_decay=1e-4)``: it replaces ``momentum``,
        ``nesterovs_momentum``, ``beta_1``, ``beta_2`` and ``epsilon``; ``SGD()`` and
        ``Adam()`` are ``"sgd"`` and ``"adam"``. The rate is ``learning_rate_init`` under
        the ``learning_rate`` schedule for every optimiser but Adam's (constant, as
        scikit-learn's)."""),
    "alpha": Param(0.0001, Interval(0, None), "float", """
        L2 penalty alpha/(2 n_samples) sum ||W||^2 over the weight matrices."""),
    "batch_size": Param("auto", AnyOf(Options("auto"), POSITIVE_INT), 'int or "auto"', """
        Minibatch size for the stochastic solvers; ``"auto"`` is min(200, n_samples)."""),
    "learning_rate": Param("constant", Options(*LearningRateSchedule.KINDS),
                           '{"constant", "invscaling", "adaptive"}', """
        The schedule for every solver but ``adam`` and ``lbfgs``: ``invscaling`` lr =
        learning_rate_init / (t + 1)^power_t after each epoch, t the samples seen;
        ``adaptive`` divides lr by 5 when ``n_iter_no_change`` epochs fail to improve by
        ``tol``."""),
    "learning_rate_init": Param(0.001, Interval(0, None, closed="neither"), "float", """
        The initial step size (every solver but ``lbfgs``)."""),
    "power_t": Param(0.5, Interval(0, None), "float", """
        Exponent of the ``invscaling`` schedule."""),
    "max_iter": Param(200, POSITIVE_INT, "int", """
        Epochs (stochastic solvers, ``gd``) or iterations (``lbfgs``) at most."""),
    "shuffle": Param(True, Boolean(), "bool", """
        Shuffle the samples every epoch."""),
    "random_state": Param(None, SeedParam(), "int, RandomState, Generator or None", """
        Seeds the initial weights, the early-stopping split and the shuffling, drawn on
        the host as scikit-learn draws them: an int seeds a new ``numpy.random.RandomState``
        on every ``fit``/``partial_fit`` call, None is NumPy's global RandomState, a
        RandomState is used (and advanced) as is; a ``numpy.random.Generator`` is drawn from
        directly. With an int on float64 data the MLPs' initial weights, split, batch order
        and ``loss_curve_`` (``sgd``, ``adam``) equal scikit-learn's, on every backend;
        ``lbfgs`` starts from scikit-learn's weights."""),
    "tol": Param(1e-4, Interval(0, None), "float", """
        Improvement of the loss (or validation score) below which an epoch counts as
        none."""),
    "verbose": Param(False, VERBOSE, 'bool, int or "progress"', """
        True (or an integer > 0): print scikit-learn's line per epoch on stdout
        ("Iteration N, loss = ..."), with the samples/s; ``"progress"``: a tqdm progress
        bar instead (one line per epoch where tqdm is not installed)."""),
    "warm_start": Param(False, Boolean(), "bool", """
        Start ``fit`` from the current weights (fitted, loaded or assigned)."""),
    "momentum": Param(0.9, Interval(0, 1), "float", """
        SGD momentum, in [0, 1]."""),
    "nesterovs_momentum": Param(True, Boolean(), "bool", """
        Nesterov's momentum for ``sgd``."""),
    "early_stopping": Param(False, Boolean(), "bool", """
        Hold out ``validation_fraction`` of the data (stratified for a binary classifier,
        as scikit-learn) and stop when its score has not improved by ``tol`` for
        ``n_iter_no_change`` epochs; the best weights are kept."""),
    "validation_fraction": Param(0.1, Interval(0, 1, closed="neither"), "float", """
        The held-out share for ``early_stopping``, in (0, 1)."""),
    "beta_1": Param(0.9, Interval(0, 1, closed="left"), "float", """
        Adam's (and ``"adamw"``'s) decay rate of the first moment, in [0, 1)."""),
    "beta_2": Param(0.999, Interval(0, 1, closed="left"), "float", """
        Adam's (and ``"adamw"``'s) decay rate of the second moment, in [0, 1)."""),
    "epsilon": Param(1e-8, Interval(0, None, closed="neither"), "float", """
        Adam's (and ``"adamw"``'s) denominator offset, > 0."""),
    # np.inf: never stop early (scikit-learn's convention)
    "n_iter_no_change": Param(10, AnyOf(POSITIVE_INT, Interval(math.inf, math.inf)),
                              "int or np.inf", """
        Epochs without improvement before stopping (or adapting the rate); ``np.inf``
        never stops early."""),
    "max_fun": Param(15000, POSITIVE_INT, "int", """
        Loss evaluations at most for ``lbfgs``."""),
    "backend": BACKEND,
    "dtype": DTYPE,
    "init": Param(None, InitParam(), "str, callable or None", """
        Initial weights: None is scikit-learn's Glorot-uniform scheme, ``"normal"`` the
        notes' N(0, 0.01^2), ``"he_normal"`` He's; or a function (rng, fan_in, fan_out,
        activation=...) -> (W, b) of host arrays, ``rng`` the generator ``random_state``
        gives (a ``numpy.random.RandomState`` unless it is a Generator)."""),
    "early_stopping_metric": Param("score", Options("score", "loss"), '{"score", "loss"}', """
        What early stopping watches on the held-out data: the estimator's score
        (scikit-learn's choice) or the validation loss."""),
    "scoring": Param(None, ScoringParam(), "str, callable or None", """
        The validation score (``validation_scores_``, early stopping): None is the
        estimator's ``score`` (accuracy, R^2); a scikit-learn scorer name (e.g.
        ``"neg_log_loss"``, ``"f1_macro"``) or a callable ``scorer(estimator, X, y)``
        (higher is better), evaluated on the model at each epoch's weights."""),
    "clip_grad_norm": Param(None, AnyOf(Options(None), Interval(0, None, closed="neither")),
                            "float or None", """
        Rescale each step's gradients (of the penalised loss) to a global L2 norm of at
        most this, as ``torch.nn.utils.clip_grad_norm_`` before the optimiser's update:
        g <- g min(1, clip_grad_norm / (||g|| + 1e-6)), ||g|| over every parameter. Any
        solver but ``"lbfgs"`` (an error there); None: no clipping."""),
}  # fmt: skip

MLP_PARAMS: dict[str, Param] = {
    "hidden_layer_sizes": Param((100,), LayerSizes(), "int or tuple of int", """
        The width of each hidden layer."""),
    "activation": Param("relu", ActivationParam(), "str or activation object", """
        The hidden layers' activation: any name of :mod:`backendnn.activations`
        (``"identity"``, ``"logistic"``/``"sigmoid"``, ``"tanh"``, ``"relu"``, ``"gelu"``,
        ``"gelu_tanh"``, ``"silu"``, ``"swish"``, ``"softplus"``; the GLU family
        ``"glu"``, ``"reglu"``, ``"geglu"``, ``"swiglu"`` makes GLU-gated hidden layers,
        with ``coefs_[i]`` of shape (fan_in, 2h)) or an activation object, e.g.
        ``activations.get("swish", beta=1.5)`` or an :class:`backendnn.activations.Activation`
        subclass of your own (register it with ``activations.register`` to save the
        model)."""),
    **SOLVER_PARAMS,
}  # fmt: skip

MLP_REGRESSOR_PARAMS: dict[str, Param] = {
    "loss": Param("squared_error", Options("squared_error", "poisson"),
                  '{"squared_error", "poisson"}', """
        ``"squared_error"``: half the mean squared error of an identity output.
        ``"poisson"``: half the Poisson deviance of counts y >= 0 with mean exp(h) for
        network output h (predictions are exp(h)), as scikit-learn's. The first
        parameter, as in scikit-learn: pass ``hidden_layer_sizes`` by name."""),
    **MLP_PARAMS,
}  # fmt: skip

LABEL_SMOOTHING = Param(
    0.0,
    Interval(0, 1, closed="left"),
    "float",
    """
    Label smoothing eps in [0, 1): the log-loss is taken against targets (1 - eps) y +
    eps/K for K classes (softmax outputs; PyTorch's ``cross_entropy(label_smoothing=)``)
    and (1 - eps) y + eps/2 per label (one logistic output, multi-label). ``loss_curve_``
    and ``loss_`` then report the smoothed loss; ``predict_proba`` is unchanged.""",
)

#: the classifiers' parameters: the MLP's and label smoothing
MLP_CLASSIFIER_PARAMS: dict[str, Param] = {**MLP_PARAMS, "label_smoothing": LABEL_SMOOTHING}

_LAYER_NAMES = ", ".join(
    f":class:`~backendnn.layers.{name}`" for name in _layers.__all__ if name != "Layer"
)

STACK_PARAMS: dict[str, Param] = {
    "layers": Param((), LayerStack(), "list of backendnn.layers objects", """
        The network, e.g. ``[Conv2d(1, 16, 3, padding=1), BatchNorm2d(16),
        Activation("relu"), MaxPool2d(2), Flatten()]``; it must end with rows (N, width).
        Input sizes may be left to infer (``Dense(64)``, ``Dense(None, 64)``): they are
        set from the data at fit. A model file records the stack (layer classes and their
        arguments) and rebuilds it. The layers: """ + _LAYER_NAMES + "."),
    **SOLVER_PARAMS,
    "output_layer": Param("append", Options("append", "last"), '{"append", "last"}', """
        ``"append"``: ``layers`` stop before the output, and the estimator appends
        ``Dense(width, n_outputs)`` (a stack ending with a Dense layer is refused: two
        linear layers in a row are the mark of a complete network). ``"last"``: ``layers``
        end with the output layer, before the output activation the loss applies
        (softmax, logistic); its width must be the number of classes (1 for two classes,
        as scikit-learn's), of labels, or of targets."""),
}  # fmt: skip

_CUSTOM_LOSS = """
        Or a :class:`backendnn.losses.Loss` object of your own, its value and gradient
        with respect to the network output h written out (``__call__(y, h,
        sample_weight=None) -> (value, dL/dh)``); register its class with
        ``backendnn.losses.register`` to save the model."""

STACK_CLASSIFIER_PARAMS: dict[str, Param] = {
    **STACK_PARAMS,
    "loss": Param("log_loss", LossParam(("log_loss",), ("logistic", "softmax")),
                  '"log_loss" or Loss object', """
        ``"log_loss"``: cross-entropy, with softmax over K > 2 classes and a logistic unit
        for two classes or per label (multi-label).""" + _CUSTOM_LOSS + """ Its ``output``
        (``"softmax"`` or ``"logistic"``) says how probabilities come from h, and must be
        the one the targets take (``"logistic"`` for two classes or multi-label targets,
        ``"softmax"`` for more classes); y reaches it as 0/1 columns or one-hot rows."""),
    "label_smoothing": LABEL_SMOOTHING,
}  # fmt: skip

STACK_REGRESSOR_PARAMS: dict[str, Param] = {
    **STACK_PARAMS,
    "loss": Param("squared_error",
                  LossParam(("squared_error", "poisson", "huber"), ("identity", "exp")),
                  '{"squared_error", "poisson", "huber"} or Loss object', """
        ``"squared_error"``: half the mean squared error. ``"poisson"``: half the Poisson
        deviance of counts y >= 0 with mean exp(h) (predictions are exp(h)), as
        :class:`MLPRegressor`'s. ``"huber"``: the Huber loss with delta 1 (PyTorch's
        ``huber_loss``; ``backendnn.losses.Huber(delta)`` for another delta).""" + _CUSTOM_LOSS
        + """ Its ``output`` is ``"identity"`` (predictions are h) or ``"exp"``
        (predictions exp(h))."""),
}  # fmt: skip

PERCEPTRON_PARAMS: dict[str, Param] = {
    "penalty": Param(None, Options(None, "l2", "l1", "elasticnet"),
                     '{None, "l2", "l1", "elasticnet"}', """
        The penalty (``"gd"``: None or ``"l2"``, alpha/(2 n) ||w||^2 on J)."""),
    "alpha": Param(0.0001, Interval(0, None), "float", """
        The penalty's strength."""),
    "l1_ratio": Param(0.15, Interval(0, 1), "float", """
        The L1 share of ``"elasticnet"``, in [0, 1]."""),
    "fit_intercept": Param(True, Boolean(), "bool", """
        Learn the bias b (else b = 0)."""),
    "max_iter": Param(1000, POSITIVE_INT, "int", """
        Epochs at most (``fit``; ``partial_fit`` runs one)."""),
    "tol": Param(1e-3, AnyOf(Options(None), Interval(0, None)), "float or None", """
        ``"online"``: stop when the epoch's mean loss is above the best by more than -tol
        (or the held-out accuracy not above the best by tol) ``n_iter_no_change`` times
        in a row; None: run ``max_iter`` epochs. ``"gd"``: see above."""),
    "shuffle": Param(True, Boolean(), "bool", """
        Shuffle the samples every epoch (``"gd"``: minibatches only)."""),
    "verbose": Param(0, VERBOSE, 'bool, int or "progress"', """
        Print one line per epoch; ``"progress"``: a progress bar."""),
    "eta0": Param(1.0, Interval(0, None, closed="neither"), "float", """
        The learning rate."""),
    "n_jobs": Param(None, AnyOf(Options(None), Interval(None, None, integer=True)),
                    "int or None", """
        Accepted for scikit-learn's interface; the one-vs-rest problems already step
        together, on the device."""),
    "random_state": Param(0, SeedParam(), "int, RandomState, Generator or None", """
        Seeds the shuffling and the early-stopping split."""),
    "early_stopping": Param(False, Boolean(), "bool", """
        Hold out ``validation_fraction`` of the data (stratified). ``"online"``: stop each
        problem when its held-out accuracy stops improving (scikit-learn's rule; the last
        weights are kept). ``"gd"``: keep the weights with the best held-out accuracy."""),
    "validation_fraction": Param(0.1, Interval(0, 1, closed="neither"), "float", """
        The held-out share, in (0, 1)."""),
    "n_iter_no_change": Param(5, POSITIVE_INT, "int", """
        Epochs without improvement before stopping."""),
    "class_weight": Param(None, ClassWeightParam(), 'dict, "balanced" or None', """
        Weight of each class's samples ({label: weight}; ``"balanced"``: n_samples /
        (n_classes * count of the class)). ``"online"``: scikit-learn's use (in the
        one-vs-rest problem of class k, class k's weight on its samples and 1 on the
        rest); ``"gd"``: each sample's weight is multiplied by its class's."""),
    "warm_start": Param(False, Boolean(), "bool", """
        Start ``fit`` from the current ``coef_`` and ``intercept_``."""),
    "solver": Param("online", Options("online", "gd"), '{"online", "gd"}', """
        scikit-learn's online updates, or the notes' gradient descent on J (see above)."""),
    "batch_size": Param(None, AnyOf(Options(None), POSITIVE_INT), "int or None", """
        ``"gd"`` only: None is full-batch gradient descent (the notes' algorithm), else
        minibatches."""),
    "backend": BACKEND,
    "dtype": DTYPE,
}  # fmt: skip
