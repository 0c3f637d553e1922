"""Both docks on a 1366 x 768 laptop screen: the window does not grow, nothing is cut off, all is reachable.

napari opens a 1089 x 630 window on such a screen; a maximised window is 1366 x 768.
"""

import pytest
from qtpy.QtCore import QPoint, QRect
from qtpy.QtWidgets import QApplication, QScrollArea

from latent_focus.napari.dock import dock_widget_of

PLUGIN = "napari-latent-focus"


def in_sight(widget, window) -> bool:
    """Drawn (not hidden, scrolled away or covered by another tab) and inside the window."""
    box = QRect(widget.mapTo(window, QPoint(0, 0)), widget.size())
    return widget.isVisible() and not widget.visibleRegion().isEmpty() and window.rect().contains(box)


def settle():
    for _ in range(20):
        QApplication.processEvents()


@pytest.mark.parametrize("size", [(1089, 630), (1366, 768)])
def test_both_docks_share_the_column_as_tabs_with_their_controls_in_sight(make_napari_viewer, qtbot, tmp_path,
                                                                         monkeypatch, size):
    """Before: the two docks were stacked in one column, the panel's progress and Cancel sat below its tabs, and the
    window grew to about 1400 px tall."""
    monkeypatch.setenv("LATENT_FOCUS_MODELS", str(tmp_path))
    viewer = make_napari_viewer(show=True)
    window = viewer.window._qt_window
    window.resize(*size)
    viewer.open_sample(PLUGIN, "nuclei_defocus")
    _, panel = viewer.window.add_plugin_dock_widget(PLUGIN, "Latent focus")
    _, dock = viewer.window.add_plugin_dock_widget(PLUGIN, "Training")
    qtbot.waitUntil(lambda: not panel.busy, timeout=60000)
    settle()
    shot = window.grab()
    shot.save(str(tmp_path / f"laptop_{size[0]}x{size[1]}.png"))
    assert (shot.width(), shot.height()) == size
    assert dock_widget_of(dock) in window.tabifiedDockWidgets(dock_widget_of(panel))
    for widget in (panel, dock):
        right = widget.mapTo(window, widget.rect().topRight()).x()
        assert right <= window.width(), f"{type(widget).__name__} is cut off at the right"

    assert in_sight(dock.start_button, window) and in_sight(dock.cancel_button, window)  # the newest tab is on top
    assert in_sight(dock.progress_bar, window) and in_sight(dock.loss_plot, window)
    assert not in_sight(panel.runner.progress, window)
    dock_widget_of(panel).raise_()
    panel.restore.range_edit.setText("3-99")  # a bad range: the message shows where the user looks
    panel.restore.many_button.click()
    settle()
    for control in (panel.source.layer_combo, panel.method_combo, panel.model_combo, panel.runner.progress,
                    panel.runner.cancel_button, panel.runner.status):
        assert in_sight(control, window), control
    assert "outside" in panel.runner.status.text() and "ff6b6b" in panel.runner.status.styleSheet()
    for owner, control in ((panel, panel.restore.many_button), (panel, panel.section.adapt.button),
                           (dock, dock.form.model_name)):
        dock_widget_of(owner).raise_()
        scroll = owner.findChild(QScrollArea)
        scroll.ensureWidgetVisible(control)
        settle()
        assert in_sight(control, window), control
