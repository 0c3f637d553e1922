"""Open what napari's own readers cannot: folders of per-plane TIFFs (the BBBC006 layouts) as z-stacks.

Plain TIFF files are left to napari's built-in reader (the plugin claims no file pattern, so opening a
TIFF never asks which reader to use); the panel finds their z axis, channels and plane positions itself
(:mod:`latent_focus.napari.layers`). ``latent-focus view FILE`` opens files through :func:`read_layers`,
which gives every channel its own layer, as napari's readers do.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from ..errors import InputError
from ..io import TIFF_SUFFIXES, Stack, read_channels

NULL_LAYER = [(None,)]  # napari's "handled, nothing to add" answer


def get_reader(path):
    """A reader for a folder holding a z-stack of per-plane TIFF files, else None (declined)."""
    if isinstance(path, (list, tuple)):
        if len(path) != 1:
            return None
        path = path[0]
    path = Path(os.fspath(path))
    return _read_folder if path.is_dir() and _holds_tiff_planes(path) else None


def _holds_tiff_planes(folder: Path) -> bool:
    """True when ``folder`` or one of its direct sub-folders contains TIFF files."""
    try:
        entries = list(folder.iterdir())
    except OSError:
        return False
    if any(e.suffix.lower() in TIFF_SUFFIXES for e in entries if e.is_file()):
        return True
    return any(f.suffix.lower() in TIFF_SUFFIXES for d in entries if d.is_dir() for f in d.iterdir())


def _read_folder(path):
    """napari's reader function: a notification, not an exception, for a folder that is no z-stack."""
    from napari.utils.notifications import show_error

    try:
        return read_layers(path[0] if isinstance(path, (list, tuple)) else path)
    except InputError as exc:
        show_error(f"Latent Focus: {exc}")
        return NULL_LAYER


def read_layers(path, axes: str | None = None) -> list[tuple]:
    """One image layer per channel of the z-stack at ``path`` (:class:`InputError` for bad input).

    ``axes`` as in :func:`latent_focus.io.read_stack`.
    """
    stacks = read_channels(path, axes=axes)
    return [stack_layer_data(s) for s in stacks]


def stack_layer_data(stack: Stack, name: str | None = None) -> tuple:
    """``(data, kwargs, "image")`` for a stack: z axis first, scale from z spacing and pixel size."""
    px = stack.pixel_size_um or 1.0
    scale = (z_spacing(stack.z_um) or 1.0, px, px)
    metadata = {"source": stack.source, "z_um": None if stack.z_um is None else stack.z_um.tolist(),
                "pixel_size_um": stack.pixel_size_um, "dtype": str(stack.dtype), "axes": "ZYX",
                "channel": stack.channel}
    name = name or Path(stack.source).stem or "z-stack"
    if stack.channel is not None:
        name = f"{name} [channel {stack.channel}]"
    return stack.data, {"name": name, "scale": scale, "metadata": metadata, "axis_labels": ("z", "y", "x")}, "image"


def z_spacing(z_um) -> float | None:
    """Median distance between successive planes in micrometres, or None when unknown."""
    if z_um is None or len(z_um) < 2:
        return None
    step = float(np.median(np.abs(np.diff(np.asarray(z_um, dtype=float)))))
    return step if step > 0 else None
