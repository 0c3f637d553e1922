import numpy as np
import pytest
import torch

from latent_focus import LatentFocus, extrapolate, interpolate
from latent_focus.models import build_model, save_model
from latent_focus.tiling import plan_tiles


@pytest.fixture(scope="module")
def paper_model(tmp_path_factory):
    torch.manual_seed(0)
    folder = tmp_path_factory.mktemp("paper")
    save_model(folder, build_model("paper").eval(), {"preset": "paper"})
    return folder


def test_tiles_cover_the_plane():
    boxes = plan_tiles(300, 500, 128, 32)
    cover = np.zeros((300, 500), int)
    for y0, y1, x0, x1 in boxes:
        assert y1 - y0 <= 128 and x1 - x0 <= 128
        cover[y0:y1, x0:x1] += 1
    assert cover.min() >= 1


def test_any_plane_size_round_trips(tiny_model, blurred_stack):
    engine = LatentFocus(tiny_model, "cpu")
    norm = engine.normalizer(blurred_stack)
    odd = blurred_stack[0, :77, :91]
    out = engine.reconstruct(odd, norm)
    assert out.shape == odd.shape and out.dtype == np.float32


def test_tiled_equals_untiled(tiny_model, blurred_stack):
    big = np.tile(blurred_stack[2], (3, 3))  # 288 x 288
    whole = LatentFocus(tiny_model, "cpu", tile=1024)
    tiled = LatentFocus(tiny_model, "cpu", tile=128, overlap=48)
    norm = whole.normalizer(big)
    a = whole.deblur(big, np.tile(blurred_stack[4], (3, 3)), 0.5, norm)
    b = tiled.deblur(big, np.tile(blurred_stack[4], (3, 3)), 0.5, norm)
    assert len(tiled.encode(big, norm).boxes) > 1
    span = np.ptp(a)
    assert np.abs(a - b).max() < 0.02 * span
    assert np.median(np.abs(a - b)) < 0.002 * span


def test_paper_preset_tiled_without_seams(paper_model):
    rng = np.random.default_rng(0)
    plane = rng.random((200, 200)).astype(np.float32)
    whole = LatentFocus(paper_model, "cpu", tile=1024)
    tiled = LatentFocus(paper_model, "cpu", tile=128, overlap=64)
    norm = whole.normalizer(plane)
    a, b = whole.reconstruct(plane, norm), tiled.reconstruct(plane, norm)
    # the sigmoid output of an untrained paper model is smooth; tiles must agree closely with the whole
    assert np.abs(a - b).max() < 0.05 * np.ptp(norm.denormalize(np.array([0.0, 1.0])))


def test_encoded_arithmetic_matches_latent_maths(tiny_model, blurred_stack):
    engine = LatentFocus(tiny_model, "cpu")
    norm = engine.normalizer(blurred_stack)
    zb, zc = engine.encode(blurred_stack[1], norm), engine.encode(blurred_stack[3], norm)
    direct = engine.decode(extrapolate(zb, zc, 0.5))
    assert np.allclose(direct, engine.deblur(blurred_stack[1], blurred_stack[3], 0.5, norm), atol=1e-4)
    mixed = interpolate(zb, zc, 1.0)
    assert np.allclose(engine.decode(mixed), engine.decode(zb), atol=1e-5)


def test_preview_encoding_is_smaller(tiny_model, blurred_stack):
    engine = LatentFocus(tiny_model, "cpu")
    norm = engine.normalizer(blurred_stack)
    enc = engine.encode(blurred_stack[0], norm, scale=0.5)
    assert engine.decode(enc).shape == (48, 48)
