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
from latent_focus.methods import list_methods, load_method, run
from latent_focus.methods.latent import LiveSession
from latent_focus.models import ModelCard, build_model, save_model
from latent_focus.napari.panel import LatentFocusPanel
from latent_focus.optics.parametric import Optics
from latent_focus.progress import Progress

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
        panel.restore.form[name].value = value


def world_z(layer, index) -> float:
    """World z of data index ``index`` along the layer's first axis."""
    point = [0.0] * layer.ndim
    point[0] = index
    return float(layer.data_to_world(point)[-3])


def drag_to(panel, t: float) -> None:
    """What a mouse drag does: values change while the slider is down, then it is released."""
    panel.section.live.slider.setSliderDown(True)
    panel.section.live.slider.setValue(round(t * 100))


def release(panel) -> None:
    """What letting go of the slider does (setSliderDown emits sliderReleased)."""
    panel.section.live.slider.setSliderDown(False)


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
    assert panel.source.info_label.text() == ("axes (z, y, x), 9 planes, 1 channel; z step 1 µm from file; "
                                              "pixel 0.26 µm from file")
    panel.device_combo.setCurrentText("cpu")
    assert "loading" in panel.model_label.text() and panel.busy  # loading runs off the UI thread
    qtbot.waitUntil(lambda: not panel.busy, timeout=TIMEOUT)
    # the form is made from the method's Params; a single-plane method hides B/C and the latent tabs
    assert panel.restore.form["strength"].value == "auto"
    panel.method_combo.setCurrentIndex(panel.method_combo.findData("richardson-lucy"))
    qtbot.waitUntil(lambda: not panel.busy, timeout=TIMEOUT)
    assert panel.restore.form["iterations"].value == 30 and panel.restore.one_button.text() == "Deblur this plane"
    assert not panel.pair.isVisibleTo(panel) and panel.tabs.count() == 1  # no section, no latent tabs


def test_slider_preview_then_full_resolution_at_its_plane_only(viewer_panel, qtbot, monkeypatch):
    viewer, panel = viewer_panel
    source = viewer.layers[SAMPLE]
    before = source.data.copy()
    panel.pair.follow_check.setChecked(False)
    panel.pair.sharp_spin.setValue(5)
    panel.pair.blurry_spin.setValue(6)

    drag_to(panel, 0.4)
    qtbot.waitUntil(lambda: LIVE in viewer.layers, timeout=TIMEOUT)
    out = viewer.layers[LIVE]
    # planes of 256 px are no larger than a preview: a drag decodes them whole
    assert not out.metadata["preview"] and out.metadata["mode"] == "blur synthesis"
    assert out.metadata["alpha"] == pytest.approx(0.4)
    # drawn at plane B's z only, over the same extent as the source
    assert out.data.shape[0] == 1 and world_z(out, 0) == pytest.approx(world_z(source, 5))
    assert out.extent.world[1][-1] == pytest.approx(source.extent.world[1][-1], rel=0.02)

    panel.section.live.slider.setValue(200)
    release(panel)
    qtbot.waitUntil(lambda: out.metadata["t"] == 2.0 and not out.metadata["preview"], timeout=TIMEOUT)
    assert out.data.shape == (1, 256, 256)
    assert out.metadata["mode"] == "deblurring" and out.metadata["alpha"] == pytest.approx(0.5)
    assert out.metadata["model"] == "test" and out.metadata["planes"] == [5, 6]
    assert [layer.name for layer in viewer.layers].count(LIVE) == 1
    np.testing.assert_array_equal(source.data, before)

    decoded = []
    render = LiveSession.render

    def counting(session, request):
        if not request.prepare:
            decoded.append(request.t)
        return render(session, request)

    monkeypatch.setattr(LiveSession, "render", counting)
    for value in range(110, 300, 10):  # faster than decoding: only the newest value waits
        panel.section.live.slider.setValue(value)
    qtbot.waitUntil(lambda: not panel.busy, timeout=TIMEOUT)
    assert len(decoded) <= 2
    assert decoded[-1] == out.metadata["t"] == 2.9


