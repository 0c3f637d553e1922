"""Latency of the Latent focus panel's slider: from setting a value to the output layer's data changing.

Opens napari (needs a display; use ``xvfb-run -a`` on a headless machine), loads a z-stack (the bundled
sample by default), docks the panel and times preview decodes (slider held down) and full-resolution
decodes (slider released), after the two planes' latents are cached. Prints a table of medians.

    xvfb-run -a python benchmarks/slider_latency.py [--model NAME_OR_FOLDER] [--stack FILE] [--repeats 12]
"""

from __future__ import annotations

import argparse
import os
import time

import numpy as np


def measure(panel, layer, value: int, preview: bool, app) -> float:
    """Seconds from ``slider.setValue`` to the output layer's data event."""
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
    while panel.busy:
        app.processEvents()
    layer.events.data.disconnect(on_data)
    return changed[0] - start


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

    from latent_focus.napari.jobs import PREVIEW_SIDE, preview_scale
    from latent_focus.napari.layers import output_name
    from latent_focus.napari.panel import LatentFocusPanel

    viewer = napari.Viewer(show=False)
    if args.stack:
        viewer.open(args.stack, plugin="napari-latent-focus")
    else:
        viewer.open_sample("napari-latent-focus", "nuclei_defocus")
    panel = LatentFocusPanel(viewer)
    viewer.window.add_dock_widget(panel, name="Latent focus")
    if args.model:
        index = panel.model_combo.findData(args.model)
        if index >= 0:
            panel.model_combo.setCurrentIndex(index)
        else:
            panel.model_combo.add_folder(str(folder))
    panel.device_combo.setCurrentText(args.device)
    engine = panel.engine()
    if engine is None:
        raise SystemExit(f"no model: {panel.device_label.text()}")
    app = QApplication.instance()
    source = viewer.layers[panel.layer_combo.currentText()]
    shape = source.data.shape[-2:]
    sharp, blurry = panel.planes()

    panel.slider.setValue(150)  # encodes and caches both planes, creates the output layer
    while panel.busy or output_name(source.name, sharp, blurry) not in viewer.layers:
        app.processEvents()
    out = viewer.layers[output_name(source.name, sharp, blurry)]
    values = [200, 250] * (args.repeats // 2 + 1)
    rows = []
    for preview in (True, False):
        measure(panel, out, 120, preview, app)  # warm-up
        times = [measure(panel, out, v, preview, app) for v in values[: args.repeats]]
        side = round(max(shape) * preview_scale(shape)) if preview else max(shape)
        rows.append(("preview" if preview else "full", side, np.median(times), np.min(times), np.max(times)))
    viewer.close()

    print(f"model {engine.name} on {engine.device_name}; stack {source.data.shape}; planes {sharp},{blurry}; "
          f"preview long side {PREVIEW_SIDE} px; load average {os.getloadavg()[0]:.1f}")
    print(f"{'decode':<8} {'long side':>9} {'median ms':>10} {'min ms':>8} {'max ms':>8} {'n':>4}")
    for name, side, med, lo, hi in rows:
        print(f"{name:<8} {side:>9} {med * 1e3:>10.1f} {lo * 1e3:>8.1f} {hi * 1e3:>8.1f} {args.repeats:>4}")


if __name__ == "__main__":
    main()
