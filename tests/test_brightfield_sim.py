"""Brightfield simulation: white light, uneven illumination, and unchanged stacks by default."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from latent_focus.optics import brightfield_defocus, transmission_from_image
from latent_focus.simulate import defocus_stack

SCRIPT = Path(__file__).resolve().parents[1] / "scripts" / "make_training_data.py"


def _cells(n: int = 96) -> np.ndarray:
    yy, xx = np.mgrid[:n, :n]
    img = np.zeros((n, n))
    for cy, cx, r in ((30, 30, 9), (60, 55, 12), (25, 70, 6)):
        img += ((yy - cy) ** 2 + (xx - cx) ** 2 < r * r).astype(float)
    return img


def test_monochromatic_even_light_is_the_propagation_itself():
    """The defaults make exactly the stacks they made before (the shipped model's training data)."""
    img, z = _cells(), [-4.0, 0.0, 4.0]
    t = transmission_from_image(img, phase_rad=1.0, absorption=0.05)
    expected = brightfield_defocus(t, z, 0.55, 0.26, na_objective=0.6, na_condenser=0.3)
    got = defocus_stack(img, z, modality="brightfield", wavelength_um=0.55, pixel_size_um=0.26, na=0.6,
                        na_condenser=0.3, phase_rad=1.0, absorption=0.05)
    np.testing.assert_array_equal(got, expected)


def test_white_light_washes_out_the_fringes_of_far_defocus():
    img = _cells()
    kw = dict(modality="brightfield", wavelength_um=0.55, pixel_size_um=0.26, na=0.6, na_condenser=0.05,
              phase_rad=1.5, absorption=0.0)
    mono = defocus_stack(img, [20.0], **kw)[0]
    white = defocus_stack(img, [20.0], bandwidth_um=0.25, **kw)[0]
    fy, fx = np.meshgrid(np.fft.fftfreq(96), np.fft.fftfreq(96), indexing="ij")
    high = np.hypot(fy, fx) > 0.15

    def fine_power(plane):
        return float((np.abs(np.fft.fft2(plane - plane.mean())) ** 2)[high].sum())
    assert fine_power(white) < 0.7 * fine_power(mono)
    assert abs(white.mean() - mono.mean()) < 0.01  # the same light, only less coherent


def test_shading_is_one_ramp_for_every_plane():
    img = np.zeros((64, 64))
    img[30:34, 30:34] = 1
    stack = defocus_stack(img, [-2.0, 2.0], modality="brightfield", pixel_size_um=0.26, na=0.5, phase_rad=0.2,
                          absorption=0.0, photons=1e6, read_noise_e=0.0, bit_depth=None, offset=0.0,
                          shading=0.1, seed=3)
    flat = defocus_stack(img, [-2.0, 2.0], modality="brightfield", pixel_size_um=0.26, na=0.5, phase_rad=0.2,
                         absorption=0.0, photons=1e6, read_noise_e=0.0, bit_depth=None, offset=0.0, seed=3)
    gain = stack / flat
    assert gain.min() == pytest.approx(0.9, abs=0.01) and gain.max() == pytest.approx(1.1, abs=0.01)
    np.testing.assert_allclose(gain[0], gain[1], atol=0.01)


@pytest.mark.parametrize("args, message", [
    (["--brightfield-condenser", "0.5", "0.2"], "--brightfield-condenser needs 0 < MIN <= MAX; got 0.5 0.2"),
    (["--brightfield-phase", "0", "2"], "--brightfield-phase needs 0 < MIN <= MAX; got 0 2"),
])
def test_make_training_data_refuses_bad_brightfield_ranges(tmp_path, args, message):
    out = tmp_path / "out"
    proc = subprocess.run([sys.executable, str(SCRIPT), str(out), "--cells3d", "c.tif", "--bead", "b.tif", *args],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2 and message in proc.stderr.splitlines()[-1]
    assert not out.exists()
