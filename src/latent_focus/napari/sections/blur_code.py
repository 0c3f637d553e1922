"""The blur-code method's section of the panel: a blur slider for one plane of any image layer, and a code plot.

**Encode plane** encodes the plane the viewer shows once (in the panel's job runner, with its progress and
Cancel); dragging the slider then decodes that plane with its blur code moved along the model's blur
axis: toward the in-focus code deblurs, away from it synthesises blur. A small preview is decoded while
dragging and the full plane on release, in a background thread; while one decode runs, only the newest
request waits. Each source plane gets one output layer (made by the panel, so never over the user's
data) that later decodes update in place. The plot shows every plane's code on the 1-D blur axis.
Without a blur-code model the buttons are off and the section says how to train one.
"""

from __future__ import annotations

import numpy as np
from qtpy.QtCore import QPointF, QRectF, Qt
from qtpy.QtGui import QColor, QPainter, QPen
from qtpy.QtWidgets import QHBoxLayout, QLabel, QPushButton, QSizePolicy, QSlider, QWidget

from ...methods.blur_code import TRAIN_PRESETS, BlurCodeMethod, EncodedPlane, encode_plane, render
from ..coalescing import CoalescingRunner
from ..plane_plot import TEXT, draw_frame, draw_planes
from .base import Section

TICKS = 1000


class BlurCodePlot(QWidget):
    """Each plane's blur code (x) against its plane index (y, first plane on top): the in-focus code as a white
    line, the encoded plane ringed in yellow and the slider's code as a yellow tick on its row."""

    def __init__(self, parent=None):
        super().__init__(parent)
        self.setMinimumHeight(150)
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Preferred)
        self.setToolTip("blur code of every plane (dots, blue = first plane, orange = last); white line: the "
                        "in-focus code; yellow ring: the encoded plane; yellow tick: the slider's code")
        self.codes: np.ndarray | None = None
        self.focus_code = 0.0
        self.plane = -1
        self.value: float | None = None
        self.span = (0.0, 1.0)

    def set_codes(self, codes: np.ndarray, focus_code: float, plane: int, span: tuple[float, float]) -> None:
        self.codes, self.focus_code, self.plane, self.span = np.asarray(codes, float), focus_code, plane, span
        self.update()

    def set_value(self, value: float) -> None:
        self.value = value
        self.update()

    def paintEvent(self, event):
        p = QPainter(self)
        frame = draw_frame(p, QRectF(self.rect()), 26, "blur code  (sharper ← → blurrier)")
        if self.codes is None or len(self.codes) == 0:
            p.drawText(frame, Qt.AlignmentFlag.AlignCenter, "press Encode plane")
            return
        lo, hi = self.span
        n = len(self.codes)

        def at(code: float, row: float) -> QPointF:
            u = (code - lo) / (hi - lo) if hi > lo else 0.5
            v = row / max(n - 1, 1)
            return QPointF(frame.left() + 8 + u * (frame.width() - 16), frame.top() + 8 + v * (frame.height() - 16))

        p.setPen(QPen(QColor(255, 255, 255), 1, Qt.PenStyle.DashLine))
        p.drawLine(at(self.focus_code, -0.4), at(self.focus_code, n - 0.6))
        pts = [at(c, i) for i, c in enumerate(self.codes)]
        draw_planes(p, pts, 3.0)
        if 0 <= self.plane < n:
            p.setPen(QPen(QColor(255, 220, 60), 1.5))
            p.drawEllipse(pts[self.plane], 6.0, 6.0)
            if self.value is not None:
                tick = at(self.value, self.plane)
                p.drawLine(QPointF(tick.x(), tick.y() - 8), QPointF(tick.x(), tick.y() + 8))
        p.setPen(TEXT)
        p.drawText(QRectF(2, frame.top(), 22, 16), Qt.AlignmentFlag.AlignRight, "0")
        p.drawText(QRectF(2, frame.bottom() - 16, 22, 16), Qt.AlignmentFlag.AlignRight, str(n - 1))


