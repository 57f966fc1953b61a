"""The two kinds of output a network estimator has: class labels
(:class:`ClassifierOutputs`: logistic or softmax outputs, ``predict_proba``, accuracy) and
real values (:class:`RegressorOutputs`: identity outputs, R^2). Each says how its targets
are encoded (``_target_kind``), checks the fitted attributes a model file gives it, and
answers ``partial_fit``, ``predict`` and ``score``.

Imports :mod:`backendnn.activations`, ``losses``, ``_backend``, ``_validation`` and the
siblings ``_constraints``, ``_core``, ``_protocol`` and ``_targets``.
"""

from __future__ import annotations

from typing import Any, ClassVar

from .. import activations as _act
from .._backend import array_namespace, device, index_dtype
from .._validation import Boolean, Constraint
from ..losses import log_softmax, log_softmax_and_softmax, output_of
from ._constraints import ClassLabels
from ._core import FitRequest, NetworkEstimator
from ._protocol import available_if
from ._targets import accuracy, host_accuracy, labels_of, r2_device, r2_host


class ClassifierOutputs(NetworkEstimator):
    """Class labels as outputs (a base placed before the model's own class).

    Binary problems: one logistic output and the binary log-loss; several classes:
    softmax and cross-entropy; 2-D 0/1 targets: multi-label (logistic outputs)."""

    _estimator_type = "classifier"
    _target_kind = "classes"
    _multi_label_tag = True
    _multilabel: bool
    classes_: Any
    out_activation_: str
    OUTPUT_ATTRIBUTES: ClassVar[dict[str, Constraint]] = {
        "classes_": ClassLabels(),
        "_multilabel": Boolean(),
    }

    @classmethod
    def _check_attributes(cls, attributes: dict) -> None:
        k, n_out = len(attributes["classes_"]), attributes["n_outputs_"]
        multilabel = attributes["_multilabel"]
        expected = k if multilabel or k > 2 else 1
        if k < (2 if multilabel else 1) or n_out != expected:
            raise ValueError(f"{k} classes need {expected} outputs; the model has {n_out}")
        activation = "logistic" if expected == 1 or multilabel else "softmax"
        if attributes["out_activation_"] != activation:
            raise ValueError(
                f"out_activation_ must be {activation!r} for {k} classes; got "
                f"{attributes['out_activation_']!r}"
            )
        super()._check_attributes(attributes)

    def _score_device(self, Y: Any, out: Any, W: Any = None, multilabel: bool = False) -> Any:
        """Accuracy of logits ``out`` against encoded targets ``Y`` (0/1, one-hot, or a
        multi-label indicator: subset accuracy), weighted by sample weights ``W``."""
        return accuracy(Y, out, 0.5, W, multilabel)

    @available_if(lambda self: self._partial_fit_available())
    def partial_fit(self, X: Any, y: Any, sample_weight: Any = None, classes: Any = None) -> Any:
        """One epoch over (X, y), continuing from the current state.

        Parameters
        ----------
        X : array of shape (n_samples, n_features) or (N, C, H, W)
        y : array-like of shape (n_samples,)
        sample_weight : array-like of shape (n_samples,), optional
            Weight of each sample in the loss (see :meth:`fit`).
        classes : array-like, optional
            Every label that will ever appear; required on the first call.

        Returns
        -------
        self
        """
        request = FitRequest(X, y, sample_weight, incremental=True, classes=classes)
        return self._fit(request)

    def predict_proba(self, X: Any, *, batch_size: Any = None) -> Any:
        """Class probabilities, in the library of X.

        Parameters
        ----------
        X : array of shape (n_samples, n_features) or (N, C, H, W)
        batch_size : int, optional
            Rows per block; default: as many as fit in the memory budget
            (:func:`backendnn.set_memory_budget`).

        Returns
        -------
        proba : array of shape (n_samples, n_classes)
        """
        return self._decision(X, self._proba, batch_size)[1]

    def _proba(self, logits: Any) -> Any:
        xp = array_namespace(logits)
        if self.out_activation_ == "softmax":
            return log_softmax_and_softmax(logits, xp)[1]
        sigmoid = _act.get("sigmoid")
        if self._multilabel:
            return sigmoid.forward(logits)
        if len(self.classes_) == 1:
            return xp.ones_like(logits)
        return xp.concat([sigmoid.forward(-logits), sigmoid.forward(logits)], axis=1)

    def predict_log_proba(self, X: Any, *, batch_size: Any = None) -> Any:
        """Log of :meth:`predict_proba`, computed stably from the logits (multi-label:
        the log of the probabilities, as scikit-learn's); ``batch_size`` as there."""
        return self._decision(X, self._log_proba, batch_size)[1]

    def _log_proba(self, logits: Any) -> Any:
        xp = array_namespace(logits)
        if self.out_activation_ == "softmax":
            return log_softmax(logits, xp)
        sp = _act.get("softplus")
        if self._multilabel:
            # log of predict_proba, as scikit-learn: the stable -softplus(-h) can order
            # labels whose probabilities round to 1 differently from predict_proba
            return xp.log(_act.get("sigmoid").forward(logits))
        if len(self.classes_) == 1:
            return xp.zeros_like(logits)
        return xp.concat([-sp.forward(logits), -sp.forward(-logits)], axis=1)

    def predict(self, X: Any, *, batch_size: Any = None) -> Any:
        """Predicted labels, in the library and on the device of X (NumPy input: any
        label type; other libraries: numeric labels); ``batch_size`` as in
        :meth:`predict_proba`."""
        _, idx = self._decision(X, self._label_index, batch_size)
        return idx if self._multilabel else labels_of(self.classes_, idx)

    def _label_index(self, logits: Any) -> Any:
        """Each sample's class index (multi-label: its 0/1 row)."""
        xp = array_namespace(logits)
        if self._multilabel:
            return xp.astype(logits > 0, index_dtype(xp))
        if len(self.classes_) == 1:
            return xp.zeros(logits.shape[0], dtype=index_dtype(xp), device=device(logits))
        if logits.shape[1] > 1:
            return xp.argmax(logits, axis=1)
        return xp.astype(logits[:, 0] > 0, index_dtype(xp))

    def score(self, X: Any, y: Any, sample_weight: Any = None, *, batch_size: Any = None) -> float:
        """Mean accuracy on (X, y) (weighted by ``sample_weight``; subset accuracy for
        multi-label targets); ``batch_size`` as in :meth:`predict_proba`."""
        return host_accuracy(self.predict(X, batch_size=batch_size), y, sample_weight)


