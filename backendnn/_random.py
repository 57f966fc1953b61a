"""Random numbers for layers (dropout masks), the same on every array library: a
counter-based generator written against the Array API standard.

The standard has no random numbers, and each library's own generator gives its own
stream. Here a mask is a pure function of a key and of each element's index: element i
of a draw under key (s, t) is ``u_i = mix(mix(i + mix(t ^ c)) ^ s) / 2^32``, ``mix`` an
integer hash (C. Wellons' "lowbias32": two xor-shift-multiply rounds of 32 bits), so one
key gives bit-identical masks on NumPy, CuPy, JAX, torch and array-api-strict, inside a
compiled step too (the key is an array: a new key does not recompile).

The hash runs on int32 arrays: a product wraps around modulo 2^32 in every supported
library (the bits are those of the unsigned product), and a logical right shift is an
arithmetic one masked to the bits shifted in.

A key is an int32 array ``[s, t]``: ``s`` the stream (from the estimator's
``random_state``, see :func:`seed_of`), ``t`` the training step; :func:`next_key` counts
``t`` up, :func:`fold_in` gives each random layer a stream of its own.

Imports :mod:`backendnn._backend`.
"""

from __future__ import annotations

import hashlib
import secrets
from typing import Any

import numpy as np

from ._backend import array_namespace, device

_M1 = 0x7FEB352D
_M2 = 0x846CA68B - (1 << 32)  # as an int32
_MASK = 0xFFFFFFFF
# odd constants that keep the seed, layer and step inputs of the hash apart
_SEED_SALT, _LAYER_SALT, _STEP_SALT = 0x85EBCA6B, 0x9E3779B9, 0x27D4EB2F


def _shift_right(x: Any, bits: int, xp: Any) -> Any:
    """Logical right shift of int32 ``x``: the arithmetic shift with the sign bits masked."""
    return xp.bitwise_and(xp.bitwise_right_shift(x, bits), (1 << (32 - bits)) - 1)


def mix(x: Any, xp: Any) -> Any:
    """lowbias32 on int32 arrays: x ^= x >> 16; x *= M1; x ^= x >> 15; x *= M2; x ^= x >> 16."""
    x = xp.bitwise_xor(x, _shift_right(x, 16, xp))
    x = x * _M1
    x = xp.bitwise_xor(x, _shift_right(x, 15, xp))
    x = x * _M2
    return xp.bitwise_xor(x, _shift_right(x, 16, xp))


def _mix_host(x: int) -> int:
    """:func:`mix` of one Python int (as an unsigned 32-bit value), on the host."""
    x &= _MASK
    x ^= x >> 16
    x = (x * 0x7FEB352D) & _MASK
    x ^= x >> 15
    x = (x * 0x846CA68B) & _MASK
    return x ^ (x >> 16)


def _int32(x: int) -> int:
    x &= _MASK
    return x - (1 << 32) if x >= 1 << 31 else x


def seed_of(random_state: Any) -> int:
    """The stream ``s`` of a key, from an estimator's ``random_state``, drawing nothing.

    An int gives its own stream; a ``RandomState`` or ``Generator`` the hash of its current
    state (read, not advanced: scikit-learn's stream of draws is left as it is); None
    fresh entropy from the operating system.
    """
    if random_state is None:
        return _int32(secrets.randbits(32))
    if isinstance(random_state, (int, np.integer)):
        value = int(random_state)
        return _int32(_mix_host(_mix_host(value ^ _SEED_SALT) ^ (value >> 32)))
    state: Any
    if isinstance(random_state, np.random.RandomState):
        state = random_state.get_state(legacy=False)
    elif isinstance(random_state, np.random.Generator):
        state = random_state.bit_generator.state
    else:
        raise TypeError(
            f"random_state must be None, an int or a NumPy generator; got {random_state!r}"
        )
    digest = hashlib.sha256(repr(state).encode()).digest()
    return _int32(int.from_bytes(digest[:4], "little"))


def new_key(seed: int, step: int, xp: Any, device: Any = None) -> Any:
    """The key ``[seed, step]`` as an int32 array of ``xp`` on ``device``."""
    return xp.asarray([_int32(seed), _int32(step)], dtype=xp.int32, device=device)


def next_key(key: Any) -> Any:
    """The key of the next step: ``[s, t + 1]``."""
    xp = array_namespace(key)
    one = xp.asarray([0, 1], dtype=xp.int32, device=device(key))
    return key + one


def fold_in(key: Any, index: int) -> Any:
    """The key of part ``index`` (a layer) under ``key``: ``[mix(s ^ mix(index + 1)), t]``,
    a stream of its own."""
    xp = array_namespace(key)
    salt = _int32(_mix_host(((index + 1) * _LAYER_SALT) & _MASK))
    s = mix(xp.bitwise_xor(key[0:1], salt), xp)
    return xp.concat([s, key[1:2]])


def uniform(key: Any, shape: tuple[int, ...], dtype: Any) -> Any:
    """Uniform numbers in [0, 1) of ``shape`` and floating ``dtype`` under ``key``, on its
    library and device: the top 24 bits of ``mix(mix(i + mix(t ^ c)) ^ s)`` for element i
    (row-major) over 2^24, exact in float32 and float64."""
    xp = array_namespace(key)
    n = 1
    for d in shape:
        n *= int(d)
    if n >= 1 << 31:
        raise ValueError(f"a random draw of {n} numbers exceeds the generator's 2^31 per key")
    i = xp.arange(n, dtype=xp.int32, device=device(key))
    t = mix(xp.bitwise_xor(key[1:2], _int32(_STEP_SALT)), xp)
    h = mix(xp.bitwise_xor(mix(i + t, xp), key[0:1]), xp)
    top = _shift_right(h, 8, xp)
    return xp.reshape(xp.astype(top, dtype) * (1.0 / (1 << 24)), shape)
