import numpy as np
import pytest
import torch

from latent_focus import LatentFocus, extrapolate, interpolate
from latent_focus.engine import Plan
from latent_focus.models import ModelCard, build_model, save_model
from latent_focus.tiling import plan_tiles


@pytest.fixture(scope="module")
def paper_model(tmp_path_factory):
    torch.manual_seed(0)
    folder = tmp_path_factory.mktemp("paper")
    save_model(folder, build_model("paper").eval(), ModelCard(preset="paper"))
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


class _FailsOnce:
    """Wraps a model function so that call number ``when`` raises a CUDA out-of-memory error."""

    def __init__(self, fn, when: int):
        self.fn, self.when, self.calls = fn, when, 0

    def __call__(self, x):
        self.calls += 1
        if self.calls == self.when:
            raise torch.cuda.OutOfMemoryError("CUDA out of memory (simulated)")
        return self.fn(x)


def test_out_of_memory_between_two_encodes_keeps_one_tile_plan(tiny_model):
    """Before: the engine halved its tile in the middle of a pair, so the two planes were tiled differently."""
    rng = np.random.default_rng(0)
    planes = (rng.random((2, 600, 600)) * 1000).astype(np.float32)
    engine = LatentFocus(tiny_model, "cpu", tile=512)
    norm = engine.normalizer(planes)
    tiles_per_plane = len(plan_tiles(600, 600, 512, engine.overlap))
    engine.model.encode = _FailsOnce(engine.model.encode, tiles_per_plane + 1)  # first tile of plane C
    out = engine.deblur(planes[0], planes[1], 0.5, norm)
    assert out.shape == (600, 600) and np.isfinite(out).all()
    assert engine.tile == 512 and engine.plan() == Plan(512, torch.device("cpu"))  # no per-call state
    reference = LatentFocus(tiny_model, "cpu", tile=256)
    expected = reference.deblur(planes[0], planes[1], 0.5, reference.normalizer(planes))
    np.testing.assert_allclose(out, expected, rtol=1e-4, atol=1e-2)


def test_a_plan_shrinks_its_tile_then_moves_to_the_cpu():
    plan = Plan(1024, torch.device("cuda"))
    assert plan.smaller(256) == Plan(512, torch.device("cuda"))
    assert Plan(256, torch.device("cuda")).smaller(256) == Plan(256, torch.device("cpu"))


def test_out_of_memory_in_a_stack_job_changes_only_that_call(tiny_model):
    """Before: the job reset its tile and emptied its caches in the middle of a restore, for all later calls."""
    from latent_focus.io import Stack
    from latent_focus.methods.latent import LatentParams, StackJob

    rng = np.random.default_rng(1)
    stack = Stack((rng.random((4, 600, 600)) * 1000).astype(np.float32))
    engine = LatentFocus(tiny_model, "cpu")
    params = LatentParams(alpha=0.5, strength="1", tile=512)
    job = StackJob(engine, stack, params, focus=0)
    tiles_per_plane = len(plan_tiles(600, 600, 512, engine.overlap))
    engine.model.encode = _FailsOnce(engine.model.encode, tiles_per_plane + 1)  # the second plane of the call
    out = job.restore(1, 2)
    assert job.plan.tile == 512 and out.info["device"] == engine.device_name
    reference = StackJob(LatentFocus(tiny_model, "cpu"), stack, params.replace(tile=256), focus=0).restore(1, 2)
    np.testing.assert_allclose(out.image, reference.image, rtol=1e-4, atol=1e-2)
    calls = engine.model.encode.calls
    again = job.restore(1, 2)  # the next call starts from the job's own plan, and encodes at 512 px
    assert engine.model.encode.calls == calls + 2 * tiles_per_plane
    fresh = StackJob(LatentFocus(tiny_model, "cpu"), stack, params, focus=0).restore(1, 2)
    np.testing.assert_allclose(again.image, fresh.image, rtol=1e-4, atol=1e-2)


def test_out_of_memory_on_decode_finishes_on_the_cpu(tiny_model, blurred_stack):
    """Before: the CPU fallback ran outside inference mode and raised on inference tensors."""
    engine = LatentFocus(tiny_model, "cpu")
    norm = engine.normalizer(blurred_stack)
    z = engine.encode(blurred_stack[2], norm)
    expected = engine.decode(z)
    engine.model.decode = _FailsOnce(engine.model.decode, 1)
    np.testing.assert_allclose(engine.decode(z), expected, rtol=1e-5, atol=1e-3)


def test_one_engine_serves_two_threads_one_at_a_time(tiny_model, blurred_stack):
    import threading
    import time

    engine = LatentFocus(tiny_model, "cpu")
    norm = engine.normalizer(blurred_stack)
    inside, most = [0], [0]
    encode = engine.model.encode

    def guarded(x):
        inside[0] += 1
        most[0] = max(most[0], inside[0])
        time.sleep(0.01)
        try:
            return encode(x)
        finally:
            inside[0] -= 1

    engine.model.encode = guarded
    threads = [threading.Thread(target=lambda: [engine.encode(p, norm) for p in blurred_stack]) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert most[0] == 1
