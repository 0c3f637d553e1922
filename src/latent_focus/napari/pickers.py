"""The panel's pickers: the source layer and channel, planes B and C, and the model."""

from __future__ import annotations

from pathlib import Path

from qtpy.QtCore import Qt, Signal
from qtpy.QtWidgets import QCheckBox, QComboBox, QHBoxLayout, QLabel, QSpinBox, QVBoxLayout, QWidget

from ..focus import blurrier_neighbour
from ..io import Stack
from ..models import list_models, model_family
from . import layers as L

LOAD_FOLDER = "Load from folder..."


class ModelCombo(QComboBox):
    """Models of one family (all when ``family`` is empty), refreshed whenever the list opens, plus a folder entry."""

    def __init__(self, parent=None):
        super().__init__(parent)
        self.family = ""
        self.refresh()

    def refresh(self) -> None:
        current = self.currentData()
        names = [n for n, folder in list_models().items() if not self.family or model_family(folder) == self.family]
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

    def add_folder(self, path: str) -> None:
        """Add and choose a model folder (just before the "Load from folder..." entry)."""
        index = self.count() - 1
        self._insert_folder(index, str(path))
        self.setCurrentIndex(index)

    def choose(self, model: str) -> None:
        """Choose ``model``: a listed name, or a folder (added when it is not listed)."""
        self.refresh()
        index = self.findData(model)
        if index >= 0:
            self.setCurrentIndex(index)
        elif Path(model).is_dir():
            self.add_folder(model)

    def _insert_folder(self, index: int, path: str) -> None:
        self.insertItem(index, f"{Path(path).name} (folder)", path)
        self.setItemData(index, path, Qt.ItemDataRole.ToolTipRole)

    def showPopup(self):
        self.refresh()
        super().showPopup()


class SourcePicker(QWidget):
    """The image layer and channel to work on, and a line saying how the panel reads the layer: which axis is
    z, and where the pixel size and z step come from. ``changed`` fires when the layer, its channel or its data
    change."""

    changed = Signal()

    def __init__(self, viewer, parent=None):
        super().__init__(parent)
        self.viewer = viewer
        self.layer_combo = QComboBox()
        self.layer_combo.setToolTip("the image layer to restore; the plugin's own results are not offered")
        self.channel_combo = QComboBox()
        self.channel_combo.setToolTip("the channel of a multi-channel layer that is restored")
        self.info_label = QLabel()
        self.info_label.setWordWrap(True)
        row = QHBoxLayout()
        row.setContentsMargins(0, 0, 0, 0)
        row.addWidget(self.layer_combo, 3)
        row.addWidget(self.channel_combo, 1)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addLayout(row)
        layout.addWidget(self.info_label)
        self._cache_key, self._cache = None, None
        self.layer_combo.currentTextChanged.connect(lambda _: self._layer_changed())
        self.channel_combo.currentIndexChanged.connect(lambda _: self.changed.emit())
        for emitter, callback in self._connections():
            emitter.connect(callback)
        self.refresh()

    # -- what is chosen --------------------------------------------------------------------------
    def layer(self):
        name = self.layer_combo.currentText()
        return self.viewer.layers[name] if name in self.viewer.layers else None

    def channel(self) -> int:
        return max(self.channel_combo.currentIndex(), 0)

    def _read(self, layer) -> tuple[L.Axes, L.Calibration]:
        """``layer``'s axes and calibration, read once per layer and shape (reading them may open the file)."""
        key = (layer.unique_id, layer.data.shape)
        if self._cache_key != key:
            axes = L.layer_axes(layer)
            self._cache_key, self._cache = key, (axes, L.layer_calibration(layer, axes))
        return self._cache

    def axes(self, layer) -> L.Axes:
        return self._read(layer)[0]

    def stack(self, copy: bool = True) -> Stack | None:
        """The chosen (z, y, x) stack with its pixel size and z positions (a copy unless ``copy`` is false)."""
        layer = self.layer()
        if layer is None:
            return None
        axes, cal = self._read(layer)
        return L.stack_of(layer, self.viewer, axes, self.channel(), copy=copy, calibration=cal)

    def current_plane(self) -> int:
        layer = self.layer()
        return 0 if layer is None else L.current_plane(layer, self.viewer, self.axes(layer))

    def n_planes(self) -> int:
        layer = self.layer()
        return 0 if layer is None else L.n_planes(layer, self.axes(layer))

    # -- following the viewer --------------------------------------------------------------------
    def _connections(self) -> list:
        pairs = [(self.viewer.layers.events.inserted, self._on_inserted),
                 (self.viewer.layers.events.removed, self.refresh)]
        for layer in self.viewer.layers:
            pairs += self._layer_connections(layer)
        return pairs

    def _layer_connections(self, layer) -> list:
        return [(layer.events.name, self.refresh), (layer.events.data, self._on_data)]

    def disconnect_viewer(self) -> None:
        for emitter, callback in self._connections():
            emitter.disconnect(callback)

    def _on_inserted(self, event) -> None:
        for emitter, callback in self._layer_connections(event.value):
            emitter.connect(callback)
        self.refresh()

    def _on_data(self, event) -> None:
        layer = self.layer()
        if layer is not None and event.source.unique_id == layer.unique_id:
            self._cache_key = None
            self.changed.emit()

    def refresh(self, event=None) -> None:
        """List the image layers that are not the plugin's results, keeping the choice where possible."""
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
            self._layer_changed()

    def _layer_changed(self) -> None:
        layer = self.layer()
        self.channel_combo.blockSignals(True)
        self.channel_combo.clear()
        if layer is None:
            self.info_label.setText("open a z-stack or an image")
        else:
            axes, cal = self._read(layer)
            n, n_c = L.n_planes(layer, axes), L.n_channels(layer, axes)
            self.channel_combo.addItems([f"channel {c}" for c in range(n_c)])
            self.channel_combo.setCurrentIndex(L.current_channel(layer, self.viewer, axes))
            self.info_label.setText(f"axes {axes.described}, {n} plane{'s' * (n != 1)}, {n_c} channel"
                                    f"{'s' * (n_c != 1)}; {cal.described}")
        self.channel_combo.setEnabled(self.channel_combo.count() > 1)
        self.channel_combo.blockSignals(False)
        self.changed.emit()


