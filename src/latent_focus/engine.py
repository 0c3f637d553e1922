"""Run a trained autoencoder on image planes: encode, mix latents, decode — tiled, on any device.

:class:`LatentFocus` is the one object the command line, the benchmarks and the napari widgets use.
Planes go in and come out in the input's intensity units; latents stay on the compute device.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Generator
from dataclasses import dataclass
from functools import cached_property

import numpy as np
import torch
from torch.nn import functional as F

from .device import describe, select_device
from .errors import InputError
from .io import Normalizer, check_planes
from .latent import damp_alpha, extrapolate, interpolate, map_parts, parts
from .models import find_model, load_model
from .progress import Progress, run
from .tiling import pad_to_multiple, plan_tiles, stitch

DEFAULT_TILE = 1024
DEFAULT_OVERLAP = 64


@dataclass(frozen=True)
class Plan:
    """How one call runs: the tile side of its tile plan, and its device (the engine's; the CPU once the GPU
    cannot hold even the smallest tile). It travels with the call and with the latents it makes."""

    tile: int
    device: torch.device

    def smaller(self, min_tile: int) -> "Plan":
        """The plan to retry with after the GPU ran out of memory: half the tile, then the CPU."""
        if self.tile > min_tile:
            return Plan(self.tile // 2, self.device)
        return Plan(self.tile, torch.device("cpu"))


@dataclass
class Encoded:
    """Latents of one plane: one latent per tile, where the tiles lie, and the call's :class:`Plan`.

    Latents combine only when their plans agree; :meth:`LatentFocus.encode_many` encodes several planes with
    one plan. Supports ``a * Encoded`` and ``Encoded + Encoded`` so the latent maths applies unchanged.
    """

    latents: list
    boxes: list[tuple[int, int, int, int]]
    shape: tuple[int, int]
    overlap: int
    normalizer: Normalizer
    plan: Plan

    def _map(self, fn, *others: "Encoded") -> "Encoded":
        if any(o.shape != self.shape for o in others):
            raise InputError("the two planes differ in size; pass planes of one stack")
        if any(o.boxes != self.boxes or o.plan != self.plan for o in others):
            raise ValueError("latents of one plane size tiled differently; encode them with one tile plan")
        latents = [map_parts(fn, *zs) for zs in zip(self.latents, *(o.latents for o in others))]
        return Encoded(latents, self.boxes, self.shape, self.overlap, self.normalizer, self.plan)

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

    The engine holds no state that changes: each call starts from its own :class:`Plan` (by default
    :meth:`plan`), which travels with the :class:`Encoded` it returns. On a GPU out-of-memory error an encode
    retries every plane with half the tile size (down to 256 px), then on the CPU; a decode finishes on the
    CPU. Only that call falls back: the next starts from the engine's device again. One lock serialises the
    model's use, so the live slider and a whole-stack job can share an engine.
    """

    MIN_TILE = 256

    def __init__(self, model: str | os.PathLike | None = None, device: str = "auto",
                 tile: int = DEFAULT_TILE, overlap: int = DEFAULT_OVERLAP):
        self.device = select_device(device)
        self.model_path = find_model(model)
        self.model, self.card = load_model(self.model_path, self.device)
        if self.device.type == "cpu":  # oneDNN convolutions run faster on channels-last tensors
            self.model.to(memory_format=torch.channels_last)
        self.tile = check_tile(tile, overlap)
        self.overlap = int(overlap)
        self.strength = self.card.strength
        self.lock = threading.RLock()

    @property
    def device_name(self) -> str:
        return describe(self.device)

    @property
    def name(self) -> str:
        return self.card.name or self.model_path.name

    def plan(self, tile: int | None = None) -> Plan:
        """Where a call starts: ``tile`` (default: the engine's) on the engine's device."""
        return Plan(self.tile if tile is None else check_tile(tile, self.overlap), self.device)

    def normalizer(self, stack: np.ndarray) -> Normalizer:
        """Per-stack intensity normalisation with the model's percentiles."""
        return Normalizer.from_data(stack, self.card.percentiles)

    # -- encoding and decoding -------------------------------------------------------------------
    def _run(self, fn, x, device: torch.device):
        use_amp = device.type == "cuda"
        with torch.inference_mode(), torch.autocast("cuda", dtype=torch.bfloat16, enabled=use_amp):
            return fn(x)

    def _pad(self, x: torch.Tensor) -> torch.Tensor:
        return pad_to_multiple(x, self.model.multiple)

    @cached_property
    def _cpu_model(self):
        """The model on the CPU, for calls that fall back there (loaded from its folder: the GPU is full)."""
        return load_model(self.model_path, torch.device("cpu"))[0].to(memory_format=torch.channels_last)

    def _model_on(self, device: torch.device):
        return self.model if device == self.device else self._cpu_model

    def encode(self, plane: np.ndarray, normalizer: Normalizer, scale: float = 1.0,
               plan: Plan | None = None) -> Encoded:
        """Latents of one (y, x) plane in input units; ``scale < 1`` encodes a downsampled preview.

        ``plan`` (default: :meth:`plan`) starts this call; the plan that ran is ``Encoded.plan``.
        """
        return self.encode_many([plane], normalizer, scale, plan)[0]

    def encode_many(self, planes, normalizer: Normalizer, scale: float = 1.0,
                    plan: Plan | None = None) -> list[Encoded]:
        """Latents of several planes of one size with one plan; see :meth:`encode_steps`."""
        return run(self.encode_steps(planes, normalizer, scale, plan))

    def encode_steps(self, planes, normalizer: Normalizer, scale: float = 1.0,
                     plan: Plan | None = None) -> Generator[Progress, None, list[Encoded]]:
        """Latents of several planes of one size with one plan, so that they can be mixed.

        A generator yielding a :class:`~latent_focus.progress.Progress` after each tile (closing it stops there).
        On a GPU out-of-memory error every plane is encoded again with half the tile (down to 256 px), then on
        the CPU.
        """
        xs = []
        for plane in planes:
            plane = np.asarray(plane, dtype=np.float32)
            check_planes(plane[None], "plane")
            x = torch.from_numpy(normalizer.normalize(plane))[None, None]
            if scale != 1.0:
                size = (max(8, round(plane.shape[0] * scale)), max(8, round(plane.shape[1] * scale)))
                x = F.interpolate(x, size=size, mode="area")
            xs.append(x)
        if len({x.shape for x in xs}) > 1:
            raise InputError("the planes differ in size; pass planes of one stack")
        h, w = xs[0].shape[-2:]
        plan = self.plan() if plan is None else plan
        while True:
            boxes = plan_tiles(h, w, plan.tile, self.overlap)
            latents = []
            try:
                for x in xs:
                    latents.append([])
                    for y0, y1, x0, x1 in boxes:
                        tile = self._pad(x[..., y0:y1, x0:x1]).to(plan.device)
                        with self.lock:
                            latents[-1].append(self._run(self._model_on(plan.device).encode, tile, plan.device))
                        yield Progress(sum(map(len, latents)), len(xs) * len(boxes), "encoding")
            except torch.cuda.OutOfMemoryError:
                torch.cuda.empty_cache()
                plan = plan.smaller(self.MIN_TILE)
                continue
            return [Encoded(z, boxes, (h, w), self.overlap, normalizer, plan) for z in latents]

    def decode(self, enc: Encoded) -> np.ndarray:
        """Decode latents to a (y, x) plane in the input's intensity units; see :meth:`decode_steps`."""
        return run(self.decode_steps(enc))

    def decode_steps(self, enc: Encoded) -> Generator[Progress, None, np.ndarray]:
        """Decode latents to a (y, x) plane in the input's intensity units (the rest on the CPU after a GPU
        out-of-memory error); yields a :class:`~latent_focus.progress.Progress` after each tile."""
        h, w = enc.shape
        device = enc.plan.device
        outs = []
        for z, (y0, y1, x0, x1) in zip(enc.latents, enc.boxes):
            with self.lock:
                try:
                    out = self._run(self._model_on(device).decode, map_parts(lambda t: t.to(device), z), device)
                except torch.cuda.OutOfMemoryError:
                    torch.cuda.empty_cache()
                    device = torch.device("cpu")
                    out = self._run(self._model_on(device).decode, map_parts(lambda t: t.cpu(), z), device)
            outs.append(out[0, 0, : y1 - y0, : x1 - x0].float().cpu().numpy())
            yield Progress(len(outs), len(enc.boxes), "decoding")
        plane = stitch(outs, enc.boxes, h, w, enc.overlap) if len(outs) > 1 else outs[0]
        return enc.normalizer.denormalize(plane)

    # -- the method ------------------------------------------------------------------------------
    def encode_pair(self, plane_b: np.ndarray, plane_c: np.ndarray, normalizer: Normalizer,
                    scale: float = 1.0) -> tuple[Encoded, Encoded]:
        """Latents of two planes of one stack with one tile plan (so that they can be mixed)."""
        zb, zc = self.encode_many([plane_b, plane_c], normalizer, scale)
        return zb, zc

    def reconstruct(self, plane: np.ndarray, normalizer: Normalizer) -> np.ndarray:
        """``D(E(x))``: the model's own reconstruction of a plane."""
        return self.decode(self.encode(plane, normalizer))

    def synthesize(self, plane_a: np.ndarray, plane_c: np.ndarray, alphas, normalizer: Normalizer) -> np.ndarray:
        """Blur synthesis: ``D(alpha*E(a) + (1-alpha)*E(c))`` for each alpha; returns (n, y, x)."""
        za, zc = self.encode_pair(plane_a, plane_c, normalizer)
        return np.stack([self.decode(interpolate(za, zc, a)) for a in np.atleast_1d(alphas)])

    def deblur(self, plane_b: np.ndarray, plane_c: np.ndarray, alpha: float, normalizer: Normalizer,
               strength: float = 1.0) -> np.ndarray:
        """Deblurring: ``D(E(b)/alpha - (1-alpha)/alpha*E(c))``; ``b`` sharper than ``c``.

        ``strength < 1`` takes that fraction of the step beyond ``E(b)`` (:func:`latent.damp_alpha`);
        :attr:`strength` is the model's calibrated value (1 when its card has none).
        """
        zb, zc = self.encode_pair(plane_b, plane_c, normalizer)
        return self.decode(extrapolate(zb, zc, damp_alpha(alpha, strength)))


def check_tile(tile, overlap: int = DEFAULT_OVERLAP) -> int:
    """``tile`` as int when it is a usable tile size, else :class:`InputError` saying what to pass."""
    try:
        t = int(tile)
    except (TypeError, ValueError):
        raise InputError(f"--tile must be a whole number of pixels; got {tile!r}") from None
    if t != tile or t < max(64, overlap + 1):
        raise InputError(f"--tile must be at least {max(64, overlap + 1)} pixels; got {tile}. "
                         f"Pass e.g. --tile {DEFAULT_TILE}")
    return t
