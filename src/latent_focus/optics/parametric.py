"""A parametric defocus PSF: the scalar pupil with defocus and the two astigmatism Zernike terms.

The pupil of :mod:`latent_focus.optics.psf` (Born & Wolf: the exact defocus phase ``2 pi z sqrt((n/lambda)^2 - f^2)``
inside ``f <= NA/lambda``) gains the primary astigmatism terms ``A0 r^2 cos 2theta + A45 r^2 sin 2theta``, with
``r = f lambda / NA`` the normalised pupil radius and ``A0, A45`` in waves (peak value at the pupil edge). Three
parameters describe a PSF of given optics: the defocus ``z`` in micrometres and ``A0, A45``.

The set of PSFs is symmetric: ``(z, A0, A45)`` and ``(-z, -A0, -A45)`` give the same intensity PSF (the pupil phase
is conjugated, the PSF rotated by 180 degrees, and these terms are even). :func:`canonical` picks the member with
``z >= 0``, which is what an estimator can recover from an image.

The brightfield variant, :func:`brightfield_parametric`, propagates a thin object's transmission through the same
aberrated pupil with the angular-spectrum model of :mod:`latent_focus.optics.brightfield`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from ..errors import InputError
from .brightfield import brightfield_defocus
from .checks import check_image, check_optics, check_size, finite
from .fft import fast_len
from .psf import odd_at_least

__all__ = ["Optics", "brightfield_parametric", "canonical", "parametric_psf", "parametric_psfs"]


@dataclass(frozen=True)
class Optics:
    """Objective and camera: numerical aperture, emission wavelength (um), immersion index, pixel size (um)."""

    na: float
    wavelength_um: float
    n_immersion: float = 1.0
    pixel_size_um: float = 0.1

    def __post_init__(self):
        values = check_optics(self.na, self.wavelength_um, self.n_immersion, self.pixel_size_um)
        for name, value in zip(("na", "wavelength_um", "n_immersion", "pixel_size_um"), values):
            object.__setattr__(self, name, value)

    @property
    def cutoff_px(self) -> float:
        """Pupil cut-off ``NA / lambda`` in cycles per pixel (0.25 samples the intensity PSF at Nyquist)."""
        return self.na * self.pixel_size_um / self.wavelength_um

    @property
    def waves_per_um(self) -> float:
        """Defocus phase at the pupil edge, in waves, per micrometre of focal shift."""
        n, na = self.n_immersion, self.na
        return (n - math.sqrt(max(n * n - na * na, 0.0))) / self.wavelength_um

    def defocus_waves(self, z_um):
        """Focal shift (um) -> defocus phase at the pupil edge (waves)."""
        return np.asarray(z_um, dtype=np.float64) * self.waves_per_um

    def defocus_um(self, waves):
        """Defocus phase at the pupil edge (waves) -> focal shift (um)."""
        return np.asarray(waves, dtype=np.float64) / self.waves_per_um

    def support_px(self, defocus_um: float, astigmatism_waves: float = 0.0) -> int:
        """Odd kernel side holding the blur disc of this defocus and astigmatism plus four Airy radii."""
        sin_t = min(self.na / self.n_immersion, 0.999)
        blur_um = abs(defocus_um) * sin_t / math.sqrt(1 - sin_t ** 2)
        blur_um += 2 * abs(astigmatism_waves) * self.wavelength_um / self.na + 4 * 0.61 * self.wavelength_um / self.na
        return max(9, 2 * int(math.ceil(blur_um / self.pixel_size_um)) + 1)

    def as_tuple(self) -> tuple[float, float, float, float]:
        return self.na, self.wavelength_um, self.n_immersion, self.pixel_size_um


def canonical(params) -> np.ndarray:
    """``(..., 3)`` parameters ``(z, A0, A45)`` mapped to their equivalent with ``z >= 0``."""
    p = np.array(params, dtype=np.float64)
    flip = p[..., 0] < 0
    p[flip] *= -1
    return p


def _pupil_phase(fy: np.ndarray, fx: np.ndarray, params: np.ndarray, optics: Optics) -> np.ndarray:
    """Pupil phase in radians, shape ``(len(params), *fy.shape)``, for rows ``(z_um, A0, A45)`` of ``params``."""
    k = optics.n_immersion / optics.wavelength_um
    fc2 = (optics.na / optics.wavelength_um) ** 2
    rho2 = fy ** 2 + fx ** 2
    axial = np.sqrt(np.maximum(k * k - rho2, 0.0)) - k
    cos2 = (fx ** 2 - fy ** 2) / fc2  # r^2 cos 2theta
    sin2 = 2 * fx * fy / fc2  # r^2 sin 2theta
    z, a0, a45 = (params[:, i, None] for i in range(3))
    return 2 * np.pi * (z * axial[None] + a0 * cos2[None] + a45 * sin2[None])


def parametric_psfs(params, optics: Optics, size: int) -> np.ndarray:
    """Intensity PSFs for rows ``(defocus_um, A0, A45)`` of ``params`` on the pixel grid of ``optics``.

    The pupil is sampled on a grid that Nyquist-samples the intensity, the intensity is integrated over each
    pixel (so under-sampling cameras are modelled as they are), and the window is cropped to ``size``.

    Parameters
    ----------
    params : array, shape (n, 3) or (3,)
        Defocus in micrometres and astigmatism ``A0``, ``A45`` in waves.
    optics : Optics
    size : int
        Odd kernel side in pixels.

    Returns
    -------
    psfs : ndarray, float32, shape (n, size, size) (or (size, size) for one row)
        Non-negative, each sums to 1, centred on pixel (size // 2, size // 2).
    """
    p = np.asarray(params, dtype=np.float64)
    single = p.ndim == 1
    p = np.atleast_2d(p)
    if p.ndim != 2 or p.shape[1] != 3 or not np.isfinite(p).all():
        raise InputError(f"params must be finite rows (defocus_um, A0, A45); got shape {p.shape}")
    size = check_size(size)
    if size % 2 == 0:
        raise InputError(f"size must be odd so the PSF is centred on a pixel; got {size}")
    px, wl, na = optics.pixel_size_um, optics.wavelength_um, optics.na
    os_ = odd_at_least(max(3.0, px * 4 * na / wl))
    dx = px / os_
    n_win = os_ * size
    # the field must not wrap around: the grid holds the blur disc (as optics.psf does) with a margin
    sin_t = optics.na / optics.n_immersion
    blur_um = max(abs(z) * sin_t / math.sqrt(max(1 - sin_t ** 2, 1e-6)) + 2 * (abs(a) + abs(b)) * wl / na
                  for z, a, b in p)
    m = fast_len(1.25 * max(n_win, 2 * blur_um / dx) + 16 * os_)
    f = np.fft.fftfreq(m, d=dx)
    inside = (f[:, None] ** 2 + f[None, :] ** 2) <= (na / wl) ** 2
    iy, ix = np.nonzero(inside)
    phase = _pupil_phase(f[iy], f[ix], p, optics)
    c = (size // 2) * os_ + (os_ - 1) // 2
    out = np.empty((len(p), size, size), dtype=np.float64)
    for i in range(len(p)):
        pupil = np.zeros((m, m), dtype=np.complex128)
        pupil[iy, ix] = np.exp(1j * phase[i])
        field = np.fft.fft2(pupil)
        inten = field.real ** 2 + field.imag ** 2
        inten = np.roll(inten, (c, c), axis=(0, 1))[:n_win, :n_win]
        psf = inten.reshape(size, os_, size, os_).sum(axis=(1, 3))
        out[i] = psf / psf.sum()
    out = out.astype(np.float32)
    return out[0] if single else out


def parametric_psf(defocus_um: float, astig_0: float = 0.0, astig_45: float = 0.0, optics: Optics | None = None,
                   size: int | None = None) -> np.ndarray:
    """One PSF of :func:`parametric_psfs`; ``size`` defaults to the support of this defocus and astigmatism."""
    optics = optics or Optics(0.75, 0.52)
    z = finite("defocus_um", defocus_um)
    if size is None:
        size = optics.support_px(z, abs(astig_0) + abs(astig_45))
    return parametric_psfs(np.array([z, finite("astig_0", astig_0), finite("astig_45", astig_45)]), optics, size)


def brightfield_parametric(transmission, defocus_um: float, astig_0: float = 0.0, astig_45: float = 0.0,
                           optics: Optics | None = None, na_condenser: float = 0.0) -> np.ndarray:
    """Brightfield intensity of a thin object through the aberrated pupil (angular spectrum, reflect-padded).

    The same model as :func:`latent_focus.optics.brightfield_defocus` (``rings=0``: coherent propagation and a
    Gaussian partial-coherence envelope for the condenser aperture), with the astigmatism terms added to the
    pupil. Without astigmatism it is that function.

    Returns
    -------
    intensity : ndarray, float32, shape (y, x); 1 = clear background
    """
    optics = optics or Optics(0.75, 0.55)
    z = finite("defocus_um", defocus_um)
    a0, a45 = finite("astig_0", astig_0), finite("astig_45", astig_45)
    na, wl, n, px = optics.as_tuple()
    if a0 == 0 and a45 == 0:
        return brightfield_defocus(transmission, z, wl, px, na, na_condenser, n)
    t = np.asarray(transmission)
    check_image(np.abs(t), "transmission")
    if not 0 <= na_condenser <= n:
        raise InputError(f"na_condenser must be in [0, n_immersion={n}]; got {na_condenser!r}")
    h, w = t.shape
    sin_t = min(max(na, na_condenser) / n, 0.999)
    r = abs(z) * sin_t / math.sqrt(1 - sin_t ** 2) + 2 * (abs(a0) + abs(a45)) * wl / na + 2 * wl / na
    pad = min(int(math.ceil(r / px)) + 2, 4 * h), min(int(math.ceil(r / px)) + 2, 4 * w)
    shape = (fast_len(h + 2 * pad[0]), fast_len(w + 2 * pad[1]))
    tp = np.pad(t.astype(np.complex128), ((pad[0], shape[0] - h - pad[0]), (pad[1], shape[1] - w - pad[1])),
                mode="symmetric")
    fy = np.fft.fftfreq(shape[0], d=px)[:, None]
    fx = np.fft.fftfreq(shape[1], d=px)[None, :]
    fyy, fxx = np.broadcast_arrays(fy, fx)
    pupil = (fyy ** 2 + fxx ** 2) <= (na / wl) ** 2
    phase = _pupil_phase(fyy, fxx, np.array([[z, a0, a45]]), optics)[0]
    u = np.fft.ifft2(np.fft.fft2(tp.astype(np.complex64)) * pupil * np.exp(1j * phase).astype(np.complex64))
    inten = u.real ** 2 + u.imag ** 2
    if na_condenser > 0 and z != 0:
        sin_c = min(na_condenser / n, 0.999)
        sigma = abs(z) * sin_c / math.sqrt(1 - sin_c ** 2) / 2
        env = np.exp(-2 * np.pi ** 2 * sigma ** 2 * (fy ** 2 + fx[:, :inten.shape[1] // 2 + 1] ** 2))
        inten = np.fft.irfft2(np.fft.rfft2(inten) * env, s=inten.shape)
    return inten[pad[0]:pad[0] + h, pad[1]:pad[1] + w].astype(np.float32)
