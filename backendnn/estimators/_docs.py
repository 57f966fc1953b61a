"""Shared numpydoc sections of the estimators (attributes, ``fit``); the parameters'
sections come from their tables (``_params.py``).

Imports nothing.
"""

FIT_DOC = """
        Parameters
        ----------
        X : array of shape (n_samples, n_features) or (N, C, H, W)
            Training inputs in any supported library, a scipy.sparse matrix or a dask
            array (NCHW image batches are flattened for the MLPs).
        y : array-like of shape (n_samples,) or (n_samples, n_outputs)
            Class labels (a classifier; a 2-D 0/1 indicator matrix is multi-label) or
            real targets (a regressor).
        sample_weight : array-like of shape (n_samples,), optional
            Weight of each sample in the loss (its weighted mean) and in the
            early-stopping score; the L2 penalty is divided by their sum.
        callbacks : list of callable, optional
            Each is called after every epoch (``lbfgs``: iteration) with a dict record:
            ``epoch`` (1-based count in this call), ``loss`` (the epoch's mean training
            loss, penalty included), ``validation_score`` (None without early stopping),
            ``learning_rate`` (for the next epoch), ``seconds`` (the epoch's wall time),
            ``samples_per_second`` and ``params`` (the weights as a list of (W, b)
            tuples); ``lbfgs`` records hold ``epoch`` and ``loss`` only. A callback
            returning True stops training after that epoch; every callback sees every
            epoch, that one included.

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
        (C, H, W) when fitted on NCHW images ((C, L) for a layer stack fitted on NCL
        signals).
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
