"""Activation functions, each with its value and derivative side by side, in one registry.

Every activation is an object with the same two methods (notes, equations 6-11 and
the GELU, SiLU and GLU sections)::

    y = act.forward(z)            # f(z)
    dz = act.backward(dy, z, y)   # dy * f'(z), or the vector-Jacobian product for softmax

The GLU family gates one half of a projection with another::

    y = gate.forward(a, b)        # g(a) * b
    da, db = gate.backward(dy, a, b)   # dy * g'(a) * b,  dy * g(a)

All formulas are written against the Array API, stable on float32 and float64
(no overflow or NaN at :math:`|z| = 10^4`) and free of value-dependent Python branches,
so they run unchanged on every backend and inside ``jax.jit``.

Imports ``backendnn._backend`` and :mod:`backendnn.special`.
"""

from __future__ import annotations

import math
from typing import Any

from ._backend import array_namespace
from .special import ndtr

__all__ = [
    "Activation",
    "Identity",
    "Sigmoid",
    "Tanh",
    "ReLU",
    "GELU",
    "GELUTanh",
    "Swish",
    "SiLU",
    "Softplus",
    "Softmax",
    "LogSoftmax",
    "GLU",
    "get",
    "names",
    "register",
    "is_gated",
]

_INV_SQRT2PI = 1.0 / math.sqrt(2.0 * math.pi)
_SQRT_2_OVER_PI = math.sqrt(2.0 / math.pi)
_GELU_C = 0.044715


def _sigmoid(z: Any, xp: Any) -> Any:
    """sigma(z) = 1/(1+e^-z), without overflow: with e = exp(-|z|) <= 1,
    sigma = 1/(1+e) for z >= 0 and e/(1+e) for z < 0."""
    e = xp.exp(-xp.abs(z))
    r = 1.0 / (1.0 + e)
    return xp.where(z >= 0, r, e * r)


class Activation:
    """An element-wise activation f with its derivative f'.

    Subclasses implement ``forward(z)`` and ``derivative(z, y)``; ``backward``
    multiplies by the upstream gradient. ``y`` is ``forward(z)``, passed so that
    functions whose derivative is cheaper from the output (sigmoid, tanh) reuse it.
    """

    name = "activation"
    formula = ""
    #: the derivative needs only y = f(z): a layer then keeps y alone for backward
    #: (and calls ``backward(dy, None, y)``), otherwise it keeps z alone
    from_output = False

    def forward(self, z: Any) -> Any:
        raise NotImplementedError

    def derivative(self, z: Any, y: Any = None) -> Any:
        """f'(z) element-wise; ``y = f(z)`` may be passed to save work."""
        raise NotImplementedError

    def backward(self, dy: Any, z: Any, y: Any = None) -> Any:
        """dL/dz = dL/dy * f'(z)."""
        return dy * self.derivative(z, y)

    def __call__(self, z: Any) -> Any:
        return self.forward(z)

    def params(self) -> dict[str, Any]:
        """The keyword arguments that rebuild this activation with ``get(name, **params)``:
        by default its instance attributes (an activation is defined by them)."""
        return dict(vars(self))

    def __repr__(self) -> str:
        return f"{type(self).__name__}()"

    def __eq__(self, other: object) -> bool:
        return type(self) is type(other) and vars(self) == vars(other)

    def __hash__(self) -> int:
        return hash((type(self), tuple(sorted(vars(self).items()))))


class Identity(Activation):
    """f(z) = z,  f'(z) = 1."""

    name = "identity"
    formula = "f(z) = z;  f'(z) = 1"
    from_output = True

    def forward(self, z: Any) -> Any:
        return z

    def derivative(self, z: Any, y: Any = None) -> Any:
        src = y if z is None else z
        return array_namespace(src).ones_like(src)

    def backward(self, dy: Any, z: Any, y: Any = None) -> Any:
        return dy


