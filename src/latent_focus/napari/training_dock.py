"""Dock widget that trains a model on z-stacks from open layers or TIFF files, with live progress.

Training runs the core :func:`latent_focus.training.train` generator in a napari thread worker. Layer
data is copied when a run starts. Cancel (or closing the dock) stops between steps and keeps the weights
of the last completed step; the finished model lands in the per-user models folder and
:data:`latent_focus.napari.events.model_events` announces it.
"""

from __future__ import annotations

import re
import threading
from contextlib import closing
from dataclasses import fields
from datetime import datetime
from functools import partial
from pathlib import Path
from weakref import WeakMethod

from napari.qt.threading import thread_worker
from qtpy.QtCore import Qt
from qtpy.QtWidgets import (
    QCheckBox,
    QComboBox,
    QDoubleSpinBox,
    QFileDialog,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QListWidget,
    QListWidgetItem,
    QMessageBox,
    QProgressBar,
    QPushButton,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)

from ..device import DEVICE_CHOICES
from ..errors import InputError
from ..focus import TRIPLET_MODES
from ..io import Stack, read_stack
from ..methods.blur_code.training import PRESETS as BLUR_CODE_PRESETS
from ..methods.blur_code.training import train_from_config
from ..models import PRESETS, find_model, list_models, model_family, read_card, user_models_dir
from ..training import FINE_TUNE_RECIPE, REGULARIZATIONS, Progress, TrainConfig, train
from . import layers as L
from .events import model_events, panel_state
from .lifetime import ClosingWatch, wait_for_workers
from .loss_plot import LossPlot
from .scrolling import ScrollingDock

_DEFAULTS = {**{f.name: f.default for f in fields(TrainConfig)}, **FINE_TUNE_RECIPE}
_NAME_OK = re.compile(r"^[\w.\- ]+$")
_ITEM_ROLE = Qt.ItemDataRole.UserRole


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


def _number_box(box_type, lo, hi, value, *, step=None, suffix: str = "", tip: str = ""):
    """A QSpinBox / QDoubleSpinBox with its range, value and, optionally, step, suffix and tooltip."""
    box = box_type()
    box.setRange(lo, hi)
    if step is not None:
        box.setSingleStep(step)
    box.setValue(value)
    box.setSuffix(suffix)
    box.setToolTip(tip)
    return box


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

    def start(self, reports, output: Path):
        self.reports, self.output, self.stop_flag = reports, output, threading.Event()
        self.worker = thread_worker(_relay, start_thread=False, ignore_errors=True)(reports, self.stop_flag)
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


