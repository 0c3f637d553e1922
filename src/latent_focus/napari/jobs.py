"""The panel's job row: one job at a time, with its progress, Cancel and a status line.

A job is a generator yielding :class:`~latent_focus.progress.Progress` (the core's work, as stardist-napari
runs it); :class:`JobRunner` drives it in a napari thread worker, each report updating its evented status
(``JobRunner.state``), whose events move the row's bar and napari's own activity dock and status bar
(``napari.utils.progress``, with its cancel button); errors show in the status line and as napari
notifications.
"""

from __future__ import annotations

from collections.abc import Callable, Generator

from napari.qt.threading import create_worker
from napari.utils import cancelable_progress
from napari.utils.notifications import show_error
from qtpy.QtWidgets import QHBoxLayout, QLabel, QProgressBar, QPushButton, QVBoxLayout, QWidget

from ..errors import InputError
from ..progress import Progress

ERROR_STYLE = "color: #ff6b6b;"


def _drive(gen):
    """A generator function around a generator object, so napari's ``create_worker`` runs it."""
    return (yield from gen)


class JobRunner(QWidget):
    """A progress bar, Cancel and a status line; runs one job at a time."""

    def __init__(self, parent=None):
        super().__init__(parent)
        self.progress = QProgressBar()
        self.progress.setFormat("%p%")
        self.progress.setValue(0)
        self.cancel_button = QPushButton("Cancel")
        self.cancel_button.setEnabled(False)
        self.cancel_button.setToolTip("stop the running job after the step it is working on")
        self.cancel_button.clicked.connect(self.cancel)
        self.status = QLabel()
        self.status.setWordWrap(True)
        row = QHBoxLayout()
        row.addWidget(self.progress, 1)
        row.addWidget(self.cancel_button)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addLayout(row)
        layout.addWidget(self.status)
        self._worker = None
        self._bar: cancelable_progress | None = None
        self._on_done: Callable | None = None
        self._what = ""
        self._stopped = False
        self.state = Progress()  # the running job's status: reports land here, the bars follow its events
        self.state.events.done.connect(self._show_progress)
        self.state.events.message.connect(self._show_progress)

    @property
    def busy(self) -> bool:
        return self._worker is not None

    def run(self, job: Generator, on_done: Callable, what: str) -> None:
        """Run ``job`` in a worker; ``on_done(result)`` runs in the UI thread with its return value."""
        if self._worker is not None:
            self.set_status("a job is already running; wait for it or press Cancel", error=True)
            job.close()
            return
        worker = create_worker(_drive, job, _start_thread=False, _ignore_errors=True)
        worker.yielded.connect(self.state.update)
        worker.returned.connect(self._returned)
        worker.errored.connect(self.report)
        worker.aborted.connect(lambda: self.set_status(f"{self._what}: cancelled"))
        worker.finished.connect(self._finished)
        self._worker, self._on_done, self._what = worker, on_done, what
        self.state.update(Progress())
        self.progress.setRange(0, 1)
        self.progress.setValue(0)
        self.progress.setFormat(f"%p%  {what}")
        self._bar = cancelable_progress(total=1, desc=what, cancel_callback=self.cancel)
        self.cancel_button.setEnabled(True)
        self.set_status(what + " ...")
        worker.start()

    def _show_progress(self, *_) -> None:
        p = self.state
        total = max(p.total, 1)
        self.progress.setMaximum(total)
        self.progress.setValue(p.done)
        if p.message:
            self.progress.setFormat(f"%p%  {p.message}")
        bar = self._bar  # napari's bar may let the job's end be handled while it updates
        if bar is not None:
            if p.message:
                bar.set_description(f"{self._what}: {p.message}")
            if bar.total != total:
                bar.total = total
            bar.update(p.done - bar.n)

    def _returned(self, result) -> None:
        if self._stopped:
            return
        try:
            self._on_done(result)
        except Exception as exc:  # whatever showing the result raised is reported, not lost
            self.report(exc)
            return
        self.set_status(f"{self._what}: done")

    def _finished(self) -> None:
        self._worker = self._on_done = None
        self.cancel_button.setEnabled(False)
        self.progress.setFormat("%p%")
        if self._bar is not None:
            self._bar.close()
            self._bar = None

    def cancel(self) -> None:
        """Stop the running job after the step it is working on."""
        if self._worker is not None:
            self._worker.quit()

    def reset(self) -> None:
        """Clear the bar and the status line (another layer was chosen)."""
        if self._worker is None:
            self.progress.setRange(0, 1)
            self.progress.setValue(0)
            self.progress.setFormat("%p%")
        self.set_status("")

    def report(self, exc: Exception) -> None:
        """Show an error in the status line and as a napari notification."""
        if self._stopped:
            return
        message = str(exc) if isinstance(exc, InputError) else f"{type(exc).__name__}: {exc}"
        self.set_status(message, error=True)
        show_error(f"Latent Focus: {message}")

    def set_status(self, text: str, error: bool = False) -> None:
        self.status.setText(text)
        self.status.setStyleSheet(ERROR_STYLE if error else "")

    def stop(self) -> None:
        """Cancel the running job and drop its result (the widget is closing)."""
        self._stopped = True
        self.cancel()
