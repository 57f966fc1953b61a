"""One fit's dealings with its caller besides the data: the callbacks, bound to the model
(:class:`FitSession`), and the validation set with its scorer (:func:`validation_set`).

Callbacks are functions of the epoch's record, or objects with any of the methods of
:class:`backendnn.callbacks.Callback` (``on_fit_begin(model)``, ``on_epoch_begin(model,
record)``, ``on_epoch_end(model, record)``, ``on_fit_end(model)``). While an object's
``on_epoch_end`` runs, the model shows the epoch just finished: its fitted attributes
(weights, ``loss_curve_``, ``n_iter_``, the training state a checkpoint saves) are that
epoch's. A fit that fails restores every attribute it changed.

Imports :mod:`backendnn._backend`, ``train``, NumPy and the siblings ``_driver``, ``_inputs``
and ``_weights``.
"""

from __future__ import annotations

import copy
import functools
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from ..train import Hooks, TrainingState
from ._weights import weight_map, weight_shapes

if TYPE_CHECKING:
    from ..params import Params

#: the methods that make an object a callback
CALLBACK_METHODS = ("on_fit_begin", "on_epoch_begin", "on_epoch_end", "on_fit_end")


def _is_object(cb: Any) -> bool:
    return any(callable(getattr(cb, m, None)) for m in CALLBACK_METHODS)


def check_callbacks(callbacks: Any) -> list:
    """``callbacks`` as a list of callables or callback objects, checked before any
    training."""
    if callable(callbacks) or _is_object(callbacks) or isinstance(callbacks, (str, bytes)):
        raise TypeError(
            "callbacks must be a list of callables (called once per epoch with a record "
            "dict) or Callback objects; got "
            f"{callbacks!r} (pass [callback] for one)"
        )
    try:
        listed = list(callbacks)
    except TypeError:
        raise TypeError(
            f"callbacks must be a list of callables or Callback objects; got "
            f"{type(callbacks).__name__}"
        ) from None
    for cb in listed:
        if not (callable(cb) or _is_object(cb)):
            raise TypeError(
                f"every callback must be callable or have one of the methods "
                f"{', '.join(CALLBACK_METHODS)}; got {cb!r}"
            )
    return listed


def _stops(answer: Any, callback: Any) -> bool:
    """A callback's answer: True stops training, None or False goes on; ``TypeError``
    for anything else (a number or an array would stop or go on by accident)."""
    if answer is None or isinstance(answer, (bool, np.bool_)):
        return bool(answer)
    raise TypeError(
        f"callback {callback!r} returned {answer!r}: return True to stop training, or "
        "None or False to go on"
    )


class FitSession(Hooks):
    """The callbacks of one fit, bound to ``model``; ``show(record)`` (set by the fit)
    puts the epoch's fitted attributes on the model before the objects see it."""

    def __init__(self, model: Any, callbacks: Any):
        self.model = model
        self.callbacks = check_callbacks(callbacks)
        self.objects = [cb for cb in self.callbacks if _is_object(cb)]
        self.show: Callable[[dict], None] | None = None

    def _call(self, method: str, *args: Any) -> list:
        answers = []
        # during an epoch the loop owns the weights: set_weights is refused there
        in_epoch = method in ("on_epoch_begin", "on_epoch_end")
        for cb in self.objects:
            fn = getattr(cb, method, None)
            if callable(fn):
                self.model.__dict__["_in_epoch"] = in_epoch
                try:
                    answers.append((cb, fn(self.model, *args)))
                finally:
                    self.model.__dict__.pop("_in_epoch", None)
        return answers

    def fit_begin(self) -> None:
        self._call("on_fit_begin")

    def epoch_begin(self, record: dict) -> None:
        self._call("on_epoch_begin", record)

    def epoch_end(self, record: dict) -> bool:
        attributes = record.pop("attributes", None)
        if self.objects and self.show is not None and attributes is not None:
            self.show(attributes())
        # every callback sees every epoch, the stopping one included
        stops = [_stops(cb(record), cb) for cb in self.callbacks if not _is_object(cb)]
        stops += [_stops(answer, cb) for cb, answer in self._call("on_epoch_end", record)]
        return any(stops)

    def fit_end(self) -> None:
        self._call("on_fit_end")


