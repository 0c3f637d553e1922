"""The Latent focus panel driven in a real napari viewer, with real workers (run under Xvfb)."""

import re
import subprocess
import sys
import textwrap

import numpy as np
import pytest
import tifffile
import torch

from latent_focus.errors import InputError
from latent_focus.focus import deblur_pair, parse_planes
from latent_focus.io import plane_positions
from latent_focus.methods import list_methods, load_method
from latent_focus.models import ModelCard, build_model, save_model
from latent_focus.napari import live
from latent_focus.napari.panel import LatentFocusPanel

PLUGIN = "napari-latent-focus"
SAMPLE = "nuclei defocus"
LIVE = f"{SAMPLE} latent focus"
TIMEOUT = 30000


@pytest.fixture
def models_dir(tmp_path, monkeypatch):
    """A per-user models folder holding one small (untrained) model called ``user:test``."""
    torch.manual_seed(0)
    save_model(tmp_path / "models" / "test", build_model("tiny"), ModelCard(preset="tiny", name="test"))
    monkeypatch.setenv("LATENT_FOCUS_MODELS", str(tmp_path / "models"))
    return tmp_path / "models"


def choose_model(panel, qtbot, name: str) -> None:
    panel.model_combo.refresh()
    panel.model_combo.setCurrentIndex(panel.model_combo.findData(name))
    panel.model_combo.activated.emit(panel.model_combo.currentIndex())
    qtbot.waitUntil(lambda: not panel.busy and name in panel.model_label.text(), timeout=TIMEOUT)


@pytest.fixture
def viewer_panel(make_napari_viewer, qtbot, models_dir):
    """A viewer with the sample opened through the manifest and the panel docked from the manifest."""
    viewer = make_napari_viewer()
    viewer.open_sample(PLUGIN, "nuclei_defocus")
    _, panel = viewer.window.add_plugin_dock_widget(PLUGIN, "Latent focus")
    assert isinstance(panel, LatentFocusPanel)
    choose_model(panel, qtbot, "user:test")
    yield viewer, panel
    qtbot.waitUntil(lambda: not panel.busy, timeout=TIMEOUT)


def wait_for_job(panel, qtbot):
    qtbot.waitUntil(lambda: not panel.busy, timeout=TIMEOUT)


def set_form(panel, **values):
    for name, value in values.items():
        panel.form[name].value = value


def world_z(layer, index) -> float:
    """World z of data index ``index`` along the layer's first axis."""
    point = [0.0] * layer.ndim
    point[0] = index
    return float(layer.data_to_world(point)[-3])


def drag_to(panel, t: float) -> None:
    """What a mouse drag does: values change while the slider is down, then it is released."""
    panel.slider.setSliderDown(True)
    panel.slider.setValue(round(t * 100))


def release(panel) -> None:
    panel.slider.setSliderDown(False)


def test_plane_ranges_and_deblurring_pairs():
    assert parse_planes("0-3, 5", 9) == [0, 1, 2, 3, 5]
    assert parse_planes("", 3) == parse_planes("all", 3) == [0, 1, 2]
    for bad in ("3-1", "x", "0-9"):
        with pytest.raises(InputError):
            parse_planes(bad, 8)
    z = plane_positions(9)
    assert deblur_pair(4, 4, z) is None
    assert deblur_pair(2, 4, z)[1:4] == (2, 1, pytest.approx(1 / 3))  # 1 - d_b/d_c = 1 - 2/3
    end = deblur_pair(8, 4, z)  # no outer neighbour: the line through 7 and 8, stepping from 8
    assert end[1:3] == (7, 8) and end.start == 8 and end.end_of_stack


def test_panel_offers_every_method_and_loads_models_in_a_worker(viewer_panel, qtbot):
    viewer, panel = viewer_panel
    assert [panel.method_combo.itemData(i) for i in range(panel.method_combo.count())] == \
        [m.name for m in list_methods()]
    assert "cpu" in panel.model_label.text() or "cuda" in panel.model_label.text()
    assert panel.axes_label.text().startswith("axes (z, y, x), 9 planes, 1 channel; z positions recorded")
    panel.device_combo.setCurrentText("cpu")
    assert "loading" in panel.model_label.text() and panel.busy  # loading runs off the UI thread
    qtbot.waitUntil(lambda: not panel.busy, timeout=TIMEOUT)
    # the form is made from the method's Params; a single-plane method hides B/C and the latent tabs
    assert panel.form["strength"].value == "auto"
    panel.method_combo.setCurrentIndex(panel.method_combo.findData("richardson-lucy"))
    qtbot.waitUntil(lambda: not panel.busy, timeout=TIMEOUT)
    assert panel.form["iterations"].value == 30 and panel.one_button.text() == "Deblur this plane"
    assert not panel.pair_widget.isVisibleTo(panel) and not panel.tabs.isTabEnabled(1)