def test_live_result_follows_the_viewer_and_never_shows_stale(viewer_panel, qtbot):
    """Before: scrolling moved B/C but kept the old result, drawn at every z over the new plane."""
    viewer, panel = viewer_panel
    source = viewer.layers[SAMPLE]
    panel.section.live.slider.setValue(150)
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
    panel.restore.range_edit.setText("0-2,5")
    panel.restore.many_button.click()
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

    panel.restore.range_edit.setText("2-4")
    panel.restore.many_button.click()
    wait_for_job(panel, qtbot)
    run = viewer.layers[f"{SAMPLE} latent [2]"]
    assert run.data.shape == (3, 256, 256) and world_z(run, 0) == pytest.approx(world_z(source, 2))
    assert run.metadata["per_plane"][2]["rule"] == "the in-focus plane is kept as it is"


def test_end_planes_are_not_copies_and_say_so(viewer_panel, qtbot):
    """Before: plane 0 came out equal to plane 1 (the same pair), without a word."""
    viewer, panel = viewer_panel
    set_form(panel, strength="0.5")
    panel.restore.range_edit.setText("0-1,7-8")
    panel.restore.many_button.click()
    wait_for_job(panel, qtbot)
    out = viewer.layers[f"{SAMPLE} latent"]
    assert not np.allclose(out.data[0], out.data[1]) and not np.allclose(out.data[8], out.data[7])
    notes = [p.get("end_of_stack", "") for p in out.metadata["per_plane"]]
    assert "no blurrier neighbour" in notes[0] and "no blurrier neighbour" in notes[3] and not notes[1]
    assert "plane 0 has no blurrier neighbour" in panel.restore.note_label.text()


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
    assert panel.source.channel_combo.count() == 2 and panel.pair.sharp_spin.maximum() == 6
    assert "axes (z, c, y, x)" in panel.source.info_label.text() and "z step 0.5 µm from file" in \
        panel.source.info_label.text()
    panel.source.channel_combo.setCurrentIndex(1)
    np.testing.assert_array_equal(panel.stack().data, zcyx[:, 1].astype(np.float32))
    assert panel.stack().z_um.tolist() == pytest.approx([0, 0.5, 1, 1.5, 2, 2.5, 3])
    panel.restore.range_edit.setText("3")
    panel.restore.many_button.click()
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
    panel.restore.one_button.click()
    wait_for_job(panel, qtbot)
    out = viewer.layers[f"{SAMPLE} richardson-lucy"]
    assert out.data.shape == (1, 256, 256) and world_z(out, 0) == pytest.approx(world_z(source, 2))
    assert out.metadata["method"] == "richardson-lucy" and out.metadata["parameters"]["iterations"] == 3


def test_synthesize_blur_and_latent_view(viewer_panel, qtbot):
    viewer, panel = viewer_panel
    panel.section.live.levels_spin.setValue(3)
    panel.section.live.synth_button.click()
    sharp, blurry = panel.planes()
    name = f"{SAMPLE} blur synthesis [{sharp},{blurry}]"
    wait_for_job(panel, qtbot)
    assert viewer.layers[name].data.shape == (3, 256, 256)
    assert viewer.layers[name].metadata["t"] == [1.0, 0.5, 0.0]

    panel.section.view.view_button.click()
    wait_for_job(panel, qtbot)
    text = panel.section.view.scores_label.text()
    assert "sharpest plane 4" in text and "LDS" in text
    # the sample's planes are 1 um apart: APD at their z spacing is Eq. 6's, on both sides
    scores = [line for line in text.splitlines() if "LDS" in line]
    assert len(scores) == 2
    pattern = re.compile(r"APD ([0-9.]+) \(([0-9.]+) at the planes' z spacing")
    for line in scores:
        apd_eq6, apd_spaced = (float(v) for v in pattern.search(line).groups())
        assert apd_eq6 == pytest.approx(apd_spaced, abs=1e-3)
    assert panel.section.view.plot._coords.shape == (9, 2)


