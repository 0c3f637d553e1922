"""The training dock in a real napari viewer: a short run, Cancel, and closing the dock."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from qtpy.QtCore import Qt
from qtpy.QtWidgets import QMessageBox

from latent_focus.models import ModelCard, build_model, read_history, save_model, store
from latent_focus.napari.events import model_events, panel_state
from latent_focus.napari.training_dock import TrainingDock
from latent_focus.progress import Progress


def _defocus_series(size: int = 128, planes: int = 7) -> np.ndarray:
    """Planes of a random-blob image blurred more with depth (plane 0 sharpest)."""
    rng = np.random.default_rng(3)
    yy, xx = np.mgrid[:size, :size]
    img = sum(np.exp(-((yy - cy) ** 2 + (xx - cx) ** 2) / (2 * r * r))
              for cy, cx, r in rng.uniform((4, 4, 2), (size - 4, size - 4, 6), (40, 3)))
    k = np.fft.fftfreq(size)
    k2 = k[:, None] ** 2 + k[None, :] ** 2
    f = np.fft.fft2(img)
    return np.stack([100 + 1000 * np.real(np.fft.ifft2(f * np.exp(-2 * (np.pi * s) ** 2 * k2)))
                     for s in range(planes)]).astype(np.float32)


@pytest.fixture
def make_dock(make_napari_viewer, monkeypatch, qtbot, tmp_path):
    """Factory of a docked TrainingDock set up for quick tiny-preset runs on the CPU."""
    monkeypatch.setenv("LATENT_FOCUS_MODELS", str(tmp_path / "models"))
    monkeypatch.setattr(store, "SHIPPED_DIR", tmp_path / "shipped")
    monkeypatch.setattr(panel_state, "model", "default")  # what a panel picks first
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # one intra-op thread keeps step times steady on a busy 2-core runner
    docks = []

    def make() -> TrainingDock:
        viewer = make_napari_viewer()
        viewer.add_image(_defocus_series(), name="series")
        widget = TrainingDock(viewer)
        viewer.window.add_dock_widget(widget, name="Train")
        widget.form.device.setCurrentText("cpu")
        widget.form.crop.setValue(16)
        widget.form.batch_size.setValue(2)
        docks.append(widget)
        return widget

    yield make
    for widget in docks:
        widget.run.stop()
        qtbot.waitUntil(lambda: not widget.run.running, timeout=5000)
    torch.set_num_threads(threads)


@pytest.fixture
def dock(make_dock):
    widget = make_dock()
    widget.form.preset.setCurrentText("tiny")
    return widget


def _running(widget) -> bool:
    return widget.run.running


def test_short_run_saves_a_model_and_announces_it(dock, qtbot, tmp_path):
    announced = []
    model_events.changed.connect(announced.append)
    assert dock.form.source.currentText() == "scratch"  # no shipped model in this models folder
    assert dock.stacks.list.count() == 1 and dock.form.regularization.currentText() == "direct"
    dock.form.steps.setValue(12)
    dock.form.extrapolation.setValue(1.5)
    dock.form.triplets.setCurrentText("all")
    dock.form.relative_latent.setChecked(True)
    name = dock.form.model_name.text()
    dock.start_button.click()
    assert not dock.start_button.isEnabled() and dock.cancel_button.isEnabled()
    qtbot.waitUntil(lambda: dock.progress_bar.value() > 0 and dock.loss_plot.n_points > 0, timeout=20000)
    assert dock.device_label.text().startswith("cpu")
    qtbot.waitUntil(dock.start_button.isEnabled, timeout=20000)  # the dock has handled the end of the run
    model_events.changed.disconnect(announced.append)

    folder = tmp_path / "models" / name
    card = json.loads((folder / "card.json").read_text())
    assert card["training"]["steps_done"] == 12 and card["preset"] == "tiny"
    assert card["training"]["recipe"]["regularization"] == "direct"
    assert card["training"]["recipe"]["extrapolation"] == 1.5 and "extrap" in read_history(folder)[-1]
    assert card["training"]["recipe"]["triplets"] == "all" and card["training"]["recipe"]["relative_latent"]
    assert announced == [str(folder)]
    assert dock.status.text() == f"Saved to {folder}"
    assert len(dock.loss_plot.series["train"]) == 12 and dock.loss_plot.series["validation"]
    assert dock.progress_bar.value() == 12 and dock.start_button.isEnabled()
    assert dock.form.model_name.text() != name  # the next run gets a fresh folder
    assert dock.form.source.findData(f"user:{name}") >= 0  # the new model can be fine-tuned


def test_cancel_stops_quickly_and_keeps_the_last_step(dock, qtbot, tmp_path):
    dock.form.steps.setValue(100000)
    name = dock.form.model_name.text()
    dock.start_button.click()
    dock.viewer.layers["series"].data[:] = 0  # the run trains on its snapshot, not on this constant stack
    qtbot.waitUntil(lambda: dock.progress_bar.value() >= 2, timeout=20000)
    dock.cancel_button.click()
    qtbot.waitUntil(lambda: not _running(dock), timeout=2000)
    folder = tmp_path / "models" / name
    assert (folder / "weights.pt").is_file() and (folder / "checkpoint.pt").is_file()
    done = json.loads((folder / "card.json").read_text())["training"]["steps_done"]
    assert 2 <= done < 100000
    assert "cancelled at step" in dock.status.text() and dock.start_button.isEnabled()


def test_closing_the_dock_stops_the_run(dock, qtbot, tmp_path):
    dock.form.steps.setValue(100000)
    name = dock.form.model_name.text()
    dock.start_button.click()
    qtbot.waitUntil(lambda: dock.progress_bar.value() >= 1, timeout=20000)
    dock.viewer.window.remove_dock_widget(dock)
    qtbot.waitUntil(lambda: not _running(dock), timeout=2000)
    assert (tmp_path / "models" / name / "weights.pt").is_file()


def test_closing_the_viewer_stops_the_run(dock, qtbot, tmp_path):
    dock.form.steps.setValue(100000)
    name = dock.form.model_name.text()
    dock.start_button.click()
    qtbot.waitUntil(lambda: dock.progress_bar.value() >= 1, timeout=20000)
    dock.viewer.close()
    qtbot.waitUntil(lambda: not _running(dock), timeout=5000)
    assert (tmp_path / "models" / name / "weights.pt").is_file()


def test_bad_input_is_reported(dock, qtbot):
    item = dock.stacks.list.item(0)
    item.setCheckState(Qt.CheckState.Unchecked)
    dock.start_button.click()
    assert not _running(dock) and "no training stack" in dock.status.text()
    item.setCheckState(Qt.CheckState.Checked)
    dock.form.lr.setText("fast")
    dock.start_button.click()
    assert not _running(dock) and "not a number" in dock.status.text()
    dock.form.lr.setText("1e-3")
    dock.form.relative_latent.setChecked(True)
    dock.form.regularization.setCurrentText("indirect")
    dock.start_button.click()
    assert not _running(dock) and "needs direct regularization" in dock.status.text()
    dock.form.relative_latent.setChecked(False)
    dock.form.crop.setValue(256)  # larger than the planes: the core refuses in the worker
    dock.start_button.click()
    qtbot.waitUntil(lambda: not _running(dock), timeout=10000)
    assert dock.status.text().startswith("Training stopped:") and "smaller crop size" in dock.status.text()
    assert dock.start_button.isEnabled()


def test_fine_tunes_the_shipped_model_and_asks_before_replacing(make_dock, qtbot, tmp_path, monkeypatch):
    save_model(tmp_path / "shipped" / "default", build_model("tiny"), ModelCard(preset="tiny"))
    existing = tmp_path / "models" / "mine"
    save_model(existing, build_model("tiny"), ModelCard(preset="tiny"))
    dock = make_dock()
    source = dock.form.source
    assert source.currentText() == "current model: default (fine-tune)" and source.currentData() == "default"
    assert dock.form.preset.currentText() == "tiny" and not dock.form.preset.isEnabled()
    dock.form.model_name.setText("mine")
    dock.form.steps.setValue(3)
    asked = []

    def answer(reply):
        return lambda *args: asked.append(args) or reply

    monkeypatch.setattr(QMessageBox, "question", answer(QMessageBox.StandardButton.No))
    dock.start_button.click()
    assert len(asked) == 1 and not _running(dock)
    assert "training" not in json.loads((existing / "card.json").read_text())
    monkeypatch.setattr(QMessageBox, "question", answer(QMessageBox.StandardButton.Yes))
    dock.start_button.click()
    qtbot.waitUntil(lambda: not _running(dock), timeout=20000)
    card = json.loads((existing / "card.json").read_text())
    assert card["training"]["fine_tuned_from"]["name"] and card["training"]["steps_done"] == 3
    assert dock.status.text() == f"Saved to {existing}"


def test_defaults_are_the_best_fine_tuning_recipe_and_only_the_users_layers_are_listed(make_dock):
    """Before: the plugin's own outputs were listed beside the user's data (first ticked, later unticked)."""
    from latent_focus.methods.latent.training import FINE_TUNE_RECIPE

    dock = make_dock()
    viewer = dock.viewer
    viewer.add_image(np.zeros((3, 32, 32), np.float32), name="series latent", metadata={"latent_focus_output": True})

    def states():
        return {dock.stacks.list.item(i).text(): dock.stacks.list.item(i).checkState()
                for i in range(dock.stacks.list.count())}

    assert states() == {"layer: series": Qt.CheckState.Checked}
    dock.stacks.results_check.setChecked(True)  # asked for: listed, not ticked
    assert states() == {"layer: series": Qt.CheckState.Checked, "layer: series latent": Qt.CheckState.Unchecked}
    assert dock.form.extrapolation.value() == FINE_TUNE_RECIPE["extrapolation"]
    assert dock.form.steps.value() == FINE_TUNE_RECIPE["steps"]


def test_start_from_current_model_means_the_model_picked_in_the_panel(make_dock, tmp_path):
    """Before: "current model" was always the shipped one, whatever the panel had picked."""
    from latent_focus.napari.events import panel_state

    save_model(tmp_path / "shipped" / "default", build_model("tiny"), ModelCard(preset="tiny"))
    save_model(tmp_path / "models" / "mine", build_model("paper"), ModelCard(preset="paper"))
    dock = make_dock()
    try:
        panel_state.model = "user:mine"
        source = dock.form.source
        assert source.currentData() == "user:mine" and source.currentText().startswith("current model")
        assert dock.form.preset.currentText() == "paper"
    finally:
        panel_state.model = "default"


def test_a_report_delivered_after_the_run_ended_still_ends_in_its_outcome(dock, tmp_path):
    """Under load the last report can reach the dock after the worker's finished signal."""
    dock.run.output = tmp_path / "m"
    dock._error, dock._last, dock._ended = None, None, False
    dock._on_finished()
    assert dock.status.text() == "Cancelled before the first step; nothing was saved."
    dock._on_report(Progress(3, 3, unit="step", losses={"total": 0.5}, val={"val_total": 0.4, "val_psnr_interp": 13.5},
                             finished=True))
    assert dock.status.text() == f"Saved to {tmp_path / 'm'}"
    assert dock.progress_bar.format() == "step 3 / 3  (done)"