class Sigmoid(Activation):
    """f(z) = 1/(1+e^-z)  (eq. 6),  f'(z) = f(z)(1-f(z))  (eq. 7).

    See :ref:`notes-eq-6` (notes' eqs. 6-7).
    """

    name = "sigmoid"
    formula = "f(z) = 1/(1+exp(-z));  f'(z) = f(z)(1-f(z))"
    from_output = True

    def forward(self, z: Any) -> Any:
        return _sigmoid(z, array_namespace(z))

    def derivative(self, z: Any, y: Any = None) -> Any:
        s = self.forward(z) if y is None else y
        return s * (1.0 - s)


class Tanh(Activation):
    """f(z) = tanh z  (eq. 8),  f'(z) = 1 - f(z)^2  (eq. 9).

    See :ref:`notes-eq-8` (notes' eqs. 8-9).
    """

    name = "tanh"
    formula = "f(z) = tanh(z);  f'(z) = 1 - tanh(z)^2"
    from_output = True

    def forward(self, z: Any) -> Any:
        return array_namespace(z).tanh(z)

    def derivative(self, z: Any, y: Any = None) -> Any:
        t = self.forward(z) if y is None else y
        return 1.0 - t * t


class ReLU(Activation):
    """f(z) = max(0, z)  (eq. 10),  f'(z) = 1 if z > 0 else 0  (eq. 11; 0 chosen at z = 0).

    f'(z) can come from y = f(z) too, since y > 0 exactly where z > 0.
    See :ref:`notes-eq-10` (notes' eqs. 10-11).
    """

    name = "relu"
    formula = "f(z) = max(0, z);  f'(z) = 1 if z > 0 else 0"
    from_output = True

    def forward(self, z: Any) -> Any:
        return array_namespace(z).maximum(z, 0.0)

    def derivative(self, z: Any, y: Any = None) -> Any:
        # a multiply by this 0/1 mask is ~15x faster in NumPy than where(mask, dy, 0)
        src = y if z is None else z
        return array_namespace(src).astype(src > 0, src.dtype)


class GELU(Activation):
    """Exact GELU: f(z) = z Phi(z),  f'(z) = Phi(z) + z phi(z),  phi(z) = exp(-z^2/2)/sqrt(2 pi),
    with Phi(z) = erfc(-z/sqrt 2)/2 the normal CDF.

    Phi comes from ``special.ndtr``, which keeps full relative precision in the lower
    tail, where ``1 + erf(z/sqrt 2)`` cancels to zero (z < -6) and even
    ``erfc(-z/sqrt 2)`` loses ~z^2 ulp to the rounding of its argument.
    See :ref:`notes-gelu` (notes, GELU).
    """

    name = "gelu"
    formula = "f(z) = z*Phi(z) = 0.5*z*erfc(-z/sqrt(2));  f'(z) = Phi(z) + z*phi(z)"

    def forward(self, z: Any) -> Any:
        return z * ndtr(z)

    def derivative(self, z: Any, y: Any = None) -> Any:
        xp = array_namespace(z)
        zc = xp.clip(z, -40.0, 40.0)  # z*phi(z) is 0 past |z| = 40; avoids inf * 0
        return ndtr(z) + zc * xp.exp(-0.5 * zc * zc) * _INV_SQRT2PI


class GELUTanh(Activation):
    """Tanh-approximated GELU: f(z) = z/2 (1 + tanh u),  u = sqrt(2/pi)(z + 0.044715 z^3);
    f'(z) = 1/2 (1 + tanh u) + z/2 sech^2(u) u',  u' = sqrt(2/pi)(1 + 3*0.044715 z^2).

    Computed through 1/2 (1 + tanh u) = sigma(2u) and 1/2 sech^2 u = 2 sigma(2u)(1 - sigma(2u)),
    which keep the lower tail; z is clipped to ``|z| <= 100`` inside u, where sigma(2u)
    has long saturated, so z^3 cannot overflow float32.
    See :ref:`notes-gelu-tanh` (notes, GELU's tanh approximation).
    """

    name = "gelu_tanh"
    formula = (
        "f(z) = 0.5*z*(1+tanh(u)), u = sqrt(2/pi)*(z+0.044715*z^3);  "
        "f'(z) = 0.5*(1+tanh u) + 0.5*z*sech(u)^2*u'"
    )

    @staticmethod
    def _gate(z: Any, xp: Any) -> tuple[Any, Any]:
        zc = xp.clip(z, -100.0, 100.0)
        s = _sigmoid(2.0 * _SQRT_2_OVER_PI * (zc + _GELU_C * zc * zc * zc), xp)
        return zc, s

    def forward(self, z: Any) -> Any:
        xp = array_namespace(z)
        return z * self._gate(z, xp)[1]

    def derivative(self, z: Any, y: Any = None) -> Any:
        xp = array_namespace(z)
        zc, s = self._gate(z, xp)
        du = _SQRT_2_OVER_PI * (1.0 + 3.0 * _GELU_C * zc * zc)
        return s + 2.0 * zc * s * (1.0 - s) * du


