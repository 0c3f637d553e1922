"""Drawing shared by the panel's small plots: a framed dark plot area, and planes as dots joined in z order."""

from __future__ import annotations

from qtpy.QtCore import QPointF, QRectF, Qt
from qtpy.QtGui import QColor, QPainter, QPen

TEXT = QColor(170, 175, 185)


def draw_frame(p: QPainter, rect: QRectF, left: int, label: str) -> QRectF:
    """Fill ``rect``, draw the plot frame (``left`` pixels in for a side label) and ``label`` under it."""
    p.setRenderHint(QPainter.RenderHint.Antialiasing)
    p.fillRect(rect, QColor(38, 41, 48))
    frame = QRectF(rect).adjusted(left, 8, -8, -20)
    p.setPen(QPen(QColor(90, 95, 105), 1))
    p.drawRect(frame)
    p.setPen(TEXT)
    p.drawText(QRectF(frame.left(), frame.bottom() + 2, frame.width(), 16), Qt.AlignmentFlag.AlignHCenter, label)
    return frame


def draw_planes(p: QPainter, pts: list[QPointF], radius: float) -> None:
    """Planes as dots joined in z order, coloured from the first (blue) to the last (orange)."""
    p.setPen(QPen(QColor(120, 125, 135), 1))
    for a, b in zip(pts[:-1], pts[1:]):
        p.drawLine(a, b)
    n = len(pts)
    p.setPen(Qt.PenStyle.NoPen)
    for i, pt in enumerate(pts):
        f = i / max(n - 1, 1)
        p.setBrush(QColor(int(60 + 195 * f), int(140 - 10 * f), int(230 - 200 * f)))
        p.drawEllipse(pt, radius, radius)
    p.setBrush(Qt.BrushStyle.NoBrush)
