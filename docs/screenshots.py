"""Screenshots for the documentation, taken in a 1366 x 768 napari window (a laptop screen): the sample stack
deblurred by the Latent focus panel next to the plane it came from, the panel's tabs, the Training dock, both
docks in napari's default 1089 x 630 window on that screen, and psf-rl's blur map of a single plane.
Writes PNGs into ``docs/images/``.

    xvfb-run -a -s "-screen 0 1366x768x24" python docs/screenshots.py [--model NAME_OR_FOLDER]
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

IMAGES = Path(__file__).resolve().parent / "images"
PLUGIN = "napari-latent-focus"
SCREEN = (1366, 768)
DEFAULT_WINDOW = (1089, 630)  # the window napari opens on a 1366 x 768 screen


def save(image, name: str) -> None:
    path = IMAGES / name
    image.save(str(path), "PNG", 0)
    print(f"{path} ({path.stat().st_size // 1024} KB)")


def wait_for(condition, app, timeout: float = 300.0) -> None:
    end = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > end:
            raise TimeoutError("the panel did not finish in time")
        app.processEvents()
        time.sleep(0.01)


def settle(app, n: int = 30) -> None:
    for _ in range(n):
        app.processEvents()
        time.sleep(0.02)


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default=None, help="model name or folder (default: the shipped default)")
    args = parser.parse_args(argv)

    import napari
    from qtpy.QtGui import QImage
    from qtpy.QtWidgets import QApplication

    from latent_focus.napari.dock import dock_widget_of

    IMAGES.mkdir(parents=True, exist_ok=True)
    viewer = napari.Viewer(title="Latent Focus", show=True)
    window = viewer.window._qt_window
    window.resize(*SCREEN)
    app = QApplication.instance()
    viewer.open_sample(PLUGIN, "nuclei_defocus")
    viewer.dims.set_current_step(0, 2)  # 2 um below focus; plane 1 is its blurrier neighbour

    _, panel = viewer.window.add_plugin_dock_widget(PLUGIN, "Latent focus")
    _, training = viewer.window.add_plugin_dock_widget(PLUGIN, "Training")  # the two docks join as tabs
    if args.model:
        panel.choose_model(args.model)
    wait_for(lambda: not panel.busy, app)

    panel.restore.restore_one()  # plane B with C, by the default rule
    wait_for(lambda: not panel.busy, app)
    result = viewer.layers[-1]
    viewer.canvas.grid.enabled = True
    text = viewer.canvas.overlays.text
    text.text = f"left: plane {panel.planes()[0]} deblurred    right: as recorded"
    text.font_size = 9
    text.position = "top_center"
    text.visible = True
    viewer.layers.selection.active = result
    dock_widget_of(panel).raise_()
    viewer.reset_view()
    settle(app)
    shot = viewer.screenshot(canvas_only=False, flash=False)
    h, w = shot.shape[:2]
    save(QImage(shot.tobytes(), w, h, 4 * w, QImage.Format.Format_RGBA8888).copy(), "viewer_deblurring.png")
    save(panel.grab(), "latent_focus_panel.png")

    viewer.canvas.grid.enabled = False
    text.visible = False
    panel.tabs.setCurrentIndex(1)
    panel.section.live.slider.setValue(170)
    wait_for(lambda: not panel.busy, app)
    settle(app)
    save(panel.grab(), "live_slider.png")
    panel.tabs.setCurrentIndex(2)
    panel.section.view.view_button.click()
    wait_for(lambda: not panel.busy, app)
    settle(app)
    save(panel.grab(), "latent_view.png")

    dock_widget_of(training).raise_()
    settle(app)
    save(training.grab(), "training_dock.png")
    save(window.grab(), "laptop_1366x768.png")
    window.resize(*DEFAULT_WINDOW)
    dock_widget_of(panel).raise_()
    settle(app)
    viewer.reset_view()
    settle(app)
    save(window.grab(), "laptop_1089x630.png")
    window.resize(*SCREEN)

    # a single-plane method: psf-rl's blur map of the shown plane, over the data
    dock_widget_of(panel).raise_()
    panel.tabs.setCurrentIndex(0)
    for layer in list(viewer.layers)[1:]:  # only the data under the map
        layer.visible = False
    panel.method_combo.setCurrentIndex(panel.method_combo.findData("psf-rl"))
    wait_for(lambda: not panel.busy, app)
    viewer.dims.set_current_step(0, 0)  # 4 um below focus
    panel.section.button.click()
    wait_for(lambda: not panel.busy and "blur map" in viewer.layers[-1].name, app)
    viewer.layers[-1].opacity = 0.45
    viewer.reset_view()
    settle(app)
    save(window.grab(), "psf_rl_blur_map.png")
    viewer.close()


if __name__ == "__main__":
    main()
