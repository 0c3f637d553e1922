"""The canonical sampling the PSF estimator sees, and how an image is brought to it.

An image of optics with pupil cut-off ``fc = NA * pixel / wavelength`` (cycles per pixel) is resampled by
``zoom = fc / FC0`` so that the cut-off becomes :data:`FC0` cycles per pixel whatever the microscope: the same
defocus in waves then looks the same in every image. Patches of :data:`PATCH` canonical pixels are normalised
by their own percentiles. Training (:mod:`.simulation`) and inference (:mod:`.estimator`) both go through here.
"""

from __future__ import annotations

import math

import numpy as np
import torch
from torch.nn import functional as F

from ...optics.parametric import Optics

FC0 = 0.4  # canonical pupil cut-off, cycles per pixel
PATCH = 96  # canonical patch side, pixels
ZOOM_RANGE = (0.25, 2.5)  # zooms the estimator is trained on (a 100x/1.45 oil at 65 nm to a 10x/0.3 at 0.7 um)


def zoom_for(optics: Optics) -> float:
    """Canonical pixels per image pixel for these optics."""
    return optics.cutoff_px / FC0


def conditioning(zoom: float, optics: Optics) -> np.ndarray:
    """The scalars that condition the estimator's head: log zoom and NA / n."""
    return np.array([math.log(zoom), optics.na / optics.n_immersion], dtype=np.float32)


def resample(image: np.ndarray, zoom: float) -> np.ndarray:
    """``image`` (y, x) resampled by ``zoom`` (bilinear; area-averaged when shrinking), float32."""
    x = torch.from_numpy(np.ascontiguousarray(image, dtype=np.float32))[None, None]
    h, w = image.shape
    size = (max(1, int(round(h * zoom))), max(1, int(round(w * zoom))))
    if size == (h, w):
        return np.asarray(image, dtype=np.float32)
    out = F.interpolate(x, size=size, mode="bilinear", align_corners=False, antialias=zoom < 1)
    return out[0, 0].numpy()


def fit_patch(canon: np.ndarray) -> tuple[np.ndarray, tuple[int, int]]:
    """``canon`` mirrored out to at least :data:`PATCH` pixels a side, and where the original starts in it.

    A small field (a 128-pixel crop at 100x shrinks to about 50 canonical pixels) still fills one patch; training
    shows the estimator such mirrored patches too (:mod:`.simulation`).
    """
    h, w = canon.shape
    ph, pw = max(0, PATCH - h), max(0, PATCH - w)
    if ph or pw:
        canon = np.pad(canon, ((ph // 2, ph - ph // 2), (pw // 2, pw - pw // 2)), mode="symmetric")
    return canon, (ph // 2, pw // 2)


def normalize_patches(patches: torch.Tensor) -> torch.Tensor:
    """(n, 1, s, s) patches mapped so each one's 1st percentile is 0 and its 99th is 1."""
    flat = patches.flatten(1)
    lo = torch.quantile(flat, 0.01, dim=1)
    hi = torch.quantile(flat, 0.99, dim=1)
    scale = torch.clamp(hi - lo, min=1e-6)
    return (patches - lo[:, None, None, None]) / scale[:, None, None, None]