def test_switching_layers_clears_the_previous_layers_results(viewer_panel, qtbot):
    viewer, panel = viewer_panel
    assert "Press Latent view" in panel.section.view.scores_label.text()  # a prompt, not a result
    panel.section.view.view_button.click()
    wait_for_job(panel, qtbot)
    assert "sharpest plane" in panel.section.view.scores_label.text() and panel.runner.progress.value() > 0
    viewer.add_image(np.random.default_rng(0).random((3, 64, 64), dtype=np.float32), name="other")
    panel.source.layer_combo.setCurrentText("other")
    assert "sharpest plane" not in panel.section.view.scores_label.text() and panel.runner.progress.value() == 0
    assert panel.section.view.plot._coords.shape == (0, 2)


def test_bad_range_shows_in_the_status_line(viewer_panel, qtbot):
    viewer, panel = viewer_panel
    panel.restore.range_edit.setText("3-99")
    panel.restore.many_button.click()
    assert "outside" in panel.runner.status.text() and "done" not in panel.runner.status.text()
    assert "ff6b6b" in panel.runner.status.styleSheet()
    assert not panel.busy


def test_results_follow_their_source_when_the_selection_changes(viewer_panel, qtbot):
    viewer, panel = viewer_panel
    viewer.add_image(np.random.default_rng(0).random((3, 64, 64), dtype=np.float32), name="other")
    sample = viewer.layers[SAMPLE]
    panel.restore.many_button.click()
    panel.source.layer_combo.setCurrentText("other")
    viewer.layers.selection.active = viewer.layers["other"]
    wait_for_job(panel, qtbot)
    assert viewer.layers[f"{SAMPLE} latent"].data.shape == sample.data.shape
    assert viewer.layers[f"{SAMPLE} latent"].metadata["source"] == SAMPLE
    assert not any(layer.name.startswith("other ") for layer in viewer.layers)
    assert panel.source.layer_combo.findText(f"{SAMPLE} latent") < 0  # its own outputs are not offered as sources


def test_closing_the_panel_stops_its_workers(viewer_panel, qtbot):
    viewer, panel = viewer_panel
    panel.restore.many_button.click()
    panel.section.live.slider.setValue(180)
    viewer.add_image(np.zeros((3, 16, 16), np.float32), name="added while docked")
    assert panel.source.layer_combo.findText("added while docked") >= 0  # the panel follows the viewer's layers
    viewer.window.remove_dock_widget(panel)
    qtbot.waitUntil(lambda: not panel.busy, timeout=TIMEOUT)
    assert [layer.name for layer in viewer.layers] == [SAMPLE, "added while docked"]
    viewer.add_image(np.zeros((3, 16, 16), np.float32), name="added after closing")
    viewer.layers["added while docked"].name = "renamed after closing"
    assert panel.source.layer_combo.findText("added after closing") < 0  # ... and lets go of them once closed
    assert panel.source.layer_combo.findText("renamed after closing") < 0


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
panel.restore.many_button.click()
panel.section.live.slider.setValue(250)
dock.form.steps.setValue(50)
dock.form.model_name.setText("closing-test")
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
    from latent_focus.models import find_model, read_card
    from latent_focus.napari.sections.latent import adapt as adapt_module

    minutes = []
    core_adapt = adapt_module.adapt

    def few_steps(stack, output, model, duration, **kw):  # a few steps instead of minutes of work
        minutes.append(duration)
        return core_adapt(stack, output, model, duration, steps=3, **kw)

    monkeypatch.setattr(adapt_module, "adapt", few_steps)
    viewer, panel = viewer_panel
    adapt = panel.section.adapt
    assert not adapt.button.isHidden() and adapt.button.isEnabled()
    assert adapt.name_edit.text() == "nuclei-defocus-adapted" and adapt.minutes.value() == 2
    assert adapt.minutes.minimum() == 1 and adapt.minutes.maximum() == 30
    adapt.minutes.setValue(7)
    before = {k: v.clone() for k, v in load_method("latent", "user:test", "cpu").engine.model.state_dict().items()}
    adapt.button.click()
    qtbot.waitUntil(lambda: not panel.busy and panel.model() == "user:nuclei-defocus-adapted"
                    and "adapted to" in panel.model_label.text(), timeout=TIMEOUT)
    assert "nuclei-defocus-adapted" in panel.model_label.text()
    card = read_card(find_model("user:nuclei-defocus-adapted"))
    assert card.extra["adapted"]["from"] == "test" and card.extra["adapted"]["steps"] >= 1 and minutes == [7.0]
    after = load_method("latent", "user:nuclei-defocus-adapted", "cpu").engine.model.state_dict()
    assert any(not torch.equal(before[k], after[k]) for k in before)
    assert adapt.name_edit.text() == "nuclei-defocus-adapted-2"  # a second run never overwrites the first
    adapt.name_edit.setText("my own name")
    adapt.button.click()
    qtbot.waitUntil(lambda: not panel.busy and panel.model() == "user:my own name", timeout=TIMEOUT)
    adapt.name_edit.setText("my own name")  # taken: refused, nothing overwritten
    adapt.button.click()
    assert "exists already" in panel.runner.status.text() and not panel.busy
    panel.method_combo.setCurrentIndex(panel.method_combo.findData("richardson-lucy"))
    assert panel.section is None  # Adapt belongs to the latent method's section


