"""Dock widget that trains a model on z-stacks from open layers or TIFF files, with live progress.

Training runs the core :func:`latent_focus.methods.latent.train` generator in a napari thread worker. Layer
data is copied when a run starts. Start, Cancel and the progress bar sit in a header that never scrolls;
progress also shows in napari's activity dock. Cancel (or closing the dock) stops between steps and keeps
the weights of the last completed step; the finished model lands in the per-user models folder and
:data:`latent_focus.napari.events.model_events` announces it.
"""

from __future__ import annotations

import threading
from contextlib import closing
from functools import partial
from pathlib import Path
from weakref import WeakMethod

from napari.qt.threading import thread_worker
from napari.utils import progress as napari_progress
from qtpy.QtCore import Qt
from qtpy.QtWidgets import QFormLayout, QHBoxLayout, QLabel, QProgressBar, QPushButton, QVBoxLayout, QWidget

from ..errors import InputError
from ..methods.blur_code import TRAIN_PRESETS as BLUR_CODE_PRESETS
from ..methods.blur_code import train_from_config
from ..methods.latent import train
from ..progress import Progress
from .dock import PluginDock
from .events import model_events, panel_state
from .lifetime import ClosingWatch, wait_for_workers
from .loss_plot import LossPlot
from .training_form import TrainingForm, unique_name
from .training_stacks import StackList


def _relay(reports, stop: threading.Event):
    """Forward training reports until ``stop`` is set; leaving closes the run, which saves its last step."""
    with closing(reports):
        for progress in reports:
            if stop.is_set():
                return
            yield progress


def _unlink(run: "_Run", links: list[tuple], *_) -> None:
    """Stop ``run`` and disconnect the (signal, weak slot) ``links`` once their widget is gone."""
    run.stop()
    for signal, slot in links:
        if slot() is not None:
            signal.disconnect(slot())


def _duration(seconds: float) -> str:
    seconds = int(round(seconds))
    hours, rest = divmod(seconds, 3600)
    return f"{hours}:{rest // 60:02d}:{rest % 60:02d}" if hours else f"{rest // 60}:{rest % 60:02d}"


class _Run:
    """The current training run: its generator, worker and stop flag.

    Kept apart from the widget so that the widget's destruction can still stop the run and close its
    generator.
    """

    def __init__(self):
        self.reports = None
        self.worker = None
        self.output: Path | None = None
        self.stop_flag = threading.Event()

    @property
    def running(self) -> bool:
        return self.worker is not None

    def start(self, reports, output: Path, on_finished):
        """A worker relaying ``reports``; ``on_finished`` runs when it ends, before the run stops counting as
        running (so that whoever waits for the run finds the widget done with it)."""
        self.reports, self.output, self.stop_flag = reports, output, threading.Event()
        self.worker = thread_worker(_relay, start_thread=False, ignore_errors=True)(reports, self.stop_flag)
        self.worker.finished.connect(on_finished)
        self.worker.finished.connect(self._finished)
        return self.worker

    def stop(self) -> None:
        """Ask the run to stop after the current step."""
        if self.worker is not None:
            self.stop_flag.set()
            self.worker.quit()

    def stop_and_wait(self) -> None:
        """Stop the run and wait until its worker has saved the last step and finished."""
        running = self.worker is not None
        self.stop()
        if running:
            wait_for_workers()

    def _finished(self) -> None:
        self.worker = None
        self.reports.close()  # no-op unless the worker left it suspended; then it saves the last step