class RegressorOutputs(NetworkEstimator):
    """Real values as outputs (a base placed before the model's own class): identity
    outputs (squared error, Huber, a loss of your own), or (``loss="poisson"``, a loss
    with output ``"exp"``) the log link, predicting exp of the network output; R^2 as the
    score."""

    _estimator_type = "regressor"
    _target_kind = "real"
    _y_1d: bool
    out_activation_: str
    OUTPUT_ATTRIBUTES: ClassVar[dict[str, Constraint]] = {"_y_1d": Boolean()}

    @classmethod
    def _check_attributes(cls, attributes: dict) -> None:
        if attributes["out_activation_"] not in ("identity", "exp"):
            raise ValueError(
                "out_activation_ must be 'identity' or 'exp'; got "
                f"{attributes['out_activation_']!r}"
            )
        if attributes["_y_1d"] and attributes["n_outputs_"] != 1:
            raise ValueError(f"1-D targets need 1 output; the model has {attributes['n_outputs_']}")
        super()._check_attributes(attributes)

    def _score_device(self, Y: Any, out: Any, W: Any = None, multilabel: bool = False) -> Any:
        """R^2 (averaged over outputs) on the device, weighted by ``W`` if given, of the
        predictions the network output ``out`` gives."""
        # during training: the output activation of the loss parameter
        exp = output_of(getattr(self, "loss", "squared_error")) == "exp"
        return r2_device(Y, array_namespace(out).exp(out) if exp else out, W)

    @available_if(lambda self: self._partial_fit_available())
    def partial_fit(self, X: Any, y: Any, sample_weight: Any = None) -> Any:
        """One epoch over (X, y), continuing from the current state.

        Parameters
        ----------
        X : array of shape (n_samples, n_features) or (N, C, H, W)
        y : array-like of shape (n_samples,) or (n_samples, n_outputs)
        sample_weight : array-like of shape (n_samples,), optional
            Weight of each sample in the loss (see :meth:`fit`).

        Returns
        -------
        self
        """
        return self._fit(FitRequest(X, y, sample_weight, incremental=True))

    def predict(self, X: Any, *, batch_size: Any = None) -> Any:
        """Predictions, in the library of X.

        Parameters
        ----------
        X : array of shape (n_samples, n_features) or (N, C, H, W)
        batch_size : int, optional
            Rows per block; default: as many as fit in the memory budget
            (:func:`backendnn.set_memory_budget`).

        Returns
        -------
        y : array of shape (n_samples,) or (n_samples, n_outputs)
        """
        self._check_fitted()
        post = _exp if self.out_activation_ == "exp" else None  # the Poisson loss's log link
        xp, outputs = self._decision(X, post, batch_size)
        return xp.reshape(outputs, (outputs.shape[0],)) if self._y_1d else outputs

    def score(self, X: Any, y: Any, sample_weight: Any = None, *, batch_size: Any = None) -> float:
        """Coefficient of determination R^2 (averaged over outputs; weighted by
        ``sample_weight``); ``batch_size`` as in :meth:`predict`."""
        return r2_host(self.predict(X, batch_size=batch_size), y, sample_weight)


def _exp(h: Any) -> Any:
    return array_namespace(h).exp(h)
