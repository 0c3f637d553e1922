"""Plugin-wide events shared by the napari widgets."""

from __future__ import annotations

from psygnal import Signal


class ModelEvents:
    """Events about the models on disk.

    ``changed(folder)`` is emitted with a model folder (str) after a model was written there, e.g. when
    training finishes or is cancelled; pickers should re-read ``latent_focus.models.list_models()``.
    """

    changed = Signal(str)


model_events = ModelEvents()
