"""The ``psf-rl`` section of the panel: a blur map of the plane the viewer shows, over the data.

Deblurring the plane (or selected planes) is offered by the panel itself from the method's ``Params``; this
section adds what only ``psf-rl`` has: the estimated |defocus| map (um), added as an image layer with a colour
map at the plane's z, in the panel's worker with its progress bar and Cancel.
"""

from __future__ import annotations

from qtpy.QtWidgets import QLabel, QPushButton, QVBoxLayout, QWidget

from ..errors import InputError
from ..methods.psf_rl import optics_for
from ..methods.psf_rl.jobs import blur_map_job
from ..models import find_model, read_card
from .context import PanelContext


def _estimator_model(model: str | None) -> str | None:
    """The panel's model when it is a psf-rl estimator, else None (the shipped one)."""
    if model is None:
        return None
    try:
        return model if read_card(find_model(model)).extra.get("method") == "psf-rl" else None
    except InputError:
        return None


class PsfRLSection(QWidget):
    """A "Blur map" button; the optics and modality are the method's own options in the panel's form."""

    def __init__(self, context: PanelContext, parent=None):
        super().__init__(parent)
        self.context = context
        self.button = QPushButton("Blur map")
        self.button.setToolTip("estimate |defocus| (um) across the plane the viewer shows, with the optics and "
                               "modality above, and add it as a layer")
        self.button.clicked.connect(self.blur_map)
        self.status = QLabel("")
        self.status.setWordWrap(True)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.button)
        layout.addWidget(self.status)

    def blur_map(self) -> None:
        """Run the estimator on the shown plane in the panel's worker; the map is added when it is done."""
        stack = self.context.stack()
        if stack is None:
            self.status.setText("choose an image layer first")
            return
        plane = self.context.current_plane()
        try:
            params = self.context.params()
        except InputError as exc:
            self.status.setText(str(exc))
            return
        optics, modality = optics_for(params, stack), params.modality
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
