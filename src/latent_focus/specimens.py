"""Procedural in-focus specimens for simulated training stacks: puncta, filaments and cell bodies.

Each function returns a non-negative (size, size) float64 image of fluorophore density (or, for
brightfield, of optical thickness) drawn from a numpy ``Generator``; :func:`random_specimen` mixes them,
optionally with planes of a real in-focus stack given as content.
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage
from scipy.special import expit


def puncta(size: int, rng: np.random.Generator) -> np.ndarray:
    """Diffraction-sized to micron-sized spots (vesicles, foci) over faint cell bodies."""
    img = 0.15 * cells(size, rng)
    n = int(rng.integers(20, 400))
    yx = rng.uniform(0, size, (n, 2))
    spots = np.zeros((size, size))
    np.add.at(spots, (yx[:, 0].astype(int), yx[:, 1].astype(int)), rng.lognormal(0, 0.6, n))
    return img + ndimage.gaussian_filter(spots, rng.uniform(0.6, 2.5)) * 20


def filaments(size: int, rng: np.random.Generator) -> np.ndarray:
    """Smooth random curves of one or two pixels' width (microtubules, actin, mitochondria)."""
    img = np.zeros((size, size))
    for _ in range(int(rng.integers(5, 60))):
        pos = rng.uniform(0, size, 2)
        angle = rng.uniform(0, 2 * np.pi)
        turn = rng.uniform(0.02, 0.2)
        weight = rng.uniform(0.3, 1.0)
        for _ in range(int(rng.integers(20, 4 * size))):
            angle += rng.normal(0, turn)
            pos = pos + (np.sin(angle), np.cos(angle))
            y, x = int(pos[0]), int(pos[1])
            if not (0 <= y < size and 0 <= x < size):
                break
            img[y, x] += weight
    return ndimage.gaussian_filter(img, rng.uniform(0.5, 1.5)) * 4


def cells(size: int, rng: np.random.Generator) -> np.ndarray:
    """Overlapping smooth blobs with textured interiors and brighter rims (nuclei, cytoplasm)."""
    yy, xx = np.mgrid[:size, :size].astype(np.float64)
    img = np.zeros((size, size))
    for _ in range(int(rng.integers(2, 25))):
        cy, cx = rng.uniform(0, size, 2)
        r = rng.uniform(0.04, 0.25) * size
        ry, rx = r * rng.uniform(0.6, 1.4, 2)
        theta = rng.uniform(0, np.pi)
        dy, dx = yy - cy, xx - cx
        u = (dy * np.cos(theta) + dx * np.sin(theta)) / ry
        v = (-dy * np.sin(theta) + dx * np.cos(theta)) / rx
        d = np.sqrt(u ** 2 + v ** 2)
        body = expit((1 - d) * rng.uniform(8, 30))
        rim = np.exp(-((d - 1) / 0.08) ** 2) * rng.uniform(0, 0.8)
        img += rng.uniform(0.3, 1.0) * (body + rim)
    texture = ndimage.gaussian_filter(rng.standard_normal((size, size)), rng.uniform(1, 4))
    return np.clip(img * (1 + 0.6 * texture / (texture.std() + 1e-9)), 0, None)


_KINDS = (puncta, filaments, cells)


def random_specimen(size: int, rng: np.random.Generator, planes: np.ndarray | None = None) -> tuple[np.ndarray, str]:
    """One specimen and its description: a procedural kind, a plane of ``planes`` (z, y, x) when given
    (rotated, flipped, rescaled), or the sum of two of them."""
    def one() -> tuple[np.ndarray, str]:
        if planes is not None and rng.uniform() < 0.4:
            k = int(rng.integers(len(planes)))
            img = np.asarray(planes[k], dtype=np.float64)
            zoom = max(rng.uniform(1.0, 1.8), size / min(img.shape))
            img = ndimage.zoom(img, zoom, order=1)
            y, x = (int(rng.integers(0, s - size + 1)) for s in img.shape)
            img = np.rot90(img[y:y + size, x:x + size], int(rng.integers(4)))
            img = img - np.percentile(img, 2)
            return np.clip(img, 0, None) / max(float(np.percentile(img, 99.5)), 1e-9), f"plane {k} x{zoom:.2f}"
        kind = _KINDS[int(rng.integers(len(_KINDS)))]
        img = kind(size, rng)
        return img / max(float(np.percentile(img, 99.5)), 1e-9), kind.__name__
    img, what = one()
    if rng.uniform() < 0.3:
        other, what2 = one()
        img, what = img + rng.uniform(0.2, 1.0) * other, f"{what} + {what2}"
    return img, what
