"""Running a trained pair on planes of any size: kernel estimation on a centre window or per tile, tiled synthesis.

Planes are normalised with the model's percentiles, the analysis network estimates the kernel (on the
centre ``window`` of the plane, or on each synthesis tile), and the synthesis network deblurs the plane
in overlapping tiles blended without seams. On a GPU out-of-memory error the window or tile is halved
and the work retried, down to :data:`MIN_TILE`; below that the call finishes on a CPU copy of the pair.
Nothing about the loaded pair changes between calls.
"""

from __future__ import annotations

from collections.abc import Generator
from dataclasses import dataclass

import numpy as np
import torch

from ...errors import InputError
from ...io import check_planes
from ...models.loaded import LoadedNetwork, unless_out_of_memory
from ...progress import Progress, run
from ...tiling import pad_to_multiple, plan_tiles, stitch
from .simulation import kernel_radius

DEFAULT_MODEL = "analysis-synthesis"
MIN_TILE = 128
OVERLAP = 32


@dataclass
class Deblurred:
    """A deblurred plane in input units, the kernel(s) used and the tile side that ran."""

    image: np.ndarray
    kernels: list[np.ndarray]
    boxes: list[tuple[int, int, int, int]]
    tile: int


class Pair(LoadedNetwork):
    """A loaded analysis-synthesis model on a device; one lock serialises its use."""

    default = DEFAULT_MODEL

    def check_model(self) -> None:
        if not hasattr(self.model, "analysis"):
            raise InputError(f"{self.model_path} is not an analysis-synthesis model; pass one written by "
                             "latent-focus train-analysis-synthesis (or leave --model out for the shipped one)")

    # -- the two networks, with out-of-memory handling -----------------------------------------------------
    def _on_cpu(self) -> "_Net":
        """The CPU copy of the pair, for the rest of one call (the loaded pair stays where it is)."""
        return _Net(self._cpu_model, torch.device("cpu"))

    def estimate_kernel(self, x: np.ndarray, window: int,
                        net: "_Net | None" = None) -> tuple[np.ndarray, int, "_Net"]:
        """Kernel of a normalised plane from its centre ``window`` (halved on out-of-memory); returns the window
        and the network that ran (a CPU copy once the GPU had no memory left even for the smallest window)."""
        net = net or _Net(self.model, self.device)
        while True:
            crop = _centre(x, window)
            k = unless_out_of_memory(lambda: net.model.analysis(torch.from_numpy(crop)[None, None].to(net.device)))
            if k is not None:
                return k[0, 0].float().cpu().numpy(), window, net
            if window > MIN_TILE:
                window //= 2
            else:
                net = self._on_cpu()

    def deblur(self, plane: np.ndarray, window: int = 512, tile: int = 1024, per_tile: bool = False,
               strength: float = 1.0) -> Deblurred:
        """Deblur one (y, x) plane in input units; see :meth:`deblur_steps`, which this runs to the end."""
        return run(self.deblur_steps(plane, window, tile, per_tile, strength))

    def deblur_steps(self, plane: np.ndarray, window: int = 512, tile: int = 1024, per_tile: bool = False,
                     strength: float = 1.0) -> Generator[Progress, None, Deblurred]:
        """Deblur one (y, x) plane in input units; ``strength`` scales the synthesis residual (1: as trained).

        A generator yielding a :class:`~latent_focus.progress.Progress` after each tile (closing it stops there).
        """
        plane = np.asarray(plane, dtype=np.float32)
        check_planes(plane[None], "plane")
        norm = self.normalizer(plane)
        x = norm.normalize(plane)
        h, w = x.shape
        net = _Net(self.model, self.device)
        with self.lock:
            kernel, _, net = (None, 0, net) if per_tile else self.estimate_kernel(x, window, net)
        while True:
            boxes = plan_tiles(h, w, tile, min(OVERLAP, tile // 4))
            outs, kernels = [], []
            for n, (y0, y1, x0, x1) in enumerate(boxes):
                patch = x[y0:y1, x0:x1]
                with self.lock:
                    if kernel is None:
                        k, _, net = self.estimate_kernel(patch, window, net)
                    else:
                        k = kernel
                    r = unless_out_of_memory(lambda: self._residual(patch, k, net))
                if r is None:  # out of GPU memory: again with smaller tiles, then on the CPU
                    break
                outs.append(strength * r)
                kernels.append(k)
                yield Progress(n + 1, len(boxes), f"tile {n + 1} of {len(boxes)}")
            else:
                break
            if tile > MIN_TILE:
                tile //= 2
            else:
                net = self._on_cpu()
        residual = stitch(outs, boxes, h, w, min(OVERLAP, tile // 4)) if len(outs) > 1 else outs[0]
        return Deblurred(norm.denormalize(x + residual), kernels, boxes, tile)

    def _residual(self, patch: np.ndarray, kernel: np.ndarray, net: "_Net | None" = None) -> np.ndarray:
        net = net or _Net(self.model, self.device)
        h, w = patch.shape
        t = pad_to_multiple(torch.from_numpy(np.ascontiguousarray(patch))[None, None].to(net.device),
                            net.model.multiple)
        k = torch.from_numpy(kernel)[None, None].to(net.device)
        return net.model.synthesis.residual(t, k)[0, 0, :h, :w].float().cpu().numpy()


@dataclass
class _Net:
    """The networks one call runs on, and their device."""

    model: torch.nn.Module
    device: torch.device


def _centre(x: np.ndarray, window: int) -> np.ndarray:
    h, w = x.shape
    y0, x0 = max(0, (h - window) // 2), max(0, (w - window) // 2)
    return np.ascontiguousarray(x[y0:y0 + window, x0:x0 + window])


def describe_kernel(kernels: list[np.ndarray]) -> dict:
    """What the output metadata records of the kernel(s): radius in pixels and the kernel itself (one tile)."""
    radii = [round(kernel_radius(k), 3) for k in kernels]
    info = {"kernel_radius_px": radii[0] if len(radii) == 1 else radii}
    if len(kernels) == 1:
        info["kernel"] = np.round(kernels[0], 6).tolist()
    return info

