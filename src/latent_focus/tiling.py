"""Tiles with overlap and smooth blending, so planes of any size run in bounded memory without seams."""

from __future__ import annotations

import numpy as np
import torch
from torch.nn import functional as F


def plan_tiles(height: int, width: int, tile: int, overlap: int) -> list[tuple[int, int, int, int]]:
    """(y0, y1, x0, x1) boxes of at most ``tile`` pixels a side, neighbours sharing ``overlap`` pixels."""
    if tile <= overlap:
        raise ValueError("tile must be larger than overlap")

    def starts(n: int) -> list[int]:
        if n <= tile:
            return [0]
        step = tile - overlap
        s = list(range(0, n - tile, step)) + [n - tile]
        return sorted(set(s))

    return [(y, min(y + tile, height), x, min(x + tile, width))
            for y in starts(height) for x in starts(width)]


def _ramp(n: int, lo_open: bool, hi_open: bool, overlap: int) -> np.ndarray:
    w = np.ones(n, dtype=np.float32)
    r = min(overlap, n // 2)
    if r > 0:
        # raised cosine, strictly positive so every pixel has weight
        edge = (0.5 - 0.5 * np.cos(np.pi * (np.arange(r) + 0.5) / r)).astype(np.float32)
        if lo_open:
            w[:r] = edge
        if hi_open:
            w[n - r:] = edge[::-1]
    return w


def blend_weights(box: tuple[int, int, int, int], height: int, width: int, overlap: int) -> np.ndarray:
    """Weight map of one tile: 1 inside, tapering to ~0 over the overlap at edges shared with other tiles."""
    y0, y1, x0, x1 = box
    wy = _ramp(y1 - y0, y0 > 0, y1 < height, overlap)
    wx = _ramp(x1 - x0, x0 > 0, x1 < width, overlap)
    return np.outer(wy, wx)


def stitch(tiles: list[np.ndarray], boxes: list[tuple[int, int, int, int]], height: int, width: int,
           overlap: int) -> np.ndarray:
    """Blend per-tile outputs of shape (..., h, w) into one (..., height, width) array."""
    lead = tiles[0].shape[:-2]
    out = np.zeros((*lead, height, width), dtype=np.float32)
    norm = np.zeros((height, width), dtype=np.float32)
    for t, box in zip(tiles, boxes):
        y0, y1, x0, x1 = box
        w = blend_weights(box, height, width, overlap)
        out[..., y0:y1, x0:x1] += t * w
        norm[y0:y1, x0:x1] += w
    return out / norm


def pad_to_multiple(x: torch.Tensor, multiple: int) -> torch.Tensor:
    """``x`` (..., h, w) padded at the bottom and right to multiples of ``multiple`` (mirrored where it can be)."""
    h, w = x.shape[-2:]
    ph, pw = (-h) % multiple, (-w) % multiple
    if ph or pw:
        x = F.pad(x, (0, pw, 0, ph), mode="reflect" if ph < h and pw < w else "replicate")
    return x