class Swish(Activation):
    """Swish_beta: f(z) = z s,  f'(z) = s + beta z s (1 - s),  s = sigma(beta z).

    With beta = 1 this is SiLU: f'(z) = sigma(z)(1 + z(1 - sigma(z))).
    See :ref:`notes-silu` (notes, SiLU / Swish).
    """

    name = "swish"
    formula = "f(z) = z*sigmoid(beta*z);  f'(z) = s + beta*z*s*(1-s), s = sigmoid(beta*z)"

    def __init__(self, beta: float = 1.0):
        self.beta = float(beta)

    def forward(self, z: Any) -> Any:
        return z * _sigmoid(self.beta * z, array_namespace(z))

    def derivative(self, z: Any, y: Any = None) -> Any:
        s = _sigmoid(self.beta * z, array_namespace(z))
        return s + self.beta * z * s * (1.0 - s)

    def __repr__(self) -> str:
        return f"Swish(beta={self.beta})"


class SiLU(Swish):
    """SiLU: f(z) = z sigma(z),  f'(z) = sigma(z)(1 + z(1 - sigma(z)))  (Swish with beta = 1).

    See :ref:`notes-silu` (notes, SiLU / Swish).
    """

    name = "silu"
    formula = "f(z) = z*sigmoid(z);  f'(z) = sigmoid(z)*(1 + z*(1 - sigmoid(z)))"

    def __init__(self) -> None:
        super().__init__(1.0)

    def params(self) -> dict[str, Any]:
        return {}

    def __repr__(self) -> str:
        return "SiLU()"


class Softplus(Activation):
    """f(z) = log(1 + e^z) = ``max(z, 0) + log1p(e^-|z|)``,  f'(z) = sigma(z)."""

    name = "softplus"
    formula = "f(z) = log(1+exp(z));  f'(z) = sigmoid(z)"

    def forward(self, z: Any) -> Any:
        xp = array_namespace(z)
        return xp.maximum(z, 0.0) + xp.log1p(xp.exp(-xp.abs(z)))

    def derivative(self, z: Any, y: Any = None) -> Any:
        return _sigmoid(z, array_namespace(z))


class Softmax(Activation):
    """Softmax along the last axis: f(z)_i = e^(z_i - m) / sum_j e^(z_j - m), m = max_j z_j.

    Not element-wise: ``backward`` returns the vector-Jacobian product
    dz = y * (dy - sum_j dy_j y_j). ``derivative`` is the diagonal y(1 - y).
    """

    name = "softmax"
    formula = "f(z)_i = exp(z_i)/sum_j exp(z_j);  dz = y*(dy - sum(dy*y))"
    from_output = True

    def forward(self, z: Any) -> Any:
        xp = array_namespace(z)
        e = xp.exp(z - xp.max(z, axis=-1, keepdims=True))
        return e / xp.sum(e, axis=-1, keepdims=True)

    def derivative(self, z: Any, y: Any = None) -> Any:
        y = self.forward(z) if y is None else y
        return y * (1.0 - y)

    def backward(self, dy: Any, z: Any, y: Any = None) -> Any:
        y = self.forward(z) if y is None else y
        xp = array_namespace(dy, y)
        return y * (dy - xp.sum(dy * y, axis=-1, keepdims=True))


