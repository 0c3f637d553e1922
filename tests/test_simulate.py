"""Defocus simulator: PSF models, bead PSFs, brightfield propagation, camera noise, stacks and sample data."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import pytest
import tifffile

from conftest import SHARED_DATA as SHARED
from latent_focus.errors import InputError
from latent_focus.optics import (
    add_camera_noise,
    born_wolf_psf,
    brightfield_defocus,
    fft_convolve,
    gibson_lanni_psf,
    psf_from_bead_stack,
    transmission_from_image,
)
from latent_focus.simulate import defocus_stack, make_sample_stack

REPO = Path(__file__).resolve().parents[1]
SAMPLE = REPO / "src" / "latent_focus" / "data" / "sample" / "nuclei_defocus.tif"


def shared(name: str) -> Path:
    path = SHARED / name / "stack.tif"
    assert path.exists(), f"real test data expected at {path} (set LATENT_FOCUS_SHARED_DATA)"
    return path


def read_z(name: str) -> np.ndarray:
    return np.loadtxt(SHARED / name / "z.txt")[:, 1]


def second_moment(psf: np.ndarray) -> float:
    c = np.array(psf.shape) // 2
    yy, xx = np.mgrid[:psf.shape[0], :psf.shape[1]]
    return float(np.sqrt((psf * ((yy - c[0]) ** 2 + (xx - c[1]) ** 2)).sum()))


def focus_curve(stack: np.ndarray, bin_: int = 1) -> np.ndarray:
    """Variance of the Laplacian per plane, each plane normalised by its mean (optionally binned first)."""
    out = []
    for p in np.asarray(stack, dtype=np.float64):
        if bin_ > 1:
            h, w = (p.shape[0] // bin_) * bin_, (p.shape[1] // bin_) * bin_
            p = p[:h, :w].reshape(h // bin_, bin_, w // bin_, bin_).mean(axis=(1, 3))
        lap = -4 * p[1:-1, 1:-1] + p[:-2, 1:-1] + p[2:, 1:-1] + p[1:-1, :-2] + p[1:-1, 2:]
        out.append(lap.var() / p.mean() ** 2)
    return np.asarray(out)


def smooth_texture(shape, corr_px: float, seed: int) -> np.ndarray:
    """Random smooth field in [0, 1] with correlation length ~corr_px pixels."""
    rng = np.random.default_rng(seed)
    f = np.fft.rfft2(rng.standard_normal(shape))
    fy = np.fft.fftfreq(shape[0])[:, None]
    fx = np.fft.rfftfreq(shape[1])[None, :]
    f *= np.exp(-2 * (np.pi * corr_px) ** 2 * (fy ** 2 + fx ** 2))
    t = np.fft.irfft2(f, s=shape)
    return (t - t.min()) / (t.max() - t.min())


# ----------------------------------------------------------------------------------------------- PSFs

@pytest.mark.parametrize("z", [0.0, 1.0, -2.5, 4.0])
def test_born_wolf_sums_to_one_and_is_symmetric(z):
    psf = born_wolf_psf(z, na=0.75, wavelength_um=0.52, n_immersion=1.0, pixel_size_um=0.26, size=41)
    assert psf.shape == (41, 41)
    assert psf.sum() == pytest.approx(1.0, abs=1e-9)
    assert (psf >= 0).all()
    np.testing.assert_allclose(psf, psf[::-1, :], atol=1e-12)
    np.testing.assert_allclose(psf, psf[:, ::-1], atol=1e-12)
    np.testing.assert_allclose(psf, psf.T, atol=1e-12)
    # 90-degree rotation symmetry (radial model on a square grid)
    np.testing.assert_allclose(psf, np.rot90(psf), atol=1e-12)
    if z == 0:
        assert np.unravel_index(np.argmax(psf), psf.shape) == (20, 20)


def test_born_wolf_widens_with_defocus_and_is_even_in_z():
    kw = dict(na=0.8, wavelength_um=0.52, n_immersion=1.0, pixel_size_um=0.2, size=81)
    widths = [second_moment(born_wolf_psf(z, **kw)) for z in (0.0, 1.0, 2.0, 3.0, 4.0)]
    assert np.all(np.diff(widths) > 0), widths
    peaks = [born_wolf_psf(z, **kw).max() for z in (0.0, 1.0, 2.0, 3.0, 4.0)]
    assert np.all(np.diff(peaks) < 0), peaks
    np.testing.assert_allclose(born_wolf_psf(1.5, **kw), born_wolf_psf(-1.5, **kw), atol=1e-12)
    # geometric blur radius |z| tan(asin(NA)) -> second moment of a uniform disc R / sqrt(2) (in pixels)
    r_geo = 4.0 * np.tan(np.arcsin(0.8)) / 0.2
    assert 0.6 * r_geo / np.sqrt(2) < widths[-1] < 1.4 * r_geo / np.sqrt(2)


def test_in_focus_width_matches_airy():
    # pixel 0.05 um resolves the Airy disc; the first dark ring is at 0.61 lambda / NA
    psf = born_wolf_psf(0.0, na=1.0, wavelength_um=0.5, n_immersion=1.33, pixel_size_um=0.05, size=41)
    profile = psf[20, 20:]
    first_min = int(np.argmax(np.diff(profile) > 0))
    assert abs(first_min * 0.05 - 0.61 * 0.5 / 1.0) <= 0.05


def test_gibson_lanni_matches_born_wolf_without_mismatch():
    for z in (0.0, 1.0, -2.0):
        bw = born_wolf_psf(z, 1.2, 0.52, 1.33, 0.1, 45)
        gl = gibson_lanni_psf(z, 1.2, 0.52, n_immersion=1.33, n_sample=1.33, depth_um=15.0, pixel_size_um=0.1,
                              size=45)
        np.testing.assert_allclose(gl, bw, atol=1e-10)
    # depth 0 also removes the aberration
    gl0 = gibson_lanni_psf(1.0, 1.4, 0.52, 1.515, 1.33, 0.0, 0.1, 45)
    assert gl0.sum() == pytest.approx(1.0)


def test_gibson_lanni_mismatch_aberrates_and_shifts_focus():
    kw = dict(na=1.4, wavelength_um=0.52, n_immersion=1.515, n_sample=1.33, depth_um=10.0, pixel_size_um=0.1,
              size=65)
    zs = np.arange(-4.0, 1.01, 0.25)
    peaks = np.array([gibson_lanni_psf(z, **kw).max() for z in zs])
    best = zs[np.argmax(peaks)]
    assert best < -0.5  # oil objective into water: the focus lies shallower than nominal
    ideal = born_wolf_psf(0.0, 1.33, 0.52, 1.515, 0.1, 65).max()
    assert peaks.max() < 0.8 * ideal  # spherical aberration lowers the peak even at best focus
    psf = gibson_lanni_psf(best, **kw)
    assert psf.sum() == pytest.approx(1.0)
    np.testing.assert_allclose(psf, psf.T, atol=1e-12)


@pytest.mark.parametrize("kwargs, match", [
    (dict(na=-0.5), "positive"),
    (dict(na=1.2, n_immersion=1.0), "exceeds"),
    (dict(wavelength_um=520.0), "nanometres"),
    (dict(pixel_size_um=0.0), "positive"),
    (dict(size=2), "size"),
])
def test_psf_bad_arguments_raise_input_error(kwargs, match):
    base = dict(defocus_um=1.0, na=0.75, wavelength_um=0.52, n_immersion=1.0, pixel_size_um=0.1, size=21)
    base.update(kwargs)
    with pytest.raises(InputError, match=match):
        born_wolf_psf(**base)


def test_gibson_lanni_negative_depth_raises():
    with pytest.raises(InputError, match="depth_um"):
        gibson_lanni_psf(0.0, 1.4, 0.52, 1.515, 1.33, -1.0, 0.1, 21)


# ----------------------------------------------------------------------------------------------- bead PSF

@pytest.mark.real_data
def test_bead_psf_from_measured_stack():
    bead = tifffile.imread(shared("psf_widefield_bead_560nm"))
    z = read_z("psf_widefield_bead_560nm")
    k0 = psf_from_bead_stack(bead, z, 0.1003, target_pixel_um=0.26, target_defocus_um=0.0, size=21)
    assert k0.shape == (21, 21)
    assert k0.sum() == pytest.approx(1.0)
    assert (k0 >= 0).all()
    assert np.unravel_index(np.argmax(k0), k0.shape) == (10, 10)
    widths = [second_moment(psf_from_bead_stack(bead, z, 0.1003, 0.26, dz, size=21)) for dz in (0.0, 1.5, 3.0)]
    assert widths[0] < widths[1] < widths[2]
    # interpolation between planes lies between its neighbours
    ka = psf_from_bead_stack(bead, z, 0.1003, 0.26, 1.0, size=21)
    kb = psf_from_bead_stack(bead, z, 0.1003, 0.26, 1.1, size=21)
    km = psf_from_bead_stack(bead, z, 0.1003, 0.26, 1.05, size=21)
    assert min(ka.max(), kb.max()) - 1e-6 <= km.max() <= max(ka.max(), kb.max()) + 1e-6
    with pytest.raises(InputError, match="outside"):
        psf_from_bead_stack(bead, z, 0.1003, 0.26, 9.0)


def test_bead_psf_recovers_synthetic_bead_off_centre():
    # a Born-Wolf stack shifted by a sub-pixel offset is re-centred and resampled without losing energy
    zs = np.linspace(-2, 2, 9)
    stack = np.stack([born_wolf_psf(z, 0.8, 0.52, 1.0, 0.1, 63) for z in zs])
    stack = np.roll(stack, (3, -2), axis=(1, 2)) * 1000 + 100
    k = psf_from_bead_stack(stack, zs, 0.1, 0.2, 0.0, size=25)
    ref = born_wolf_psf(0.0, 0.8, 0.52, 1.0, 0.2, 25)
    assert np.unravel_index(np.argmax(k), k.shape) == (12, 12)
    assert np.abs(k - ref).sum() < 0.15


@pytest.mark.real_data
def test_defocus_stack_with_bead_psf():
    bead = tifffile.imread(shared("psf_widefield_bead_560nm"))
    z = read_z("psf_widefield_bead_560nm")
    img = smooth_texture((96, 96), 1.5, 3) ** 4
    st = defocus_stack(img, [-2.0, 0.0, 2.0], psf=bead, psf_z_um=z, psf_pixel_um=0.1003, pixel_size_um=0.2)
    assert st.shape == (3, 96, 96) and st.dtype == np.float32
    c = focus_curve(st)
    assert c[1] > c[0] and c[1] > c[2]
    with pytest.raises(InputError, match="psf_z_um"):
        defocus_stack(img, [0.0], psf=bead)


# ----------------------------------------------------------------------------------------------- brightfield

def test_brightfield_phase_contrast_inverts_through_focus():
    phi = smooth_texture((128, 128), 2.0, 7)
    t = np.exp(1j * 0.5 * phi)
    i_pos, i_zero, i_neg = brightfield_defocus(t, [2.0, 0.0, -2.0], wavelength_um=0.55, pixel_size_um=0.2,
                                               na_objective=0.75, na_condenser=0.2)
    a, b = (i_pos - i_pos.mean()).ravel(), (i_neg - i_neg.mean()).ravel()
    corr = float(a @ b / np.sqrt((a @ a) * (b @ b)))
    assert corr < -0.5
    # a pure phase object is (nearly) invisible in focus
    assert i_zero.std() < 0.2 * min(i_pos.std(), i_neg.std())
    # energy is conserved for a transparent object (mean intensity ~ 1)
    assert abs(i_pos.mean() - 1) < 0.05


def test_brightfield_clear_field_and_amplitude_object():
    flat = brightfield_defocus(np.ones((32, 32)), 3.0, 0.55, 0.2, 0.5, 0.3)
    np.testing.assert_allclose(flat, 1.0, atol=1e-4)
    # absorption contrast is strongest in focus and does not invert
    amp = 1 - 0.3 * smooth_texture((96, 96), 2.0, 1)
    i_pos, i_zero, i_neg = brightfield_defocus(amp, [2.0, 0.0, -2.0], 0.55, 0.2, 0.75, 0.3)
    a, b = (i_pos - i_pos.mean()).ravel(), (i_neg - i_neg.mean()).ravel()
    assert a @ b > 0
    assert i_zero.std() > i_pos.std()


@pytest.mark.real_data
def test_brightfield_focus_curve_matches_real_series():
    real = tifffile.imread(shared("brightfield_hela_set1"))
    z_real = read_z("brightfield_hela_set1")
    c_real = focus_curve(real, bin_=4)
    assert int(np.argmax(c_real)) in (2, 3)  # the two near-focus planes
    # simulate the same z sampling (relative to the in-focus plane 2) for a mostly-phase object
    z_rel = z_real - z_real[2]
    obj = tifffile.imread(shared("cells3d_nuclei_confocal"))[32].astype(np.float64)
    sim = defocus_stack(obj, z_rel, modality="brightfield", pixel_size_um=0.2005, na=0.75, wavelength_um=0.55,
                        na_condenser=0.3, phase_rad=1.0, absorption=0.05)
    c = focus_curve(sim, bin_=4)
    c /= c.max()
    assert int(np.argmax(c)) in (2, 3)  # single maximum at the near-focus planes
    assert c[1] < c[2] and c[4] < c[3]  # decreases away from focus on both sides
    assert c[0] < c[1] and c[5] < c[4]
    # roughly symmetric: planes at about -10/+10 um and -25/+25 um have comparable sharpness. Neither curve is
    # exactly even in z: the absorption x phase cross term is odd in z (the real series: ratio ~1.8 at 10 um)
    for curve in (c, c_real / c_real.max()):
        assert 1 / 3 < curve[1] / curve[4] < 3.0
        assert curve[0] < 0.1 and curve[5] < 0.1  # both far planes are washed out
    # a pure phase object, by contrast, is invisible in focus: its curve has a minimum there
    pure = defocus_stack(obj, [-0.5, 0.0, 0.5], modality="brightfield", pixel_size_um=0.2005, na=0.75,
                         wavelength_um=0.55, na_condenser=0.3, phase_rad=1.0, absorption=0.0)
    cp = focus_curve(pure)
    assert cp[1] < 0.2 * min(cp[0], cp[2])
    assert 0.5 < cp[0] / cp[2] < 2.0


def test_transmission_from_image_bounds():
    t = transmission_from_image(np.arange(64.0).reshape(8, 8), phase_rad=2.0, absorption=0.1)
    assert np.iscomplexobj(t)
    assert np.angle(t).max() == pytest.approx(2.0, abs=0.05)
    assert 0.89 < np.abs(t).min() and np.abs(t).max() <= 1.0
    with pytest.raises(InputError, match="absorption"):
        transmission_from_image(np.ones((8, 8)), absorption=1.5)


# ----------------------------------------------------------------------------------------------- noise

def test_poisson_noise_statistics():
    lam = np.full((400, 400), 50.0)
    adu = add_camera_noise(lam, gain=1.0, read_noise_e=0.0, offset=0.0, bit_depth=None, rng=0)
    assert adu.dtype == np.float32
    assert adu.mean() == pytest.approx(50.0, rel=0.01)
    assert adu.var() == pytest.approx(50.0, rel=0.03)
    assert np.allclose(adu, np.round(adu))  # counts are integers


def test_poisson_gaussian_noise_with_gain_offset():
    lam = np.full((400, 400), 200.0)
    adu = add_camera_noise(lam, gain=2.0, read_noise_e=5.0, offset=100.0, bit_depth=16, rng=1)
    assert adu.mean() == pytest.approx(100 + 2 * 200, rel=0.01)
    assert adu.var() == pytest.approx(4 * (200 + 25), rel=0.04)


def test_noise_saturates_and_is_reproducible():
    lam = np.array([[0.0, 10.0], [1e6, 5e3]])
    adu = add_camera_noise(lam, gain=1.0, read_noise_e=1.0, offset=10.0, bit_depth=12, rng=3)
    assert adu.max() <= 4095 and adu[1, 0] == 4095 and adu.min() >= 0
    a = add_camera_noise(np.full((16, 16), 30.0), rng=5)
    b = add_camera_noise(np.full((16, 16), 30.0), rng=5)
    np.testing.assert_array_equal(a, b)
    with pytest.raises(InputError, match="negative"):
        add_camera_noise(np.full((4, 4), -1.0))
    with pytest.raises(InputError, match="empty"):
        add_camera_noise(np.zeros((0, 4)))


# ----------------------------------------------------------------------------------------------- stacks

def test_fft_convolve_matches_direct_convolution():
    from scipy.ndimage import convolve

    rng = np.random.default_rng(0)
    img = rng.random((40, 50))
    k = born_wolf_psf(1.5, 0.75, 0.52, 1.0, 0.26, 11)
    ours = fft_convolve(img, k, mode="reflect")
    ref = convolve(img, k, mode="mirror")
    np.testing.assert_allclose(ours, ref, atol=1e-5)
    ours_w = fft_convolve(img, k, mode="wrap")
    np.testing.assert_allclose(ours_w, convolve(img, k, mode="wrap"), atol=1e-5)


@pytest.mark.real_data
def test_widefield_stack_focus_curve_peaks_in_focus():
    obj = tifffile.imread(shared("cells3d_nuclei_confocal"))[32].astype(np.float64)
    z = np.arange(-4.0, 4.01, 1.0)
    clean = defocus_stack(obj, z, pixel_size_um=0.26, na=0.75, wavelength_um=0.52)
    assert clean.shape == (9, 256, 256) and clean.dtype == np.float32
    # convolution with a unit-sum PSF keeps the total signal
    assert np.allclose(clean.mean(axis=(1, 2)), obj.mean(), rtol=0.01)
    c = focus_curve(clean)
    i0 = int(np.argmax(c))
    assert z[i0] == 0
    assert np.all(np.diff(c[:i0 + 1]) > 0) and np.all(np.diff(c[i0:]) < 0)
    np.testing.assert_allclose(c, c[::-1], rtol=0.1)  # Born-Wolf defocus is even in z
    # with camera noise (4x4 binning lifts the signal above the noise floor) the same shape holds
    noisy = defocus_stack(obj, z, pixel_size_um=0.26, photons=1000, background_photons=100, seed=0)
    cn = focus_curve(noisy, bin_=4)
    assert int(np.argmax(cn)) == i0
    assert np.all(np.diff(cn[:i0 + 1]) > 0) and np.all(np.diff(cn[i0:]) < 0)
    again = defocus_stack(obj, z, pixel_size_um=0.26, photons=1000, background_photons=100, seed=0)
    np.testing.assert_array_equal(noisy, again)


@pytest.mark.real_data
def test_widefield_stack_resembles_real_widefield_bead_series():
    # the measured bead's own defocus series and our model agree on the widening rate (within a factor)
    bead = tifffile.imread(shared("psf_widefield_bead_560nm"))
    z = read_z("psf_widefield_bead_560nm")
    for dz in (1.0, 2.0):
        meas = second_moment(psf_from_bead_stack(bead, z, 0.1003, 0.1003, dz, size=41))
        model = second_moment(born_wolf_psf(dz, 1.1, 0.56, 1.33, 0.1003, 41))
        assert 0.4 < meas / model < 2.5


def test_defocus_stack_is_fast_enough():
    img = np.random.default_rng(0).random((512, 512))
    t0 = time.perf_counter()
    st = defocus_stack(img, np.arange(-4.0, 4.01, 1.0), pixel_size_um=0.26, photons=500, seed=1)
    dt = time.perf_counter() - t0
    assert st.shape == (9, 512, 512)
    assert dt < 5.0


def test_defocus_stack_bad_arguments():
    with pytest.raises(InputError, match="modality"):
        defocus_stack(np.ones((16, 16)), [0.0], modality="confocal")
    with pytest.raises(InputError, match="z_um"):
        defocus_stack(np.ones((16, 16)), [])
    with pytest.raises(InputError, match="empty"):
        defocus_stack(np.ones((0, 16)), [0.0])
    with pytest.raises(InputError, match="psf"):
        defocus_stack(np.ones((16, 16)), [0.0], psf="airy")
    with pytest.raises(InputError, match="exceeds"):
        defocus_stack(np.ones((16, 16)), [0.0], na=1.3, n_immersion=1.0)


# ----------------------------------------------------------------------------------------------- sample data

def test_bundled_sample_stack():
    from latent_focus.io import read_stack

    assert SAMPLE.exists()
    st = read_stack(SAMPLE)
    assert st.data.shape == (9, 256, 256)
    np.testing.assert_allclose(st.z_um, np.arange(-4.0, 4.01, 1.0))
    assert st.pixel_size_um == pytest.approx(0.26, rel=1e-3)
    c = focus_curve(st.data, bin_=2)
    assert int(np.argmax(c)) == 4
    assert SAMPLE.stat().st_size < 5e6
    for name in ("SOURCE.txt", "LICENSE-cells3d.txt", "z.txt"):
        assert (SAMPLE.parent / name).exists()
    assert "BSD-3-Clause" in (SAMPLE.parent / "SOURCE.txt").read_text()


@pytest.mark.real_data
def test_sample_stack_is_reproducible_from_source():
    stack, z, px = make_sample_stack(shared("cells3d_nuclei_confocal"))
    bundled = tifffile.imread(SAMPLE)
    assert stack.shape == bundled.shape and stack.dtype == np.uint16
    diff = np.abs(stack.astype(np.int64) - bundled.astype(np.int64))
    assert diff.mean() < 0.01 and diff.max() <= 2
