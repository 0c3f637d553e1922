"""The latent method's section: Adapt under the Restore buttons, and the Live and Latent view tabs."""

from __future__ import annotations

from ..base import Section
from .adapt import AdaptBox
from .live import LiveTab
from .view import LatentViewTab


class LatentSection(Section):
    """Adapt, the live slider with blur synthesis, and the latent view."""

    def __init__(self, context, parent=None):
        super().__init__(context, parent)
        self.adapt = AdaptBox(self)
        self.live = LiveTab(self)
        self.view = LatentViewTab(self)
        self.box.addWidget(self.adapt)
        self.source_changed()

    def tabs(self):
        return [(self.live, "Live"), (self.view, "Latent view")]

    def source_changed(self) -> None:
        self.adapt.source_changed()
        self.live.source_changed()
        self.view.reset()

    def planes_changed(self) -> None:
        self.view.plot.mark(self.context.planes())
        self.live.planes_changed()

    @property
    def busy(self) -> bool:
        return self.live.busy

    def stop(self) -> None:
        self.live.stop()
