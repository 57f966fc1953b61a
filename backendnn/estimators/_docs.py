"""Shared numpydoc sections of the MLP and layer-stack estimators (parameters, attributes,
``fit``).

Imports nothing.
"""

TRAINING_PARAMETERS_DOC = """
    solver : {"adam", "sgd", "lbfgs", "gd"}, default="adam"
        ``"gd"`` is full-batch gradient descent (the notes' eqs. 21-24); ``"lbfgs"`` is
        SciPy's L-BFGS-B algorithm on the compute device.
    alpha : float, default=1e-4
        L2 penalty alpha/(2 n_samples) sum ||W||^2 over the weight matrices.
    batch_size : int or "auto", default="auto"
        Minibatch size for ``sgd`` and ``adam``; ``"auto"`` is min(200, n_samples).
    learning_rate : {"constant", "invscaling", "adaptive"}, default="constant"
        The schedule for ``sgd`` (and ``gd``): ``invscaling`` lr = learning_rate_init /
        (t + 1)^power_t after each epoch, t the samples seen; ``adaptive`` divides lr by 5
        when ``n_iter_no_change`` epochs fail to improve by ``tol``.
    learning_rate_init : float, default=0.001
        The initial step size (``sgd``, ``adam``, ``gd``).
    power_t : float, default=0.5
        Exponent of the ``invscaling`` schedule.
    max_iter : int, default=200
        Epochs (``sgd``, ``adam``, ``gd``) or iterations (``lbfgs``) at most.
    shuffle : bool, default=True
        Shuffle the samples every epoch.
    random_state : int, RandomState, Generator or None, default=None
        Seeds the initial weights, the early-stopping split and the shuffling, drawn on
        the host as scikit-learn draws them: an int seeds a new ``numpy.random.RandomState``
        on every ``fit``/``partial_fit`` call, None is NumPy's global RandomState, a
        RandomState is used (and advanced) as is; a ``numpy.random.Generator`` is drawn from
        directly. With an int on float64 data the MLPs' initial weights, split, batch order
        and ``loss_curve_`` (``sgd``, ``adam``) equal scikit-learn's, on every backend;
        ``lbfgs`` starts from scikit-learn's weights.
    tol : float, default=1e-4
        Improvement of the loss (or validation score) below which an epoch counts as none.
    verbose : bool, int or "progress", default=False
        True (or an integer > 0): print scikit-learn's line per epoch on stdout
        ("Iteration N, loss = ..."), with the samples/s; ``"progress"``: a tqdm progress
        bar instead (one line per epoch where tqdm is not installed).
    warm_start : bool, default=False
        Start ``fit`` from the current weights (fitted, loaded or assigned).
    momentum : float, default=0.9
        SGD momentum, in [0, 1].
    nesterovs_momentum : bool, default=True
        Nesterov's momentum for ``sgd``.
    early_stopping : bool, default=False
        Hold out ``validation_fraction`` of the data (stratified for a binary classifier,
        as scikit-learn) and stop when its score has not improved by ``tol`` for
        ``n_iter_no_change`` epochs; the best weights are kept.
    validation_fraction : float, default=0.1
        The held-out share for ``early_stopping``, in (0, 1).
    beta_1, beta_2 : float, default=0.9, 0.999
        Adam's decay rates, in [0, 1).
    epsilon : float, default=1e-8
        Adam's denominator offset, > 0.
    n_iter_no_change : int or np.inf, default=10
        Epochs without improvement before stopping (or adapting the rate); ``np.inf``
        never stops early.
    max_fun : int, default=15000
        Loss evaluations at most for ``lbfgs``.
    backend : str or None, default=None
        Where to compute: None computes where X lives; ``"numpy"``, ``"cupy"``, ``"jax"``,
        ``"torch"``, ``"array_api_strict"`` move X there once.
    dtype : {"float32", "float64"} or None, default=None
        The compute precision; None is float64 for float64 input and float32 otherwise.
    init : str, callable or None, default=None
        Initial weights: None is scikit-learn's Glorot-uniform scheme, ``"normal"`` the
        notes' N(0, 0.01^2), ``"he_normal"`` He's; or a function (rng, fan_in, fan_out,
        activation=...) -> (W, b) of host arrays, ``rng`` the generator ``random_state``
        gives (a ``numpy.random.RandomState`` unless it is a Generator).
    early_stopping_metric : {"score", "loss"}, default="score"
        What early stopping watches on the held-out data: the estimator's score
        (scikit-learn's choice) or the validation loss.
"""

