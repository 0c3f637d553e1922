"""The latent method's interactive jobs besides the slider (:mod:`.live`): blur synthesis, latent view.

Qt-free; each job takes a snapshot of its input, so it runs the same in the napari panel and in tests.
Long jobs are generators that yield :class:`~latent_focus.progress.Progress` and return their result.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterator

import numpy as np

from ...engine import LatentFocus
from ...focus import find_focus
from ...io import Normalizer, plane_positions
from ...latent import mix
from ...metrics import Linearity, linearity_by_side
from ..base import Progress


def synthesize_levels(engine: LatentFocus, sharp: np.ndarray, blurry: np.ndarray, levels: int,
                      normalizer: Normalizer) -> Iterator[Progress]:
    """``levels`` planes from the sharper (t=1) to the blurrier plane (t=0); returns (levels, y, x)."""
    z_sharp, z_blurry = engine.encode_pair(sharp, blurry, normalizer)
    ts = np.linspace(1.0, 0.0, levels)
    out = np.empty((levels, *sharp.shape), dtype=np.float32)
    for k, t in enumerate(ts):
        out[k] = engine.decode(mix(z_sharp, z_blurry, float(t)))
        yield Progress(k + 1, levels, f"level {k + 1}")
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
                normalizer: Normalizer | None = None, z_um=None) -> Iterator[Progress]:
    """Encode each plane downsampled to ``side`` px, project on the two main axes; returns a LatentView.

    ``z_um`` (the planes' positions, when known) paces the APD reference at the planes' real spacing.
    """
    norm = normalizer or engine.normalizer(stack)
    scale = min(1.0, side / max(stack.shape[1:]))
    rows = []
    for i, plane in enumerate(stack):
        rows.append(engine.encode(plane, norm, scale).flatten())
        yield Progress(i + 1, len(stack), f"plane {i}")
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
