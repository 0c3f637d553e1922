"""``psf-rl``: single-plane deblurring by spatially-variant PSF estimation and regularised Richardson-Lucy.

After Shajkofci & Liebling (IEEE TIP 2020): a small CNN estimates, patch by patch, the parameters of a
parametric PSF model (defocus and the two astigmatism terms of :mod:`latent_focus.optics.parametric`); the
estimates are smoothed into maps; a spatially-variant, TV-regularised Richardson-Lucy deconvolves the plane
with a PSF per tile, blended without seams (:mod:`.deconvolve`).

Two targets:

* ``focus`` (default): what the in-focus plane would have shown. The object is deconvolved with the defocused
  PSFs and blurred again with the in-focus ones; tiles whose estimated defocus is below about the depth of
  field are left unchanged.
* ``object``: the object itself (the seed's full deconvolution).

The same estimates give a blur map and, after a calibration on a z-stack of the same microscope, a depth map
(``latent-focus blur-map``, ``latent-focus calibrate-depth``).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ...device import describe, select_device
from ...errors import InputError
from ...io import Stack, check_plane_index
from ...models import find_model, list_models, load_model
from ...optics.objectives import typical_objective
from ...optics.parametric import Optics
from ..base import PLANE, Method, Params, Progress, Restored, param, parse_auto_number
from ..richardson_lucy import parse_optics
from .commands import COMMANDS
from .deconvolve import richardson_lucy_sv
from .estimator import PRESET, Estimator, ParameterMaps
from .jobs import BlurMap, blur_map_job
from .plan import MIN_WAVES, MeasuredPsf, plan_plane

__all__ = ["DEFAULT_OPTICS", "DEFAULT_PIXEL_UM", "BlurMap", "PsfRL", "PsfRLParams", "blur_map_job", "deblur",
           "optics_for", "optics_note"]

DEFAULT_OPTICS = (0.75, 0.52, 1.0)  # a 40x/0.75 air objective at 520 nm, when the optics are not given
DEFAULT_PIXEL_UM = 0.1
SHIPPED = {"widefield": "psf-widefield", "brightfield": "psf-brightfield"}


def parse_defocus(text) -> float | None:
    """``"estimate"`` (or nothing) -> None, else the plane's defocus in um."""
    return None if text in ("estimate",) else parse_auto_number(text)


def _auto_int(text) -> int | None:
    value = parse_auto_number(text, float)
    if value is not None and (value != int(value) or value < 0):
        raise InputError(f"--iterations must be 'auto' or a whole number >= 0; got {text!r}")
    return None if value is None else int(value)


@dataclass(frozen=True)
class PsfRLParams(Params):
    target: str = param("focus", "focus: what the in-focus plane would show (defocused PSF -> in-focus PSF); "
                        "object: the object itself (full deconvolution)", choices=("focus", "object"))
    modality: str = param("widefield", "widefield fluorescence; brightfield planes cannot be deconvolved (deblur them "
                          "with analysis-synthesis or latent), only mapped by blur-map with an estimator trained by "
                          "train-psf --modality brightfield", choices=("widefield", "brightfield"))
    optics: tuple = param((), "NA WAVELENGTH_UM [IMMERSION_INDEX] of the objective; default: the usual objective "
                          "for the pixel size (100x and 60x: 1.4 oil; 40x and 20x: 0.75 air; 10x: 0.3 air; a 6.5 um "
                          "camera pixel), else 0.75 0.52 1.0 (40x/0.75 air, 520 nm)", parse=parse_optics)
    pixel_size: float | None = param(None, "pixel size in um; default: from the file's metadata, else 0.1",
                                     parse=parse_auto_number)
    defocus: float | None = param(None, "defocus of the whole plane in um, or estimate (the default: per tile, by "
                                  "the CNN)", parse=parse_defocus)
    iterations: int | None = param(None, "Richardson-Lucy iterations, or auto (the default: from the estimated blur "
                                   "and noise)", parse=_auto_int)
    tv: float | None = param(None, "total-variation weight (0 to 0.1), or auto (the default: from the estimated "
                             "noise)", parse=parse_auto_number, label="TV weight")
    tile: int = param(128, "tile side in pixels; each tile gets its own PSF", min=32, max=4096)
    psf: str = param("", "measured PSF instead of the model: a 2-D kernel sampled like the image, or a bead "
                     "z-stack with z positions and pixel size (its plane at each tile's estimated defocus)",
                     label="PSF file")
    min_defocus: float | None = param(None, "target focus: tiles whose estimated |defocus| (um) is below this are "
                                      "left unchanged; auto (the default): three quarters of a wave of defocus at "
                                      "the pupil edge, about the depth of field",
                                      parse=parse_auto_number)

    def __post_init__(self):
        super().__post_init__()
        if self.tv is not None and not 0 <= self.tv <= 0.1:
            raise InputError(f"--tv must be 'auto' or in [0, 0.1]; got {self.tv}")
        if self.pixel_size is not None and self.pixel_size <= 0:
            raise InputError(f"--pixel-size must be a positive number of um; got {self.pixel_size}")
        if self.min_defocus is not None and self.min_defocus < 0:
            raise InputError(f"--min-defocus must be 'auto' or >= 0 um; got {self.min_defocus}")
        optics_for(self, None)


