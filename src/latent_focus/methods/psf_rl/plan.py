"""What ``psf-rl`` does to one plane: the per-tile PSFs, the iteration count and TV weight, and where to act.

Everything is decided from the plane itself (its estimated PSF parameters and its noise), never from another
plane: the iteration count grows with the median estimated defocus of the tiles and shrinks with the noise, the
TV weight grows with the noise, and with ``target="focus"`` tiles whose estimated defocus is below ``min_waves``
are left as they are.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from ...errors import InputError
from ...metrics import noise_sigma
from ...optics.parametric import Optics, parametric_psfs
from ...tiling import plan_tiles
from .deconvolve import background_level
from .estimator import ParameterMaps

# The rule's constants, fitted by scripts/fit_psf_rl_rule.py on simulated thick-sample widefield stacks
RULE_A, RULE_P = 1.0, 1.0  # iterations = RULE_A * (W - MIN_WAVES)^RULE_P, fewer at low SNR
MIN_WAVES = 0.75  # defocus (waves at the pupil edge) below which refocusing is not attempted
TV_C = 0.4  # TV weight = TV_C / SNR, at most 0.01
OBJECT_SHIFT = 2.0  # target "object": iterations as for a defocus this many waves larger (set, not fitted)
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

    rule_waves: float = 0.0  # the defocus the iteration rule was given: the median over the tiles it acts on

    def summary(self) -> dict:
        z = np.abs(self.params[:, 0])
        return {"tiles": len(self.boxes), "defocus_um_median": round(float(np.median(z)), 3),
                "defocus_um_range": [round(float(z.min()), 3), round(float(z.max()), 3)],
                "astigmatism_waves_median": [round(float(np.median(self.params[:, i])), 3) for i in (1, 2)],
                "rule_waves": round(self.rule_waves, 3), "iterations": self.iterations, "tv": round(self.tv, 5),
                "snr": round(self.snr, 1),
                "acting_fraction": None if self.act is None else round(float(self.act.mean()), 3)}


def signal_to_noise(image: np.ndarray) -> float:
    """Robust signal range (99.5th percentile above the background) over the noise sigma."""
    sigma = max(noise_sigma(image), 1e-9)
    return float(max(np.percentile(image, 99.5) - background_level(image), 0.0) / sigma)


def iterations_rule(waves: float, snr: float, a: float = RULE_A, w0: float = MIN_WAVES, p: float = RULE_P) -> int:
    """RL iterations for a defocus of ``waves``: none below ``w0``, then ``a (W - w0)^p``, damped at low SNR."""
    if waves < w0:
        return 0
    damp = min(1.0, max(0.25, math.log10(max(snr, 1.0)) / 2.0))
    return int(min(round(a * (waves - w0) ** p * damp), 200))


def tv_rule(snr: float, c: float = TV_C) -> float:
    """TV weight for a signal-to-noise ratio ``snr``: more noise, more regularisation."""
    return float(np.clip(c / max(snr, 1.0), 0.0, 0.01))


def plan_plane(image: np.ndarray, maps: ParameterMaps | None, optics: Optics, tile: int, target: str,
               iterations: int | None = None, tv: float | None = None, defocus_um: float | None = None,
               min_waves: float = MIN_WAVES, measured: MeasuredPsf | None = None) -> Plan:
    """The plan for ``image``: tiles of side ``tile``, PSFs from ``maps`` (or one known ``defocus_um``).

    With ``measured``, the tiles' kernels come from that PSF (at their estimated defocus, for a PSF z-stack)
    instead of the parametric model.
    """
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
    if measured is not None:
        size = measured.size
    size = min(size, MAX_KERNEL, 2 * max(h, w) + 1)
    size -= 1 - size % 2
    if measured is not None:
        kernels = np.stack([measured.kernel(z, size) for z in params[:, 0]])
    else:
        kernels = parametric_psfs(params, optics, size)
    snr = signal_to_noise(image)
    focus_kernels, act = None, None
    if target == "focus":
        focus = params.copy()
        focus[:, 0] = 0.0
        focus_kernels = parametric_psfs(focus, optics, size)
        if measured is not None and measured.z_um is not None:
            focus_kernels = np.stack([measured.kernel(0.0, size)] * len(boxes))
        act = _act_map(maps, optics, (h, w), min_waves) if defocus_um is None else np.full(
            (h, w), float(abs(optics.defocus_waves(defocus_um)) >= min_waves), np.float32)
    acting = waves[waves >= min_waves] if target == "focus" else waves
    rule_waves = float(np.median(acting)) if acting.size else 0.0
    if iterations is not None:
        n_iter = iterations
    elif target == "focus":
        n_iter = iterations_rule(rule_waves, snr, w0=min(min_waves, MIN_WAVES))
    else:  # the object: the in-focus blur is undone too, as if the defocus were OBJECT_SHIFT waves larger
        n_iter = iterations_rule(rule_waves, snr, w0=-OBJECT_SHIFT)
    weight = tv if tv is not None else tv_rule(snr)
    return Plan(boxes, overlap, params, kernels, focus_kernels, int(n_iter), float(weight), act, snr, waves,
                rule_waves)


class MeasuredPsf:
    """A measured PSF from a file: one 2-D kernel sampled like the image, or a PSF z-stack (bead) in um.

    Raises :class:`InputError` for anything that is not a kernel: NaN or negative values, no signal, a plane
    far from square or larger than :data:`MAX_KERNEL`, a z-stack without z positions or pixel size.
    """

    def __init__(self, stack, pixel_size_um: float, path: str = "the PSF file"):
        data = np.asarray(stack.data, dtype=np.float64)
        h, w = data.shape[1:]
        if not np.isfinite(data).all():
            raise InputError(f"{path} holds NaN or Inf; pass a PSF with finite values")
        if abs(h - w) > 2 or max(h, w) > 4 * MAX_KERNEL:
            raise InputError(f"{path} has planes of {h}x{w} pixels: not a PSF kernel; pass a square 2-D kernel or "
                             "a PSF z-stack (z, y, x) of a bead")
        self.path, self.pixel_size_um = path, pixel_size_um
        if stack.n_planes == 1:
            k = data[0] - np.median(np.concatenate([data[0, 0], data[0, -1], data[0, :, 0], data[0, :, -1]]))
            k = np.clip(k, 0, None)
            if k.sum() <= 0:
                raise InputError(f"{path} has no signal above its border; pass a PSF kernel")
            side = min(h, w) - (1 - min(h, w) % 2)
            cy, cx = np.unravel_index(int(np.argmax(k)), k.shape)
            r = min(side // 2, cy, cx, h - 1 - cy, w - 1 - cx)
            self._kernel, self.z_um = k[cy - r:cy + r + 1, cx - r:cx + r + 1], None
            self.size = 2 * r + 1
        else:
            if stack.z_um is None or not stack.pixel_size_um:
                raise InputError(f"{path} is a PSF z-stack without z positions or pixel size; put a z.txt beside "
                                 "it and record its pixel size in the file, or pass a 2-D kernel")
            self._stack, self.z_um = data, np.asarray(stack.z_um, dtype=np.float64)
            side = int(min(h, w) * stack.pixel_size_um / pixel_size_um)
            self.size = max(3, side - (1 - side % 2))
            self._source_px = float(stack.pixel_size_um)

    def kernel(self, defocus_um: float, size: int) -> np.ndarray:
        """The kernel at ``defocus_um`` (a 2-D kernel ignores it), ``size`` x ``size``, summing to 1."""
        from ...optics import psf_from_bead_stack

        if self.z_um is None:
            k = self._kernel
            pad = max(0, (size - k.shape[0]) // 2)
            k = np.pad(k, pad)
            c, r = k.shape[0] // 2, size // 2
            k = k[c - r:c + r + 1, c - r:c + r + 1]
            return k / k.sum()
        z = float(np.clip(defocus_um, 0.0, np.abs(self.z_um - self.z_um[np.argmax(
            self._stack.reshape(len(self._stack), -1).max(1))]).max()))
        try:
            return psf_from_bead_stack(self._stack, self.z_um, self._source_px, self.pixel_size_um, z, size)
        except InputError:  # beyond the stack's range on this side: the other side, as the model is even in z
            return psf_from_bead_stack(self._stack, self.z_um, self._source_px, self.pixel_size_um, -z, size)


def _act_map(maps: ParameterMaps, optics: Optics, shape, min_waves: float) -> np.ndarray:
    """1 where the estimated defocus is at least ``1.5 min_waves``, 0 below ``min_waves``, a ramp between."""
    waves = np.abs(optics.defocus_waves(maps.defocus_um))
    return np.clip((waves - min_waves) / (0.5 * min_waves), 0.0, 1.0).astype(np.float32)