def test_switching_methods_hides_the_pair_rows_and_clears_the_previous_note(viewer_panel, qtbot):
    viewer, panel = viewer_panel
    panel.restore.restore_one()
    wait_for_job(panel, qtbot)
    assert panel.restore.note_label.text().startswith("rule:")
    panel.method_combo.setCurrentIndex(panel.method_combo.findData("richardson-lucy"))
    assert panel.restore.note_label.text() == ""
    label = panel.pickers.labelForField(panel.pair)
    assert label.isHidden() and panel.pair.isHidden()
    panel.method_combo.setCurrentIndex(panel.method_combo.findData("latent"))
    assert not label.isHidden() and not panel.pair.isHidden()


def test_a_method_whose_model_is_missing_says_so_without_raising(viewer_panel, qtbot):
    """Before: the failed load was also re-raised on the UI thread (PyQt6 aborts on that outside napari.run)."""
    viewer, panel = viewer_panel
    panel.method_combo.setCurrentIndex(panel.method_combo.findData("blur-code"))
    qtbot.waitUntil(lambda: not panel.busy and "not loaded" in panel.model_label.text(), timeout=TIMEOUT)
    assert "no blur-code model is installed" in panel.model_label.text()
    section = panel.section  # before: Encode plane stayed enabled and failed when pressed
    assert not any(b.isEnabled() for b in (section.encode_button, section.focus_button, section.reset_button,
                                           section.slider, panel.restore.one_button, panel.restore.many_button))
    assert "Training dock" in section.status.text() and "disentangled preset" in section.status.text()


def test_psf_rl_blur_map_uses_the_optics_of_the_panels_form(viewer_panel, qtbot):
    viewer, panel = viewer_panel
    panel.method_combo.setCurrentIndex(panel.method_combo.findData("psf-rl"))
    qtbot.waitUntil(lambda: not panel.busy and "psf-widefield" in panel.model_label.text(), timeout=TIMEOUT)
    set_form(panel, optics="1.2 0.46 1.33", pixel_size="0.2")
    panel.section.button.click()
    qtbot.waitUntil(lambda: not panel.busy and f"{SAMPLE} blur map" in viewer.layers, timeout=TIMEOUT)
    layer = viewer.layers[f"{SAMPLE} blur map"]
    optics = layer.metadata["optics"]
    assert optics == {"na": 1.2, "wavelength_um": 0.46, "n_immersion": 1.33, "pixel_size_um": 0.2}
    # before: the colours spanned the map's own range; now 0 to the estimator's largest defocus for the optics
    top = float(Optics(1.2, 0.46, 1.33, 0.2).defocus_um(10.0))
    assert tuple(layer.contrast_limits) == pytest.approx((0.0, top)) and layer.colorbar.visible
    assert float(layer.data.max()) < top and f"to {top:.3g} µm" in panel.section.status.text()
    assert "pixel 0.2 µm from the options" in panel.section.status.text()
    set_form(panel, optics="", pixel_size="0.065")  # no optics: the objective assumed for the pixel is said
    panel.section.button.click()
    qtbot.waitUntil(lambda: not panel.busy and "assumed" in panel.section.status.text(), timeout=TIMEOUT)
    assert "NA 1.4; optics not given: a 100x/1.4 oil objective assumed" in panel.section.status.text()
    set_form(panel, optics="1.2")  # a wavelength is missing: said in the section, nothing added
    panel.section.button.click()
    assert "wavelength" in panel.section.status.text().lower() or "optics" in panel.section.status.text().lower()


