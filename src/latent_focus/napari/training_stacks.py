"""The Training dock's list of training stacks: the viewer's z-stack layers and added TIFF files, checkable."""

from __future__ import annotations

from qtpy.QtCore import Qt, Signal
from qtpy.QtWidgets import (
    QCheckBox,
    QFileDialog,
    QHBoxLayout,
    QLabel,
    QListWidget,
    QListWidgetItem,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from ..errors import InputError
from ..io import Stack, read_stack
from . import layers as L

_ITEM_ROLE = Qt.ItemDataRole.UserRole


class StackList(QWidget):
    """Checked stacks are trained on. The plugin's own results are listed only on request, unchecked.
    ``failed(message)`` says which chosen files could not be read."""

    failed = Signal(str)

    def __init__(self, viewer, parent=None):
        super().__init__(parent)
        self.viewer = viewer
        self._files: list[Stack] = []
        self.list = QListWidget()
        self.list.setMaximumHeight(100)
        self.list.setToolTip("checked image layers (ndim >= 3) and files are used for training")
        self.add_files_button = QPushButton("Add files...")
        self.add_files_button.clicked.connect(self._choose_files)
        self.results_check = QCheckBox("list the plugin's results too")
        self.results_check.setToolTip("offer the layers this plugin made (restored planes, blur synthesis) as "
                                      "training stacks, unchecked")
        self.results_check.toggled.connect(lambda _: self.refresh())
        row = QHBoxLayout()
        row.addWidget(QLabel("Training stacks"), 1)
        row.addWidget(self.add_files_button)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addLayout(row)
        layout.addWidget(self.list)
        layout.addWidget(self.results_check)

    def refresh(self, *_) -> None:
        """List the image layers with ndim >= 3 and the added files, keeping their check marks."""
        checked = {self.list.item(i).text(): self.list.item(i).checkState() for i in range(self.list.count())}
        self.list.clear()
        for layer in self.viewer.layers:
            if not L.is_image_stack(layer):
                continue
            output = L.is_plugin_output(layer)
            if not output or self.results_check.isChecked():
                self._add_item(f"layer: {layer.name}", ("layer", layer.name), checked, not output)
        for index, stack in enumerate(self._files):
            self._add_item(f"file: {stack.source}", ("file", index), checked)

    def _add_item(self, text: str, key: tuple, checked: dict, tick: bool = True) -> None:
        item = QListWidgetItem(text)
        item.setFlags(item.flags() | Qt.ItemFlag.ItemIsUserCheckable)
        item.setCheckState(checked.get(text, Qt.CheckState.Checked if tick else Qt.CheckState.Unchecked))
        item.setData(_ITEM_ROLE, key)
        self.list.addItem(item)

    def _choose_files(self) -> None:
        paths, _ = QFileDialog.getOpenFileNames(self, "Add training z-stacks", "", "TIFF z-stacks (*.tif *.tiff)")
        errors = self.add_files(paths)
        if errors:
            self.failed.emit("\n".join(errors))

    def add_files(self, paths) -> list[str]:
        """Read TIFF z-stacks and add them, checked; returns the errors of files that could not be read."""
        errors = []
        for path in paths:
            try:
                self._files.append(read_stack(path))
            except InputError as exc:
                errors.append(str(exc))
        self.refresh()
        return errors

    def snapshot(self) -> list[Stack]:
        """Copies of the checked stacks, so later edits to the layers do not reach the run."""
        stacks = []
        for i in range(self.list.count()):
            item = self.list.item(i)
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
