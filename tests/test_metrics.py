import numpy as np
import pytest

from latent_focus.metrics import apd, focus_measure, lds, linearity_by_side, psnr, ssim


def test_psnr_hand_computed():
    ref = np.array([[0.0, 1.0], [1.0, 0.0]])
    img = ref + np.array([[0.1, -0.1], [0.1, -0.1]])
    # max(I) = 1, RMSE = 0.1 -> 20 dB
    assert psnr(ref, img) == pytest.approx(20.0)
    assert psnr(ref, ref) == float("inf")


def test_ssim_identity_and_degradation():
    rng = np.random.default_rng(0)
    x = rng.random((64, 64))
    assert ssim(x, x) == pytest.approx(1.0)
    assert ssim(x, x + rng.normal(0, 0.2, x.shape)) < 0.8
    assert ssim(x, 1 - x) < 0


def test_lds_apd_collinear_equally_spaced():
    base, step = np.random.default_rng(0).normal(size=(2, 50))
    latents = [base + k * step for k in range(5)]
    assert lds(latents) == pytest.approx(1.0)
    assert apd(latents) == pytest.approx(0.0, abs=1e-12)


def test_lds_hand_computed_right_angle():
    # differences (1,0) then (0,1): cosine 0
    latents = [np.array([0.0, 0.0]), np.array([1.0, 0.0]), np.array([1.0, 1.0])]
    assert lds(latents) == pytest.approx(0.0)


def test_lds_reversal_is_minus_one():
    latents = [np.array([0.0]), np.array([1.0]), np.array([0.0])]
    assert lds(latents) == pytest.approx(-1.0)


def test_apd_hand_computed_uneven_spacing():
    # points 0, 1, 3 on a line: steps 1 and 2, interpolated steps 1.5 and 1.5, total 3
    latents = [np.array([0.0]), np.array([1.0]), np.array([3.0])]
    assert apd(latents) == pytest.approx((0.5 + 0.5) / 2 / 3)


def test_apd_at_the_planes_spacing():
    # the same points at positions 0, 1, 3: evenly paced along the line, so nothing to penalise
    latents = [np.array([0.0]), np.array([1.0]), np.array([3.0])]
    assert apd(latents, [0.0, 1.0, 3.0]) == pytest.approx(0.0, abs=1e-12)
    assert apd(latents, [0.0, 1.5, 3.0]) == pytest.approx(apd(latents))
    # positions 0, 2, 3: reference steps 2 and 1 against real steps 1 and 2
    assert apd(latents, [0.0, 2.0, 3.0]) == pytest.approx((1 + 1) / 2 / 3)
    with pytest.raises(ValueError, match="one position per latent"):
        apd(latents, [0.0, 1.0])
    with pytest.raises(ValueError, match="first and last"):
        apd(latents, [1.0, 2.0, 1.0])


def test_metrics_accept_multiscale_latents():
    latents = [(np.full(3, k), np.full(2, 2.0 * k)) for k in range(4)]
    assert lds(latents) == pytest.approx(1.0)


def test_focus_measure_prefers_sharp(blurred_stack):
    fm = [focus_measure(p) for p in blurred_stack]
    assert np.argmax(fm) == 0
    assert all(a > b for a, b in zip(fm, fm[1:]))


def test_linearity_by_side_orders_planes_outward_from_focus():
    # planes at z = -3..2 um, focus at index 3 (z = 0): latents on a line, equally spaced below focus,
    # unevenly above it (0 -> 1 -> 3), and too few planes above for a score when one is dropped
    positions = [-3.0, -2.0, -1.0, 0.0, 1.0, 3.0]
    latents = [np.array([abs(p), 0.0]) for p in positions]
    scores = linearity_by_side(latents.__getitem__, positions, 3)
    below, above = scores["below"], scores["above"]
    assert below.planes == [3, 2, 1, 0] and above.planes == [3, 4, 5]
    assert (below.lds, below.apd, below.apd_spaced) == (pytest.approx(1.0), pytest.approx(0.0), pytest.approx(0.0))
    assert above.apd == pytest.approx(apd(latents[3:])) and above.apd > 0.1
    assert above.apd_spaced == pytest.approx(0.0, abs=1e-12)
    assert set(linearity_by_side(latents.__getitem__, positions[:5], 3)) == {"below"}
