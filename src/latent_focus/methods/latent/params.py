"""The latent method's parameters (``restore --method latent`` options and the panel's form)."""

from __future__ import annotations

from dataclasses import dataclass

from ...engine import DEFAULT_TILE
from ...latent import check_alpha, parse_strength
from ..base import Params, param

CPU_TILE = 2048  # on the CPU planes up to this size run as one tile: tiles bound GPU memory, overlaps cost time


def parse_alpha(text) -> float | None:
    """``"auto"`` (or nothing) -> None, else a number in (0, 1]."""
    if text in (None, "", "auto"):
        return None
    return check_alpha(text)


@dataclass(frozen=True)
class LatentParams(Params):
    alpha: float | None = param(None, "alpha of Eq. 2 in (0, 1], or auto (the default): 1 - d_B/d_C from the "
                                "planes' z positions (plane indices when the stack records none)", parse=parse_alpha,
                                label="α")
    strength: str = param("auto", "the step towards focus: auto (the default rule, by the planes' distance to "
                          "focus), model (the model's calibrated fraction), or a fraction in (0, 1] of Eq. 2's "
                          "step; 1 is Eq. 2 exactly", parse=parse_strength)
    tile: int = param(DEFAULT_TILE, "planes larger than this many pixels run in overlapping tiles (on the CPU "
                      f"the method starts from {CPU_TILE}: one tile is faster there)", min=64, max=65536)

    def __post_init__(self):
        super().__post_init__()
        parse_strength(self.strength)
        if self.alpha is not None:
            check_alpha(self.alpha)
