"""The analysis-synthesis method: its layers, training data, training loop, tiling and command line."""

from __future__ import annotations

import json

import numpy as np
import pytest
import tifffile
import torch

from latent_focus.cli import main
from latent_focus.errors import InputError
from latent_focus.io import Stack
from latent_focus.methods import get_method, load_method, run
from latent_focus.models.analysis_synthesis import AnalysisNet, CrossCorrelation, SynthesisNet, wiener
from latent_focus.optics import born_wolf_psf, fft_convolve


@pytest.fixture(scope="module")
def content(blurred_stack) -> Stack:
    """In-focus content: the sharpest plane of the conftest series, as a one-plane stack."""
    return Stack(blurred_stack[:1].copy(), source="blobs.tif")


@pytest.fixture(scope="module")
def tiny_pair(tmp_path_factory, content):
    """A tiny pair trained for a few steps (enough to exercise every code path)."""
    from latent_focus.methods.analysis_synthesis.training import Recipe, train

    out = tmp_path_factory.mktemp("pairs") / "tiny-pair"
    recipe = Recipe(preset="analysis-synthesis-tiny", steps=3, batch_size=2, crop=48, settings=4, val_samples=2,
                    validate_every=3, checkpoint_every=2, device="cpu")
    progress = list(train([content], out, recipe))
    assert [p.done for p in progress] == [1, 2, 3] and progress[-1].finished
    return out


def test_cross_correlation_matches_the_direct_sum_and_ignores_brightness():
    torch.manual_seed(0)
    f = torch.randn(1, 2, 20, 24)
    corr = CrossCorrelation(3, 2)(f)
    assert corr.shape == (1, 3, 7, 7)  # pairs (0, 0), (0, 1), (1, 1)
    g = (f - f.mean(dim=(-2, -1), keepdim=True))[0].numpy().astype(np.float64)
    var = (g ** 2).mean(axis=(1, 2))
    for (i, j), m in zip([(0, 0), (0, 1), (1, 1)], corr[0]):
        for dy, dx in [(0, 0), (1, -2), (-3, 3)]:
            a = g[i, max(0, -dy):20 - max(0, dy), max(0, -dx):24 - max(0, dx)]
            b = g[j, max(0, dy):20 + min(0, dy), max(0, dx):24 + min(0, dx)]
            direct = (a * b).sum() / (20 * 24) / np.sqrt(var[i] * var[j])
            assert m[3 + dy, 3 + dx].item() == pytest.approx(direct, abs=1e-5)
    assert torch.allclose(CrossCorrelation(3, 2)(5 * f + 2), corr, atol=1e-5)


def test_analysis_gives_a_normalised_kernel_for_any_plane_size():
    net = AnalysisNet(features=3, width=4, head=8).eval()
    for shape in ((40, 52), (64, 64)):
        k = net(torch.rand(2, 1, *shape))
        assert k.shape == (2, 1, 33, 33)
        assert torch.all(k >= 0) and torch.allclose(k.sum(dim=(-2, -1)), torch.ones(2, 1))


def test_wiener_undoes_a_known_blur_and_an_untrained_synthesis_is_the_identity():
    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[:64, :64]
    sharp = sum(np.exp(-((yy - cy) ** 2 + (xx - cx) ** 2) / (2 * s ** 2))
                for cy, cx, s in rng.uniform(1, 64, (30, 3)) / [1, 1, 20])
    kernel = born_wolf_psf(1.0, 0.75, 0.52, 1.0, 0.2, 33)
    blurred = fft_convolve(sharp, kernel, mode="wrap")
    x, k = torch.from_numpy(blurred)[None, None].float(), torch.from_numpy(kernel)[None, None].float()
    restored = wiener(x, k, eps=1e-3)[0, 0].numpy()
    inner = (slice(20, 44), slice(20, 44))  # away from the mirrored edges
    assert np.abs(restored - sharp)[inner].mean() < 0.3 * np.abs(blurred - sharp)[inner].mean()
    net = SynthesisNet(widths=(4, 8), code=8)  # the residual layer starts at zero
    assert torch.equal(net(x, k), x)