def test_slider_preview_then_full_resolution_at_its_plane_only(viewer_panel, qtbot, monkeypatch):
    viewer, panel = viewer_panel
    source = viewer.layers[SAMPLE]
    before = source.data.copy()
    panel.follow_check.setChecked(False)
    panel.sharp_spin.setValue(5)
    panel.blurry_spin.setValue(6)

    drag_to(panel, 0.4)
    qtbot.waitUntil(lambda: LIVE in viewer.layers, timeout=TIMEOUT)
    out = viewer.layers[LIVE]
    assert out.metadata["preview"] and out.metadata["mode"] == "blur synthesis"
    assert out.metadata["alpha"] == pytest.approx(0.4)
    # drawn at plane B's z only, over the same extent as the source
    assert out.data.shape[0] == 1 and world_z(out, 0) == pytest.approx(world_z(source, 5))
    assert out.extent.world[1][-1] == pytest.approx(source.extent.world[1][-1], rel=0.02)

    panel.slider.setValue(200)
    release(panel)
    qtbot.waitUntil(lambda: out.metadata["t"] == 2.0 and not out.metadata["preview"], timeout=TIMEOUT)
    assert out.data.shape == (1, 256, 256)
    assert out.metadata["mode"] == "deblurring" and out.metadata["alpha"] == pytest.approx(0.5)
    assert out.metadata["model"] == "test" and out.metadata["planes"] == [5, 6]
    assert [layer.name for layer in viewer.layers].count(LIVE) == 1
    np.testing.assert_array_equal(source.data, before)

    decoded = []
    render = live.render
    monkeypatch.setattr(live, "render", lambda job: decoded.append(job.t) or render(job))
    for value in range(110, 300, 10):  # faster than decoding: only the newest value waits
        panel.slider.setValue(value)
    qtbot.waitUntil(lambda: not panel.busy, timeout=TIMEOUT)
    assert len(decoded) <= 2
    assert decoded[-1] == out.metadata["t"] == 2.9


def test_live_result_follows_the_viewer_and_never_shows_stale(viewer_panel, qtbot):
    """Before: scrolling moved B/C but kept the old result, drawn at every z over the new plane."""
    viewer, panel = viewer_panel
    source = viewer.layers[SAMPLE]
    panel.slider.setValue(150)
    qtbot.waitUntil(lambda: LIVE in viewer.layers and not panel.busy, timeout=TIMEOUT)
    out = viewer.layers[LIVE]
    first = tuple(out.metadata["planes"])
    viewer.dims.set_current_step(0, 7)
    assert panel.planes()[0] == 7
    assert out.metadata["stale"] and out.opacity < 1  # marked before the new result arrives
    qtbot.waitUntil(lambda: out.metadata["planes"][0] == 7 and not out.metadata["stale"], timeout=TIMEOUT)
    assert tuple(out.metadata["planes"]) != first and out.opacity == 1
    assert world_z(out, 0) == pytest.approx(world_z(source, 7))


def test_deblur_selected_planes_lands_at_their_own_z(viewer_panel, qtbot):
    """Before: planes 0-2,5 became a 4-plane layer from z = 0, so plane 5 was drawn at z = 3."""
    viewer, panel = viewer_panel
    source = viewer.layers[SAMPLE]
    set_form(panel, strength="0.5")
    panel.range_edit.setText("0-2,5")
    panel.many_button.click()
    wait_for_job(panel, qtbot)
    out = viewer.layers[f"{SAMPLE} latent"]
    assert out.data.shape == (9, 256, 256)
    assert np.isnan(out.data[3]).all() and np.isnan(out.data[8]).all()
    for plane in (0, 5):
        assert world_z(out, plane) == pytest.approx(world_z(source, plane))
    assert out.metadata["planes"] == [0, 1, 2, 5]
    info = out.metadata["per_plane"][3]
    assert info["planes"] == [5, 6] and info["alpha"] == pytest.approx(0.5) and info["strength"] == 0.5
    engine = load_method("latent", "user:test", "auto").engine
    stack = np.asarray(source.data, np.float32)
    expected = engine.deblur(stack[5], stack[6], 0.5, engine.normalizer(stack), strength=0.5)
    assert np.allclose(out.data[5], expected, atol=1e-3 * np.ptp(expected))

    panel.range_edit.setText("2-4")
    panel.many_button.click()
    wait_for_job(panel, qtbot)
    run = viewer.layers[f"{SAMPLE} latent [2]"]
    assert run.data.shape == (3, 256, 256) and world_z(run, 0) == pytest.approx(world_z(source, 2))
    assert run.metadata["per_plane"][2]["rule"] == "the in-focus plane is kept as it is"