class LogSoftmax(Activation):
    """log softmax along the last axis: f(z)_i = z_i - m - log sum_j e^(z_j - m).

    ``backward``: dz = dy - softmax(z) * sum_j dy_j. ``derivative`` is the diagonal 1 - softmax(z).
    """

    name = "log_softmax"
    formula = "f(z)_i = z_i - log(sum_j exp(z_j));  dz = dy - softmax(z)*sum(dy)"
    from_output = True

    def forward(self, z: Any) -> Any:
        xp = array_namespace(z)
        s = z - xp.max(z, axis=-1, keepdims=True)
        return s - xp.log(xp.sum(xp.exp(s), axis=-1, keepdims=True))

    def derivative(self, z: Any, y: Any = None) -> Any:
        y = self.forward(z) if y is None else y
        return 1.0 - array_namespace(y).exp(y)

    def backward(self, dy: Any, z: Any, y: Any = None) -> Any:
        y = self.forward(z) if y is None else y
        xp = array_namespace(dy, y)
        return dy - xp.exp(y) * xp.sum(dy, axis=-1, keepdims=True)


class GLU:
    """Gated linear unit on two halves: y = g(a) * b (notes, GLU section).

    dy/da = g'(a) * b and dy/db = g(a), so ``backward`` returns
    (dy * g'(a) * b, dy * g(a)). ``glu`` gates with the sigmoid, ``reglu`` with
    ReLU, ``geglu`` with exact GELU, ``swiglu`` with Swish (beta = 1 by default).
    See :ref:`notes-glu` (notes, GLU section).
    """

    def __init__(self, name: str, gate: Activation):
        self.name = name
        self.gate = gate
        self.formula = f"y = {gate.name}(a)*b;  da = dy*{gate.name}'(a)*b, db = dy*{gate.name}(a)"

    def forward(self, a: Any, b: Any) -> Any:
        return self.gate.forward(a) * b

    def backward(self, dy: Any, a: Any, b: Any) -> tuple[Any, Any]:
        g = self.gate.forward(a)
        return self.gate.backward(dy * b, a, g), dy * g

    def __call__(self, a: Any, b: Any) -> Any:
        return self.forward(a, b)

    def params(self) -> dict[str, Any]:
        """The gate's parameters (Swish's beta for ``swiglu``)."""
        return self.gate.params()

    def __repr__(self) -> str:
        return f"GLU({self.name!r}, {self.gate!r})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, GLU) and (self.name, self.gate) == (other.name, other.gate)

    def __hash__(self) -> int:
        return hash((self.name, self.gate))


_REGISTRY: dict[str, Any] = {
    "identity": Identity,
    "sigmoid": Sigmoid,
    "logistic": Sigmoid,
    "tanh": Tanh,
    "relu": ReLU,
    "gelu": GELU,
    "gelu_tanh": GELUTanh,
    "silu": SiLU,
    "swish": Swish,
    "softplus": Softplus,
    "softmax": Softmax,
    "log_softmax": LogSoftmax,
    "glu": lambda: GLU("glu", Sigmoid()),
    "reglu": lambda: GLU("reglu", ReLU()),
    "geglu": lambda: GLU("geglu", GELU()),
    "swiglu": lambda beta=1.0: GLU("swiglu", Swish(beta)),
}

GATED = ("glu", "reglu", "geglu", "swiglu")
BUILTIN = frozenset(_REGISTRY)  # names register() cannot take


def names() -> list[str]:
    """Every registered activation name (aliases included)."""
    return list(_REGISTRY)


def get(name: Any, **params: Any) -> Any:
    """The activation called ``name`` (``get("swish", beta=1.5)``); an object passes through.

    Raises
    ------
    ValueError
        For an unknown name, listing the valid ones.
    """
    if isinstance(name, (Activation, GLU)):
        if params:
            raise TypeError("parameters can only be given with an activation name")
        return name
    if not isinstance(name, str) or name not in _REGISTRY:
        raise ValueError(f"unknown activation {name!r}; valid names are: {', '.join(_REGISTRY)}")
    try:
        return _REGISTRY[name](**params)
    except TypeError as exc:
        raise TypeError(f"activation {name!r} does not take parameters {params}: {exc}") from None


