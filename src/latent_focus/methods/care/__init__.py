"""``care``: supervised refocusing of one plane by a CARE-style U-Net (Weigert et al., Nature Methods 2018).

The anchor the seed methods are measured against: a plain U-Net trained on pairs of a defocused plane and
the same field's in-focus plane, from real focus series and simulated defocus (:mod:`.pairs`,
:mod:`.training`). It needs no z-stack at inference and no optics. See :mod:`.inference` for tiling and devices.
"""

from __future__ import annotations

from dataclasses import dataclass

from ...io import Stack, check_plane_index
from ..base import PLANE, Method, Params, Progress, Restored, param
from .inference import DEFAULT_MODEL, Refocuser


@dataclass(frozen=True)
class CareParams(Params):
    tile: int = param(1024, "planes larger than this many pixels are refocused in overlapping tiles", min=128,
                      max=65536)
    strength: float = param(1.0, "fraction of the network's correction that is applied (0 returns the plane "
                            "unchanged)", min=0.0, max=2.0, step=0.1)


class Care(Method):
    name = "care"
    description = "supervised refocusing of one plane by a CARE-style U-Net trained on real and simulated pairs"
    input = PLANE
    Params = CareParams
    uses_model = True
    model_family = "care"
    train_presets = ("care", "care-tiny")

    def __init__(self, net: Refocuser):
        self.net = net

    @classmethod
    def load(cls, model: str | None = None, device: str = "auto") -> "Care":
        return cls(Refocuser(model, device))

    @classmethod
    def weights_source(cls) -> str:
        return (f"a refocusing U-Net: the shipped '{DEFAULT_MODEL}' or --model NAME|FOLDER "
                "(latent-focus train --preset care)")

    @classmethod
    def add_train_arguments(cls, parser) -> None:
        from .train_options import add_train_options
        add_train_options(parser)

    @classmethod
    def train_from_args(cls, stacks, args):
        from .train_options import train_from_args
        return train_from_args(stacks, args)

    @property
    def device_name(self) -> str:
        return self.net.device_name

    def restore(self, stack: Stack, plane: int, params: CareParams, partner: int | None = None):
        plane = check_plane_index(plane, stack.n_planes)
        yield Progress(0, 1, "refocusing")
        image, tile, device = yield from self.net.refocus_steps(stack.data[plane], params.tile, params.strength)
        info = {"method": self.name, "model": self.net.name, "device": device, "plane": plane, "tile": tile,
                "strength": params.strength}
        return Restored(image, info)


METHOD = Care
