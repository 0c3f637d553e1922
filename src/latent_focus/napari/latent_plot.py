"""A small scatter plot of per-plane latents (2-D PCA), drawn with QPainter."""

from __future__ import annotations

import numpy as np
from qtpy.QtCore import QPointF, QRectF, Qt
from qtpy.QtGui import QColor, QPainter, QPen
from qtpy.QtWidgets import QSizePolicy, QWidget

from .plane_plot import draw_frame, draw_planes


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
        frame = draw_frame(p, QRectF(self.rect()), 22, self._axes[0])
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
        draw_planes(p, pts, 3.5)
        n = len(pts)
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
