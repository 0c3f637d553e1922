"""The live slider's work, Qt-free: one stack snapshot and model, decoded at any ``t``, latents kept between moves.

The slider mixes planes B (sharper, ``t = 1``) and C (blurrier, ``t = 0``):

* ``t <= 1`` synthesises blur: Eq. 1 with ``alpha = t``, plainly decoded, as ``latent-focus synthesize`` does;
* ``t > 1`` deblurs: the method's own restore of B with C at ``alpha = 1 / t`` with the caller's parameters
  (strength ``auto`` by default: the default rule, residual decoding), so the slider shows what Restore gives.

A preview runs the same on the two planes downsampled to :data:`PREVIEW_SIDE` pixels (the whole stack's
normalisation kept). Latents and ``D(E(x_B))`` are kept per plane and resolution, so a slider move decodes once;
:meth:`LiveSession.prepare` encodes the planes at full resolution between moves.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np
import torch
from torch.nn import functional as F

from ...engine import LatentFocus
from ...io import Stack
from ...latent import describe_t, mix, parse_strength
from .stack_job import StackJob

if TYPE_CHECKING:
    from . import LatentParams

PREVIEW_SIDE = 256  # long side of the planes decoded while the slider is dragged
T_MAX = 3.0  # the slider's largest t


def preview_size(shape: tuple[int, int]) -> tuple[int, int]:
    """The (y, x) size of a preview of a plane of ``shape`` (the plane's own size when it is small)."""
    scale = min(1.0, PREVIEW_SIDE / max(shape))
    return max(8, round(shape[0] * scale)), max(8, round(shape[1] * scale))


def downsample(plane: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """``plane`` averaged down to ``size`` (area interpolation, as the engine's scaled encoding)."""
    x = torch.from_numpy(np.ascontiguousarray(plane, dtype=np.float32))[None, None]
    return F.interpolate(x, size=size, mode="area")[0, 0].numpy()


@dataclass(frozen=True)
class LiveRequest:
    """One slider value for planes ``(B, C)``: a ``preview`` is decoded from the planes downsampled to
    :data:`PREVIEW_SIDE` (ask for one only where :attr:`LiveSession.has_preview`); ``prepare`` asks for the
    full-resolution latents only."""

    session: "LiveSession"
    planes: tuple[int, int]
    t: float
    params: "LatentParams"
    preview: bool = False
    prepare: bool = False


@dataclass
class LiveFrame:
    """A decoded slider value (None for a preparation), with what produced it; ``info["rule"]`` names the rule."""

    request: LiveRequest
    image: np.ndarray | None
    info: dict = field(default_factory=dict)


class LiveSession:
    """A snapshot of one stack and a model, for the slider. Used by one thread at a time."""

    def __init__(self, engine: LatentFocus, stack: Stack):
        self.engine, self.stack = engine, stack
        self.size = preview_size(stack.data.shape[1:])
        self._full: StackJob | None = None
        self._preview: tuple[tuple[int, int], StackJob] | None = None
        self._prepared: tuple[int, int] | None = None

    @property
    def has_preview(self) -> bool:
        """Whether previews are smaller than the planes (else a preview is the full-resolution result)."""
        return self.size != tuple(self.stack.data.shape[1:])

    def prepared(self, planes: tuple[int, int]) -> bool:
        return self._prepared == tuple(planes)

    def render(self, request: LiveRequest) -> LiveFrame:
        """Decode ``request`` (or, for ``prepare``, encode its planes at full resolution)."""
        planes = tuple(request.planes)
        if request.prepare:
            self.prepare(planes, request.params)
            return LiveFrame(request, None)
        small = request.preview and self.has_preview
        if small:
            job, pair = self._preview_job(planes, request.params), (0, 1)
        else:
            job, pair = self._full_job(planes, request.params), planes
        mode, alpha = describe_t(request.t)
        if request.t > 1:
            restored = job.with_params(request.params.replace(alpha=alpha)).restore(*pair)
            image, info = restored.image, restored.info
        else:
            image = job.engine.decode(mix(*job.latents(pair), request.t))
            info = {"alpha": alpha, "decoding": "plain", "rule": "blur synthesis: Eq. 1 with α = t, plain decoding"}
        if small:
            info.pop("focus_plane", None)  # the preview job's own, not the stack's
        else:
            self._prepared = planes
        info.update(plane=planes[0], planes=list(planes), mode=mode, t=request.t, preview=request.preview)
        return LiveFrame(request, np.asarray(image, dtype=np.float32), info)

    def prepare(self, planes: tuple[int, int], params: "LatentParams") -> None:
        """Encode B and C at full resolution, and decode ``D(E(x_B))`` where the default rule will need it."""
        job = self._full_job(planes, params)
        job.latents(planes)
        if parse_strength(params.strength) == "auto":
            job.reconstruction(planes[0])
        self._prepared = tuple(planes)

    def _full_job(self, planes: tuple[int, int], params: "LatentParams") -> StackJob:
        if self._full is None:  # the whole stack's normalisation and focus, once
            self._full = StackJob(self.engine, self.stack, params)
        if self._prepared != planes:
            self._full.keep_only(planes)
        return self._full.with_params(params)

    def _preview_job(self, planes: tuple[int, int], params: "LatentParams") -> StackJob:
        if self._preview is None or self._preview[0] != planes:
            norm = self._full_job(planes, params).norm
            small = np.stack([downsample(self.stack.data[i], self.size) for i in planes])
            z = None if self.stack.z_um is None else self.stack.z_um[list(planes)]
            self._preview = planes, StackJob(self.engine, Stack(small, z), params, focus=0, norm=norm)
        return self._preview[1].with_params(params)