def optics_for(params: PsfRLParams, stack: Stack | None) -> Optics:
    """The optics of ``params``; where not given, the usual objective for the pixel size (given or the file's),
    else :data:`DEFAULT_OPTICS` at :data:`DEFAULT_PIXEL_UM`."""
    pixel = params.pixel_size or (stack.pixel_size_um if stack is not None else None)
    na, wl, *rest = params.optics or assumed_optics(pixel)
    return Optics(na, wl, rest[0] if rest else 1.0, pixel or DEFAULT_PIXEL_UM)


def assumed_optics(pixel_um: float | None) -> tuple[float, float, float]:
    """(NA, wavelength, n) when none are given: the usual objective for the pixel size, else the defaults."""
    return typical_objective(pixel_um)[1] if pixel_um else DEFAULT_OPTICS


def optics_note(params: PsfRLParams, stack: Stack | None) -> str | None:
    """What was assumed about the optics of ``params`` for ``stack``, or None when all was given."""
    pixel = params.pixel_size or (stack.pixel_size_um if stack is not None else None)
    if params.optics and pixel:
        return None
    if not pixel:
        return "optics or pixel size not given: defaults used (see --optics, --pixel-size)"
    label = typical_objective(pixel)[0]
    return f"optics not given: a {label} objective assumed from the {pixel:.3g} um pixel (see --optics)"


