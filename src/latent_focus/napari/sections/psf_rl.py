"""The ``psf-rl`` section of the panel: a blur map of the plane the viewer shows, over the data.

Deblurring the plane (or a range) is offered by the panel from the method's ``Params``; this section adds what
only ``psf-rl`` has: the estimated |defocus| map (µm), added as an image layer with a colour bar at the plane's
z, in the panel's job runner. Its colours span a fixed range for the optics (0 to the largest defocus the
estimator reports), so that maps of different planes compare. The pixel size comes from the options, else the
file the layer was read from, else a default; the section says which.
"""

from __future__ import annotations

from qtpy.QtWidgets import QLabel, QPushButton

from ...errors import InputError
from ...methods.psf_rl import DEFAULT_PIXEL_UM, BlurMap, PsfRL, blur_map_job, optics_for, optics_note
from ...models import find_model, read_card
from .base import Section


def _estimator_model(model: str | None) -> str | None:
    """The panel's model when it is a psf-rl estimator, else None (the shipped one)."""
    if model is None:
        return None
    try:
        return model if read_card(find_model(model)).extra.get("method") == PsfRL.name else None
    except InputError:
        return None


def _pixel_source(params, stack) -> str:
    if params.pixel_size:
        return "from the options"
    return "from file" if stack.pixel_size_um else f"the default {DEFAULT_PIXEL_UM} µm: the file records none"


class PsfRLSection(Section):
    """A "Blur map" button and a legend; the optics and modality are the method's own options in the form."""

    def __init__(self, context, parent=None):
        super().__init__(context, parent)
        self.button = QPushButton("Blur map")
        self.button.setToolTip("estimate |defocus| (µm) across the plane the viewer shows, with the optics and "
                               "modality above, and add it as a layer")
        self.button.clicked.connect(self.blur_map)
        self.status = QLabel("")
        self.status.setWordWrap(True)
        self.box.addWidget(self.button)
        self.box.addWidget(self.status)

    def blur_map(self) -> None:
        """Run the estimator on the shown plane in the panel's job runner; the map is added when it is done."""
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
        pixel = f"pixel {optics.pixel_size_um:.3g} µm {_pixel_source(params, stack)}"
        source = getattr(self.context.layer(), "name", "image")
        job = blur_map_job(stack.data[plane], optics, modality, _estimator_model(self.context.model()),
                           self.context.device())
        note = optics_note(params, stack)
        self.status.setText(f"estimating the blur of plane {plane} ({pixel}; NA {optics.na:g})"
                            + (f"; {note}" if note else ""))

        def done(result: BlurMap) -> None:
            maps, top = result.maps, result.max_um
            what = "signed defocus" if maps.signed else "|defocus|"
            meta = {"method": "psf-rl blur map", "plane": plane, "unit": "um", "map": what, "modality": modality,
                    "optics": {"na": optics.na, "wavelength_um": optics.wavelength_um,
                               "n_immersion": optics.n_immersion, "pixel_size_um": optics.pixel_size_um},
                    "colour_range_um": [-top if maps.signed else 0.0, top]}
            layer = self.context.add_result(maps.defocus_um, f"{source} blur map", [plane], meta, colormap="turbo",
                                            opacity=0.6)
            layer.contrast_limits = tuple(meta["colour_range_um"])
            layer.colorbar.visible = True
            lo, hi = float(maps.defocus_um.min()), float(maps.defocus_um.max())
            self.status.setText(f"plane {plane}: {what} {lo:.2f} to {hi:.2f} µm ({pixel}; NA {optics.na:g}"
                                + (f"; {note}" if note else "") + "). Colours: "
                                f"{meta['colour_range_um'][0]:.3g} (dark blue) to {top:.3g} µm (dark red), the "
                                "largest defocus the estimator reports for these optics")

        self.context.run_job(job, done, f"blur map of plane {plane}")
