"""File > Open Sample > Defocus z-stack (nuclei): the stack shipped with the package."""

from __future__ import annotations

from pathlib import Path

from ..io import read_stack
from .reader import stack_layer_data

SAMPLE = Path(__file__).resolve().parent.parent / "data" / "sample" / "nuclei_defocus.tif"


def nuclei_defocus() -> list[tuple]:
    """A defocus z-stack of nuclei as one image layer (z spacing from the bundled ``z.txt``)."""
    return [stack_layer_data(read_stack(SAMPLE), name="nuclei defocus")]
