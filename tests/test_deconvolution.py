"""Richardson-Lucy baseline, its spatially-variant tiled form and the per-patch defocus estimator."""

from __future__ import annotations

import numpy as np
import pytest
import tifffile

from conftest import SHARED_DATA as SHARED
from latent_focus.errors import InputError
from latent_focus.optics import born_wolf_psf, fft_convolve
from latent_focus.optics.deconvolution import (
    bead_psf,
    estimate_defocus_psf,
    optics_psf,
    richardson_lucy,
    richardson_lucy_tiled,
)
from latent_focus.simulate import defocus_stack
from latent_focus.tiling import plan_tiles

OPTICS = dict(na=0.75, wavelength_um=0.52, n_immersion=1.0, pixel_size_um=0.26)


def psnr(x: np.ndarray, truth: np.ndarray) -> float:
    return float(10 * np.log10(truth.max() ** 2 / np.mean((x - truth) ** 2)))


def synthetic_object(shape=(128, 128), seed=0) -> np.ndarray:
    """Sparse blobs and lines on a dark background, peak ~1000 photons."""
    rng = np.random.default_rng(seed)
    img = np.zeros(shape)
    yy, xx = np.mgrid[:shape[0], :shape[1]]
    for _ in range(25):
        cy, cx = rng.uniform(0, shape[0]), rng.uniform(0, shape[1])
        r = rng.uniform(2, 7)
        img += rng.uniform(0.3, 1.0) * np.exp(-((yy - cy) ** 2 + (xx - cx) ** 2) / (2 * r ** 2))
    img[shape[0] // 3, 10:-10] += 1.0
    img[10:-10, shape[1] // 2] += 0.8
    return 1000 * img / img.max()


@pytest.fixture(scope="module")
def nuclei() -> np.ndarray:
    path = SHARED / "cells3d_nuclei_confocal" / "stack.tif"
    assert path.exists(), f"real test data expected at {path} (set LATENT_FOCUS_SHARED_DATA)"
    obj = tifffile.imread(path)[32].astype(np.float64)
    obj = np.clip(obj - np.percentile(obj, 2), 0, None)
    return 1000 * obj / np.percentile(obj, 99.9)


def test_rl_improves_psnr_on_synthetic_image():
    truth = synthetic_object()
    psf = born_wolf_psf(1.5, **OPTICS, size=31)
    blurred = fft_convolve(truth, psf)
    noisy = np.random.default_rng(1).poisson(blurred + 100.0).astype(np.float32)
    out = richardson_lucy(noisy, psf, 30)
    assert out.dtype == np.float32 and out.shape == noisy.shape
    assert out.min() >= 0
    before, after = psnr(noisy - 100.0, truth), psnr(out - 100.0, truth)
    assert after > before + 1.5, (before, after)


@pytest.mark.real_data
def test_rl_improves_psnr_on_real_nuclei(nuclei):
    psf = born_wolf_psf(2.0, **OPTICS, size=41)
    blurred = defocus_stack(nuclei, [2.0], **OPTICS)[0]
    noisy = np.random.default_rng(2).poisson(blurred + 50.0).astype(np.float32)
    out = richardson_lucy(noisy, psf, 30)
    assert psnr(out - 50.0, nuclei) > psnr(noisy - 50.0, nuclei) + 1.0


def test_rl_with_delta_psf_returns_input():
    img = np.random.default_rng(3).uniform(100, 200, (48, 40)).astype(np.float32)
    delta = np.zeros((5, 5))
    delta[2, 2] = 1.0
    np.testing.assert_allclose(richardson_lucy(img, delta, 20, background=None), img, rtol=1e-4)
    # with a background estimate, every pixel at or above the background comes back unchanged
    out = richardson_lucy(img, delta, 20)
    bg = np.percentile(img, 1)
    np.testing.assert_allclose(out[img >= bg], img[img >= bg], rtol=1e-4)
    np.testing.assert_array_equal(richardson_lucy(img, delta, 0), img)


def test_rl_background_offset_is_transparent():
    truth = synthetic_object((96, 96), seed=4)
    psf = born_wolf_psf(1.0, **OPTICS, size=21)
    blurred = fft_convolve(truth, psf) + 20.0
    a = richardson_lucy(blurred, psf, 15)
    b = richardson_lucy(blurred + 500.0, psf, 15)
    np.testing.assert_allclose(b - 500.0, a, atol=0.05 * truth.max() / 100)


def test_rl_conserves_flux_with_periodic_edges():
    truth = synthetic_object((64, 64), seed=5)
    psf = born_wolf_psf(1.0, **OPTICS, size=21)
    blurred = fft_convolve(truth, psf, mode="wrap")
    out = richardson_lucy(blurred, psf, 20, background=None, pad="wrap")
    assert out.sum() == pytest.approx(blurred.sum(), rel=1e-3)


def test_rl_bad_arguments():
    img = np.ones((16, 16))
    with pytest.raises(InputError, match="psf"):
        richardson_lucy(img, -np.ones((3, 3)))
    with pytest.raises(InputError, match="iterations"):
        richardson_lucy(img, np.ones((3, 3)), -1)
    with pytest.raises(InputError, match="empty"):
        richardson_lucy(np.ones((0, 5)), np.ones((3, 3)))
    with pytest.raises(InputError, match="2-D"):
        richardson_lucy(np.ones((2, 8, 8)), np.ones((3, 3)))
    with pytest.raises(InputError, match="NaN"):
        richardson_lucy(np.full((8, 8), np.nan), np.ones((3, 3)))


def test_tiled_with_one_psf_matches_global_rl():
    truth = synthetic_object((160, 160), seed=6)
    psf = born_wolf_psf(1.5, **OPTICS, size=21)
    blurred = fft_convolve(truth, psf) + 50.0
    full = richardson_lucy(blurred, psf, 20)
    tiled = richardson_lucy_tiled(blurred, psf, tile=64, overlap=24, iterations=20)
    assert tiled.shape == blurred.shape and tiled.dtype == np.float32
    err = np.abs(tiled - full)[12:-12, 12:-12]
    assert err.mean() < 0.01 * truth.max()
    assert psnr(tiled - 50.0, truth) > psnr(blurred - 50.0, truth) + 1.0


def test_tiled_spatially_variant_beats_single_psf():
    # left half defocused by 1 um, right half by 3 um: per-tile PSFs restore both halves
    truth = synthetic_object((128, 256), seed=7)
    k1, k3 = born_wolf_psf(1.0, **OPTICS, size=41), born_wolf_psf(3.0, **OPTICS, size=41)
    b1, b3 = fft_convolve(truth, k1), fft_convolve(truth, k3)
    blurred = np.concatenate([b1[:, :128], b3[:, 128:]], axis=1)
    tile, overlap = 64, 16
    boxes = plan_tiles(*blurred.shape, tile, overlap)

    def psf_for(box):
        return k1 if (box[2] + box[3]) / 2 < 128 else k3

    variant = richardson_lucy_tiled(blurred, psf_for, tile, overlap, iterations=25, background=None)
    single = richardson_lucy(blurred, born_wolf_psf(2.0, **OPTICS, size=41), 25, background=None)
    inner = (slice(8, -8), np.r_[8:112, 144:248])
    assert psnr(variant[inner], truth[inner]) > psnr(single[inner], truth[inner]) + 0.5
    # the same PSFs as a sequence or a (rows, cols, ky, kx) grid give the same result
    seq = [psf_for(b) for b in boxes]
    np.testing.assert_allclose(richardson_lucy_tiled(blurred, seq, tile, overlap, 25, background=None), variant,
                               atol=1e-3)
    rows, cols = sorted({b[0] for b in boxes}), sorted({b[2] for b in boxes})
    grid = np.stack([np.stack([psf_for((r, r + tile, c, c + tile)) for c in cols]) for r in rows])
    np.testing.assert_allclose(richardson_lucy_tiled(blurred, grid, tile, overlap, 25, background=None), variant,
                               atol=1e-3)
    with pytest.raises(InputError, match="one PSF per tile"):
        richardson_lucy_tiled(blurred, seq[:-1], tile, overlap)
    with pytest.raises(InputError, match="tile"):
        richardson_lucy_tiled(blurred, k1, tile=16, overlap=16)


@pytest.mark.real_data
@pytest.mark.parametrize("z_true", [1.0, 2.0, 3.0, 4.0])
def test_estimate_defocus_on_real_nuclei(nuclei, z_true):
    blurred = defocus_stack(nuclei, [z_true], **OPTICS)[0]
    noisy = np.random.default_rng(int(z_true * 10)).poisson(blurred + 50.0).astype(np.float32)
    cands = np.arange(0.0, 4.01, 0.5)
    z, psf, scores = estimate_defocus_psf(noisy[64:192, 64:192], cands, **OPTICS, size=31, return_scores=True)
    assert abs(z - z_true) <= 0.5
    assert psf.shape == (31, 31) and psf.sum() == pytest.approx(1.0)
    assert scores.shape == cands.shape
    np.testing.assert_allclose(psf, born_wolf_psf(z, **OPTICS, size=31))


@pytest.mark.real_data
def test_estimate_defocus_then_tiled_deconvolution(nuclei):
    # estimate a PSF per tile of a tilted-focus image and deconvolve: better than the blurred input
    left = defocus_stack(nuclei, [1.0], **OPTICS)[0]
    right = defocus_stack(nuclei, [3.0], **OPTICS)[0]
    img = np.concatenate([left[:, :128], right[:, 128:]], axis=1)
    tile, overlap = 128, 32
    boxes = plan_tiles(*img.shape, tile, overlap)
    cands = [0.0, 1.0, 2.0, 3.0, 4.0]
    est = {b: estimate_defocus_psf(img[b[0]:b[1], b[2]:b[3]], cands, **OPTICS, size=41) for b in boxes}
    for b, (z, _) in est.items():
        if b[3] <= 128:
            assert z == 1.0
        elif b[2] >= 128:
            assert z == 3.0
        # tiles straddling the (unphysical) sharp seam between the halves are not checked
    out = richardson_lucy_tiled(img, [est[b][1] for b in boxes], tile, overlap, iterations=20, background=None)
    assert psnr(out, nuclei) > psnr(img, nuclei) + 1.0


def test_estimate_defocus_bad_input():
    with pytest.raises(InputError, match="16x16"):
        estimate_defocus_psf(np.ones((8, 8)), [0.0, 1.0])
    with pytest.raises(InputError, match="structure"):
        estimate_defocus_psf(np.ones((64, 64)), [0.0, 1.0])
    with pytest.raises(InputError, match="candidates"):
        estimate_defocus_psf(np.random.default_rng(0).random((64, 64)), [])


def test_optics_psf_is_born_wolf_at_each_defocus():
    psf = optics_psf(0.75, 0.52, 1.0, 0.26)
    for d in (0.0, 1.5, -3.0):
        np.testing.assert_allclose(psf(d), born_wolf_psf(d, 0.75, 0.52, 1.0, 0.26))
    with pytest.raises(InputError):
        optics_psf(1.4, 0.52, 1.0, 0.26)  # NA above the immersion index


def test_bead_psf_same_sampling_and_resampled():
    yy, xx = np.mgrid[-10:11, -10:11]
    widths = np.abs(np.arange(9) - 4) + 1.0
    stack = np.stack([np.exp(-(yy ** 2 + xx ** 2) / (2 * w * w)) / (2 * np.pi * w * w) for w in widths])
    same = bead_psf(stack)  # defocus in planes, brightest plane = 0
    for d in (-2, 0, 3):
        k = same(d)
        assert k.shape == (21, 21) and abs(k.sum() - 1) < 1e-9
        ref = stack[4 + d] / stack[4 + d].sum()  # bead_psf removes the frame's background: tails differ
        np.testing.assert_allclose(k, ref, atol=0.05 * ref.max())
    # 0.1 um PSF pixels onto 0.2 um image pixels, z in um: half as many pixels, same physical width
    fine = bead_psf(stack, np.arange(9) * 0.5, 0.1, 0.2)(1.0)
    assert fine.shape[0] < 21 and abs(fine.sum() - 1) < 1e-9
    with pytest.raises(InputError):
        bead_psf(stack, np.arange(9) * 0.5)  # z positions without pixel sizes
    with pytest.raises(InputError):
        bead_psf(stack[0])
