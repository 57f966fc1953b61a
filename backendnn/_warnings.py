"""Warnings that point at the user's line: :func:`warn` gives ``warnings.warn`` the
``stacklevel`` of the first frame outside backendnn, however deep in the package the
warning is raised (a fixed stacklevel names a library line as soon as a call is added).

Imports nothing from backendnn.
"""

from __future__ import annotations

import os
import sys
import warnings
from types import FrameType

_PACKAGE = os.path.dirname(os.path.abspath(__file__)) + os.sep


def warn(message: str, category: type[Warning] = UserWarning) -> None:
    """``warnings.warn(message, category)`` attributed to the caller of backendnn."""
    frame: FrameType | None = sys._getframe(1)
    level = 2  # stacklevel 1 is this function, 2 its caller: frame
    while frame is not None and os.path.abspath(frame.f_code.co_filename).startswith(_PACKAGE):
        frame, level = frame.f_back, level + 1
    warnings.warn(message, category, stacklevel=level)