def test_simulated_in_focus_planes_have_no_residual_and_kernels_sum_to_one(content):
    from latent_focus.methods.analysis_synthesis.simulation import make_settings, simulate

    rng = np.random.default_rng(4)
    settings = make_settings(rng, 12, 6, 33, in_focus=0.5)
    assert {s.modality for s in settings} == {"widefield", "brightfield"}
    plane = np.pad(content.data[0], 48, mode="reflect")
    for s in settings:
        assert s.kernel.shape == (33, 33) and s.kernel.sum() == pytest.approx(1, abs=1e-5)
        sample = simulate(plane, s, rng, 64)
        assert sample.x.shape == sample.residual.shape == (64, 64)
        if s.z_um == 0:
            assert np.abs(sample.residual).max() == 0
        elif s.blur_radius_px > 3:
            assert np.abs(sample.residual).mean() > 1e-3


def test_training_resumes_and_writes_a_card(tmp_path, content, tiny_pair):
    from latent_focus.methods.analysis_synthesis.training import Recipe, train
    from latent_focus.models import read_card, read_history

    card = read_card(tiny_pair)
    assert card.preset == "analysis-synthesis-tiny" and card.steps_done == 3
    assert card.extra["kernel_size"] == 33 and card.training["content"][0]["source"] == "blobs.tif"
    assert [h["step"] for h in read_history(tiny_pair)] == [1, 2, 3]
    recipe = Recipe(preset="analysis-synthesis-tiny", steps=4, batch_size=2, crop=48, settings=4, val_samples=2,
                    device="cpu")
    out = tmp_path / "run"
    gen = train([content], out, recipe)
    next(gen), next(gen), next(gen)
    gen.close()  # cancelled after step 3: the checkpoint holds it
    assert [p.done for p in train([content], out, recipe)] == [4]
    with pytest.raises(InputError, match="another model"):
        next(train([content], out, Recipe(preset="analysis-synthesis-tiny", seed=1, device="cpu")))


def test_restore_tiles_large_planes_and_estimates_kernels_per_tile(tiny_pair, blurred_stack):
    method = load_method("analysis-synthesis", str(tiny_pair), "cpu")
    stack = Stack(np.tile(blurred_stack[3], (2, 2))[None], source="big.tif")  # 192 x 192
    params = method.Params(tile=128)
    whole = run(method.restore(stack, 0, method.Params()))
    tiled = run(method.restore(stack, 0, params))
    assert tiled.info["tiles"] == 4 and whole.info["tiles"] == 1
    assert np.abs(tiled.image - whole.image).max() < 0.05 * np.ptp(whole.image)
    per_tile = run(method.restore(stack, 0, params.replace(kernel="tile")))
    assert len(per_tile.info["kernel_radius_px"]) == 4
    unchanged = run(method.restore(stack, 0, params.replace(strength=0.0)))
    assert np.allclose(unchanged.image, stack.data[0], rtol=1e-4, atol=1e-3 * np.ptp(stack.data[0]))


def test_out_of_memory_shrinks_the_tile_then_moves_to_the_cpu(tiny_pair, blurred_stack, monkeypatch):
    from latent_focus.methods.analysis_synthesis.inference import Pair

    pair = Pair(str(tiny_pair), "cpu")
    real = pair._residual
    calls = []

    def flaky(patch, kernel, net=None):
        calls.append(patch.shape)
        if max(patch.shape) > 128:
            raise torch.cuda.OutOfMemoryError("out of memory")
        return real(patch, kernel, net)

    monkeypatch.setattr(pair, "_residual", flaky)
    out = pair.deblur(np.tile(blurred_stack[3], (3, 3)), tile=512)  # 288 x 288
    assert out.tile == 128 and calls[0] == (288, 288) and out.image.shape == (288, 288)


def test_a_cpu_fallback_lasts_one_call_and_leaves_the_loaded_pair_as_it_was(tiny_pair, blurred_stack, monkeypatch):
    from latent_focus.methods.analysis_synthesis.inference import Pair

    pair = Pair(str(tiny_pair), "cpu")
    loaded, device, real = pair.model, pair.device, pair._residual
    nets = []

    def no_memory_for_the_loaded_pair(patch, kernel, net=None):
        nets.append(net.model is loaded)
        if net.model is loaded:
            raise torch.cuda.OutOfMemoryError("out of memory")
        return real(patch, kernel, net)

    monkeypatch.setattr(pair, "_residual", no_memory_for_the_loaded_pair)
    first = pair.deblur(blurred_stack[3], tile=128)
    assert nets[0] and not nets[-1]  # the loaded pair first, then the call's CPU copy
    assert pair.model is loaded and pair.device == device
    nets.clear()
    second = pair.deblur(blurred_stack[3], tile=128)
    assert nets[0]  # the next call starts on the loaded pair again
    np.testing.assert_allclose(first.image, second.image, rtol=1e-5)


