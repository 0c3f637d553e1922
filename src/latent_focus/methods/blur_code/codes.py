"""Blur codes of planes, and planes decoded with another blur code, through the tiled :class:`LatentFocus` engine.

The model's latent is ``(c_1, ..., c_K, b)`` per tile (:mod:`latent_focus.models.disentangled`). Users see
one number per plane, its **blur code** on the model's blur axis (:class:`BlurAxis`): larger is blurrier,
and the in-focus code is the mean code of the training stacks' focus planes. For a 1-D model that number
is the code itself (or its negative, whichever grows with blur); for a longer code (the ML-VAE) it is the
projection on the code's main axis.
"""

from __future__ import annotations

from collections.abc import Generator
from dataclasses import dataclass

import numpy as np
import torch

from ...engine import Encoded, LatentFocus
from ...errors import InputError
from ...io import Normalizer
from ...models.card import ModelCard
from ...models.disentangled import join_latent, split_latent
from ...progress import Progress, run

CODE_SIDE = 512  # planes larger than this are coded from their centre crop of this side (see plane_codes)


@dataclass(frozen=True)
class BlurAxis:
    """The model's blur axis, from ``ModelCard.extra["blur_code"]`` (written by the trainer)."""

    in_focus: np.ndarray  # (d,) the in-focus code
    axis: np.ndarray  # (d,) unit direction along which the code grows with blur
    range: tuple[float, float]  # blur codes of the training planes, 1st and 99th percentile

    @classmethod
    def from_card(cls, card: ModelCard) -> "BlurAxis":
        info = card.extra.get("blur_code") if isinstance(card.extra, dict) else None
        try:
            in_focus = np.asarray(info["in_focus"], dtype=np.float64)
            axis = np.asarray(info["axis"], dtype=np.float64)
            lo, hi = (float(v) for v in info["range"])
        except (TypeError, KeyError, ValueError):
            raise InputError("the model card has no blur code (extra.blur_code); pass a model trained with "
                             "latent-focus train --preset disentangled (or ml-vae)") from None
        if in_focus.shape != axis.shape or in_focus.ndim != 1 or not np.isfinite([*in_focus, *axis, lo, hi]).all():
            raise InputError("the model card's blur code is malformed; retrain the model")
        return cls(in_focus, axis / max(np.linalg.norm(axis), 1e-12), (lo, hi))

    @property
    def dim(self) -> int:
        return int(self.in_focus.size)

    @property
    def focus_value(self) -> float:
        """The in-focus blur code, as users see it."""
        return float(self.in_focus @ self.axis)

    def value(self, code) -> float:
        """The blur code users see for a code vector: its projection on the axis."""
        return float(np.asarray(code, dtype=np.float64) @ self.axis)

    def vector(self, value: float, base=None) -> np.ndarray:
        """The code vector at blur code ``value``: ``base`` (default: the in-focus code) moved along the axis."""
        base = self.in_focus if base is None else np.asarray(base, dtype=np.float64)
        return base + (float(value) - self.value(base)) * self.axis

    def preview_value(self, value: float, scale: float) -> float:
        """The blur code that gives a plane downsampled by ``scale`` the blur of ``value`` at full size:
        the distance from the in-focus code shrinks with the image (blur is measured in pixels)."""
        return self.focus_value + (float(value) - self.focus_value) * float(scale)


def tile_codes(enc: Encoded) -> np.ndarray:
    """(tiles, d) blur codes of an encoded plane."""
    return np.concatenate([split_latent(z)[1].float().cpu().numpy() for z in enc.latents])


def mean_code(enc: Encoded) -> np.ndarray:
    """The plane's code: its tiles' codes weighted by their area."""
    areas = np.array([(y1 - y0) * (x1 - x0) for y0, y1, x0, x1 in enc.boxes], dtype=np.float64)
    return (tile_codes(enc) * areas[:, None]).sum(axis=0) / areas.sum()


