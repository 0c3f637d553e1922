"""The real defocus series psf-rl is evaluated on: stacks with a known in-focus plane, and their optics.

Where a source does not state the optics, the values below are assumptions, said so in ``note``: they set the
conversion between waves and micrometres (and the estimator's sampling), not the ranking of the planes.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from latent_focus.io import Stack, read_stack
from latent_focus.optics.parametric import Optics

REPO = Path(__file__).resolve().parents[1]
DATA = REPO.parent / "shared" / "data"


@dataclass
class Series:
    name: str
    stack: Stack
    focus: int
    optics: Optics
    modality: str
    note: str

    @property
    def rel_um(self) -> np.ndarray:
        return self.stack.z_um - self.stack.z_um[self.focus]


def load_series(data: Path = DATA, names=None) -> list[Series]:
    """The real series (all, or those in ``names``)."""
    out = []

    def want(name):
        return names is None or name in names

    if want("neubias"):
        s = read_stack(data / "neubias_widefield_nucleus_hoechst" / "stack.tif")
        out.append(Series("neubias", s, 19, Optics(1.2, 0.46, 1.33, s.pixel_size_um or 0.2559), "widefield",
                          "40x/1.2 W, Hoechst (460 nm), 0.256 um pixels, 0.5 um steps (from the file)"))
    if want("bead"):
        s = read_stack(data / "bead_widefield_epfl" / "stack.tif")
        focus = int(np.argmax(s.data.reshape(s.n_planes, -1).max(axis=1)))
        s.z_um = np.arange(s.n_planes) * 0.32
        s.pixel_size_um = 0.258
        out.append(Series("bead", s, focus, Optics(1.4, 0.52, 1.515, 0.258), "widefield",
                          "assumed: 63x/1.4 oil, 520 nm, EPFL's 64.5 nm x 160 nm voxels downsampled 4x and 2x "
                          "(0.258 um pixels, 0.32 um steps); focus at the brightest plane"))
    for name, folder, focus in (("mitochondria", "dfnn_lightsheet_mitochondria", 18),
                                ("microtubules", "dfnn_lightsheet_microtubules", 11)):
        if want(name):
            s = read_stack(data / folder / "stack.tif")
            s.pixel_size_um = 0.1
            out.append(Series(name, s, focus, Optics(1.1, 0.52, 1.33, 0.1), "widefield",
                              "light sheet, lattice illumination; assumed detection 1.1 W, 520 nm, 0.1 um pixels; "
                              "0.05 um steps (from the source)"))
    if want("hela"):
        s = read_stack(data / "brightfield_hela_set1" / "stack.tif")
        out.append(Series("hela", s, 3, Optics(0.75, 0.55, 1.0, 0.2005), "brightfield",
                          "brightfield 40x air (NA 0.75 assumed), white light (550 nm assumed), 0.2005 um pixels"))
    return out
