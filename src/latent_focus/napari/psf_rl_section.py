"""The ``psf-rl`` section of the panel: a blur map of the plane the viewer shows, over the data.

Deblurring the plane (or selected planes) is offered by the panel itself from the method's ``Params``; this
section adds what only ``psf-rl`` has: the estimated |defocus| map (um), added as an image layer with a colour
map at the plane's z, in the panel's worker with its progress bar and Cancel.
"""

from __future__ import annotations

from qtpy.QtWidgets import QComboBox, QDoubleSpinBox, QFormLayout, QLabel, QPushButton, QWidget

from ..errors import InputError
from ..methods.psf_rl import DEFAULT_OPTICS
from ..methods.psf_rl.jobs import blur_map_job
from ..models import find_model, read_card
from ..optics.parametric import Optics
from .context import PanelContext


def _spin(value: float, lo: float, hi: float, step: float, decimals: int, tip: str) -> QDoubleSpinBox:
    box = QDoubleSpinBox()
    box.setRange(lo, hi)
    box.setDecimals(decimals)
    box.setSingleStep(step)
    box.setValue(value)
    box.setToolTip(tip)
    return box


def _estimator_model(model: str | None) -> str | None:
    """The panel's model when it is a psf-rl estimator, else None (the shipped one)."""
    if model is None:
        return None
    try:
        return model if read_card(find_model(model)).extra.get("method") == "psf-rl" else None
    except InputError:
        return None


class PsfRLSection(QWidget):
    """Optics of the microscope and a "Blur map" button."""

    def __init__(self, context: PanelContext, parent=None):
        super().__init__(parent)
        self.context = context
        form = QFormLayout(self)
        form.setContentsMargins(0, 0, 0, 0)
        self.modality = QComboBox()
        self.modality.addItems(["widefield", "brightfield"])
        self.modality.setToolTip("widefield fluorescence, or brightfield (signed defocus)")
        na, wl, n = DEFAULT_OPTICS
        self.na = _spin(na, 0.05, 1.7, 0.05, 2, "numerical aperture of the objective")
        self.wavelength = _spin(wl, 0.3, 1.2, 0.01, 3, "emission wavelength in um")
        self.immersion = _spin(n, 1.0, 1.7, 0.01, 3, "refractive index of the immersion medium")
        self.pixel = _spin(0.0, 0.0, 10.0, 0.01, 4, "pixel size in um; 0: the layer's scale (else 0.1 um)")
        self.button = QPushButton("Blur map")
        self.button.setToolTip("estimate |defocus| (um) across the plane the viewer shows and add it as a layer")
        self.button.clicked.connect(self.blur_map)
        self.status = QLabel("")
        self.status.setWordWrap(True)
        for label, widget in (("modality", self.modality), ("NA", self.na), ("wavelength", self.wavelength),
                              ("immersion n", self.immersion), ("pixel (um)", self.pixel)):
            form.addRow(label, widget)
        form.addRow(self.button)
        form.addRow(self.status)

    def optics(self, stack) -> Optics:
        pixel = self.pixel.value() or stack.pixel_size_um or 0.1
        return Optics(self.na.value(), self.wavelength.value(), self.immersion.value(), pixel)

    def blur_map(self) -> None:
        """Run the estimator on the shown plane in the panel's worker; the map is added when it is done."""
        stack = self.context.stack()
        if stack is None:
            self.status.setText("choose an image layer first")
            return
        plane = self.context.current_plane()
        try:
            optics = self.optics(stack)
        except ValueError as exc:
            self.status.setText(str(exc))
            return
        modality = self.modality.currentText()
        source = getattr(self.context.layer(), "name", "image")
        job = blur_map_job(stack.data[plane], optics, modality, _estimator_model(self.context.model()),
                           self.context.device())
        self.status.setText(f"estimating the blur of plane {plane}")

        def done(maps) -> None:
            what = "signed defocus" if maps.signed else "|defocus|"
            meta = {"method": "psf-rl blur map", "plane": plane, "unit": "um", "map": what, "modality": modality,
                    "optics": {"na": optics.na, "wavelength_um": optics.wavelength_um,
                               "n_immersion": optics.n_immersion, "pixel_size_um": optics.pixel_size_um}}
            layer = self.context.add_result(maps.defocus_um, f"{source} blur map", [plane], meta, colormap="turbo",
                                            opacity=0.6)
            lo, hi = float(maps.defocus_um.min()), float(maps.defocus_um.max())
            # colours from 0 um (in focus), so that an evenly defocused plane looks even
            top = max(abs(lo), abs(hi), 1e-3)
            layer.contrast_limits = (-top, top) if maps.signed else (0.0, top)
            self.status.setText(f"plane {plane}: {what} {lo:.2f} to {hi:.2f} um")

        self.context.run_job(job, done, f"blur map of plane {plane}")
