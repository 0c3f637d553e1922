"""The Latent focus panel: pick a layer, a channel and a method, then restore planes or move through latent space.

Every registered method (:mod:`latent_focus.methods`) is offered with a form built from its ``Params``.
Pair methods act on planes B (sharper) and C (blurrier) or on each selected plane with its blurrier
neighbour; single-plane methods on the current plane or the selected planes. For the latent method a
slider mixes the latents of B and C live as ``t * z_B + (1 - t) * z_C`` (t in [0, 1] synthesises blur
between C and B, t > 1 deblurs beyond B), and a latent view plots the latents of every plane. All maths
runs in the Qt-free core; this module wires widgets, workers and layers. Results always go to new
layers placed at their source planes' z, never over the user's data.
"""

from __future__ import annotations

import importlib
from pathlib import Path

import numpy as np
from napari.qt.threading import create_worker
from napari.utils.notifications import show_error
from qtpy.QtCore import Qt
from qtpy.QtWidgets import (
    QCheckBox,
    QComboBox,
    QFileDialog,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QProgressBar,
    QPushButton,
    QSlider,
    QSpinBox,
    QTabWidget,
    QVBoxLayout,
    QWidget,
)

from ..adapt import DEFAULT_MINUTES as ADAPT_MINUTES
from ..adapt import adapt
from ..device import DEVICE_CHOICES
from ..errors import InputError
from ..focus import blurrier_neighbour, parse_planes
from ..io import Stack
from ..latent import describe_t
from ..methods import PAIR, get_method, list_methods, load_method
from ..methods.base import Progress
from ..methods.latent.jobs import T_MAX, LiveJob, LiveResult, latent_view, synthesize_levels
from ..models import find_model, list_models, model_family, read_card, user_models_dir
from . import layers as L
from .events import model_events, panel_state
from .latent_plot import LatentPlot
from .lifetime import ClosingWatch, wait_for_workers
from .live import LiveDecoder
from .method_form import form_params, params_form
from .scrolling import ScrollingDock

SLIDER_STEPS = 100  # slider ticks per unit of t
LOAD_FOLDER = "Load from folder..."
CACHE_SIZE = 4  # plane pairs whose latents are kept
STALE_OPACITY = 0.35  # opacity of a live result whose planes are no longer the chosen ones


def _drive(gen):
    """A generator function around a generator object, so napari's ``create_worker`` runs it."""
    return (yield from gen)


class ModelCombo(QComboBox):
    """Models the current method can load, refreshed whenever the list opens, plus a folder entry."""

    def __init__(self, parent=None):
        super().__init__(parent)
        self.family = ""
        self.refresh()

    def refresh(self) -> None:
        current = self.currentData()
        names = [n for n, folder in list_models().items() if self._fits(folder)]
        folders = [self.itemData(i) for i in range(self.count())
                   if self.itemData(i) and self.itemData(i) not in names and Path(self.itemData(i)).is_dir()]
        self.blockSignals(True)
        self.clear()
        for name in names:
            self.addItem(name, name)
        for path in folders:
            self._insert_folder(self.count(), path)
        self.addItem(LOAD_FOLDER, None)
        index = self.findData(current) if current else -1
        if index < 0:
            index = self.findData("default")
        self.setCurrentIndex(max(index, 0))
        self.blockSignals(False)

    def _fits(self, folder) -> bool:
        return not self.family or model_family(folder) == self.family

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


