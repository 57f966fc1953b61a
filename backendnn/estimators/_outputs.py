"""The two kinds of output a network estimator has, as mixins: class labels
(:class:`ClassifierOutputs`: logistic or softmax outputs, ``predict_proba``, accuracy) and
real values (:class:`RegressorOutputs`: identity outputs, R^2). Each encodes its targets,
checks the fitted attributes a model file gives it, and answers the public ``fit``,
``partial_fit``, ``predict`` and ``score``.

Imports :mod:`backendnn.activations`, ``losses``, ``_backend``, ``_validation`` and the
sibling modules.
"""

from __future__ import annotations

from typing import Any, ClassVar

from .. import activations as _act
from .._backend import array_namespace, device, from_numpy, index_dtype, to_numpy
from .._validation import Boolean, Constraint, column_or_1d
from ..losses import log_softmax, log_softmax_and_softmax
from ._constraints import ClassLabels
from ._docs import FIT_DOC
from ._protocol import available_if
from ._targets import (
    Targets,
    accuracy,
    class_labels,
    host_accuracy,
    labels_of,
    one_hot_host,
    r2_device,
    r2_host,
    regression_targets,
    unique_labels,
)


class ClassifierOutputs:
    """A mixin, placed before the network estimator's class in the bases.

    Binary problems: one logistic output and the binary log-loss; several classes:
    softmax and cross-entropy; 2-D 0/1 targets: multi-label (logistic outputs)."""

    _estimator_type = "classifier"
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
        super()._check_attributes(attributes)  # type: ignore[misc]

    def _encode_targets(
        self, y: Any, xp: Any, dev: Any, dtype: Any, incremental: bool, classes: Any
    ) -> Targets:
        host = column_or_1d(to_numpy(y))
        # continuing from fitted weights (partial_fit, warm start): the same kind of
        # targets and the same classes, as scikit-learn requires -- the weights' outputs
        # stand for those classes
        was_fitted = hasattr(self, "classes_") and hasattr(self, "_multilabel")
        continuing = was_fitted and (incremental or getattr(self, "warm_start", False))
        if continuing and (host.ndim == 2) != self._multilabel:
            raise ValueError(
                "y is "
                + ("a multi-label indicator matrix" if host.ndim == 2 else "1-D class labels")
                + " but this model was fitted on "
                + ("multi-label targets" if self._multilabel else "class labels")
                + "; fit a new model (warm_start=False) to change the kind of target"
            )
        if host.ndim == 2:  # multi-label indicator matrix
            if not ((host == 0) | (host == 1)).all():
                raise ValueError("2-D y must be a 0/1 multi-label indicator matrix")
            if continuing and host.shape[1] != len(self.classes_):
                raise ValueError(
                    f"y has {host.shape[1]} labels but this model was fitted on "
                    f"{len(self.classes_)}; fit a new model (warm_start=False) to change them"
                )
            Y, fitted = (
                host.astype("float64"),
                {
                    "classes_": to_numpy(list(range(host.shape[1]))),
                    "out_activation_": "logistic",
                    "_multilabel": True,
                },
            )
            return Targets(from_numpy(Y, xp=xp, device=dev, dtype=dtype), None, fitted)
        known = self.classes_ if continuing else None
        if incremental and classes is None and known is None:
            raise ValueError("classes must be passed on the first call to partial_fit")
        if known is not None and not incremental:
            seen = unique_labels(host)
            if set(seen.tolist()) != set(known.tolist()):
                raise ValueError(
                    "warm_start can only be used where `y` has the same classes as in the "
                    f"previous call to fit. Previously got {known}, `y` has {seen}; set "
                    "warm_start=False to fit new classes"
                )
        # one class: trained towards output 0 and always predicted (scikit-learn's)
        classes_, codes = class_labels(host, classes, known, min_classes=1)
        if len(classes_) <= 2:
            Y, output = codes[:, None].astype("float64"), "logistic"
        else:
            Y, output = one_hot_host(codes, len(classes_)), "softmax"
        fitted = {"classes_": classes_, "out_activation_": output, "_multilabel": False}
        return Targets(from_numpy(Y, xp=xp, device=dev, dtype=dtype), codes, fitted)

    def _score_device(self, Y: Any, out: Any, W: Any = None, multilabel: bool = False) -> Any:
        """Accuracy of logits ``out`` against encoded targets ``Y`` (0/1, one-hot, or a
        multi-label indicator: subset accuracy), weighted by sample weights ``W``."""
        return accuracy(Y, out, 0.5, W, multilabel)

    def fit(self, X: Any, y: Any, sample_weight: Any = None, *, callbacks: Any = ()) -> Any:
        return self._fit(  # type: ignore[attr-defined]
            X, y, incremental=False, callbacks=callbacks, sample_weight=sample_weight
        )

    fit.__doc__ = "Fit the model to X and class labels y." + FIT_DOC

    @available_if(lambda self: self._check_partial_fit_available())
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
        self._partial_fit_check()  # type: ignore[attr-defined]
        return self._fit(  # type: ignore[attr-defined]
            X, y, incremental=True, classes=classes, sample_weight=sample_weight
        )

    def predict_proba(self, X: Any) -> Any:
        """Class probabilities, shape (n_samples, n_classes), in the library of X."""
        xp, logits = self._decision(X)  # type: ignore[attr-defined]
        if self.out_activation_ == "softmax":
            return log_softmax_and_softmax(logits, xp)[1]
        sigmoid = _act.get("sigmoid")
        if self._multilabel:
            return sigmoid.forward(logits)
        if len(self.classes_) == 1:
            return xp.ones_like(logits)
        return xp.concat([sigmoid.forward(-logits), sigmoid.forward(logits)], axis=1)

    def predict_log_proba(self, X: Any) -> Any:
        """Log of :meth:`predict_proba`, computed stably from the logits (multi-label:
        the log of the probabilities, as scikit-learn's)."""
        xp, logits = self._decision(X)  # type: ignore[attr-defined]
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

    def predict(self, X: Any) -> Any:
        """Predicted labels, in the library and on the device of X (NumPy input: any
        label type; other libraries: numeric labels)."""
        xp, logits = self._decision(X)  # type: ignore[attr-defined]
        if self._multilabel:
            return xp.astype(logits > 0, index_dtype(xp))
        if len(self.classes_) == 1:
            zeros = xp.zeros(logits.shape[0], dtype=index_dtype(xp), device=device(logits))
            return labels_of(self.classes_, zeros)
        idx = (
            xp.argmax(logits, axis=1)
            if logits.shape[1] > 1
            else xp.astype(logits[:, 0] > 0, index_dtype(xp))
        )
        return labels_of(self.classes_, idx)

    def score(self, X: Any, y: Any, sample_weight: Any = None) -> float:
        """Mean accuracy on (X, y) (weighted by ``sample_weight``; subset accuracy for
        multi-label targets)."""
        return host_accuracy(self.predict(X), y, sample_weight)


