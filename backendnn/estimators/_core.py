"""The estimator core: one ``fit`` for every estimator, read top to bottom in
:meth:`NetworkEstimator._fit`, and prediction.

A fit is a :class:`FitRequest` (what the caller passed) turned into checked data on the
compute device in one pass (:func:`._inputs.fit_data`), a network, its starting
parameters, a :class:`._driver.FitPlan` (what the fit is), and one call of the driver
(:func:`._driver.run`); every fitted attribute is then committed at once, so a failed call
changes nothing.

A model (``mlp.py``, ``stack.py``, ``perceptron.py``) says what is its own, in these
methods and nothing else:

- ``_target_kind``: how targets are encoded (``"classes"``, ``"real"``, ``"signs"``);
- ``_build_network(input_shape, n_outputs)`` and ``_init_params(network, rng, place,
  initial)``: the network to train and its starting parameters;
- ``_fit_plan(data, network)``: the :class:`FitPlan` (and ``_weigh_samples``, where a
  model weighs samples by more than the caller's weights);
- ``_fitted_attributes(network, data)``: what the trained network defines besides its weights;
- ``_network_of(attributes)``: the network of fitted attributes (prediction, model files);
- ``_weights()`` and ``_weight_attributes(weights)``: the fitted weights as one map
  ``"layers.{i}.{name}"`` -> array (the network's parameters, shared by prediction,
  warm starts and :mod:`backendnn.io`), and back to the fitted attributes;
- ``_check_attributes(attributes)``: what fitted attributes must agree on.

Imports :mod:`backendnn._backend`, ``_validation``, ``network`` (types), ``_compiled``,
``_blocks``, ``_summary``, ``data.sparse`` and the siblings ``_protocol``, ``_inputs``,
``_dask``, ``_docs`` and ``_driver``.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np

from .._backend import (
    array_namespace,
    check_random_state,
    device,
    is_array,
    namespace_name,
    to_namespace_of,
)
from .._blocks import check_batch_size, itemsize, map_rows
from .._compiled import compiled_forward
from .._random import new_key, seed_of
from .._validation import (
    POSITIVE_INT,
    AnyOf,
    Constraint,
    Interval,
    NotFittedError,
    Options,
    SequenceOf,
)
from ..data.sparse import SparseRows
from ..train import LayerState, TrainingState
from ._dask import dask_predict, is_dask
from ._docs import FIT_DOC
from ._driver import LOSS_OF_OUTPUT, FitPlan, run
from ._inputs import FitData, FitRequest, Place, check_shape, fit_data, predict_input
from ._params import SOLVER_PARAMS
from ._protocol import EstimatorProtocol
from ._session import FitSession, check_resumed, model_view, restore, resumed_state
from ._solver_plan import OPTIMIZER_OF_NAME, solver_plan
from ._validation_data import held_out_set, validation_set
from ._weights import (
    buffers_of,
    host_key,
    params_of,
    placed_tree,
    unchanged,
    weight_map,
    weight_shapes,
)

if TYPE_CHECKING:
    from ..network import Network
    from ..params import Params


class NetworkEstimator(EstimatorProtocol):
    """Base class of backendnn's estimators (see the module docstring)."""

    #: how targets are encoded: "classes", "real" or "signs" (the Perceptron's +1/-1)
    _target_kind: ClassVar[str] = ""
    #: NCHW images become (N, C*H*W) rows before the network (MLPs); a layer stack
    #: that starts with convolutions takes them as they are
    _flatten_input: ClassVar[bool] = True

    # fitted attributes every estimator has (set by fit; annotated for readers)
    n_features_in_: int
    image_shape_: tuple | None
    _dtype_name: str
    random_state: Any
    warm_start: bool

    # ------------------------------------------------------------------ what a model says

    def _build_network(self, input_shape: tuple[int, ...], n_outputs: int) -> Network:
        """The network to train, for samples of ``input_shape`` ((n_features,), or
        (C, H, W) where the input is not flattened)."""
        raise NotImplementedError

    def _init_params(self, network: Network, rng: Any, place: Place, initial: Any) -> Params:
        """Starting parameters of ``network`` drawn from ``rng`` (or from ``initial``)."""
        raise NotImplementedError

    def _fit_plan(self, data: FitData, network: Network) -> FitPlan:
        raise NotImplementedError

    def _fitted_attributes(self, network: Network, data: FitData) -> dict[str, Any]:
        """The fitted attributes trained ``network`` defines besides its weights."""
        raise NotImplementedError

    @classmethod
    def _network_of(cls, attributes: dict) -> Network:
        """The prediction network of fitted ``attributes``."""
        raise NotImplementedError

    def _weights(self) -> dict[str, Any]:
        """The fitted weights by name, ``"layers.{i}.{param}"`` of the prediction network."""
        raise NotImplementedError

    @classmethod
    def _weight_attributes(cls, attributes: dict, weights: dict[str, Any]) -> dict[str, Any]:
        """The fitted attributes holding ``weights`` (as :meth:`_weights` names them)."""
        raise NotImplementedError

    @classmethod
    def _check_attributes(cls, attributes: dict) -> None:
        """Raise ``ValueError`` if fitted ``attributes`` (each valid alone) disagree."""
        image = attributes["image_shape_"]
        if image is not None and math.prod(image) != attributes["n_features_in_"]:
            raise ValueError(
                f"image_shape_ {tuple(image)} does not hold n_features_in_ "
                f"{attributes['n_features_in_']} features"
            )
        if attributes["n_iter_"] > len(attributes["loss_curve_"]):
            raise ValueError(
                f"n_iter_ {attributes['n_iter_']} is more than the loss curve's "
                f"{len(attributes['loss_curve_'])} epochs"
            )

    def _weigh_samples(self, W: Any, codes: Any, targets: dict, place: Place) -> Any:
        """The sample weights to train with, from the caller's ``W`` (a device array or
        None), the class index of each sample and the attributes the targets define."""
        return W

    def _partial_fit_available(self) -> None:
        """``AttributeError`` where ``partial_fit`` does not exist for these
        hyper-parameters (scikit-learn's ``available_if``)."""

    def _check_partial_fit(self, request: FitRequest) -> None:
        """``ValueError`` for what ``partial_fit`` cannot do with these hyper-parameters."""

    # ------------------------------------------------------------------ fitting

    def fit(
        self,
        X: Any,
        y: Any,
        sample_weight: Any = None,
        *,
        callbacks: Any = (),
        validation_data: Any = None,
        resume: bool = False,
    ) -> Any:
        return self._fit(
            FitRequest(
                X, y, sample_weight, callbacks=callbacks, validation_data=validation_data,
                resume=resume,
            )
        )  # fmt: skip

    fit.__doc__ = "Fit the model to X and y.\n" + FIT_DOC

    def _fit(self, request: FitRequest) -> Any:
        """Train as ``request`` asks and commit every fitted attribute at once, or change
        nothing (callbacks see the model change epoch by epoch; a failure restores it)."""
        self._validate_params()
        if request.incremental:
            self._check_partial_fit(request)
        session = FitSession(self, request.callbacks)
        resumed = resumed_state(self, request)
        data = fit_data(self, request)
        network = self._build_network(data.sample_shape, data.n_outputs)
        # scikit-learn's generator, made anew on every fit/partial_fit call; draws in its
        # order: the initial weights, the early-stopping split, the epoch shuffles. A
        # resumed run continues its own generator.
        rng = check_random_state(self.random_state) if resumed is None else resumed.shuffling.rng
        reuse = self._has_weights() and (request.incremental or self.warm_start)
        if resumed is not None:
            check_resumed(self, resumed, network, data.fitted)
            params = placed_tree(resumed.params, data.place)
        elif reuse and request.initial is None:
            params = params_of(network, self._weights(), data.place)
        else:
            params = self._init_params(network, rng, data.place, request.initial)
        layers = self._layer_state(network, data.place, reuse, resumed)
        fitted = {**data.fitted, **self._fitted_attributes(network, data)}

        def attributes(params: Params, buffers: Any) -> dict[str, Any]:
            weights = weight_map(network, params, buffers)
            return {**fitted, **self._weight_attributes(fitted, weights), "_cache": {}}

        view = model_view(self, attributes)
        validation = validation_set(self, request.validation_data, data, view)
        previous = self.__dict__.get("_training")
        before = dict(self.__dict__)

        def show(epoch: dict[str, Any]) -> None:
            weights = attributes(epoch.pop("params"), epoch.pop("buffers"))
            new = {**epoch, **weights}
            new["_random_key"] = host_key(layers)
            self.__dict__.update(new)

        session.show = show
        try:
            session.fit_begin()
            params, record = run(
                self._fit_plan(data, network),
                network,
                params,
                data.source,
                codes=data.codes,
                rng=rng,
                incremental=request.incremental,
                history=None if previous is None or not (reuse or resumed) else previous.history,
                opt=None if previous is None or not request.incremental else previous.opt,
                hooks=session,
                layers=layers,
                validation=validation,
                held_out=lambda source, rows: held_out_set(self, source, request.y, rows, view),
                resume=resumed,
            )
            buffers = None if layers is None else layers.buffers
            show({**record, "params": params, "buffers": buffers})
            session.fit_end()
        except BaseException:
            restore(self, before)
            raise
        return self

    def _layer_state(
        self, network: Network, place: Place, reuse: bool, resumed: TrainingState | None = None
    ) -> LayerState | None:
        """The buffers and random key a fit of ``network`` starts from (None when it has
        neither): a resumed or continued fit's own, else initial buffers and a key from
        ``random_state`` (its stream read, not drawn from) at step 0; a continued fit goes
        on with the key sequence, so ``partial_fit`` calls draw new masks."""
        if not (network.has_state or network.is_random):
            return None
        buffers = None
        if network.has_state:
            if resumed is not None:
                buffers = placed_tree(resumed.buffers, place)
            elif reuse:
                buffers = buffers_of(network, self._weights(), place)
            else:
                buffers = network.init_state(xp=place.xp, device=place.device, dtype=place.dtype)
        key = None
        if network.is_random:
            continued = reuse or resumed is not None
            previous = self.__dict__.get("_random_key") if continued else None
            seed, step = previous if previous is not None else (seed_of(self.random_state), 0)
            key = new_key(seed, step, place.xp, place.device)
        return LayerState(buffers, key)

    @classmethod
    def _weight_schema(cls, attributes: dict) -> dict[str, tuple[tuple[int, ...], str]]:
        """Each weight array's (shape, dtype name) that fitted ``attributes`` imply (what
        a model file must hold)."""
        dtype = attributes["_dtype_name"]
        return {k: (s, dtype) for k, s in weight_shapes(cls._network_of(attributes)).items()}

    @classmethod
    def _from_fields(cls, fields: dict[str, dict[str, Any]], weights: dict[str, Any]) -> Any:
        """A fitted model from checked fields (as ``_file_fields`` made them, rebuilt
        by the constraints) and weight arrays of the right shapes."""
        model = cls(**fields["params"])
        model.__dict__.update(fields["attributes"])
        model.__dict__.update(cls._weight_attributes(fields["attributes"], weights))
        model._cache = {}
        return model

    def get_weights(self) -> dict[str, Any]:
        """The fitted parameters and layer state by name, ``"layers.{i}.{name}"`` (what
        a model file holds), as arrays of the compute library. During a callback's
        ``on_epoch_end``, the weights of the epoch just finished."""
        self._check_fitted()
        return dict(self._weights())

    def set_weights(self, weights: dict[str, Any]) -> None:
        """Replace the fitted weights by ``weights`` (as :meth:`get_weights` names them;
        every name, with the same shapes, of a real floating dtype), moved to the library,
        device and dtype of the current weights. ``ValueError`` otherwise, changing
        nothing; refused during an epoch of a fit (a callback hands back weights in
        ``on_fit_end``)."""
        self._check_fitted()
        if self.__dict__.get("_in_epoch"):
            raise ValueError(
                "set_weights during an epoch would be lost (training goes on from the loop's "
                "weights): hand back weights in on_fit_end, or stop the fit and set them then"
            )
        expected = {k: shape for k, (shape, _) in self._weight_schema(self.__dict__).items()}
        current = self._weights()
        if not isinstance(weights, dict) or set(weights) != set(expected):
            got = sorted(weights) if isinstance(weights, dict) else type(weights).__name__
            raise ValueError(f"set_weights needs the weights {sorted(expected)}; got {got}")
        for name, a in weights.items():
            if not is_array(a) or tuple(a.shape) != tuple(expected[name]):
                raise ValueError(
                    f"set_weights: {name!r} must be an array of shape {expected[name]}; got "
                    f"{getattr(a, 'shape', type(a).__name__)}"
                )
            if not array_namespace(a).isdtype(a.dtype, "real floating"):
                raise ValueError(f"set_weights: {name!r} must be floating; got {a.dtype}")
        placed = {}
        for name, a in weights.items():
            like = current[name]
            moved = to_namespace_of(a, like)
            placed[name] = array_namespace(moved).astype(moved, like.dtype, copy=False)
        self.__dict__.update(self._weight_attributes(self.__dict__, placed))
        self._cache = {}

    def _has_weights(self) -> bool:
        try:
            self._weights()
        except AttributeError:
            return False
        return True

    @property
    def feature_names_in_(self) -> Any:
        """The column names of the DataFrame given to ``fit`` (absent without names)."""
        names = self.__dict__.get("_feature_names")
        if names is None:
            raise AttributeError(
                f"{type(self).__name__} has no feature_names_in_: it was not fitted on a "
                "DataFrame with string column names"
            )
        return np.asarray(list(names), dtype=object)

    def _check_fitted(self) -> None:
        if not hasattr(self, "n_features_in_"):
            raise NotFittedError(
                f"this {type(self).__name__} instance is not fitted yet; call fit first"
            )

    # ------------------------------------------------------------------ prediction

    @property
    def _params(self) -> Params:
        """The fitted weights as the prediction network's parameters."""
        return params_of(self._network(), self._weights())

    @property
    def _buffers(self) -> list | None:
        """The fitted state of the prediction network's layers (None without)."""
        network = self._network()
        return buffers_of(network, self._weights()) if network.has_state else None

    def _network(self) -> Network:
        self._check_fitted()
        cache = self.__dict__.setdefault("_cache", {})
        if "network" not in cache:
            cache["network"] = self._network_of(self.__dict__)
        return cache["network"]

    def _params_on(self, X: Any) -> tuple[Params, list | None]:
        """The fitted parameters and buffers in the library and on the device of ``X``.

        Weights of another library or device are moved once and kept, with a copy of the
        weights they were moved from; before each use that copy is compared with the
        current weights (on their own device, one reduction per array), so assigning new
        weights or editing them in place moves them again.
        """
        params, buffers = self._params, self._buffers
        n = len(params)
        params = [*params, *(buffers or [])]  # moved together, split below
        ref = next(a for p in params for a in p)
        xp = array_namespace(X)
        if namespace_name(array_namespace(ref)) == namespace_name(xp) and device(ref) == device(X):
            return params[:n], buffers
        cache = self.__dict__.setdefault("_cache", {})
        key = ("weights", namespace_name(xp), str(device(X)))
        entry = cache.get(key)
        if entry is None or not unchanged(entry[0], params):
            snapshot = [tuple(array_namespace(a).asarray(a, copy=True) for a in p) for p in params]
            moved = [tuple(to_namespace_of(a, X) for a in p) for p in params]
            cache[key] = entry = (snapshot, moved)
        return entry[1][:n], (None if buffers is None else entry[1][n:])

    def _forward(self, X: Any, post: Any = None, batch_size: Any = None) -> Any:
        """``post`` (if given) of the network's output for ``X`` (as the network takes it)
        where X lives, in blocks of rows that fit in the memory budget (or batch_size)."""
        network = self._network()
        sparse = isinstance(X, SparseRows)
        xp = X.xp if sparse else array_namespace(X)
        # post (softmax, sigmoid...) holds a few arrays of the output's size
        extra = _POST_TEMPORARIES * math.prod(network.output_shape(X.shape[1:])) if post else 0
        rows = network.block_rows(X.shape[1:], itemsize(xp, X), batch_size, extra)
        if sparse:  # one block of rows densified at a time
            return X.map_blocks(lambda block: self._forward(block, post, rows), rows)
        params, buffers = self._params_on(X)
        one_pass, post = compiled_forward(network, xp), post or (lambda h: h)
        return map_rows(lambda block: post(one_pass(params, block, buffers)), X, rows)

    def _decision(self, X: Any, post: Any = None, batch_size: Any = None) -> tuple[Any, Any]:
        """(xp, ``post`` of the network's output for X) in the library and on the device
        of X, in blocks of rows (see :meth:`_forward`)."""
        check_batch_size(batch_size)
        if is_dask(X):  # a lazy dask array of outputs, block by block
            xp, h = dask_predict(self, X, batch_size)
            return xp, (h if post is None else post(h))
        xp, X2 = predict_input(self, X)
        return xp, self._forward(X2, post, batch_size)

    def summary(self) -> Any:
        """The fitted network's :meth:`Network.summary` (output shapes and parameter
        counts, as Keras prints them), its output activation last."""
        self._check_fitted()
        image = getattr(self, "image_shape_", None)
        shape = (self.n_features_in_,) if image is None or self._flatten_input else image
        table = self._network().summary(tuple(shape))
        return table.with_output(getattr(self, "out_activation_", "identity"))

    def _check_shape(self, X: Any) -> None:
        check_shape(self, X)

    def _score_device(self, Y: Any, out: Any, W: Any = None, multilabel: bool = False) -> Any:
        """The score (accuracy, R^2) of network outputs ``out`` against encoded targets
        ``Y`` on the device, weighted by ``W``: the early-stopping score."""
        raise NotImplementedError