def test_end_planes_are_not_copies_and_say_so(viewer_panel, qtbot):
    """Before: plane 0 came out equal to plane 1 (the same pair), without a word."""
    viewer, panel = viewer_panel
    set_form(panel, strength="0.5")
    panel.range_edit.setText("0-1,7-8")
    panel.many_button.click()
    wait_for_job(panel, qtbot)
    out = viewer.layers[f"{SAMPLE} latent"]
    assert not np.allclose(out.data[0], out.data[1]) and not np.allclose(out.data[8], out.data[7])
    notes = [p.get("end_of_stack", "") for p in out.metadata["per_plane"]]
    assert "no blurrier neighbour" in notes[0] and "no blurrier neighbour" in notes[3] and not notes[1]
    assert "plane 0 has no blurrier neighbour" in panel.note_label.text()


def test_multichannel_file_from_napari_reader_uses_z_and_a_channel_picker(make_napari_viewer, qtbot, models_dir,
                                                                         tmp_path, blurred_stack):
    """Before: a (z, c, y, x) layer had B/C range over the channel axis."""
    path = tmp_path / "two channels.tif"
    zcyx = np.stack([blurred_stack, blurred_stack[:, ::-1]], axis=1).astype(np.uint16)
    tifffile.imwrite(path, zcyx, imagej=True, metadata={"axes": "ZCYX", "spacing": 0.5, "unit": "um"})
    viewer = make_napari_viewer()
    layer = viewer.open(path)[0]  # napari's own reader
    assert layer.data.shape == (7, 2, 96, 96)
    _, panel = viewer.window.add_plugin_dock_widget(PLUGIN, "Latent focus")
    choose_model(panel, qtbot, "user:test")
    assert panel.channel_combo.count() == 2 and panel.sharp_spin.maximum() == 6
    assert "axes (z, c, y, x)" in panel.axes_label.text() and "z positions recorded" in panel.axes_label.text()
    panel.channel_combo.setCurrentIndex(1)
    np.testing.assert_array_equal(panel.stack().data, zcyx[:, 1].astype(np.float32))
    assert panel.stack().z_um.tolist() == pytest.approx([0, 0.5, 1, 1.5, 2, 2.5, 3])
    panel.range_edit.setText("3")
    panel.many_button.click()
    wait_for_job(panel, qtbot)
    out = viewer.layers[f"{layer.name} latent"]
    assert out.data.shape == (1, 1, 96, 96)
    world = out.data_to_world((0, 0, 0, 0))
    assert world[0] == pytest.approx(layer.data_to_world((3, 0, 0, 0))[0])
    assert world[1] == pytest.approx(layer.data_to_world((0, 1, 0, 0))[1])  # the chosen channel


def test_single_plane_method_restores_the_plane_the_viewer_shows(viewer_panel, qtbot):
    viewer, panel = viewer_panel
    source = viewer.layers[SAMPLE]
    panel.method_combo.setCurrentIndex(panel.method_combo.findData("richardson-lucy"))
    wait_for_job(panel, qtbot)
    set_form(panel, iterations=3)
    viewer.dims.set_current_step(0, 2)
    panel.one_button.click()
    wait_for_job(panel, qtbot)
    out = viewer.layers[f"{SAMPLE} richardson-lucy"]
    assert out.data.shape == (1, 256, 256) and world_z(out, 0) == pytest.approx(world_z(source, 2))
    assert out.metadata["method"] == "richardson-lucy" and out.metadata["parameters"]["iterations"] == 3


