"""``analysis-synthesis``: blind single-plane deblurring by an analysis-synthesis network pair (Kaufman & Fattal 2020).

The analysis network estimates the plane's defocus kernel (a 33 x 33 image that sums to 1) from
cross-correlations of its features; the synthesis network deblurs the plane with that kernel steering
it and adds its residual to the plane, so that an in-focus plane comes back as it is. See
:mod:`latent_focus.models.analysis_synthesis` for the networks, :mod:`.simulation` for the training
data, :mod:`.training` for the training loop and :mod:`.inference` for tiling and device handling.
"""

from __future__ import annotations

from dataclasses import dataclass

from ...io import Stack, check_plane_index
from ..base import PLANE, Method, Params, Progress, Restored, param
from .inference import DEFAULT_MODEL, Pair, describe_kernel


@dataclass(frozen=True)
class AnalysisSynthesisParams(Params):
    kernel: str = param("centre", "where the defocus kernel is estimated: one kernel from the plane's centre window, "
                        "or one per tile (for planes whose blur varies)", choices=("centre", "tile"))
    window: int = param(512, "side in pixels of the centre window the kernel is estimated on (smaller needs less "
                        "memory)", min=32, max=8192)
    tile: int = param(1024, "planes larger than this many pixels are deblurred in overlapping tiles", min=128,
                      max=65536)
    strength: float = param(1.0, "fraction of the synthesis network's correction that is applied (0 returns the "
                            "plane unchanged)", min=0.0, max=2.0, step=0.1)


class AnalysisSynthesis(Method):
    name = "analysis-synthesis"
    description = "blind deblurring of one plane: kernel estimation, then kernel-guided synthesis (CVPR 2020)"
    input = PLANE
    Params = AnalysisSynthesisParams
    uses_model = True
    model_family = "analysis-synthesis"

    def __init__(self, pair: Pair):
        self.pair = pair

    @classmethod
    def load(cls, model: str | None = None, device: str = "auto") -> "AnalysisSynthesis":
        return cls(Pair(model, device))

    @classmethod
    def weights_source(cls) -> str:
        return (f"an analysis-synthesis model: the shipped '{DEFAULT_MODEL}' or --model NAME|FOLDER "
                "(latent-focus train-analysis-synthesis)")

    @classmethod
    def commands(cls) -> list:
        from .commands import TRAIN
        return [TRAIN]

    @property
    def device_name(self) -> str:
        return self.pair.device_name

    def default_params(self) -> AnalysisSynthesisParams:
        """The defaults, with the strength calibrated for the model where its card records one."""
        value = self.pair.card.extra.get("strength", {}).get("value")
        return self.Params() if value is None else self.Params(strength=float(value))

    def restore(self, stack: Stack, plane: int, params: AnalysisSynthesisParams, partner: int | None = None):
        plane = check_plane_index(plane, stack.n_planes)
        yield Progress(0, 1, "estimating the kernel")
        out = yield from self.pair.deblur_steps(stack.data[plane], params.window, params.tile, params.kernel == "tile",
                                                params.strength)
        info = {"method": self.name, "model": self.pair.name, "device": self.pair.device_name, "plane": plane,
                "tiles": len(out.boxes), "tile": out.tile, **describe_kernel(out.kernels)}
        return Restored(out.image, info)


METHOD = AnalysisSynthesis
