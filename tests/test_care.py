"""The ``care`` anchor: training pairs, the relative loss, training that learns, the command line, and the
analysis-synthesis pair fine-tuned on the same real pairs."""

import json

import numpy as np
import pytest
import tifffile
import torch

from latent_focus.cli import EXIT_BAD_INPUT, main
from latent_focus.errors import InputError
from latent_focus.io import Normalizer, Stack
from latent_focus.methods import load_method, run
from latent_focus.methods.care.training import CareRecipe, relative_error, train
from latent_focus.metrics import psnr
from latent_focus.pairs import FocusSeries, sample_batch


def test_pairs_hold_the_input_plane_and_the_in_focus_plane_in_the_input_plane_units(blurred_stack):
    series = FocusSeries(Stack(blurred_stack), 0, max_offset=2)
    assert series.inputs == [1, 2]
    x, y = sample_batch([series], np.random.default_rng(0), 6, 96, identity=0.0)
    assert x.shape == y.shape == (6, 1, 96, 96) and x.dtype == np.float32
    targets = [Normalizer.from_data(blurred_stack[k]).normalize(blurred_stack[0]) for k in (1, 2)]
    for xi, yi in zip(x[:, 0], y[:, 0]):  # crops are the whole plane turned or flipped: compare sorted values
        assert any(np.allclose(np.sort(yi.ravel()), np.sort(t.ravel()), atol=1e-5) for t in targets)
        assert not np.allclose(xi, yi)
    x, y = sample_batch([series], np.random.default_rng(0), 4, 96, identity=1.0)
    np.testing.assert_allclose(x, y)  # the in-focus plane is its own target


def test_small_planes_are_mirrored_out_to_the_crop():
    stack = Stack(np.random.default_rng(0).random((3, 40, 50)).astype(np.float32) + 1)
    x, y = sample_batch([FocusSeries(stack, 1)], np.random.default_rng(1), 2, 64)
    assert x.shape == (2, 1, 64, 64)


def test_focus_series_refuses_a_focus_outside_the_stack(blurred_stack):
    with pytest.raises(InputError, match="out of range"):
        FocusSeries(Stack(blurred_stack), 9)


def test_relative_error_is_one_for_the_input_and_zero_for_the_target():
    x, y = torch.rand(3, 1, 16, 16), torch.rand(3, 1, 16, 16)
    assert relative_error(y, x, y) == 0
    assert relative_error(x, x, y) == pytest.approx(1.0, abs=0.01)


def test_training_moves_a_blurred_plane_towards_focus(blurred_stack, tmp_path):
    stack = Stack(blurred_stack)
    recipe = CareRecipe(preset="care-tiny", steps=150, batch_size=8, crop=48, lr=3e-3, validate_every=150,
                        checkpoint_every=150, val_samples=8, device="cpu")
    reports = list(train([FocusSeries(stack, 0, max_offset=3)], tmp_path / "m", recipe))
    assert reports[-1].done == 150 and reports[-1].val["val_gain_db"] > 0.5
    method = load_method("care", str(tmp_path / "m"), "cpu")
    out = run(method.restore(stack, 2, method.default_params())).image
    norm = Normalizer.from_data(blurred_stack)
    target = norm.normalize(blurred_stack[0])
    assert psnr(target, norm.normalize(out)) > psnr(target, norm.normalize(blurred_stack[2])) + 1.0


def test_train_and_restore_from_the_command_line(blurred_stack, tmp_path, capsys):
    path = tmp_path / "series.tif"
    tifffile.imwrite(path, blurred_stack)
    model = tmp_path / "care-model"
    assert main(["train", str(path), "-o", str(model), "--preset", "care-tiny", "--focus", "0", "--steps", "3",
                 "--device", "cpu"]) == 0
    card = json.loads((model / "card.json").read_text())
    assert card["training"]["steps_done"] == 3 and card["training_data"]["series"][0]["focus_plane"] == 0
    out = tmp_path / "out.tif"
    assert main(["restore", str(path), "-o", str(out), "--method", "care", "--model", str(model), "--plane", "3",
                 "--device", "cpu"]) == 0
    assert tifffile.imread(out).shape == blurred_stack.shape[1:]


def test_train_refuses_a_focus_per_stack_that_does_not_match(blurred_stack, tmp_path, capsys):
    path = tmp_path / "series.tif"
    tifffile.imwrite(path, blurred_stack)
    code = main(["train", str(path), str(path), str(path), "-o", str(tmp_path / "m"), "--preset", "care-tiny",
                 "--focus", "0", "1", "--steps", "1", "--device", "cpu"])
    err = capsys.readouterr().err.strip()
    assert code == EXIT_BAD_INPUT and len(err.splitlines()) == 1 and "one per stack" in err
    assert not (tmp_path / "m").exists()


def test_analysis_synthesis_trains_on_real_pairs_beside_simulated_kernels(blurred_stack, tmp_path, capsys):
    path = tmp_path / "series.tif"
    tifffile.imwrite(path, blurred_stack)
    content = tmp_path / "content.tif"
    tifffile.imwrite(content, blurred_stack[:1])
    out = tmp_path / "pair"
    args = ["train-analysis-synthesis", "-o", str(out), "--content", str(content), "--preset",
            "analysis-synthesis-tiny", "--steps", "2", "--batch-size", "4", "--crop", "48", "--settings", "4",
            "--real", str(path), "--real-focus", "0", "--device", "cpu"]
    assert main(args) == 0
    history = json.loads((out / "history.json").read_text())
    card = json.loads((out / "card.json").read_text())
    assert all(np.isfinite(h["real"]) for h in history)  # the real pairs' loss is part of every step
    assert card["training"]["recipe"]["real_share"] == 0.5 and card["training"]["real_series"][0]["focus_plane"] == 0
    code = main([*args[:-6], "--real", str(path), str(path), "--real-focus", "0", "1", "2", "--device", "cpu",
                 "-o", str(tmp_path / "other")])
    assert code == EXIT_BAD_INPUT and "one per --real stack" in capsys.readouterr().err


def test_out_of_memory_shrinks_the_tile_then_finishes_the_call_on_a_cpu_copy(method_models, blurred_stack,
                                                                               monkeypatch):
    from latent_focus.methods.care.inference import Refocuser

    net = Refocuser(str(method_models["care"]), "cpu")
    loaded, real = net.model, net._residual
    calls = []

    def no_memory_for_the_loaded_network(patch, model, device):
        calls.append((patch.shape, model is loaded))
        if model is loaded:  # what _residual returns on a CUDA out-of-memory error
            return None
        return real(patch, model, device)

    monkeypatch.setattr(net, "_residual", no_memory_for_the_loaded_network)
    image, tile, _ = run(net.refocus_steps(np.tile(blurred_stack[3], (3, 3)), tile=512))  # 288 x 288
    assert calls[0] == ((288, 288), True) and tile == 128 and image.shape == (288, 288)
    assert not calls[-1][1] and net.model is loaded  # the copy ran; the loaded network is untouched