def test_cli_train_and_restore(tmp_path, blurred_stack, tiny_pair, capsys):
    from latent_focus.models import read_card

    stack = tmp_path / "stack.tif"
    tifffile.imwrite(stack, blurred_stack.astype(np.uint16))
    out = tmp_path / "out.tif"
    assert main(["restore", str(stack), "-o", str(out), "--method", "analysis-synthesis", "--model", str(tiny_pair),
                 "--plane", "3", "--window", "64", "--device", "cpu"]) == 0
    image = tifffile.imread(out)
    assert image.shape == (96, 96) and image.dtype == np.float32
    with tifffile.TiffFile(out) as tif:
        info = json.loads(tif.imagej_metadata["Info"])
    assert info["method"] == "analysis-synthesis" and len(info["planes"]["kernel"]) == 33
    assert main(["restore", str(stack), "-o", str(tmp_path / "x.tif"), "--method", "analysis-synthesis",
                 "--strength", "3"]) == 2
    assert "--strength must be from 0.0 to 2.0" in capsys.readouterr().err
    content = tmp_path / "content.tif"
    tifffile.imwrite(content, blurred_stack[:1].astype(np.float32))
    model = tmp_path / "pair"
    args = ["train-analysis-synthesis", "-o", str(model), "--content", str(content), "--preset",
            "analysis-synthesis-tiny", "--steps", "2", "--batch-size", "2", "--crop", "48", "--settings", "4",
            "--device", "cpu"]
    assert main(args) == 0 and (model / "weights.pt").is_file()
    assert "step 2/2" in capsys.readouterr().err
    assert main(args[:-2] + ["--preset", "compact"]) == 2  # not an analysis-synthesis architecture
    tuned = tmp_path / "tuned"
    assert main(["train-analysis-synthesis", "-o", str(tuned), "--from", str(tiny_pair), "--content", str(content),
                 "--steps", "1", "--batch-size", "2", "--crop", "48", "--settings", "4", "--deblur-loss", "l1",
                 "--device", "cpu"]) == 0
    card = read_card(tuned)
    assert card.preset == "analysis-synthesis-tiny" and card.training["fine_tuned_from"]["name"] == "tiny-pair"
    assert card.training["recipe"]["deblur_loss"] == "l1" and card.training["recipe"]["kernel_loss"] == "kl"


def test_a_latent_model_is_refused_with_one_line(tmp_path, tiny_model):
    with pytest.raises(InputError, match="not an analysis-synthesis model"):
        get_method("analysis-synthesis").load(str(tiny_model), "cpu")


def test_a_strength_calibrated_in_the_card_is_the_default(tmp_path, tiny_pair):
    import shutil

    from latent_focus.models import read_card

    folder = tmp_path / "calibrated"
    shutil.copytree(tiny_pair, folder)
    card = read_card(folder)
    card.extra["strength"] = {"value": 1.4, "calibration": "test"}
    card.write(folder)
    assert get_method("analysis-synthesis").load(str(folder), "cpu").default_params().strength == 1.4
    assert get_method("analysis-synthesis").load(str(tiny_pair), "cpu").default_params().strength == 1.0


@pytest.mark.real_data
def test_shipped_pair_keeps_a_real_in_focus_plane_and_sharpens_a_defocused_one(shared_data):
    from latent_focus.io import Normalizer, read_stack
    from latent_focus.metrics import psnr

    stack = read_stack(shared_data / "neubias_widefield_nucleus_hoechst" / "stack.tif")  # in focus: plane 19
    method = load_method("analysis-synthesis", None, "cpu")
    norm = Normalizer.from_data(stack.data)
    target = norm.normalize(stack.data[19])
    kept = norm.normalize(run(method.restore(stack, 19, method.default_params())).image)
    assert psnr(target, kept) > 50  # measured 63 dB: the in-focus plane comes back as it was
    deblurred = norm.normalize(run(method.restore(stack, 28, method.default_params())).image)
    assert psnr(target, deblurred) - psnr(target, norm.normalize(stack.data[28])) > 0.5  # measured +1.24 dB
