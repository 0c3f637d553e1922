"""``latent-focus view``: napari with a z-stack (the bundled sample by default) and the Latent focus panel.

The stack is read and checked before napari starts, so bad input exits with one line. Without a display
the window is rendered off-screen and saved as a PNG in the user's cache folder (never the current folder);
an existing screenshot file is replaced only with ``--overwrite``.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from datetime import datetime
from pathlib import Path

from ..errors import InputError


def _needs_virtual_display() -> bool:
    return sys.platform.startswith("linux") and not (os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY"))


def screenshot_folder() -> Path:
    """Where screenshots go when none is named: ``$XDG_CACHE_HOME/latent-focus`` (or the platform's cache)."""
    if sys.platform == "win32":
        base = Path(os.environ.get("LOCALAPPDATA", Path.home() / "AppData" / "Local"))
    elif sys.platform == "darwin":
        base = Path.home() / "Library" / "Caches"
    else:
        base = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache"))
    return base / "latent-focus"


def check_screenshot(path: str | os.PathLike, overwrite: bool) -> Path:
    path = Path(path).expanduser()
    if path.suffix.lower() != ".png":
        raise InputError(f"--screenshot {path} must end in .png")
    if path.exists() and not overwrite:
        raise InputError(f"{path} already exists; choose another file or pass --overwrite")
    if not path.parent.is_dir():
        raise InputError(f"the folder {path.parent} does not exist; create it or choose another file")
    return path


def open_viewer(stack: str | None = None, screenshot: str | None = None, overwrite: bool = False,
                axes: str | None = None) -> int:
    """Open the viewer; with ``screenshot`` (or on a machine without a display) save a PNG and quit.

    ``axes`` overrides the file's own axes, as ``--axes`` does for every command that reads a file.
    """
    try:
        import napari  # noqa: F401
    except ModuleNotFoundError:
        raise InputError("napari is not installed; install it with: pip install 'napari[pyqt6]'") from None
    layers = _read(stack, axes)
    if screenshot is not None:
        screenshot = str(check_screenshot(screenshot, overwrite))
    if _needs_virtual_display():
        if screenshot is None:
            folder = screenshot_folder()
            folder.mkdir(parents=True, exist_ok=True)
            screenshot = str(folder / f"view-{datetime.now():%Y%m%d-%H%M%S}.png")
            print(f"no display found: rendering off-screen and saving {screenshot}", file=sys.stderr)
        if shutil.which("xvfb-run") and not os.environ.get("LATENT_FOCUS_IN_XVFB"):
            env = {**os.environ, "LATENT_FOCUS_IN_XVFB": "1"}
            cmd = ["xvfb-run", "-a", "-s", "-screen 0 1600x1000x24", sys.executable, "-m", "latent_focus.cli",
                   "view", *([stack] if stack else []), "--screenshot", screenshot, "--overwrite",
                   *(["--axes", axes] if axes else [])]
            return subprocess.call(cmd, env=env)
    return _show(layers, screenshot)


def _read(stack: str | None, axes: str | None = None) -> list[tuple] | None:
    """The layers of ``stack`` (one per channel), checked before napari starts; None for the sample."""
    if stack is None:
        return None
    from .reader import read_layers

    return read_layers(stack, axes)


def dock_panel(viewer):
    """Dock the Latent focus panel, then fit the view to the data in the canvas the docks left (returns the panel)."""
    from qtpy.QtWidgets import QApplication

    _, panel = viewer.window.add_plugin_dock_widget("napari-latent-focus", "Latent focus")
    for _ in range(20):  # let the window lay the dock out, so that the canvas has its final size
        QApplication.processEvents()
    viewer.reset_view()
    return panel


def _show(layers: list[tuple] | None, screenshot: str | None) -> int:
    import napari

    viewer = napari.Viewer(title="Latent Focus")
    if layers is None:
        viewer.open_sample("napari-latent-focus", "nuclei_defocus")
    else:
        for data, kwargs, _ in layers:
            viewer.add_image(data, **kwargs)
    dock_panel(viewer)
    if screenshot:
        viewer.screenshot(screenshot, canvas_only=False)
        viewer.close()
        print(f"saved {screenshot}", file=sys.stderr)
        return 0
    napari.run()
    return 0
