"""Work the panel runs in threads: live slider decodes, stack deblurring, blur synthesis, latent view.

Everything here is Qt-free and takes a snapshot of its input, so it runs the same in tests.
Long jobs are generators that yield ``(done, total)`` and return their result.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Iterator

import numpy as np
import torch
from torch.nn import functional as F

from ..engine import Encoded, LatentFocus
from ..io import Normalizer, plane_positions
from ..latent import check_strength, damp_alpha, extrapolate, interpolate
from ..metrics import Linearity, linearity_by_side
from ..training import find_focus
from .planes import deblur_pair

PREVIEW_SIDE = 256  # long side of the preview planes decoded while the slider is dragged
T_MAX = 3.0


def mix(z_sharp: Encoded, z_blurry: Encoded, t: float) -> Encoded:
    """``t * z_sharp + (1 - t) * z_blurry``: blur synthesis for t <= 1 (alpha = t), deblurring above
    (alpha = 1 / t in Eq. 2)."""
    if t <= 0:
        return 1.0 * z_blurry
    if t <= 1:
        return interpolate(z_sharp, z_blurry, t)
    return extrapolate(z_sharp, z_blurry, 1.0 / t)


def describe_t(t: float) -> tuple[str, float]:
    """The operation and its alpha for slider value ``t``."""
    return ("blur synthesis", t) if t <= 1 else ("deblurring", 1.0 / t)


def preview_scale(shape: tuple[int, int]) -> float:
    return min(1.0, PREVIEW_SIDE / max(shape))


@dataclass
class LiveJob:
    """One slider value to decode, with everything it needs copied at request time."""

    engine: LatentFocus
    key: tuple
    target: str
    source: str
    planes: tuple[int, int]
    t: float
    preview: bool
    shape: tuple[int, int]
    normalizer: Normalizer
    encodings: dict | None = None  # {"full": (sharp, blurry), "preview": (sharp, blurry)}
    sharp: np.ndarray | None = None
    blurry: np.ndarray | None = None


@dataclass
class LiveResult:
    job: LiveJob
    image: np.ndarray
    encodings: dict = field(default_factory=dict)


def encode_pair(engine: LatentFocus, sharp: np.ndarray, blurry: np.ndarray, norm: Normalizer) -> dict:
    """Latents of both planes at full resolution and at preview resolution."""
    scale = preview_scale(sharp.shape)
    return {res: (engine.encode(sharp, norm, s), engine.encode(blurry, norm, s))
            for res, s in (("full", 1.0), ("preview", scale))}


def render(job: LiveJob) -> LiveResult:
    """Decode ``mix`` of the job's planes at its t; previews are upsampled to the full plane size."""
    encodings = job.encodings or encode_pair(job.engine, job.sharp, job.blurry, job.normalizer)
    z_sharp, z_blurry = encodings["preview" if job.preview else "full"]
    image = job.engine.decode(mix(z_sharp, z_blurry, job.t))
    if image.shape != job.shape:
        image = F.interpolate(torch.from_numpy(image)[None, None], size=job.shape, mode="bilinear",
                              align_corners=False)[0, 0].numpy()
    return LiveResult(job, image, encodings)


def deblur_stack(engine: LatentFocus, stack: np.ndarray, planes: list[int], z_um=None,
                 normalizer: Normalizer | None = None, strength: float | None = None) -> Iterator[tuple[int, int]]:
    """Deblur each of ``planes`` towards the in-focus plane.

    Each plane is paired with its neighbour further from focus (see :func:`deblur_pair`) and takes
    ``strength`` (default: the model's calibrated one) of the step to focus; the focus plane becomes
    the model's reconstruction of itself. Returns the ``(len(planes), y, x)`` result and
    ``{"focus_plane": f, "strength": s, "pairs": [[sharper, blurrier, alpha] or None, ...]}``.
    """
    strength = engine.strength if strength is None else check_strength(strength)
    norm = normalizer or engine.normalizer(stack)
    focus = find_focus(stack)
    positions = plane_positions(len(stack), z_um)
    latents: dict[int, Encoded] = {}

    def enc(i: int) -> Encoded:
        if i not in latents:
            latents[i] = engine.encode(stack[i], norm)
        return latents[i]

    out = np.empty((len(planes), *stack.shape[1:]), dtype=np.float32)
    pairs = []
    for k, plane in enumerate(planes):
        pair = deblur_pair(plane, focus, positions)
        if pair is None:
            out[k] = engine.decode(enc(plane))
        else:
            sharper, blurrier, alpha = pair
            out[k] = engine.decode(extrapolate(enc(sharper), enc(blurrier), damp_alpha(alpha, strength)))
        pairs.append(None if pair is None else list(pair))
        for i in [i for i in latents if pair is None or i not in pair[:2]]:
            del latents[i]
        yield k + 1, len(planes)
    return out, {"focus_plane": focus, "strength": strength, "pairs": pairs}


def synthesize_levels(engine: LatentFocus, sharp: np.ndarray, blurry: np.ndarray, levels: int,
                      normalizer: Normalizer) -> Iterator[tuple[int, int]]:
    """``levels`` planes from the sharper (t=1) to the blurrier plane (t=0); returns (levels, y, x)."""
    z_sharp, z_blurry = engine.encode(sharp, normalizer), engine.encode(blurry, normalizer)
    ts = np.linspace(1.0, 0.0, levels)
    out = np.empty((levels, *sharp.shape), dtype=np.float32)
    for k, t in enumerate(ts):
        out[k] = engine.decode(mix(z_sharp, z_blurry, float(t)))
        yield k + 1, levels
    return out, ts


@dataclass
class LatentView:
    """2-D PCA of the latents of every plane, and linearity scores per side of focus."""

    coords: np.ndarray  # (planes, 2)
    explained: tuple[float, float]
    focus: int
    scores: dict[str, Linearity]  # "below focus (planes)" / "above focus (planes)" -> LDS and APD
    spaced: bool  # whether the planes' z positions were known, so that ``apd_spaced`` uses them


def latent_view(engine: LatentFocus, stack: np.ndarray, side: int = 64,
                normalizer: Normalizer | None = None, z_um=None) -> Iterator[tuple[int, int]]:
    """Encode each plane downsampled to ``side`` px, project on the two main axes; returns a LatentView.

    ``z_um`` (the planes' positions, when known) paces the APD reference at the planes' real spacing.
    """
    norm = normalizer or engine.normalizer(stack)
    scale = min(1.0, side / max(stack.shape[1:]))
    rows = []
    for i, plane in enumerate(stack):
        rows.append(engine.encode(plane, norm, scale).flatten())
        yield i + 1, len(stack)
    z = np.stack(rows).astype(np.float64)
    centred = z - z.mean(axis=0)
    u, s, _ = np.linalg.svd(centred, full_matrices=False)
    k = min(2, len(s))
    coords = np.zeros((len(z), 2))
    coords[:, :k] = u[:, :k] * s[:k]
    var = s ** 2 / max(float((s ** 2).sum()), 1e-30)
    explained = (float(var[0]), float(var[1]) if len(var) > 1 else 0.0)
    focus = find_focus(stack)
    positions = plane_positions(len(z), z_um)
    scores = {f"{side} focus ({geo.planes[0]}-{geo.planes[-1]})": geo
              for side, geo in linearity_by_side(z.__getitem__, positions, focus).items()}
    return LatentView(coords, explained, focus, scores, z_um is not None)
