"""Brightfield defocus: angular-spectrum propagation of a thin object's complex transmission."""

from __future__ import annotations

import math

import numpy as np

from ..errors import InputError
from .checks import check_image, check_optics
from .fft import fast_len

__all__ = ["brightfield_defocus", "transmission_from_image"]


def transmission_from_image(image, phase_rad: float = 1.0, absorption: float = 0.0) -> np.ndarray:
    """Complex transmission ``a exp(i phi)`` of a thin object built from an image.

    The image is rescaled to [0, 1] (1st-99.9th percentile); ``phi = phase_rad * u`` and
    ``a = 1 - absorption * u``.

    Returns
    -------
    t : ndarray, complex128, shape (y, x)
    """
    a = check_image(image, "image").astype(np.float64)
    lo, hi = np.percentile(a, [1, 99.9])
    u = np.clip((a - lo) / (hi - lo), 0, 1) if hi > lo else np.zeros_like(a)
    if not 0 <= absorption < 1:
        raise InputError(f"absorption must be in [0, 1); got {absorption!r}. Pass e.g. 0.05 for 5 % absorption.")
    return (1 - absorption * u) * np.exp(1j * float(phase_rad) * u)


def _source_points(f_cond: float, rings: int) -> tuple[np.ndarray, np.ndarray]:
    """Illumination spatial frequencies (fy, fx) sampling a uniform disc of radius f_cond (Koehler source)."""
    if f_cond <= 0 or rings <= 0:
        return np.zeros((1, 2)), np.ones(1)
    pts = [(0.0, 0.0)]
    wts = [1.0]
    for k in range(1, rings + 1):
        r = f_cond * k / (rings + 0.5)
        nk = 6 * k
        for j in range(nk):
            a = 2 * np.pi * (j + 0.5 * (k % 2)) / nk
            pts.append((r * np.sin(a), r * np.cos(a)))
            wts.append(1.0)
    w = np.asarray(wts)
    return np.asarray(pts), w / w.sum()


def brightfield_defocus(transmission, defocus_um, wavelength_um: float = 0.55, pixel_size_um: float = 0.2,
                        na_objective: float = 0.75, na_condenser: float = 0.0, n_medium: float = 1.0,
                        rings: int = 0, mode: str = "reflect") -> np.ndarray:
    """Brightfield intensity of a thin object at one or several defocus positions (angular spectrum).

    The field just after the object, ``t(x, y)``, is propagated by ``z`` with the transfer function
    ``exp(i 2 pi z sqrt((n/lambda)^2 - f^2))`` and low-pass filtered by the objective pupil (``f <= NA/lambda``).
    For a weak phase object the defocus term makes the phase visible with opposite sign above and below
    focus, and a pure phase object has (almost) no contrast in focus. Partial coherence from the condenser
    aperture (``na_condenser``; 0 = coherent) is modelled either by a Gaussian envelope (``rings=0``: each
    illumination tilt shifts the defocused image by ``z tan(theta)``, so the condenser disc blurs the intensity
    by a disc of radius ``|z| tan(theta_c)``, here a Gaussian of the same second moment; weak-object
    approximation) or by averaging intensities over explicit illumination tilts (``rings > 0``).

    Parameters
    ----------
    transmission : array, shape (y, x)
        Complex (or real amplitude) transmission of the object, e.g. from :func:`transmission_from_image`.
    defocus_um : float or sequence of float
        Defocus in micrometres.
    wavelength_um : float
        Illumination wavelength in vacuum, micrometres.
    pixel_size_um : float
        Pixel size in object space, micrometres.
    na_objective, na_condenser : float
        Objective and condenser numerical apertures.
    n_medium : float
        Refractive index between object and focal plane.
    rings : int
        0: Gaussian partial-coherence envelope (fast). > 0: average over 1 + 3 rings (rings + 1) explicit
        illumination tilts (slower; needs many rings at large defocus to avoid residual coherent fringes).
    mode : {'reflect', 'wrap'}
        Edge handling: mirror-pad by the blur extent, or treat the field as periodic.

    Returns
    -------
    intensity : ndarray, float32, shape (y, x) or (len(defocus_um), y, x)
        Intensity relative to the incident illumination (1 = clear background).
    """
    t = np.asarray(transmission)
    check_image(np.abs(t), "transmission")
    t = t.astype(np.complex128)
    na, wl, n, px = check_optics(na_objective, wavelength_um, n_medium, pixel_size_um)
    na_c = float(na_condenser)
    if not 0 <= na_c <= n:
        raise InputError(f"na_condenser must be in [0, n_medium={n}]; got {na_condenser!r}")
    zs = np.atleast_1d(np.asarray(defocus_um, dtype=np.float64))
    if not np.isfinite(zs).all():
        raise InputError("defocus_um must be finite numbers in micrometres")
    single = np.ndim(defocus_um) == 0
    h, w = t.shape
    if mode == "wrap":
        pad = (0, 0)
        tp = t
    elif mode == "reflect":
        sin_t = min(max(na, na_c) / n, 0.999)
        r = float(np.abs(zs).max()) * sin_t / math.sqrt(1 - sin_t ** 2) + 2 * wl / na
        p = int(math.ceil(r / px)) + 2
        pad = (min(p, 4 * h), min(p, 4 * w))
        shape = (fast_len(h + 2 * pad[0]), fast_len(w + 2 * pad[1]))
        tp = np.pad(t, ((pad[0], shape[0] - h - pad[0]), (pad[1], shape[1] - w - pad[1])), mode="symmetric")
    else:
        raise InputError(f"mode must be 'reflect' or 'wrap'; got {mode!r}")
    spec = np.fft.fft2(tp.astype(np.complex64))
    fy = np.fft.fftfreq(tp.shape[0], d=px)[:, None]
    fx = np.fft.fftfreq(tp.shape[1], d=px)[None, :]
    k2 = (n / wl) ** 2
    out = np.zeros((zs.size, h, w), dtype=np.float64)
    if rings > 0:
        pts, wts = _source_points(na_c / wl, rings)
    else:
        pts, wts = np.zeros((1, 2)), np.ones(1)
    for (sy, sx), wt in zip(pts, wts):
        rho2 = (fy + sy) ** 2 + (fx + sx) ** 2
        pupil = rho2 <= (na / wl) ** 2
        kz = np.sqrt(np.maximum(k2 - rho2, 0.0))
        base = spec * pupil
        for i, z in enumerate(zs):
            u = np.fft.ifft2(base * np.exp(2j * np.pi * z * kz).astype(np.complex64))
            inten = u.real ** 2 + u.imag ** 2
            if rings <= 0 and na_c > 0 and z != 0:
                # each illumination tilt shifts the defocused image by z tan(theta); averaging over the
                # condenser disc blurs the intensity by a disc of radius |z| tan(theta_c) (Gaussian, same 2nd moment)
                sin_c = min(na_c / n, 0.999)
                sigma = abs(z) * sin_c / math.sqrt(1 - sin_c ** 2) / 2
                env = np.exp(-2 * np.pi ** 2 * sigma ** 2 * (fy ** 2 + fx[:, :inten.shape[1] // 2 + 1] ** 2))
                inten = np.fft.irfft2(np.fft.rfft2(inten) * env, s=inten.shape)
            out[i] += wt * inten[pad[0]:pad[0] + h, pad[1]:pad[1] + w]
    out = out.astype(np.float32)
    return out[0] if single else out