class Attributed(Hooks):
    """The caller's hooks, with each epoch's record given ``"attributes"`` (a function:
    the fitted attributes at that epoch, built only if called, from the record and the
    losses of this call's epochs) and the model's own stopping rules asked after them."""

    def __init__(self, hooks: Hooks | None, attributes: Callable, rules: Sequence[Callable] = ()):
        self.hooks, self.attributes, self.rules = hooks or Hooks(), attributes, rules
        self.losses: list[float] = []

    def epoch_begin(self, record: dict) -> None:
        self.hooks.epoch_begin(record)

    def epoch_end(self, record: dict) -> bool:
        self.losses.append(record["loss"])
        record["attributes"] = functools.partial(self.attributes, record, self.losses)
        stop = bool(self.hooks.epoch_end(record))
        # every rule sees every epoch, the stopping one included
        return any([stop, *[bool(rule(record)) for rule in self.rules]])


def model_view(model: Any, attributes: Callable[[Params, Any], dict]) -> Callable:
    """``view(params, buffers)``: a shallow copy of ``model`` whose fitted attributes are
    ``attributes(params, buffers)`` (the model itself is not changed)."""

    def view(params: Params, buffers: Any) -> Any:
        copied = copy.copy(model)
        copied.__dict__.update(attributes(params, buffers))
        return copied

    return view


def restore(model: Any, before: dict) -> None:
    """Put back the attributes ``before`` (a copy of ``model.__dict__``)."""
    model.__dict__.clear()
    model.__dict__.update(before)


def resumed_state(model: Any, request: Any) -> TrainingState | None:
    """The run a ``fit(..., resume=True)`` continues (a copy), checked; None for
    another call."""
    if not request.resume:
        return None
    if request.incremental:
        raise ValueError("resume is an argument of fit, not of partial_fit")
    state = model.__dict__.get("_training")
    if state is None or not model._has_weights():
        raise ValueError(
            f"{type(model).__name__} has no run to resume: fit it first, or load a "
            "checkpoint saved with backendnn.save(model, path, include_optimizer=True)"
        )
    solver = getattr(model, "solver", None)
    if state.opt is None and solver == "online":
        raise ValueError(
            "the Perceptron's online updates keep no optimiser state to resume: fit with "
            "solver='gd' to resume runs, or fit anew"
        )
    if state.opt is None and solver != "lbfgs":
        raise ValueError(
            "this model's run kept no optimiser state (it was loaded from a file saved "
            "without include_optimizer=True, or trained by another solver): fit it anew, "
            "or with warm_start=True to start a new optimiser from its weights"
        )
    if state.history.n_iter >= model.max_iter:
        raise ValueError(
            f"nothing to resume: the run has trained {state.history.n_iter} epochs and "
            f"max_iter={model.max_iter} counts all of them; set_params(max_iter=...) higher"
        )
    return state.copy()


def check_resumed(model: Any, state: TrainingState, network: Any, fitted: dict) -> None:
    """``ValueError`` unless this fit's ``network`` takes ``state``'s weights (names and
    shapes) and its targets define the ``fitted`` attributes of the run (classes, label
    columns, output activation)."""
    for name in ("classes_", "_multilabel", "out_activation_"):
        old, new = model.__dict__.get(name), fitted.get(name)
        if old is not None and new is not None and not np.array_equal(old, new):
            raise ValueError(
                f"resume continues a run fitted with {name}={old!r}; this y gives {new!r}: "
                "pass the targets of the run, or fit anew"
            )
    run = weight_map(model._network(), state.params, state.buffers)
    had = {k: tuple(a.shape) for k, a in run.items()}
    needed = weight_shapes(network)
    if had != needed:
        raise ValueError(
            f"resume continues the run's network, with weights {had}; the hyper-parameters "
            f"and data now make {needed}: set them back, or fit anew (warm_start=True to "
            "start from the weights)"
        )


def check_resumed_rows(state: TrainingState | None, n_rows: int, what: str) -> None:
    """``ValueError`` where a resumed run's epoch order or early-stopping split
    (``what``) does not cover the ``n_rows`` rows this fit gives it."""
    if state is None:
        return
    split = state.split
    if what == "split" and split is not None:
        had = len(split[0]) + len(split[1])
    elif what == "order" and hasattr(state.shuffling.order, "shape"):
        had = int(state.shuffling.order.shape[0])
    else:
        return
    if had != n_rows:
        raise ValueError(
            f"resume continues a run that trained on {had} rows, and this fit gives "
            f"{n_rows}: pass the same X and y, with the validation_data and early_stopping "
            "of the run, or fit anew"
        )