def with_code(enc: Encoded, code) -> Encoded:
    """``enc`` with every tile's blur code replaced by the vector ``code``."""
    latents = []
    for z in enc.latents:
        identity, old = split_latent(z)
        new = torch.as_tensor(np.asarray(code, dtype=np.float32), dtype=old.dtype, device=old.device)
        latents.append(join_latent(identity, new.reshape(1, -1).expand_as(old).contiguous()))
    return Encoded(latents, enc.boxes, enc.shape, enc.overlap, enc.normalizer, enc.plan)


def decode_with(engine: LatentFocus, enc: Encoded, code, residual: bool, plane: np.ndarray | None = None,
                reconstruction: np.ndarray | None = None) -> np.ndarray:
    """``D(c, code)`` in input units; see :func:`decode_with_steps`, which this runs to the end."""
    return run(decode_with_steps(engine, enc, code, residual, plane, reconstruction))


def decode_with_steps(engine: LatentFocus, enc: Encoded, code, residual: bool, plane: np.ndarray | None = None,
                      reconstruction: np.ndarray | None = None) -> Generator[Progress, None, np.ndarray]:
    """``D(c, code)`` in input units; ``residual``: ``plane + D(c, code) - D(c, b)``, so that only the change
    the new code makes is added (``reconstruction``, ``D(c, b)``, is decoded when not given). Yields after
    each tile decoded."""
    out = yield from engine.decode_steps(with_code(enc, code))
    if residual:
        rec = (yield from engine.decode_steps(enc)) if reconstruction is None else reconstruction
        out = np.asarray(plane, dtype=np.float32) + out - rec
    return np.asarray(out, dtype=np.float32)


def deblur(engine: LatentFocus, axis: BlurAxis, enc: Encoded, plane: np.ndarray, residual: bool,
           reconstruction: np.ndarray | None = None) -> tuple[np.ndarray, bool]:
    """The plane decoded with the in-focus code, and whether it was; see :func:`deblur_steps`."""
    return run(deblur_steps(engine, axis, enc, plane, residual, reconstruction))


def deblur_steps(engine: LatentFocus, axis: BlurAxis, enc: Encoded, plane: np.ndarray, residual: bool,
                 reconstruction: np.ndarray | None = None) -> Generator[Progress, None, tuple[np.ndarray, bool]]:
    """The plane decoded with the in-focus code, and whether it was; a plane whose blur code is already at or
    below the in-focus code is returned as it is (moving its code would add blur). Yields after each tile."""
    if axis.value(mean_code(enc)) <= axis.focus_value:
        return np.asarray(plane, dtype=np.float32).copy(), False
    return (yield from decode_with_steps(engine, enc, axis.in_focus, residual, plane, reconstruction)), True


def centre(plane: np.ndarray, side: int = CODE_SIDE) -> np.ndarray:
    """The centre crop of at most ``side`` x ``side`` pixels of a plane."""
    h, w = plane.shape
    y, x = max(0, (h - side) // 2), max(0, (w - side) // 2)
    return plane[y:y + min(h, side), x:x + min(w, side)]


def plane_codes(engine: LatentFocus, planes, normalizer: Normalizer, side: int = CODE_SIDE) -> np.ndarray:
    """(n, d) codes of ``planes``, each from its centre crop of at most ``side`` px (all at full resolution:
    the blur code measures blur in pixels, so planes are never downsampled for it)."""
    return np.stack([mean_code(engine.encode(centre(np.asarray(p), side), normalizer)) for p in planes])


def check_engine(engine: LatentFocus, name: str) -> LatentFocus:
    """``engine`` when its model has a blur code, else :class:`InputError` saying what to pass."""
    from .training import PRESETS

    if engine.card.preset not in PRESETS:
        raise InputError(f"model {name!r} is a {engine.card.preset!r} model without a blur code; pass a model "
                         f"trained with latent-focus train --preset disentangled (or ml-vae)")
    BlurAxis.from_card(engine.card)
    return engine