class TrainingDock(ScrollingDock):
    """Train or fine-tune an autoencoder on checked z-stacks and watch its losses live."""

    def __init__(self, napari_viewer):
        super().__init__()
        self.viewer = napari_viewer
        self.run = _Run()
        self._links: list[tuple] = []  # (signal, weak slot) pairs undone when the widget is destroyed
        self.destroyed.connect(partial(_unlink, self.run, self._links))
        ClosingWatch(self, self.run.stop_and_wait)
        self._files: list[Stack] = []
        self._error: str | None = None
        self._last: Progress | None = None

        self.stack_list = QListWidget()
        self.stack_list.setMaximumHeight(100)
        self.stack_list.setToolTip("checked image layers (ndim >= 3) and files are used for training")
        self.add_files_button = QPushButton("Add files...")
        self.add_files_button.clicked.connect(self._choose_files)

        self.source = QComboBox()
        self.source.setToolTip("fine-tune existing weights or start from random weights")
        self.source.currentIndexChanged.connect(self._source_changed)
        self.preset = QComboBox()
        for name, preset in PRESETS.items():
            if preset.family not in ("autoencoder", "blur-code"):
                continue  # the single-plane networks train with their own commands
            self.preset.addItem(name)
            self.preset.setItemData(self.preset.count() - 1, preset.summary, Qt.ItemDataRole.ToolTipRole)
        self.preset.setCurrentText(_DEFAULTS["preset"])
        self.regularization = QComboBox()
        self.regularization.addItems(REGULARIZATIONS)
        self.regularization.setCurrentText("direct")
        self.regularization.setToolTip("baseline: reconstruction only; indirect: + interpolated plane; "
                                       "direct: + latent consistency")
        self.extrapolation = _number_box(QDoubleSpinBox, 0, 100, _DEFAULTS["extrapolation"], step=0.5,
                                         tip="weight of a deblurring term: the sharpest plane decoded from the "
                                             "extrapolated latent (Eq. 2); 0 trains exactly the paper's losses")
        self.triplets = QComboBox()
        self.triplets.addItems(TRIPLET_MODES)
        self.triplets.setCurrentText(_DEFAULTS["triplets"])
        self.triplets.setToolTip("midpoint: only 2b = a + c; all: any b between a and c; "
                                 "auto: midpoint when possible")
        self.relative_latent = QCheckBox("scale-free latent term")
        self.relative_latent.setChecked(_DEFAULTS["relative_latent"])
        self.relative_latent.setToolTip("direct regularization: divide the latent L1 (Eq. 4) by the latent distance "
                                        "between planes a and c, so the latent cannot meet it by shrinking")
        self.steps = _number_box(QSpinBox, 1, 10_000_000, _DEFAULTS["steps"])
        self.epochs = _number_box(QDoubleSpinBox, 0.01, 100_000, 10)
        self.epochs.hide()
        self.length_unit = QComboBox()
        self.length_unit.addItems(["steps", "epochs"])
        self.length_unit.currentTextChanged.connect(self._unit_changed)
        self.batch_size = _number_box(QSpinBox, 1, 1024, _DEFAULTS["batch_size"])
        self.crop = _number_box(QSpinBox, 16, 4096, _DEFAULTS["crop"], step=16, suffix=" px",
                                tip="side of the square training crops; at most the plane size")
        self.lr = QLineEdit(f"{_DEFAULTS['lr']:g}")
        self.lr.setToolTip("Adam learning rate, e.g. 1e-4")
        self.device = QComboBox()
        self.device.addItems(DEVICE_CHOICES)
        self.device.setToolTip("auto tries CUDA, then Apple MPS, then the CPU")
        self.model_name = QLineEdit(self._unique_name())
        self.model_name.setToolTip(f"folder name under {user_models_dir()}")

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

        length = QHBoxLayout()
        length.addWidget(self.steps, 1)
        length.addWidget(self.epochs, 1)
        length.addWidget(self.length_unit)
        form = QFormLayout()
        form.setFieldGrowthPolicy(QFormLayout.FieldGrowthPolicy.AllNonFixedFieldsGrow)
        form.addRow("Start from", self.source)
        form.addRow("Preset", self.preset)
        form.addRow("Regularization", self.regularization)
        form.addRow("Deblurring weight", self.extrapolation)
        form.addRow("Triplets", self.triplets)
        form.addRow("", self.relative_latent)
        form.addRow("Length", length)
        form.addRow("Batch size", self.batch_size)
        form.addRow("Crop", self.crop)
        form.addRow("Learning rate", self.lr)
        form.addRow("Device", self.device)
        form.addRow("Model name", self.model_name)
        buttons = QHBoxLayout()
        buttons.addWidget(self.start_button)
        buttons.addWidget(self.cancel_button)
        running = QFormLayout()
        running.addRow("Device used", self.device_label)

        inner = QWidget()
        layout = QVBoxLayout(inner)
        stacks_row = QHBoxLayout()
        stacks_row.addWidget(QLabel("Training stacks"), 1)
        stacks_row.addWidget(self.add_files_button)
        layout.addLayout(stacks_row)
        layout.addWidget(self.stack_list)
        layout.addLayout(form)
        layout.addLayout(buttons)
        layout.addWidget(self.progress_bar)
        layout.addLayout(running)
        layout.addWidget(self.loss_plot, 1)
        layout.addWidget(self.status)
        self.set_content(inner)
        self._inputs = [self.stack_list, self.add_files_button, self.source, self.preset, self.regularization,
                        self.extrapolation, self.triplets, self.relative_latent, self.steps, self.epochs,
                        self.length_unit, self.batch_size, self.crop, self.lr, self.device, self.model_name]

        for event in (self.viewer.layers.events.inserted, self.viewer.layers.events.removed,
                      self.viewer.layers.events.moved):
            self._link(event, self._refresh_stacks)
        self._link(model_events.changed, self._refresh_sources)
        self._link(panel_state.events.model, self._refresh_sources)
        for layer in self.viewer.layers:
            self._link(layer.events.name, self._refresh_stacks)
        self._refresh_stacks()
        self._refresh_sources()

    # ----------------------------------------------------------------- inputs

    def _link(self, signal, slot) -> None:
        signal.connect(slot)
        self._links.append((signal, WeakMethod(slot)))

    def _refresh_stacks(self, event=None) -> None:
        """List image layers with ndim >= 3 and added files, keeping their check marks."""
        if event is not None and event.type == "inserted":
            self._link(event.value.events.name, self._refresh_stacks)
        checked = {}
        for i in range(self.stack_list.count()):
            item = self.stack_list.item(i)
            checked[item.text()] = item.checkState()
        self.stack_list.clear()
        for layer in self.viewer.layers:
            if L.is_image_stack(layer):  # the plugin's own outputs are listed but not ticked
                self._add_item(f"layer: {layer.name}", ("layer", layer.name), checked, not L.is_plugin_output(layer))
        for index, stack in enumerate(self._files):
            self._add_item(f"file: {stack.source}", ("file", index), checked)

    def _add_item(self, text: str, key: tuple, checked: dict, tick: bool = True) -> None:
        item = QListWidgetItem(text)
        item.setFlags(item.flags() | Qt.ItemFlag.ItemIsUserCheckable)
        item.setCheckState(checked.get(text, Qt.CheckState.Checked if tick else Qt.CheckState.Unchecked))
        item.setData(_ITEM_ROLE, key)
        self.stack_list.addItem(item)

    def _choose_files(self) -> None:
        paths, _ = QFileDialog.getOpenFileNames(self, "Add training z-stacks", "", "TIFF z-stacks (*.tif *.tiff)")
        self.add_files(paths)

    def add_files(self, paths) -> None:
        """Read TIFF z-stacks and add them, checked, to the training stacks."""
        errors = []
        for path in paths:
            try:
                self._files.append(read_stack(path))
            except InputError as exc:
                errors.append(str(exc))
        self._refresh_stacks()
        self._set_status("\n".join(errors), error=bool(errors))

    def _refresh_sources(self, *_) -> None:
        """Fill "Start from": the model picked in the Latent focus panel, scratch, then the other models."""
        first = self.source.currentIndex() <= 0
        current = self.source.currentData()
        picked = panel_state.model
        try:
            find_model(picked)
        except InputError:
            picked = None  # the panel's model is gone (or was never installed)
        self.source.blockSignals(True)
        self.source.clear()
        if picked is not None:
            self.source.addItem(f"current model: {Path(str(picked)).name} (fine-tune)", picked)
        self.source.addItem("scratch", None)
        for name, folder in list_models().items():
            if name != picked and model_family(folder) == "autoencoder":
                self.source.addItem(f"{name} (fine-tune)", name)
        index = 0 if first else self.source.findData(current)
        self.source.setCurrentIndex(max(index, 0))
        self.source.blockSignals(False)
        self._source_changed()

    def _source_changed(self, *_) -> None:
        init = self.source.currentData()
        if init is not None:
            try:
                self.preset.setCurrentText(read_card(find_model(init)).preset)
            except InputError:
                pass
        self.preset.setEnabled(init is None and not self.run.running)

    def _unit_changed(self, unit: str) -> None:
        self.steps.setVisible(unit == "steps")
        self.epochs.setVisible(unit == "epochs")

    @staticmethod
    def _unique_name() -> str:
        base = f"model-{datetime.now():%Y%m%d-%H%M%S}"
        name, n = base, 2
        while (user_models_dir() / name).exists():
            name, n = f"{base}-{n}", n + 1
        return name

    def _snapshot(self) -> list[Stack]:
        """Copies of the checked stacks, so later edits to the layers do not reach the run."""
        stacks = []
        for i in range(self.stack_list.count()):
            item = self.stack_list.item(i)
            if item.checkState() != Qt.CheckState.Checked:
                continue
            kind, key = item.data(_ITEM_ROLE)
            if kind == "file":
                stacks.append(self._files[key])
                continue
            layer = self.viewer.layers[key]
            axes = L.layer_axes(layer)  # the shown channel and time point of the layer's (z, y, x) stack
            stack = L.stack_of(layer, self.viewer, axes, L.current_channel(layer, self.viewer, axes))
            stack.source = f"napari layer {layer.name!r}"
            stacks.append(stack)
        if not stacks:
            raise InputError("no training stack is checked; open a z-stack as an image layer or add TIFF files")
        return stacks

    def _config(self) -> TrainConfig:
        try:
            lr = float(self.lr.text())
        except ValueError:
            raise InputError(f"learning rate {self.lr.text()!r} is not a number; enter e.g. 1e-4") from None
        by_epochs = self.length_unit.currentText() == "epochs"
        steps = self.steps.value()
        return TrainConfig(preset=self.preset.currentText(), regularization=self.regularization.currentText(),
                           steps=steps, epochs=self.epochs.value() if by_epochs else None,
                           batch_size=self.batch_size.value(), crop=self.crop.value(), lr=lr,
                           device=self.device.currentText(), extrapolation=self.extrapolation.value(),
                           triplets=self.triplets.currentText(),
                           relative_latent=self.relative_latent.isChecked(),
                           validate_every=_DEFAULTS["validate_every"] if by_epochs else max(1, min(50, steps // 20)))

    def _output(self) -> tuple[Path | None, bool]:
        """The model folder to write and whether it replaces one; no folder when the user declines."""
        name = self.model_name.text().strip()
        if not _NAME_OK.match(name) or name.strip(".") == "":
            raise InputError(f"model name {name!r} is not a valid folder name; use letters, digits, '-', '_' or '.'")
        folder = user_models_dir() / name
        if not (folder.exists() and any(folder.iterdir())):
            return folder, False
        if not (folder / "card.json").is_file():
            raise InputError(f"{folder} exists and is not a model folder; choose another model name")
        answer = QMessageBox.question(self, "Replace model?",
                                      f"A model named {name!r} already exists in\n{folder.parent}.\nReplace it?")
        return (folder, True) if answer == QMessageBox.StandardButton.Yes else (None, False)

    # -------------------------------------------------------------- the run

    def start(self) -> None:
        """Snapshot the checked stacks and start training in a worker thread."""
        if self.run.running:
            return
        try:
            stacks = self._snapshot()
            config = self._config()
            config.check()
            output, replace = self._output()
        except InputError as exc:
            self._set_status(str(exc), error=True)
            return
        if output is None:
            return
        run = train_from_config if config.preset in BLUR_CODE_PRESETS else train
        reports = run(stacks, output, config, init=self.source.currentData(), resume=False, overwrite=replace)
        worker = self.run.start(reports, output)
        worker.yielded.connect(self._on_progress)
        worker.errored.connect(self._on_error)
        worker.finished.connect(self._on_finished)
        self._error, self._last = None, None
        self.loss_plot.clear()
        self.progress_bar.setRange(0, 0)  # busy until the first step reports
        self.progress_bar.setFormat("preparing...")
        self.device_label.setText("starting...")
        self._set_status(f"Training into {output}")
        self._set_running(True)
        worker.start()

    def cancel(self) -> None:
        """Stop after the current step; the weights of the last completed step are kept."""
        if self.run.running:
            self.run.stop()
            self.cancel_button.setEnabled(False)
            self._set_status("Cancelling after the current step...")

    def _on_progress(self, progress: Progress) -> None:
        self._last = progress
        self.progress_bar.setRange(0, progress.total)
        self.progress_bar.setValue(progress.step)
        eta = "done" if progress.done else f"ETA {_duration(progress.eta_s)}"
        self.progress_bar.setFormat(f"step {progress.step} / {progress.total}  ({eta})")
        self.device_label.setText(progress.device)
        self.loss_plot.add("train", progress.step, progress.losses["total"])
        if progress.val:
            self.loss_plot.add("validation", progress.step, progress.val["val_total"])
            if "val_psnr_interp" in progress.val:
                self._set_status(f"Training into {self.run.output}\nvalidation: interpolated-plane PSNR "
                                 f"{progress.val['val_psnr_interp']:.2f} dB at step {progress.step}")

    def _on_error(self, exc: Exception) -> None:
        self._error = str(exc)

    def _on_finished(self) -> None:
        """Say how the run ended, from its last progress report: done, cancelled (last step kept) or failed."""
        output, last = self.run.output, self._last
        self._set_running(False)
        self.progress_bar.setRange(0, max(self.progress_bar.maximum(), 1))
        if self._error:
            self._set_status(f"Training stopped: {self._error}", error=True)
            self.progress_bar.setFormat("failed")
        elif last is None:
            self._set_status("Cancelled before the first step; nothing was saved.")
            self.progress_bar.setFormat("cancelled")
        else:
            done, total = last.step, last.total
            self.progress_bar.setRange(0, total)
            self.progress_bar.setValue(done)
            self.progress_bar.setFormat(f"step {done} / {total}  ({'done' if last.done else 'cancelled'})")
            note = "" if last.done else f" (cancelled at step {done} of {total})"
            self._set_status(f"Saved to {output}{note}")
        if last is not None and not self._error:
            model_events.changed.emit(str(output))
        self.model_name.setText(self._unique_name())

    def _set_running(self, running: bool) -> None:
        for widget in self._inputs:
            widget.setEnabled(not running)
        self.preset.setEnabled(not running and self.source.currentData() is None)
        self.start_button.setEnabled(not running)
        self.cancel_button.setEnabled(running)

    def _set_status(self, text: str, error: bool = False) -> None:
        self.status.setText(text)
        self.status.setStyleSheet("color: #ff6b6b;" if error else "")
