"""Open z-stacks in napari: TIFF / OME-TIFF files and folders of per-plane TIFFs (BBBC006 layout)."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from ..errors import InputError
from ..io import TIFF_SUFFIXES, Stack, read_stack

NULL_LAYER = [(None,)]  # napari's "handled, nothing to add" answer


def get_reader(path):
    """Return a reader for a TIFF file or a folder holding TIFF planes, else None (declined)."""
    if isinstance(path, (list, tuple)):
        if len(path) != 1:
            return None
        path = path[0]
    path = Path(os.fspath(path))
    if path.is_dir():
        return read_layers if _holds_tiff_planes(path) else None
    return read_layers if path.suffix.lower() in TIFF_SUFFIXES else None


def _holds_tiff_planes(folder: Path) -> bool:
    """True when ``folder`` or one of its direct sub-folders contains TIFF files."""
    try:
        entries = list(folder.iterdir())
    except OSError:
        return False
    if any(e.suffix.lower() in TIFF_SUFFIXES for e in entries if e.is_file()):
        return True
    return any(f.suffix.lower() in TIFF_SUFFIXES for d in entries if d.is_dir() for f in d.iterdir())


def read_layers(path):
    """Read one z-stack as one image layer; unreadable input gives a notification, not an exception."""
    from napari.utils.notifications import show_error

    if isinstance(path, (list, tuple)):
        path = path[0]
    try:
        stack = read_stack(path)
    except InputError as exc:
        show_error(f"Latent Focus: {exc}")
        return NULL_LAYER
    return [stack_layer_data(stack)]


def stack_layer_data(stack: Stack, name: str | None = None) -> tuple:
    """``(data, kwargs, "image")`` for a stack: z axis first, scale from z spacing and pixel size."""
    px = stack.pixel_size_um or 1.0
    scale = (z_spacing(stack.z_um) or 1.0, px, px)
    metadata = {"source": stack.source, "z_um": None if stack.z_um is None else stack.z_um.tolist(),
                "pixel_size_um": stack.pixel_size_um, "dtype": str(stack.dtype)}
    name = name or Path(stack.source).stem or "z-stack"
    return stack.data, {"name": name, "scale": scale, "metadata": metadata}, "image"


def z_spacing(z_um) -> float | None:
    """Median distance between successive planes in micrometres, or None when unknown."""
    if z_um is None or len(z_um) < 2:
        return None
    step = float(np.median(np.abs(np.diff(np.asarray(z_um, dtype=float)))))
    return step if step > 0 else None