def register(name: str, factory: Any) -> None:
    """Make ``get(name, **params)`` build ``factory(**params)``: a custom activation (an
    :class:`Activation` or :class:`GLU` subclass) can then be saved in a model file and
    loaded by a program that registered it too. Built-in names cannot be replaced.

    Examples
    --------
    >>> class Cube(Activation):
    ...     def forward(self, z): return z * z * z
    ...     def derivative(self, z, y=None): return 3.0 * z * z
    >>> register("cube", Cube)
    >>> get("cube"), describe(Cube())["name"]
    (Cube(), 'cube')
    """
    if not isinstance(name, str) or not name:
        raise TypeError(f"an activation name must be a non-empty string; got {name!r}")
    if name in BUILTIN:
        raise ValueError(f"{name!r} is a built-in activation; register under another name")
    if not callable(factory):
        raise TypeError(f"factory must be callable (a class); got {factory!r}")
    _REGISTRY[name] = factory


def describe(act: Any, name: str | None = None) -> dict[str, Any]:
    """A JSON description of activation ``act`` that :func:`from_description` turns back
    into an equal object: its registered name (``name``; by default the first name its
    class was registered under with :func:`register`, else ``act.name``), its parameters
    and its class.

    Raises
    ------
    ValueError
        If ``get(name, **params)`` does not rebuild ``act`` (an unregistered class, a
        subclass reusing a built-in name, parameters that are not JSON numbers or
        strings): a file could not bring the same function back.
    """
    act = get(act)
    spec = {"name": name or _registered_name(act), **act.params()}
    for key, value in spec.items():
        if not isinstance(value, (str, int, float, bool)):
            raise ValueError(
                f"activation {act!r}: parameter {key}={value!r} cannot be written to a file"
            )
    try:
        rebuilt = get(spec["name"], **act.params())
    except (ValueError, TypeError):
        rebuilt = None
    if rebuilt != act:
        raise ValueError(
            f"activation {act!r} ({_class_name(type(act))}) cannot be described by its name "
            f"{spec['name']!r}: get({spec['name']!r}) builds {rebuilt!r}. Register the class "
            "under a name of its own with backendnn.activations.register(name, cls) in the "
            "programs that save and load it"
        )
    return {**spec, "class": _class_name(type(act))}


def _registered_name(act: Any) -> str:
    """The first name ``act``'s class was registered under by :func:`register` (a built-in
    name is not looked for: built-ins carry their own ``name``), else ``act.name``."""
    found = (n for n, factory in _REGISTRY.items() if factory is type(act) and n not in BUILTIN)
    return next(found, act.name)


def from_description(spec: Any) -> Any:
    """The activation a :func:`describe` description (or a bare name) stands for.

    Raises
    ------
    ValueError
        For an unknown name or parameters, or when the registered class differs from the
        one recorded (the file would otherwise bring back another function).
    """
    if isinstance(spec, str):
        return get(spec)
    if not isinstance(spec, dict) or not isinstance(spec.get("name"), str):
        raise ValueError(f"an activation description is a name or a dict with 'name'; got {spec!r}")
    params = {k: v for k, v in spec.items() if k not in ("name", "class")}
    try:
        act = get(spec["name"], **params)
    except TypeError as exc:
        raise ValueError(str(exc)) from None
    recorded = spec.get("class")
    if recorded is not None and recorded != _class_name(type(act)):
        raise ValueError(
            f"activation {spec['name']!r} was saved as {recorded} but is "
            f"{_class_name(type(act))} here; register the same class before loading"
        )
    return act


def _class_name(cls: type) -> str:
    return f"{cls.__module__}.{cls.__qualname__}"


def is_gated(act: Any) -> bool:
    """Whether ``act`` is of the GLU family (takes two halves a, b)."""
    return isinstance(act, GLU)
