"""``latent``: the CAIP 2023 pair method. Deblur plane B towards focus with a blurrier plane C of the same stack.

The latents of B and C are extrapolated with Eq. 2, ``z' = z_B/alpha - (1 - alpha)/alpha * z_C``, and a
fraction of that step beyond ``z_B`` is taken (:func:`latent_focus.latent.resolve_step`: the default rule,
the model's calibrated strength, or a fixed fraction; 1 is Eq. 2 exactly). Alpha is ``1 - d_B/d_C`` from
the planes' distances to the in-focus plane, in micrometres when the stack records z positions, else in
plane indices (and the output says so).
"""

from __future__ import annotations

from dataclasses import dataclass

from ...adapt import DEFAULT_MINUTES as ADAPT_MINUTES
from ...adapt import adapt
from ...engine import DEFAULT_TILE, LatentFocus
from ...io import Stack, check_plane_index
from ...latent import check_alpha, parse_strength
from ..base import PAIR, Method, Params, Progress, param
from .jobs import LatentView, latent_view, synthesize_levels
from .live import PREVIEW_SIDE, T_MAX, LiveFrame, LiveRequest, LiveSession, preview_size
from .stack_job import StackJob

__all__ = ["ADAPT_MINUTES", "CPU_TILE", "PREVIEW_SIDE", "T_MAX", "LatentMethod", "LatentParams", "LatentView",
           "LiveFrame", "LiveRequest", "LiveSession", "StackJob", "adapt", "latent_view", "preview_size",
           "synthesize_levels"]

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


class LatentMethod(Method):
    name = "latent"
    description = "latent extrapolation (CAIP 2023): plane B towards focus, with its blurrier neighbour C"
    input = PAIR
    Params = LatentParams
    uses_model = True
    model_family = "autoencoder"

    def __init__(self, engine: LatentFocus):
        self.engine = engine

    @classmethod
    def load(cls, model: str | None = None, device: str = "auto") -> "LatentMethod":
        return cls(LatentFocus(model, device))

    @classmethod
    def weights_source(cls) -> str:
        return "an autoencoder model: the shipped 'default' or --model NAME|FOLDER (latent-focus models)"

    @property
    def device_name(self) -> str:
        return self.engine.device_name

    def default_params(self) -> LatentParams:
        """On the CPU, planes up to :data:`CPU_TILE` pixels run as one tile."""
        return self.Params(tile=CPU_TILE) if self.engine.device.type == "cpu" else self.Params()

    # -- one plane -------------------------------------------------------------------------------
    def restore(self, stack: Stack, plane: int, params: LatentParams, partner: int | None = None):
        """Deblur ``plane`` (B) with ``partner`` (C), or with its neighbour further from focus when None."""
        job = StackJob(self.engine, stack, params)
        yield Progress(0, 1, "encoding")
        result = job.restore(check_plane_index(plane, stack.n_planes),
                             None if partner is None else check_plane_index(partner, stack.n_planes))
        yield Progress(1, 1, "decoded")
        return result

    def restore_planes(self, stack: Stack, planes: list[int], params: LatentParams):
        """Deblur each plane with its neighbour further from focus; neighbouring planes share their latents."""
        job = StackJob(self.engine, stack, params)
        results = []
        for k, p in enumerate(planes):
            results.append(job.restore(check_plane_index(p, stack.n_planes), None))
            job.keep_only(planes[k + 1:k + 2])
            yield Progress(k + 1, len(planes), f"plane {p}")
        return results


METHOD = LatentMethod