class BlurCodeSection(Section):
    """The blur-code method's widgets in the panel; see the module docstring."""

    def __init__(self, context, parent=None):
        super().__init__(context, parent)
        self.encoded: EncodedPlane | None = None
        self._outputs: dict[tuple, object] = {}  # (source layer id, plane) -> the result layer made for it
        self._source = None  # the layer the encoded plane came from
        self._lo, self._hi = 0.0, 1.0
        self._runner = CoalescingRunner(self._render, self._show, self._report)

        self.encode_button = QPushButton("Encode plane")
        self.encode_button.setToolTip("encode the plane the viewer shows; the slider then moves its blur code")
        self.encode_button.clicked.connect(self.encode)
        self.slider = QSlider(Qt.Orientation.Horizontal)
        self.slider.setRange(0, TICKS)
        self.slider.setToolTip("blur code: left of the white line deblurs, right of it adds blur")
        self.slider.valueChanged.connect(self._on_slider)
        self.slider.sliderReleased.connect(lambda: self.request(preview=False))
        self.focus_button = QPushButton("In focus")
        self.focus_button.setToolTip("the model's in-focus code")
        self.focus_button.clicked.connect(lambda: self.set_value(self.encoded.axis.focus_value))
        self.reset_button = QPushButton("As encoded")
        self.reset_button.setToolTip("the plane's own code")
        self.reset_button.clicked.connect(lambda: self.set_value(self.encoded.own_value))
        self.value_label = QLabel("")
        self.value_label.setWordWrap(True)
        self.plot = BlurCodePlot()
        self.status = QLabel()
        self.status.setWordWrap(True)

        buttons = QHBoxLayout()
        for w in (self.encode_button, self.focus_button, self.reset_button):
            buttons.addWidget(w)
        self.box.addLayout(buttons)
        self.box.addWidget(self.slider)
        self.box.addWidget(self.value_label)
        self.box.addWidget(self.plot)
        self.box.addWidget(self.status)
        self._disable()

    @property
    def busy(self) -> bool:
        return self._runner.busy

    def stop(self) -> None:
        self._runner.stop()

    def method_ready(self, method) -> None:
        super().method_ready(method)
        self.encode_button.setEnabled(True)
        self.status.setText("Encode the plane the viewer shows, then drag the blur code.")

    def method_failed(self, message: str) -> None:
        super().method_failed(message)
        self._disable()
        self.status.setText(f"No {BlurCodeMethod.name} model could be loaded (see Model above). Train one in the "
                            f"Training dock (Plugins › Latent Focus › Training) with the {TRAIN_PRESETS[0]} preset, "
                            "then pick it under Model.")

    def _disable(self) -> None:
        self.encoded = None
        for w in (self.encode_button, self.slider, self.focus_button, self.reset_button):
            w.setEnabled(False)

    # -- encoding --------------------------------------------------------------------------------
    def encode(self) -> None:
        """Snapshot the chosen layer's current plane and encode it in the panel's job runner."""
        layer, stack, method = self.context.layer(), self.context.stack(), self.method
        if layer is None or stack is None or method is None:
            self.status.setText("choose an image layer first" if method is not None else "no model loaded")
            return
        plane = self.context.current_plane()
        job = encode_plane(method.engine, stack, plane, layer.name, method.decoding(method.default_params()))
        self.context.run_job(job, lambda encoded: self._encoded(encoded, layer),
                             f"encoding plane {plane} of {layer.name}")

    def _encoded(self, encoded: EncodedPlane, layer) -> None:
        self.encoded, self._source = encoded, layer
        axis = encoded.axis
        values = [axis.focus_value, encoded.own_value, *axis.range, *encoded.codes]
        lo, hi = float(min(values)), float(max(values))
        pad = 0.15 * max(hi - lo, 1e-3)
        self._lo, self._hi = lo - pad, hi + pad
        self.plot.set_codes(encoded.codes, axis.focus_value, encoded.plane, (self._lo, self._hi))
        for w in (self.slider, self.focus_button, self.reset_button):
            w.setEnabled(True)
        self.set_value(encoded.own_value, decode=False)
        self.status.setText(f"plane {encoded.plane} of {encoded.source}: blur code {encoded.own_value:.3f}, "
                            f"in focus {axis.focus_value:.3f} ({encoded.engine.name})")

    # -- the slider ------------------------------------------------------------------------------
    def value(self) -> float:
        return self._lo + (self._hi - self._lo) * self.slider.value() / TICKS

    def set_value(self, value: float, decode: bool = True) -> None:
        tick = int(round((value - self._lo) / (self._hi - self._lo) * TICKS)) if self._hi > self._lo else 0
        self.slider.blockSignals(True)
        self.slider.setValue(int(np.clip(tick, 0, TICKS)))
        self.slider.blockSignals(False)
        self._update_label()
        if decode:
            self.request(preview=False)

    def _update_label(self) -> None:
        if self.encoded is None:
            return
        v, focus = self.value(), self.encoded.axis.focus_value
        own = self.encoded.own_value
        what = "toward focus" if abs(v - focus) < abs(own - focus) else "away from focus"
        self.value_label.setText(f"blur code {v:.3f}  ({what}; plane {own:.3f}, in focus {focus:.3f})")
        self.plot.set_value(v)

    def _on_slider(self, _tick: int) -> None:
        self._update_label()
        self.request(preview=self.slider.isSliderDown())

    def request(self, preview: bool = False) -> None:
        """Decode the encoded plane at the slider's code (a preview while dragging)."""
        if self.encoded is not None:
            self._runner.request((self.encoded, self._source, self.value(), preview))

    @staticmethod
    def _render(request) -> np.ndarray:
        encoded, _, value, preview = request
        return render(encoded, value, preview)

    def _show(self, request, image: np.ndarray) -> None:
        encoded, source, value, preview = request
        metadata = {"method": BlurCodeMethod.name, "model": encoded.engine.name, "source": encoded.source,
                    "plane": encoded.plane, "blur_code": value, "plane_blur_code": encoded.own_value,
                    "in_focus_code": encoded.axis.focus_value, "decoding": encoded.decoding, "preview": preview}
        key = (source.unique_id, encoded.plane)
        layer = self._outputs.get(key)
        if layer is not None and layer in self.context.viewer.layers:
            layer.data = image
            layer.metadata.update(metadata)
        else:
            self._outputs[key] = self.context.add_result(image, f"{encoded.source} blur code [{encoded.plane}]",
                                                         [encoded.plane], metadata)
        self.status.setText(f"plane {encoded.plane} at blur code {value:.3f}" + (" (preview)" if preview else ""))

    def _report(self, exc: Exception) -> None:
        self.status.setText(f"decoding failed: {exc}")
        self.context.report(exc)