REAL = Interval(None, None)
_POST_TEMPORARIES = 4  # arrays of the output's size a prediction's post-processing holds

#: the fitted attributes a solver's training defines
SOLVED_ATTRIBUTES: dict[str, Constraint] = {
    "out_activation_": Options(*LOSS_OF_OUTPUT),
    "n_outputs_": POSITIVE_INT,
    "loss_": REAL,
    "best_loss_": AnyOf(Options(None), REAL),
    "validation_scores_": AnyOf(Options(None), SequenceOf(REAL, as_list=True)),
    "validation_loss_curve_": AnyOf(Options(None), SequenceOf(REAL, as_list=True)),
    "best_validation_score_": AnyOf(Options(None), REAL),
}


class SolverEstimator(NetworkEstimator):
    """Base of the estimators trained by a solver (sgd, adam, gd, lbfgs) with
    scikit-learn's MLP hyper-parameters (:data:`._params.SOLVER_PARAMS`): the MLPs and
    the layer stacks, which differ in their network only."""

    n_outputs_: int
    out_activation_: str
    solver: Any
    early_stopping: bool
    init: Any

    def _set_solver_params(self, values: dict[str, Any]) -> None:
        """Store the constructor's solver parameters (``locals()`` of ``__init__``)."""
        for name in SOLVER_PARAMS:
            setattr(self, name, values[name])

    def _fit_plan(self, data: FitData, network: Network) -> FitPlan:
        return solver_plan(
            self.get_params(), data.fitted["out_activation_"], self._score_device,
            type(self).__name__,
        )  # fmt: skip

    def _partial_fit_available(self) -> None:
        # L-BFGS needs all the data at once: scikit-learn hides the method there too
        if isinstance(self.solver, str) and self.solver not in OPTIMIZER_OF_NAME:
            raise AttributeError(
                "partial_fit is only available for the stochastic optimizers (sgd, adam, "
                f"adamw, rmsprop, adagrad, an optimiser object) and gd; {self.solver!r} is "
                "not one"
            )

    def _check_partial_fit(self, request: FitRequest) -> None:
        if self.early_stopping:
            raise ValueError(
                "partial_fit does not support early_stopping=True: there is no held-out set "
                "across calls; set early_stopping=False"
            )
