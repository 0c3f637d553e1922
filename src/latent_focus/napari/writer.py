"""Save image layers as float32 TIFF files (written to a temporary file, then renamed), with their provenance."""

from __future__ import annotations

import numpy as np

from ..errors import InputError
from ..io import write_tiff

PROVENANCE_KEYS = ("source", "channel", "method", "model", "planes", "parameters", "per_plane", "mode", "t", "alpha",
                   "note")


def write_image(path: str, data, meta: dict) -> list[str]:
    """Write one image layer of 2 or 3 dimensions (y, x) / (z, y, x) to ``path``; returns the path.

    A layer made by this plugin keeps how it was made (method, model, planes, ...) in the TIFF's metadata.
    napari's save dialog has already asked before replacing a file, so an existing file is replaced,
    atomically.
    """
    if meta.get("rgb"):
        raise InputError("RGB layers cannot be saved as z-stacks; convert the layer to greyscale first")
    data = np.asarray(data)
    if data.ndim not in (2, 3):
        raise InputError(f"the layer has {data.ndim} dimensions; save a (y, x) plane or a (z, y, x) stack")
    from .. import __version__

    metadata = meta.get("metadata") or {}
    provenance = {"software": f"napari-latent-focus {__version__}", "layer": meta.get("name", ""),
                  **{k: metadata[k] for k in PROVENANCE_KEYS if k in metadata}}
    pixel = metadata.get("pixel_size_um")
    return [str(write_tiff(path, data, overwrite=True, provenance=provenance, pixel_size_um=pixel))]