def test_synthesize_blur_and_latent_view(viewer_panel, qtbot):
    viewer, panel = viewer_panel
    panel.levels_spin.setValue(3)
    panel.synth_button.click()
    sharp, blurry = panel.planes()
    name = f"{SAMPLE} blur synthesis [{sharp},{blurry}]"
    wait_for_job(panel, qtbot)
    assert viewer.layers[name].data.shape == (3, 256, 256)
    assert viewer.layers[name].metadata["t"] == [1.0, 0.5, 0.0]

    panel.view_button.click()
    wait_for_job(panel, qtbot)
    text = panel.scores_label.text()
    assert "sharpest plane 4" in text and "LDS" in text
    # the sample's planes are 1 um apart: APD at their z spacing is Eq. 6's, on both sides
    scores = [line for line in text.splitlines() if "LDS" in line]
    assert len(scores) == 2
    pattern = re.compile(r"APD ([0-9.]+) \(([0-9.]+) at the planes' z spacing")
    for line in scores:
        apd_eq6, apd_spaced = (float(v) for v in pattern.search(line).groups())
        assert apd_eq6 == pytest.approx(apd_spaced, abs=1e-3)
    assert panel.plot._coords.shape == (9, 2)


def test_switching_layers_clears_the_previous_layers_results(viewer_panel, qtbot):
    viewer, panel = viewer_panel
    assert "Press Latent view" in panel.scores_label.text()  # a prompt, not a result
    panel.view_button.click()
    wait_for_job(panel, qtbot)
    assert "sharpest plane" in panel.scores_label.text() and panel.progress.value() > 0
    viewer.add_image(np.random.default_rng(0).random((3, 64, 64), dtype=np.float32), name="other")
    panel.layer_combo.setCurrentText("other")
    assert "sharpest plane" not in panel.scores_label.text() and panel.progress.value() == 0
    assert panel.plot._coords.shape == (0, 2)


def test_bad_range_shows_in_the_status_line(viewer_panel, qtbot):
    viewer, panel = viewer_panel
    panel.range_edit.setText("3-99")
    panel.many_button.click()
    assert "outside" in panel.status.text() and "done" not in panel.status.text()
    assert "ff6b6b" in panel.status.styleSheet()
    assert not panel.busy


def test_results_follow_their_source_when_the_selection_changes(viewer_panel, qtbot):
    viewer, panel = viewer_panel
    viewer.add_image(np.random.default_rng(0).random((3, 64, 64), dtype=np.float32), name="other")
    sample = viewer.layers[SAMPLE]
    panel.many_button.click()
    panel.layer_combo.setCurrentText("other")
    viewer.layers.selection.active = viewer.layers["other"]
    wait_for_job(panel, qtbot)
    assert viewer.layers[f"{SAMPLE} latent"].data.shape == sample.data.shape
    assert viewer.layers[f"{SAMPLE} latent"].metadata["source"] == SAMPLE
    assert not any(layer.name.startswith("other ") for layer in viewer.layers)
    assert panel.layer_combo.findText(f"{SAMPLE} latent") < 0  # its own outputs are not offered as sources


def test_closing_the_panel_stops_its_workers(viewer_panel, qtbot):
    viewer, panel = viewer_panel
    panel.many_button.click()
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


CLOSE_WHILE_RUNNING = """
import napari, numpy as np
from qtpy.QtWidgets import QApplication
viewer = napari.Viewer(show={show})
viewer.open_sample("napari-latent-focus", "nuclei_defocus")
_, panel = viewer.window.add_plugin_dock_widget("napari-latent-focus", "Latent focus")
_, dock = viewer.window.add_plugin_dock_widget("napari-latent-focus", "Training")
import time
t0 = time.time()
while panel.busy and time.time() - t0 < 60:
    QApplication.processEvents()
panel.many_button.click()
panel.slider.setValue(250)
dock.steps.setValue(50)
dock.model_name.setText("closing-test")
dock.start()
for _ in range(5):
    QApplication.processEvents()
assert panel.busy and dock.run.running
viewer.close()
print("closed")
"""


