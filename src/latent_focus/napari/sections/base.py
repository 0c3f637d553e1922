"""The base of a method's section of the panel."""

from __future__ import annotations

from qtpy.QtWidgets import QVBoxLayout, QWidget

from ..context import PanelContext


class Section(QWidget):
    """Widgets the panel shows while one method is picked: this widget under the Restore tab's buttons, and the
    tabs of :meth:`tabs` after it. The panel calls the hooks below; ``method`` is the loaded method, or None
    while it loads or when it could not be loaded."""

    def __init__(self, context: PanelContext, parent=None):
        super().__init__(parent)
        self.context = context
        self.method = None
        self.box = QVBoxLayout(self)
        self.box.setContentsMargins(0, 0, 0, 0)

    def tabs(self) -> list[tuple[QWidget, str]]:
        """Tabs of this method's own, as (widget, title)."""
        return []

    def method_ready(self, method) -> None:
        self.method = method

    def method_failed(self, message: str) -> None:
        self.method = None

    def source_changed(self) -> None:
        """The layer, its channel or its data changed."""

    def planes_changed(self) -> None:
        """Plane B or C changed."""

    @property
    def busy(self) -> bool:
        """Whether work of the section's own (outside the panel's job runner) is running."""
        return False

    def stop(self) -> None:
        """Stop the section's own workers (the panel is closing, or another method was picked)."""
