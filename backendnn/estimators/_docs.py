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
        callbacks : list of callables or Callback objects, optional
            A function is called after every epoch (``lbfgs``: iteration) with a dict
            record: ``epoch`` (1-based, counting the epochs of the run: a resumed run
            continues the count), ``loss`` (the epoch's mean training loss, penalty
            included), ``validation_loss`` and ``validation_score`` (None without
            validation data; with ``scoring``, the score also under the scorer's name),
            ``learning_rate`` (for the next epoch; a callback may set it),
            ``seconds`` (the epoch's wall time), ``samples_per_second``, ``params``
            (the weights as a list of (W, b) tuples) and ``buffers`` (the layers'
            state, or None); ``lbfgs`` records hold ``epoch``, ``loss`` and ``params``.
            An object of :mod:`backendnn.callbacks` (or any object with their
            methods) is called with the model: ``on_fit_begin(model)``,
            ``on_epoch_begin(model, record)``, ``on_epoch_end(model, record)`` and
            ``on_fit_end(model)``; during ``on_epoch_end`` the model's fitted
            attributes are those of the epoch just finished. A callback returning True
            stops training after that epoch; every callback sees every epoch, that one
            included.
        validation_data : tuple, optional
            ``(X_val, y_val)`` or ``(X_val, y_val, sample_weight_val)``, checked as X
            and y are: after every epoch the model is evaluated on it in inference mode
            (``validation_loss_curve_``, ``validation_scores_``); with
            ``early_stopping=True`` it is the held-out set (nothing is split off).
        resume : bool, default=False
            Continue the run that stopped (at ``max_iter``, by a callback, or saved by
            ``backendnn.save(model, path, include_optimizer=True)`` and loaded) where it
            stopped: its weights, optimiser state, schedule, generator, epoch count and
            early-stopping counters. ``max_iter`` counts every epoch of the run.

        Returns
        -------
        self

        Raises
        ------
        ValueError
            Bad input or hyper-parameters (the message names which).
        TypeError
            X and y from two libraries or devices, or callbacks that are neither callables
            nor callback objects.
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
        The validation score (accuracy, or ``scoring``'s) per epoch with
        ``validation_data`` or early stopping (None without).
    validation_loss_curve_ : list of float or None
        The validation loss (the training loss without its penalty, in inference mode)
        per epoch with ``validation_data`` or early stopping (None without).
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
        Epochs (iterations) run by the last ``fit``/``partial_fit`` (with ``resume``:
        by the whole run).
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
    buffers_ : list of tuples of arrays, or None
        Every layer's state (batch norm's running statistics) after the last training
        epoch, what inference uses; None when no layer has state.
"""
)
