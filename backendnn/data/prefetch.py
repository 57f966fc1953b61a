"""A background thread one item ahead of its consumer: :class:`Prefetch`, for data
sources that stream from the host (``dask.py``).

Imports the standard library only.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Iterator
from typing import Any


class Prefetch:
    """Runs an iterator in a background thread, one item ahead of the consumer (a
    streamed source's next window is computed and moved to the device while the current
    one trains). An error in the thread is raised in the consumer; leaving the ``with``
    block early stops the thread."""

    _END = object()

    def __init__(self, items: Iterator[Any], depth: int = 1):
        self._items = items
        self._queue: queue.Queue[tuple] = queue.Queue(maxsize=depth)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="backendnn-dask", daemon=True)

    def _put(self, item: Any) -> bool:
        while not self._stop.is_set():
            try:
                self._queue.put(item, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def _run(self) -> None:
        try:
            for item in self._items:
                if not self._put((item, None)):
                    return
            self._put((self._END, None))
        except BaseException as exc:  # re-raised in the consumer
            self._put((None, exc))

    def __enter__(self) -> Iterator[Any]:
        self._thread.start()
        return self._iterate()

    def _iterate(self) -> Iterator[Any]:
        while True:
            item, exc = self._queue.get()
            if exc is not None:
                raise exc
            if item is self._END:
                return
            yield item

    def __exit__(self, *exc: Any) -> None:
        self._stop.set()
        self._thread.join()