class RegressorOutputs:
    """A mixin, placed before the network estimator's class in the bases: identity
    outputs and the squared error, or (``loss="poisson"``) the Poisson deviance with the
    log link, predicting exp of the network output; R^2 as the score."""

    _estimator_type = "regressor"
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
        super()._check_attributes(attributes)  # type: ignore[misc]

    def _encode_targets(
        self, y: Any, xp: Any, dev: Any, dtype: Any, incremental: bool, classes: Any
    ) -> Targets:
        y = regression_targets(y, xp, dev, dtype)
        poisson = getattr(self, "loss", "squared_error") == "poisson"
        if poisson and bool(xp.any(y < 0)):
            raise ValueError(
                "Some value(s) of y are negative which is not allowed for Poisson regression: "
                "loss='poisson' models counts or rates y >= 0"
            )
        Y = xp.reshape(y, (y.shape[0], 1)) if y.ndim == 1 else y
        output = "exp" if poisson else "identity"
        return Targets(Y, None, {"out_activation_": output, "_y_1d": y.ndim == 1})

    def _score_device(self, Y: Any, out: Any, W: Any = None, multilabel: bool = False) -> Any:
        """R^2 (averaged over outputs) on the device, weighted by ``W`` if given, of the
        predictions the network output ``out`` gives."""
        poisson = getattr(self, "loss", "squared_error") == "poisson"  # training: the parameter
        return r2_device(Y, array_namespace(out).exp(out) if poisson else out, W)

    def fit(self, X: Any, y: Any, sample_weight: Any = None, *, callbacks: Any = ()) -> Any:
        return self._fit(  # type: ignore[attr-defined]
            X, y, incremental=False, callbacks=callbacks, sample_weight=sample_weight
        )

    fit.__doc__ = "Fit the model to X and real targets y." + FIT_DOC

    @available_if(lambda self: self._check_partial_fit_available())
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
        self._partial_fit_check()  # type: ignore[attr-defined]
        return self._fit(  # type: ignore[attr-defined]
            X, y, incremental=True, sample_weight=sample_weight
        )

    def predict(self, X: Any) -> Any:
        """Predictions (n_samples,) or (n_samples, n_outputs) in the library of X."""
        xp, outputs = self._decision(X)  # type: ignore[attr-defined]
        if self.out_activation_ == "exp":  # the Poisson loss's log link
            outputs = xp.exp(outputs)
        return xp.reshape(outputs, (outputs.shape[0],)) if self._y_1d else outputs

    def score(self, X: Any, y: Any, sample_weight: Any = None) -> float:
        """Coefficient of determination R^2 (averaged over outputs; weighted by
        ``sample_weight``)."""
        return r2_host(self.predict(X), y, sample_weight)
