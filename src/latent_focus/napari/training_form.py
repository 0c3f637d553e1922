"""The Training dock's settings: what to start from, the preset and its losses, the run's length, the model name."""

from __future__ import annotations

import re
from dataclasses import fields
from datetime import datetime
from pathlib import Path

from qtpy.QtCore import Qt
from qtpy.QtWidgets import (
    QCheckBox,
    QComboBox,
    QDoubleSpinBox,
    QFormLayout,
    QHBoxLayout,
    QLineEdit,
    QMessageBox,
    QSpinBox,
    QWidget,
)

from ..device import DEVICE_CHOICES
from ..errors import InputError
from ..focus import TRIPLET_MODES
from ..methods.blur_code import TRAIN_PRESETS as BLUR_CODE_PRESETS
from ..methods.latent import FINE_TUNE_RECIPE, REGULARIZATIONS, TrainConfig
from ..models import PRESETS, find_model, list_models, model_family, read_card, user_models_dir
from .events import panel_state

DEFAULTS = {**{f.name: f.default for f in fields(TrainConfig)}, **FINE_TUNE_RECIPE}
FINE_TUNED = "autoencoder"  # the family whose models the dock fine-tunes
TRAINED = (FINE_TUNED, *sorted({PRESETS[p].family for p in BLUR_CODE_PRESETS}))  # families the dock trains
_NAME_OK = re.compile(r"^[\w.\- ]+$")


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


def unique_name() -> str:
    """A model folder name from the time, not yet taken in the user's models folder."""
    base = f"model-{datetime.now():%Y%m%d-%H%M%S}"
    name, n = base, 2
    while (user_models_dir() / name).exists():
        name, n = f"{base}-{n}", n + 1
    return name


