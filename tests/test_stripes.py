"""No stripe texture in decoded planes: the metric sees faint stripes, and the shipped model makes none."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from latent_focus.engine import LatentFocus
from latent_focus.io import read_stack
from latent_focus.latent import mix
from latent_focus.metrics import stripe_excess
from latent_focus.models.multiscale import FoldNotch

SAMPLE = Path(__file__).resolve().parents[1] / "src" / "latent_focus" / "data" / "sample" / "nuclei_defocus.tif"


def _smooth_noisy(seed: int, shape=(128, 128)) -> tuple[np.ndarray, np.ndarray]:
    """A smooth field plus noise, and its isotropically smoothed (denoised) version."""
    rng = np.random.default_rng(seed)
    fy, fx = np.fft.fftfreq(shape[0])[:, None], np.fft.fftfreq(shape[1])[None, :]

    def blur(a, sigma):
        return np.real(np.fft.ifft2(np.fft.fft2(a) * np.exp(-2 * (np.pi * sigma) ** 2 * (fy ** 2 + fx ** 2))))
    noisy = blur(rng.normal(size=shape), 3) + 0.02 * rng.normal(size=shape)
    return noisy, blur(noisy, 1.5)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_stripe_excess_sees_faint_stripes_and_nothing_else(seed):
    noisy, smooth = _smooth_noisy(seed)
    assert stripe_excess(noisy, noisy) <= 1.0
    assert stripe_excess(smooth, noisy) < 2  # denoised, no stripes
    for offsets in ((slice(None), slice(None, None, 2)), (slice(None, None, 2), slice(None))):
        striped = smooth.copy()
        striped[offsets] += 0.0005  # 1/40 of the noise: invisible without stretching the contrast
        assert stripe_excess(striped, noisy) > 100


def test_fold_notch_removes_a_pixel_period_stripe_and_keeps_ramps_and_edges():
    """Edges as sharp as the optics let them be (blurred by 1 px) pass; a pixel-sharp step would lose 5 %."""
    noisy, smooth = _smooth_noisy(3)
    fine = smooth + 0.002 * np.random.default_rng(3).normal(size=smooth.shape)  # some texture at every frequency
    plane = torch.from_numpy(fine.astype(np.float32))[None, None]
    ramp = torch.linspace(0, 1, 128).view(1, 1, 1, 128).expand(1, 1, 128, 128).contiguous()
    x = torch.arange(128, dtype=torch.float32) - 63.5
    edge = (0.5 * (1 + torch.erf(x / 2 ** 0.5))).view(1, 1, 1, 128).expand(1, 1, 128, 128)  # blurred by 1 px
    columns = torch.tensor([0.01, -0.01]).repeat(64)
    striped = plane + columns.view(1, 1, 1, 128) + 0.5 * columns.view(1, 1, 128, 1)  # column and row stripes
    notch = FoldNotch()
    inner = (..., slice(24, -24), slice(24, -24))  # away from the borders
    assert stripe_excess(notch(striped)[0, 0].numpy(), noisy) < 2 < stripe_excess(striped[0, 0].numpy(), noisy)
    assert torch.allclose(notch(striped)[inner], notch(plane)[inner], atol=1e-4)
    assert torch.allclose(notch(ramp)[inner], ramp[inner], atol=5e-4)  # 0.05 % of the ramp
    assert (notch(edge) - edge)[inner].abs().max() < 0.002


def test_shipped_model_decodes_the_sample_without_stripes():
    """At t = 1 the panel shows the model's own decoding of plane B; it must not add a stripe texture.

    Without the decoder's notch at the 2 x 2 fold's frequencies (``models.multiscale.FoldNotch``) the shipped
    model scores 6-72 here (the stripes of the fold's four output channels).
    """
    stack = read_stack(SAMPLE)
    engine = LatentFocus(None, "cpu")
    norm = engine.normalizer(stack.data)
    scores = []
    for b, c in ((0, 1), (4, 5), (8, 7)):
        z_b, z_c = engine.encode_pair(stack.data[b], stack.data[c], norm)
        scores.append(stripe_excess(engine.decode(mix(z_b, z_c, 1.0)), stack.data[b]))
    assert max(scores) < 3, scores
