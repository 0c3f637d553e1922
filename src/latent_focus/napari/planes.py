"""Plane choices for the panel: plane ranges typed by the user, blurrier neighbours, deblurring pairs."""

from __future__ import annotations

import numpy as np

from ..errors import InputError
from ..latent import alpha_from_defocus
from ..metrics import focus_measure


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


def blurrier_neighbour(stack: np.ndarray, plane: int) -> int:
    """The neighbour of ``plane`` (above or below) with the lower focus measure."""
    candidates = [p for p in (plane - 1, plane + 1) if 0 <= p < len(stack)]
    if not candidates:
        raise InputError("the stack has a single plane; pass a z-stack with at least two planes")
    return min(candidates, key=lambda p: focus_measure(stack[p]))


def deblur_pair(plane: int, focus: int, positions: np.ndarray) -> tuple[int, int, float] | None:
    """``(sharper, blurrier, alpha)`` whose extrapolation estimates the in-focus plane from ``plane``.

    The partner is the neighbour further from focus on the same side; at the end of the stack, where
    there is none, the neighbour nearer focus is the sharper one instead. Alpha is
    ``1 - d_sharper / d_blurrier`` with ``d`` the distance from the focus plane. Returns None for
    the focus plane itself.
    """
    if plane == focus:
        return None
    side = 1 if plane > focus else -1
    outer = plane + side
    sharper, blurrier = (plane, outer) if 0 <= outer < len(positions) else (plane - side, plane)
    d = positions - positions[focus]
    return sharper, blurrier, alpha_from_defocus(float(d[sharper]), float(d[blurrier]))
