import numpy as np
import pytest
import torch

from latent_focus import InputError, alpha_from_defocus, extrapolate, interpolate
from latent_focus.latent import check_alpha, check_strength, damp_alpha


def test_interpolate_matches_eq1():
    za, zc = np.array([1.0, 2.0]), np.array([3.0, 6.0])
    assert np.allclose(interpolate(za, zc, 0.25), 0.25 * za + 0.75 * zc)
    assert np.allclose(interpolate(za, zc, 1.0), za)


def test_extrapolate_inverts_interpolate():
    za, zc = torch.randn(4, 8), torch.randn(4, 8)
    for alpha in (0.2, 0.5, 0.9):
        zb = interpolate(za, zc, alpha)
        assert torch.allclose(extrapolate(zb, zc, alpha), za, atol=1e-5)


def test_multiscale_latents_are_mixed_per_part():
    za = (torch.ones(1, 2, 4, 4), torch.zeros(1, 3, 2, 2))
    zc = (torch.zeros(1, 2, 4, 4), torch.ones(1, 3, 2, 2))
    out = interpolate(za, zc, 0.3)
    assert isinstance(out, tuple) and len(out) == 2
    assert torch.allclose(out[0], torch.full_like(out[0], 0.3))
    assert torch.allclose(out[1], torch.full_like(out[1], 0.7))


def test_alpha_from_defocus():
    assert alpha_from_defocus(2.0, 8.0) == pytest.approx(0.75)
    assert alpha_from_defocus(-2.0, -4.0) == pytest.approx(0.5)
    with pytest.raises(InputError):
        alpha_from_defocus(2.0, -4.0)  # opposite sides of focus
    with pytest.raises(InputError):
        alpha_from_defocus(5.0, 4.0)  # b blurrier than c


@pytest.mark.parametrize("bad", [0.0, -0.1, 1.01, float("nan"), float("inf"), "x"])
def test_alpha_outside_range_is_rejected(bad):
    with pytest.raises(InputError, match="alpha"):
        check_alpha(bad)


def test_damped_alpha_takes_that_fraction_of_the_extrapolation_step():
    zb, zc = torch.randn(4, 8), torch.randn(4, 8)
    for alpha in (0.25, 0.5, 0.8):
        full = extrapolate(zb, zc, alpha)
        assert damp_alpha(alpha, 1.0) == pytest.approx(alpha)
        for s in (0.2, 0.6):
            assert torch.allclose(extrapolate(zb, zc, damp_alpha(alpha, s)), zb + s * (full - zb), atol=1e-5)
    assert damp_alpha(0.5, 0.2) > damp_alpha(0.5, 0.6) > 0.5  # weaker: alpha closer to 1 (to plane B)


@pytest.mark.parametrize("bad", [0.0, -0.5, 1.5, float("nan"), "strong"])
def test_strength_outside_range_is_rejected(bad):
    with pytest.raises(InputError, match="strength"):
        check_strength(bad)
