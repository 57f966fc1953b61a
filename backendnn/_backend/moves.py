"""Moving an array between two libraries: sharing its memory through DLPack where that is
safe, copying where not.

:func:`refusal` is the one decision: a move shares memory when both libraries take part
in DLPack, the array is on the target device, its dtype is one of the target's, the
target takes its strides, and neither library can write into memory the other holds
read-only or immutable. :func:`move` then shares, copies on the device (the array's
layout or ownership was the obstacle) or answers None: the caller copies through the
host.

JAX: a ``jax.Array`` is immutable, and compiled code may rely on it. Sharing a torch
tensor, a NumPy array (a read-only one too: the array it views may be writable) or a CuPy
array into JAX would let its owner change the JAX array behind JAX's back, and sharing a
JAX array into torch or CuPy would let them write into it: such moves copy, unless the
caller passes ``copy=False`` and so promises that nothing writes into the shared memory.
NumPy imports a JAX array read-only, so ``to_numpy`` of a JAX array on the CPU shares.

Imports :mod:`backendnn._backend.library` and :mod:`backendnn._backend.registry`.
"""

from __future__ import annotations

from typing import Any

from .library import ArrayLibrary
from .registry import library_of

#: what stands in the way of sharing: nothing shares (copy through the host), the
#: strides (copy in the source's library, share the copy), who may write (share, then
#: copy in the target's library)
HOST, LAYOUT, OWNER = "host", "layout", "owner"


def refusal(
    x: Any, src: ArrayLibrary, dst: ArrayLibrary, device: Any, promise: bool = False
) -> tuple[str, str] | None:
    """Why array ``x`` of library ``src`` cannot share its memory with library ``dst`` on
    ``device``: ``(kind, reason)`` (kind one of HOST, LAYOUT, OWNER), or None if it can.

    ``promise``: the caller promises that no library writes into the shared memory, which
    lifts JAX's immutability (not a read-only NumPy array's: its memory may be a read-only
    mapping, where a write kills the process).
    """
    if not (src.dlpack and dst.dlpack):
        return HOST, f"{(dst if src.dlpack else src).name} moves arrays by copy only"
    here = src.exported_device(x)
    if here is None or here != dst.dlpack_device(device):
        return HOST, f"{dst.name} device {device} is not where the array is ({here})"
    name = src.dtype_name(x)
    if name is None or name not in dst.namespace().__array_namespace_info__().dtypes():
        return HOST, f"its dtype {x.dtype} is not one of {dst.name}'s here"
    if 0 in tuple(x.shape):
        return HOST, "it is empty"
    lazy = src.lazy_view(x)
    if lazy is not None:  # resolving it copies: the copy may share
        return LAYOUT, lazy
    strides = src.strides(x)
    if strides is None or not dst.takes_strides(tuple(x.shape), strides):
        return LAYOUT, f"{dst.name} cannot take its strides {strides} (in elements)"
    if not src.writable(x) and not dst.honours_read_only and not (promise and src.immutable):
        what = "immutable" if src.immutable else "read-only"
        return OWNER, f"it is {what} and {dst.name} could write into it"
    if dst.immutable and not src.immutable and not promise:  # a read-only view's base may not be
        return OWNER, f"{src.name} could still change it: {dst.name} arrays are immutable"
    return None


def move(x: Any, dst: ArrayLibrary, device: Any, copy: bool | None) -> Any:
    """Array ``x`` (of another library than ``dst``) as an array of ``dst`` on ``device``,
    or None: copy it through the host.

    ``copy=None`` shares ``x``'s memory where :func:`refusal` allows and copies where
    not; ``copy=True`` copies (on the device where both libraries are there);
    ``copy=False`` shares or raises, lifting JAX's immutability (see the module's doc).

    Raises
    ------
    ValueError
        With ``copy=False``, where the memory cannot be shared (the message says why).
    """
    src = library_of(x)
    refused = refusal(x, src, dst, device, promise=copy is False)
    try:
        if refused is None and not copy:
            return dst.dlpack_import(src.dlpack_export(x), device)
        if copy is False:
            raise BufferError(refused[1] if refused else "")
        if refused and refused[0] == LAYOUT:  # a fresh copy nothing else references shares
            return dst.dlpack_import(src.dlpack_export(src.contiguous_copy(x)), device)
        if not refused or refused[0] == OWNER:
            copied = dst.copy(dst.dlpack_import(src.dlpack_export(x), device))
            dst.synchronize(copied)  # read before the source's owner writes again (JAX is async)
            return copied
    except BufferError as exc:  # the standard's error of an export a library refuses
        if copy is False:
            raise ValueError(
                f"cannot share this {src.name} array's memory with {dst.name}: {exc}; "
                "pass copy=None to copy it where sharing is not possible"
            ) from None
    return None
