"""The plugin's dock widgets: content that scrolls under a fixed header, joined as tabs when opened together.

On a laptop screen two docks stacked in one column leave each too little height; as tabs each gets the whole
column. The header (pickers, progress, Cancel) never scrolls out of sight.
"""

from __future__ import annotations

from qtpy.QtCore import QEvent, QSize, Qt, QTimer
from qtpy.QtWidgets import QComboBox, QDockWidget, QMainWindow, QScrollArea, QVBoxLayout, QWidget


class PluginDock(QWidget):
    """A dock widget showing ``header`` fixed at the top and ``inner`` in a vertical scroll area below it, as wide
    as the content needs. Opened beside another :class:`PluginDock`, it joins it as a tab."""

    def set_content(self, inner: QWidget, header: QWidget | None = None) -> None:
        scroll = QScrollArea()
        scroll.setWidgetResizable(True)
        scroll.setWidget(inner)
        scroll.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        for part in (inner, header):
            for combo in part.findChildren(QComboBox) if part is not None else ():
                # long entries elide instead of widening the dock
                combo.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToMinimumContentsLengthWithIcon)
                combo.setMinimumContentsLength(10)
        self._inner, self._header, self._scroll = inner, header, scroll
        outer = QVBoxLayout(self)
        outer.setContentsMargins(0, 0, 0, 0)
        if header is not None:
            outer.addWidget(header)
        outer.addWidget(scroll, 1)
        self._joined = False
        self._join_timer = QTimer(self)
        self._join_timer.setSingleShot(True)
        self._join_timer.timeout.connect(self._join)

    def _header_height(self) -> int:
        return self._header.minimumSizeHint().height() if self._header is not None else 0

    def minimumSizeHint(self) -> QSize:
        """As wide as the content (which scrolls vertically), so that nothing is cut off at the side."""
        bar = self._scroll.verticalScrollBar().sizeHint().width()
        width = self._inner.minimumSizeHint().width() + bar + 4
        if self._header is not None:
            width = max(width, self._header.minimumSizeHint().width())
        return QSize(width, self._header_height() + 80)

    def sizeHint(self) -> QSize:
        return QSize(self.minimumSizeHint().width(), self._header_height() + self._inner.sizeHint().height())

    def event(self, event) -> bool:
        if event.type() == QEvent.Type.ParentChange and not self._joined:
            self._join_timer.start(0)  # once napari has placed the dock in its window
        return super().event(event)

    def _join(self) -> None:
        self._joined = join_tabs(self)


def dock_widget_of(widget: QWidget) -> QDockWidget | None:
    """The QDockWidget holding ``widget``, or None."""
    parent = widget.parentWidget()
    while parent is not None and not isinstance(parent, QDockWidget):
        parent = parent.parentWidget()
    return parent


def join_tabs(widget: PluginDock) -> bool:
    """Tabify ``widget``'s dock with the other open :class:`PluginDock` docks in its area, and raise it.

    Returns whether ``widget`` sits in a docked QDockWidget of a main window (so there was something to do).
    """
    dock = dock_widget_of(widget)
    window = dock.parentWidget() if dock is not None else None
    if not isinstance(window, QMainWindow) or dock.isFloating():
        return False
    area = window.dockWidgetArea(dock)
    for other in window.findChildren(QDockWidget):
        if (other is not dock and not other.isHidden() and not other.isFloating()
                and window.dockWidgetArea(other) == area and other.findChild(PluginDock) is not None
                and other not in window.tabifiedDockWidgets(dock)):
            window.tabifyDockWidget(other, dock)
            break
    dock.raise_()
    return True
