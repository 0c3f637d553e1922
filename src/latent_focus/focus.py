"""Focus and plane geometry in one place: the in-focus plane, deblurring pairs, training triplets, plane ranges.

Distances from focus are taken along z in micrometres where the stack records plane positions, else in
plane indices. Every function here is pure numpy and shared by the methods, training, evaluation and
the napari panel.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from .errors import InputError
from .io import plane_positions
from .latent import alpha_from_defocus
from .metrics import focus_measure

TRIPLET_MODES = ("auto", "midpoint", "all")


def find_focus(stack: np.ndarray) -> int:
    """Index of the sharpest plane of a (z, y, x) stack by the variance-of-Laplacian focus measure."""
    return int(np.argmax([focus_measure(p) for p in stack]))


class Pair(NamedTuple):
    """Planes whose latents estimate the in-focus plane for ``plane``.

    ``sharper`` and ``blurrier`` lie on one side of focus, ``alpha = 1 - d_sharper / d_blurrier`` (Eq. 2).
    ``start`` is the plane the step towards focus starts from: ``plane`` itself. ``end_of_stack`` is true
    when ``plane`` has no blurrier neighbour, so that its pair is ``(sharper neighbour, plane)``.
    """

    plane: int
    sharper: int
    blurrier: int
    alpha: float
    end_of_stack: bool

    @property
    def start(self) -> int:
        return self.plane


def deblur_pair(plane: int, focus: int, positions) -> Pair | None:
    """The pair that deblurs ``plane`` towards ``focus``; None for the focus plane itself.

    The partner is the neighbour further from focus on the same side. At the end of the stack, where there
    is none, the partner is the neighbour nearer focus and the pair is ``(that neighbour, plane)``; the step
    towards focus still starts from ``plane`` (see :class:`Pair`).
    """
    positions = np.asarray(positions, dtype=float)
    if plane == focus:
        return None
    side = 1 if plane > focus else -1
    outer = plane + side
    end = not 0 <= outer < len(positions)
    sharper, blurrier = (plane - side, plane) if end else (plane, outer)
    d = positions - positions[focus]
    return Pair(plane, sharper, blurrier, alpha_from_defocus(float(d[sharper]), float(d[blurrier])), end)


def deblur_pairs(rel, focus: int) -> list[tuple[int, int]]:
    """Every (B, C) on one side of focus with B sharper, from defocus positions relative to focus."""
    rel = np.asarray(rel, dtype=float)
    n = len(rel)
    return [(b, c) for b in range(n) for c in range(n)
            if b != focus and c != focus and rel[b] * rel[c] > 0 and abs(rel[b]) < abs(rel[c])]


def blurrier_neighbour(stack: np.ndarray, plane: int) -> int:
    """The neighbour of ``plane`` (above or below) with the lower focus measure."""
    candidates = [p for p in (plane - 1, plane + 1) if 0 <= p < len(stack)]
    if not candidates:
        raise InputError("the stack has a single plane; pass a z-stack with at least two planes")
    return min(candidates, key=lambda p: focus_measure(stack[p]))


def triplets_for(n_planes: int, z_um, focus: int, mode: str = "auto") -> list[tuple[int, int, int, float]]:
    """Plane triplets ``(a, b, c, alpha)`` on one side of focus, ``a`` sharpest, ``b`` between.

    ``alpha = (d_c - d_b) / (d_c - d_a)`` with ``d`` the distance from focus (in z where known, else
    in planes), so ``z_b ~ alpha*z_a + (1-alpha)*z_c``. ``mode="midpoint"`` keeps only the paper's
    triplets with 2b = a + c (alpha = 0.5, within 5 %); ``"all"`` keeps every ``b`` between ``a`` and
    ``c``; ``"auto"`` uses midpoints where the stack has any, else all.
    """
    if mode not in TRIPLET_MODES:
        raise InputError(f"unknown triplet mode {mode!r}; pass auto, midpoint or all")
    pos = plane_positions(n_planes, z_um)
    rel = pos - pos[focus]
    out = []
    for a in range(n_planes):
        for c in range(n_planes):
            if abs(rel[a]) >= abs(rel[c]) or rel[a] * rel[c] < 0:
                continue
            for b in range(n_planes):
                if b in (a, c) or rel[b] * rel[c] < 0 or not abs(rel[a]) < abs(rel[b]) < abs(rel[c]):
                    continue
                alpha = (abs(rel[c]) - abs(rel[b])) / (abs(rel[c]) - abs(rel[a]))
                out.append((a, b, c, float(alpha)))
    if mode == "all":
        return out
    mid = [t for t in out if abs(t[3] - 0.5) <= 0.05]
    return mid if (mid or mode == "midpoint") else out


def parse_planes(text: str, n_planes: int) -> list[int]:
    """Plane indices from text like ``"0-3,5"``; empty text or ``"all"`` selects every plane."""
    text = text.strip().lower()
    if text in ("", "all"):
        return list(range(n_planes))
    chosen: set[int] = set()
    for part in text.replace(" ", "").split(","):
        try:
            lo, _, hi = part.partition("-")
            first, last = int(lo), int(hi) if hi else int(lo)
        except ValueError:
            raise InputError(f"cannot read the plane range {part!r}; type ranges like 0-3,5") from None
        if not 0 <= first <= last < n_planes:
            raise InputError(f"planes {part} are outside 0-{n_planes - 1}; type ranges like 0-3,5")
        chosen.update(range(first, last + 1))
    return sorted(chosen)
