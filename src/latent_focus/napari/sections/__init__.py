"""Each method's own widgets in the panel, registered here by method name (the core knows nothing of them).

A section is a :class:`~latent_focus.napari.sections.base.Section`; the panel shows the one registered for the
picked method, and none for a method without one.
"""

from __future__ import annotations

from ...methods.blur_code import BlurCodeMethod
from ...methods.latent import LatentMethod
from ...methods.psf_rl import PsfRL
from .base import Section
from .blur_code import BlurCodeSection
from .latent import LatentSection
from .psf_rl import PsfRLSection

SECTIONS: dict[str, type[Section]] = {
    LatentMethod.name: LatentSection,
    PsfRL.name: PsfRLSection,
    BlurCodeMethod.name: BlurCodeSection,
}