# -- the live slider shows what Restore gives ------------------------------------------------------------------------

def wait_for_frame(panel, qtbot, t: float, name: str = LIVE):
    """The live output layer ``name`` once it shows ``t`` at full resolution and the panel is idle."""
    viewer = panel.viewer

    def shown():
        out = viewer.layers[name] if name in viewer.layers else None
        return out is not None and out.metadata["t"] == t and not out.metadata["preview"]
    qtbot.waitUntil(lambda: shown() and not panel.busy, timeout=TIMEOUT)
    return viewer.layers[name]


def test_live_slider_above_one_is_the_restore_rule_and_below_is_blur_synthesis(viewer_panel, qtbot):
    """Before: above t = 1 the slider decoded Eq. 2 exactly with plain decoding; Restore applied the default rule."""
    viewer, panel = viewer_panel
    live = panel.section.live
    panel.pair.follow_check.setChecked(False)
    panel.pair.sharp_spin.setValue(2)
    sharp, blurry = panel.planes()
    method = panel.section.method
    assert panel.params().strength == "auto"

    live.slider.setValue(200)  # a click on the slider: full resolution at once
    out = wait_for_frame(panel, qtbot, 2.0)
    expected = run(method.restore(panel.stack(), sharp, panel.params().replace(alpha=0.5), partner=blurry))
    assert np.array_equal(out.data[0], expected.image)
    assert expected.info["rule"].startswith("auto:")
    assert out.metadata["rule"] == expected.info["rule"] and live.rule_label.text() == expected.info["rule"]

    set_form(panel, strength="0.5")
    live.slider.setValue(250)
    out = wait_for_frame(panel, qtbot, 2.5)
    expected = run(method.restore(panel.stack(), sharp, panel.params().replace(alpha=0.4), partner=blurry))
    assert np.array_equal(out.data[0], expected.image) and live.rule_label.text() == "fixed: 0.5 of Eq. 2's step"

    live.slider.setValue(40)  # blur synthesis, as latent-focus synthesize decodes it
    out = wait_for_frame(panel, qtbot, 0.4)
    engine, stack = method.engine, panel.stack().data
    synthesized = engine.synthesize(stack[sharp], stack[blurry], [0.4], engine.normalizer(stack))[0]
    assert np.array_equal(out.data[0], synthesized) and "Eq. 1" in live.rule_label.text()


@pytest.fixture
def large_layer(viewer_panel):
    """The sample at twice its size (512 x 512): previews are decoded at 256 px."""
    viewer, panel = viewer_panel
    data = np.kron(np.asarray(viewer.layers[SAMPLE].data, np.float32), np.ones((1, 2, 2), np.float32))
    viewer.add_image(data, name="large", metadata={"z_um": list(range(9))})
    panel.source.layer_combo.setCurrentText("large")
    panel.pair.follow_check.setChecked(False)
    return viewer.layers["large"]


def test_previews_run_the_rule_on_small_planes_and_full_resolution_is_prepared_while_dragging(
        viewer_panel, large_layer, qtbot):
    viewer, panel = viewer_panel
    live = panel.section.live
    panel.pair.sharp_spin.setValue(2)
    drag_to(panel, 2.0)
    qtbot.waitUntil(lambda: "large latent focus" in viewer.layers, timeout=TIMEOUT)
    out = viewer.layers["large latent focus"]
    assert out.metadata["preview"] and out.data.shape == (1, 256, 256)
    assert out.metadata["rule"].startswith("auto:") and live.rule_label.text().endswith("(preview)")
    assert out.extent.world[1][-1] == pytest.approx(large_layer.extent.world[1][-1], rel=0.01)
    # between moves, with the slider still held, the planes are encoded at full resolution
    qtbot.waitUntil(lambda: not panel.busy, timeout=TIMEOUT)
    session = live._session[1]
    assert session.prepared(panel.planes()) and live.slider.isSliderDown()
    release(panel)
    out = wait_for_frame(panel, qtbot, 2.0, "large latent focus")
    assert out.data.shape == (1, 512, 512)
    expected = run(panel.section.method.restore(panel.stack(), 2, panel.params().replace(alpha=0.5),
                                                partner=panel.planes()[1]))
    assert np.array_equal(out.data[0], expected.image)


