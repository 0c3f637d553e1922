"""Noticing when a dock widget leaves the viewer, so its background work can stop."""

from __future__ import annotations

import atexit
from typing import Callable

from qtpy.QtCore import QEvent, QObject
from qtpy.QtWidgets import QWidget


class ClosingWatch(QObject):
    """Calls ``on_close`` when ``widget`` is taken out of its dock (napari's close button un-parents it),
    is closed itself, or the window holding it closes. ``on_close`` may be called more than once."""

    def __init__(self, widget: QWidget, on_close: Callable[[], None]):
        super().__init__(widget)
        self._widget = widget
        self._on_close = on_close
        self._window: QWidget | None = None
        widget.installEventFilter(self)

    def eventFilter(self, obj, event) -> bool:
        kind = event.type()
        if obj is self._widget:
            if kind == QEvent.Type.Close:
                self._on_close()
            elif kind in (QEvent.Type.ParentChange, QEvent.Type.Show):
                self._watch_window()
        elif obj is self._window and kind == QEvent.Type.Close:
            self._window.removeEventFilter(self)
            self._window = None  # holding the closed window would keep the viewer alive
            self._on_close()
        return False

    def _watch_window(self) -> None:
        window = self._widget.window()
        if window is self._window:
            return
        if self._window is not None:
            self._window.removeEventFilter(self)
        self._window = None
        if window is self._widget:  # no longer inside any dock or window
            self._on_close()
        else:
            self._window = window
            window.installEventFilter(self)


def wait_for_workers(timeout_s: float = 30.0) -> bool:
    """Block until the thread pool's workers have finished (after they were asked to stop), up to ``timeout_s``.

    A script or notebook that closes the viewer and exits must not leave a worker running into
    interpreter shutdown; returns whether every worker finished in time.
    """
    from qtpy.QtCore import QThreadPool

    return QThreadPool.globalInstance().waitForDone(int(timeout_s * 1000))


def _stop_workers_at_exit() -> None:
    """At interpreter exit, stop the workers still running (a script that closed the viewer mid-job) and wait."""
    from superqt.utils._qthreading import WorkerBase

    for worker in list(WorkerBase._worker_set):
        worker.quit()
    wait_for_workers()


atexit.register(_stop_workers_at_exit)
