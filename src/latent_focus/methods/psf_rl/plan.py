"""What ``psf-rl`` does to one plane: the per-tile PSFs, the iteration count and TV weight, and where to act.

Everything is decided from the plane itself (its estimated PSF parameters and its noise), never from another
plane: the iteration count grows with the estimated defocus and shrinks with the noise, the TV weight grows with
the noise, and with ``target="focus"`` tiles whose estimated defocus is below ``min_waves`` are left as they are.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from ...metrics import noise_sigma
from ...optics.parametric import Optics, parametric_psfs
from ...tiling import plan_tiles
from .deconvolve import background_level
from .estimator import ParameterMaps

MIN_WAVES = 0.5  # defocus (waves at the pupil edge) below which refocusing is not attempted: about the depth of field
MAX_KERNEL = 255  # largest PSF side in pixels


@dataclass
class Plan:
    """Per-tile PSFs and settings for one plane."""

    boxes: list
    overlap: int
    params: np.ndarray  # (n_tiles, 3): defocus_um, A0, A45
    kernels: np.ndarray  # (n_tiles, k, k) at the estimated defocus
    focus_kernels: np.ndarray | None  # (n_tiles, k, k) in focus (target "focus"), else None
    iterations: int
    tv: float
    act: np.ndarray | None  # (y, x) weight of the restored plane against the input (target "focus"), else None
    snr: float
    waves: np.ndarray  # (n_tiles,) estimated |defocus| in waves

    def summary(self) -> dict:
        z = np.abs(self.params[:, 0])
        return {"tiles": len(self.boxes), "defocus_um_median": round(float(np.median(z)), 3),
                "defocus_um_range": [round(float(z.min()), 3), round(float(z.max()), 3)],
                "astigmatism_waves_median": [round(float(np.median(self.params[:, i])), 3) for i in (1, 2)],
                "iterations": self.iterations, "tv": round(self.tv, 5), "snr": round(self.snr, 1),
                "acting_fraction": None if self.act is None else round(float(self.act.mean()), 3)}


def signal_to_noise(image: np.ndarray) -> float:
    """Robust signal range (99.5th percentile above the background) over the noise sigma."""
    sigma = max(noise_sigma(image), 1e-9)
    return float(max(np.percentile(image, 99.5) - background_level(image), 0.0) / sigma)


def auto_iterations(waves: float, snr: float) -> int:
    """RL iterations for a defocus of ``waves`` and a signal-to-noise ratio ``snr``."""
    base = 5 + 8 * waves
    damp = min(1.0, max(0.25, math.log10(max(snr, 1.0)) / 2.0))
    return int(np.clip(round(base * damp), 3, 80))


def auto_tv(snr: float) -> float:
    """TV weight for a signal-to-noise ratio ``snr``: more noise, more regularisation."""
    return float(np.clip(0.4 / max(snr, 1.0), 0.0005, 0.01))


def plan_plane(image: np.ndarray, maps: ParameterMaps | None, optics: Optics, tile: int, target: str,
               iterations: int | None = None, tv: float | None = None, defocus_um: float | None = None,
               min_waves: float = MIN_WAVES) -> Plan:
    """The plan for ``image``: tiles of side ``tile``, PSFs from ``maps`` (or one known ``defocus_um``)."""
    h, w = image.shape
    tile = min(tile, max(h, w))
    overlap = max(0, min(tile // 4, tile - 1))
    boxes = plan_tiles(h, w, tile, overlap)
    if defocus_um is not None:
        params = np.tile([[abs(defocus_um), 0.0, 0.0]], (len(boxes), 1))
    else:
        params = np.stack([maps.mean_in(b) for b in boxes])
        params[:, 0] = np.abs(params[:, 0])
    waves = optics.defocus_waves(params[:, 0])
    size = max(optics.support_px(z, abs(a) + abs(b)) for z, a, b in params)
    size = min(size, MAX_KERNEL, 2 * max(h, w) + 1)
    size -= 1 - size % 2
    kernels = parametric_psfs(params, optics, size)
    snr = signal_to_noise(image)
    focus_kernels, act = None, None
    if target == "focus":
        focus = params.copy()
        focus[:, 0] = 0.0
        focus_kernels = parametric_psfs(focus, optics, size)
        act = _act_map(maps, optics, (h, w), min_waves) if defocus_um is None else np.full(
            (h, w), float(abs(optics.defocus_waves(defocus_um)) >= min_waves), np.float32)
    acting = waves if act is None else waves[waves >= min_waves]
    n_iter = iterations if iterations is not None else auto_iterations(float(np.max(acting, initial=0.0)), snr)
    weight = tv if tv is not None else auto_tv(snr)
    return Plan(boxes, overlap, params, kernels, focus_kernels, int(n_iter), float(weight), act, snr, waves)


def _act_map(maps: ParameterMaps, optics: Optics, shape, min_waves: float) -> np.ndarray:
    """1 where the estimated defocus is at least ``1.5 min_waves``, 0 below ``min_waves``, a ramp between."""
    waves = np.abs(optics.defocus_waves(maps.defocus_um))
    return np.clip((waves - min_waves) / (0.5 * min_waves), 0.0, 1.0).astype(np.float32)
