"""The Latent focus panel: pick a stack and two planes, then move through latent space with one slider.

The slider's t mixes the latents of the sharper plane B and the blurrier plane C as
``t * z_B + (1 - t) * z_C``: t in [0, 1] synthesises blur between C and B, t > 1 deblurs beyond B.
All maths runs in :mod:`latent_focus`; this module only wires widgets, workers and layers.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from napari.qt.threading import create_worker
from napari.utils.notifications import show_error, show_info
from qtpy.QtCore import Qt
from qtpy.QtWidgets import (QCheckBox, QComboBox, QDoubleSpinBox, QFileDialog, QFormLayout, QGroupBox,
                            QHBoxLayout, QLabel, QLineEdit, QProgressBar, QPushButton, QSlider, QSpinBox,
                            QVBoxLayout, QWidget)

from ..device import DEVICE_CHOICES
from ..engine import LatentFocus
from ..errors import InputError
from ..models import list_models
from . import layers as L
from .events import model_events
from .jobs import T_MAX, LiveJob, LiveResult, deblur_stack, describe_t, latent_view, synthesize_levels
from .latent_plot import LatentPlot
from .lifetime import ClosingWatch
from .live import LiveDecoder
from .planes import blurrier_neighbour, parse_planes

SLIDER_STEPS = 100  # slider ticks per unit of t
LOAD_FOLDER = "Load from folder..."
CACHE_SIZE = 4  # plane pairs whose latents are kept


class ModelCombo(QComboBox):
    """Model names from :func:`list_models`, refreshed whenever the list opens, plus a folder entry."""

    def __init__(self, parent=None):
        super().__init__(parent)
        self.refresh()

    def refresh(self) -> None:
        current = self.currentData()
        names = list_models()
        folders = [self.itemData(i) for i in range(self.count()) if self.itemData(i) and self.itemData(i) not in names]
        self.blockSignals(True)
        self.clear()
        for name in names:
            self.addItem(name, name)
        for path in folders:
            self._insert_folder(self.count(), path)
        self.addItem(LOAD_FOLDER, None)
        index = self.findData(current) if current else self.findData("default")
        self.setCurrentIndex(max(index, 0))
        self.blockSignals(False)

    def add_folder(self, path: str) -> None:
        """Add and choose a model folder (just before the "Load from folder..." entry)."""
        index = self.count() - 1
        self._insert_folder(index, str(path))
        self.setCurrentIndex(index)

    def _insert_folder(self, index: int, path: str) -> None:
        self.insertItem(index, f"{Path(path).name} (folder)", path)
        self.setItemData(index, path, Qt.ItemDataRole.ToolTipRole)

    def showPopup(self):
        self.refresh()
        super().showPopup()


class LatentFocusPanel(QWidget):
    """Dock widget: live latent mixing of two planes, one-click deblurring, blur synthesis, latent view."""

    def __init__(self, napari_viewer):
        super().__init__()
        self.viewer = napari_viewer
        self._engines: dict[tuple, LatentFocus] = {}
        self._failed: dict[tuple, str] = {}
        self._latents: dict[tuple, dict] = {}
        self._norms: dict[tuple, object] = {}
        self._batch = None
        self._on_batch_done = None
        self._stopped = False
        self._live = LiveDecoder(self._show_live, self._report)
        self._build()
        self._connect_viewer()
        self._refresh_layers()
        self._on_layer_changed(self.layer_combo.currentText())
        self._load_engine()
        ClosingWatch(self, self.stop)

    # -- layout ----------------------------------------------------------------------------------
    def _build(self) -> None:
        self.layer_combo = QComboBox()
        self.sharp_spin = QSpinBox()
        self.blurry_spin = QSpinBox()
        self.sharp_spin.setToolTip("plane B: the sharper plane, reached at t = 1")
        self.blurry_spin.setToolTip("plane C: the blurrier plane, reached at t = 0")
        self.follow_check = QCheckBox("follow viewer")
        self.follow_check.setToolTip("set plane B to the plane the viewer shows")
        self.follow_check.setChecked(True)
        planes = QHBoxLayout()
        planes.addWidget(QLabel("B"))
        planes.addWidget(self.sharp_spin)
        planes.addWidget(QLabel("C"))
        planes.addWidget(self.blurry_spin)
        planes.addWidget(self.follow_check)

        self.model_combo = ModelCombo()
        self.device_combo = QComboBox()
        self.device_combo.addItems(DEVICE_CHOICES)
        self.device_label = QLabel("no model loaded")
        self.device_label.setWordWrap(True)
        model_row = QHBoxLayout()
        model_row.addWidget(self.model_combo, 1)
        model_row.addWidget(self.device_combo)

        self.slider = QSlider(Qt.Orientation.Horizontal)
        self.slider.setRange(0, int(T_MAX * SLIDER_STEPS))
        self.slider.setValue(SLIDER_STEPS)
        self.slider.setTickInterval(SLIDER_STEPS)
        self.slider.setTickPosition(QSlider.TickPosition.TicksBelow)
        self.slider.setToolTip("0: plane C, 1: plane B, above 1: beyond B (deblurring)")
        self.t_label = QLabel()

        form = QFormLayout()
        form.addRow("Layer", self.layer_combo)
        form.addRow("Planes", planes)
        form.addRow("Model", model_row)
        form.addRow("Device", self.device_label)
        form.addRow("t", self.slider)
        form.addRow("", self.t_label)

        self.range_edit = QLineEdit()
        self.range_edit.setPlaceholderText("all planes, or e.g. 0-3,5")
        self.deblur_button = QPushButton("Deblur selected planes")
        self.strength_spin = QDoubleSpinBox()
        self.strength_spin.setRange(0.05, 1.0)
        self.strength_spin.setSingleStep(0.05)
        self.strength_spin.setValue(1.0)
        self.strength_spin.setToolTip("fraction of the latent step to the in-focus plane: 1 is the paper's "
                                      "extrapolation; set to the model's calibrated value when a model loads")
        self.levels_spin = QSpinBox()
        self.levels_spin.setRange(2, 64)
        self.levels_spin.setValue(5)
        self.synth_button = QPushButton("Synthesize blur")
        self.progress = QProgressBar()
        self.progress.setFormat("%v / %m")
        self.cancel_button = QPushButton("Cancel")
        self.cancel_button.setEnabled(False)
        batch = QFormLayout()
        batch.addRow("Range", self.range_edit)
        deblur_row = QHBoxLayout()
        deblur_row.addWidget(self.deblur_button, 1)
        deblur_row.addWidget(QLabel("strength"))
        deblur_row.addWidget(self.strength_spin)
        batch.addRow(deblur_row)
        levels = QHBoxLayout()
        levels.addWidget(QLabel("Levels"))
        levels.addWidget(self.levels_spin)
        levels.addWidget(self.synth_button, 1)
        batch.addRow(levels)
        progress = QHBoxLayout()
        progress.addWidget(self.progress, 1)
        progress.addWidget(self.cancel_button)
        batch.addRow(progress)
        batch_box = QGroupBox("Whole stack")
        batch_box.setLayout(batch)

        self.view_button = QPushButton("Latent view")
        self.plot = LatentPlot()
        self.scores_label = QLabel("LDS 1 and APD 0: latents on a line at even steps")
        self.scores_label.setWordWrap(True)
        view = QVBoxLayout()
        view.addWidget(self.view_button)
        view.addWidget(self.plot)
        view.addWidget(self.scores_label)
        view_box = QGroupBox("Latents of all planes (PCA)")
        view_box.setLayout(view)

        self.status = QLabel()
        self.status.setWordWrap(True)
        root = QVBoxLayout(self)
        root.addLayout(form)
        root.addWidget(batch_box)
        root.addWidget(view_box)
        root.addWidget(self.status)
        root.addStretch(1)

        self.layer_combo.currentTextChanged.connect(self._on_layer_changed)
        self.sharp_spin.valueChanged.connect(self._on_sharp_changed)
        self.blurry_spin.valueChanged.connect(lambda _: self.plot.mark(self.planes()))
        self.follow_check.toggled.connect(lambda on: on and self._follow_viewer())
        self.model_combo.activated.connect(self._on_model_chosen)
        self.device_combo.currentTextChanged.connect(lambda _: self._load_engine())
        self.slider.valueChanged.connect(self._on_slider)
        self.slider.sliderReleased.connect(lambda: self.request_live(preview=False))
        self.deblur_button.clicked.connect(self.deblur)
        self.synth_button.clicked.connect(self.synthesize)
        self.view_button.clicked.connect(self.show_latent_view)
        self.cancel_button.clicked.connect(self.cancel)
        self._update_t_label()

    def _viewer_connections(self) -> list:
        """(event emitter, callback) pairs the panel listens to; connected on creation, cut on close."""
        pairs = [(self.viewer.layers.events.inserted, self._on_inserted),
                 (self.viewer.layers.events.removed, self._on_removed),
                 (model_events.changed, self._on_models_changed),
                 (self.viewer.dims.events.current_step, self._follow_viewer)]
        for layer in self.viewer.layers:
            pairs += self._layer_connections(layer)
        return pairs

    def _layer_connections(self, layer) -> list:
        return [(layer.events.name, self._refresh_layers), (layer.events.data, self._on_data)]

    def _connect_viewer(self) -> None:
        for emitter, callback in self._viewer_connections():
            emitter.connect(callback)

    def _disconnect_viewer(self) -> None:
        for emitter, callback in self._viewer_connections():
            emitter.disconnect(callback)

    # -- state -----------------------------------------------------------------------------------
    @property
    def t(self) -> float:
        return self.slider.value() / SLIDER_STEPS

    @property
    def busy(self) -> bool:
        """True while a live decode or a stack job runs."""
        return self._live.busy or self._batch is not None

    def layer(self):
        name = self.layer_combo.currentText()
        return self.viewer.layers[name] if name in self.viewer.layers else None

    def planes(self) -> tuple[int, int]:
        return self.sharp_spin.value(), self.blurry_spin.value()

    def _stack(self, layer) -> tuple[np.ndarray, tuple]:
        lead = L.leading_index(layer, self.viewer)
        return L.stack_of(layer, lead), lead

    # -- layers and planes -----------------------------------------------------------------------
    def _on_inserted(self, event) -> None:
        for emitter, callback in self._layer_connections(event.value):
            emitter.connect(callback)
        self._refresh_layers()

    def _on_removed(self, event) -> None:
        self._forget()
        self._refresh_layers()

    def _on_data(self, event) -> None:
        if L.is_stack_layer(event.source):
            self._forget()

    def _forget(self) -> None:
        """Drop cached latents and normalisations (their keys hold ids of live layers and arrays)."""
        self._latents.clear()
        self._norms.clear()

    def _refresh_layers(self, event=None) -> None:
        names = [layer.name for layer in self.viewer.layers if L.is_stack_layer(layer)]
        current = self.layer_combo.currentText()
        self.layer_combo.blockSignals(True)
        self.layer_combo.clear()
        self.layer_combo.addItems(names)
        active = self.viewer.layers.selection.active
        preferred = current if current in names else (active.name if L.is_stack_layer(active) else "")
        self.layer_combo.setCurrentIndex(max(self.layer_combo.findText(preferred), 0))
        self.layer_combo.blockSignals(False)
        if self.layer_combo.currentText() != current:
            self._on_layer_changed(self.layer_combo.currentText())

    def _on_layer_changed(self, name: str) -> None:
        layer = self.layer()
        enabled = layer is not None
        for w in (self.slider, self.deblur_button, self.synth_button, self.view_button):
            w.setEnabled(enabled)
        if layer is None:
            return
        n = layer.data.shape[layer.ndim - 3]
        for spin in (self.sharp_spin, self.blurry_spin):
            spin.setRange(0, n - 1)
        self.plot.set_points(np.zeros((0, 2)), -1, (0.0, 0.0))
        self._set_sharp(L.current_plane(layer, self.viewer), force=True)

    def _follow_viewer(self, event=None) -> None:
        layer = self.layer()
        if layer is not None and self.follow_check.isChecked():
            self._set_sharp(L.current_plane(layer, self.viewer))

    def _set_sharp(self, plane: int, force: bool = False) -> None:
        if plane != self.sharp_spin.value():
            self.sharp_spin.setValue(plane)  # picks the blurrier neighbour
        elif force:
            self._on_sharp_changed(plane)

    def _on_sharp_changed(self, plane: int) -> None:
        layer = self.layer()
        if layer is None or layer.data.shape[layer.ndim - 3] < 2:
            return
        stack, _ = self._stack(layer)
        self.blurry_spin.setValue(blurrier_neighbour(stack, plane))

    # -- model and device ------------------------------------------------------------------------
    def _on_model_chosen(self, index: int) -> None:
        if self.model_combo.itemData(index) is None:
            folder = QFileDialog.getExistingDirectory(self, "Choose a model folder (with card.json)")
            if not folder:
                self.model_combo.setCurrentIndex(0)
                return
            self.model_combo.add_folder(folder)
        self._load_engine()

    def engine(self) -> LatentFocus | None:
        """The chosen model on the chosen device, loaded on first use; None (and a notice) if it fails."""
        model, device = self.model_combo.currentData(), self.device_combo.currentText()
        if model is None:
            self.device_label.setText("no model: train one in the Training dock or load a folder")
            return None
        key = (model, device)
        if key in self._failed:
            self.device_label.setText(f"no model loaded: {self._failed[key]}")
            return None
        if key not in self._engines:
            try:
                self._engines[key] = LatentFocus(model, device=device)
            except InputError as exc:
                self._failed[key] = str(exc)
                show_error(f"Latent Focus: {exc}")
                return self.engine()
        engine = self._engines[key]
        self.device_label.setText(engine.device_name)
        return engine

    def _on_models_changed(self, folder: str) -> None:
        """A model was (re)written: forget what was loaded from that folder and re-list the models."""
        for key in [k for k, e in self._engines.items() if Path(e.model_path).resolve() == Path(folder).resolve()]:
            del self._engines[key]
        self.model_combo.refresh()
        self._load_engine()

    def _load_engine(self) -> None:
        """(Re)load the chosen model on the chosen device, retrying one that failed before."""
        self._failed.pop((self.model_combo.currentData(), self.device_combo.currentText()), None)
        self._forget()
        engine = self.engine()
        if engine is not None:
            self.strength_spin.setValue(engine.strength)

    def _normalizer(self, engine: LatentFocus, layer, lead: tuple, stack: np.ndarray):
        key = (id(layer), id(layer.data), lead, id(engine))
        if key not in self._norms:
            self._norms[key] = engine.normalizer(stack)
        return self._norms[key]

    # -- the live slider -------------------------------------------------------------------------
    def _update_t_label(self) -> None:
        mode, alpha = describe_t(self.t)
        self.t_label.setText(f"{mode} α={alpha:.2f}  (t={self.t:.2f})")

    def _on_slider(self, value: int) -> None:
        self._update_t_label()
        self.request_live(preview=self.slider.isSliderDown())

    def request_live(self, preview: bool = False) -> None:
        """Decode the current slider value for the current planes (a preview while dragging)."""
        layer = self.layer()
        sharp, blurry = self.planes()
        if layer is None:
            return
        if sharp == blurry:
            self.status.setText("choose two different planes B and C")
            return
        engine = self.engine()
        if engine is None:
            return
        stack, lead = self._stack(layer)
        key = (id(layer), id(layer.data), lead, sharp, blurry, id(engine))
        encodings = self._latents.get(key)
        copies = (None, None) if encodings else [np.array(stack[i], dtype=np.float32) for i in (sharp, blurry)]
        self._live.request(LiveJob(
            engine=engine, key=key, target=L.output_name(layer.name, sharp, blurry), source=layer.name,
            planes=(sharp, blurry), t=self.t, preview=preview, shape=stack.shape[1:],
            normalizer=self._normalizer(engine, layer, lead, stack), encodings=encodings,
            sharp=copies[0], blurry=copies[1]))
        if encodings is None:
            self.status.setText(f"encoding planes {sharp} and {blurry} ...")

    def _show_live(self, result: LiveResult) -> None:
        job = result.job
        source = self.viewer.layers[job.source] if job.source in self.viewer.layers else None
        if source is not None and job.key[:2] == (id(source), id(source.data)):
            self._latents[job.key] = result.encodings
            while len(self._latents) > CACHE_SIZE:
                self._latents.pop(next(iter(self._latents)))
        mode, alpha = describe_t(job.t)
        metadata = {"source": job.source, "planes": list(job.planes), "t": job.t, "alpha": alpha,
                    "mode": mode, "model": job.engine.name, "preview": job.preview}
        if job.target not in self.viewer.layers and source is None:
            return
        template = L.plane_template(source) if source is not None else {}
        L.show_plane(self.viewer, job.target, result.image, template, metadata)
        self.status.setText(f"{job.target}: {mode} α={alpha:.2f}" + (" (preview)" if job.preview else ""))

    # -- stack jobs ------------------------------------------------------------------------------
    def _snapshot(self):
        """The chosen layer, a copy of its stack and the engine, or None when something is missing."""
        layer = self.layer()
        engine = self.engine() if layer is not None else None
        if layer is None or engine is None:
            return None
        stack, lead = self._stack(layer)
        return layer, np.array(stack, dtype=np.float32), engine, self._normalizer(engine, layer, lead, stack)

    def deblur(self) -> None:
        """Deblur the planes typed in the range field (all when empty) into a new stack layer."""
        snap = self._snapshot()
        if snap is None:
            return
        layer, stack, engine, norm = snap
        try:
            planes = parse_planes(self.range_edit.text(), len(stack))
        except InputError as exc:
            show_error(str(exc))
            return
        name, template = f"{layer.name} deblurred", L.stack_template(layer, planes[0])
        meta = {"source": layer.name, "planes": planes, "model": engine.name, "mode": "deblurring"}

        def done(result):
            out, info = result
            self.viewer.add_image(out, name=name, metadata={**meta, **info}, **template)

        args = (engine, stack, planes, L.z_positions(layer), norm, self.strength_spin.value())
        self._run_batch(deblur_stack, args, done,
                        f"deblurring {len(planes)} planes of {layer.name}")

    def synthesize(self) -> None:
        """Decode evenly spaced mixtures from plane B (t=1) to plane C (t=0) into a new stack layer."""
        snap = self._snapshot()
        if snap is None:
            return
        layer, stack, engine, norm = snap
        sharp, blurry = self.planes()
        if sharp == blurry:
            show_error("choose two different planes B and C")
            return
        name, template = f"{layer.name} blur synthesis [{sharp},{blurry}]", L.stack_template(layer)
        meta = {"source": layer.name, "planes": [sharp, blurry], "model": engine.name, "mode": "blur synthesis"}

        def done(result):
            out, ts = result
            self.viewer.add_image(out, name=name, metadata={**meta, "t": ts.tolist(), "alpha": ts.tolist()},
                                  **template)

        self._run_batch(synthesize_levels, (engine, stack[sharp], stack[blurry], self.levels_spin.value(), norm),
                        done, f"synthesising blur between planes {sharp} and {blurry}")

    def show_latent_view(self) -> None:
        """Project the latents of every plane on their two main axes and score their linearity."""
        snap = self._snapshot()
        if snap is None:
            return
        layer, stack, engine, norm = snap

        def done(view):
            self.plot.set_points(view.coords, view.focus, view.explained)
            self.plot.mark(self.planes())
            lines = [f"{side}: LDS {geo.lds:.3f}, APD {geo.apd:.3f}"
                     + (f" ({geo.apd_spaced:.3f} at the planes' z spacing)" if view.spaced else "")
                     for side, geo in view.scores.items()]
            lines = lines or ["too few planes on either side of focus to score"]
            self.scores_label.setText("\n".join([f"focus plane {view.focus}", *lines]))

        self._run_batch(latent_view, (engine, stack), done, f"encoding the planes of {layer.name}",
                        kwargs={"normalizer": norm, "z_um": L.z_positions(layer)})

    def _run_batch(self, job, args: tuple, on_done, what: str, kwargs: dict | None = None) -> None:
        if self._batch is not None:
            show_info("Latent Focus: a job is already running; wait for it or press Cancel")
            return
        worker = create_worker(job, *args, **(kwargs or {}), _start_thread=False)
        worker.yielded.connect(self._on_progress)
        worker.returned.connect(self._batch_returned)
        worker.errored.connect(self._report)
        worker.aborted.connect(self._batch_aborted)
        worker.finished.connect(self._batch_finished)
        self._batch, self._on_batch_done = worker, on_done
        self.progress.setValue(0)
        self.cancel_button.setEnabled(True)
        self.status.setText(what + " ...")
        worker.start()

    def _on_progress(self, step: tuple[int, int]) -> None:
        done, total = step
        self.progress.setMaximum(total)
        self.progress.setValue(done)

    def _batch_returned(self, result) -> None:
        if not self._stopped:
            self._on_batch_done(result)

    def _batch_aborted(self) -> None:
        self.status.setText(self.status.text().removesuffix(" ...") + ": cancelled")

    def _batch_finished(self) -> None:
        self._batch = self._on_batch_done = None
        self.cancel_button.setEnabled(False)
        if self.status.text().endswith(" ..."):
            self.status.setText(self.status.text().removesuffix(" ...") + ": done")

    def cancel(self) -> None:
        """Stop the running stack job after the plane it is working on."""
        if self._batch is not None:
            self._batch.quit()

    def _report(self, exc: Exception) -> None:
        if self._stopped:
            return
        message = str(exc) if isinstance(exc, InputError) else f"{type(exc).__name__}: {exc}"
        self.status.setText(message)
        show_error(f"Latent Focus: {message}")

    # -- closing ---------------------------------------------------------------------------------
    def stop(self) -> None:
        """Stop all workers and let go of the viewer's events; results still in flight are dropped."""
        if self._stopped:
            return
        self._stopped = True
        self._live.stop()
        self.cancel()
        self._disconnect_viewer()