class PsfRL(Method):
    name = "psf-rl"
    description = "spatially-variant PSF estimation (CNN) and TV-regularised Richardson-Lucy, towards focus"
    input = PLANE
    Params = PsfRLParams
    uses_model = True
    model_family = "psf-estimator"

    def __init__(self, model: str | None = None, device: str = "auto"):
        self.model_name = model
        self.device = select_device(device)
        self._estimators: dict[str, Estimator] = {}

    @classmethod
    def load(cls, model: str | None = None, device: str = "auto") -> "PsfRL":
        return cls(model, device)

    @classmethod
    def weights_source(cls) -> str:
        return ("a PSF-estimator CNN: the shipped psf-widefield, or --model NAME|FOLDER written by "
                "latent-focus train-psf")

    @classmethod
    def commands(cls) -> list:
        return COMMANDS

    @property
    def device_name(self) -> str:
        return describe(self.device)

    def estimator(self, modality: str = "widefield") -> Estimator:
        """The estimator for ``modality``: the given model, else the shipped one; loaded once."""
        if modality not in self._estimators:
            if self.model_name is None and modality == "brightfield" and SHIPPED[modality] not in list_models():
                raise InputError("no brightfield PSF estimator ships with this version (its training did not "
                                 "converge); train one with latent-focus train-psf --modality brightfield and pass "
                                 "it with --model")
            folder = find_model(self.model_name or SHIPPED[modality])
            model, card = load_model(folder, self.device)
            if card.preset != PRESET or card.extra.get("method") != "psf-rl":
                raise InputError(f"{folder} is not a psf-rl estimator; pass a model written by latent-focus train-psf")
            if card.extra.get("modality", modality) != modality:
                raise InputError(f"{folder} estimates {card.extra.get('modality')} planes, not {modality}; pass "
                                 f"--modality {card.extra.get('modality')} or another model")
            self._estimators[modality] = Estimator(model, self.device, modality, card, card.name or folder.name)
        return self._estimators[modality]

    def blur_maps(self, image: np.ndarray, optics: Optics, modality: str = "widefield") -> ParameterMaps:
        """Per-pixel PSF-parameter maps of one plane."""
        return self.estimator(modality).maps(image, optics)

    def restore(self, stack: Stack, plane: int, params: PsfRLParams, partner: int | None = None):
        if params.modality == "brightfield":
            raise InputError("psf-rl deconvolves widefield fluorescence only: a brightfield image is not a "
                             "non-negative object blurred by a PSF (a phase object's contrast inverts through focus). "
                             "Deblur a brightfield plane with --method analysis-synthesis, or a plane of a z-stack "
                             "with its blurrier neighbour with --method latent")
        plane = check_plane_index(plane, stack.n_planes)
        image = np.asarray(stack.data[plane], dtype=np.float32)
        optics = optics_for(params, stack)
        info = {"method": self.name, "plane": plane, "device": self.device_name, "target": params.target,
                "optics": {"na": optics.na, "wavelength_um": optics.wavelength_um,
                           "n_immersion": optics.n_immersion, "pixel_size_um": optics.pixel_size_um}}
        note = optics_note(params, stack)
        if note:
            info["note"] = note
        yield Progress(0, 100, "estimating the PSF")
        maps = None
        if params.defocus is None and not (params.psf and _read_psf(params.psf).n_planes == 1):
            maps = self.blur_maps(image, optics)
            info["model"] = Path(self.model_name).name if self.model_name else SHIPPED["widefield"]
        measured = None
        if params.psf:
            measured = MeasuredPsf(_read_psf(params.psf), optics.pixel_size_um, params.psf)
            info["psf"] = f"measured: {Path(params.psf).name}"
        return (yield from deblur(image, maps, optics, params, self.device, measured, info))


def deblur(image: np.ndarray, maps: ParameterMaps | None, optics: Optics, params: PsfRLParams, device,
           measured: MeasuredPsf | None = None, info: dict | None = None):
    """Deblur one plane whose PSF-parameter maps are known (or whose defocus ``params.defocus`` is given).

    A generator yielding :class:`Progress` and returning :class:`Restored`; :meth:`PsfRL.restore` estimates the
    maps and calls it.
    """
    info = dict(info or {})
    min_waves = MIN_WAVES if params.min_defocus is None else float(optics.defocus_waves(params.min_defocus))
    plan = plan_plane(image, maps, optics, params.tile, params.target, params.iterations, params.tv,
                      params.defocus, min_waves, measured)
    info.update(plan.summary())
    if plan.act is not None and float(plan.act.max()) == 0.0:
        info["rule"] = (f"estimated defocus below {min_waves:g} waves everywhere "
                        f"({float(optics.defocus_um(min_waves)):.2f} um): the plane is left unchanged")
        yield Progress(100, 100, "unchanged")
        return Restored(np.array(image, dtype=np.float32), info)
    gen = richardson_lucy_sv(image, plan.kernels, plan.boxes, plan.overlap, plan.iterations, plan.tv,
                             reblur=plan.focus_kernels, device=device)
    try:
        while True:
            i = next(gen)
            yield Progress(10 + int(88 * i / max(plan.iterations, 1)), 100, f"iteration {i}/{plan.iterations}")
    except StopIteration as stop:
        out = stop.value
    finally:
        gen.close()
    if plan.act is not None:
        out = plan.act * out + (1 - plan.act) * image
        info["rule"] = "refocused where the estimated defocus exceeds the depth of field, unchanged elsewhere"
    else:
        info["rule"] = "deconvolved to the object"
    yield Progress(100, 100, "done")
    return Restored(np.asarray(out, dtype=np.float32), info)


def _read_psf(path: str) -> Stack:
    from ...io import read_stack

    try:
        return read_stack(path)
    except InputError as exc:
        raise InputError(f"--psf: {exc}") from None


METHOD = PsfRL
