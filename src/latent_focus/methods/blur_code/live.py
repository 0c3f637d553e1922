"""The blur slider's work, Qt-free: encode one plane once, then decode it at any blur code.

:func:`encode_plane` (a generator for the panel's worker) encodes the plane at full size and, for large
planes, at preview size, decodes its reconstruction (for residual decoding) and takes the blur codes of
every plane of the stack (for the plot). :func:`render` then decodes the plane at one blur code: the
plane's code is moved along the model's blur axis, toward the in-focus code (deblur) or away from it
(synthesised blur). A preview works on the plane downsampled to about :data:`PREVIEW_SIDE` pixels, where
blur spans fewer pixels, so its code moves by the same step scaled down with the image.
"""

from __future__ import annotations

from collections.abc import Generator
from dataclasses import dataclass

import numpy as np
import torch
from torch.nn import functional as F

from ...engine import Encoded, LatentFocus
from ...errors import InputError
from ...io import Normalizer, Stack, check_plane_index
from ..base import Progress
from .codes import BlurAxis, centre, decode_with, mean_code

PREVIEW_SIDE = 256


@dataclass
class EncodedPlane:
    """One plane of a stack, encoded for the slider (everything copied when the job started)."""

    engine: LatentFocus
    axis: BlurAxis
    decoding: str  # "residual" or "plain"
    source: str  # layer or file name
    plane: int
    image: np.ndarray  # the plane, input units
    own: np.ndarray  # its code vector
    codes: np.ndarray  # (planes,) blur codes of every plane of the stack (centre crops)
    full: Encoded
    full_rec: np.ndarray | None
    preview: Encoded | None = None  # None when the plane is small enough to decode at full size
    preview_image: np.ndarray | None = None
    preview_own: np.ndarray | None = None
    preview_rec: np.ndarray | None = None
    scale: float = 1.0

    @property
    def own_value(self) -> float:
        return self.axis.value(self.own)


def encode_plane(engine: LatentFocus, stack: Stack, plane: int, source: str = "",
                 decoding: str = "residual") -> Generator[Progress, None, EncodedPlane]:
    """Encode ``plane`` of ``stack`` for :func:`render`; yields progress, returns an :class:`EncodedPlane`."""
    plane = check_plane_index(plane, stack.n_planes)
    if decoding not in ("residual", "plain"):
        raise InputError(f"decoding must be residual or plain; got {decoding!r}")
    axis = BlurAxis.from_card(engine.card)
    norm: Normalizer = engine.normalizer(stack.data)
    image = np.array(stack.data[plane], dtype=np.float32)
    n = stack.n_planes
    steps = n + 2
    yield Progress(0, steps, f"encoding plane {plane}")
    full = engine.encode(image, norm)
    full_rec = engine.decode(full) if decoding == "residual" else None
    out = EncodedPlane(engine, axis, decoding, source, plane, image, mean_code(full), np.zeros(n), full, full_rec)
    yield Progress(1, steps, "preview")
    scale = PREVIEW_SIDE / max(image.shape)
    if scale < 2 / 3:
        out.scale = scale
        out.preview = engine.encode(image, norm, scale)
        out.preview_own = mean_code(out.preview)
        out.preview_image = norm.denormalize(F.interpolate(torch.from_numpy(norm.normalize(image))[None, None],
                                                           size=out.preview.shape, mode="area")[0, 0].numpy())
        out.preview_rec = engine.decode(out.preview) if decoding == "residual" else None
    for i in range(n):  # every plane's code, from its centre crop (as latent-focus blur-code-score does)
        out.codes[i] = axis.value(mean_code(engine.encode(centre(stack.data[i]), norm)))
        yield Progress(2 + i, steps, f"blur code of plane {i}")
    return out


def render(enc: EncodedPlane, value: float, preview: bool = False) -> np.ndarray:
    """The plane decoded at blur code ``value`` (full size; a preview is decoded small and upsampled)."""
    if preview and enc.preview is not None:
        target = enc.axis.vector(enc.axis.value(enc.preview_own) + (value - enc.own_value) * enc.scale,
                                 base=enc.preview_own)
        small = decode_with(enc.engine, enc.preview, target, enc.decoding == "residual", enc.preview_image,
                            enc.preview_rec)
        return F.interpolate(torch.from_numpy(small)[None, None], size=enc.image.shape, mode="bilinear",
                             align_corners=False)[0, 0].numpy()
    target = enc.axis.vector(value, base=enc.own)
    return decode_with(enc.engine, enc.full, target, enc.decoding == "residual", enc.image, enc.full_rec)
