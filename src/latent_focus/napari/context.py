"""What the Latent focus panel offers to a method's section (:mod:`latent_focus.napari.sections`).

Through the :class:`PanelContext` a section reads the chosen layer, channel, planes and options, runs its work
in the panel's job runner (with the panel's progress bar and Cancel), and adds result layers placed at their
source planes' z, never over the user's data.
"""

from __future__ import annotations

from collections.abc import Callable, Generator
from typing import Any, Protocol

import numpy as np

from ..io import Stack


class PanelContext(Protocol):
    """The panel, as a method's section sees it."""

    viewer: Any

    def layer(self):
        """The chosen source image layer, or None."""

    def channel(self) -> int:
        """The chosen channel of the layer (0 for a single-channel layer)."""

    def axes(self, layer):
        """The layer's :class:`~latent_focus.napari.layers.Axes` (which axis is z, which the channel)."""

    def stack(self, copy: bool = True) -> Stack | None:
        """The chosen layer's (z, y, x) stack (the chosen channel and time point; a copy unless ``copy`` is false),
        with its z positions and pixel size where the layer or its file records them; None without a layer."""

    def current_plane(self) -> int:
        """Index along the chosen layer's z axis of the plane the viewer shows."""

    def planes(self) -> tuple[int, int]:
        """Planes B (sharper) and C (blurrier) of pair methods."""

    def model(self) -> str | None:
        """The model picked in the panel (name or folder), or None for the method's default."""

    def choose_model(self, model: str) -> None:
        """Pick ``model`` (a name or a folder) in the panel and load it."""

    def device(self) -> str:
        """The device picked in the panel (auto, cpu, cuda or mps)."""

    def params(self):
        """The method's ``Params`` as the panel's form shows them; raises InputError for a value it refuses."""

    def run_job(self, job: Generator, on_done: Callable[[Any], None], what: str) -> None:
        """Run ``job`` (a generator yielding :class:`~latent_focus.progress.Progress`) in the panel's worker;
        ``on_done(result)`` runs in the UI thread with the generator's return value. ``what`` is shown while
        it runs. Only one job runs at a time; Cancel closes the generator."""

    def add_result(self, data: np.ndarray, name: str, planes: list[int], metadata: dict,
                   colormap: str | None = None, opacity: float = 1.0):
        """Add ``data`` ((y, x) for one plane, or (n, y, x) for ``planes``) as a new image layer whose planes sit
        at the z of their source planes; returns the layer. ``name`` is made unique; nothing is overwritten."""

    def set_status(self, text: str, error: bool = False) -> None:
        """Show ``text`` in the panel's status line (in red for an error)."""

    def report(self, exc: Exception) -> None:
        """Show an error in the status line and as a napari notification."""
