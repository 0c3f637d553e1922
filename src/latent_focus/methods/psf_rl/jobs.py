"""The ``psf-rl`` jobs the napari section runs (Qt-free generators, so tests run them as they are)."""

from __future__ import annotations

from collections.abc import Generator
from dataclasses import dataclass

import numpy as np

from ...optics.parametric import Optics
from ..base import Progress
from .estimator import ParameterMaps
from .simulation import SimulationRecipe


def max_defocus_waves(card) -> float:
    """The largest defocus (waves at the pupil edge) an estimator was trained on, from its model card."""
    return float(card.training.get("recipe", {}).get("recipe", {}).get("max_waves", SimulationRecipe.max_waves))


@dataclass
class BlurMap:
    """The PSF-parameter maps of one plane, and the largest |defocus| (um) the estimator reports for its optics."""

    maps: ParameterMaps
    max_um: float


def blur_map_job(image: np.ndarray, optics: Optics, modality: str = "widefield", model: str | None = None,
                 device: str = "auto") -> Generator[Progress, None, BlurMap]:
    """Estimate the PSF-parameter maps of one plane (a copy of ``image`` is taken first)."""
    from .. import load_method

    image = np.array(image, dtype=np.float32, copy=True)
    yield Progress(0, 2, "loading the estimator")
    method = load_method("psf-rl", model, device)
    yield Progress(1, 2, f"estimating on {method.device_name}")
    maps = method.blur_maps(image, optics, modality)
    yield Progress(2, 2, "done")
    return BlurMap(maps, float(optics.defocus_um(max_defocus_waves(method.estimator(modality).card))))
