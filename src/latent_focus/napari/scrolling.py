"""Docks whose content scrolls vertically, so that they fit a laptop screen beside napari's own docks."""

from __future__ import annotations

from qtpy.QtCore import QSize, Qt
from qtpy.QtWidgets import QComboBox, QScrollArea, QVBoxLayout, QWidget


class ScrollingDock(QWidget):
    """A dock widget showing ``inner`` in a vertical scroll area, as wide as the content needs."""

    def set_content(self, inner: QWidget) -> None:
        scroll = QScrollArea()
        scroll.setWidgetResizable(True)
        scroll.setWidget(inner)
        scroll.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        for combo in inner.findChildren(QComboBox):  # long entries elide instead of widening the dock
            combo.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToMinimumContentsLengthWithIcon)
            combo.setMinimumContentsLength(10)
        self._inner, self._scroll = inner, scroll
        outer = QVBoxLayout(self)
        outer.setContentsMargins(0, 0, 0, 0)
        outer.addWidget(scroll)

    def minimumSizeHint(self) -> QSize:
        """As wide as the content (which scrolls vertically), so that nothing is cut off at the side."""
        bar = self._scroll.verticalScrollBar().sizeHint().width()
        return QSize(self._inner.minimumSizeHint().width() + bar + 4, 200)

    def sizeHint(self) -> QSize:
        return QSize(self.minimumSizeHint().width(), self._inner.sizeHint().height())
