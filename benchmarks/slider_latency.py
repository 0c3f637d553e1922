"""Latency of the Latent focus panel's slider, drawing included: from setting a value to the canvas showing it.

Opens a visible napari window (use ``xvfb-run -a`` on a headless machine; the canvas draws with Mesa),
loads a z-stack (the bundled sample by default), docks the panel and times preview decodes (slider held
down) and full-resolution decodes (slider released) after the two planes' latents are cached: from
``slider.setValue`` to the first canvas draw after the output layer's data changed. The decode alone
(to the data change) is reported beside it. Prints a table of medians.

    xvfb-run -a -s "-screen 0 1366x768x24" python benchmarks/slider_latency.py [--model NAME] [--stack FILE]
"""

from __future__ import annotations

import argparse
import os
import time

import numpy as np


def measure(panel, layer, draws: list, value: int, preview: bool, app) -> tuple[float, float]:
    """Seconds from ``slider.setValue`` to the output layer's data event, and to the next canvas draw."""
    changed = []

    def on_data(event):
        changed.append(time.perf_counter())

    layer.events.data.connect(on_data)
    panel.slider.setSliderDown(preview)
    start = time.perf_counter()
    panel.slider.setValue(value)
    while not changed:
        app.processEvents()
        time.sleep(0.0005)
    while not [t for t in draws if t > changed[0]]:
        app.processEvents()
        time.sleep(0.0005)
    drawn = min(t for t in draws if t > changed[0])
    while panel.busy:
        app.processEvents()
    layer.events.data.disconnect(on_data)
    return changed[0] - start, drawn - start


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default=None, help="model name or folder (default: the shipped default)")
    parser.add_argument("--stack", default=None, help="z-stack file (default: the bundled sample)")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--repeats", type=int, default=12)
    args = parser.parse_args(argv)
    from latent_focus.errors import InputError
    from latent_focus.models import find_model

    try:
        folder = find_model(args.model)
    except InputError as err:
        parser.error(str(err))
    if args.stack and not os.path.exists(args.stack):
        parser.error(f"--stack {args.stack} does not exist; pass a z-stack file")

    import napari
    from qtpy.QtWidgets import QApplication

    from latent_focus.methods.latent.jobs import PREVIEW_SIDE, preview_scale
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
    if args.model:
        index = panel.model_combo.findData(args.model)
        if index >= 0:
            panel.model_combo.setCurrentIndex(index)
        else:
            panel.model_combo.add_folder(str(folder))
    panel.device_combo.setCurrentText(args.device)
    panel._load_method()
    while panel.busy:
        app.processEvents()
    draws: list[float] = []
    viewer.window._qt_viewer.canvas._scene_canvas.events.draw.connect(lambda e: draws.append(time.perf_counter()))
    source = viewer.layers[panel.layer_combo.currentText()]
    shape = source.data.shape[-2:]
    sharp, blurry = panel.planes()
    target = f"{source.name} latent focus"

    panel.slider.setValue(150)  # encodes and caches both planes, creates the output layer
    while panel.busy or target not in viewer.layers:
        app.processEvents()
    out = viewer.layers[target]
    values = [200, 250] * (args.repeats // 2 + 1)
    rows = []
    for preview in (True, False):
        measure(panel, out, draws, 120, preview, app)  # warm-up
        times = np.array([measure(panel, out, draws, v, preview, app) for v in values[: args.repeats]])
        side = round(max(shape) * preview_scale(shape)) if preview else max(shape)
        rows.append(("preview" if preview else "full", side, np.median(times[:, 0]), np.median(times[:, 1]),
                     times[:, 1].min(), times[:, 1].max()))
    model = panel.model_label.text()
    viewer.close()

    print(f"model {model}; stack {source.data.shape}; planes {sharp},{blurry}; preview long side {PREVIEW_SIDE} px; "
          f"visible 1366x768 window; load average {os.getloadavg()[0]:.1f}")
    print(f"{'decode':<8} {'long side':>9} {'to data ms':>11} {'to drawn ms':>12} {'min':>7} {'max':>7} {'n':>4}")
    for name, side, data_ms, med, lo, hi in rows:
        print(f"{name:<8} {side:>9} {data_ms * 1e3:>11.1f} {med * 1e3:>12.1f} {lo * 1e3:>7.1f} {hi * 1e3:>7.1f} "
              f"{args.repeats:>4}")


if __name__ == "__main__":
    main()
