"""A small live plot of loss curves against training step, log-scaled, drawn with QPainter."""

from __future__ import annotations

import math

from qtpy.QtCore import QPointF, QRectF, QSize, Qt
from qtpy.QtGui import QColor, QPainter, QPalette, QPen, QPolygonF
from qtpy.QtWidgets import QWidget

SERIES_COLORS = {"train": QColor(80, 160, 255), "validation": QColor(255, 150, 50)}


class LossPlot(QWidget):
    """Loss against step for a few named series, y on a log10 axis, with a legend."""

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self.series: dict[str, list[tuple[int, float]]] = {name: [] for name in SERIES_COLORS}
        self.setMinimumHeight(130)

    def sizeHint(self) -> QSize:
        return QSize(320, 170)

    def add(self, name: str, step: int, value: float) -> None:
        """Append ``value`` at ``step`` to series ``name``; non-positive or non-finite values are skipped."""
        if value > 0 and math.isfinite(value):
            self.series[name].append((step, value))
            self.update()

    def clear(self) -> None:
        for points in self.series.values():
            points.clear()
        self.update()

    @property
    def n_points(self) -> int:
        return sum(len(p) for p in self.series.values())

    def paintEvent(self, event) -> None:
        painter = QPainter(self)
        painter.setRenderHint(QPainter.RenderHint.Antialiasing)
        text = self.palette().color(QPalette.ColorRole.WindowText)
        metrics = painter.fontMetrics()
        plot = QRectF(metrics.horizontalAdvance("0.0001") + 10, 8,
                      self.width() - metrics.horizontalAdvance("0.0001") - 18,
                      self.height() - metrics.height() - 16)
        faint = QColor(text)
        faint.setAlpha(60)
        painter.setPen(QPen(faint, 1))
        painter.drawRect(plot)
        points = [p for series in self.series.values() for p in series]
        if not points:
            painter.setPen(text)
            painter.drawText(plot, Qt.AlignmentFlag.AlignCenter, "loss appears here during training")
            return
        s0 = min(s for s, _ in points)
        s1 = max(max(s for s, _ in points), s0 + 1)
        lo = math.log10(min(v for _, v in points))
        hi = math.log10(max(v for _, v in points))
        pad = max(hi - lo, 0.1) * 0.08
        lo, hi = lo - pad, hi + pad

        def to_xy(step: int, value: float) -> QPointF:
            return QPointF(plot.left() + (step - s0) / (s1 - s0) * plot.width(),
                           plot.bottom() - (math.log10(value) - lo) / (hi - lo) * plot.height())

        painter.setPen(text)
        for exponent in range(math.ceil(lo), math.floor(hi) + 1):
            y = to_xy(s0, 10.0 ** exponent).y()
            painter.setPen(QPen(faint, 1, Qt.PenStyle.DotLine))
            painter.drawLine(QPointF(plot.left(), y), QPointF(plot.right(), y))
            painter.setPen(text)
            painter.drawText(QRectF(0, y - metrics.height() / 2, plot.left() - 4, metrics.height()),
                             Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter, f"{10.0 ** exponent:g}")
        if math.floor(hi) < math.ceil(lo):  # no decade inside the range: label the ends
            for value, align in ((10 ** hi, Qt.AlignmentFlag.AlignTop), (10 ** lo, Qt.AlignmentFlag.AlignBottom)):
                painter.drawText(QRectF(0, plot.top(), plot.left() - 4, plot.height()),
                                 Qt.AlignmentFlag.AlignRight | align, f"{value:.3g}")
        below = QRectF(plot.left(), plot.bottom() + 2, plot.width(), metrics.height())
        painter.drawText(below, Qt.AlignmentFlag.AlignLeft, f"step {s0}")
        painter.drawText(below, Qt.AlignmentFlag.AlignRight, f"{s1}")

        stride = max(1, int(max(len(p) for p in self.series.values()) // max(plot.width(), 1)))
        for name, series in self.series.items():
            if not series:
                continue
            color = SERIES_COLORS[name]
            painter.setPen(QPen(color, 1.5))
            shown = series[::stride]
            if shown[-1] != series[-1]:
                shown.append(series[-1])
            painter.drawPolyline(QPolygonF([to_xy(s, v) for s, v in shown]))
            if len(series) == 1:
                painter.setBrush(color)
                painter.drawEllipse(to_xy(*series[0]), 2.5, 2.5)
        self._draw_legend(painter, plot, text)

    def _draw_legend(self, painter: QPainter, plot: QRectF, text: QColor) -> None:
        """Name and latest value of each series in a box at the top right of ``plot``."""
        metrics = painter.fontMetrics()
        labels = [(SERIES_COLORS[name], f"{name} {series[-1][1]:.3g}")
                  for name, series in self.series.items() if series]
        width = max(metrics.horizontalAdvance(label) for _, label in labels) + 30
        row = metrics.height() + 2
        box = QRectF(plot.right() - width - 4, plot.top() + 4, width, row * len(labels) + 4)
        background = self.palette().color(QPalette.ColorRole.Window)
        background.setAlpha(210)
        painter.setPen(Qt.PenStyle.NoPen)
        painter.setBrush(background)
        painter.drawRoundedRect(box, 3, 3)
        for i, (color, label) in enumerate(labels):
            y = box.top() + 2 + i * row
            painter.setPen(QPen(color, 2))
            painter.drawLine(QPointF(box.left() + 6, y + row / 2), QPointF(box.left() + 22, y + row / 2))
            painter.setPen(text)
            painter.drawText(QPointF(box.left() + 26, y + metrics.ascent() + 1), label)
