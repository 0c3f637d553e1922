"""Screenshots for the documentation: napari with the sample stack, the Latent focus panel deblurring
one plane, the latent view, and the Training dock. Writes PNGs into ``docs/images/``.

    xvfb-run -a -s "-screen 0 1600x1000x24" python docs/screenshots.py [--model NAME_OR_FOLDER]
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import time
from pathlib import Path

IMAGES = Path(__file__).resolve().parent / "images"
PLUGIN = "napari-latent-focus"
WIDTH = 1100  # px; screenshots are scaled down to this width to stay small


def save(image, name: str, width: int | None = WIDTH) -> None:
    """Save a QImage/QPixmap, scaled to ``width`` when wider, and report its size."""
    from qtpy.QtCore import Qt

    if width and image.width() > width:
        image = image.scaledToWidth(width, Qt.TransformationMode.SmoothTransformation)
    path = IMAGES / name
    image.save(str(path), "PNG", 0)
    print(f"{path} ({path.stat().st_size // 1024} KB)")


def wait_for(condition, app, timeout: float = 120.0) -> None:
    end = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > end:
            raise TimeoutError("the panel did not finish in time")
        app.processEvents()
        time.sleep(0.01)


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default=None, help="model name or folder (default: the shipped default)")
    args = parser.parse_args(argv)

    import napari
    from qtpy.QtGui import QImage
    from qtpy.QtWidgets import QApplication

    from latent_focus.napari.layers import output_name

    IMAGES.mkdir(parents=True, exist_ok=True)
    viewer = napari.Viewer(title="Latent Focus", show=True)
    viewer.window._qt_window.resize(1500, 820)
    app = QApplication.instance()
    viewer.open_sample(PLUGIN, "nuclei_defocus")
    source = viewer.layers[0]
    viewer.dims.set_current_step(0, 3)  # 1 um above focus; plane 2 is its blurrier neighbour

    _, panel = viewer.window.add_plugin_dock_widget(PLUGIN, "Latent focus")
    if importlib.util.find_spec("latent_focus.napari.training_dock") is not None:
        _, training = viewer.window.add_plugin_dock_widget(PLUGIN, "Training", tabify=True)
    else:
        training = None
    if args.model and os.path.isdir(args.model):
        panel.model_combo.add_folder(args.model)
    elif args.model:
        panel.model_combo.setCurrentIndex(panel.model_combo.findData(args.model))
    panel._load_engine()

    sharp, blurry = panel.planes()
    panel.slider.setValue(200)  # deblurring, alpha = 0.5: one plane spacing beyond plane B, i.e. focus
    target = output_name(source.name, sharp, blurry)
    wait_for(lambda: target in viewer.layers and not panel.busy, app)
    panel.view_button.click()
    wait_for(lambda: not panel.busy, app)

    viewer.canvas.grid.enabled = True
    text = viewer.canvas.overlays.text
    text.text = f"left: deblurred, t = 2 (α = 0.5)    right: plane {sharp}, 1 µm out of focus"
    text.font_size = 10
    text.position = "top_center"
    text.visible = True
    viewer.layers.selection.active = viewer.layers[target]
    panel.parentWidget().raise_()
    viewer.reset_view()
    for _ in range(20):
        app.processEvents()
        time.sleep(0.02)

    shot = viewer.screenshot(canvas_only=False, flash=False)
    h, w = shot.shape[:2]
    save(QImage(shot.tobytes(), w, h, 4 * w, QImage.Format.Format_RGBA8888).copy(), "viewer_deblurring.png")
    save(panel.grab(), "latent_focus_panel.png", width=None)
    if training is not None:
        training.parentWidget().raise_()
        app.processEvents()
        save(training.grab(), "training_dock.png", width=None)
    viewer.close()


if __name__ == "__main__":
    main()