def test_new_planes_show_a_preview_first_then_the_full_plane(viewer_panel, large_layer, qtbot):
    viewer, panel = viewer_panel
    panel.pair.sharp_spin.setValue(2)
    panel.section.live.slider.setValue(150)
    out = wait_for_frame(panel, qtbot, 1.5, "large latent focus")
    frames = []
    out.events.data.connect(lambda e: frames.append((tuple(out.metadata["planes"]), out.data.shape[-1])))
    panel.pair.sharp_spin.setValue(6)
    qtbot.waitUntil(lambda: not panel.busy and frames and frames[-1][1] == 512, timeout=TIMEOUT)
    new = [side for planes, side in frames if planes[0] == 6]
    assert new[0] == 256 and new[-1] == 512  # before: nothing until the full plane was encoded and decoded


def test_synthesized_levels_follow_the_planes_z_order(viewer_panel, qtbot):
    """Before: with B above C the levels were placed in z order but ``t`` listed them from B down."""
    viewer, panel = viewer_panel
    source = viewer.layers[SAMPLE]
    panel.pair.follow_check.setChecked(False)
    panel.pair.sharp_spin.setValue(5)
    panel.pair.blurry_spin.setValue(3)
    panel.section.live.levels_spin.setValue(3)
    panel.section.live.synth_button.click()
    wait_for_job(panel, qtbot)
    out = viewer.layers[f"{SAMPLE} blur synthesis [5,3]"]
    assert out.metadata["t"] == [0.0, 0.5, 1.0]  # plane 3 (C, t = 0) first
    assert world_z(out, 0) == pytest.approx(world_z(source, 3)) and world_z(out, 2) == pytest.approx(world_z(source, 5))


# -- what the user sees: progress, errors, where they are ------------------------------------------------------------

def test_the_bar_clears_with_the_layer_after_a_job_whose_last_report_came_late(viewer_panel, qtbot):
    """Before: the blur map's last report reached the bar after the job ended, and choosing another layer then
    cleared the value but kept its message: the bar read "0%  done"."""
    viewer, panel = viewer_panel
    panel.method_combo.setCurrentIndex(panel.method_combo.findData("psf-rl"))
    qtbot.waitUntil(lambda: not panel.busy and "psf-widefield" in panel.model_label.text(), timeout=TIMEOUT)
    panel.section.button.click()
    qtbot.waitUntil(lambda: not panel.busy and f"{SAMPLE} blur map" in viewer.layers, timeout=TIMEOUT)
    panel.runner.state.update(Progress(done=4, total=4, message="done", finished=True))  # the late report
    assert panel.runner.progress.text() == "100%  done"
    viewer.add_image(np.random.default_rng(0).random((3, 64, 64), dtype=np.float32), name="other")
    panel.source.layer_combo.setCurrentText("other")
    assert panel.runner.progress.text() == "0%" and panel.runner.status.text() == ""


def test_jobs_report_in_naparis_activity_dock_and_the_bar_restarts_with_each_job(viewer_panel, qtbot):
    from napari.utils import progress
    from napari.utils.notifications import notification_manager

    viewer, panel = viewer_panel
    panel.restore.many_button.click()
    bars = [p for p in progress._all_instances if p.desc.startswith(f"latent: 9 planes of {SAMPLE}")]
    assert len(bars) == 1
    wait_for_job(panel, qtbot)
    assert bars[0] not in progress._all_instances  # closed when the job ended
    bar = panel.runner.progress
    assert bar.value() == bar.maximum() > 0
    panel.restore.one_button.click()
    assert bar.value() == 0 and panel.runner.cancel_button.isEnabled()  # before: the last job's 100% stayed
    wait_for_job(panel, qtbot)
    before = len(notification_manager.records)
    panel.restore.range_edit.setText("3-99")
    panel.restore.many_button.click()
    messages = [str(n.message) for n in notification_manager.records[before:]]
    assert any("outside" in m for m in messages) and "outside" in panel.runner.status.text()


