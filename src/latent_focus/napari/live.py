"""Coalescing decoder for the slider: one worker at a time, and only the newest request waits."""

from __future__ import annotations

from typing import Callable

from napari.qt.threading import create_worker

from ..methods.latent.jobs import LiveJob, LiveResult, render


class LiveDecoder:
    """Runs :func:`render` off the UI thread.

    While a decode runs, a new request replaces any waiting one, so dragging the slider never queues
    more than one decode behind the running one.
    """

    def __init__(self, on_result: Callable[[LiveResult], None], on_error: Callable[[Exception], None]):
        self._on_result = on_result
        self._on_error = on_error
        self._worker = None
        self._pending: LiveJob | None = None
        self._stopped = False

    @property
    def busy(self) -> bool:
        return self._worker is not None

    def request(self, job: LiveJob) -> None:
        if self._stopped:
            return
        if self._worker is not None:
            self._pending = job
        else:
            self._start(job)

    def _start(self, job: LiveJob) -> None:
        worker = create_worker(render, job, _start_thread=False, _ignore_errors=True)
        worker.returned.connect(self._returned)
        worker.errored.connect(self._errored)
        worker.finished.connect(self._finished)
        self._worker = worker
        worker.start()

    def _returned(self, result: LiveResult) -> None:
        if not self._stopped:
            self._on_result(result)

    def _errored(self, exc: Exception) -> None:
        if not self._stopped:
            self._on_error(exc)

    def _finished(self) -> None:
        self._worker = None
        job, self._pending = self._pending, None
        if job is not None and not self._stopped:
            self._start(job)

    def stop(self) -> None:
        """Drop the waiting request and ignore the running one's result."""
        self._stopped = True
        self._pending = None
        if self._worker is not None:
            self._worker.quit()
