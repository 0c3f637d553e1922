"""One stack being deblurred by the latent method: its normalisation, focus, positions and the latents still needed.

:class:`StackJob` is shared by the method's ``restore`` and the napari live slider, so that both decode a pair
by the same rule from the same latents.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Generator
from typing import TYPE_CHECKING

import numpy as np

from ...device import describe
from ...engine import Encoded, LatentFocus, Plan
from ...errors import InputError
from ...focus import deblur_pair, find_focus
from ...io import Normalizer, Stack, check_plane_index, plane_positions
from ...latent import alpha_from_defocus, parse_strength, resolve_step, step_to_eq2
from ...metrics import noise_sigma
from ...progress import Progress, run
from ..base import Restored

if TYPE_CHECKING:
    from . import LatentParams


class StackJob:
    """One stack being deblurred: its normalisation, focus, positions and the latents still needed.

    ``focus`` is the in-focus plane when known (evaluation on stacks with a known focus); by default the
    sharpest plane by :func:`~latent_focus.focus.find_focus`. ``norm`` is the intensity normalisation when it
    comes from a larger stack (the live slider's downsampled planes); by default the stack's own.
    """

    def __init__(self, engine: LatentFocus, stack: Stack, params: LatentParams, focus: int | None = None,
                 norm: Normalizer | None = None):
        self.engine, self.stack, self.params = engine, stack, params
        self.norm: Normalizer = engine.normalizer(stack.data) if norm is None else norm
        self.focus = find_focus(stack.data) if focus is None else check_plane_index(focus, stack.n_planes)
        self.known_z = stack.z_um is not None
        self.pos = plane_positions(stack.n_planes, stack.z_um)
        self.plan = engine.plan(params.tile)  # where each call starts; a call that runs out of GPU memory goes on
        self._latents: dict[tuple[int, Plan], Encoded] = {}  # with a smaller plan, kept under that plan
        self._recon: dict[tuple[int, Plan], np.ndarray] = {}

    def with_params(self, params: LatentParams) -> "StackJob":
        """The same job with other parameters, sharing the latents and reconstructions already computed."""
        job = copy.copy(self)
        job.params, job.plan = params, self.engine.plan(params.tile)
        return job

    def latents(self, planes, plan: Plan | None = None) -> list[Encoded]:
        """The latents of ``planes``; see :meth:`latents_steps`."""
        return run(self.latents_steps(planes, plan))

    def latents_steps(self, planes, plan: Plan | None = None) -> Generator[Progress, None, list[Encoded]]:
        """The latents of ``planes``, all with one plan: ``plan`` (default: the job's), or the smaller one that
        encoding them needed (GPU memory). Yields after each tile encoded."""
        plan = self.plan if plan is None else plan
        missing = [i for i in dict.fromkeys(planes) if (i, plan) not in self._latents]
        if missing:
            encoded = yield from self.engine.encode_steps([self.stack.data[i] for i in missing], self.norm, plan=plan)
            if encoded[0].plan != plan:  # the GPU ran out of memory: encode every plane of this call alike
                return (yield from self.latents_steps(planes, encoded[0].plan))
            self._latents.update({(i, plan): z for i, z in zip(missing, encoded)})
        return [self._latents[i, plan] for i in planes]

    def latent(self, i: int) -> Encoded:
        return self.latents([i])[0]

    def keep_only(self, planes) -> None:
        """Forget latents not needed by ``planes`` or their neighbours."""
        needed = {q for p in planes for q in (p - 1, p, p + 1)}
        for cache in (self._latents, self._recon):
            for key in [key for key in cache if key[0] not in needed]:
                del cache[key]

    def restore(self, plane: int, partner: int | None) -> Restored:
        """Deblur ``plane`` with ``partner`` (or its neighbour further from focus); see :meth:`restore_steps`."""
        return run(self.restore_steps(plane, partner))

    def restore_steps(self, plane: int, partner: int | None) -> Generator[Progress, None, Restored]:
        """Deblur ``plane`` with ``partner`` (or its neighbour further from focus), yielding after each tile
        encoded or decoded (closing it stops there)."""
        rel = self.pos - self.pos[self.focus]
        unit = "um" if self.known_z else "planes"
        info = {"method": "latent", "plane": plane, "model": self.engine.name, "focus_plane": self.focus,
                "distance_unit": unit}
        if not self.known_z:
            info["note"] = "the stack records no z positions: distances and alpha use plane indices"
        if partner is None:
            pair = deblur_pair(plane, self.focus, self.pos)
            if pair is None:
                info.update(planes=[plane], rule="the in-focus plane is kept as it is", device=self.engine.device_name)
                return Restored(np.array(self.stack.data[plane], dtype=np.float32), info)
            sharper, blurrier = pair.sharper, pair.blurrier
            alpha = self.params.alpha if self.params.alpha is not None else pair.alpha
            if pair.end_of_stack:
                info["end_of_stack"] = (f"plane {plane} has no blurrier neighbour: the line through planes "
                                        f"{sharper} and {plane} is used, stepping from plane {plane}")
        else:
            if partner == plane:
                raise InputError(f"--planes needs two different planes; got {plane} twice")
            sharper, blurrier = plane, partner
            alpha = self.params.alpha if self.params.alpha is not None else _alpha(rel, sharper, blurrier)
        zb, zc, z_start = yield from self.latents_steps([sharper, blurrier, plane])
        plan = z_start.plan
        auto = parse_strength(self.params.strength) == "auto"
        recon = (yield from self._reconstruction_steps(plane, plan)) if auto else None
        step = resolve_step(self.params.strength, self.engine.strength, lambda: self._sigmas(plane, recon))
        if step.strength == 0:
            out = recon if recon is not None else (yield from self._reconstruction_steps(plane, plan))
        else:
            out = yield from self.engine.decode_steps(step_to_eq2(z_start, zb, zc, alpha, step.strength))
        if step.residual:
            out = self.stack.data[plane] + out - recon
        info.update(planes=[sharper, blurrier], alpha=round(float(alpha), 6), device=describe(plan.device),
                    strength=round(step.strength, 6), decoding="residual" if step.residual else "plain",
                    rule=step.rule)
        return Restored(np.asarray(out, dtype=np.float32), info)

    def reconstruction(self, i: int, plan: Plan | None = None) -> np.ndarray:
        """``D(E(x_i))`` in input units, decoded once per plane (and plan)."""
        return run(self._reconstruction_steps(i, plan))

    def _reconstruction_steps(self, i: int, plan: Plan | None) -> Generator[Progress, None, np.ndarray]:
        z = (yield from self.latents_steps([i], plan))[0]
        if (i, z.plan) not in self._recon:
            self._recon[i, z.plan] = yield from self.engine.decode_steps(z)
        return self._recon[i, z.plan]

    def _sigmas(self, start: int, recon: np.ndarray) -> float:
        """Reconstruction residual of plane ``start`` (``recon``: its reconstruction) in its noise sigmas."""
        x = self.norm.normalize(self.stack.data[start])
        rec = self.norm.normalize(recon)
        return float(np.sqrt(np.mean((x - rec) ** 2))) / max(noise_sigma(x), 1e-6)


def _alpha(rel: np.ndarray, b: int, c: int) -> float:
    """``1 - d_B/d_C`` for planes B and C of one side of focus; a clear error otherwise."""
    d_b, d_c = float(rel[b]), float(rel[c])
    if not (math.isfinite(d_b) and math.isfinite(d_c)) or d_b * d_c < 0 or abs(d_b) >= abs(d_c):
        raise InputError(f"planes {b} and {c} are not a sharper and a blurrier plane on one side of the in-focus "
                         f"plane; pass --alpha, or --planes B C with B nearer focus than C")
    return alpha_from_defocus(d_b, d_c)
