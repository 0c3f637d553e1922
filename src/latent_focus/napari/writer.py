"""Save image layers as float32 TIFF files (written to a temporary file, then renamed)."""

from __future__ import annotations

import numpy as np

from ..errors import InputError
from ..io import write_tiff


def write_image(path: str, data, meta: dict) -> list[str]:
    """Write one image layer of 2 or 3 dimensions (y, x) / (z, y, x) to ``path``; returns the path.

    napari's save dialog has already asked before replacing a file, so an existing file is replaced,
    atomically.
    """
    if meta.get("rgb"):
        raise InputError("RGB layers cannot be saved as z-stacks; convert the layer to greyscale first")
    data = np.asarray(data)
    if data.ndim not in (2, 3):
        raise InputError(f"the layer has {data.ndim} dimensions; save a (y, x) plane or a (z, y, x) stack")
    return [str(write_tiff(path, data, overwrite=True))]
