"""One stack being deblurred by the latent method: its normalisation, focus, positions and the latents still needed.

:class:`StackJob` is shared by the method's ``restore`` and the napari live slider, so that both decode a pair
by the same rule from the same latents.
"""

from __future__ import annotations

import copy
import math
from typing import TYPE_CHECKING

import numpy as np

from ...engine import Encoded, LatentFocus
from ...errors import InputError
from ...focus import deblur_pair, find_focus
from ...io import Normalizer, Stack, check_plane_index, plane_positions
from ...latent import Step, alpha_from_defocus, resolve_step, step_to_eq2
from ...metrics import noise_sigma
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
        self.tile = params.tile
        self._latents: dict[int, Encoded] = {}
        self._recon: dict[int, np.ndarray] = {}
        self._measured: dict[int, float] = {}  # the default rule's measurement by plane

    def with_params(self, params: LatentParams) -> "StackJob":
        """The same job with other parameters, sharing the latents and reconstructions already computed."""
        job = copy.copy(self)
        job.params = params
        return job

    def latent(self, i: int) -> Encoded:
        if i not in self._latents:
            enc = self.engine.encode(self.stack.data[i], self.norm, tile=self.tile)
            if enc.tile != self.tile:  # the GPU ran out of memory: re-tile every plane like this one
                self.tile, self._latents, self._recon, self._measured = enc.tile, {}, {}, {}
            self._latents[i] = enc
        return self._latents[i]

    def keep_only(self, planes) -> None:
        """Forget latents not needed by ``planes`` or their neighbours."""
        needed = {q for p in planes for q in (p - 1, p, p + 1)}
        for cache in (self._latents, self._recon):
            for i in [i for i in cache if i not in needed]:
                del cache[i]

    def restore(self, plane: int, partner: int | None) -> Restored:
        rel = self.pos - self.pos[self.focus]
        unit = "um" if self.known_z else "planes"
        info = {"method": "latent", "plane": plane, "model": self.engine.name, "device": self.engine.device_name,
                "focus_plane": self.focus, "distance_unit": unit}
        if not self.known_z:
            info["note"] = "the stack records no z positions: distances and alpha use plane indices"
        if partner is None:
            pair = deblur_pair(plane, self.focus, self.pos)
            if pair is None:
                info.update(planes=[plane], rule="the in-focus plane is kept as it is")
                return Restored(np.array(self.stack.data[plane], dtype=np.float32), info)
            sharper, blurrier, alpha = pair.sharper, pair.blurrier, pair.alpha
            if pair.end_of_stack:
                info["end_of_stack"] = (f"plane {plane} has no blurrier neighbour: the line through planes "
                                        f"{sharper} and {plane} is used, stepping from plane {plane}")
        else:
            if partner == plane:
                raise InputError(f"--planes needs two different planes; got {plane} twice")
            sharper, blurrier = plane, partner
            alpha = self.params.alpha if self.params.alpha is not None else _alpha(rel, sharper, blurrier)
        if self.params.alpha is not None:
            alpha = self.params.alpha
        start = plane
        step = resolve_step(self.params.strength, self.engine.strength, lambda: self._sigmas(start))
        image = self._decode(sharper, blurrier, start, alpha, step)
        info.update(planes=[sharper, blurrier], alpha=round(float(alpha), 6),
                    strength=round(step.strength, 6), decoding="residual" if step.residual else "plain",
                    rule=step.rule)
        return Restored(image, info)

    def reconstruction(self, i: int) -> np.ndarray:
        """``D(E(x_i))`` in input units, decoded once per plane."""
        if i not in self._recon:
            self._recon[i] = self.engine.decode(self.latent(i))
        return self._recon[i]

    def _sigmas(self, start: int) -> float:
        """Reconstruction residual of ``start`` in its noise sigmas (measured once per plane)."""
        if start not in self._measured:
            x = self.norm.normalize(self.stack.data[start])
            rec = self.norm.normalize(self.reconstruction(start))
            self._measured[start] = float(np.sqrt(np.mean((x - rec) ** 2))) / max(noise_sigma(x), 1e-6)
        return self._measured[start]

    def _decode(self, sharper: int, blurrier: int, start: int, alpha: float, step: Step) -> np.ndarray:
        """``z_start + s * (z_focus - z_start)`` decoded, with ``z_focus`` from Eq. 2 on (sharper, blurrier)."""
        if step.strength == 0:
            out = self.reconstruction(start)
        else:
            latents = [self.latent(i) for i in (sharper, blurrier, start)]
            if len({z.tile for z in latents}) > 1:  # re-tiled on the way (GPU memory): encode again alike
                latents = [self.latent(i) for i in (sharper, blurrier, start)]
            zb, zc, z_start = latents
            out = self.engine.decode(step_to_eq2(z_start, zb, zc, alpha, step.strength))
        if step.residual:
            out = self.stack.data[start] + out - self.reconstruction(start)
        return np.asarray(out, dtype=np.float32)


def _alpha(rel: np.ndarray, b: int, c: int) -> float:
    """``1 - d_B/d_C`` for planes B and C of one side of focus; a clear error otherwise."""
    d_b, d_c = float(rel[b]), float(rel[c])
    if not (math.isfinite(d_b) and math.isfinite(d_c)) or d_b * d_c < 0 or abs(d_b) >= abs(d_c):
        raise InputError(f"planes {b} and {c} are not a sharper and a blurrier plane on one side of the in-focus "
                         f"plane; pass --alpha, or --planes B C with B nearer focus than C")
    return alpha_from_defocus(d_b, d_c)