def test_cancel_in_the_panel_stops_a_job(viewer_panel, qtbot):
    viewer, panel = viewer_panel
    panel.method_combo.setCurrentIndex(panel.method_combo.findData("richardson-lucy"))
    wait_for_job(panel, qtbot)
    set_form(panel, iterations=200)
    panel.restore.many_button.click()
    qtbot.waitUntil(lambda: panel.runner.progress.value() > 0, timeout=TIMEOUT)
    panel.runner.cancel_button.click()
    wait_for_job(panel, qtbot)
    assert "cancelled" in panel.runner.status.text() and f"{SAMPLE} richardson-lucy" not in viewer.layers


def test_view_fits_the_data_once_the_panel_is_docked(make_napari_viewer, models_dir, qtbot):
    """Before: ``latent-focus view`` fitted the view to the canvas as it was before the panel took its room."""
    from latent_focus.napari.launch import dock_panel

    viewer = make_napari_viewer(show=True)
    viewer.window._qt_window.resize(1089, 630)
    viewer.open_sample(PLUGIN, "nuclei_defocus")
    qtbot.wait(50)
    viewer.reset_view()
    before = viewer.scene.camera.zoom  # fitted to the canvas without the panel
    panel = dock_panel(viewer)
    after = viewer.scene.camera.zoom
    viewer.reset_view()
    assert after == pytest.approx(viewer.scene.camera.zoom) and after < 0.95 * before
    qtbot.waitUntil(lambda: not panel.busy, timeout=TIMEOUT)


# -- pixel size and z step from the file napari read -----------------------------------------------------------------

@pytest.mark.real_data
def test_blur_map_and_psf_rl_match_the_command_line_for_a_file_napari_opened(make_napari_viewer, models_dir, qtbot,
                                                                            shared_data, tmp_path):
    """Before: napari's reader gives scale 1, so the panel used 0.1 um pixels: a blur map of 1.18 um on NEUBIAS
    plane 10 against 2.24-2.41 um from the command line."""
    from latent_focus.cli import main
    from latent_focus.io import read_stack

    path = shared_data / "neubias_widefield_nucleus_hoechst" / "stack.tif"
    viewer = make_napari_viewer()
    layer = viewer.open(path, plugin="napari")[0]  # napari's own reader: no pixel size, scale 1
    assert tuple(layer.scale) == (1, 1, 1) and "pixel_size_um" not in layer.metadata
    _, panel = viewer.window.add_plugin_dock_widget(PLUGIN, "Latent focus")
    assert "z step 0.499 µm from file; pixel 0.256 µm from file" in panel.source.info_label.text()
    panel.device_combo.setCurrentText("cpu")
    panel.method_combo.setCurrentIndex(panel.method_combo.findData("psf-rl"))
    qtbot.waitUntil(lambda: not panel.busy and "psf-widefield" in panel.model_label.text(), timeout=TIMEOUT)
    set_form(panel, optics="1.2 0.46 1.33")
    viewer.dims.set_current_step(0, 10)
    panel.section.button.click()
    qtbot.waitUntil(lambda: not panel.busy and "stack blur map" in viewer.layers, timeout=TIMEOUT)
    panel.restore.one_button.click()
    qtbot.waitUntil(lambda: not panel.busy and "stack psf-rl" in viewer.layers, timeout=TIMEOUT)
    assert "pixel 0.256 µm from file" in panel.section.status.text()

    assert main(["blur-map", str(path), "--plane", "10", "-o", str(tmp_path / "map.tif"), "--device", "cpu",
                 "--optics", "1.2", "0.46", "1.33"]) == 0
    assert main(["restore", str(path), "--method", "psf-rl", "--plane", "10", "-o", str(tmp_path / "rl.tif"),
                 "--device", "cpu", "--optics", "1.2 0.46 1.33"]) == 0
    cli_map = read_stack(tmp_path / "map.tif").data[0]
    panel_map = viewer.layers["stack blur map"].data[0]
    assert np.array_equal(panel_map, cli_map) and 2.0 < float(np.median(panel_map)) < 2.6
    np.testing.assert_array_equal(viewer.layers["stack psf-rl"].data[0], read_stack(tmp_path / "rl.tif").data[-1])