@pytest.mark.parametrize("show", [False, True])
def test_closing_the_viewer_from_a_script_while_jobs_run(tmp_path, show):
    """Before: viewer.close() during a job aborted Python (exit code 134)."""
    env = {**__import__("os").environ, "LATENT_FOCUS_MODELS": str(tmp_path)}
    res = subprocess.run([sys.executable, "-c", textwrap.dedent(CLOSE_WHILE_RUNNING.format(show=show))],
                         capture_output=True, text=True, timeout=300, env=env)
    assert res.returncode == 0, res.stderr[-3000:]
    assert "closed" in res.stdout


def test_adapt_to_this_stack_saves_a_user_model_and_uses_it(viewer_panel, qtbot, monkeypatch):
    """The button fine-tunes the chosen model on the layer's planes, then the panel runs and names the result."""
    from latent_focus.models import read_card
    from latent_focus.napari import panel as panel_module

    monkeypatch.setattr(panel_module, "ADAPT_MINUTES", 0.02)  # about one second instead of two minutes
    viewer, panel = viewer_panel
    assert not panel.adapt_button.isHidden() and panel.adapt_button.isEnabled()
    before = {k: v.clone() for k, v in load_method("latent", "user:test", "cpu").engine.model.state_dict().items()}
    panel.adapt_button.click()
    qtbot.waitUntil(lambda: not panel.busy and panel.model() == "user:nuclei-defocus-adapted"
                    and "adapted to" in panel.model_label.text(), timeout=TIMEOUT)
    assert "nuclei-defocus-adapted" in panel.model_label.text()
    card = read_card(panel_module.find_model("user:nuclei-defocus-adapted"))
    assert card.extra["adapted"]["from"] == "test" and card.extra["adapted"]["steps"] >= 1
    after = load_method("latent", "user:nuclei-defocus-adapted", "cpu").engine.model.state_dict()
    assert any(not torch.equal(before[k], after[k]) for k in before)
    panel.adapt_button.click()  # a second run never overwrites the first
    qtbot.waitUntil(lambda: not panel.busy and panel.model() == "user:nuclei-defocus-adapted-2", timeout=TIMEOUT)
    panel.method_combo.setCurrentIndex(panel.method_combo.findData("richardson-lucy"))
    assert panel.adapt_button.isHidden()


def test_switching_methods_hides_the_pair_rows_and_clears_the_previous_note(viewer_panel, qtbot):
    viewer, panel = viewer_panel
    panel.restore_one()
    wait_for_job(panel, qtbot)
    assert panel.note_label.text().startswith("rule:")
    panel.method_combo.setCurrentIndex(panel.method_combo.findData("richardson-lucy"))
    assert panel.note_label.text() == ""
    label = panel._restore_form.labelForField(panel.pair_widget)
    assert label.isHidden() and panel.pair_widget.isHidden()
    panel.method_combo.setCurrentIndex(panel.method_combo.findData("latent"))
    assert not label.isHidden() and not panel.pair_widget.isHidden()


def test_a_method_whose_model_is_missing_says_so_without_raising(viewer_panel, qtbot):
    """Before: the failed load was also re-raised on the UI thread (PyQt6 aborts on that outside napari.run)."""
    viewer, panel = viewer_panel
    panel.method_combo.setCurrentIndex(panel.method_combo.findData("blur-code"))
    qtbot.waitUntil(lambda: not panel.busy and "not loaded" in panel.model_label.text(), timeout=TIMEOUT)
    assert "no blur-code model is installed" in panel.model_label.text()


def test_psf_rl_blur_map_uses_the_optics_of_the_panels_form(viewer_panel, qtbot):
    viewer, panel = viewer_panel
    panel.method_combo.setCurrentIndex(panel.method_combo.findData("psf-rl"))
    qtbot.waitUntil(lambda: not panel.busy and "psf-widefield" in panel.model_label.text(), timeout=TIMEOUT)
    set_form(panel, optics="1.2 0.46 1.33", pixel_size="0.2")
    panel._section.button.click()
    qtbot.waitUntil(lambda: not panel.busy and f"{SAMPLE} blur map" in viewer.layers, timeout=TIMEOUT)
    optics = viewer.layers[f"{SAMPLE} blur map"].metadata["optics"]
    assert optics == {"na": 1.2, "wavelength_um": 0.46, "n_immersion": 1.33, "pixel_size_um": 0.2}
    set_form(panel, optics="1.2")  # a wavelength is missing: said in the section, nothing added
    panel._section.button.click()
    assert "wavelength" in panel._section.status.text().lower() or "optics" in panel._section.status.text().lower()
