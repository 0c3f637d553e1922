"""The Latent focus panel driven in a real napari viewer, with real workers (run under Xvfb)."""

import re

import numpy as np
import pytest
import torch

from latent_focus.errors import InputError
from latent_focus.io import plane_positions
from latent_focus.models import build_model, save_model
from latent_focus.napari import live
from latent_focus.napari import panel as panel_module
from latent_focus.napari.layers import output_name
from latent_focus.napari.panel import LatentFocusPanel
from latent_focus.napari.planes import deblur_pair, parse_planes

PLUGIN = "napari-latent-focus"
SAMPLE = "nuclei defocus"
TIMEOUT = 15000


@pytest.fixture
def models_dir(tmp_path, monkeypatch):
    """A per-user models folder holding one small (untrained) model called ``user:test``."""
    torch.manual_seed(0)
    save_model(tmp_path / "models" / "test", build_model("tiny"), {"preset": "tiny", "name": "test"})
    monkeypatch.setenv("LATENT_FOCUS_MODELS", str(tmp_path / "models"))
    return tmp_path / "models"


@pytest.fixture
def viewer_panel(make_napari_viewer, qtbot, models_dir):
    """A viewer with the sample opened through the manifest and the panel docked from the manifest."""
    viewer = make_napari_viewer()
    viewer.open_sample(PLUGIN, "nuclei_defocus")
    _, panel = viewer.window.add_plugin_dock_widget(PLUGIN, "Latent focus")
    assert isinstance(panel, LatentFocusPanel)
    panel.model_combo.setCurrentIndex(panel.model_combo.findData("user:test"))
    panel.model_combo.activated.emit(panel.model_combo.currentIndex())
    yield viewer, panel
    qtbot.waitUntil(lambda: not panel.busy, timeout=TIMEOUT)


def drag_to(panel, t: float) -> None:
    """What a mouse drag does: values change while the slider is down, then it is released."""
    panel.slider.setSliderDown(True)
    panel.slider.setValue(round(t * 100))


def release(panel) -> None:
    panel.slider.setSliderDown(False)


def test_plane_ranges_and_deblurring_pairs():
    assert parse_planes("0-3, 5", 9) == [0, 1, 2, 3, 5]
    assert parse_planes("", 3) == parse_planes("all", 3) == [0, 1, 2]
    for bad in ("2-x", "7-9", "3-1"):
        with pytest.raises(InputError):
            parse_planes(bad, 8)
    z = plane_positions(9, [-4, -3, -2, -1, 0, 1, 2, 3, 4])
    assert deblur_pair(4, 4, z) is None
    assert deblur_pair(2, 4, z) == (2, 1, pytest.approx(1 / 3))  # 1 - d_b/d_c = 1 - 2/3
    assert deblur_pair(8, 4, z) == (7, 8, pytest.approx(0.25))  # no outer neighbour: the inner one is B


def test_panel_defaults(viewer_panel):
    viewer, panel = viewer_panel
    layer = viewer.layers[SAMPLE]
    assert panel.layer_combo.currentText() == SAMPLE
    assert layer.data.shape == (9, 256, 256)
    assert layer.metadata["z_um"] == [-4, -3, -2, -1, 0, 1, 2, 3, 4]
    assert tuple(layer.scale) == pytest.approx((1.0, 0.26, 0.26))
    sharp, blurry = panel.planes()
    assert sharp == viewer.dims.current_step[0] and abs(blurry - sharp) == 1
    assert panel.device_label.text().startswith("cpu")
    viewer.dims.set_current_step(0, 6)
    assert panel.planes()[0] == 6  # follows the viewer's z slider
    panel.follow_check.setChecked(False)
    viewer.dims.set_current_step(0, 2)
    assert panel.planes()[0] == 6


def test_model_from_folder_and_device_override(viewer_panel, models_dir, monkeypatch):
    viewer, panel = viewer_panel
    monkeypatch.setattr(panel_module.QFileDialog, "getExistingDirectory", lambda *a: str(models_dir / "test"))
    combo = panel.model_combo
    combo.activated.emit(combo.findText(panel_module.LOAD_FOLDER))
    assert combo.currentText() == "test (folder)" and combo.currentData() == str(models_dir / "test")
    assert panel.engine().model_path == models_dir / "test"
    panel.device_combo.setCurrentText("cpu")
    assert panel.engine().device.type == "cpu" and panel.device_label.text().startswith("cpu")


def test_slider_preview_then_full_resolution(viewer_panel, qtbot, monkeypatch):
    viewer, panel = viewer_panel
    source = viewer.layers[SAMPLE]
    before = source.data.copy()
    panel.sharp_spin.setValue(5)
    panel.blurry_spin.setValue(6)
    name = output_name(SAMPLE, 5, 6)

    drag_to(panel, 0.4)
    qtbot.waitUntil(lambda: name in viewer.layers, timeout=TIMEOUT)
    out = viewer.layers[name]
    assert out.data.shape == (256, 256)
    assert out.metadata["mode"] == "blur synthesis" and out.metadata["alpha"] == pytest.approx(0.4)
    assert "blur synthesis α=0.40" in panel.t_label.text()

    first = out.data.copy()
    panel.slider.setValue(200)
    release(panel)
    qtbot.waitUntil(lambda: out.metadata["t"] == 2.0 and not out.metadata["preview"], timeout=TIMEOUT)
    assert not np.array_equal(out.data, first)
    assert out.metadata["mode"] == "deblurring" and out.metadata["alpha"] == pytest.approx(0.5)
    assert out.metadata["model"] == "test" and out.metadata["planes"] == [5, 6]
    assert "deblurring α=0.50" in panel.t_label.text()
    assert [layer.name for layer in viewer.layers].count(name) == 1
    np.testing.assert_array_equal(source.data, before)

    decoded = []
    render = live.render
    monkeypatch.setattr(live, "render", lambda job: decoded.append(job.t) or render(job))
    for value in range(110, 300, 10):  # faster than decoding: only the newest value waits
        panel.slider.setValue(value)
    qtbot.waitUntil(lambda: not panel.busy, timeout=TIMEOUT)
    assert len(decoded) <= 2
    assert decoded[-1] == out.metadata["t"] == 2.9


