"""Running a trained refocusing U-Net on planes of any size: normalise, refocus in overlapping tiles, blend.

Each call chooses its own device and tile side: on a GPU out-of-memory error the tile is halved and the
work retried, down to :data:`MIN_TILE`, and below that the call finishes on the CPU. Nothing about the
loaded network changes between calls, so one network serves every caller.
"""

from __future__ import annotations

from collections.abc import Generator

import numpy as np
import torch

from ...device import describe
from ...errors import InputError
from ...io import check_planes
from ...models.loaded import LoadedNetwork, unless_out_of_memory
from ...models.unet import RefocusUNet
from ...progress import Progress
from ...tiling import pad_to_multiple, plan_tiles, stitch

DEFAULT_MODEL = "care"
MIN_TILE = 128
OVERLAP = 32


class Refocuser(LoadedNetwork):
    """A loaded U-Net and its card; one lock serialises its use."""

    default = DEFAULT_MODEL

    def check_model(self) -> None:
        if not isinstance(self.model, RefocusUNet):
            raise InputError(f"{self.model_path} is not a refocusing U-Net; pass one trained with latent-focus "
                             "train --preset care (or leave --model out for the shipped one)")

    def refocus_steps(self, plane: np.ndarray, tile: int = 1024,
                      strength: float = 1.0) -> Generator[Progress, None, tuple[np.ndarray, int, str]]:
        """Refocus one (y, x) plane in input units; ``strength`` scales the correction (1: as trained).

        Yields a :class:`Progress` after each tile (closing the generator stops there); returns the plane, the
        tile side and the device that ran.
        """
        plane = np.asarray(plane, dtype=np.float32)
        check_planes(plane[None], "plane")
        norm = self.normalizer(plane)
        x = norm.normalize(plane)
        h, w = x.shape
        net, device = self.model, self.device
        while True:
            overlap = min(OVERLAP, tile // 4)
            boxes = plan_tiles(h, w, tile, overlap)
            outs = []
            for n, (y0, y1, x0, x1) in enumerate(boxes):
                with self.lock:
                    r = self._residual(x[y0:y1, x0:x1], net, device)
                if r is None:  # out of GPU memory: again with smaller tiles, then on the CPU
                    break
                outs.append(strength * r)
                yield Progress(n + 1, len(boxes), f"tile {n + 1} of {len(boxes)}")
            else:
                break
            if tile > MIN_TILE:
                tile //= 2
            else:  # the rest of this call on the CPU copy; the loaded network stays where it is
                net, device = self._cpu_model, torch.device("cpu")
        residual = stitch(outs, boxes, h, w, overlap) if len(outs) > 1 else outs[0]
        return norm.denormalize(x + residual), tile, describe(device)

    @staticmethod
    def _residual(patch: np.ndarray, net: torch.nn.Module, device: torch.device) -> np.ndarray | None:
        """The network's correction of one normalised patch; None on a CUDA out-of-memory error."""
        h, w = patch.shape

        def correct():
            t = pad_to_multiple(torch.from_numpy(np.ascontiguousarray(patch))[None, None].to(device), net.multiple)
            return net.residual(t)[0, 0, :h, :w].float().cpu().numpy()
        return unless_out_of_memory(correct)
