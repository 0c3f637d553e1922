"""The objective a pixel size points to, for when a file records its pixel size but not its optics.

Most widefield cameras have 6.5 um pixels (sCMOS), so the pixel size in the sample gives the magnification, and
each magnification has a usual objective: 100x and 60x are oil objectives of NA 1.4, 40x an air objective of NA
0.75, 20x an air objective of NA 0.75, 10x an air objective of NA 0.3. The emission is taken at 520 nm.
"""

from __future__ import annotations

CAMERA_PIXEL_UM = 6.5
#: (largest pixel size in um, label, NA, wavelength um, immersion index), by magnification
TYPICAL = (
    (0.081, "100x/1.4 oil", 1.4, 0.52, 1.515),
    (0.13, "60x/1.4 oil", 1.4, 0.52, 1.515),
    (0.217, "40x/0.75 air", 0.75, 0.52, 1.0),
    (0.433, "20x/0.75 air", 0.75, 0.52, 1.0),
    (float("inf"), "10x/0.3 air", 0.3, 0.52, 1.0),
)


def typical_objective(pixel_um: float) -> tuple[str, tuple[float, float, float]]:
    """The usual objective for a ``pixel_um`` pixel behind a 6.5 um camera: its label and (NA, wavelength, n)."""
    for largest, label, na, wl, n in TYPICAL:
        if pixel_um <= largest:
            return label, (na, wl, n)
    raise ValueError(pixel_um)
