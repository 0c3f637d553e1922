"""A small scatter plot of per-plane latents (2-D PCA), drawn with QPainter."""

from __future__ import annotations

import numpy as np
from qtpy.QtCore import QPointF, QRectF, Qt
from qtpy.QtGui import QColor, QPainter, QPen
from qtpy.QtWidgets import QSizePolicy, QWidget


class LatentPlot(QWidget):
    """Planes as dots joined in z order, coloured from first (blue) to last (orange) plane.

    The focus plane is ringed in white and the two planes chosen in the panel in yellow.
    """

    def __init__(self, parent=None):
        super().__init__(parent)
        self.setMinimumHeight(160)
        self.setToolTip("one dot per plane, blue (first) to orange (last); white ring: sharpest plane; "
                        "yellow rings: planes B and C")
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Preferred)
        self._coords: np.ndarray | None = None
        self._focus = -1
        self._marked: tuple[int, ...] = ()
        self._axes = ("PC1", "PC2")

    def set_points(self, coords: np.ndarray, focus: int, explained: tuple[float, float]) -> None:
        self._coords = np.asarray(coords, dtype=float)
        self._focus = focus
        self._axes = (f"PC1 {explained[0]:.0%}", f"PC2 {explained[1]:.0%}")
        self.update()

    def mark(self, planes: tuple[int, ...]) -> None:
        self._marked = tuple(planes)
        self.update()

    def paintEvent(self, event):
        p = QPainter(self)
        p.setRenderHint(QPainter.RenderHint.Antialiasing)
        p.fillRect(self.rect(), QColor(38, 41, 48))
        frame = QRectF(self.rect()).adjusted(22, 8, -8, -20)
        p.setPen(QPen(QColor(90, 95, 105), 1))
        p.drawRect(frame)
        p.setPen(QColor(170, 175, 185))
        p.drawText(QRectF(frame.left(), frame.bottom() + 2, frame.width(), 16),
                   Qt.AlignmentFlag.AlignHCenter, self._axes[0])
        p.save()
        p.translate(frame.left() - 4, frame.center().y())
        p.rotate(-90)
        p.drawText(QRectF(-frame.height() / 2, -16, frame.height(), 16), Qt.AlignmentFlag.AlignHCenter,
                   self._axes[1])
        p.restore()
        if self._coords is None or len(self._coords) == 0:
            p.drawText(frame, Qt.AlignmentFlag.AlignCenter, "press Latent view")
            return
        pts = self._to_frame(frame)
        p.setPen(QPen(QColor(120, 125, 135), 1))
        for a, b in zip(pts[:-1], pts[1:]):
            p.drawLine(a, b)
        n = len(pts)
        for i, pt in enumerate(pts):
            f = i / max(n - 1, 1)
            p.setPen(Qt.PenStyle.NoPen)
            p.setBrush(QColor(int(60 + 195 * f), int(140 - 10 * f), int(230 - 200 * f)))
            p.drawEllipse(pt, 3.5, 3.5)
        p.setBrush(Qt.BrushStyle.NoBrush)
        for planes, colour in (((self._focus,), QColor(255, 255, 255)), (self._marked, QColor(255, 220, 60))):
            p.setPen(QPen(colour, 1.5))
            for i in planes:
                if 0 <= i < n:
                    p.drawEllipse(pts[i], 6.5, 6.5)

    def _to_frame(self, frame: QRectF) -> list[QPointF]:
        c = self._coords
        lo, hi = c.min(axis=0), c.max(axis=0)
        span = np.where(hi - lo > 0, hi - lo, 1.0)
        uv = (c - lo) / span
        m = 10
        return [QPointF(frame.left() + m + u * (frame.width() - 2 * m),
                        frame.bottom() - m - v * (frame.height() - 2 * m)) for u, v in uv]
