"""``latent``: the CAIP 2023 pair method. Deblur plane B towards focus with a blurrier plane C of the same stack.

The latents of B and C are extrapolated with Eq. 2, ``z' = z_B/alpha - (1 - alpha)/alpha * z_C``, and a
fraction of that step beyond ``z_B`` is taken (:func:`latent_focus.latent.resolve_step`: the default rule,
the model's calibrated strength, or a fixed fraction; 1 is Eq. 2 exactly). Alpha is ``1 - d_B/d_C`` from
the planes' distances to the in-focus plane, in micrometres when the stack records z positions, else in
plane indices (and the output says so).
"""

from __future__ import annotations

from ...engine import LatentFocus
from ...io import Stack, check_plane_index
from ...models import PRESETS
from ..base import PAIR, Method, Progress
from .adapt import DEFAULT_MINUTES as ADAPT_MINUTES
from .adapt import adapt
from .commands import COMMANDS, add_train_arguments, train_from_args
from .jobs import LatentView, latent_view, synthesize_levels
from .live import PREVIEW_SIDE, T_MAX, LiveFrame, LiveRequest, LiveSession, preview_size
from .params import CPU_TILE, LatentParams
from .stack_job import StackJob
from .training import FINE_TUNE_RECIPE, REGULARIZATIONS, TrainConfig, train

__all__ = ["ADAPT_MINUTES", "CPU_TILE", "FINE_TUNE_RECIPE", "PREVIEW_SIDE", "REGULARIZATIONS", "T_MAX", "LatentMethod",
           "LatentParams", "LatentView", "LiveFrame", "LiveRequest", "LiveSession", "StackJob", "TrainConfig", "adapt",
           "latent_view", "preview_size", "synthesize_levels", "train"]


class LatentMethod(Method):
    name = "latent"
    description = "latent extrapolation (CAIP 2023): plane B towards focus, with its blurrier neighbour C"
    input = PAIR
    Params = LatentParams
    uses_model = True
    model_family = "autoencoder"

    train_presets = tuple(name for name, preset in PRESETS.items() if preset.family == "autoencoder")

    def __init__(self, engine: LatentFocus):
        self.engine = engine

    @classmethod
    def load(cls, model: str | None = None, device: str = "auto") -> "LatentMethod":
        return cls(LatentFocus(model, device))

    @classmethod
    def weights_source(cls) -> str:
        return "an autoencoder model: the shipped 'default' or --model NAME|FOLDER (latent-focus models)"

    @classmethod
    def commands(cls) -> list:
        return COMMANDS

    @classmethod
    def add_train_arguments(cls, parser) -> None:
        add_train_arguments(parser)

    @classmethod
    def train_from_args(cls, stacks, args):
        return train_from_args(stacks, args)

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
        return (yield from job.restore_steps(check_plane_index(plane, stack.n_planes),
                                             None if partner is None else check_plane_index(partner, stack.n_planes)))

    def restore_planes(self, stack: Stack, planes: list[int], params: LatentParams):
        """Deblur each plane with its neighbour further from focus; neighbouring planes share their latents."""
        job = StackJob(self.engine, stack, params)
        results = []
        for k, p in enumerate(planes):
            gen = job.restore_steps(check_plane_index(p, stack.n_planes), None)
            try:
                while True:
                    step = next(gen)
                    yield Progress(k, len(planes), f"plane {p}: {step.message}")
            except StopIteration as stop:
                results.append(stop.value)
            job.keep_only(planes[k + 1:k + 2])
            yield Progress(k + 1, len(planes), f"plane {p}")
        return results


METHOD = LatentMethod
