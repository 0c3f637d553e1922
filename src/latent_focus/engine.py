"""Run a trained autoencoder on image planes: encode, mix latents, decode — tiled, on any device.

:class:`LatentFocus` is the one object the command line, the benchmarks and the napari widgets use.
Planes go in and come out in the input's intensity units; latents stay on the compute device.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import numpy as np
import torch
from torch.nn import functional as F

from .device import describe, select_device
from .errors import InputError
from .io import Normalizer, check_planes
from .latent import damp_alpha, extrapolate, interpolate, map_parts, parts
from .models import deblur_strength, find_model, load_model
from .tiling import plan_tiles, stitch

DEFAULT_TILE = 1024
DEFAULT_OVERLAP = 64


@dataclass
class Encoded:
    """Latents of one plane: one latent per tile, plus where the tiles lie.

    Supports ``a * Encoded`` and ``Encoded + Encoded`` so the latent maths applies unchanged.
    """

    latents: list
    boxes: list[tuple[int, int, int, int]]
    shape: tuple[int, int]
    overlap: int
    normalizer: Normalizer

    def _map(self, fn, *others: "Encoded") -> "Encoded":
        if any(o.boxes != self.boxes or o.shape != self.shape for o in others):
            raise InputError("the two planes differ in size; pass planes of one stack")
        latents = [map_parts(fn, *zs) for zs in zip(self.latents, *(o.latents for o in others))]
        return Encoded(latents, self.boxes, self.shape, self.overlap, self.normalizer)

    def __mul__(self, w: float) -> "Encoded":
        return self._map(lambda z: z * float(w))

    __rmul__ = __mul__

    def __add__(self, other: "Encoded") -> "Encoded":
        return self._map(lambda z, o: z + o, other)

    def flatten(self) -> np.ndarray:
        """All latent values of all tiles as one float32 vector (for LDS, APD and PCA)."""
        return np.concatenate([t.detach().float().cpu().numpy().ravel() for z in self.latents for t in parts(z)])


class LatentFocus:
    """A loaded model ready for inference.

    Parameters
    ----------
    model : str or path, optional
        Model folder, shipped/user model name, or None for the shipped default.
    device : str
        ``auto`` (CUDA, then MPS, then CPU), ``cpu``, ``cuda`` or ``mps``.
    tile, overlap : int
        Planes larger than ``tile`` pixels a side are processed in overlapping tiles.
    """

    def __init__(self, model: str | os.PathLike | None = None, device: str = "auto",
                 tile: int = DEFAULT_TILE, overlap: int = DEFAULT_OVERLAP):
        self.device = select_device(device)
        self.model_path = find_model(model)
        self.model, self.card = load_model(self.model_path, self.device)
        self.tile = int(tile)
        self.overlap = int(overlap)
        self.strength = deblur_strength(self.card)

    @property
    def device_name(self) -> str:
        return describe(self.device)

    @property
    def name(self) -> str:
        return self.card.get("name", self.model_path.name)

    def normalizer(self, stack: np.ndarray) -> Normalizer:
        """Per-stack intensity normalisation with the model's percentiles."""
        pct = tuple(self.card.get("normalization", {}).get("percentiles", (0.1, 99.9)))
        return Normalizer.from_data(stack, pct)

    # -- encoding and decoding -------------------------------------------------------------------
    def _run(self, fn, x: torch.Tensor):
        use_amp = self.device.type == "cuda"
        with torch.inference_mode(), torch.autocast("cuda", dtype=torch.bfloat16, enabled=use_amp):
            return fn(x)

    def _pad(self, x: torch.Tensor) -> tuple[torch.Tensor, tuple[int, int]]:
        m = self.model.multiple
        h, w = x.shape[-2:]
        ph, pw = (-h) % m, (-w) % m
        if ph or pw:
            mode = "reflect" if ph < h and pw < w else "replicate"
            x = F.pad(x, (0, pw, 0, ph), mode=mode)
        return x, (h, w)

    def encode(self, plane: np.ndarray, normalizer: Normalizer, scale: float = 1.0) -> Encoded:
        """Latents of one (y, x) plane in input units; ``scale < 1`` encodes a downsampled preview."""
        plane = np.asarray(plane, dtype=np.float32)
        check_planes(plane[None], "plane")
        x = torch.from_numpy(normalizer.normalize(plane))[None, None]
        if scale != 1.0:
            size = (max(8, round(plane.shape[0] * scale)), max(8, round(plane.shape[1] * scale)))
            x = F.interpolate(x, size=size, mode="area")
        h, w = x.shape[-2:]
        while True:
            boxes = plan_tiles(h, w, self.tile, self.overlap)
            try:
                latents = []
                for y0, y1, x0, x1 in boxes:
                    t, _ = self._pad(x[..., y0:y1, x0:x1].to(self.device))
                    latents.append(self._run(self.model.encode, t))
                return Encoded(latents, boxes, (h, w), self.overlap, normalizer)
            except torch.cuda.OutOfMemoryError:
                self._shrink_or_fallback()

    def decode(self, enc: Encoded) -> np.ndarray:
        """Decode latents to a (y, x) plane in the input's intensity units."""
        h, w = enc.shape
        outs = []
        for z, (y0, y1, x0, x1) in zip(enc.latents, enc.boxes):
            try:
                out = self._run(self.model.decode, z)
            except torch.cuda.OutOfMemoryError:
                torch.cuda.empty_cache()
                z = map_parts(lambda t: t.cpu(), z)
                out = self.model.cpu().decode(z)
                self.model.to(self.device)
            outs.append(out[0, 0, : y1 - y0, : x1 - x0].float().cpu().numpy())
        plane = stitch(outs, enc.boxes, h, w, enc.overlap) if len(outs) > 1 else outs[0]
        return enc.normalizer.denormalize(plane)

    def _shrink_or_fallback(self) -> None:
        torch.cuda.empty_cache()
        if self.tile > 256:
            self.tile //= 2
        else:
            self.device = torch.device("cpu")
            self.model.to(self.device)

    # -- the method ------------------------------------------------------------------------------
    def reconstruct(self, plane: np.ndarray, normalizer: Normalizer) -> np.ndarray:
        """``D(E(x))``: the model's own reconstruction of a plane."""
        return self.decode(self.encode(plane, normalizer))

    def synthesize(self, plane_a: np.ndarray, plane_c: np.ndarray, alphas, normalizer: Normalizer) -> np.ndarray:
        """Blur synthesis: ``D(alpha*E(a) + (1-alpha)*E(c))`` for each alpha; returns (n, y, x)."""
        za, zc = self.encode(plane_a, normalizer), self.encode(plane_c, normalizer)
        return np.stack([self.decode(interpolate(za, zc, a)) for a in np.atleast_1d(alphas)])

    def deblur(self, plane_b: np.ndarray, plane_c: np.ndarray, alpha: float, normalizer: Normalizer,
               strength: float = 1.0) -> np.ndarray:
        """Deblurring: ``D(E(b)/alpha - (1-alpha)/alpha*E(c))``; ``b`` sharper than ``c``.

        ``strength < 1`` takes that fraction of the step beyond ``E(b)`` (:func:`latent.damp_alpha`);
        :attr:`strength` is the model's calibrated value (1 when its card has none).
        """
        zb, zc = self.encode(plane_b, normalizer), self.encode(plane_c, normalizer)
        return self.decode(extrapolate(zb, zc, damp_alpha(alpha, strength)))
