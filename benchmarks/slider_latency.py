"""Latency of the Latent focus panel's live slider, drawing included: from an action to the canvas showing its result.

Opens a visible napari window (use ``xvfb-run -a`` on a headless machine; the canvas draws with Mesa),
loads a z-stack (the bundled sample by default), docks the panel and times, on the CPU:

* first preview: planes B and C just chosen (their latents dropped), the slider pressed and moved; until the
  first drawn frame of the new planes;
* first full: from the same moment, the slider released as soon as that preview shows; until the full-resolution
  frame is drawn (the planes are encoded at full resolution in the background meanwhile);
* preview: slider moves while held down, once the planes are encoded;
* full: slider moves released (full resolution), once the planes are encoded.

Each time runs from the action to the first canvas draw after the output layer's data changed; the decode alone
(to the data change) is reported beside it. Prints a table of medians.

    xvfb-run -a -s "-screen 0 1366x768x24" python benchmarks/slider_latency.py [--model NAME] [--stack FILE]
"""

from __future__ import annotations

import argparse
import os
import time

import numpy as np


class Clock:
    """Times from an action to the output layer's next data change and to the canvas draw after it."""

    def __init__(self, viewer, panel, app):
        self.viewer, self.panel, self.app = viewer, panel, app
        self.draws: list[float] = []
        viewer.window._qt_viewer.canvas._scene_canvas.events.draw.connect(
            lambda e: self.draws.append(time.perf_counter()))

    def wait(self, condition) -> None:
        """Run Qt's event loop until ``condition()``: the loop sleeps between events, as napari's does, so that
        waiting takes no CPU from the decode (checked every millisecond)."""
        from qtpy.QtCore import QEventLoop, QTimer

        if condition():
            return
        loop, timer = QEventLoop(), QTimer()
        timer.timeout.connect(lambda: condition() and loop.quit())
        timer.start(1)
        loop.exec()
        timer.stop()

    def drawn_after(self, t: float) -> float:
        self.wait(lambda: any(d > t for d in self.draws))
        return min(d for d in self.draws if d > t)

    def idle(self) -> None:
        self.wait(lambda: not self.panel.busy)


def slider_move(clock: Clock, out, value: int, preview: bool) -> tuple[float, float]:
    """Seconds from ``slider.setValue`` (held down for a preview, released for full resolution) to the data
    change and to the next draw."""
    slider = clock.panel.section.live.slider
    changed = []

    def on_data(event):  # the frame of this value: held (a preview where the planes are large) or released
        if out.metadata["t"] == value / 100 and (preview or not out.metadata["preview"]):
            changed.append(time.perf_counter())

    out.events.data.connect(on_data)
    slider.setSliderDown(preview)
    start = time.perf_counter()
    slider.setValue(value)
    clock.wait(lambda: changed)
    drawn = clock.drawn_after(changed[0])
    clock.idle()
    out.events.data.disconnect(on_data)
    return changed[0] - start, drawn - start


