"""Depth from the estimated PSF parameters, after one calibration on a z-stack of the same microscope.

A widefield defocus PSF is even in z, so the estimated defocus gives the distance to the focal plane but
not its side. The calibration fits ``|z - z_focus|^2 = scale * estimate^2 + offset`` on the planes of a bead or
cell z-stack (those the estimator does not saturate on): the estimator's own floor near focus adds to the blur
in quadrature, and far from focus the distance is proportional to the estimate. It looks for the side in the
astigmatism: a
microscope with some astigmatism shows it with one sign above focus and the other below, so the sign of the
projection of ``(A0, A45)`` on the calibrated direction gives the side. When the calibration stack shows no
such sign (fewer than :data:`MIN_SIGN_AGREEMENT` of its planes get the right side), depth stays unsigned.
Brightfield estimates carry their sign already; the calibration fits ``z - z_focus = scale * estimate + offset``.

A calibration is a small JSON file (:class:`DepthCalibration`).
"""

from __future__ import annotations

import json
import math
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from ...errors import InputError
from ...files import atomic_write
from ...optics.parametric import Optics
from .estimator import ParameterMaps

FORMAT = "latent-focus-depth/1"
MIN_SIGN_AGREEMENT = 0.8
SATURATION = 0.8  # planes estimated beyond this fraction of the estimator's range are left out of the fit


@dataclass
class DepthCalibration:
    """How estimated defocus maps to signed depth for one microscope (optics and pixel size)."""

    modality: str
    optics: dict
    scale: float  # widefield: |z|^2 = scale * estimate^2 + offset (um^2); brightfield: z = scale * estimate + offset
    offset: float
    sign_direction: list | None  # unit (A0, A45) direction that points to positive z, or None (unsigned)
    sign_agreement: float | None
    focus_plane: int
    focus_how: str
    residual_um: float
    source: str = ""
    model: str = ""
    planes: list = field(default_factory=list)

    @property
    def signed(self) -> bool:
        return self.sign_direction is not None

    @property
    def pixel_size_um(self) -> float:
        return float(self.optics["pixel_size_um"])

    def write(self, path: str | os.PathLike) -> Path:
        path = Path(path)
        text = json.dumps({"format": FORMAT, **asdict(self)}, indent=1)
        atomic_write(path, lambda tmp: Path(tmp).write_text(text))
        return path

    @classmethod
    def read(cls, path: str | os.PathLike) -> "DepthCalibration":
        path = Path(path)
        try:
            data = json.loads(path.read_text())
        except (OSError, ValueError) as exc:
            raise InputError(f"cannot read the depth calibration {path} ({exc}); pass a file written by "
                             "latent-focus calibrate-depth") from None
        if not isinstance(data, dict) or data.get("format") != FORMAT:
            raise InputError(f"{path} is not a depth calibration; pass a file written by latent-focus calibrate-depth")
        data.pop("format")
        try:
            return cls(**data)
        except TypeError as exc:
            raise InputError(f"the depth calibration {path} is incomplete ({exc}); calibrate again") from None

    def check_optics(self, optics: Optics, where: str = "the image") -> None:
        """:class:`InputError` unless ``optics`` (pixel size included) are those calibrated."""
        mine = Optics(**self.optics)
        if not math.isclose(optics.pixel_size_um, mine.pixel_size_um, rel_tol=0.01):
            raise InputError(f"the depth calibration was fitted at {mine.pixel_size_um:g} um pixels but {where} has "
                             f"{optics.pixel_size_um:g} um pixels; calibrate on a stack of this microscope and "
                             "camera, or pass the matching --pixel-size")
        for name in ("na", "wavelength_um", "n_immersion"):
            if not math.isclose(getattr(optics, name), getattr(mine, name), rel_tol=0.01):
                raise InputError(f"the depth calibration was fitted with {name} {getattr(mine, name):g}, not "
                                 f"{getattr(optics, name):g}; pass the calibration's --optics or calibrate again")

    def distance(self, defocus_um) -> np.ndarray:
        """Widefield: the distance (um) from the focal plane for an estimated |defocus| (um)."""
        return np.sqrt(np.clip(self.scale * np.asarray(defocus_um, dtype=np.float64) ** 2 + self.offset, 0, None))

    def depth(self, maps: ParameterMaps) -> np.ndarray:
        """Depth in um from the focal plane, per pixel: signed when the calibration or the modality allows."""
        if maps.signed:
            return (self.scale * maps.defocus_um + self.offset).astype(np.float32)
        dist = self.distance(maps.defocus_um)
        if not self.signed:
            return dist.astype(np.float32)
        u0, u45 = self.sign_direction
        side = np.where(u0 * maps.astig_0 + u45 * maps.astig_45 >= 0, 1.0, -1.0)
        return (side * dist).astype(np.float32)