class TrainingForm(QWidget):
    """The run's settings; :meth:`config` reads them as a :class:`~latent_focus.methods.latent.TrainConfig`."""

    def __init__(self, parent=None):
        super().__init__(parent)
        self.source = QComboBox()
        self.source.setToolTip("fine-tune existing weights or start from random weights")
        self.source.currentIndexChanged.connect(self._source_changed)
        self.preset = QComboBox()
        for name, preset in PRESETS.items():
            if preset.family in TRAINED:  # the single-plane networks train with their own commands
                self.preset.addItem(name)
                self.preset.setItemData(self.preset.count() - 1, preset.summary, Qt.ItemDataRole.ToolTipRole)
        self.preset.setCurrentText(DEFAULTS["preset"])
        self.regularization = QComboBox()
        self.regularization.addItems(REGULARIZATIONS)
        self.regularization.setCurrentText("direct")
        self.regularization.setToolTip("baseline: reconstruction only; indirect: + interpolated plane; "
                                       "direct: + latent consistency")
        self.extrapolation = _number_box(QDoubleSpinBox, 0, 100, DEFAULTS["extrapolation"], step=0.5,
                                         tip="weight of a deblurring term: the sharpest plane decoded from the "
                                             "extrapolated latent (Eq. 2); 0 trains exactly the paper's losses")
        self.triplets = QComboBox()
        self.triplets.addItems(TRIPLET_MODES)
        self.triplets.setCurrentText(DEFAULTS["triplets"])
        self.triplets.setToolTip("midpoint: only 2b = a + c; all: any b between a and c; auto: midpoint when possible")
        self.relative_latent = QCheckBox("scale-free latent term")
        self.relative_latent.setChecked(DEFAULTS["relative_latent"])
        self.relative_latent.setToolTip("direct regularization: divide the latent L1 (Eq. 4) by the latent distance "
                                        "between planes a and c, so the latent cannot meet it by shrinking")
        self.steps = _number_box(QSpinBox, 1, 10_000_000, DEFAULTS["steps"])
        self.epochs = _number_box(QDoubleSpinBox, 0.01, 100_000, 10)
        self.epochs.hide()
        self.length_unit = QComboBox()
        self.length_unit.addItems(["steps", "epochs"])
        self.length_unit.currentTextChanged.connect(self._unit_changed)
        self.batch_size = _number_box(QSpinBox, 1, 1024, DEFAULTS["batch_size"])
        self.crop = _number_box(QSpinBox, 16, 4096, DEFAULTS["crop"], step=16, suffix=" px",
                                tip="side of the square training crops; at most the plane size")
        self.lr = QLineEdit(f"{DEFAULTS['lr']:g}")
        self.lr.setToolTip("Adam learning rate, e.g. 1e-4")
        self.device = QComboBox()
        self.device.addItems(DEVICE_CHOICES)
        self.device.setToolTip("auto tries CUDA, then Apple MPS, then the CPU")
        self.model_name = QLineEdit(unique_name())
        self.model_name.setToolTip(f"folder name under {user_models_dir()}")

        length = QHBoxLayout()
        length.addWidget(self.steps, 1)
        length.addWidget(self.epochs, 1)
        length.addWidget(self.length_unit)
        form = QFormLayout(self)
        form.setContentsMargins(0, 0, 0, 0)
        form.setFieldGrowthPolicy(QFormLayout.FieldGrowthPolicy.AllNonFixedFieldsGrow)
        for label, widget in (("Start from", self.source), ("Preset", self.preset),
                              ("Regularization", self.regularization), ("Deblurring weight", self.extrapolation),
                              ("Triplets", self.triplets), ("", self.relative_latent), ("Length", length),
                              ("Batch size", self.batch_size), ("Crop", self.crop), ("Learning rate", self.lr),
                              ("Device", self.device), ("Model name", self.model_name)):
            form.addRow(label, widget)
        self._inputs = [self.source, self.preset, self.regularization, self.extrapolation, self.triplets,
                        self.relative_latent, self.steps, self.epochs, self.length_unit, self.batch_size, self.crop,
                        self.lr, self.device, self.model_name]
        self._running = False
        self.refresh_sources()

    def refresh_sources(self, *_) -> None:
        """Fill "Start from": the model picked in the Latent focus panel, scratch, then the other models."""
        first = self.source.currentIndex() <= 0
        current = self.source.currentData()
        picked = panel_state.model
        try:
            if model_family(find_model(picked)) != FINE_TUNED:
                picked = None  # the panel runs another kind of model
        except InputError:
            picked = None  # the panel's model is gone (or was never installed)
        self.source.blockSignals(True)
        self.source.clear()
        if picked is not None:
            self.source.addItem(f"current model: {Path(str(picked)).name} (fine-tune)", picked)
        self.source.addItem("scratch", None)
        for name, folder in list_models().items():
            if name != picked and model_family(folder) == FINE_TUNED:
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
        self.preset.setEnabled(init is None and not self._running)

    def _unit_changed(self, unit: str) -> None:
        self.steps.setVisible(unit == "steps")
        self.epochs.setVisible(unit == "epochs")

    def set_running(self, running: bool) -> None:
        self._running = running
        for widget in self._inputs:
            widget.setEnabled(not running)
        self.preset.setEnabled(not running and self.source.currentData() is None)

    def config(self) -> TrainConfig:
        """The settings as a checked :class:`TrainConfig` (:class:`InputError` for a value it refuses)."""
        try:
            lr = float(self.lr.text())
        except ValueError:
            raise InputError(f"learning rate {self.lr.text()!r} is not a number; enter e.g. 1e-4") from None
        by_epochs = self.length_unit.currentText() == "epochs"
        steps = self.steps.value()
        config = TrainConfig(preset=self.preset.currentText(), regularization=self.regularization.currentText(),
                             steps=steps, epochs=self.epochs.value() if by_epochs else None,
                             batch_size=self.batch_size.value(), crop=self.crop.value(), lr=lr,
                             device=self.device.currentText(), extrapolation=self.extrapolation.value(),
                             triplets=self.triplets.currentText(), relative_latent=self.relative_latent.isChecked(),
                             validate_every=DEFAULTS["validate_every"] if by_epochs else max(1, min(50, steps // 20)))
        config.check()
        return config

    def output(self) -> tuple[Path | None, bool]:
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