class LatentFocusPanel(ScrollingDock):
    """Dock widget: restore planes with any method; live latent mixing, blur synthesis and latent view."""

    def __init__(self, napari_viewer):
        super().__init__()
        self.viewer = napari_viewer
        self._failed: dict[tuple, str] = {}
        self._axes_key, self._axes = None, None
        self._ready: dict[tuple, object] = {}  # loaded methods by (method, model, device)
        self._latents: dict[tuple, dict] = {}
        self._norms: dict[tuple, object] = {}
        self._job = None
        self._on_job_done = None
        self._loader = None
        self._loader_key = None
        self._after_load: list = []
        self._stopped = False
        self._section = None
        self._live_key = None
        self._live = LiveDecoder(self._show_live, self._report)
        self._build()
        self._connect_viewer()
        self._refresh_layers()
        self._on_method_changed()
        ClosingWatch(self, self.stop)

    # -- layout ----------------------------------------------------------------------------------
    def _build(self) -> None:
        self.layer_combo = QComboBox()
        self.channel_combo = QComboBox()
        self.channel_combo.setToolTip("the channel of a multi-channel layer that is restored")
        self.axes_label = QLabel()
        self.axes_label.setWordWrap(True)
        self.method_combo = QComboBox()
        for cls in list_methods():
            self.method_combo.addItem(cls.name, cls.name)
            self.method_combo.setItemData(self.method_combo.count() - 1, cls.description,
                                          Qt.ItemDataRole.ToolTipRole)
        self.model_combo = ModelCombo()
        self.device_combo = QComboBox()
        self.device_combo.addItems(DEVICE_CHOICES)
        self.device_combo.setToolTip("auto tries CUDA, then Apple MPS, then the CPU")
        self.model_label = QLabel("no model loaded")
        self.model_label.setWordWrap(True)
        self.adapt_button = QPushButton("Adapt to this stack")
        self.adapt_button.setToolTip(
            f"fine-tune the chosen model on this layer's own planes for about {ADAPT_MINUTES:g} minutes (its "
            "sharper planes teach its blurrier ones; no in-focus reference needed), save it as a user model "
            "and use it from then on")
        model_row = QHBoxLayout()
        model_row.addWidget(self.model_combo, 1)
        model_row.addWidget(self.device_combo)

        top = QFormLayout()
        top.addRow("Layer", self.layer_combo)
        top.addRow("Channel", self.channel_combo)
        top.addRow("", self.axes_label)
        top.addRow("Method", self.method_combo)
        top.addRow("Model", model_row)
        top.addRow("", self.model_label)
        top.addRow("", self.adapt_button)

        # -- the Restore tab: planes, the method's options, its section, progress
        self.sharp_spin, self.blurry_spin = QSpinBox(), QSpinBox()
        self.sharp_spin.setToolTip("plane B: the sharper plane (t = 1 on the slider)")
        self.blurry_spin.setToolTip("plane C: the blurrier plane (t = 0 on the slider)")
        self.follow_check = QCheckBox("follow viewer")
        self.follow_check.setToolTip("plane B is the plane the viewer shows, C its blurrier neighbour")
        self.follow_check.setChecked(True)
        pair_row = QHBoxLayout()
        for w in (QLabel("B"), self.sharp_spin, QLabel("C"), self.blurry_spin):
            pair_row.addWidget(w)
        self.pair_widget = QWidget()
        self.pair_widget.setLayout(pair_row)
        pair_row.setContentsMargins(0, 0, 0, 0)
        self.range_edit = QLineEdit()
        self.range_edit.setPlaceholderText("all planes, or e.g. 0-3,5")
        self.form_holder = QVBoxLayout()
        self.section_holder = QVBoxLayout()
        self.one_button = QPushButton()
        self.many_button = QPushButton("Deblur range")
        self.progress = QProgressBar()
        self.progress.setFormat("%p%")
        self.progress.setValue(0)
        self.cancel_button = QPushButton("Cancel")
        self.cancel_button.setEnabled(False)
        self.note_label = QLabel()
        self.note_label.setWordWrap(True)
        restore = QFormLayout()
        restore.addRow("Planes", self.pair_widget)
        restore.addRow("", self.follow_check)
        self._restore_form = restore
        restore.addRow("Range", self.range_edit)
        buttons = QHBoxLayout()
        buttons.addWidget(self.one_button)
        buttons.addWidget(self.many_button)
        restore_box = QVBoxLayout()
        restore_box.addLayout(restore)
        restore_box.addLayout(self.form_holder)
        restore_box.addLayout(buttons)
        restore_box.addWidget(self.note_label)
        restore_box.addLayout(self.section_holder)
        restore_box.addStretch(1)
        restore_tab = QWidget()
        restore_tab.setLayout(restore_box)

        # -- the Live tab (latent method): the slider and blur synthesis
        self.slider = QSlider(Qt.Orientation.Horizontal)
        self.slider.setRange(0, int(T_MAX * SLIDER_STEPS))
        self.slider.setValue(SLIDER_STEPS)
        self.slider.setTickInterval(SLIDER_STEPS)
        self.slider.setTickPosition(QSlider.TickPosition.TicksBelow)
        self.slider.setToolTip("0: plane C, 1: plane B, above 1: beyond B towards focus (Eq. 2 with alpha = 1/t)")
        self.t_label = QLabel()
        self.levels_spin = QSpinBox()
        self.levels_spin.setRange(2, 64)
        self.levels_spin.setValue(5)
        self.synth_button = QPushButton("Synthesize blur")
        self.synth_button.setToolTip("decode evenly spaced mixtures from plane B (t = 1) to plane C (t = 0)")
        live = QFormLayout()
        live.addRow("t", self.slider)
        live.addRow("", self.t_label)
        levels = QHBoxLayout()
        levels.addWidget(QLabel("Levels"))
        levels.addWidget(self.levels_spin)
        levels.addWidget(self.synth_button, 1)
        live.addRow(levels)
        live_tab = QWidget()
        live_tab.setLayout(live)

        # -- the Latent view tab
        self.view_button = QPushButton("Latent view")
        self.plot = LatentPlot()
        self.scores_label = QLabel()
        self.scores_label.setWordWrap(True)
        view = QVBoxLayout()
        view.addWidget(self.view_button)
        view.addWidget(self.plot)
        view.addWidget(self.scores_label)
        view_tab = QWidget()
        view_tab.setLayout(view)

        self.tabs = QTabWidget()
        self.tabs.addTab(restore_tab, "Restore")
        self.tabs.addTab(live_tab, "Live")
        self.tabs.addTab(view_tab, "Latent view")

        progress = QHBoxLayout()
        progress.addWidget(self.progress, 1)
        progress.addWidget(self.cancel_button)
        self.status = QLabel()
        self.status.setWordWrap(True)
        inner = QWidget()
        root = QVBoxLayout(inner)
        root.addLayout(top)
        root.addWidget(self.tabs)
        root.addLayout(progress)
        root.addWidget(self.status)
        root.addStretch(1)
        self.set_content(inner)

        self.layer_combo.currentTextChanged.connect(self._on_layer_changed)
        self.channel_combo.currentIndexChanged.connect(lambda _: self._on_channel_changed())
        self.method_combo.currentIndexChanged.connect(lambda _: self._on_method_changed())
        self.sharp_spin.valueChanged.connect(self._on_sharp_changed)
        self.blurry_spin.valueChanged.connect(lambda _: self._on_planes_changed())
        self.follow_check.toggled.connect(lambda on: on and self._follow_viewer())
        self.model_combo.activated.connect(self._on_model_chosen)
        self.device_combo.currentTextChanged.connect(lambda _: self._load_method())
        self.slider.valueChanged.connect(self._on_slider)
        self.slider.sliderReleased.connect(lambda: self.request_live(preview=False))
        self.one_button.clicked.connect(self.restore_one)
        self.many_button.clicked.connect(self.restore_selected)
        self.synth_button.clicked.connect(self.synthesize)
        self.view_button.clicked.connect(self.show_latent_view)
        self.cancel_button.clicked.connect(self.cancel)
        self.adapt_button.clicked.connect(self.adapt_to_stack)
        self._reset_scores()
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
        """True while a live decode, a job or a model load runs."""
        return self._live.busy or self._job is not None or self._loader is not None

    @property
    def method_class(self):
        return get_method(self.method_combo.currentData())

    def layer(self):
        name = self.layer_combo.currentText()
        return self.viewer.layers[name] if name in self.viewer.layers else None

    def planes(self) -> tuple[int, int]:
        return self.sharp_spin.value(), self.blurry_spin.value()

    def channel(self) -> int:
        return max(self.channel_combo.currentIndex(), 0)

    def axes(self, layer) -> L.Axes:
        """``layer``'s axes, read once per layer and shape (reading them may open the file)."""
        key = (id(layer), layer.data.shape)
        if self._axes_key != key:
            self._axes_key, self._axes = key, L.layer_axes(layer)
        return self._axes

    def stack(self, copy: bool = True) -> Stack | None:
        """The chosen layer's (z, y, x) stack of the chosen channel (a copy unless ``copy`` is false)."""
        layer = self.layer()
        if layer is None:
            return None
        return L.stack_of(layer, self.viewer, self.axes(layer), self.channel(), copy=copy)

    def current_plane(self) -> int:
        layer = self.layer()
        return 0 if layer is None else L.current_plane(layer, self.viewer, self.axes(layer))

    def model(self) -> str | None:
        return self.model_combo.currentData() if self.method_class.uses_model else None

    def device(self) -> str:
        return self.device_combo.currentText()

    # -- layers, channels and planes -------------------------------------------------------------
    def _on_inserted(self, event) -> None:
        for emitter, callback in self._layer_connections(event.value):
            emitter.connect(callback)
        self._refresh_layers()

    def _on_removed(self, event) -> None:
        self._forget()
        self._refresh_layers()

    def _on_data(self, event) -> None:
        if L.is_image_plane(event.source) and not L.is_plugin_output(event.source):
            self._forget()

    def _forget(self) -> None:
        """Drop cached latents and normalisations (their keys hold ids of live layers and arrays)."""
        self._latents.clear()
        self._norms.clear()

    def _refresh_layers(self, event=None) -> None:
        names = [layer.name for layer in self.viewer.layers
                 if L.is_image_plane(layer) and not L.is_plugin_output(layer)]
        current = self.layer_combo.currentText()
        self.layer_combo.blockSignals(True)
        self.layer_combo.clear()
        self.layer_combo.addItems(names)
        active = self.viewer.layers.selection.active
        preferred = current if current in names else (active.name if active is not None and active.name in names
                                                       else (names[-1] if names else ""))
        self.layer_combo.setCurrentIndex(max(self.layer_combo.findText(preferred), 0))
        self.layer_combo.blockSignals(False)
        if self.layer_combo.currentText() != current:
            self._on_layer_changed(self.layer_combo.currentText())

    def _on_layer_changed(self, name: str) -> None:
        layer = self.layer()
        self._reset_scores()
        self.progress.setValue(0)
        self.note_label.clear()
        self._set_status("")
        self._live_key = None
        if layer is None:
            self.channel_combo.clear()
            self.axes_label.setText("open a z-stack or an image")
            self._update_enabled()
            return
        axes = self.axes(layer)
        n_c = L.n_channels(layer, axes)
        self.channel_combo.blockSignals(True)
        self.channel_combo.clear()
        self.channel_combo.addItems([f"channel {c}" for c in range(n_c)])
        self.channel_combo.setCurrentIndex(L.current_channel(layer, self.viewer, axes))
        self.channel_combo.blockSignals(False)
        self.channel_combo.setEnabled(n_c > 1)
        n = L.n_planes(layer, axes)
        z = L.z_positions(layer, axes)
        where = "z positions recorded" if z is not None else "no z positions: distances in planes"
        self.axes_label.setText(f"axes {axes.described}, {n} plane{'s' * (n != 1)}, {n_c} channel"
                                f"{'s' * (n_c != 1)}; {where}")
        for spin in (self.sharp_spin, self.blurry_spin):
            spin.blockSignals(True)
            spin.setRange(0, max(n - 1, 0))
            spin.blockSignals(False)
        self._set_sharp(L.current_plane(layer, self.viewer, axes), force=True)
        self._update_enabled()

    def _on_channel_changed(self) -> None:
        self._forget()
        self._reset_scores()
        self._live_key = None
        self._on_sharp_changed(self.sharp_spin.value())

    def _follow_viewer(self, event=None) -> None:
        layer = self.layer()
        if layer is not None and self.follow_check.isChecked():
            self._set_sharp(L.current_plane(layer, self.viewer, self.axes(layer)))

    def _set_sharp(self, plane: int, force: bool = False) -> None:
        if plane != self.sharp_spin.value():
            self.sharp_spin.setValue(plane)  # picks the blurrier neighbour
        elif force:
            self._on_sharp_changed(plane)

    def _on_sharp_changed(self, plane: int) -> None:
        stack = self.stack(copy=False)
        if stack is not None and stack.n_planes >= 2:
            self.blurry_spin.blockSignals(True)
            self.blurry_spin.setValue(blurrier_neighbour(stack.data, plane))
            self.blurry_spin.blockSignals(False)
        self._on_planes_changed()

    def _on_planes_changed(self) -> None:
        """B or C changed: mark the live result stale and decode the new pair when the slider is in use."""
        self.plot.mark(self.planes())
        self._mark_live_stale()
        if self._live_key is not None and self.method_class.name == "latent":
            self.request_live(preview=False)

    def _update_enabled(self) -> None:
        layer = self.layer()
        cls = self.method_class
        n = 0 if layer is None else L.n_planes(layer, self.axes(layer))
        pair = cls.input == PAIR
        latent = cls.name == "latent"
        for w in (self.pair_widget, self.follow_check):  # the row with its label
            w.setVisible(pair)
            label = self._restore_form.labelForField(w)
            if label is not None:
                label.setVisible(pair)
        self.one_button.setText("Deblur B with C" if pair else "Deblur this plane")
        self.adapt_button.setVisible(cls.model_family == "autoencoder")
        self.adapt_button.setEnabled(layer is not None and n >= 3)
        for w in (self.one_button, self.many_button):
            w.setEnabled(layer is not None and (n >= 2 or not pair))
        for i in (1, 2):
            self.tabs.setTabEnabled(i, latent and n >= 2)
        self.tabs.setTabToolTip(1, "" if latent else "the live slider belongs to the latent method")
        self.tabs.setTabToolTip(2, "" if latent else "the latent view belongs to the latent method")
        if not self.tabs.isTabEnabled(self.tabs.currentIndex()):
            self.tabs.setCurrentIndex(0)

    # -- method, model and device ----------------------------------------------------------------
    def _on_method_changed(self) -> None:
        cls = self.method_class
        self.note_label.clear()  # it spoke of the previous method's results
        self.model_combo.family = cls.model_family
        self.model_combo.refresh()
        self.model_combo.setEnabled(cls.uses_model)
        self._set_form(cls.Params())
        self._set_section(cls.napari_section)
        self._update_enabled()
        self._load_method()

    def _set_form(self, params) -> None:
        while self.form_holder.count():
            item = self.form_holder.takeAt(0)
            if item.widget() is not None:  # out of sight at once; Qt deletes it when the event loop is back
                item.widget().hide()
                item.widget().setParent(None)
                item.widget().deleteLater()
        self.form = params_form(params)
        self.form_holder.addWidget(self.form.native)

    def _set_section(self, target: str) -> None:
        if self._section is not None:
            self._section.setParent(None)
            self._section.deleteLater()
            self._section = None
        if target:
            module, _, name = target.partition(":")
            self._section = getattr(importlib.import_module(module), name)(self)
            self.section_holder.addWidget(self._section)

    def _on_model_chosen(self, index: int) -> None:
        if self.model_combo.itemData(index) is None:
            folder = QFileDialog.getExistingDirectory(self, "Choose a model folder (with card.json)")
            if not folder:
                self.model_combo.setCurrentIndex(0)
                return
            self.model_combo.add_folder(folder)
        self._load_method()

    def _key(self) -> tuple:
        return (self.method_class.name, self.model(), self.device())

    def _load_method(self) -> None:
        """(Re)load the chosen method with the chosen model on the chosen device, in a worker."""
        self._failed.pop(self._key(), None)
        self._ready.pop(self._key(), None)
        self._forget()
        self.with_method(self._method_loaded)

    def _method_loaded(self, method) -> None:
        panel_state.model = self.model() if self.method_class.name == "latent" else panel_state.model
        name = self._key()[1] or "built in"
        adapted = _adapted_to(self.model()) if self.method_class.model_family == "autoencoder" else None
        if adapted:
            name += f" (adapted to {adapted})"
        self.model_label.setText(f"{name} on {method.device_name}"
                                 if self.method_class.uses_model else f"runs on {method.device_name}")
        self._set_form(method.default_params())

    def with_method(self, then) -> None:
        """Call ``then(method)`` once the chosen method is loaded (loading it in a worker the first time)."""
        key = self._key()
        if key in self._failed:
            self.model_label.setText(f"not loaded: {self._failed[key]}")
            return
        if key in self._ready and self._loader is None:
            then(self._ready[key])
            return
        if self._loader is not None:
            if self._loader_key == key:
                self._after_load.append(then)
            return
        self._loader_key, self._after_load = key, [then]
        self.model_label.setText(f"loading {key[1] or key[0]} ...")
        worker = create_worker(load_method, *key, _start_thread=False, _ignore_errors=True)
        worker.returned.connect(self._loaded)
        worker.errored.connect(self._load_failed)
        worker.finished.connect(self._load_finished)
        self._loader = worker
        worker.start()

    def _loaded(self, method) -> None:
        if self._stopped or self._loader_key != self._key():
            return
        self._ready[self._loader_key] = method
        for then in self._after_load:
            then(method)

    def _load_failed(self, exc: Exception) -> None:
        if self._stopped:
            return
        self._failed[self._loader_key] = str(exc)
        self.model_label.setText(f"not loaded: {exc}")
        show_error(f"Latent Focus: {exc}")

    def _load_finished(self) -> None:
        self._loader = None
        if not self._stopped and self._loader_key != self._key():  # the choice changed while loading
            self._load_method()

    def _on_models_changed(self, folder: str) -> None:
        """A model was (re)written: forget what was loaded from that folder and re-list the models."""
        from ..methods import forget_loaded
        forget_loaded(folder)
        self._ready.clear()
        self.model_combo.refresh()
        self._load_method()

    def _normalizer(self, engine, stack: Stack):
        layer = self.layer()
        key = (id(layer), id(layer.data), self.channel(), L.current_channel(layer, self.viewer, self.axes(layer)),
               id(engine))
        if key not in self._norms:
            self._norms[key] = engine.normalizer(stack.data)
        return self._norms[key]

    # -- restoring planes ------------------------------------------------------------------------
    def params(self):
        """See :class:`latent_focus.napari.context.PanelContext`."""
        return form_params(self.form, self.method_class.Params())

    def _params(self, method):
        try:
            return form_params(self.form, method.default_params())
        except InputError as exc:
            self._set_status(str(exc), error=True)
            return None

    def restore_one(self) -> None:
        """Pair methods: deblur B with C; single-plane methods: the plane the viewer shows."""
        if self.method_class.input == PAIR:
            sharp, blurry = self.planes()
            if sharp == blurry:
                self._set_status("choose two different planes B and C", error=True)
                return
            self._restore([sharp], partner=blurry)
        else:
            self._restore([self.current_plane()])

    def restore_selected(self) -> None:
        """Restore the planes typed in the range field (every plane when it is empty)."""
        stack = self.stack(copy=False)
        if stack is None:
            return
        try:
            planes = parse_planes(self.range_edit.text(), stack.n_planes)
        except InputError as exc:
            self._set_status(str(exc), error=True)
            return
        self._restore(planes)

    def _restore(self, planes: list[int], partner: int | None = None) -> None:
        layer, stack = self.layer(), self.stack()
        if layer is None or stack is None:
            return
        axes, channel = self.axes(layer), self.channel()

        def start(method):
            params = self._params(method)
            if params is None:
                return
            if partner is not None:
                job = _single(method.restore(stack, planes[0], params, partner=partner))
            else:
                job = method.restore_planes(stack, planes, params)

            def done(results):
                images = [r.image for r in results]
                data, place = L.placed(layer, self.viewer, axes, channel, planes, images)
                infos = [r.info for r in results]
                notes = [i["end_of_stack"] for i in infos if "end_of_stack" in i]
                rules = sorted({i.get("rule", "") for i in infos if i.get("rule")})
                meta = {"source": layer.name, "channel": channel, "planes": planes, "method": method.name,
                        "parameters": params.as_dict(), "per_plane": infos, L.PLUGIN_OUTPUT: True}
                name = L.unique_name(self.viewer, f"{layer.name} {method.name}")
                self.viewer.add_image(data, name=name, metadata=meta, **place, **L.display_template(layer))
                self.note_label.setText("\n".join(notes + ([f"rule: {rules[0]}"] if len(rules) == 1 else [])))

            what = (f"{method.name}: plane {planes[0]} with {partner}" if partner is not None
                    else f"{method.name}: {len(planes)} plane{'s' * (len(planes) != 1)} of {layer.name}")
            self.run_job(job, done, what)

        self.with_method(start)

    # -- the live slider (latent method) ---------------------------------------------------------
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
        if layer is None or self.method_class.name != "latent":
            return
        if sharp == blurry:
            self._set_status("choose two different planes B and C", error=True)
            return

        def start(method):
            stack = self.stack(copy=False)
            engine = method.engine
            key = (id(layer), id(layer.data), self.channel(), sharp, blurry, id(engine))
            encodings = self._latents.get(key)
            copies = (None, None) if encodings else [np.array(stack.data[i], dtype=np.float32)
                                                     for i in (sharp, blurry)]
            self._live_key = key
            self._live.request(LiveJob(
                engine=engine, key=key, target=f"{layer.name} latent focus", source=layer.name,
                planes=(sharp, blurry), t=self.t, preview=preview, shape=stack.data.shape[1:],
                normalizer=self._normalizer(engine, stack), encodings=encodings,
                sharp=copies[0], blurry=copies[1]))
            if encodings is None:
                self._set_status(f"encoding planes {sharp} and {blurry} ...")

        self.with_method(start)

    def _mark_live_stale(self) -> None:
        layer = self.layer()
        name = f"{layer.name} latent focus" if layer is not None else None
        if name in self.viewer.layers:
            out = self.viewer.layers[name]
            if tuple(out.metadata.get("planes", ())) != self.planes() or out.metadata.get("channel") != self.channel():
                out.opacity = STALE_OPACITY
                out.metadata["stale"] = True

    def _show_live(self, result: LiveResult) -> None:
        job = result.job
        source = self.viewer.layers[job.source] if job.source in self.viewer.layers else None
        if source is None:
            return
        if job.key[:2] == (id(source), id(source.data)):
            self._latents[job.key] = result.encodings
            while len(self._latents) > CACHE_SIZE:
                self._latents.pop(next(iter(self._latents)))
        if job.key != self._live_key and job.preview:
            return  # a preview of planes no longer chosen
        mode, alpha = describe_t(job.t)
        axes = self.axes(source)
        channel = job.key[2]
        data, place = L.placed(source, self.viewer, axes, channel, [job.planes[0]], [result.image])
        scale, translate = list(place["scale"]), list(place["translate"])
        factor = (job.shape[0] / result.image.shape[0], job.shape[1] / result.image.shape[1])
        for k, f in zip((-2, -1), factor):  # a preview is drawn at low resolution over the same extent
            translate[k] += scale[k] * (f - 1) / 2
            scale[k] *= f
        current = self.planes() == job.planes and channel == self.channel()
        meta = {"source": job.source, "channel": channel, "planes": list(job.planes), "t": job.t, "alpha": alpha,
                "mode": mode, "model": job.engine.name, "preview": job.preview, "stale": not current,
                L.PLUGIN_OUTPUT: True}
        if job.target in self.viewer.layers:
            out = self.viewer.layers[job.target]
            out.metadata.update(meta)
            # each assignment refreshes the layer, so only what changed is set (a slider move: the data)
            if not (np.allclose(out.scale, scale) and np.allclose(out.translate, translate)):
                out.scale, out.translate = scale, translate
            out.data = data
            opacity = 1.0 if current else STALE_OPACITY
            if out.opacity != opacity:
                out.opacity = opacity
        else:
            self.viewer.add_image(data, name=job.target, metadata=meta, scale=scale, translate=translate,
                                  **L.display_template(source))
        self._set_status(f"planes {job.planes[0]}/{job.planes[1]}: {mode} α={alpha:.2f}"
                         + (" (preview)" if job.preview else ""))

    # -- latent jobs -----------------------------------------------------------------------------
    def synthesize(self) -> None:
        """Decode evenly spaced mixtures from plane B (t=1) to plane C (t=0) into a new stack layer."""
        layer, stack = self.layer(), self.stack()
        sharp, blurry = self.planes()
        if layer is None or stack is None:
            return
        if sharp == blurry:
            self._set_status("choose two different planes B and C", error=True)
            return
        axes, channel = self.axes(layer), self.channel()

        def start(method):
            engine = method.engine
            norm = self._normalizer(engine, stack)

            def done(result):
                out, ts = result
                data, place = L.placed_levels(layer, self.viewer, axes, channel, sharp, blurry, list(out))
                meta = {"source": layer.name, "channel": channel, "planes": [sharp, blurry], "model": engine.name,
                        "mode": "blur synthesis", "t": ts.tolist(), "alpha": ts.tolist(), L.PLUGIN_OUTPUT: True,
                        "note": "synthesised levels spread evenly over the z between planes B and C"}
                name = L.unique_name(self.viewer, f"{layer.name} blur synthesis [{sharp},{blurry}]")
                self.viewer.add_image(data, name=name, metadata=meta, **place, **L.display_template(layer))

            self.run_job(synthesize_levels(engine, stack.data[sharp], stack.data[blurry], self.levels_spin.value(),
                                           norm), done, f"synthesising blur between planes {sharp} and {blurry}")

        self.with_method(start)

    def show_latent_view(self) -> None:
        """Project the latents of every plane on their two main axes and score their linearity."""
        layer, stack = self.layer(), self.stack()
        if layer is None or stack is None:
            return

        def start(method):
            engine = method.engine

            def done(view):
                self.plot.set_points(view.coords, view.focus, view.explained)
                self.plot.mark(self.planes())
                lines = [f"{side}: LDS {geo.lds:.3f}, APD {geo.apd:.3f}"
                         + (f" ({geo.apd_spaced:.3f} at the planes' z spacing)" if view.spaced else "")
                         for side, geo in view.scores.items()]
                lines = lines or ["too few planes on either side of focus to score"]
                self.scores_label.setText("\n".join([f"sharpest plane {view.focus}", *lines]))

            z = None if stack.z_um is None else stack.z_um.tolist()
            self.run_job(latent_view(engine, stack.data, normalizer=self._normalizer(engine, stack), z_um=z),
                         done, f"encoding the planes of {layer.name}")

        self.with_method(start)

    # -- adapting the model to the layer's stack --------------------------------------------------
    def adapt_to_stack(self) -> None:
        """Fine-tune the chosen model on the layer's stack, save it as a user model, then use it."""
        layer, stack = self.layer(), self.stack()
        if layer is None or stack is None:
            self._set_status("choose a z-stack layer to adapt to", error=True)
            return
        base = self.model() or "default"
        output = _free_folder(user_models_dir(), f"{_safe_name(layer.name)}-adapted")

        def done(_):
            model_events.changed.emit(str(output))  # re-lists the models here and in the training dock
            index = self.model_combo.findData(f"user:{output.name}")
            if index < 0:
                self.model_combo.add_folder(str(output))
                index = self.model_combo.currentIndex()
            self.model_combo.setCurrentIndex(index)
            self._load_method()

        job = _adapt_progress(adapt(stack, output, base, ADAPT_MINUTES, device=self.device()))
        self.run_job(job, done, f"Adapting {base} to {layer.name} (saved as user:{output.name})")

    def _reset_scores(self) -> None:
        self.plot.set_points(np.zeros((0, 2)), -1, (0.0, 0.0))
        self.scores_label.setText("Press Latent view to plot the latents of every plane and score their linearity "
                                  "(LDS: 1 when on a line; APD: 0 when evenly spaced).")

    # -- jobs: one at a time, with progress and Cancel -------------------------------------------
    def run_job(self, job, on_done, what: str) -> None:
        """Run the generator ``job`` in a worker; ``on_done(result)`` in the UI thread (see PanelContext)."""
        if self._job is not None:
            self._set_status("a job is already running; wait for it or press Cancel", error=True)
            job.close()
            return
        worker = create_worker(_drive, job, _start_thread=False, _ignore_errors=True)
        worker.yielded.connect(self._on_progress)
        worker.returned.connect(self._job_returned)
        worker.errored.connect(self._report)
        worker.aborted.connect(self._job_aborted)
        worker.finished.connect(self._job_finished)
        self._job, self._on_job_done, self._job_what = worker, on_done, what
        self.progress.setValue(0)
        self.cancel_button.setEnabled(True)
        self._set_status(what + " ...")
        worker.start()

    def _on_progress(self, p) -> None:
        self.progress.setMaximum(max(p.total, 1))
        self.progress.setValue(p.done)
        if p.message:
            self.progress.setFormat(f"%p%  {p.message}")

    def _job_returned(self, result) -> None:
        if self._stopped:
            return
        try:
            self._on_job_done(result)
        except InputError as exc:
            self._set_status(str(exc), error=True)
            return
        self._set_status(f"{self._job_what}: done")

    def _job_aborted(self) -> None:
        self._set_status(f"{self._job_what}: cancelled")

    def _job_finished(self) -> None:
        self._job = self._on_job_done = None
        self.cancel_button.setEnabled(False)
        self.progress.setFormat("%p%")

    def cancel(self) -> None:
        """Stop the running job after the step it is working on."""
        if self._job is not None:
            self._job.quit()

    def add_result(self, data: np.ndarray, name: str, planes: list[int], metadata: dict,
                   colormap: str | None = None, opacity: float = 1.0):
        """See :class:`latent_focus.napari.context.PanelContext`."""
        layer = self.layer()
        axes = self.axes(layer)
        images = [data] if data.ndim == 2 else list(data)
        placed, place = L.placed(layer, self.viewer, axes, self.channel(), planes, images)
        display = L.display_template(layer)
        if colormap is not None:
            display = {"colormap": colormap}
        meta = {"source": layer.name, "channel": self.channel(), "planes": planes, **metadata, L.PLUGIN_OUTPUT: True}
        return self.viewer.add_image(placed, name=L.unique_name(self.viewer, name), metadata=meta,
                                     opacity=opacity, **place, **display)

    def _report(self, exc: Exception) -> None:
        if self._stopped:
            return
        message = str(exc) if isinstance(exc, InputError) else f"{type(exc).__name__}: {exc}"
        self._set_status(message, error=True)
        show_error(f"Latent Focus: {message}")

    def _set_status(self, text: str, error: bool = False) -> None:
        self.status.setText(text)
        self.status.setStyleSheet("color: #ff6b6b;" if error else "")

    # -- closing ---------------------------------------------------------------------------------
    def stop(self) -> None:
        """Stop all workers and let go of the viewer's events; results still in flight are dropped."""
        if self._stopped:
            return
        self._stopped = True
        self._live.stop()
        self.cancel()
        if self._loader is not None:
            self._loader.quit()
        self._disconnect_viewer()
        wait_for_workers()


def _adapt_progress(gen):
    """:func:`latent_focus.adapt.adapt`'s training reports as the panel's progress reports."""
    try:
        for p in gen:
            yield Progress(p.step, max(p.total, 1), f"step {p.step} of {p.total}, loss {p.losses['total']:.3f}, "
                                                    f"{p.eta_s:.0f} s left")
    finally:
        gen.close()


def _adapted_to(model: str | None) -> str | None:
    """The stack file a model was adapted to (its card's ``extra.adapted``), else None."""
    try:
        adapted = read_card(find_model(model)).extra.get("adapted")
    except InputError:
        return None
    return Path(adapted["stack"]).name if adapted else None


def _safe_name(name: str) -> str:
    return "".join(c if c.isalnum() or c in "-_." else "-" for c in name).strip("-.") or "stack"


def _free_folder(parent: Path, name: str) -> Path:
    """``parent/name``, or ``parent/name-2``, ``-3``, ... whichever does not exist yet."""
    candidate, k = parent / name, 2
    while candidate.exists():
        candidate, k = parent / f"{name}-{k}", k + 1
    return candidate


def _single(gen):
    """A one-result method generator as a generator returning a one-element list."""
    return [(yield from gen)]