def plane_summary(maps: ParameterMaps) -> np.ndarray:
    """Confidence-weighted medians ``(defocus_um, A0, A45)`` of one plane's maps."""
    w = maps.confidence.ravel().astype(np.float64) + 1e-6
    return np.array([_weighted_median(m.ravel(), w) for m in (maps.defocus_um, maps.astig_0, maps.astig_45)])


def _weighted_median(values: np.ndarray, weights: np.ndarray) -> float:
    order = np.argsort(values)
    cum = np.cumsum(weights[order])
    return float(values[order][np.searchsorted(cum, 0.5 * cum[-1])])


def fit_calibration(z_um: np.ndarray, estimates: np.ndarray, focus: int, modality: str, optics: Optics,
                    max_defocus_um: float, focus_how: str, source: str = "", model: str = "") -> DepthCalibration:
    """Fit the depth calibration from per-plane estimates ``(n_planes, 3)`` and the planes' z (um)."""
    rel = np.asarray(z_um, dtype=np.float64) - float(z_um[focus])
    est = np.asarray(estimates, dtype=np.float64)
    signed_est = modality == "brightfield"
    usable = np.abs(est[:, 0]) <= SATURATION * max_defocus_um
    if usable.sum() < 3:
        raise InputError(f"only {int(usable.sum())} planes lie within the estimator's range; pass a z-stack with "
                         "at least three planes nearer focus (a finer z step)")
    x = est[usable, 0] if signed_est else est[usable, 0] ** 2
    y = rel[usable] if signed_est else rel[usable] ** 2
    a_mat = np.stack([x, np.ones_like(x)], 1)
    (scale, offset), *_ = np.linalg.lstsq(a_mat, y, rcond=None)
    if scale == 0 or (not signed_est and scale < 0):
        raise InputError("the estimated defocus does not grow with the distance from focus in this stack; pass "
                         "a z-stack through focus with visible structure (e.g. beads)")
    fitted = a_mat @ [scale, offset]
    fitted = fitted if signed_est else np.sqrt(np.clip(fitted, 0, None))
    residual = float(np.sqrt(np.mean((fitted - (rel[usable] if signed_est else np.abs(rel[usable]))) ** 2)))
    direction, agreement = None, None
    if not signed_est:
        direction, agreement = _astigmatism_side(rel, est, usable, optics)
    planes = [{"plane": i, "z_um": round(float(rel[i]), 4), "defocus_um": round(float(e[0]), 4),
               "astig_0": round(float(e[1]), 4), "astig_45": round(float(e[2]), 4), "fitted": bool(usable[i])}
              for i, e in enumerate(est)]
    return DepthCalibration(modality, {"na": optics.na, "wavelength_um": optics.wavelength_um,
                                       "n_immersion": optics.n_immersion, "pixel_size_um": optics.pixel_size_um},
                            float(scale), float(offset), direction, agreement, int(focus), focus_how, residual,
                            source, model, planes)


def _astigmatism_side(rel, est, usable, optics: Optics):
    """The (A0, A45) direction that points to positive z, and how many planes it puts on the right side."""
    far = usable & (np.abs(optics.defocus_waves(rel)) >= 1.0)
    if far.sum() < 4 or len(set(np.sign(rel[far]))) < 2:
        return None, None
    v = (np.sign(rel[far])[:, None] * est[far, 1:]).mean(0)
    if np.linalg.norm(v) < 0.02:  # waves: no astigmatism to speak of
        return None, None
    u = v / np.linalg.norm(v)
    agreement = float(np.mean(np.sign(est[far, 1:] @ u) == np.sign(rel[far])))
    if agreement < MIN_SIGN_AGREEMENT:
        return None, agreement
    return [float(u[0]), float(u[1])], agreement
