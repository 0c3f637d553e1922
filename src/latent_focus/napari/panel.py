"""The Latent focus panel: pick a layer, a channel, a method and its model, then restore planes.

The panel is a host. Every registered method (:mod:`latent_focus.methods`) is offered with a form built from its
``Params``; what only one method has (the latent method's live slider, psf-rl's blur map, ...) comes from that
method's section (:mod:`latent_focus.napari.sections`). Pickers and the job row (progress, Cancel, status) sit
in a header that never scrolls; the Restore tab and the section's tabs scroll below it. All maths runs in the
Qt-free core; results always go to new layers placed at their source planes' z, never over the user's data.
"""

from __future__ import annotations

from pathlib import Path

from qtpy.QtCore import Qt
from qtpy.QtWidgets import QComboBox, QFileDialog, QFormLayout, QHBoxLayout, QLabel, QTabWidget, QWidget

from ..device import DEVICE_CHOICES
from ..errors import InputError
from ..methods import PAIR, get_method, list_methods
from ..models import find_model, read_card
from . import layers as L
from .dock import PluginDock
from .events import model_events, panel_state
from .jobs import JobRunner
from .lifetime import ClosingWatch, wait_for_workers
from .loader import MethodLoader
from .pickers import ModelCombo, PlanePicker, SourcePicker
from .restore_tab import RestoreTab
from .sections import SECTIONS


def _adapted_to(model: str | None) -> str | None:
    """The stack file a model was adapted to (its card's ``extra.adapted``), else None."""
    try:
        adapted = read_card(find_model(model)).extra.get("adapted")
    except InputError:
        return None
    return Path(adapted["stack"]).name if adapted else None


