"""The latent method's Live tab: a slider that mixes the latents of planes B and C, and blur synthesis.

``t`` in [0, 1] synthesises blur between C (0) and B (1); above 1 the slider runs the method's own restore of
B with C at ``alpha = 1 / t`` with the panel's options, so it shows what Restore gives (the rule that ran is
shown under it). While the slider is dragged a preview is decoded from the planes downsampled to a few hundred
pixels (planes that small already are decoded whole), and between moves the planes are encoded at full
resolution in the background; on release the full plane is decoded. Each layer gets one output layer, drawn
at B's z, that later decodes update in place.
"""

from __future__ import annotations

import numpy as np
from qtpy.QtCore import Qt
from qtpy.QtWidgets import QFormLayout, QHBoxLayout, QLabel, QPushButton, QSlider, QSpinBox, QWidget

from ....errors import InputError
from ....latent import describe_t
from ....methods.latent import T_MAX, LiveFrame, LiveRequest, LiveSession, synthesize_levels
from ... import layers as L
from ...coalescing import CoalescingRunner

SLIDER_STEPS = 100  # slider ticks per unit of t
STALE_OPACITY = 0.35  # opacity of a live result whose planes are no longer the chosen ones


def _synthesis(engine, stack, sharp: int, blurry: int, levels: int):
    """:func:`synthesize_levels` with the stack's normalisation computed in the worker."""
    norm = engine.normalizer(stack.data)
    return (yield from synthesize_levels(engine, stack.data[sharp], stack.data[blurry], levels, norm))


