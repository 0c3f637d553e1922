"""``richardson-lucy``: tiled Richardson-Lucy deconvolution of one plane.

The PSF comes from a file (``--psf``: a 2-D kernel, or a 3-D PSF z-stack with ``--defocus``), from the
optics (``--optics NA WAVELENGTH``: the Born & Wolf PSF at ``--defocus``, or estimated per tile when the
defocus is not given), or, with no PSF option, is estimated per tile by the spectral estimator with the
optics of a 40x/0.75 air objective at 520 nm. Each tile is deconvolved with its own PSF and the tiles
are blended without seams (:func:`latent_focus.optics.deconvolution.richardson_lucy_tiled`).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import numpy as np

from ...errors import InputError
from ...io import Stack, check_plane_index, read_stack
from ...optics import born_wolf_psf
from ...optics.deconvolution import estimate_defocus_psf, richardson_lucy_tiled_steps
from ..base import PLANE, Method, Params, Progress, Restored, param, parse_auto_number

DEFAULT_OPTICS = (0.75, 0.52)  # NA and wavelength (um) assumed when none are given


def parse_optics(text) -> tuple[float, ...]:
    """``"NA WAVELENGTH_UM [IMMERSION_INDEX]"`` -> floats; the empty string means "not given"."""
    if isinstance(text, (tuple, list)):
        values = [float(v) for v in text]
    else:
        try:
            values = [float(v) for v in str(text).replace(",", " ").split()]
        except ValueError:
            raise InputError(f"--optics takes NA WAVELENGTH_UM [IMMERSION_INDEX], e.g. --optics 0.75 0.52; "
                             f"got {text!r}") from None
    if values and len(values) not in (2, 3):
        raise InputError("--optics takes NA WAVELENGTH_UM [IMMERSION_INDEX], e.g. --optics 0.75 0.52")
    return tuple(values)


def parse_optional_float(text) -> float | None:
    """``"auto"``, ``"none"`` (or nothing) -> None, else a finite number."""
    return None if text == "none" else parse_auto_number(text)


@dataclass(frozen=True)
class RLParams(Params):
    iterations: int = param(30, "Richardson-Lucy iterations", min=0, max=1000)
    psf: str = param("", "PSF file: a 2-D kernel, or a PSF z-stack (its plane at --defocus, else its brightest)",
                     label="PSF file")
    optics: tuple = param((), "NA WAVELENGTH_UM [IMMERSION_INDEX] of the objective, for a Born & Wolf PSF",
                          parse=parse_optics)
    defocus: float | None = param(None, "defocus of the plane in um (with --optics or a PSF z-stack); "
                                  "default: estimated per tile", parse=parse_optional_float)
    pixel_size: float | None = param(None, "pixel size in um; default: from the file's metadata, else 0.1",
                                     parse=parse_optional_float)
    tile: int = param(128, "tile side in pixels; each tile gets its own PSF", min=16, max=4096)
    overlap: int = param(32, "overlap of neighbouring tiles in pixels", min=0, max=1024)
    max_defocus: float = param(8.0, "largest defocus (um) the per-tile estimator considers", min=0.5, max=100.0)


class RichardsonLucy(Method):
    name = "richardson-lucy"
    description = "tiled Richardson-Lucy deconvolution with a PSF from a file, the optics, or estimated per tile"
    input = PLANE
    Params = RLParams

    @classmethod
    def weights_source(cls) -> str:
        return "no weights (PSF from --psf, --optics or the spectral estimator)"

    def restore(self, stack: Stack, plane: int, params: RLParams, partner: int | None = None):
        plane = check_plane_index(plane, stack.n_planes)
        image = stack.data[plane]
        pixel = params.pixel_size or stack.pixel_size_um or 0.1
        psfs, how = self._psfs(image, params, pixel)
        yield Progress(0, 1, how)
        out = yield from richardson_lucy_tiled_steps(image, psfs, params.tile, min(params.overlap, params.tile - 1),
                                                     params.iterations)
        return Restored(out, {"method": self.name, "plane": plane, "psf": how, "iterations": params.iterations,
                              "pixel_size_um": pixel})

    def _psfs(self, image: np.ndarray, params: RLParams, pixel: float):
        """The per-tile PSF source for ``richardson_lucy_tiled`` and a line saying where it came from."""
        if params.psf:
            kernel = _psf_file(params.psf, params.defocus)
            return kernel, f"PSF file {params.psf}"
        na, wl, *rest = params.optics or DEFAULT_OPTICS
        n = rest[0] if rest else 1.0
        if params.optics and params.defocus is not None:
            return born_wolf_psf(params.defocus, na, wl, n, pixel), (
                f"Born & Wolf PSF, NA {na}, {wl} um, defocus {params.defocus} um")
        candidates = np.linspace(0.0, params.max_defocus, 17)
        size = params.tile if params.tile % 2 else params.tile - 1  # odd, at most one tile
        psf_at = lru_cache(maxsize=None)(lambda z: born_wolf_psf(z, na, wl, n, pixel, size))
        image = np.asarray(image, dtype=np.float32)

        def per_tile(box):
            y0, y1, x0, x1 = box
            patch = image[y0:y1, x0:x1]
            if min(patch.shape) < 16 or patch.max() == patch.min():
                return psf_at(0.0)
            _, k = estimate_defocus_psf(patch, candidates, na=na, wavelength_um=wl, n_immersion=n,
                                        pixel_size_um=pixel, psf_fn=psf_at)
            return k
        return per_tile, f"Born & Wolf PSF per tile, defocus estimated (NA {na}, {wl} um, {pixel:.4g} um pixels)"


def _psf_file(path: str, defocus: float | None) -> np.ndarray:
    """A 2-D kernel from a PSF file: the file itself, or one plane of a PSF z-stack."""
    try:
        psf = read_stack(path)
    except InputError as exc:
        raise InputError(f"--psf: {exc}") from None
    if psf.n_planes == 1:
        return psf.data[0]
    if defocus is None:
        return psf.data[int(np.argmax(psf.data.reshape(psf.n_planes, -1).max(axis=1)))]
    if psf.z_um is None:
        raise InputError(f"--psf {path} is a z-stack without z positions; add a z.txt beside it or pass a 2-D kernel")
    focus = int(np.argmax(psf.data.reshape(psf.n_planes, -1).max(axis=1)))
    rel = psf.z_um - psf.z_um[focus]
    return psf.data[int(np.argmin(np.abs(rel - defocus)))]


METHOD = RichardsonLucy