MLP_PARAMETERS_DOC = """
    Parameters
    ----------
    hidden_layer_sizes : int or tuple of int, default=(100,)
        The width of each hidden layer.
    activation : str or activation object, default="relu"
        The hidden layers' activation: any name of :mod:`backendnn.activations`
        (``"identity"``, ``"logistic"``/``"sigmoid"``, ``"tanh"``, ``"relu"``, ``"gelu"``,
        ``"gelu_tanh"``, ``"silu"``, ``"swish"``, ``"softplus"``; the GLU family
        ``"glu"``, ``"reglu"``, ``"geglu"``, ``"swiglu"`` makes GLU-gated hidden layers,
        with ``coefs_[i]`` of shape (fan_in, 2h)) or an activation object, e.g.
        ``activations.get("swish", beta=1.5)`` or an :class:`backendnn.activations.Activation`
        subclass of your own (register it with ``activations.register`` to save the model).
""" + TRAINING_PARAMETERS_DOC.lstrip("\n")

STACK_PARAMETERS_DOC = """
    Parameters
    ----------
    layers : list of backendnn.layers objects, default=()
        The network up to its output, e.g. ``[Conv2d(1, 16, 3, padding=1),
        Activation("relu"), MaxPool2d(2), Flatten()]``; it must end with rows (N, width).
        The estimator appends the output layer ``Dense(width, n_outputs)``. A model file
        records the stack (layer classes and their arguments) and rebuilds it.
""" + TRAINING_PARAMETERS_DOC.lstrip("\n")


FIT_DOC = """
        Parameters
        ----------
        X : array of shape (n_samples, n_features) or (N, C, H, W)
            Training inputs in any supported library (NCHW image batches are flattened).
        y : array-like of shape (n_samples,) or (n_samples, n_outputs)
            Targets.
        callbacks : list of callable, optional
            Each is called after every epoch (``lbfgs``: iteration) with a dict record:
            ``epoch`` (1-based count in this call), ``loss`` (the epoch's mean training
            loss, penalty included), ``validation_score`` (None without early stopping),
            ``learning_rate`` (for the next epoch), ``seconds`` (the epoch's wall time),
            ``samples_per_second`` and ``params`` (the weights as a list of (W, b)
            tuples); ``lbfgs`` records hold ``epoch`` and ``loss`` only. A callback
            returning True stops training.

        Returns
        -------
        self

        Raises
        ------
        ValueError
            Bad input or hyper-parameters (the message names which).
        TypeError
            X and y from two libraries or devices, or callbacks that are not callables.
        backendnn.ConvergenceError
            The loss became NaN or infinite; the estimator is left as it was.
"""

_CLASSIFIER_ATTRIBUTES = """
    Attributes
    ----------
    classes_ : ndarray of shape (n_classes,)
        The class labels (NumPy, any label type).
{weights}    loss_ : float
        The last epoch's (or L-BFGS's final) training loss.
    best_loss_ : float or None
        The lowest epoch loss (None with early stopping or ``lbfgs``).
    loss_curve_ : list of float
        The loss of every epoch (``lbfgs``: every iteration).
    validation_scores_ : list of float or None
        Held-out accuracy per epoch with early stopping.
    best_validation_score_ : float or None
        The best of ``validation_scores_``.
    t_ : int
        Training samples seen.
    n_features_in_ : int
        Features per sample (C*H*W for images).
    image_shape_ : tuple or None
        (C, H, W) when fitted on NCHW images.
    n_iter_ : int
        Epochs (iterations) run by the last ``fit``/``partial_fit``.
    n_layers_ : int
        Layers, input and output included.
    n_outputs_ : int
        Output units.
    out_activation_ : str
        ``"logistic"`` or ``"softmax"``.
"""


CLASSIFIER_ATTRIBUTES_DOC = _CLASSIFIER_ATTRIBUTES.format(
    weights="""    coefs_ : list of arrays
        ``coefs_[i]`` of shape (fan_in, fan_out) (GLU-gated: (fan_in, 2 fan_out)), in
        the compute library.
    intercepts_ : list of arrays
        ``intercepts_[i]`` of shape (fan_out,) (GLU-gated: (2 fan_out,)).
"""
)

STACK_CLASSIFIER_ATTRIBUTES_DOC = _CLASSIFIER_ATTRIBUTES.format(
    weights="""    params_ : list of tuples of arrays
        Every layer's parameters (``()`` for a layer without), in the compute library, the
        appended output layer's last; a Conv2d's W has PyTorch's shape (out, in, kh, kw).
"""
)