def test_deblur_selected_planes_and_cancel(viewer_panel, qtbot):
    viewer, panel = viewer_panel
    assert panel.strength_spin.value() == panel.engine().strength == 1.0  # the test model has no calibration
    panel.strength_spin.setValue(0.5)
    panel.range_edit.setText("0-2,5")
    panel.deblur_button.click()
    qtbot.waitUntil(lambda: f"{SAMPLE} deblurred" in viewer.layers, timeout=TIMEOUT)
    out = viewer.layers[f"{SAMPLE} deblurred"]
    assert out.data.shape == (4, 256, 256)
    assert out.metadata["planes"] == [0, 1, 2, 5] and out.metadata["focus_plane"] == 4
    sharper, blurrier, alpha = out.metadata["pairs"][3]
    assert (sharper, blurrier, alpha) == (5, 6, pytest.approx(0.5))  # 1 - d_b / d_c = 1 - 1/2
    assert out.metadata["strength"] == 0.5
    engine, stack = panel.engine(), np.asarray(viewer.layers[SAMPLE].data, np.float32)
    expected = engine.deblur(stack[5], stack[6], 0.5, engine.normalizer(stack), strength=0.5)
    assert np.allclose(out.data[3], expected, atol=1e-3 * np.ptp(expected))
    assert panel.progress.value() == panel.progress.maximum() == 4

    qtbot.waitUntil(lambda: not panel.busy, timeout=TIMEOUT)  # the output layer comes before the job ends
    panel.range_edit.setText("")
    panel.deblur_button.click()
    panel.cancel_button.click()
    qtbot.waitUntil(lambda: not panel.busy, timeout=TIMEOUT)
    assert [layer.name for layer in viewer.layers].count(f"{SAMPLE} deblurred") == 1
    assert panel.status.text().endswith("cancelled")


def test_synthesize_blur_and_latent_view(viewer_panel, qtbot):
    viewer, panel = viewer_panel
    panel.levels_spin.setValue(3)
    panel.synth_button.click()
    sharp, blurry = panel.planes()
    name = f"{SAMPLE} blur synthesis [{sharp},{blurry}]"
    qtbot.waitUntil(lambda: name in viewer.layers, timeout=TIMEOUT)
    assert viewer.layers[name].data.shape == (3, 256, 256)
    assert viewer.layers[name].metadata["t"] == [1.0, 0.5, 0.0]

    qtbot.waitUntil(lambda: not panel.busy, timeout=TIMEOUT)  # the output layer comes before the job ends
    panel.view_button.click()
    qtbot.waitUntil(lambda: "focus plane" in panel.scores_label.text(), timeout=TIMEOUT)
    text = panel.scores_label.text()
    assert "focus plane 4" in text and "LDS" in text
    # the sample's planes are 1 um apart: APD at their z spacing is Eq. 6's, on both sides
    scores = [line for line in text.splitlines() if "LDS" in line]
    assert len(scores) == 2
    pattern = re.compile(r"APD ([0-9.]+) \(([0-9.]+) at the planes' z spacing")
    for line in scores:
        apd_eq6, apd_spaced = (float(v) for v in pattern.search(line).groups())
        assert apd_eq6 == pytest.approx(apd_spaced, abs=1e-3)
    assert panel.plot._coords.shape == (9, 2)


def test_results_follow_their_source_when_the_selection_changes(viewer_panel, qtbot):
    viewer, panel = viewer_panel
    viewer.add_image(np.random.default_rng(0).random((3, 64, 64), dtype=np.float32), name="other")
    sample = viewer.layers[SAMPLE]
    panel.deblur_button.click()
    panel.slider.setValue(250)
    target = output_name(SAMPLE, *panel.planes())
    panel.layer_combo.setCurrentText("other")
    viewer.layers.selection.active = viewer.layers["other"]
    qtbot.waitUntil(lambda: not panel.busy and target in viewer.layers, timeout=TIMEOUT)
    assert viewer.layers[f"{SAMPLE} deblurred"].data.shape == sample.data.shape
    assert viewer.layers[target].data.shape == sample.data.shape[1:]
    assert viewer.layers[target].metadata["source"] == SAMPLE
    assert not any(layer.name.startswith("other ") for layer in viewer.layers)


def test_closing_the_panel_stops_its_workers(viewer_panel, qtbot):
    viewer, panel = viewer_panel
    panel.deblur_button.click()
    panel.slider.setValue(180)
    viewer.add_image(np.zeros((3, 16, 16), np.float32), name="added while docked")
    assert panel.layer_combo.findText("added while docked") >= 0  # the panel follows the viewer's layers
    viewer.window.remove_dock_widget(panel)
    qtbot.waitUntil(lambda: not panel.busy, timeout=TIMEOUT)
    assert [layer.name for layer in viewer.layers] == [SAMPLE, "added while docked"]
    viewer.add_image(np.zeros((3, 16, 16), np.float32), name="added after closing")
    viewer.layers["added while docked"].name = "renamed after closing"
    assert panel.layer_combo.findText("added after closing") < 0  # ... and lets go of them once closed
    assert panel.layer_combo.findText("renamed after closing") < 0