def first_frames(clock: Clock, out, sharp: int, value: int) -> tuple[float, float]:
    """Seconds from choosing plane B (its latents not yet known) and pressing the slider to the first drawn frame
    of the new planes, and, the slider released at that frame, to the full-resolution frame drawn."""
    panel = clock.panel
    slider = panel.section.live.slider
    seen: dict[str, float] = {}

    def on_data(event):
        if out.metadata["planes"][0] == sharp:
            seen.setdefault("any", time.perf_counter())
            if not out.metadata["preview"]:
                seen.setdefault("full", time.perf_counter())

    out.events.data.connect(on_data)
    start = time.perf_counter()
    panel.pair.sharp_spin.setValue(sharp)
    slider.setSliderDown(True)
    slider.setValue(value)
    clock.wait(lambda: "any" in seen)
    first = clock.drawn_after(seen["any"]) - start
    slider.setSliderDown(False)  # emits sliderReleased, as letting go of the mouse does
    clock.wait(lambda: "full" in seen)
    full = clock.drawn_after(seen["full"]) - start
    clock.idle()
    out.events.data.disconnect(on_data)
    return first, full


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default=None, help="model name or folder (default: the shipped default)")
    parser.add_argument("--stack", default=None, help="z-stack file (default: the bundled sample)")
    parser.add_argument("--repeats", type=int, default=12)
    args = parser.parse_args(argv)
    from latent_focus.errors import InputError
    from latent_focus.models import find_model

    try:
        find_model(args.model)
    except InputError as err:
        parser.error(str(err))
    if args.stack and not os.path.exists(args.stack):
        parser.error(f"--stack {args.stack} does not exist; pass a z-stack file")

    import napari
    from qtpy.QtWidgets import QApplication

    from latent_focus.methods.latent import PREVIEW_SIDE, preview_size
    from latent_focus.napari.panel import LatentFocusPanel
    from latent_focus.napari.reader import read_layers

    viewer = napari.Viewer(show=True)
    viewer.window._qt_window.resize(1366, 768)
    if args.stack:
        for data, kwargs, _ in read_layers(args.stack):
            viewer.add_image(data, **kwargs)
    else:
        viewer.open_sample("napari-latent-focus", "nuclei_defocus")
    panel = LatentFocusPanel(viewer)
    viewer.window.add_dock_widget(panel, name="Latent focus")
    app = QApplication.instance()
    panel.device_combo.setCurrentText("cpu")
    if args.model:
        panel.choose_model(args.model)
    clock = Clock(viewer, panel, app)
    clock.idle()
    source = viewer.layers[panel.source.layer_combo.currentText()]
    shape = source.data.shape[-2:]
    n = source.data.shape[-3]
    panel.pair.follow_check.setChecked(False)
    planes = [1, n - 2] if n > 3 else [0, 1]  # two pairs that share no plane: each visit encodes anew

    panel.pair.sharp_spin.setValue(planes[0])
    panel.section.live.slider.setValue(150)  # the normalisation of the stack, the output layer
    clock.wait(lambda: f"{source.name} latent focus" in viewer.layers)
    clock.idle()
    out = viewer.layers[f"{source.name} latent focus"]
    firsts = np.array([first_frames(clock, out, planes[(k + 1) % 2], 160 + k) for k in range(3)])
    sharp, blurry = panel.planes()
    values = [200, 250] * (args.repeats // 2 + 1)
    rows = [("first preview", max(preview_size(shape)), np.nan, np.median(firsts[:, 0]), firsts[:, 0].min(),
             firsts[:, 0].max(), len(firsts)),
            ("first full", max(shape), np.nan, np.median(firsts[:, 1]), firsts[:, 1].min(), firsts[:, 1].max(),
             len(firsts))]
    for preview in (True, False):
        slider_move(clock, out, 120, preview)  # warm-up
        times = np.array([slider_move(clock, out, v, preview) for v in values[: args.repeats]])
        rows.append(("preview" if preview else "full", max(preview_size(shape)) if preview else max(shape),
                     np.median(times[:, 0]), np.median(times[:, 1]), times[:, 1].min(), times[:, 1].max(),
                     args.repeats))
    model = panel.model_label.text()
    rule = out.metadata.get("rule", "")
    viewer.close()

    print(f"model {model}; stack {source.data.shape}; planes {sharp},{blurry}; preview long side {PREVIEW_SIDE} px; "
          f"visible 1366x768 window; load average {os.getloadavg()[0]:.1f}\nrule: {rule}")
    print(f"{'decode':<14} {'long side':>9} {'to data ms':>11} {'to drawn ms':>12} {'min':>7} {'max':>7} {'n':>4}")
    for name, side, data_s, med, lo, hi, count in rows:
        print(f"{name:<14} {side:>9} {data_s * 1e3:>11.1f} {med * 1e3:>12.1f} {lo * 1e3:>7.1f} {hi * 1e3:>7.1f} "
              f"{count:>4}")


if __name__ == "__main__":
    main()
