"""Running slider decodes off the UI thread: one at a time, and only the newest request waits."""

from __future__ import annotations

from collections.abc import Callable

from napari.qt.threading import create_worker


class CoalescingRunner:
    """Runs ``fn(request)`` in a worker, one at a time; a new request replaces the waiting one.

    Dragging a slider faster than it decodes thus never queues more than one decode behind the running
    one. ``on_result(request, result)`` and ``on_error(exc)`` run in the UI thread. When a run ends with no
    request waiting, ``on_idle()`` may return a further request (work done between slider moves).
    """

    def __init__(self, fn: Callable, on_result: Callable, on_error: Callable[[Exception], None],
                 on_idle: Callable[[], object] | None = None):
        self._fn, self._on_result, self._on_error, self._on_idle = fn, on_result, on_error, on_idle
        self._worker = None
        self._pending = None
        self._stopped = False

    @property
    def busy(self) -> bool:
        return self._worker is not None

    def request(self, request) -> None:
        if self._stopped:
            return
        if self._worker is not None:
            self._pending = request
        else:
            self._start(request)

    def _start(self, request) -> None:
        fn = self._fn
        worker = create_worker(lambda: (request, fn(request)), _start_thread=False, _ignore_errors=True)
        worker.returned.connect(self._returned)
        worker.errored.connect(self._errored)
        worker.finished.connect(self._finished)
        self._worker = worker
        worker.start()

    def _returned(self, pair) -> None:
        if not self._stopped:
            self._on_result(*pair)

    def _errored(self, exc: Exception) -> None:
        if not self._stopped:
            self._on_error(exc)

    def _finished(self) -> None:
        self._worker = None
        request, self._pending = self._pending, None
        if request is None and self._on_idle is not None and not self._stopped:
            request = self._on_idle()
        if request is not None and not self._stopped:
            self._start(request)

    def stop(self) -> None:
        """Drop the waiting request and ignore the running one's result."""
        self._stopped = True
        self._pending = None
        if self._worker is not None:
            self._worker.quit()
