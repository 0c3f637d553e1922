"""Estimating the PSF parameters of a plane: the CNN on overlapping canonical patches, smoothed into maps.

The plane is resampled to the canonical sampling (:mod:`.sampling`), cut into :data:`PATCH`-pixel patches
overlapping by half, and every patch gets the CNN's estimate of ``(W, A0, A45)`` (waves) with the scale of
its expected error. The estimates are smoothed over neighbouring patches, weighted by their certainty, and
blended back into per-pixel maps on the plane's own grid; the defocus map is converted to micrometres with
the optics.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from ...errors import InputError
from ...optics import check_image
from ...optics.parametric import Optics
from ...tiling import plan_tiles, stitch
from .sampling import PATCH, ZOOM_RANGE, conditioning, fit_patch, normalize_patches, resample, zoom_for

PRESET = "psf-estimator"
W_SCALE = 0.5  # waves: the defocus is regressed as sign(W) log(1 + |W| / W_SCALE)
A_SCALE = 0.25  # waves: astigmatism is regressed as A / A_SCALE


def encode_targets(t: torch.Tensor) -> torch.Tensor:
    """Targets ``(n, 3)`` in waves -> the values the network regresses."""
    w = torch.sign(t[:, :1]) * torch.log1p(t[:, :1].abs() / W_SCALE)
    return torch.cat([w, t[:, 1:] / A_SCALE], dim=1)


def decode_outputs(out: torch.Tensor) -> torch.Tensor:
    """Network outputs ``(n, 6)`` -> ``(W, A0, A45)`` in waves and the scales of their errors, ``(n, 6)``."""
    g, a = out[:, :1], out[:, 1:3]
    log_b = out[:, 3:6].clamp(-7, 5)
    w = torch.sign(g) * W_SCALE * torch.expm1(g.abs())
    b = log_b.exp()
    b_w = b[:, :1] * W_SCALE * torch.exp(g.abs())  # first-order error propagation through the log map
    return torch.cat([w, a * A_SCALE, b_w, b[:, 1:] * A_SCALE], dim=1)


def transform_targets(t: torch.Tensor, ops: torch.Tensor) -> torch.Tensor:
    """Targets of patches flipped (bits 1: x, 2: y) then transposed (bit 4): flips negate A45, transposes A0."""
    t = t.clone()
    flips = ((ops & 1) > 0).int() + ((ops & 2) > 0).int()
    t[:, 2] *= torch.where(flips % 2 == 1, -1.0, 1.0)
    t[:, 1] *= torch.where((ops & 4) > 0, -1.0, 1.0)
    return t


@dataclass
class ParameterMaps:
    """Per-pixel PSF parameters of one plane.

    Attributes
    ----------
    defocus_um : ndarray, float32, (y, x)
        |defocus| for widefield (the sign is not visible), signed defocus for brightfield.
    astig_0, astig_45 : ndarray, float32, (y, x)
        Astigmatism in waves (for widefield with the sign that goes with a positive defocus).
    error_um : ndarray, float32, (y, x)
        Expected absolute error of the defocus (the network's own estimate, after smoothing).
    confidence : ndarray, float32, (y, x)
        0 where no patch saw structure, 1 where the patches did.
    signed : bool
        Whether ``defocus_um`` carries a sign.
    """

    defocus_um: np.ndarray
    astig_0: np.ndarray
    astig_45: np.ndarray
    error_um: np.ndarray
    confidence: np.ndarray
    signed: bool

    def stack(self) -> np.ndarray:
        """(3, y, x): defocus (um), astigmatism 0 and 45 degrees (waves)."""
        return np.stack([self.defocus_um, self.astig_0, self.astig_45]).astype(np.float32)

    def mean_in(self, box) -> np.ndarray:
        """Confidence-weighted mean ``(defocus_um, A0, A45)`` over ``box = (y0, y1, x0, x1)``."""
        y0, y1, x0, x1 = box
        w = self.confidence[y0:y1, x0:x1].astype(np.float64) + 1e-6
        return np.array([float((m[y0:y1, x0:x1] * w).sum() / w.sum())
                         for m in (self.defocus_um, self.astig_0, self.astig_45)])


class Estimator:
    """The CNN with the optics of the planes it will see."""

    def __init__(self, model: torch.nn.Module, device: torch.device, modality: str = "widefield", card=None,
                 name: str = ""):
        self.model, self.device, self.modality = model.eval(), device, modality
        self.card, self.name = card, name

    @torch.no_grad()
    def patch_estimates(self, image: np.ndarray, optics: Optics):
        """Canonical tile boxes, their ``(n, 6)`` decoded estimates, the structure of each tile, canonical shape."""
        img = check_image(np.asarray(image), "plane").astype(np.float32)
        zoom = zoom_for(optics)
        lo, hi = ZOOM_RANGE
        if not lo / 2 <= zoom <= 2 * hi:
            raise InputError(f"the optics give a pupil cut-off of {optics.cutoff_px:.3f} cycles per pixel, far from "
                             f"what the estimator knows ({0.4 * lo:.2f}-{0.4 * hi:.2f}); check --optics and the "
                             f"pixel size")
        canon = resample(img, zoom)
        h, w = canon.shape
        canon, (oy, ox) = fit_patch(canon)
        boxes = plan_tiles(canon.shape[0], canon.shape[1], PATCH, PATCH // 2)
        patches = torch.from_numpy(np.stack([canon[y0:y1, x0:x1] for y0, y1, x0, x1 in boxes]))[:, None]
        structure = structure_score(patches)
        x = normalize_patches(patches)
        cond = torch.from_numpy(np.tile(conditioning(zoom, optics), (len(boxes), 1)))
        outs = [self.model(x[i:i + 64].to(self.device), cond[i:i + 64].to(self.device)).float().cpu()
                for i in range(0, len(x), 64)]
        est = decode_outputs(torch.cat(outs)).numpy().astype(np.float64)
        return boxes, est, structure, canon.shape, (oy, ox, h, w), zoom

    def maps(self, image: np.ndarray, optics: Optics) -> ParameterMaps:
        """Smoothed per-pixel parameter maps of ``image`` (on its own pixel grid)."""
        boxes, est, structure, cshape, (oy, ox, h, w), _ = self.patch_estimates(image, optics)
        signed = self.modality == "brightfield"
        weight = structure / np.maximum(est[:, 3], 0.05) ** 2
        smoothed = _smooth(boxes, est, weight, structure)
        planes = [np.full((y1 - y0, x1 - x0), 1.0, np.float32) for y0, y1, x0, x1 in boxes]
        layers = []
        for col in range(smoothed.shape[1]):
            tiles = [p * v for p, v in zip(planes, smoothed[:, col])]
            full = stitch(tiles, boxes, cshape[0], cshape[1], PATCH // 2)[oy:oy + h, ox:ox + w]
            layers.append(_to_grid(full, np.asarray(image).shape))
        waves, a0, a45, err_w, conf = layers
        if not signed:
            waves = np.abs(waves)
        per_um = optics.waves_per_um
        return ParameterMaps(waves / per_um, a0, a45, err_w / per_um, np.clip(conf, 0, 1), signed)


def structure_score(patches: torch.Tensor) -> np.ndarray:
    """How much structure above noise each patch holds: 0 for flat noise, towards 1 for clear structure."""
    x = patches[:, 0].double()
    lap = x[:, :-2, :-2] - 2 * x[:, :-2, 1:-1] + x[:, :-2, 2:] - 2 * x[:, 1:-1, :-2] + 4 * x[:, 1:-1, 1:-1] \
        - 2 * x[:, 1:-1, 2:] + x[:, 2:, :-2] - 2 * x[:, 2:, 1:-1] + x[:, 2:, 2:]
    sigma = np.sqrt(np.pi / 2) * lap.abs().mean(dim=(1, 2)) / 6.0  # Immerkaer's noise estimate
    spread = x.flatten(1).std(dim=1)
    snr = (spread / torch.clamp(sigma, min=1e-9)).numpy()
    return np.clip((snr - 1.2) / 2.0, 0.0, 1.0)


def _smooth(boxes, est: np.ndarray, weight: np.ndarray, structure: np.ndarray) -> np.ndarray:
    """Per-tile ``(W, A0, A45, error_W, confidence)`` after a certainty-weighted Gaussian over neighbouring tiles.

    The confidence is the structure of the neighbourhood (Gaussian-weighted), so flat regions get none.
    """
    centres = np.array([((y0 + y1) / 2, (x0 + x1) / 2) for y0, y1, x0, x1 in boxes])
    d2 = ((centres[:, None] - centres[None]) ** 2).sum(-1) / (PATCH / 2) ** 2
    k = np.exp(-0.5 * d2) * (weight[None] + 1e-9)
    k /= k.sum(1, keepdims=True)
    values = k @ est[:, :3]
    error = np.sqrt(k @ est[:, 3:4] ** 2)
    g = np.exp(-0.5 * d2)
    support = g @ structure / g.sum(1)
    return np.column_stack([values, error, np.clip(support, 0, 1)])


def _to_grid(canon_map: np.ndarray, shape) -> np.ndarray:
    """A canonical-grid map resampled onto the plane's ``shape``."""
    x = torch.from_numpy(np.ascontiguousarray(canon_map, dtype=np.float32))[None, None]
    out = torch.nn.functional.interpolate(x, size=tuple(shape), mode="bilinear", align_corners=False)
    return out[0, 0].numpy()