class LatentFocusPanel(PluginDock):
    """Dock widget: restore planes with any method; each method's own tools in its section."""

    def __init__(self, napari_viewer):
        super().__init__()
        self.viewer = napari_viewer
        self.section = None
        self._stopped = False
        self.source = SourcePicker(napari_viewer)
        self.pair = PlanePicker(self.source)
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
        self.runner = JobRunner()
        self.loader = MethodLoader(self._key, self._loading, self._method_ready, self._method_failed)
        self.restore = RestoreTab(self)
        self.tabs = QTabWidget()
        self.tabs.addTab(self.restore, "Restore")
        self._build()
        self.source.changed.connect(self._on_source_changed)
        self.pair.changed.connect(lambda: self.section is not None and self.section.planes_changed())
        self.method_combo.currentIndexChanged.connect(lambda _: self._on_method_changed())
        self.model_combo.activated.connect(self._on_model_chosen)
        self.device_combo.currentTextChanged.connect(lambda _: self.loader.reload())
        self.viewer.dims.events.current_step.connect(self.pair.follow)
        model_events.changed.connect(self._on_models_changed)
        self._on_method_changed()
        self._on_source_changed()
        ClosingWatch(self, self.stop)

    def _build(self) -> None:
        model_row = QHBoxLayout()
        model_row.addWidget(self.model_combo, 1)
        model_row.addWidget(self.device_combo)
        self.pickers = QFormLayout()
        self.pickers.addRow("Layer", self.source)
        self.pickers.addRow("Method", self.method_combo)
        self.pickers.addRow("Model", model_row)
        self.pickers.addRow("", self.model_label)
        self.pickers.addRow("Planes", self.pair)
        header = QWidget()
        layout = QFormLayout(header)
        layout.addRow(self.pickers)
        layout.addRow(self.runner)
        self.set_content(self.tabs, header)

    # -- the panel as sections see it (PanelContext) ---------------------------------------------
    def layer(self):
        return self.source.layer()

    def channel(self) -> int:
        return self.source.channel()

    def axes(self, layer) -> L.Axes:
        return self.source.axes(layer)

    def stack(self, copy: bool = True):
        return self.source.stack(copy)

    def current_plane(self) -> int:
        return self.source.current_plane()

    def planes(self) -> tuple[int, int]:
        return self.pair.planes()

    def model(self) -> str | None:
        return self.model_combo.currentData() if self.method_class.uses_model else None

    def choose_model(self, model: str) -> None:
        self.model_combo.choose(model)
        self.loader.reload()

    def device(self) -> str:
        return self.device_combo.currentText()

    def params(self):
        return self.restore.params(self.method_class.Params())

    def run_job(self, job, on_done, what: str) -> None:
        self.runner.run(job, on_done, what)

    def add_result(self, data, name: str, planes: list[int], metadata: dict, colormap: str | None = None,
                   opacity: float = 1.0):
        layer = self.layer()
        images = [data] if data.ndim == 2 else list(data)
        placed, place = L.placed(layer, self.viewer, self.axes(layer), self.channel(), planes, images)
        display = L.display_template(layer) if colormap is None else {"colormap": colormap}
        meta = {"source": layer.name, "channel": self.channel(), "planes": planes, **metadata, L.PLUGIN_OUTPUT: True}
        return self.viewer.add_image(placed, name=L.unique_name(self.viewer, name), metadata=meta,
                                     opacity=opacity, **place, **display)

    def set_status(self, text: str, error: bool = False) -> None:
        self.runner.set_status(text, error)

    def report(self, exc: Exception) -> None:
        self.runner.report(exc)

    # -- state -----------------------------------------------------------------------------------
    @property
    def busy(self) -> bool:
        """True while a job, a model load or a section's own work runs."""
        return self.runner.busy or self.loader.busy or (self.section is not None and self.section.busy)

    @property
    def method_class(self):
        return get_method(self.method_combo.currentData())

    def _key(self) -> tuple:
        return (self.method_class.name, self.model(), self.device())

    def with_method(self, then) -> None:
        """Call ``then(method)`` once the chosen method is loaded (loading it in a worker the first time)."""
        self.loader.with_method(then)

    # -- layer, planes and method ----------------------------------------------------------------
    def _on_source_changed(self) -> None:
        self.runner.reset()
        self.restore.note_label.clear()
        self.pair.reset()
        if self.section is not None:
            self.section.source_changed()
        self._update_enabled()

    def _update_enabled(self) -> None:
        cls = self.method_class
        pair = cls.input == PAIR
        n = self.source.n_planes()
        self.pair.setVisible(pair)
        self.pickers.labelForField(self.pair).setVisible(pair)
        usable = self.source.layer() is not None and (n >= 2 or not pair)
        self.restore.update_for(pair, usable and self.loader.failed() is None)
        for i in range(1, self.tabs.count()):
            self.tabs.setTabEnabled(i, usable)
        if not self.tabs.isTabEnabled(self.tabs.currentIndex()):
            self.tabs.setCurrentIndex(0)

    def _on_method_changed(self) -> None:
        cls = self.method_class
        self.restore.note_label.clear()  # it spoke of the previous method's results
        self.model_combo.family = cls.model_family
        self.model_combo.refresh()
        self.model_combo.setEnabled(cls.uses_model)
        self.restore.set_params(cls.Params())
        self._set_section(SECTIONS.get(cls.name))
        self._update_enabled()
        self.loader.reload()

    def _set_section(self, section_class) -> None:
        if self.section is not None:
            self.section.stop()
            while self.tabs.count() > 1:
                self.tabs.removeTab(1)
            self.section.setParent(None)
            self.section.deleteLater()
        self.section = section_class(self) if section_class is not None else None
        if self.section is not None:
            self.restore.set_section(self.section)
            for widget, title in self.section.tabs():
                self.tabs.addTab(widget, title)

    def _on_model_chosen(self, index: int) -> None:
        if self.model_combo.itemData(index) is None:
            folder = QFileDialog.getExistingDirectory(self, "Choose a model folder (with card.json)")
            if not folder:
                self.model_combo.setCurrentIndex(0)
                return
            self.model_combo.add_folder(folder)
        self.loader.reload()

    def _on_models_changed(self, folder: str) -> None:
        """A model was (re)written: forget what was loaded from that folder and re-list the models."""
        self.loader.forget(folder)
        self.model_combo.refresh()
        self.loader.reload()

    def _loading(self, key: tuple) -> None:
        self.model_label.setText(f"loading {key[1] or key[0]} ...")

    def _method_ready(self, method) -> None:
        cls = self.method_class
        if cls.uses_model:
            panel_state.model = self.model()
        name = self.model() or "built in"
        adapted = _adapted_to(self.model()) if cls.uses_model else None
        if adapted:
            name += f" (adapted to {adapted})"
        self.model_label.setText(f"{name} on {method.device_name}" if cls.uses_model
                                 else f"runs on {method.device_name}")
        self.restore.set_params(method.default_params())
        self._update_enabled()
        if self.section is not None:
            self.section.method_ready(method)

    def _method_failed(self, message: str) -> None:
        self.model_label.setText(f"not loaded: {message}")
        self._update_enabled()
        if self.section is not None:
            self.section.method_failed(message)

    # -- closing ---------------------------------------------------------------------------------
    def stop(self) -> None:
        """Stop all workers and let go of the viewer's events; results still in flight are dropped."""
        if self._stopped:
            return
        self._stopped = True
        self.runner.stop()
        self.loader.stop()
        if self.section is not None:
            self.section.stop()
        self.source.disconnect_viewer()
        self.viewer.dims.events.current_step.disconnect(self.pair.follow)
        model_events.changed.disconnect(self._on_models_changed)
        wait_for_workers()