class LiveTab(QWidget):
    """The slider, the rule it ran, and Synthesize blur."""

    def __init__(self, section, parent=None):
        super().__init__(parent)
        self.section, self.context = section, section.context
        self.slider = QSlider(Qt.Orientation.Horizontal)
        self.slider.setRange(0, int(T_MAX * SLIDER_STEPS))
        self.slider.setValue(SLIDER_STEPS)
        self.slider.setTickInterval(SLIDER_STEPS)
        self.slider.setTickPosition(QSlider.TickPosition.TicksBelow)
        self.slider.setToolTip("0: plane C, 1: plane B, above 1: deblurring beyond B as Restore does it, at "
                               "alpha = 1/t")
        self.t_label = QLabel()
        self.rule_label = QLabel("Drag t to mix planes B and C.")
        self.rule_label.setWordWrap(True)
        self.levels_spin = QSpinBox()
        self.levels_spin.setRange(2, 64)
        self.levels_spin.setValue(5)
        self.synth_button = QPushButton("Synthesize blur")
        self.synth_button.setToolTip("decode evenly spaced mixtures from plane B (t = 1) to plane C (t = 0)")
        layout = QFormLayout(self)
        layout.addRow("t", self.slider)
        layout.addRow("", self.t_label)
        layout.addRow("Rule", self.rule_label)
        levels = QHBoxLayout()
        levels.addWidget(QLabel("Levels"))
        levels.addWidget(self.levels_spin)
        levels.addWidget(self.synth_button, 1)
        layout.addRow(levels)
        self._runner = CoalescingRunner(lambda request: request.session.render(request), self._show,
                                        self._report, self._between_moves)
        self._session: tuple | None = None  # (key, session, source layer)
        self._rendered: tuple | None = None  # (session, planes, t, params, downsampled) of the last frame decoded
        self._in_use = False  # the slider was moved for the chosen layer: plane changes decode again
        self.slider.valueChanged.connect(self._on_slider)
        self.slider.sliderReleased.connect(lambda: self.request(preview=False))
        self.synth_button.clicked.connect(self.synthesize)
        self._update_t_label()

    @property
    def t(self) -> float:
        return self.slider.value() / SLIDER_STEPS

    @property
    def busy(self) -> bool:
        return self._runner.busy

    def _update_t_label(self) -> None:
        mode, alpha = describe_t(self.t)
        self.t_label.setText(f"{mode} α={alpha:.2f}  (t={self.t:.2f})")

    def _on_slider(self, _value: int) -> None:
        self._update_t_label()
        self.request(preview=self.slider.isSliderDown())

    # -- decoding --------------------------------------------------------------------------------
    def _live_request(self, preview: bool, prepare: bool = False) -> LiveRequest | None:
        """A request for the current planes and t (None, with a message, when there is nothing to decode)."""
        layer, method = self.context.layer(), self.section.method
        if layer is None or method is None:
            return None
        sharp, blurry = self.context.planes()
        if sharp == blurry:
            self.context.set_status("choose two different planes B and C", error=True)
            return None
        params = self.context.params()
        axes, channel = self.context.axes(layer), self.context.channel()
        where = tuple(i if isinstance(i, int) else -1 for i in L.stack_index(layer, self.context.viewer, axes, channel))
        key = (layer.unique_id, id(layer.data), channel, where, id(method.engine), params.tile)
        if self._session is None or self._session[0] != key:
            self._session = key, LiveSession(method.engine, self.context.stack()), layer
        session = self._session[1]
        return LiveRequest(session, (sharp, blurry), self.t, params, preview and session.has_preview, prepare)

    def request(self, preview: bool = False) -> None:
        """Decode the current slider value for the current planes (a preview while dragging)."""
        try:
            request = self._live_request(preview)
        except InputError as exc:
            self.context.report(exc)
            return
        if request is not None:
            self._in_use = True
            if not self._runner.busy and self._decoded(request):
                return  # shown already (a slider released where a drag over small planes left it)
            if not request.session.prepared(request.planes):
                self.context.set_status(f"encoding planes {request.planes[0]} and {request.planes[1]} ...")
            self._runner.request(request)

    def _between_moves(self) -> LiveRequest | None:
        """When the runner is idle: the full-resolution latents of the planes while the slider is held, or the
        full-resolution result after previews."""
        if not self._in_use or self._session is None:
            return None
        try:
            request = self._live_request(preview=False)
        except InputError:
            return None
        if request is None:
            return None
        if self.slider.isSliderDown():
            prepared = request.session.prepared(request.planes)
            return None if prepared else LiveRequest(request.session, request.planes, request.t, request.params,
                                                     prepare=True)
        return None if self._decoded(request) else request

    def _decoded(self, request: LiveRequest) -> bool:
        """Whether the last frame decoded is ``request``'s at full resolution."""
        return self._rendered == (request.session, request.planes, request.t, request.params, False)

    def _report(self, exc: Exception) -> None:
        self._in_use = False  # no retries of a failing decode until the slider moves again
        self.context.report(exc)

    def _show(self, request: LiveRequest, frame: LiveFrame) -> None:
        if frame.image is None:
            return  # a preparation
        session = request.session
        self._rendered = (session, request.planes, request.t, request.params, request.preview)
        if self._session is None or session is not self._session[1]:
            return  # a stack no longer chosen
        source = self._session[2]
        current = tuple(request.planes) == self.context.planes()
        if source not in self.context.viewer.layers or (request.preview and not current):
            return
        self._draw(source, frame, current)
        info = frame.info
        self.rule_label.setText(info["rule"] + (" (preview)" if request.preview else ""))
        self.context.set_status(f"planes {request.planes[0]}/{request.planes[1]}: {info['mode']} "
                                f"α={info['alpha']:.2f}" + (" (preview)" if request.preview else ""))

    def _draw(self, source, frame: LiveFrame, current: bool) -> None:
        """Put ``frame`` into the source's output layer at plane B's z (a preview stretched over the plane)."""
        request, viewer = frame.request, self.context.viewer
        channel, shape = self._session[0][2], request.session.stack.data.shape[1:]
        data, place = L.placed(source, viewer, self.context.axes(source), channel, [request.planes[0]],
                               [frame.image])
        scale, translate = list(place["scale"]), list(place["translate"])
        for k, f in zip((-2, -1), (shape[0] / frame.image.shape[0], shape[1] / frame.image.shape[1])):
            translate[k] += scale[k] * (f - 1) / 2
            scale[k] *= f
        meta = {"source": source.name, "channel": channel, "planes": list(request.planes), "t": request.t,
                "alpha": frame.info["alpha"], "mode": frame.info["mode"], "rule": frame.info["rule"],
                "model": request.session.engine.name, "preview": request.preview, "stale": not current,
                L.PLUGIN_OUTPUT: True}
        target = f"{source.name} latent focus"
        if target in viewer.layers:
            out = viewer.layers[target]
            out.metadata.update(meta)
            # each assignment refreshes the layer, so only what changed is set (a slider move: the data)
            if not (np.allclose(out.scale, scale) and np.allclose(out.translate, translate)):
                out.scale, out.translate = scale, translate
            out.data = data
            opacity = 1.0 if current else STALE_OPACITY
            if out.opacity != opacity:
                out.opacity = opacity
        else:
            viewer.add_image(data, name=target, metadata=meta, scale=scale, translate=translate,
                             **L.display_template(source))

    # -- following the panel ---------------------------------------------------------------------
    def planes_changed(self) -> None:
        """Dim the result of other planes, and decode the new pair when the slider is in use."""
        layer = self.context.layer()
        name = f"{layer.name} latent focus" if layer is not None else None
        if name in self.context.viewer.layers:
            out = self.context.viewer.layers[name]
            if tuple(out.metadata.get("planes", ())) != self.context.planes():
                out.opacity = STALE_OPACITY
                out.metadata["stale"] = True
        if self._in_use:
            self.request(preview=True)

    def source_changed(self) -> None:
        self._session, self._rendered, self._in_use = None, None, False

    def stop(self) -> None:
        self._runner.stop()

    # -- blur synthesis --------------------------------------------------------------------------
    def synthesize(self) -> None:
        """Decode evenly spaced mixtures from plane B (t=1) to plane C (t=0) into a new stack layer."""
        layer, stack, method = self.context.layer(), self.context.stack(), self.section.method
        sharp, blurry = self.context.planes()
        if layer is None or stack is None or method is None:
            return
        if sharp == blurry:
            self.context.set_status("choose two different planes B and C", error=True)
            return
        viewer, engine = self.context.viewer, method.engine
        axes, channel = self.context.axes(layer), self.context.channel()

        def done(result):
            out, ts = result
            data, place = L.placed_levels(layer, viewer, axes, channel, sharp, blurry, list(out))
            ts = ts[::-1] if blurry < sharp else ts  # as placed: in the planes' z order
            meta = {"source": layer.name, "channel": channel, "planes": [sharp, blurry], "model": engine.name,
                    "mode": "blur synthesis", "t": ts.tolist(), "alpha": ts.tolist(), L.PLUGIN_OUTPUT: True,
                    "note": "synthesised levels spread evenly over the z between planes B and C, in z order"}
            name = L.unique_name(viewer, f"{layer.name} blur synthesis [{sharp},{blurry}]")
            viewer.add_image(data, name=name, metadata=meta, **place, **L.display_template(layer))

        self.context.run_job(_synthesis(engine, stack, sharp, blurry, self.levels_spin.value()), done,
                             f"synthesising blur between planes {sharp} and {blurry}")