class TrainingDock(PluginDock):
    """Train or fine-tune a model on checked z-stacks and watch its losses live."""

    def __init__(self, napari_viewer):
        super().__init__()
        self.viewer = napari_viewer
        self.run = _Run()
        self._links: list[tuple] = []  # (signal, weak slot) pairs undone when the widget is destroyed
        self.destroyed.connect(partial(_unlink, self.run, self._links))
        ClosingWatch(self, self.run.stop_and_wait)
        self._error: str | None = None
        self._last: Progress | None = None
        self._ended = False  # the worker has finished (reports it relayed may still be delivered)
        self.state = Progress()  # the run's live status: each report lands here, the widgets follow its events
        self.state.events.done.connect(self._show_step)
        self._bar: napari_progress | None = None

        self.stacks = StackList(napari_viewer)
        self.form = TrainingForm()
        self.start_button = QPushButton("Start")
        self.start_button.clicked.connect(self.start)
        self.cancel_button = QPushButton("Cancel")
        self.cancel_button.setEnabled(False)
        self.cancel_button.clicked.connect(self.cancel)
        self.progress_bar = QProgressBar()
        self.progress_bar.setFormat("idle")
        self.progress_bar.setValue(0)
        self.device_label = QLabel("-")
        self.device_label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.loss_plot = LossPlot()
        self.status = QLabel("")
        self.status.setWordWrap(True)
        self.status.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)

        header = QWidget()
        top = QVBoxLayout(header)
        buttons = QHBoxLayout()
        buttons.addWidget(self.start_button)
        buttons.addWidget(self.cancel_button)
        top.addLayout(buttons)
        top.addWidget(self.progress_bar)
        top.addWidget(self.status)
        inner = QWidget()  # the loss plot first, in sight while training
        layout = QVBoxLayout(inner)
        layout.addWidget(self.loss_plot)
        running = QFormLayout()
        running.addRow("Device used", self.device_label)
        layout.addLayout(running)
        layout.addWidget(self.stacks)
        layout.addWidget(self.form)
        layout.addStretch(1)
        self.set_content(inner, header)

        self.stacks.failed.connect(lambda text: self._set_status(text, error=True))
        for event in (self.viewer.layers.events.inserted, self.viewer.layers.events.removed,
                      self.viewer.layers.events.moved):
            self._link(event, self._layers_changed)
        self._link(model_events.changed, self.form.refresh_sources)
        self._link(panel_state.events.model, self.form.refresh_sources)
        for layer in self.viewer.layers:
            self._link(layer.events.name, self.stacks.refresh)
        self.stacks.refresh()

    def _link(self, signal, slot) -> None:
        signal.connect(slot)
        self._links.append((signal, WeakMethod(slot)))

    def _layers_changed(self, event) -> None:
        if event.type == "inserted":
            self._link(event.value.events.name, self.stacks.refresh)
        self.stacks.refresh()

    # -------------------------------------------------------------- the run

    def start(self) -> None:
        """Snapshot the checked stacks and start training in a worker thread."""
        if self.run.running:
            return
        try:
            stacks = self.stacks.snapshot()
            config = self.form.config()
            output, replace = self.form.output()
        except InputError as exc:
            self._set_status(str(exc), error=True)
            return
        if output is None:
            return
        run = train_from_config if config.preset in BLUR_CODE_PRESETS else train
        reports = run(stacks, output, config, init=self.form.source.currentData(), resume=False, overwrite=replace)
        worker = self.run.start(reports, output, self._on_finished)
        worker.yielded.connect(self._on_report)
        worker.errored.connect(self._on_error)
        self._error, self._last, self._ended = None, None, False
        self.state.update(Progress())
        self.loss_plot.clear()
        self.progress_bar.setRange(0, 0)  # busy until the first step reports
        self.progress_bar.setFormat("preparing...")
        self.device_label.setText("starting...")
        self._bar = napari_progress(total=0, desc=f"training {output.name}")
        self._set_status(f"Training into {output}")
        self._set_running(True)
        worker.start()

    def cancel(self) -> None:
        """Stop after the current step; the weights of the last completed step are kept."""
        if self.run.running:
            self.run.stop()
            self.cancel_button.setEnabled(False)
            self._set_status("Cancelling after the current step...")

    def _on_report(self, report: Progress) -> None:
        self._last = report
        self.state.update(report)
        if self._ended:  # relayed before the worker finished but delivered after: tell the end from it
            self._show_end()

    def _show_step(self, *_) -> None:
        progress = self.state
        if not progress.total:
            return
        self.progress_bar.setRange(0, progress.total)
        self.progress_bar.setValue(progress.done)
        eta = "done" if progress.finished else f"ETA {_duration(progress.eta_s or 0.0)}"
        self.progress_bar.setFormat(f"step {progress.done} / {progress.total}  ({eta})")
        bar = self._bar
        if bar is not None:
            if bar.total != progress.total:
                bar.total = progress.total
            bar.update(progress.done - bar.n)
        self.device_label.setText(progress.device)
        self.loss_plot.add("train", progress.done, progress.losses["total"])
        if progress.val:
            self.loss_plot.add("validation", progress.done, progress.val["val_total"])
            if "val_psnr_interp" in progress.val:
                self._set_status(f"Training into {self.run.output}\nvalidation: interpolated-plane PSNR "
                                 f"{progress.val['val_psnr_interp']:.2f} dB at step {progress.done}")

    def _on_error(self, exc: Exception) -> None:
        self._error = str(exc)

    def _on_finished(self) -> None:
        """Say how the run ended, from its last progress report: done, cancelled (last step kept) or failed."""
        output, last = self.run.output, self._last
        self._ended = True
        self._set_running(False)
        if self._bar is not None:
            self._bar.close()
            self._bar = None
        self._show_end()
        if last is not None and not self._error:
            model_events.changed.emit(str(output))
        self.form.model_name.setText(unique_name())

    def _show_end(self) -> None:
        output, last = self.run.output, self._last
        self.progress_bar.setRange(0, max(self.progress_bar.maximum(), 1))
        if self._error:
            self._set_status(f"Training stopped: {self._error}", error=True)
            self.progress_bar.setFormat("failed")
        elif last is None:
            self._set_status("Cancelled before the first step; nothing was saved.")
            self.progress_bar.setFormat("cancelled")
        else:
            done, total = last.done, last.total
            self.progress_bar.setRange(0, total)
            self.progress_bar.setValue(done)
            self.progress_bar.setFormat(f"step {done} / {total}  ({'done' if last.finished else 'cancelled'})")
            note = "" if last.finished else f" (cancelled at step {done} of {total})"
            self._set_status(f"Saved to {output}{note}")

    def _set_running(self, running: bool) -> None:
        self.form.set_running(running)
        self.stacks.setEnabled(not running)
        self.start_button.setEnabled(not running)
        self.cancel_button.setEnabled(running)

    def _set_status(self, text: str, error: bool = False) -> None:
        self.status.setText(text)
        self.status.setStyleSheet("color: #ff6b6b;" if error else "")
