"""``latent-focus view``: napari with a z-stack (the bundled sample by default) and the Latent focus panel."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys


def _needs_virtual_display() -> bool:
    return sys.platform.startswith("linux") and not (os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY"))


def open_viewer(stack: str | None = None, screenshot: str | None = None) -> int:
    """Open the viewer; with ``screenshot`` (or on a machine without a display) save a PNG and quit."""
    if _needs_virtual_display():
        if screenshot is None:
            screenshot = os.path.abspath("latent-focus-view.png")
            print(f"no display found: rendering off-screen and saving {screenshot}", file=sys.stderr)
        if shutil.which("xvfb-run") and not os.environ.get("LATENT_FOCUS_IN_XVFB"):
            env = {**os.environ, "LATENT_FOCUS_IN_XVFB": "1"}
            cmd = ["xvfb-run", "-a", "-s", "-screen 0 1600x1000x24", sys.executable, "-m", "latent_focus.cli",
                   "view", *([stack] if stack else []), "--screenshot", screenshot]
            return subprocess.call(cmd, env=env)
    import napari

    viewer = napari.Viewer(title="Latent Focus")
    if stack:
        viewer.open(stack, plugin="napari-latent-focus")
    else:
        viewer.open_sample("napari-latent-focus", "nuclei_defocus")
    viewer.window.add_plugin_dock_widget("napari-latent-focus", "Latent focus")
    if screenshot:
        from qtpy.QtWidgets import QApplication

        for _ in range(20):
            QApplication.processEvents()
        viewer.screenshot(screenshot, canvas_only=False)
        viewer.close()
        print(f"saved {screenshot}", file=sys.stderr)
        return 0
    napari.run()
    return 0