class PlanePicker(QWidget):
    """Planes B (sharper) and C (blurrier) of pair methods; with "follow viewer", B is the plane napari shows and
    C its blurrier neighbour. ``changed`` fires when either changes."""

    changed = Signal()

    def __init__(self, source: SourcePicker, parent=None):
        super().__init__(parent)
        self.source = source
        self.sharp_spin, self.blurry_spin = QSpinBox(), QSpinBox()
        self.sharp_spin.setToolTip("plane B: the sharper plane (t = 1 on the slider)")
        self.blurry_spin.setToolTip("plane C: the blurrier plane (t = 0 on the slider)")
        self.follow_check = QCheckBox("follow viewer")
        self.follow_check.setToolTip("plane B is the plane the viewer shows, C its blurrier neighbour")
        self.follow_check.setChecked(True)
        row = QHBoxLayout(self)
        row.setContentsMargins(0, 0, 0, 0)
        for w in (QLabel("B"), self.sharp_spin, QLabel("C"), self.blurry_spin, self.follow_check):
            row.addWidget(w)
        row.addStretch(1)
        self.sharp_spin.valueChanged.connect(self._on_sharp)
        self.blurry_spin.valueChanged.connect(lambda _: self.changed.emit())
        self.follow_check.toggled.connect(lambda on: on and self.follow())

    def planes(self) -> tuple[int, int]:
        return self.sharp_spin.value(), self.blurry_spin.value()

    def reset(self) -> None:
        """The source changed: new ranges, B from the viewer and C its blurrier neighbour."""
        n = self.source.n_planes()
        for spin in (self.sharp_spin, self.blurry_spin):
            spin.blockSignals(True)
            spin.setRange(0, max(n - 1, 0))
            spin.blockSignals(False)
        plane = self.source.current_plane()
        if plane != self.sharp_spin.value():
            self.sharp_spin.setValue(plane)
        else:
            self._on_sharp(plane)

    def follow(self, event=None) -> None:
        """B follows the viewer's plane (when "follow viewer" is on)."""
        if self.follow_check.isChecked() and self.source.layer() is not None:
            self.sharp_spin.setValue(self.source.current_plane())

    def _on_sharp(self, plane: int) -> None:
        stack = self.source.stack(copy=False)
        if stack is not None and stack.n_planes >= 2:
            self.blurry_spin.blockSignals(True)
            self.blurry_spin.setValue(blurrier_neighbour(stack.data, plane))
            self.blurry_spin.blockSignals(False)
        self.changed.emit()
