"""Plugin-wide events and state shared by the napari widgets."""

from __future__ import annotations

from dataclasses import dataclass

from psygnal import Signal, evented


class ModelEvents:
    """Events about the models on disk.

    ``changed(folder)`` is emitted with a model folder (str) after a model was written there, e.g. when
    training finishes or is cancelled; pickers should re-read ``latent_focus.models.list_models()``.
    """

    changed = Signal(str)


@evented
@dataclass
class PanelState:
    """What the Latent focus panel has chosen, for the other widgets (``panel_state.events.model``)."""

    model: str | None = "default"  # the model picked in the panel (a name or a folder)


model_events = ModelEvents()
panel_state = PanelState()
