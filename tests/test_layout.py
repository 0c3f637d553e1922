"""Both docks on a 1366 x 768 laptop screen: the window does not grow, nothing is cut off, all is reachable."""

from qtpy.QtWidgets import QApplication, QScrollArea

PLUGIN = "napari-latent-focus"


def test_both_docks_fit_a_1366_by_768_screen(make_napari_viewer, qtbot, tmp_path, monkeypatch):
    monkeypatch.setenv("LATENT_FOCUS_MODELS", str(tmp_path))
    viewer = make_napari_viewer(show=True)
    window = viewer.window._qt_window
    window.resize(1366, 768)
    viewer.open_sample(PLUGIN, "nuclei_defocus")
    _, panel = viewer.window.add_plugin_dock_widget(PLUGIN, "Latent focus")
    _, dock = viewer.window.add_plugin_dock_widget(PLUGIN, "Training")
    qtbot.waitUntil(lambda: not panel.busy, timeout=60000)
    for _ in range(20):
        QApplication.processEvents()
    shot = window.grab()
    assert (shot.width(), shot.height()) == (1366, 768)  # before: the window grew to about 1400 px tall
    for widget in (panel, dock):
        right = widget.mapTo(window, widget.rect().topRight()).x()
        assert right <= window.width(), f"{type(widget).__name__} is cut off at the right"
    for owner, control in ((dock, dock.start_button), (dock, dock.loss_plot), (panel, panel.many_button),
                           (panel, panel.one_button)):
        scroll = owner.findChild(QScrollArea)
        scroll.ensureWidgetVisible(control)
        QApplication.processEvents()
        assert not control.visibleRegion().isEmpty(), control
